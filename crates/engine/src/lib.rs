//! One provisioning cycle: source → scope → map → match → diff → act → log.
//!
//! The engine composes the other crates. It reads the source once, decides per object from the
//! source record and the state the target last confirmed, matches before every create, sends
//! the minimal SCIM operations, and commits state together with the object's log entry only
//! after the target confirmed. In [`Mode::Preview`] it reads (source, state, matching queries)
//! but writes nothing anywhere.

mod cycle;
mod diff;
mod escrow;
mod groups;
mod history;
mod job;
mod ondemand;
mod read;
mod report;
mod restart;
mod users;

pub use cycle::{
    CycleError, Engine, META_CYCLES, META_DELETIONS_APPROVED, META_LAST_CYCLE, Progress,
    ProgressSink,
};
pub use diff::diff;
pub use escrow::{Escrow, EscrowPolicy};
pub use history::{
    CycleSummary, CycleTotals, HISTORY_LEN, META_CYCLE_HISTORY, META_CYCLE_TOTALS, cycle_history,
    cycle_totals, log_retention_cutoff, record_cycle_history,
};
pub use job::{GroupSpec, JobSpec};
pub use ondemand::ON_DEMAND_MAX_MEMBERS;
pub use report::{Action, CycleKind, CycleReport, Mode, ObjectReport, ObjectType, Tally};
pub use restart::{META_QUARANTINE, ResetScope, RestartSummary, restart};

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_groups;
