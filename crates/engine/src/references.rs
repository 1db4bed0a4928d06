//! The reference pass (Entra's `referenceResolution` step): after the users of a cycle are
//! carried out, each reference attribute (`manager`) is written as the referenced user's
//! *target* id, which only exists once that user is provisioned.
//!
//! A create never carries a reference (it may name a user created later in the same cycle).
//! A reference the target cannot hold yet — the manager is not provisioned (out of scope, not
//! assigned, failed, or simply later) — is kept as *pending* and tried again at every cycle
//! until it resolves, unlike Entra, which links it only after a restart. It is logged once
//! per manager, not at every cycle. A cleared source manager never clears the target (Entra's
//! rule for every attribute) unless the job opted into `clear_on_null`.
//!
//! The decision ([`decide_reference`]) is pure; this module's engine part reads the states
//! it needs, sends one PATCH per user and keeps two record kinds: what the target confirmed
//! (`ref`, read by id only) and what is pending (`refpending`, listed at every cycle, so a
//! cycle costs O(changes + pending), not O(users)).

use crate::act::{Cycle, Processed, Rec, retrying, te};
use crate::cycle::Engine;
use crate::jobstate::JobState;
use crate::plan::RefWant;
use crate::report::{Action, Mode};
use scimsync_core::{
    Change, ChangeOp, ErrorCode, LogStatus, Source, StateChange, StateStore, StoreError, Target,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// A reference the target confirmed: which manager, as which target id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ConfirmedRef {
    pub manager: String,
    pub target: String,
}

/// The references a user's target object holds as far as we know (`ref/<user>`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UserRefs {
    /// The user's target id they were confirmed on: after a re-create or a relink to another
    /// object they no longer count.
    pub on: String,
    pub refs: BTreeMap<String, ConfirmedRef>,
}

/// References waiting for their manager (`refpending/<user>`): path → manager source id.
pub(crate) type PendingRefs = BTreeMap<String, String>;

/// What to do with one reference.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RefDecision {
    /// The target already holds it (or the source cleared it and the target keeps its value).
    Keep,
    /// Send it.
    Set(Change),
    /// Clear it (only with `clear_on_null`).
    Clear(Change),
    /// The manager has no target object yet.
    Pending,
}

/// Decide one reference: `manager_target` is the referenced user's target id when it has one.
pub(crate) fn decide_reference(
    want: &RefWant,
    confirmed: Option<&ConfirmedRef>,
    manager_target: Option<&str>,
    clear_on_null: bool,
) -> RefDecision {
    let Some(manager) = &want.manager else {
        return match confirmed {
            Some(_) if clear_on_null => RefDecision::Clear(Change {
                op: ChangeOp::Remove,
                path: want.path.clone(),
                value: Value::Null,
            }),
            _ => RefDecision::Keep,
        };
    };
    let Some(target) = manager_target else {
        return RefDecision::Pending;
    };
    if confirmed.is_some_and(|c| c.manager == *manager && c.target == target) {
        return RefDecision::Keep;
    }
    RefDecision::Set(Change {
        op: if confirmed.is_some() {
            ChangeOp::Replace
        } else {
            ChangeOp::Add
        },
        path: want.path.clone(),
        value: Value::String(target.to_string()),
    })
}

/// One user's references to settle this cycle.
pub(crate) struct UserRefWork {
    pub source_id: String,
    pub display: String,
    pub wants: Vec<RefWant>,
}

/// The users whose references the pass looks at: this cycle's wants, plus every pending one
/// the cycle did not decide again.
pub(crate) fn ref_work(
    decided: Vec<UserRefWork>,
    pending: BTreeMap<String, PendingRefs>,
) -> Vec<UserRefWork> {
    let mut work: BTreeMap<String, UserRefWork> = decided
        .into_iter()
        .filter(|w| !w.wants.is_empty())
        .map(|w| (w.source_id.clone(), w))
        .collect();
    for (user, refs) in pending {
        let entry = work.entry(user.clone()).or_insert_with(|| UserRefWork {
            display: user.clone(),
            source_id: user,
            wants: Vec::new(),
        });
        for (path, manager) in refs {
            if !entry.wants.iter().any(|w| w.path == path) {
                entry.wants.push(RefWant {
                    path,
                    manager: Some(manager),
                });
            }
        }
    }
    work.into_values().collect()
}

