//! Backup and restore as JSON lines, one record per line: a header, then per job its meta
//! values, objects (source id order) and log entries (oldest first).
//!
//! Plain text so an admin can inspect or grep a backup, and store-independent so export →
//! import into a fresh directory also compacts a sled store that never reclaimed space.

use crate::{StoreAdmin, check_job};
use scimsync_core::{LogEntry, ObjectState, StoreError};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufWriter, Write};

const FORMAT: &str = "scimsync-state";
const VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
enum Record {
    Header {
        format: String,
        version: u32,
    },
    Meta {
        job: String,
        key: String,
        value: String,
    },
    Object {
        job: String,
        object: ObjectState,
    },
    Log {
        job: String,
        entry: LogEntry,
    },
}

/// Write one job (or every job, when `job` is `None`) as JSON lines; returns the number of
/// records written, the header line not counted.
pub fn export(store: &dyn StoreAdmin, job: Option<&str>, w: impl Write) -> Result<u64, StoreError> {
    let jobs = match job {
        Some(j) => {
            check_job(j)?;
            vec![j.to_owned()]
        }
        None => store.jobs()?,
    };
    let mut w = BufWriter::new(w);
    write_record(
        &mut w,
        &Record::Header {
            format: FORMAT.to_owned(),
            version: VERSION,
        },
    )?;
    let mut count = 0u64;
    for job in jobs {
        for (key, value) in store.meta_entries(&job)? {
            let job = job.clone();
            write_record(&mut w, &Record::Meta { job, key, value })?;
            count += 1;
        }
        for object in store.list(&job)? {
            let job = job.clone();
            write_record(&mut w, &Record::Object { job, object })?;
            count += 1;
        }
        for entry in store.logs(&job, None)? {
            let job = job.clone();
            write_record(&mut w, &Record::Log { job, entry })?;
            count += 1;
        }
    }
    w.flush()
        .map_err(|e| StoreError::new(format!("state export: writing failed: {e}")))?;
    Ok(count)
}

/// Read records written by [`export`] into `store`, only those of `job` when given; returns
/// the number of records imported.
///
/// Objects and meta values overwrite what the store has; log entries are appended after
/// the existing ones, so import into a fresh store to avoid duplicate log entries.
pub fn import(
    store: &dyn StoreAdmin,
    job: Option<&str>,
    r: impl BufRead,
) -> Result<u64, StoreError> {
    if let Some(j) = job {
        check_job(j)?;
    }
    let mut count = 0u64;
    for (index, line) in r.lines().enumerate() {
        let n = index + 1;
        let line =
            line.map_err(|e| StoreError::new(format!("state import: line {n}: reading: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        let record: Record = serde_json::from_str(&line)
            .map_err(|e| StoreError::new(format!("state import: line {n}: {e}")))?;
        let record_job = match &record {
            Record::Header { format, version } => {
                if format != FORMAT || *version != VERSION {
                    return Err(StoreError::new(format!(
                        "state import: line {n}: this is {format} version {version}, expected \
                         {FORMAT} version {VERSION}"
                    )));
                }
                continue;
            }
            Record::Meta { job, .. } | Record::Object { job, .. } | Record::Log { job, .. } => job,
        };
        if job.is_some_and(|j| j != record_job) {
            continue;
        }
        let at = |e: StoreError| StoreError {
            message: format!("state import: line {n}: {}", e.message),
            ..e
        };
        match &record {
            Record::Header { .. } => {}
            Record::Meta { job, key, value } => store.put_meta(job, key, value).map_err(at)?,
            Record::Object { job, object } => store.put_object(job, object).map_err(at)?,
            Record::Log { job, entry } => store.append_log(job, entry).map_err(at)?,
        }
        count += 1;
    }
    store.flush()?;
    Ok(count)
}

fn write_record(w: &mut impl Write, record: &Record) -> Result<(), StoreError> {
    serde_json::to_writer(&mut *w, record)
        .map_err(|e| StoreError::new(format!("state export: {e}")))?;
    w.write_all(b"\n")
        .map_err(|e| StoreError::new(format!("state export: writing failed: {e}")))
}
