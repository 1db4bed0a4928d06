//! The one line `serve` writes per finished cycle, at default verbosity: a tracing event on
//! its own target, so `serve` can let it through (and render it as text or JSON) while the
//! rest of the service stays at `warn`.

use crate::quarantine::QuarantineState;
use chrono::{DateTime, Utc};
use scimsync_engine::{CycleError, CycleKind, CycleReport};

/// The tracing target of the per-cycle line: `serve` enables it at `info`.
pub const CYCLE_TARGET: &str = "scimsync::cycle";

/// Emit the line for a finished (or failed) cycle, with the quarantine it left the job in.
pub fn cycle_finished(
    job: &str,
    started: DateTime<Utc>,
    finished: DateTime<Utc>,
    outcome: &Result<CycleReport, CycleError>,
    quarantine: Option<&QuarantineState>,
) {
    let duration_ms = (finished - started).num_milliseconds().max(0);
    let quarantine = quarantine.map_or_else(|| "none".to_string(), |q| q.reason.to_string());
    match outcome {
        Ok(r) => {
            let t = &r.tally;
            let kind = match r.kind {
                CycleKind::Initial => "initial",
                CycleKind::Incremental => "incremental",
            };
            tracing::info!(
                target: "scimsync::cycle",
                job = %job,
                cycle = %r.cycle_id,
                kind,
                created = t.created,
                updated = t.updated,
                disabled = t.disabled,
                deleted = t.deleted,
                failed = t.failed,
                unchanged = t.unchanged,
                held = t.staged_deletes,
                duration_ms,
                quarantine = %quarantine,
                "cycle finished"
            );
        }
        Err(e) => {
            tracing::warn!(
                target: "scimsync::cycle",
                job = %job,
                duration_ms,
                quarantine = %quarantine,
                error = %e,
                "cycle failed"
            );
        }
    }
}
