//! The job's state between cycles, typed: one place owns every meta key and record kind the
//! engine, the service and the CLI share (cycles completed, last cycle, watermarks, escrows,
//! held deletions and their approval, quarantine, reconcile time).
//!
//! A value that cannot be decoded is an error that names the job and the key: a damaged store
//! is reported, never silently read as "nothing there" (which would re-match or re-arm).

use crate::escrow::Escrow;
use crate::report::CycleKind;
use chrono::{DateTime, Utc};
use scimsync_core::{ErrorCode, StateStore, StoreError};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const CYCLES: &str = "cycles_completed";
#[cfg(test)]
pub(crate) const CYCLES_KEY: &str = CYCLES;
const LAST_CYCLE: &str = "last_cycle";
const HELD: &str = "deletions_held";
const APPROVAL: &str = "deletions_approved";
const QUARANTINE: &str = "quarantine";
const LAST_RECONCILE: &str = "last_reconcile";
const LOGS_PRUNED: &str = "logs_pruned";
pub(crate) const USERS_WATERMARK: &str = "watermark.users";
pub(crate) const GROUPS_WATERMARK: &str = "watermark.groups";
pub(crate) const FINGERPRINT: &str = "fingerprint";
/// Digest of the last committed effective assignments (see `read::assignments_digest`).
pub(crate) const ASSIGNMENTS_DIGEST: &str = "assignments_digest";
/// `{fingerprint}/{epoch}`: the last applied cycle brought every in-scope group's membership to
/// its plan, each batch confirmed by the target and recorded (no group failed or waits in
/// escrow). A cycle in which nothing that membership depends on changed (no group in the
/// delta, no user acted on, no escrow) then skips the comparison; any other cycle removes the
/// marker (durably) before it writes membership.
pub(crate) const MEMBERSHIP_SETTLED: &str = "membership_settled";
/// Changed by whatever writes users or members outside a cycle (provision on demand), so a
/// settled marker set by a cycle that started before such a write no longer matches.
pub(crate) const MEMBERSHIP_EPOCH: &str = "membership_epoch";
/// Record kinds.
pub(crate) const ESCROW: &str = "escrow";
pub(crate) const ASSIGNED: &str = "assigned";
pub(crate) const GROUP_MIRROR: &str = "group";
pub(crate) const REFS: &str = "ref";
pub(crate) const REFS_PENDING: &str = "refpending";

/// The last completed apply cycle, as `status`, the service and the dashboard show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LastCycle {
    pub cycle_id: String,
    pub kind: CycleKind,
    pub started: DateTime<Utc>,
    pub finished: DateTime<Utc>,
    pub tally: crate::Tally,
    pub source_users: usize,
    pub full_read: bool,
    /// Disables and deletes the cycle held back (0 when none).
    #[serde(default)]
    pub held: usize,
    pub deletions_held: bool,
    #[serde(default)]
    pub notes: Vec<String>,
}

/// One disable or delete a cycle held back.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeldOp {
    /// State id (`group:` prefix for groups).
    pub source_id: String,
    pub display_name: String,
    pub target_id: String,
    /// `disable` or `delete`.
    pub action: String,
}

/// The disables and deletes the last cycle held back, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeldDeletions {
    pub cycle_id: String,
    pub at: DateTime<Utc>,
    pub reasons: Vec<String>,
    pub ops: Vec<HeldOp>,
    /// Digest of `ops`: what an approval names.
    pub fingerprint: String,
}

impl HeldDeletions {
    pub fn new(
        cycle_id: &str,
        at: DateTime<Utc>,
        reasons: Vec<String>,
        mut ops: Vec<HeldOp>,
    ) -> Self {
        ops.sort();
        let fingerprint = held_fingerprint(&ops);
        HeldDeletions {
            cycle_id: cycle_id.to_string(),
            at,
            reasons,
            ops,
            fingerprint,
        }
    }
}

/// An admin's approval of exactly one held set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeletionApproval {
    pub approved_at: DateTime<Utc>,
    /// The fingerprint of the held set approved.
    pub fingerprint: String,
    /// The state ids approved: a later cycle may send these disables and deletes, and only
    /// these; any other one holds again.
    pub ids: Vec<String>,
}

/// What `approve-deletions` did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "camelCase")]
pub enum ApproveOutcome {
    /// No cycle holds anything: nothing was armed.
    NothingHeld,
    /// The held set was approved; the next cycle sends it.
    Approved { held: HeldDeletions },
    /// The caller named a fingerprint that is not the held set's (it changed since they
    /// looked): nothing was armed.
    Mismatch { held: HeldDeletions },
}