impl<S: Source, T: Target, St: StateStore> Engine<'_, S, T, St> {
    /// The reference pass over `work`; `planned` are the users this cycle provisions (in
    /// preview they have no target id yet, and neither do managers among them).
    pub(crate) async fn act_references(
        &self,
        cx: &Cycle,
        work: Vec<UserRefWork>,
        planned: &BTreeSet<String>,
    ) -> Result<Vec<Processed>, StoreError> {
        let mut out = Vec::new();
        let total = work.len();
        for (i, w) in work.into_iter().enumerate() {
            let settled = self.settle_references(cx, w, planned).await;
            // Unbatched: the next user's references read the state this one wrote.
            self.flush_commits(cx)?;
            if let Some(p) = settled? {
                out.extend(cx.list(p));
            }
            self.report_progress("references", i + 1, total);
        }
        Ok(out)
    }

    async fn settle_references(
        &self,
        cx: &Cycle,
        w: UserRefWork,
        planned: &BTreeSet<String>,
    ) -> Result<Option<Processed>, StoreError> {
        let js = JobState::new(self.store, &self.job.name);
        let preview = cx.mode == Mode::Preview;
        let user = self
            .store
            .get(&self.job.name, &w.source_id)?
            .filter(|s| s.active);
        let pending_before = js.pending_refs(&w.source_id)?;
        let Some(user) = user else {
            // Not provisioned (failed, escrowed, left scope): its references come back with it.
            if preview && planned.contains(&w.source_id) {
                return Ok(Some(self.preview_new_user_refs(cx, &w, planned)?));
            }
            if pending_before.is_some() && !preview {
                js.remove_pending_refs(&w.source_id)?;
            }
            return Ok(None);
        };
        let confirmed = js
            .user_refs(&w.source_id)?
            .filter(|r| r.on == user.target_id)
            .unwrap_or_default();
        let mut changes = Vec::new();
        let mut pending = PendingRefs::new();
        for want in &w.wants {
            let manager_target = match &want.manager {
                Some(m) => self.manager_target(m)?,
                None => None,
            };
            match decide_reference(
                want,
                confirmed.refs.get(&want.path),
                manager_target.as_deref(),
                self.job.clear_on_null,
            ) {
                RefDecision::Keep => {}
                RefDecision::Set(c) | RefDecision::Clear(c) => changes.push(c),
                RefDecision::Pending => {
                    if let Some(m) = &want.manager {
                        pending.insert(want.path.clone(), m.clone());
                    }
                }
            }
        }
        let display = if w.display == w.source_id {
            display_of_state(&user)
        } else {
            w.display.clone()
        };
        let mut rec = Rec::user(&w.source_id, &display, "", Vec::new(), self.clock.now());
        rec.target_id = Some(user.target_id.clone());
        if !changes.is_empty() {
            let described: Vec<String> = changes
                .iter()
                .map(|c| match &c.value {
                    Value::String(t) => format!("{} → target user {t}", c.path),
                    _ => format!("{} cleared", c.path),
                })
                .collect();
            rec.step(
                "Resolve references",
                "referenceResolution",
                LogStatus::Success,
                described.join("; "),
            );
        }
        let newly_pending: Vec<(&String, &String)> = pending
            .iter()
            .filter(|(p, m)| pending_before.as_ref().and_then(|b| b.get(*p)) != Some(*m))
            .collect();
        let pending_note = newly_pending
            .iter()
            .map(|(p, m)| {
                format!("{p}: the manager (source object {m}) is not provisioned yet; tried again every cycle")
            })
            .collect::<Vec<_>>()
            .join("; ");
        if !preview {
            if pending.is_empty() {
                if pending_before.is_some() {
                    js.remove_pending_refs(&w.source_id)?;
                }
            } else if pending_before.as_ref() != Some(&pending) {
                js.put_pending_refs(&w.source_id, &pending)?;
            }
        }
        if changes.is_empty() {
            // A reference still waiting for the same manager sends nothing: silent, in a
            // preview as in a run (it was logged when it started waiting).
            if newly_pending.is_empty() {
                return Ok(None);
            }
            let manager = pending.values().cloned().collect::<Vec<_>>().join(",");
            let note = if pending_note.is_empty() {
                "the manager is not provisioned yet".to_string()
            } else {
                pending_note
            };
            return self.pending(cx, rec, manager, note).map(Some);
        }
        let action = Action::SetReference {
            target_id: user.target_id.clone(),
            changes: changes.clone(),
        };
        if preview {
            return self
                .finish(cx, rec, action, StateChange::None, None)
                .map(Some);
        }
        // Setting a reference is idempotent: sending it again after a reset is harmless.
        let sent = retrying(&self.job.retry, &w.source_id, || {
            self.target.update_user(&user.target_id, &changes)
        })
        .await;
        match sent {
            Ok(()) => {
                let mut now = confirmed;
                now.on = user.target_id.clone();
                for c in &changes {
                    match &c.value {
                        Value::String(target) => {
                            let manager = w
                                .wants
                                .iter()
                                .find(|x| x.path == c.path)
                                .and_then(|x| x.manager.clone())
                                .unwrap_or_default();
                            now.refs.insert(
                                c.path.clone(),
                                ConfirmedRef {
                                    manager,
                                    target: target.clone(),
                                },
                            );
                        }
                        _ => {
                            now.refs.remove(&c.path);
                        }
                    }
                }
                js.put_user_refs(&w.source_id, &now)?;
                self.finish(cx, rec, action, StateChange::None, None)
                    .map(Some)
            }
            Err(e) => {
                // Revisited at the next cycle like any pending reference.
                let mut retry = pending;
                for c in &changes {
                    if let Some(m) = w
                        .wants
                        .iter()
                        .find(|x| x.path == c.path)
                        .and_then(|x| x.manager.clone())
                    {
                        retry.insert(c.path.clone(), m);
                    }
                }
                if !retry.is_empty() {
                    js.put_pending_refs(&w.source_id, &retry)?;
                }
                let (code, message) = te(e);
                self.record(
                    cx,
                    rec,
                    action,
                    LogStatus::Failure,
                    Some((code, message)),
                    StateChange::None,
                    None,
                )
                .map(Some)
            }
        }
    }

    /// A reference left pending, logged under Entra's code for it.
    fn pending(
        &self,
        cx: &Cycle,
        mut rec: Rec,
        manager: String,
        note: String,
    ) -> Result<Processed, StoreError> {
        rec.step(
            "Resolve references",
            "referenceResolution",
            LogStatus::Skipped,
            note.clone(),
        );
        self.record(
            cx,
            rec,
            Action::ReferencePending { manager },
            LogStatus::Skipped,
            Some((UNRESOLVED, note)),
            StateChange::None,
            None,
        )
    }

    /// The referenced user's target id, when it is provisioned.
    fn manager_target(&self, manager: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .store
            .get(&self.job.name, manager)?
            .map(|s| s.target_id))
    }

    /// Preview of a user this cycle creates: its manager would be set right after.
    fn preview_new_user_refs(
        &self,
        cx: &Cycle,
        w: &UserRefWork,
        planned: &BTreeSet<String>,
    ) -> Result<Processed, StoreError> {
        let mut changes = Vec::new();
        let mut notes = Vec::new();
        for want in &w.wants {
            let Some(m) = &want.manager else { continue };
            let target = match self.manager_target(m)? {
                Some(t) => t,
                None if planned.contains(m) => "(the manager's new id)".to_string(),
                None => {
                    notes.push(format!("{}: manager {m} is not provisioned", want.path));
                    continue;
                }
            };
            changes.push(Change {
                op: ChangeOp::Add,
                path: want.path.clone(),
                value: Value::String(target),
            });
        }
        let mut rec = Rec::user(&w.source_id, &w.display, "", Vec::new(), self.clock.now());
        if changes.is_empty() {
            let manager = w
                .wants
                .iter()
                .filter_map(|x| x.manager.clone())
                .collect::<Vec<_>>()
                .join(",");
            return self.pending(cx, rec, manager, notes.join("; "));
        }
        rec.step(
            "Resolve references",
            "referenceResolution",
            LogStatus::Success,
            "after the user is created",
        );
        let action = Action::SetReference {
            target_id: "(the user's new id)".into(),
            changes,
        };
        self.finish(cx, rec, action, StateChange::None, None)
    }
}

