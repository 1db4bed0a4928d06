//! Quarantine (reference §2.4): when a job is quarantined, with Entra's reason names, and how
//! it leaves. Pure: the caller passes the cycle's outcome, the escrow counts and `now`.
//!
//! Triggers, checked in this order:
//! 1. `EncounteredQuarantineException` — credentials or connectivity, whatever the counts:
//!    a source read that failed after the Graph client's own retries (token refused, Graph
//!    unreachable), a target object that failed with 401/403, or a cycle in which every
//!    failed object failed with a connection error or timeout and nothing reached the target.
//!    A 404 on a filter query (`ScimComplianceIssue`) also maps here: Entra's portal calls it
//!    "SCIM compliance issue", but Graph's `quarantineReason` enum has no value for it, and
//!    the exception is the reason Entra reports for target-side faults; the error code in
//!    [`QuarantineState::error_code`] says which.
//! 2. `TooManyDeletes` — the cycle held its disables and deletes (the deletion threshold, a
//!    sudden drop of the provisioned objects, or an empty source read while objects are
//!    provisioned); the job waits for `approve-deletions`, which approves exactly the held set
//!    (the engine's `JobState::held`) and lifts this quarantine.
//! 3. The escrow thresholds, evaluated from `threshold_min_failures` failures:
//!    more than `threshold_ratio` of the objects failed → `EncounteredEscrowProportionThreshold`;
//!    more than `threshold_non_reference` non-reference failures → `EncounteredBaseEscrowThreshold`;
//!    more than `threshold_total` failures in all → `EncounteredTotalEscrowThreshold`.
//!
//! A job leaves quarantine by itself when a cycle completes without a trigger, by a restart,
//! and for `TooManyDeletes` when its held set is approved or no longer held.
//! A store failure is a local problem, not the target's: it fails the cycle without
//! quarantining.

use chrono::{DateTime, Duration, Utc};
use scimsync_config::Quarantine;
use scimsync_core::ErrorCode;
use scimsync_engine::{CycleError, CycleReport};
use serde::{Deserialize, Serialize};

/// Graph's `quarantineReason` values that scimsync can reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum QuarantineReason {
    EncounteredBaseEscrowThreshold,
    EncounteredTotalEscrowThreshold,
    EncounteredEscrowProportionThreshold,
    EncounteredQuarantineException,
    TooManyDeletes,
}

impl QuarantineReason {
    pub fn as_str(self) -> &'static str {
        match self {
            QuarantineReason::EncounteredBaseEscrowThreshold => "EncounteredBaseEscrowThreshold",
            QuarantineReason::EncounteredTotalEscrowThreshold => "EncounteredTotalEscrowThreshold",
            QuarantineReason::EncounteredEscrowProportionThreshold => {
                "EncounteredEscrowProportionThreshold"
            }
            QuarantineReason::EncounteredQuarantineException => "EncounteredQuarantineException",
            QuarantineReason::TooManyDeletes => "TooManyDeletes",
        }
    }
}

impl std::fmt::Display for QuarantineReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A job's quarantine, stored through the engine's `JobState::set_quarantine`. Field names
/// follow Graph's `synchronizationQuarantine`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuarantineState {
    pub reason: QuarantineReason,
    /// When this quarantine series began (Graph `seriesBegan`); the 4-week limit counts from here.
    pub series_began: DateTime<Utc>,
    /// When the current reason began (Graph `currentBegan`).
    pub current_began: DateTime<Utc>,
    /// The next cycle (Graph `nextAttempt`).
    pub next_attempt: DateTime<Utc>,
    /// Quarantined cycles in this series (Graph `seriesCount`).
    pub series_count: u32,
    pub error_code: Option<ErrorCode>,
    /// What went wrong, for the admin (never holds secrets: it comes from error messages).
    pub error: String,
    /// Quarantined longer than `disable_after`: no more cycles until started or restarted.
    #[serde(default)]
    pub disabled: bool,
}

/// Why a cycle should quarantine its job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    pub reason: QuarantineReason,
    pub error_code: Option<ErrorCode>,
    pub error: String,
}

/// Failure counts for the escrow thresholds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EscrowCounts {
    /// Objects failing on their own (escrowed or permanently failed).
    pub failed: u64,
    /// Manager/member reference failures (counted only toward the total threshold).
    pub reference_failed: u64,
    /// Objects provisioned without failure.
    pub succeeded: u64,
}

/// The escrow thresholds of reference §2.4.
pub fn escrow_threshold(c: &EscrowCounts, q: &Quarantine) -> Option<QuarantineReason> {
    let total = c.failed + c.reference_failed;
    if total < q.threshold_min_failures {
        return None;
    }
    let attempted = c.failed + c.succeeded;
    if attempted > 0 && (c.failed as f64 / attempted as f64) > q.threshold_ratio {
        return Some(QuarantineReason::EncounteredEscrowProportionThreshold);
    }
    if c.failed > q.threshold_non_reference {
        return Some(QuarantineReason::EncounteredBaseEscrowThreshold);
    }
    if total > q.threshold_total {
        return Some(QuarantineReason::EncounteredTotalEscrowThreshold);
    }
    None
}

