//! One provisioning cycle: read → plan → act → commit.
//!
//! The engine composes the other crates. It reads the source once (`cycle`), decides every
//! object once in a pure plan (`plan`) that the deletion guards and preview read, carries the
//! plan out through the target with in-cycle retries (`act`, `users`, `groups`), matching
//! before every create and never linking an object another source object holds, and commits
//! state together with each object's log entry only after the target confirmed. In
//! [`Mode::Preview`] the same plan is carried out with reads only (matching queries).
//! The job's state between cycles is typed in [`JobState`].

mod act;
mod batch;
mod cycle;
mod diff;
mod escrow;
mod groups;
mod history;
mod job;
mod jobstate;
mod ondemand;
mod plan;
mod read;
mod references;
mod report;
mod restart;
mod users;

pub use cycle::{CycleError, Engine, Progress, ProgressSink};
pub use diff::diff;
pub use escrow::{Escrow, EscrowPolicy};
pub use history::{
    CycleSummary, CycleTotals, HISTORY_LEN, META_CYCLE_HISTORY, META_CYCLE_TOTALS, cycle_history,
    cycle_totals, log_retention_cutoff, record_cycle_history,
};
pub use job::{GroupSpec, JobSpec, RetryPolicy};
pub use jobstate::{ApproveOutcome, DeletionApproval, HeldDeletions, HeldOp, JobState, LastCycle};
pub use ondemand::ON_DEMAND_MAX_MEMBERS;
pub use report::{
    Action, CycleKind, CycleReport, LISTED_OBJECTS, Mode, ObjectReport, ObjectType, Phases, Tally,
    Unlisted,
};
pub use restart::{META_QUARANTINE, ResetScope, RestartSummary, restart};

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_extensions;
#[cfg(test)]
mod tests_groups;
#[cfg(test)]
mod tests_identity;
#[cfg(test)]
mod tests_references;
