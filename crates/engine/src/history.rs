//! Recent-cycle history and cumulative counts ("Statistics to date"), kept in job meta.
//!
//! The engine itself keeps only the last cycle (`META_LAST_CYCLE`); dashboards and metrics
//! need more, so whoever runs apply cycles (the `run` command, the service) calls
//! [`record_cycle_history`] after each one. History is bounded ([`HISTORY_LEN`]) so the meta
//! value stays small; the totals only grow (they are Prometheus counters).

use crate::report::{CycleKind, CycleReport, Mode, Tally};
use chrono::{DateTime, Duration, Utc};
use scimsync_core::{StateStore, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Meta key: JSON list of the last [`HISTORY_LEN`] [`CycleSummary`]s, oldest first.
pub const META_CYCLE_HISTORY: &str = "cycle_history";
/// Meta key: JSON [`CycleTotals`], cumulative since the job's state was created.
pub const META_CYCLE_TOTALS: &str = "cycle_totals";
/// Cycle summaries kept per job.
pub const HISTORY_LEN: usize = 50;

/// One finished apply cycle, small enough to keep fifty of.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CycleSummary {
    pub cycle_id: String,
    /// `initial` or `incremental`.
    pub kind: String,
    pub started: DateTime<Utc>,
    pub finished: DateTime<Utc>,
    pub duration_ms: u64,
    /// Objects written to the target (created, updated, disabled, deleted).
    pub changed: usize,
    pub failed: usize,
    pub skipped: usize,
    pub staged_deletes: usize,
    pub deletions_held: bool,
    pub full_read: bool,
}

impl CycleSummary {
    pub fn from_report(r: &CycleReport) -> Self {
        let Tally {
            created,
            updated,
            disabled,
            deleted,
            failed,
            skipped,
            staged_deletes,
            ..
        } = r.tally;
        CycleSummary {
            cycle_id: r.cycle_id.clone(),
            kind: match r.kind {
                CycleKind::Initial => "initial".into(),
                CycleKind::Incremental => "incremental".into(),
            },
            started: r.started,
            finished: r.finished,
            duration_ms: u64::try_from((r.finished - r.started).num_milliseconds()).unwrap_or(0),
            changed: created + updated + disabled + deleted,
            failed,
            skipped,
            staged_deletes,
            deletions_held: r.deletions_held,
            full_read: r.full_read,
        }
    }
}

/// Cumulative counts across cycles, like Entra's "Statistics to date".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CycleTotals {
    pub cycles: u64,
    /// Sum of cycle durations, for a mean.
    pub duration_ms: u64,
    /// Reported objects by provisioning action (`create`, `update`, …, as in the log) and
    /// status (`success`, `failure`, …).
    pub operations: BTreeMap<String, BTreeMap<String, u64>>,
    pub last_cycle_id: Option<String>,
    pub last_finished: Option<DateTime<Utc>>,
}

fn encode<T: Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::new(format!("encoding cycle history: {e}")))
}

fn lower<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_ascii_lowercase))
        .unwrap_or_else(|| "other".into())
}

/// Append the cycle to the job's history and totals. Previews are ignored (they changed
/// nothing). Call once per apply cycle, after the engine returned its report.
pub fn record_cycle_history(
    store: &dyn StateStore,
    job: &str,
    report: &CycleReport,
) -> Result<(), StoreError> {
    if report.mode == Mode::Preview {
        return Ok(());
    }
    let mut history = cycle_history(store, job)?;
    if history.iter().any(|c| c.cycle_id == report.cycle_id) {
        // Recorded already (a caller retried): counting it twice would inflate the totals.
        return Ok(());
    }
    let summary = CycleSummary::from_report(report);
    let mut totals = cycle_totals(store, job)?;
    totals.cycles += 1;
    totals.duration_ms += summary.duration_ms;
    totals.last_cycle_id = Some(summary.cycle_id.clone());
    totals.last_finished = Some(summary.finished);
    let listed = report
        .objects
        .iter()
        .map(|o| (o.action.log_action(), o.status));
    for (action, status) in listed.chain(report.unlisted.operations.iter().copied()) {
        let action = lower(&action);
        let status = lower(&status);
        *totals
            .operations
            .entry(action)
            .or_default()
            .entry(status)
            .or_default() += 1;
    }
    history.push(summary);
    let excess = history.len().saturating_sub(HISTORY_LEN);
    history.drain(..excess);
    store.put_meta(job, META_CYCLE_HISTORY, &encode(&history)?)?;
    store.put_meta(job, META_CYCLE_TOTALS, &encode(&totals)?)?;
    Ok(())
}