fn is_credentials(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::Unauthorized | ErrorCode::InsufficientRights | ErrorCode::ScimComplianceIssue
    )
}

fn is_connectivity(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::WebExceptionProtocolError | ErrorCode::Timeout
    )
}

/// Whether a cycle's outcome quarantines the job.
pub fn evaluate(
    outcome: &Result<CycleReport, CycleError>,
    counts: &EscrowCounts,
    policy: &Quarantine,
) -> Option<Trigger> {
    let report = match outcome {
        Err(CycleError::Store(_)) | Err(CycleError::NotFound(_)) => return None,
        Err(e) => {
            return Some(Trigger {
                reason: QuarantineReason::EncounteredQuarantineException,
                error_code: Some(e.code()),
                error: e.to_string(),
            });
        }
        Ok(r) => r,
    };
    let failures: Vec<_> = report
        .objects
        .iter()
        .filter_map(|o| o.error_code.map(|c| (c, o)))
        .collect();
    if let Some((code, o)) = failures.iter().find(|(c, _)| is_credentials(*c)) {
        return Some(Trigger {
            reason: QuarantineReason::EncounteredQuarantineException,
            error_code: Some(*code),
            error: format!(
                "{code} from the target while provisioning {}: {}",
                o.display_name,
                o.error.as_deref().unwrap_or("")
            ),
        });
    }
    let t = &report.tally;
    let reached_target = t.created + t.updated + t.disabled + t.deleted + t.linked > 0;
    if !failures.is_empty() && !reached_target && failures.iter().all(|(c, _)| is_connectivity(*c))
    {
        let (code, o) = failures[0];
        return Some(Trigger {
            reason: QuarantineReason::EncounteredQuarantineException,
            error_code: Some(code),
            error: format!(
                "the target could not be reached ({code}): {}",
                o.error.as_deref().unwrap_or("")
            ),
        });
    }
    if report.deletions_held {
        let why = if report.hold_reasons.is_empty() {
            "the deletion guards".to_string()
        } else {
            report.hold_reasons.join("; ")
        };
        return Some(Trigger {
            reason: QuarantineReason::TooManyDeletes,
            error_code: None,
            error: format!(
                "{} disables and deletes were held ({why}); review and approve exactly that \
                 set (`scimsync approve-deletions`), or fix the source and restart the job",
                report.tally.staged_deletes
            ),
        });
    }
    escrow_threshold(counts, policy).map(|reason| Trigger {
        reason,
        error_code: None,
        error: format!(
            "{} objects failed ({} succeeded)",
            counts.failed + counts.reference_failed,
            counts.succeeded
        ),
    })
}

/// What changed in a job's quarantine after a cycle; each one is notified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Entered,
    ReasonChanged { from: QuarantineReason },
    Left { was: QuarantineReason },
    Disabled,
}

