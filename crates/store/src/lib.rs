//! The state store of scimsync: per-job object state, job metadata and provisioning logs.
//!
//! Two implementations of [`StateStore`]: [`SledStore`] on disk and [`MemoryStore`] for tests.
//! Both pass the same [`conformance`] suite. State is a cache we can afford to lose (see
//! `scimsync_core::state`), so a corrupt sled database is moved aside at open rather than
//! repaired (one that lost flushed data counts as corrupt, and one whose damage shows only
//! when read is moved aside at the next open), and [`export`]/[`import`] give admins a
//! plain JSON-lines backup that also serves as compaction (export, import into a fresh
//! store, swap).

mod backup;
pub mod conformance;
mod memory;
mod sled_store;

pub use backup::{export, import};
pub use memory::MemoryStore;
pub use sled_store::{OpenReport, SledStore};

use chrono::{DateTime, Utc};
use scimsync_core::{LogEntry, ObjectState, StateStore, StoreError};

/// What admin tooling (backup, restore, log retention) needs beyond [`StateStore`].
///
/// Kept out of the core trait because the engine never needs it.
pub trait StoreAdmin: StateStore {
    /// Every job that has an object, a meta value or a log entry, sorted.
    fn jobs(&self) -> Result<Vec<String>, StoreError>;
    /// Every meta `(key, value)` of the job, sorted by key.
    fn meta_entries(&self, job: &str) -> Result<Vec<(String, String)>, StoreError>;
    /// Store an object without a log entry (restore from a backup).
    fn put_object(&self, job: &str, object: &ObjectState) -> Result<(), StoreError>;
    /// Append a log entry after the job's existing ones, without touching objects (restore).
    fn append_log(&self, job: &str, entry: &LogEntry) -> Result<(), StoreError>;
    /// Delete the job's log entries whose `activity_date_time` is before `older_than`;
    /// returns how many were deleted.
    fn prune_logs(&self, job: &str, older_than: DateTime<Utc>) -> Result<u64, StoreError>;
}

/// Job ids become key prefixes terminated by NUL, so a NUL inside one would let a job see
/// another's keys; empty ids are a configuration mistake worth reporting. Public so every
/// store (the PostgreSQL one too) refuses the same ids with the same message.
pub fn check_job(job: &str) -> Result<(), StoreError> {
    if job.is_empty() {
        return Err(StoreError::new("state store: the job id is empty"));
    }
    if job.contains('\0') {
        return Err(StoreError::new(format!(
            "state store: the job id {job:?} contains a NUL character"
        )));
    }
    Ok(())
}
