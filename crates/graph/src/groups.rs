//! Groups and their direct memberships through `/groups/delta` (`members@delta`).
//!
//! Initial round: every group, and every direct member. A large group's members arrive in
//! chunks: the same group object appears again later in the round with the next chunk, in no
//! particular order, so chunks are merged per group. Change round: groups that changed or whose
//! membership changed, `@removed` groups (security groups are deleted for good, reason
//! `deleted`), and members added or removed (`@removed` inside `members@delta`), last word per
//! (group, member) winning. Changed groups are re-read whole through `$batch`, for the same
//! reason as users (delta items may omit unchanged properties).
//! Members that are neither users nor groups (devices, contacts, service principals) are
//! ignored with a log line.

use crate::attributes::{GraphProperty, graph_group_property};
use crate::batch::Fetched;
use crate::client::GraphClient;
use crate::delta::{ItemState, RoundError, item_state};
use crate::read::GROUP_MEMBER_READ;
use scimsync_core::{GroupQuery, GroupRead, MemberKind, SourceError, SourceGroup};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Attributes the engine always needs for groups.
const ALWAYS: [&str; 2] = ["objectId", "displayName"];

/// Member id → kind, per group.
type Members = BTreeMap<String, BTreeMap<String, MemberKind>>;

/// The requested group attributes resolved to Graph properties.
pub(crate) struct GroupProjection {
    attrs: Vec<(String, GraphProperty)>,
    /// `$select` without `members`.
    select: String,
}

impl GroupProjection {
    pub(crate) fn new(requested: &[String]) -> Self {
        let mut attrs: Vec<(String, GraphProperty)> = Vec::new();
        let mut select: Vec<String> = vec!["id".into()];
        for name in ALWAYS
            .iter()
            .map(|s| s.to_string())
            .chain(requested.iter().cloned())
        {
            if attrs.iter().any(|(n, _)| *n == name) {
                continue;
            }
            match graph_group_property(&name) {
                Some(p) => {
                    if !select.iter().any(|s| s == p.select()) {
                        select.push(p.select().to_string());
                    }
                    attrs.push((name, p));
                }
                None => {
                    tracing::warn!(attribute = %name, "unknown group source attribute; it reads as empty")
                }
            }
        }
        GroupProjection {
            attrs,
            select: select.join(","),
        }
    }

    pub(crate) fn group(&self, graph: &Value) -> Option<SourceGroup> {
        let obj: &Map<String, Value> = graph.as_object()?;
        let id = obj.get("id")?.as_str()?.to_string();
        let attrs = self
            .attrs
            .iter()
            .filter_map(|(name, p)| p.read(obj).map(|v| (name.clone(), v)))
            .collect();
        Some(SourceGroup { id, attrs })
    }
}

/// One `members@delta` element: (member id, kind, removed?); `None` for other object types.
pub(crate) fn member_link(group: &str, link: &Value) -> Option<(String, MemberKind, bool)> {
    let id = link.get("id")?.as_str()?.to_string();
    let kind = match link.get("@odata.type").and_then(Value::as_str) {
        Some(t) if t.eq_ignore_ascii_case("#microsoft.graph.user") => MemberKind::User,
        Some(t) if t.eq_ignore_ascii_case("#microsoft.graph.group") => MemberKind::Group,
        other => {
            tracing::info!(group, member = %id, kind = other.unwrap_or("none"),
                "group member that is neither a user nor a group ignored");
            return None;
        }
    };
    Some((id, kind, link.get("@removed").is_some()))
}

