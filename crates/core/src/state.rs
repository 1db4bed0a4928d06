//! What the engine remembers between cycles, and the store that keeps it.
//!
//! State is a cache we can afford to lose: it is written only after the target confirmed an
//! operation, and every create is preceded by a match, so losing it costs a full cycle of
//! matching, never a duplicate account.

use crate::{Attrs, ErrorCode, LogEntry};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The last thing that happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    Created,
    Matched,
    Updated,
    /// Disabled because the source disabled or soft-deleted the user.
    Disabled,
    /// Disabled because the user was unassigned or left scope: the object has left management,
    /// so a later hard delete at the source sends no DELETE (as Entra).
    OutOfScope,
    Enabled,
    Unchanged,
}

/// One provisioned object: the link between source and target and what the target last
/// confirmed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectState {
    pub source_id: String,
    pub target_id: String,
    /// Hash of the desired representation the target last confirmed.
    pub hash: String,
    /// The attribute values the target last confirmed (what we sent or matched), so the next
    /// diff is minimal and can choose `add` versus `replace`.
    pub confirmed: Attrs,
    /// Whether the target account is active as far as we know.
    pub active: bool,
    pub outcome: Outcome,
    pub updated_at: DateTime<Utc>,
}

/// Where an object stands on the target, without what the target confirmed: all that group
/// membership needs of each member user.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectTarget {
    pub source_id: String,
    pub target_id: String,
    pub active: bool,
}

impl From<&ObjectState> for ObjectTarget {
    fn from(s: &ObjectState) -> Self {
        ObjectTarget {
            source_id: s.source_id.clone(),
            target_id: s.target_id.clone(),
            active: s.active,
        }
    }
}

