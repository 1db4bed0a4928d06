//! An in-memory [`StateStore`] for tests and dry runs: same behaviour as the sled store,
//! nothing on disk.

use crate::{StoreAdmin, check_job};
use chrono::{DateTime, Utc};
use scimsync_core::{LogEntry, ObjectState, StateChange, StateStore, StoreError};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};

#[derive(Debug, Default)]
struct Inner {
    /// job → source id → object; BTreeMap gives source id order for `list`.
    objects: BTreeMap<String, BTreeMap<String, ObjectState>>,
    /// job → entries in commit order.
    logs: BTreeMap<String, Vec<LogEntry>>,
    /// job → key → value.
    meta: BTreeMap<String, BTreeMap<String, String>>,
}

/// A [`StateStore`] held in memory; cheap to create, lost on drop.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic in another thread cannot leave Inner half-updated (every mutation is a
        // single map operation after validation), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl StateStore for MemoryStore {
    fn get(&self, job: &str, source_id: &str) -> Result<Option<ObjectState>, StoreError> {
        check_job(job)?;
        Ok(self
            .lock()
            .objects
            .get(job)
            .and_then(|m| m.get(source_id))
            .cloned())
    }

    fn list(&self, job: &str) -> Result<Vec<ObjectState>, StoreError> {
        check_job(job)?;
        Ok(self
            .lock()
            .objects
            .get(job)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default())
    }

    fn commit(&self, job: &str, change: &StateChange, log: &LogEntry) -> Result<(), StoreError> {
        check_job(job)?;
        let mut inner = self.lock();
        match change {
            StateChange::Put(object) => {
                inner
                    .objects
                    .entry(job.to_owned())
                    .or_default()
                    .insert(object.source_id.clone(), object.clone());
            }
            StateChange::Remove { source_id } => {
                if let Some(m) = inner.objects.get_mut(job) {
                    m.remove(source_id);
                }
            }
            StateChange::None => {}
        }
        inner
            .logs
            .entry(job.to_owned())
            .or_default()
            .push(log.clone());
        Ok(())
    }

    fn logs(&self, job: &str, cycle_id: Option<&str>) -> Result<Vec<LogEntry>, StoreError> {
        check_job(job)?;
        Ok(self
            .lock()
            .logs
            .get(job)
            .map(|v| {
                v.iter()
                    .filter(|e| cycle_id.is_none_or(|c| e.cycle_id == c))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    fn get_meta(&self, job: &str, key: &str) -> Result<Option<String>, StoreError> {
        check_job(job)?;
        Ok(self.lock().meta.get(job).and_then(|m| m.get(key)).cloned())
    }

    fn put_meta(&self, job: &str, key: &str, value: &str) -> Result<(), StoreError> {
        check_job(job)?;
        self.lock()
            .meta
            .entry(job.to_owned())
            .or_default()
            .insert(key.to_owned(), value.to_owned());
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn prune_logs_before(&self, job: &str, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        StoreAdmin::prune_logs(self, job, cutoff)
    }

    fn remove_objects(&self, job: &str) -> Result<u64, StoreError> {
        check_job(job)?;
        Ok(self
            .lock()
            .objects
            .remove(job)
            .map(|m| m.len() as u64)
            .unwrap_or(0))
    }

    fn scan_meta(&self, job: &str, prefix: &str) -> Result<Vec<(String, String)>, StoreError> {
        check_job(job)?;
        Ok(self
            .lock()
            .meta
            .get(job)
            .map(|m| {
                m.range(prefix.to_owned()..)
                    .take_while(|(k, _)| k.starts_with(prefix))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default())
    }

    fn remove_meta(&self, job: &str, key: &str) -> Result<(), StoreError> {
        check_job(job)?;
        if let Some(m) = self.lock().meta.get_mut(job) {
            m.remove(key);
        }
        Ok(())
    }
}

impl StoreAdmin for MemoryStore {
    fn jobs(&self) -> Result<Vec<String>, StoreError> {
        let inner = self.lock();
        let mut jobs = BTreeSet::new();
        // Empty per-job maps (every object removed) do not make a job.
        for (job, m) in &inner.objects {
            if !m.is_empty() {
                jobs.insert(job.clone());
            }
        }
        for (job, v) in &inner.logs {
            if !v.is_empty() {
                jobs.insert(job.clone());
            }
        }
        for (job, m) in &inner.meta {
            if !m.is_empty() {
                jobs.insert(job.clone());
            }
        }
        Ok(jobs.into_iter().collect())
    }

    fn meta_entries(&self, job: &str) -> Result<Vec<(String, String)>, StoreError> {
        check_job(job)?;
        Ok(self
            .lock()
            .meta
            .get(job)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default())
    }

    fn put_object(&self, job: &str, object: &ObjectState) -> Result<(), StoreError> {
        check_job(job)?;
        self.lock()
            .objects
            .entry(job.to_owned())
            .or_default()
            .insert(object.source_id.clone(), object.clone());
        Ok(())
    }

    fn append_log(&self, job: &str, entry: &LogEntry) -> Result<(), StoreError> {
        check_job(job)?;
        self.lock()
            .logs
            .entry(job.to_owned())
            .or_default()
            .push(entry.clone());
        Ok(())
    }

    fn prune_logs(&self, job: &str, older_than: DateTime<Utc>) -> Result<u64, StoreError> {
        check_job(job)?;
        let mut inner = self.lock();
        let Some(v) = inner.logs.get_mut(job) else {
            return Ok(0);
        };
        let before = v.len();
        v.retain(|e| e.activity_date_time >= older_than);
        Ok((before - v.len()) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::MemoryStore;
    use crate::conformance;

    #[test]
    fn memory_store_passes_the_conformance_suite() {
        conformance::run_all(MemoryStore::new);
    }

    #[test]
    fn memory_store_passes_the_admin_suite() {
        conformance::run_admin(MemoryStore::new);
    }
}
