//! Graph delta rounds (`/users/delta`; the round mechanics are shared with `/groups/delta`).
//!
//! A round starts at the initial URL (with `$select`) or at the saved `@odata.deltaLink`, and
//! follows `@odata.nextLink`s (even past empty pages) until a page carries the next deltaLink,
//! which becomes the new watermark. Pages are handled one by one; only the set of changed ids
//! is kept for a change round.
//!
//! Why changed users are re-read through `$batch`: a delta item carries only the properties
//! that changed (and never-set properties are omitted), so it is not a complete record, while
//! the engine needs complete users to compute the desired target representation. Re-reading
//! the changed ids keeps that simple and correct.
//!
//! Expired or rejected watermarks (400 `syncStateNotFound`, 410 Gone with `Location`,
//! `resyncRequired`, `Directory_ExpiredPageToken`; codes compared case-insensitively) lead to a
//! full round whose result says why in `fallback_reason`. A token that expires in the middle of
//! the initial round restarts that round once.

use crate::client::{Failure, GraphClient, request_failed, split_page};
use crate::read::{Projection, USER_READ};
use reqwest::StatusCode;
use scimsync_core::{SourceError, SourceUser, UserRead};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use url::Url;

/// Why a delta round could not finish.
pub(crate) enum RoundError {
    /// The token was refused as expired or unknown: start a full round. Carries the reason.
    Expired(String),
    Failed(SourceError),
}

impl From<SourceError> for RoundError {
    fn from(e: SourceError) -> Self {
        RoundError::Failed(e)
    }
}

/// Whether Graph refused a delta or skip token as expired / no longer valid.
fn is_expired(f: &Failure) -> bool {
    f.status == Some(StatusCode::GONE)
        || [
            "syncStateNotFound",
            "resyncRequired",
            "Directory_ExpiredPageToken",
        ]
        .iter()
        .any(|c| f.has_code(c))
}

/// What a delta item says about its object.
pub(crate) enum ItemState {
    /// A new, changed or restored object (its properties may be partial).
    Present,
    /// `@removed` reason `changed`: soft-deleted, restorable.
    SoftDeleted,
    /// `@removed` reason `deleted`: gone for good.
    HardDeleted,
}

/// The id and state of a delta item; `None` without an id.
pub(crate) fn item_state(item: &Value) -> Option<(String, ItemState)> {
    let id = item.get("id")?.as_str()?.to_string();
    let state = match item.get("@removed") {
        None => ItemState::Present,
        Some(removed) => {
            let reason = removed.get("reason").and_then(Value::as_str).unwrap_or("");
            if reason.eq_ignore_ascii_case("deleted") {
                ItemState::HardDeleted
            } else {
                // "changed", or a reason we do not know: treat as restorable.
                ItemState::SoftDeleted
            }
        }
    };
    Some((id, state))
}

impl GraphClient {
    /// Run one delta round from `start`, handing each page's items to `each`; returns the new
    /// deltaLink.
    pub(crate) async fn delta_round(
        &self,
        start: Url,
        permission: &str,
        mut each: impl FnMut(Vec<Value>) + Send,
    ) -> Result<String, RoundError> {
        let mut url = start;
        loop {
            let page = match self.get(&url, permission).await {
                Ok(page) => page,
                Err(f) if is_expired(&f) => {
                    let status = f.status.map_or(0, |s| s.as_u16());
                    let code = f.code.as_deref().unwrap_or("no error code");
                    return Err(RoundError::Expired(format!(
                        "Graph rejected the delta token (HTTP {status} {code}); a full read was done instead"
                    )));
                }
                Err(f) => return Err(RoundError::Failed(f.error)),
            };
            let (values, links) = split_page(&url, page)?;
            each(values);
            if let Some(delta) = links.delta {
                // Validated like a nextLink: it is sent with our token next time.
                self.next_url(&url, &delta)?;
                return Ok(delta);
            }
            let Some(next) = links.next else {
                return Err(RoundError::Failed(request_failed(
                    format!(
                        "GET {}: a delta page without @odata.nextLink or @odata.deltaLink",
                        url.path()
                    ),
                    None,
                )));
            };
            url = self.next_url(&url, &next)?;
        }
    }

    /// A saved watermark as a URL we may send our token to; `Err` is the fallback reason.
    pub(crate) fn watermark_url(&self, watermark: &str) -> Result<Url, String> {
        let url = Url::parse(watermark).map_err(|e| {
            format!("the saved delta link is not a URL ({e}); a full read was done instead")
        })?;
        if url.origin() != self.inner.graph_url.origin() {
            return Err(format!(
                "the saved delta link is for another Graph host ({}); a full read was done instead",
                url.origin().ascii_serialization()
            ));
        }
        Ok(url)
    }