/// A pending user read back from its state: its confirmed display name or user name.
fn display_of_state(st: &scimsync_core::ObjectState) -> String {
    ["displayName", "userName"]
        .iter()
        .find_map(|k| st.confirmed.get(*k).and_then(Value::as_str))
        .unwrap_or(&st.source_id)
        .to_string()
}

/// The error code Entra logs for a reference it could not resolve.
pub(crate) const UNRESOLVED: ErrorCode = ErrorCode::UnableToResolveReferenceAttributeValue;

#[cfg(test)]
mod tests {
    use super::*;

    fn want(m: Option<&str>) -> RefWant {
        RefWant {
            path: "manager".into(),
            manager: m.map(str::to_string),
        }
    }

    fn conf(m: &str, t: &str) -> ConfirmedRef {
        ConfirmedRef {
            manager: m.into(),
            target: t.into(),
        }
    }

    #[test]
    fn a_resolved_manager_is_added_then_kept_then_replaced() {
        let first = decide_reference(&want(Some("m1")), None, Some("T1"), false);
        assert!(
            matches!(first, RefDecision::Set(ref c) if c.op == ChangeOp::Add && c.value == "T1")
        );
        let same = decide_reference(
            &want(Some("m1")),
            Some(&conf("m1", "T1")),
            Some("T1"),
            false,
        );
        assert_eq!(same, RefDecision::Keep);
        let moved = decide_reference(
            &want(Some("m2")),
            Some(&conf("m1", "T1")),
            Some("T2"),
            false,
        );
        assert!(
            matches!(moved, RefDecision::Set(ref c) if c.op == ChangeOp::Replace && c.value == "T2")
        );
        // The manager was re-created in the target under a new id: sent again.
        let recreated = decide_reference(
            &want(Some("m1")),
            Some(&conf("m1", "T1")),
            Some("T9"),
            false,
        );
        assert!(matches!(recreated, RefDecision::Set(ref c) if c.value == "T9"));
    }