/// A change to one object's state, committed together with its log entry.
#[derive(Debug, Clone, PartialEq)]
pub enum StateChange {
    Put(ObjectState),
    Remove {
        source_id: String,
    },
    /// Nothing changes (a failure, a skip): only the log entry is written.
    None,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct StoreError {
    pub code: ErrorCode,
    pub message: String,
}

impl StoreError {
    pub fn new(message: impl Into<String>) -> Self {
        StoreError {
            code: ErrorCode::StateStoreFailed,
            message: message.into(),
        }
    }
}

/// Per-job object state, job metadata and provisioning logs.
///
/// Implementations: sled on disk (the store crate) and in memory (for tests). Both pass the
/// same conformance suite.
pub trait StateStore: Send + Sync {
    fn get(&self, job: &str, source_id: &str) -> Result<Option<ObjectState>, StoreError>;
    /// The objects of `ids` that exist, in source id order (one round trip on a database:
    /// a cycle asks for the state of many objects at once). The default asks one by one.
    fn get_many(&self, job: &str, ids: &[String]) -> Result<Vec<ObjectState>, StoreError> {
        let mut found = Vec::new();
        for id in ids {
            if let Some(s) = self.get(job, id)? {
                found.push(s);
            }
        }
        found.sort_by(|a, b| a.source_id.cmp(&b.source_id));
        found.dedup_by(|a, b| a.source_id == b.source_id);
        Ok(found)
    }
    /// [`StateStore::get_many`] without the confirmed attributes. A cycle with groups asks
    /// this of every member user (tens of thousands on a large tenant, every cycle), so stores
    /// override the default with a read that does not decode the attribute maps.
    fn targets_many(&self, job: &str, ids: &[String]) -> Result<Vec<ObjectTarget>, StoreError> {
        Ok(self
            .get_many(job, ids)?
            .iter()
            .map(ObjectTarget::from)
            .collect())
    }
    /// Every object of the job, in source id order.
    fn list(&self, job: &str) -> Result<Vec<ObjectState>, StoreError>;
    /// The objects whose source id starts with `prefix`, in source id order. Stores override
    /// the default (a filtered `list`) with a prefix scan.
    fn list_prefix(&self, job: &str, prefix: &str) -> Result<Vec<ObjectState>, StoreError> {
        Ok(self
            .list(job)?
            .into_iter()
            .filter(|s| s.source_id.starts_with(prefix))
            .collect())
    }
    /// Apply `change` and append `log` atomically: both or neither.
    fn commit(&self, job: &str, change: &StateChange, log: &LogEntry) -> Result<(), StoreError>;
    /// [`commit`](Self::commit) each pair in order; each pair stays atomic, and a store may make
    /// the whole batch one transaction (sled and PostgreSQL do: a transaction per object costs
    /// sled two log writes and PostgreSQL a round trip). On an error, a prefix may be written.
    fn commit_batch(&self, job: &str, batch: &[(StateChange, LogEntry)]) -> Result<(), StoreError> {
        for (change, log) in batch {
            self.commit(job, change, log)?;
        }
        Ok(())
    }
    /// The job's log entries, oldest first; only those of `cycle_id` when given.
    fn logs(&self, job: &str, cycle_id: Option<&str>) -> Result<Vec<LogEntry>, StoreError>;
    fn get_meta(&self, job: &str, key: &str) -> Result<Option<String>, StoreError>;
    fn put_meta(&self, job: &str, key: &str, value: &str) -> Result<(), StoreError>;
    /// Make everything committed so far durable.
    fn flush(&self) -> Result<(), StoreError>;
    /// Drop log entries older than `cutoff` (log retention). Returns how many went. The
    /// default keeps everything, for stores without retention.
    fn prune_logs_before(
        &self,
        job: &str,
        cutoff: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64, StoreError> {
        let _ = (job, cutoff);
        Ok(0)
    }
    /// Forget every object of the job (a `full` restart: every object is matched again).
    /// Returns how many were removed. Logs are kept.
    fn remove_objects(&self, job: &str) -> Result<u64, StoreError>;
    /// Meta entries whose key starts with `prefix`, in key order.
    fn scan_meta(&self, job: &str, prefix: &str) -> Result<Vec<(String, String)>, StoreError>;
    fn remove_meta(&self, job: &str, key: &str) -> Result<(), StoreError>;

    /// Auxiliary records of a job by kind: the group mirror, confirmed member sets, escrows,
    /// staged deletes, the last assignment snapshot. Stored as meta entries under
    /// `rec/<kind>/<id>` so export/import carries them.
    fn get_record(&self, job: &str, kind: &str, id: &str) -> Result<Option<String>, StoreError> {
        self.get_meta(job, &record_key(kind, id))
    }
    fn put_record(&self, job: &str, kind: &str, id: &str, value: &str) -> Result<(), StoreError> {
        self.put_meta(job, &record_key(kind, id), value)
    }
    fn remove_record(&self, job: &str, kind: &str, id: &str) -> Result<(), StoreError> {
        self.remove_meta(job, &record_key(kind, id))
    }
    /// Records of one kind present with an empty value (a set, such as a group's confirmed
    /// members), in one write where the backend can: a confirmed membership batch is up to
    /// 1,000 records, a round trip each on a database.
    fn mark_records(&self, job: &str, kind: &str, ids: &[String]) -> Result<(), StoreError> {
        ids.iter()
            .try_for_each(|id| self.put_record(job, kind, id, ""))
    }
    /// Records of one kind written as (id, value), in as few writes as the backend can (one
    /// statement on a database): an initial cycle's assignment snapshot is a record per
    /// assigned user, a round trip each otherwise. An id given twice keeps its last value.
    fn put_records(
        &self,
        job: &str,
        kind: &str,
        records: &[(String, String)],
    ) -> Result<(), StoreError> {
        records
            .iter()
            .try_for_each(|(id, value)| self.put_record(job, kind, id, value))
    }
    /// Records of one kind removed, in one write where the backend can.
    fn remove_records(&self, job: &str, kind: &str, ids: &[String]) -> Result<(), StoreError> {
        ids.iter()
            .try_for_each(|id| self.remove_record(job, kind, id))
    }
    /// Every record of a kind as (id, value), in id order.
    fn list_records(&self, job: &str, kind: &str) -> Result<Vec<(String, String)>, StoreError> {
        let prefix = record_key(kind, "");
        Ok(self
            .scan_meta(job, &prefix)?
            .into_iter()
            .map(|(k, v)| (k[prefix.len()..].to_string(), v))
            .collect())
    }
}

/// The meta key a record is kept under (`rec/<kind>/<id>`).
pub fn record_key(kind: &str, id: &str) -> String {
    format!("rec/{kind}/{id}")
}