pub(crate) fn links(item: &Value) -> impl Iterator<Item = &Value> {
    item.get("members@delta")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn flatten(m: Members) -> BTreeMap<String, Vec<(String, MemberKind)>> {
    m.into_iter()
        .map(|(g, members)| (g, members.into_iter().collect()))
        .collect()
}

impl GraphClient {
    /// [`scimsync_core::Source::read_groups`].
    pub(crate) async fn group_changes(
        &self,
        query: &GroupQuery,
        watermark: Option<&str>,
    ) -> Result<GroupRead, SourceError> {
        let projection = GroupProjection::new(&query.attributes);
        let Some(watermark) = watermark else {
            return self.groups_full_round(&projection, None).await;
        };
        let url = match self.watermark_url(watermark) {
            Ok(url) => url,
            Err(reason) => {
                tracing::warn!("{reason}");
                return self.groups_full_round(&projection, Some(reason)).await;
            }
        };
        let mut present: BTreeSet<String> = BTreeSet::new();
        let mut deleted: BTreeSet<String> = BTreeSet::new();
        let mut added: Members = BTreeMap::new();
        let mut removed: Members = BTreeMap::new();
        let round = self
            .delta_round(url, GROUP_MEMBER_READ, |page| {
                for item in page {
                    let Some((id, state)) = item_state(&item) else {
                        continue;
                    };
                    if !matches!(state, ItemState::Present) {
                        present.remove(&id);
                        added.remove(&id);
                        removed.remove(&id);
                        deleted.insert(id);
                        continue;
                    }
                    deleted.remove(&id);
                    for link in links(&item) {
                        let Some((member, kind, gone)) = member_link(&id, link) else {
                            continue;
                        };
                        let (to, from) = if gone {
                            (&mut removed, &mut added)
                        } else {
                            (&mut added, &mut removed)
                        };
                        if let Some(m) = from.get_mut(&id) {
                            m.remove(&member);
                        }
                        to.entry(id.clone()).or_default().insert(member, kind);
                    }
                    present.insert(id);
                }
            })
            .await;
        let watermark = match round {
            Ok(link) => link,
            Err(RoundError::Expired(reason)) => {
                tracing::warn!("{reason}");
                return self.groups_full_round(&projection, Some(reason)).await;
            }
            Err(RoundError::Failed(e)) => return Err(e),
        };
        added.retain(|_, m| !m.is_empty());
        removed.retain(|_, m| !m.is_empty());
        let ids: Vec<String> = present.into_iter().collect();
        let upserts = self.groups_by_id(&ids, &projection).await?;
        tracing::info!(
            changed = upserts.len(),
            deleted = deleted.len(),
            groups_with_added_members = added.len(),
            groups_with_removed_members = removed.len(),
            "read group changes from Graph"
        );
        Ok(GroupRead::Changes {
            upserts,
            deleted: deleted.into_iter().collect(),
            members_added: flatten(added),
            members_removed: flatten(removed),
            watermark,
        })
    }

    async fn groups_full_round(
        &self,
        projection: &GroupProjection,
        fallback_reason: Option<String>,
    ) -> Result<GroupRead, SourceError> {
        let start = self.url(
            &["groups", "delta"],
            &format!("$select={},members", projection.select),
        );
        let mut restarted = false;
        loop {
            let mut groups: BTreeMap<String, SourceGroup> = BTreeMap::new();
            let mut members: Members = BTreeMap::new();
            let round = self
                .delta_round(start.clone(), GROUP_MEMBER_READ, |page| {
                    for item in page {
                        let Some((id, state)) = item_state(&item) else {
                            continue;
                        };
                        if !matches!(state, ItemState::Present) {
                            groups.remove(&id);
                            members.remove(&id);
                            continue;
                        }
                        // Chunks repeat the group's properties: the last copy wins.
                        if let Some(g) = projection.group(&item) {
                            groups.insert(id.clone(), g);
                        }
                        let set = members.entry(id.clone()).or_default();
                        for link in links(&item) {
                            if let Some((member, kind, gone)) = member_link(&id, link) {
                                if gone {
                                    set.remove(&member);
                                } else {
                                    set.insert(member, kind);
                                }
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
                Err(RoundError::Expired(reason)) => {
                    return Err(crate::client::request_failed(reason, None));
                }
                Err(RoundError::Failed(e)) => return Err(e),
            };
            tracing::info!(
                groups = groups.len(),
                memberships = members.values().map(BTreeMap::len).sum::<usize>(),
                fallback = fallback_reason.is_some(),
                "read all groups from Graph (delta initial round)"
            );
            return Ok(GroupRead::Full {
                groups: groups.into_values().collect(),
                members: flatten(members),
                fallback_reason,
                watermark: Some(watermark),
            });
        }
    }

    /// Groups by id through `$batch`, complete under `projection`; unknown ids are left out.
    async fn groups_by_id(
        &self,
        ids: &[String],
        projection: &GroupProjection,
    ) -> Result<Vec<SourceGroup>, SourceError> {
        let query = format!("$select={}", projection.select);
        let urls: Vec<String> = ids
            .iter()
            .map(|id| self.relative_url(&["groups", id], &query))
            .collect();
        let fetched = self.batch_get(&urls, GROUP_MEMBER_READ).await?;
        Ok(fetched
            .into_iter()
            .filter_map(|f| match f {
                Fetched::Found(body) => projection.group(&body),
                Fetched::NotFound => None,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_select_has_the_engine_attributes_once() {
        let p = GroupProjection::new(&["description".into(), "displayName".into(), "nope".into()]);
        assert_eq!(p.select, "id,displayName,description");
    }
}