    /// [`scimsync_core::Source::read_user_changes`].
    pub(crate) async fn user_changes(
        &self,
        projection: &Projection,
        watermark: Option<&str>,
        keep: Option<&BTreeSet<String>>,
    ) -> Result<UserRead, SourceError> {
        let Some(watermark) = watermark else {
            return self.users_full_round(projection, None, keep).await;
        };
        let url = match self.watermark_url(watermark) {
            Ok(url) => url,
            Err(reason) => {
                tracing::warn!("{reason}");
                return self.users_full_round(projection, Some(reason), keep).await;
            }
        };
        // Last state per id wins: replays and duplicates are expected within a round.
        let mut changed: BTreeMap<String, ItemState> = BTreeMap::new();
        let round = self
            .delta_round(url, USER_READ, |page| {
                for item in page {
                    match item_state(&item) {
                        Some((id, state)) => {
                            changed.insert(id, state);
                        }
                        None => tracing::warn!("Graph delta item without an id; skipped"),
                    }
                }
            })
            .await;
        let new_watermark = match round {
            Ok(link) => link,
            Err(RoundError::Expired(reason)) => {
                tracing::warn!("{reason}");
                return self.users_full_round(projection, Some(reason), keep).await;
            }
            Err(RoundError::Failed(e)) => return Err(e),
        };
        let mut upsert_ids = Vec::new();
        let mut soft_deleted = Vec::new();
        let mut hard_deleted = Vec::new();
        for (id, state) in changed {
            match state {
                ItemState::Present => upsert_ids.push(id),
                ItemState::SoftDeleted => soft_deleted.push(id),
                ItemState::HardDeleted => hard_deleted.push(id),
            }
        }
        let upserts = self.users_by_id(&upsert_ids, projection).await?;
        tracing::info!(
            changed = upserts.len(),
            soft_deleted = soft_deleted.len(),
            hard_deleted = hard_deleted.len(),
            requests = self.requests_sent(),
            "read user changes from Graph"
        );
        Ok(UserRead::Changes {
            upserts,
            soft_deleted,
            hard_deleted,
            watermark: new_watermark,
        })
    }

    /// An initial delta round: every user, plus deleted items, plus the first watermark.
    async fn users_full_round(
        &self,
        projection: &Projection,
        fallback_reason: Option<String>,
        keep: Option<&BTreeSet<String>>,
    ) -> Result<UserRead, SourceError> {
        let keep = |id: &str| keep.is_none_or(|k| k.contains(id));
        let start = self.url(&["users", "delta"], &projection.delta_query());
        let mut restarted = false;
        loop {
            let mut users: BTreeMap<String, SourceUser> = BTreeMap::new();
            let mut removed_soft: BTreeSet<String> = BTreeSet::new();
            let round = self
                .delta_round(start.clone(), USER_READ, |page| {
                    for item in page {
                        let Some((id, state)) = item_state(&item) else {
                            tracing::warn!("Graph delta item without an id; skipped");
                            continue;
                        };
                        match state {
                            ItemState::Present => {
                                removed_soft.remove(&id);
                                if let Some(u) = projection.user(&item) {
                                    // Slim as soon as read: the page is the only full copy.
                                    let u = if keep(&id) { u } else { u.slim() };
                                    users.insert(id, u);
                                }
                            }
                            ItemState::SoftDeleted => {
                                users.remove(&id);
                                removed_soft.insert(id);
                            }
                            ItemState::HardDeleted => {
                                users.remove(&id);
                                removed_soft.remove(&id);
                            }
                        }
                    }
                })
                .await;
            let watermark = match round {
                Ok(link) => link,
                Err(RoundError::Expired(reason)) if !restarted => {
                    tracing::warn!("{reason} (during the initial round: starting it again)");
                    restarted = true;
                    continue;
                }
                Err(RoundError::Expired(reason)) => return Err(request_failed(reason, None)),
                Err(RoundError::Failed(e)) => return Err(e),
            };
            // deletedItems is read after the round, so it is the fresher word on soft deletes.
            let mut soft_deleted = self.soft_deleted().await?;
            soft_deleted.extend(removed_soft);
            users.retain(|id, _| !soft_deleted.contains(id));
            tracing::info!(
                users = users.len(),
                slim = users.values().filter(|u| !keep(&u.id)).count(),
                soft_deleted = soft_deleted.len(),
                fallback = fallback_reason.is_some(),
                requests = self.requests_sent(),
                "read all users from Graph (delta initial round)"
            );
            return Ok(UserRead::Full {
                users: users.into_values().collect(),
                soft_deleted,
                fallback_reason,
                watermark: Some(watermark),
            });
        }
    }
}