/// Digest of a held set (FNV-1a over its sorted ops): stable across runs and machines.
fn held_fingerprint(ops: &[HeldOp]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for op in ops {
        for part in [&op.source_id, &op.target_id, &op.action] {
            for b in part.bytes().chain([0u8]) {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        }
    }
    format!("{h:016x}")
}

/// Typed access to one job's state.
pub struct JobState<'a> {
    store: &'a dyn StateStore,
    job: &'a str,
}

impl<'a> JobState<'a> {
    pub fn new(store: &'a dyn StateStore, job: &'a str) -> Self {
        JobState { store, job }
    }

    pub fn store(&self) -> &'a dyn StateStore {
        self.store
    }

    fn corrupt(&self, key: &str, e: impl std::fmt::Display) -> StoreError {
        StoreError {
            code: ErrorCode::StateStoreFailed,
            message: format!(
                "state of job {} is damaged: the value under `{key}` cannot be read ({e}); \
                 run `scimsync restart --scope full` to start over, or restore a backup",
                self.job
            ),
        }
    }

    fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        match self.store.get_meta(self.job, key)? {
            None => Ok(None),
            Some(v) => serde_json::from_str(&v)
                .map(Some)
                .map_err(|e| self.corrupt(key, e)),
        }
    }

    fn put_json<T: Serialize>(&self, key: &str, v: &T) -> Result<(), StoreError> {
        let text = serde_json::to_string(v).map_err(|e| StoreError::new(e.to_string()))?;
        self.store.put_meta(self.job, key, &text)
    }

    /// Apply cycles completed; 0 means the next one is initial.
    pub fn cycles_completed(&self) -> Result<u64, StoreError> {
        match self.store.get_meta(self.job, CYCLES)? {
            None => Ok(0),
            Some(v) => v.trim().parse().map_err(|e| self.corrupt(CYCLES, e)),
        }
    }

    pub(crate) fn set_cycles_completed(&self, n: u64) -> Result<(), StoreError> {
        self.store.put_meta(self.job, CYCLES, &n.to_string())
    }

    pub fn last_cycle(&self) -> Result<Option<LastCycle>, StoreError> {
        self.get_json(LAST_CYCLE)
    }

    pub fn set_last_cycle(&self, c: &LastCycle) -> Result<(), StoreError> {
        self.put_json(LAST_CYCLE, c)
    }

    pub(crate) fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.store.get_meta(self.job, key)
    }

    pub(crate) fn set_meta(&self, key: &str, v: &str) -> Result<(), StoreError> {
        self.store.put_meta(self.job, key, v)
    }

    pub fn last_reconcile(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        match self.store.get_meta(self.job, LAST_RECONCILE)? {
            None => Ok(None),
            Some(v) => DateTime::parse_from_rfc3339(&v)
                .map(|t| Some(t.with_timezone(&Utc)))
                .map_err(|e| self.corrupt(LAST_RECONCILE, e)),
        }
    }

    pub(crate) fn set_last_reconcile(&self, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.store
            .put_meta(self.job, LAST_RECONCILE, &at.to_rfc3339())
    }

    /// When the provisioning log was last pruned (unreadable reads as never: prune again).
    pub(crate) fn logs_pruned(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(self
            .store
            .get_meta(self.job, LOGS_PRUNED)?
            .and_then(|v| DateTime::parse_from_rfc3339(&v).ok())
            .map(|t| t.with_timezone(&Utc)))
    }

    pub(crate) fn set_logs_pruned(&self, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.store.put_meta(self.job, LOGS_PRUNED, &at.to_rfc3339())
    }

    /// Every record of `kind`, decoded, by id.
    fn records_json<T: DeserializeOwned>(
        &self,
        kind: &str,
    ) -> Result<BTreeMap<String, T>, StoreError> {
        self.store
            .list_records(self.job, kind)?
            .into_iter()
            .map(|(id, v)| {
                serde_json::from_str(&v)
                    .map(|e| (id.clone(), e))
                    .map_err(|e| self.corrupt(&format!("rec/{kind}/{id}"), e))
            })
            .collect()
    }

    /// Every object in escrow, by state id.
    pub fn escrows(&self) -> Result<BTreeMap<String, Escrow>, StoreError> {
        self.records_json(ESCROW)
    }

    pub fn escrow_count(&self) -> Result<usize, StoreError> {
        Ok(self.store.list_records(self.job, ESCROW)?.len())
    }

    pub(crate) fn put_escrow(&self, e: &Escrow) -> Result<(), StoreError> {
        let v = serde_json::to_string(e).map_err(|e| StoreError::new(e.to_string()))?;
        self.store.put_record(self.job, ESCROW, &e.source_id, &v)
    }

    pub(crate) fn remove_escrow(&self, id: &str) -> Result<(), StoreError> {
        self.store.remove_record(self.job, ESCROW, id)
    }

    /// Drop every escrow (a restart): returns how many there were.
    pub fn clear_escrows(&self) -> Result<usize, StoreError> {
        let all = self.store.list_records(self.job, ESCROW)?;
        for (id, _) in &all {
            self.store.remove_record(self.job, ESCROW, id)?;
        }
        Ok(all.len())
    }

    fn get_record_json<T: DeserializeOwned>(
        &self,
        kind: &str,
        id: &str,
    ) -> Result<Option<T>, StoreError> {
        match self.store.get_record(self.job, kind, id)? {
            None => Ok(None),
            Some(v) => serde_json::from_str(&v)
                .map(Some)
                .map_err(|e| self.corrupt(&format!("rec/{kind}/{id}"), e)),
        }
    }

    fn put_record_json<T: Serialize>(&self, kind: &str, id: &str, v: &T) -> Result<(), StoreError> {
        let text = serde_json::to_string(v).map_err(|e| StoreError::new(e.to_string()))?;
        self.store.put_record(self.job, kind, id, &text)
    }

    /// The references a user's target object holds, as far as we know.
    pub(crate) fn user_refs(
        &self,
        user: &str,
    ) -> Result<Option<crate::references::UserRefs>, StoreError> {
        self.get_record_json(REFS, user)
    }

    pub(crate) fn put_user_refs(
        &self,
        user: &str,
        refs: &crate::references::UserRefs,
    ) -> Result<(), StoreError> {
        self.put_record_json(REFS, user, refs)
    }

    /// A user's references waiting for their manager.
    pub(crate) fn pending_refs(
        &self,
        user: &str,
    ) -> Result<Option<crate::references::PendingRefs>, StoreError> {
        self.get_record_json(REFS_PENDING, user)
    }

    pub(crate) fn put_pending_refs(
        &self,
        user: &str,
        refs: &crate::references::PendingRefs,
    ) -> Result<(), StoreError> {
        self.put_record_json(REFS_PENDING, user, refs)
    }

    pub(crate) fn remove_pending_refs(&self, user: &str) -> Result<(), StoreError> {
        self.store.remove_record(self.job, REFS_PENDING, user)
    }

    /// Every pending reference, by user: what each cycle tries again.
    pub fn all_pending_refs(
        &self,
    ) -> Result<BTreeMap<String, BTreeMap<String, String>>, StoreError> {
        self.records_json(REFS_PENDING)
    }

    /// Make every escrowed object due now (a restart): returns how many.
    pub fn make_escrows_due(&self) -> Result<usize, StoreError> {
        let all = self.escrows()?;
        for e in all.values() {
            let mut e = e.clone();
            e.next_retry = DateTime::<Utc>::UNIX_EPOCH;
            self.put_escrow(&e)?;
        }
        Ok(all.len())
    }

    /// What the last cycle held back, if it held anything (never an empty set).
    pub fn held(&self) -> Result<Option<HeldDeletions>, StoreError> {
        Ok(self
            .get_json::<HeldDeletions>(HELD)?
            .filter(|h| !h.ops.is_empty()))
    }

    pub(crate) fn set_held(&self, h: Option<&HeldDeletions>) -> Result<(), StoreError> {
        match h {
            Some(h) => self.put_json(HELD, h),
            None => self.store.remove_meta(self.job, HELD),
        }
    }

    pub fn approval(&self) -> Result<Option<DeletionApproval>, StoreError> {
        match self.store.get_meta(self.job, APPROVAL)? {
            None => Ok(None),
            // The boolean of earlier versions approved whatever came next: it is not an
            // approval of a known set, so it arms nothing.
            Some(v) if v == "true" => Ok(None),
            Some(v) => serde_json::from_str(&v)
                .map(Some)
                .map_err(|e| self.corrupt(APPROVAL, e)),
        }
    }

    pub(crate) fn clear_approval(&self) -> Result<(), StoreError> {
        self.store.remove_meta(self.job, APPROVAL)
    }

    /// Entra's "Allow deletes": approve exactly the set the last cycle held. With
    /// `expect`, approve only when the held set still has that fingerprint (what the admin
    /// was shown). Nothing held arms nothing.
    pub fn approve_deletions(
        &self,
        expect: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<ApproveOutcome, StoreError> {
        let Some(held) = self.held()? else {
            self.clear_approval()?;
            return Ok(ApproveOutcome::NothingHeld);
        };
        if expect.is_some_and(|f| f != held.fingerprint) {
            return Ok(ApproveOutcome::Mismatch { held });
        }
        let approval = DeletionApproval {
            approved_at: now,
            fingerprint: held.fingerprint.clone(),
            ids: held.ops.iter().map(|o| o.source_id.clone()).collect(),
        };
        self.put_json(APPROVAL, &approval)?;
        self.store.flush()?;
        Ok(ApproveOutcome::Approved { held })
    }

    /// The quarantine record (its type belongs to the service).
    pub fn quarantine<T: DeserializeOwned>(&self) -> Result<Option<T>, StoreError> {
        self.get_json(QUARANTINE)
    }

    pub fn has_quarantine(&self) -> Result<bool, StoreError> {
        Ok(self.store.get_meta(self.job, QUARANTINE)?.is_some())
    }

    pub fn set_quarantine<T: Serialize>(&self, q: Option<&T>) -> Result<(), StoreError> {
        match q {
            Some(q) => self.put_json(QUARANTINE, q),
            None => self.store.remove_meta(self.job, QUARANTINE),
        }
    }

    /// Forget the watermarks and the cycle count: the next cycle is a full, initial one.
    pub(crate) fn forget_watermarks(&self) -> Result<(), StoreError> {
        for key in [
            USERS_WATERMARK,
            GROUPS_WATERMARK,
            FINGERPRINT,
            CYCLES,
            ASSIGNMENTS_DIGEST,
            MEMBERSHIP_SETTLED,
        ] {
            self.store.remove_meta(self.job, key)?;
        }
        Ok(())
    }

    /// The marker a cycle that started at membership epoch `epoch` leaves when it finds the
    /// membership settled (see [`MEMBERSHIP_SETTLED`]).
    pub(crate) fn settled_marker(fingerprint: &str, epoch: &str) -> String {
        format!("{fingerprint}/{epoch}")
    }

    /// Forget that membership was settled, durably: called before membership is written, so
    /// that a crash after the target accepted a batch but before its records were stored
    /// cannot leave a marker that would skip the repair.
    pub(crate) fn unsettle_membership(&self) -> Result<(), StoreError> {
        if self.meta(MEMBERSHIP_SETTLED)?.is_some() {
            self.store.remove_meta(self.job, MEMBERSHIP_SETTLED)?;
            self.store.flush()?;
        }
        Ok(())
    }

    /// Users or members are about to change outside a cycle: no settled marker set before now
    /// (or by a cycle running now) matches afterwards.
    pub(crate) fn new_membership_epoch(&self, epoch: &str) -> Result<(), StoreError> {
        self.store.put_meta(self.job, MEMBERSHIP_EPOCH, epoch)?;
        self.store.remove_meta(self.job, MEMBERSHIP_SETTLED)?;
        self.store.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scimsync_store::MemoryStore;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-01T08:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn op(id: &str) -> HeldOp {
        HeldOp {
            source_id: id.into(),
            display_name: id.into(),
            target_id: format!("t-{id}"),
            action: "disable".into(),
        }
    }

    #[test]
    fn approving_with_nothing_held_arms_nothing() {
        let s = MemoryStore::new();
        let js = JobState::new(&s, "j");
        assert_eq!(
            js.approve_deletions(None, t0()).unwrap(),
            ApproveOutcome::NothingHeld
        );
        assert!(js.approval().unwrap().is_none());
    }

    #[test]
    fn an_approval_names_exactly_the_held_set() {
        let s = MemoryStore::new();
        let js = JobState::new(&s, "j");
        let held = HeldDeletions::new("c1", t0(), vec!["threshold".into()], vec![op("b"), op("a")]);
        js.set_held(Some(&held)).unwrap();
        let out = js.approve_deletions(Some("not-it"), t0()).unwrap();
        assert!(matches!(out, ApproveOutcome::Mismatch { .. }));
        assert!(
            js.approval().unwrap().is_none(),
            "a stale fingerprint arms nothing"
        );
        let out = js.approve_deletions(Some(&held.fingerprint), t0()).unwrap();
        assert!(matches!(out, ApproveOutcome::Approved { .. }));
        let a = js.approval().unwrap().unwrap();
        assert_eq!(a.ids, vec!["a".to_string(), "b".to_string()]);
        assert_eq!(a.fingerprint, held.fingerprint);
    }

    #[test]
    fn the_legacy_boolean_approval_arms_nothing() {
        let s = MemoryStore::new();
        s.put_meta("j", APPROVAL, "true").unwrap();
        assert!(JobState::new(&s, "j").approval().unwrap().is_none());
    }

    #[test]
    fn a_garbled_value_is_reported_not_read_as_absent() {
        let s = MemoryStore::new();
        s.put_meta("j", CYCLES, "seven").unwrap();
        s.put_record("j", ESCROW, "u1", "{not json").unwrap();
        let js = JobState::new(&s, "j");
        let e = js.cycles_completed().unwrap_err();
        assert!(e.message.contains("cycles_completed"), "{e}");
        let e = js.escrows().unwrap_err();
        assert!(e.message.contains("rec/escrow/u1"), "{e}");
    }
}