/// The job's recent cycles, oldest first (empty when none was recorded or the value is
/// unreadable: history is a convenience, never a reason to fail).
pub fn cycle_history(store: &dyn StateStore, job: &str) -> Result<Vec<CycleSummary>, StoreError> {
    Ok(store
        .get_meta(job, META_CYCLE_HISTORY)?
        .and_then(|v| serde_json::from_str(&v).ok())
        .unwrap_or_default())
}

/// The job's cumulative counts.
pub fn cycle_totals(store: &dyn StateStore, job: &str) -> Result<CycleTotals, StoreError> {
    Ok(store
        .get_meta(job, META_CYCLE_TOTALS)?
        .and_then(|v| serde_json::from_str(&v).ok())
        .unwrap_or_default())
}

/// Log entries older than this are pruned for a job with `log_retention_days` (0 keeps
/// everything: `None`). Pass the result to the store's `prune_logs`.
pub fn log_retention_cutoff(now: DateTime<Utc>, log_retention_days: u32) -> Option<DateTime<Utc>> {
    (log_retention_days > 0).then(|| now - Duration::days(i64::from(log_retention_days)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Action, ObjectReport, ObjectType};
    use scimsync_core::LogStatus;
    use scimsync_store::MemoryStore;

    fn report(id: &str, failed: bool) -> CycleReport {
        let t0 = DateTime::parse_from_rfc3339("2026-03-02T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut r = CycleReport {
            job: "app".into(),
            cycle_id: id.into(),
            kind: CycleKind::Incremental,
            mode: Mode::Apply,
            started: t0,
            finished: t0 + Duration::seconds(3),
            source_users: 1,
            full_read: false,
            notes: Vec::new(),
            deletions_held: false,
            hold_reasons: Vec::new(),
            out_of_scope_unlogged: 0,
            tally: Tally::default(),
            phases: Default::default(),
            objects_not_listed: 0,
            unlisted: Default::default(),
            objects: vec![ObjectReport {
                object_type: ObjectType::User,
                source_id: "u1".into(),
                display_name: "Ada".into(),
                scope: String::new(),
                matched_by: None,
                action: Action::Create {
                    attrs: Default::default(),
                },
                status: if failed {
                    LogStatus::Failure
                } else {
                    LogStatus::Success
                },
                error_code: None,
                error: None,
                members_added: Vec::new(),
                members_removed: Vec::new(),
                members_left_out: Vec::new(),
                steps: Vec::new(),
            }],
        };
        r.count();
        r
    }

    #[test]
    fn history_is_bounded_and_totals_accumulate_once_per_cycle() {
        let store = MemoryStore::new();
        for i in 0..(HISTORY_LEN + 5) {
            record_cycle_history(&store, "app", &report(&format!("c{i}"), i % 2 == 0)).unwrap();
        }
        // Recording the same cycle again changes nothing.
        record_cycle_history(&store, "app", &report("c54", false)).unwrap();
        let h = cycle_history(&store, "app").unwrap();
        assert_eq!(h.len(), HISTORY_LEN);
        assert_eq!(h[0].cycle_id, "c5");
        assert_eq!(h.last().unwrap().duration_ms, 3000);
        let t = cycle_totals(&store, "app").unwrap();
        assert_eq!(t.cycles, 55);
        assert_eq!(t.operations["create"]["failure"], 28);
        assert_eq!(t.operations["create"]["success"], 27);
    }

    #[test]
    fn previews_are_not_recorded_and_zero_retention_keeps_everything() {
        let store = MemoryStore::new();
        let mut r = report("p", false);
        r.mode = Mode::Preview;
        record_cycle_history(&store, "app", &r).unwrap();
        assert!(cycle_history(&store, "app").unwrap().is_empty());
        assert_eq!(
            log_retention_cutoff(DateTime::from_timestamp(1_790_000_000, 0).unwrap(), 0),
            None
        );
        let now = DateTime::from_timestamp(1_790_000_000, 0).unwrap();
        assert_eq!(log_retention_cutoff(now, 7), Some(now - Duration::days(7)));
    }
}