/// The quarantine after a cycle that ended at `now`. `base` is the job's normal period;
/// the next attempt backs off from it. Returns the new state and what to notify.
pub fn apply(
    previous: Option<&QuarantineState>,
    trigger: Option<Trigger>,
    now: DateTime<Utc>,
    base: Duration,
    policy: &Quarantine,
) -> (Option<QuarantineState>, Option<Change>) {
    let max = Duration::from_std(policy.backoff_max).unwrap_or(Duration::days(1));
    let disable_after = Duration::from_std(policy.disable_after).unwrap_or(Duration::days(28));
    match (previous, trigger) {
        (None, None) => (None, None),
        (Some(p), None) => (None, Some(Change::Left { was: p.reason })),
        (None, Some(t)) => {
            let state = QuarantineState {
                reason: t.reason,
                series_began: now,
                current_began: now,
                next_attempt: now + crate::schedule::backoff(base, 1, max),
                series_count: 1,
                error_code: t.error_code,
                error: t.error,
                disabled: false,
            };
            (Some(state), Some(Change::Entered))
        }
        (Some(p), Some(t)) => {
            let series_count = p.series_count.saturating_add(1);
            let mut state = QuarantineState {
                reason: t.reason,
                series_began: p.series_began,
                current_began: if p.reason == t.reason {
                    p.current_began
                } else {
                    now
                },
                next_attempt: now + crate::schedule::backoff(base, series_count, max),
                series_count,
                error_code: t.error_code,
                error: t.error,
                disabled: p.disabled,
            };
            let change = if !p.disabled
                && crate::schedule::should_disable(p.series_began, now, disable_after)
            {
                state.disabled = true;
                Some(Change::Disabled)
            } else if p.reason != t.reason {
                Some(Change::ReasonChanged { from: p.reason })
            } else {
                None
            };
            (Some(state), change)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(failed: u64, succeeded: u64) -> EscrowCounts {
        EscrowCounts {
            failed,
            reference_failed: 0,
            succeeded,
        }
    }

    #[test]
    fn escrow_thresholds_match_the_reference_examples() {
        let q = Quarantine::default();
        // §2.4: 45,000 fail → yes; 30,000 fail + 5,000 ok → yes; 20,000 fail + 100,000 ok → no.
        assert!(escrow_threshold(&counts(45_000, 0), &q).is_some());
        assert_eq!(
            escrow_threshold(&counts(30_000, 5_000), &q),
            Some(QuarantineReason::EncounteredEscrowProportionThreshold)
        );
        assert_eq!(escrow_threshold(&counts(20_000, 100_000), &q), None);
        // Below the minimum nothing is evaluated, even at 100 %.
        assert_eq!(escrow_threshold(&counts(4_999, 0), &q), None);
        // Base: 41,000 of 200,000 is 17 %, but over 40,000 non-reference failures.
        assert_eq!(
            escrow_threshold(&counts(41_000, 159_000), &q),
            Some(QuarantineReason::EncounteredBaseEscrowThreshold)
        );
        // Total: references push it over 60,000.
        let c = EscrowCounts {
            failed: 30_000,
            reference_failed: 31_000,
            succeeded: 200_000,
        };
        assert_eq!(
            escrow_threshold(&c, &q),
            Some(QuarantineReason::EncounteredTotalEscrowThreshold)
        );
    }

    fn trigger(reason: QuarantineReason) -> Trigger {
        Trigger {
            reason,
            error_code: None,
            error: "x".into(),
        }
    }

    #[test]
    fn entering_backing_off_changing_reason_and_leaving() {
        let q = Quarantine::default();
        let base = Duration::minutes(40);
        let t0 = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let exc = QuarantineReason::EncounteredQuarantineException;
        let (s1, c1) = apply(None, Some(trigger(exc)), t0, base, &q);
        let s1 = s1.unwrap();
        assert_eq!(c1, Some(Change::Entered));
        assert_eq!(s1.next_attempt - t0, Duration::minutes(80));
        let t1 = s1.next_attempt;
        let (s2, c2) = apply(Some(&s1), Some(trigger(exc)), t1, base, &q);
        let s2 = s2.unwrap();
        assert_eq!(c2, None, "same reason: no second notification");
        assert_eq!(s2.next_attempt - t1, Duration::minutes(160));
        assert_eq!((s2.series_began, s2.series_count), (t0, 2));
        let (s3, c3) = apply(
            Some(&s2),
            Some(trigger(QuarantineReason::TooManyDeletes)),
            t1,
            base,
            &q,
        );
        assert_eq!(c3, Some(Change::ReasonChanged { from: exc }));
        assert_eq!(s3.as_ref().unwrap().current_began, t1);
        let (s4, c4) = apply(s3.as_ref(), None, t1, base, &q);
        assert!(s4.is_none());
        assert_eq!(
            c4,
            Some(Change::Left {
                was: QuarantineReason::TooManyDeletes
            })
        );
    }

    #[test]
    fn a_held_cycle_waits_for_approval_and_says_why() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let report = CycleReport {
            job: "app".into(),
            cycle_id: "c1".into(),
            kind: scimsync_engine::CycleKind::Incremental,
            mode: scimsync_engine::Mode::Apply,
            started: at,
            finished: at,
            source_users: 0,
            full_read: true,
            notes: Vec::new(),
            deletions_held: true,
            hold_reasons: vec![
                "the source returned no users while 40 are provisioned and active: refusing to disable or delete on an empty read".into(),
            ],
            out_of_scope_unlogged: 0,
            phases: Default::default(),
            objects_not_listed: 0,
            unlisted: Default::default(),
            tally: scimsync_engine::Tally {
                staged_deletes: 40,
                ..Default::default()
            },
            objects: Vec::new(),
        };
        let t = evaluate(&Ok(report), &counts(0, 0), &Quarantine::default()).unwrap();
        assert_eq!(t.reason, QuarantineReason::TooManyDeletes);
        assert!(
            t.error.starts_with("40 disables and deletes were held"),
            "{}",
            t.error
        );
        assert!(t.error.contains("empty read"), "{}", t.error);
        assert!(t.error.contains("approve-deletions"), "{}", t.error);
    }

    #[test]
    fn four_weeks_of_daily_quarantined_cycles_disable_the_job() {
        let q = Quarantine::default();
        let base = Duration::minutes(40);
        let mut now = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let exc = QuarantineReason::EncounteredQuarantineException;
        let (mut state, _) = apply(None, Some(trigger(exc)), now, base, &q);
        let mut disabled_at = None;
        for _ in 0..100 {
            let s = state.clone().unwrap();
            assert!(s.next_attempt - now <= Duration::days(1));
            now = s.next_attempt;
            let (next, change) = apply(Some(&s), Some(trigger(exc)), now, base, &q);
            if change == Some(Change::Disabled) {
                disabled_at = Some(now);
                state = next;
                break;
            }
            state = next;
        }
        let at = disabled_at.expect("disabled eventually");
        let began = state.as_ref().unwrap().series_began;
        assert!(at - began > Duration::weeks(4));
        assert!(at - began <= Duration::weeks(4) + Duration::days(1));
        assert!(state.unwrap().disabled);
    }
}