    #[test]
    fn an_unprovisioned_manager_is_pending() {
        assert_eq!(
            decide_reference(&want(Some("m1")), None, None, false),
            RefDecision::Pending
        );
        assert_eq!(
            decide_reference(&want(Some("m2")), Some(&conf("m1", "T1")), None, false),
            RefDecision::Pending
        );
    }

    #[test]
    fn a_cleared_manager_is_kept_unless_the_job_clears() {
        let c = conf("m1", "T1");
        assert_eq!(
            decide_reference(&want(None), Some(&c), None, false),
            RefDecision::Keep
        );
        assert!(matches!(
            decide_reference(&want(None), Some(&c), None, true),
            RefDecision::Clear(ref ch) if ch.op == ChangeOp::Remove
        ));
        assert_eq!(
            decide_reference(&want(None), None, None, true),
            RefDecision::Keep
        );
    }

    #[test]
    fn pending_references_join_the_cycles_wants_without_overriding_them() {
        let decided = vec![UserRefWork {
            source_id: "u1".into(),
            display: "U One".into(),
            wants: vec![want(Some("new"))],
        }];
        let mut pending = BTreeMap::new();
        pending.insert(
            "u1".to_string(),
            PendingRefs::from([("manager".to_string(), "old".to_string())]),
        );
        pending.insert(
            "u2".to_string(),
            PendingRefs::from([("manager".to_string(), "m".to_string())]),
        );
        let work = ref_work(decided, pending);
        assert_eq!(work.len(), 2);
        assert_eq!(work[0].wants, vec![want(Some("new"))]);
        assert_eq!(work[1].source_id, "u2");
        assert_eq!(work[1].wants, vec![want(Some("m"))]);
    }
}
