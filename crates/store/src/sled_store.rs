//! The on-disk [`StateStore`], on sled 0.34.
//!
//! Three trees whatever the number of jobs: `objects` (`job \0 source_id`), `logs`
//! (`job \0 big-endian sequence`, so a prefix scan is chronological) and `meta`
//! (`job \0 key`); values are JSON. sled 0.34 is the last stable release and has known
//! corruption reports, so a database that cannot be opened as corrupt is moved aside and a
//! fresh one created: the next cycle re-matches every object, which is safe by design.
//!
//! sled does not notice every kind of damage. Without a snapshot it silently recovers the
//! valid prefix of a truncated or overwritten data file (or nothing at all from an empty
//! one); with a snapshot, damaged pages fail only when they are read. So the store adds
//! three checks of its own, none on the hot path:
//!
//! - **Flush generation.** Every [`StateStore::flush`] bumps a counter in sled and, once sled
//!   has made it durable, records it in `scimsync.integrity` next to sled's files. sled must
//!   recover at least that generation; a lower one means data that had been flushed is gone,
//!   and the store is treated as corrupt at open (O(1): one key, one small file). Writes
//!   after the last flush may be lost by a crash, as always; that is not damage.
//! - **Probe at open.** The first and last key of every tree are read, which fails on the
//!   damaged pages sled leaves for later (a few page reads).
//! - **Damage found later** (a sled corruption error, a missing blob file, a value that does
//!   not decode) fails the call with a message naming the job and key, and leaves
//!   `scimsync.corrupt` in the directory so the next open moves the store aside with that
//!   reason. [`SledStore::verify`] reads everything, for whoever wants the full check.

use crate::{StoreAdmin, check_job};
use chrono::{DateTime, Utc};
use scimsync_core::{LogEntry, ObjectState, ObjectTarget, StateChange, StateStore, StoreError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::{Db, Mode, Transactional, Tree};
use std::convert::Infallible;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Page cache ceiling, per job: the service may run many jobs, and a cycle reads its state in
/// few sequential scans, so a large cache buys little (a 100,000-user initial cycle peaked
/// ~40 MiB in sled's cache at 64 MiB).
const CACHE_CAPACITY: u64 = 32 * 1024 * 1024;
/// Our own lock, taken before sled touches anything: sled reads its config before taking its
/// file lock, so without ours a busy store could be mistaken for a corrupt one and moved.
const LOCK_FILE: &str = "scimsync.lock";
/// Written to sled's default tree when a store is created; its absence in a database file
/// that has content means sled recovered nothing. The value is the on-disk format version.
const MARKER_KEY: &[u8] = b"scimsync-store-format";
const MARKER_VALUE: &[u8] = b"1";
/// A commit as sled stores it: the object's key and new value (`None`: removed), if any, and
/// the log entry's key and value.
struct EncodedCommit {
    object: Option<(Vec<u8>, Option<Vec<u8>>)>,
    log: (Vec<u8>, Vec<u8>),
}

/// In sled's default tree: the generation of the latest flush, a big-endian `u64`.
const GENERATION_KEY: &[u8] = b"scimsync-flush-generation";
/// Our record of the latest generation sled confirmed durable (see the module docs).
const INTEGRITY_FILE: &str = "scimsync.integrity";
const INTEGRITY_TMP: &str = "scimsync.integrity.tmp";
const INTEGRITY_HEADER: &str = "scimsync state store integrity record, format 1";
/// Left by a read that found damage: the next open moves the store aside with its reason.
const CORRUPT_FILE: &str = "scimsync.corrupt";

/// What [`SledStore::open`] had to do to give you a working store.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OpenReport {
    /// Where a corrupt store was moved; the new store is empty, so the next cycle matches
    /// every object again. Tell the admin.
    pub moved_aside: Option<PathBuf>,
    /// Why the store was judged corrupt, when it was moved aside: sled's error, or what the
    /// store's own checks found (flushed data missing, a damaged integrity record, damage an
    /// earlier instance met while reading).
    pub reason: Option<String>,
}

/// A [`StateStore`] in a sled database directory, locked against other processes.
pub struct SledStore {
    dir: PathBuf,
    db: Db,
    objects: Tree,
    logs: Tree,
    meta: Tree,
    /// Flush generations, serialised so the one in sled and the one on file only grow.
    generations: Mutex<Generations>,
    /// Set once damage was found and `scimsync.corrupt` written.
    flagged: AtomicBool,
    /// Held for the store's lifetime; the OS releases the lock when it is closed.
    _lock: File,
}

#[derive(Debug, Clone, Copy, Default)]
struct Generations {
    /// The latest generation written to sled.
    written: u64,
    /// The generation in `scimsync.integrity` (0: none yet).
    recorded: u64,
}

impl std::fmt::Debug for SledStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStore").field("dir", &self.dir).finish()
    }
}

struct Trees {
    db: Db,
    objects: Tree,
    logs: Tree,
    meta: Tree,
    generations: Generations,
}

enum OpenFailure {
    /// The files are unreadable: move them aside and start over.
    Corrupt(String),
    /// Anything else (permissions, disk, lock): report, touch nothing.
    Fatal(StoreError),
    /// sled's own lock on `db` is still held. We hold our lock file, so no other process has
    /// the store: it is this process's previous instance, whose background flusher releases
    /// the lock moments after the store is dropped.
    SledLocked,
}

impl SledStore {
    /// Open (create) the store in `dir`.
    ///
    /// A store that fails to open because it is corrupt is moved aside to
    /// `<dir>.corrupt-<timestamp>` and a fresh one is created; the report says so. A store
    /// held by another process fails at once.
    pub fn open(dir: &Path) -> Result<(SledStore, OpenReport), StoreError> {
        fs::create_dir_all(dir).map_err(|e| {
            StoreError::new(format!(
                "state store: cannot create directory {}: {e}",
                dir.display()
            ))
        })?;
        let lock = acquire_lock(dir)?;
        let (trees, report) = match open_trees(dir) {
            Ok(trees) => (trees, OpenReport::default()),
            Err(OpenFailure::Fatal(e)) => return Err(e),
            Err(OpenFailure::SledLocked) => return Err(busy(dir)),
            Err(OpenFailure::Corrupt(reason)) => {
                let aside = move_aside(dir)?;
                tracing::warn!(
                    store = %dir.display(),
                    moved_to = %aside.display(),
                    reason = %reason,
                    "state store was corrupt and has been moved aside; starting with an empty \
                     store, the next cycle re-matches every object"
                );
                let trees = open_trees(dir).map_err(|f| match f {
                    OpenFailure::Fatal(e) => e,
                    OpenFailure::SledLocked => busy(dir),
                    OpenFailure::Corrupt(reason) => StoreError::new(format!(
                        "state store: a fresh store in {} cannot be opened: {reason}",
                        dir.display()
                    )),
                })?;
                let report = OpenReport {
                    moved_aside: Some(aside),
                    reason: Some(reason),
                };
                (trees, report)
            }
        };
        let generations = trees.generations;
        let store = SledStore {
            dir: dir.to_path_buf(),
            db: trees.db,
            objects: trees.objects,
            logs: trees.logs,
            meta: trees.meta,
            generations: Mutex::new(generations),
            flagged: AtomicBool::new(false),
            _lock: lock,
        };
        // A new store, or one from before the integrity record (or whose record was
        // removed): record a generation now, so damage is caught from the next open on.
        if generations.written == 0 || generations.recorded == 0 {
            store.flush()?;
        }
        Ok((store, report))
    }

    /// Read and decode every record of every job: the full check that opening leaves out,
    /// since it costs a scan of the whole store. Returns how many records were read.
    ///
    /// Damage fails as it does for any read: the error names the job and key, and the store
    /// is moved aside the next time it is opened.
    pub fn verify(&self) -> Result<u64, StoreError> {
        let mut n = 0u64;
        self.scan_each::<ObjectState>(&self.objects, &[], Kind::Object, |_| n += 1)?;
        self.scan_each::<LogEntry>(&self.logs, &[], Kind::Log, |_| n += 1)?;
        self.scan_each::<String>(&self.meta, &[], Kind::Meta, |_| n += 1)?;
        Ok(n)
    }

    /// The directory this store lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes the database takes on disk (for the size metric; sled reclaims space lazily,
    /// export → import compacts).
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        self.db
            .size_on_disk()
            .map_err(|e| self.sled_err("measuring size", e))
    }

    /// [`StateStore::flush`] without blocking the caller's thread on sled's sync (end of a
    /// cycle). The integrity record is still written synchronously; it is a few bytes.
    pub async fn flush_async(&self) -> Result<(), StoreError> {
        let generation = self.next_generation()?;
        self.db
            .flush_async()
            .await
            .map_err(|e| self.sled_err("flushing", e))?;
        self.record_generation(generation)
    }

    /// Delete the job's log entries older than `older_than`; returns how many.
    pub fn prune_logs(&self, job: &str, older_than: DateTime<Utc>) -> Result<u64, StoreError> {
        StoreAdmin::prune_logs(self, job, older_than)
    }

    /// Write the next flush generation to sled (not yet durable).
    fn next_generation(&self) -> Result<u64, StoreError> {
        let mut g = self.lock_generations();
        let next = g.written + 1;
        self.db
            .insert(GENERATION_KEY, &next.to_be_bytes())
            .map_err(|e| self.sled_err("writing the flush generation", e))?;
        g.written = next;
        Ok(next)
    }

    /// Record `generation` in the integrity file, now that sled has made it durable.
    fn record_generation(&self, generation: u64) -> Result<(), StoreError> {
        let mut g = self.lock_generations();
        if generation <= g.recorded {
            return Ok(()); // a concurrent flush recorded a later one
        }
        write_integrity(&self.dir, generation).map_err(|e| {
            self.err(
                &format!("writing {}", self.dir.join(INTEGRITY_FILE).display()),
                e,
            )
        })?;
        g.recorded = generation;
        Ok(())
    }

    fn lock_generations(&self) -> MutexGuard<'_, Generations> {
        // Both fields only grow and each is written after its step succeeded.
        self.generations.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn err(&self, doing: &str, e: impl std::fmt::Display) -> StoreError {
        StoreError::new(format!("state store {}: {doing}: {e}", self.dir.display()))
    }

    /// A sled error: damage in sled's files makes the store corrupt, anything else (a full
    /// disk, an I/O error) is reported as it is.
    fn sled_err(&self, doing: &str, e: sled::Error) -> StoreError {
        if is_damage(&e) {
            self.corrupt(&format!("{doing}: {e}"))
        } else {
            self.err(doing, e)
        }
    }

    /// Report damage found after open: leave `scimsync.corrupt` so the next open moves the
    /// store aside with this reason, and fail the call.
    fn corrupt(&self, what: &str) -> StoreError {
        if !self.flagged.swap(true, Ordering::SeqCst) {
            tracing::error!(
                store = %self.dir.display(),
                damage = %what,
                "state store is corrupt; it is moved aside the next time it is opened"
            );
            if let Err(e) = fs::write(self.dir.join(CORRUPT_FILE), what) {
                tracing::warn!(
                    store = %self.dir.display(),
                    error = %e,
                    "cannot leave the corruption note; the store stays in place"
                );
            }
        }
        StoreError::new(format!(
            "state store {} is corrupt: {what}; it is moved aside the next time it is opened, \
             and the next cycle then matches every object again",
            self.dir.display()
        ))
    }

    /// Decode a stored value; `what` names it (job and key) when it does not decode.
    fn decode<T: DeserializeOwned>(
        &self,
        what: impl FnOnce() -> String,
        bytes: &[u8],
    ) -> Result<T, StoreError> {
        serde_json::from_slice(bytes)
            .map_err(|e| self.corrupt(&format!("{} does not decode: {e}", what())))
    }

    /// Apply `batch` to the meta tree, all or nothing.
    fn apply_meta(&self, batch: sled::Batch, doing: impl Fn() -> String) -> Result<(), StoreError> {
        self.meta
            .apply_batch(batch)
            .map_err(|e| self.sled_err(&doing(), e))
    }

    /// One commit's keys and values, encoded before any transaction (whose closure sled may
    /// run more than once), with its log sequence number allocated.
    fn encode_commit(
        &self,
        job: &str,
        change: &StateChange,
        log: &LogEntry,
    ) -> Result<EncodedCommit, StoreError> {
        check_job(job)?;
        let seq = self
            .db
            .generate_id()
            .map_err(|e| self.sled_err("allocating a log sequence number", e))?;
        let object = match change {
            StateChange::Put(o) => Some((
                key(job, o.source_id.as_bytes()),
                Some(self.encode("an object", o)?),
            )),
            StateChange::Remove { source_id } => Some((key(job, source_id.as_bytes()), None)),
            StateChange::None => None,
        };
        Ok(EncodedCommit {
            object,
            log: (
                key(job, &seq.to_be_bytes()),
                self.encode("a log entry", log)?,
            ),
        })
    }

    /// Write encoded commits: log entries alone as plain inserts (each atomic by itself), any
    /// object change in one transaction with every entry of the batch — sled writes its log
    /// buffer out twice per transaction, so a transaction per object is its main cost.
    fn write_encoded(
        &self,
        job: &str,
        batch: Vec<EncodedCommit>,
        what: impl Fn() -> String,
    ) -> Result<(), StoreError> {
        if batch.iter().all(|c| c.object.is_none()) {
            for c in batch {
                self.logs
                    .insert(c.log.0, c.log.1)
                    .map_err(|e| self.sled_err(&format!("logging {} for job {job}", what()), e))?;
            }
            return Ok(());
        }
        (&self.objects, &self.logs)
            .transaction(|(objects, logs)| {
                for c in &batch {
                    match &c.object {
                        Some((k, Some(v))) => objects.insert(k.as_slice(), v.as_slice())?,
                        Some((k, None)) => objects.remove(k.as_slice())?,
                        None => None,
                    };
                    logs.insert(c.log.0.as_slice(), c.log.1.as_slice())?;
                }
                Ok::<(), ConflictableTransactionError<Infallible>>(())
            })
            .map_err(|e| match e {
                TransactionError::Abort(never) => match never {},
                TransactionError::Storage(e) => {
                    self.sled_err(&format!("committing {} for job {job}", what()), e)
                }
            })
    }

    fn encode<T: Serialize>(&self, what: &str, value: &T) -> Result<Vec<u8>, StoreError> {
        serde_json::to_vec(value).map_err(|e| self.err(&format!("encoding {what}"), e))
    }

    /// Decode the value of every key starting with `start` in `tree`, in key order, and hand
    /// each with its key to `each`.
    fn scan_each<T: DeserializeOwned>(
        &self,
        tree: &Tree,
        start: &[u8],
        kind: Kind,
        mut each: impl FnMut(T),
    ) -> Result<(), StoreError> {
        for item in tree.scan_prefix(start) {
            let (k, v) = item.map_err(|e| self.sled_err(&kind.reading(start), e))?;
            each(self.decode(|| kind.describe(&k), &v)?);
        }
        Ok(())
    }

    /// [`Self::scan_each`], collected.
    fn scan<T: DeserializeOwned>(
        &self,
        tree: &Tree,
        start: &[u8],
        kind: Kind,
    ) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        self.scan_each(tree, start, kind, |v| out.push(v))?;
        Ok(out)
    }
}

/// What the keys of a tree name, for messages about them.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Object,
    Log,
    Meta,
}

impl Kind {
    fn noun(self) -> &'static str {
        match self {
            Kind::Object => "object",
            Kind::Log => "log entry",
            Kind::Meta => "meta",
        }
    }

    /// "reading objects of job j" for a scan from `start`.
    fn reading(self, start: &[u8]) -> String {
        let what = match self {
            Kind::Object => "objects",
            Kind::Log => "log entries",
            Kind::Meta => "meta",
        };
        match start.iter().position(|b| *b == 0) {
            Some(end) => format!(
                "reading {what} of job {}",
                String::from_utf8_lossy(&start[..end])
            ),
            None => format!("reading {what}"),
        }
    }

    /// `object "u1" of job j`, `log entry 42 of job j`, `meta "deltaLink" of job j`.
    fn describe(self, k: &[u8]) -> String {
        let noun = self.noun();
        let Some(end) = k.iter().position(|b| *b == 0) else {
            return format!(
                "{noun} key {:?} (no job prefix)",
                String::from_utf8_lossy(k)
            );
        };
        let job = String::from_utf8_lossy(&k[..end]);
        let rest = &k[end + 1..];
        match (self, <[u8; 8]>::try_from(rest)) {
            (Kind::Log, Ok(seq)) => format!("{noun} {} of job {job}", u64::from_be_bytes(seq)),
            _ => format!("{noun} {:?} of job {job}", String::from_utf8_lossy(rest)),
        }
    }
}

impl Drop for SledStore {
    fn drop(&mut self) {
        // sled only syncs on its background timer; make a clean close lose nothing.
        if let Err(e) = StateStore::flush(self) {
            tracing::warn!(store = %self.dir.display(), error = %e, "state store flush at close failed");
        }
    }
}

impl StateStore for SledStore {
    fn get(&self, job: &str, source_id: &str) -> Result<Option<ObjectState>, StoreError> {
        check_job(job)?;
        let what = || format!("object {source_id:?} of job {job}");
        match self.objects.get(key(job, source_id.as_bytes())) {
            Ok(Some(v)) => self.decode(what, &v).map(Some),
            Ok(None) => Ok(None),
            Err(e) => Err(self.sled_err(&format!("reading {}", what()), e)),
        }
    }

    fn targets_many(&self, job: &str, ids: &[String]) -> Result<Vec<ObjectTarget>, StoreError> {
        check_job(job)?;
        let mut found = Vec::with_capacity(ids.len());
        for id in ids {
            let what = || format!("object {id:?} of job {job}");
            match self.objects.get(key(job, id.as_bytes())) {
                // Only three fields decoded: the confirmed attributes are skipped unparsed.
                Ok(Some(v)) => found.push(self.decode::<ObjectTarget>(what, &v)?),
                Ok(None) => {}
                Err(e) => return Err(self.sled_err(&format!("reading {}", what()), e)),
            }
        }
        found.sort_by(|a, b| a.source_id.cmp(&b.source_id));
        found.dedup_by(|a, b| a.source_id == b.source_id);
        Ok(found)
    }

    fn list(&self, job: &str) -> Result<Vec<ObjectState>, StoreError> {
        check_job(job)?;
        self.scan(&self.objects, &prefix(job), Kind::Object)
    }

    fn commit(&self, job: &str, change: &StateChange, log: &LogEntry) -> Result<(), StoreError> {
        self.write_encoded(job, vec![self.encode_commit(job, change, log)?], || {
            log.source_id.clone()
        })
    }

    fn commit_batch(&self, job: &str, batch: &[(StateChange, LogEntry)]) -> Result<(), StoreError> {
        let encoded = batch
            .iter()
            .map(|(change, log)| self.encode_commit(job, change, log))
            .collect::<Result<Vec<_>, _>>()?;
        self.write_encoded(job, encoded, || match batch {
            [(_, log)] => log.source_id.clone(),
            _ => format!("{} objects", batch.len()),
        })
    }

    fn logs(&self, job: &str, cycle_id: Option<&str>) -> Result<Vec<LogEntry>, StoreError> {
        check_job(job)?;
        let mut entries: Vec<LogEntry> = self.scan(&self.logs, &prefix(job), Kind::Log)?;
        if let Some(cycle) = cycle_id {
            entries.retain(|e| e.cycle_id == cycle);
        }
        Ok(entries)
    }

    fn get_meta(&self, job: &str, key_name: &str) -> Result<Option<String>, StoreError> {
        check_job(job)?;
        let what = || format!("meta {key_name:?} of job {job}");
        match self.meta.get(key(job, key_name.as_bytes())) {
            Ok(Some(v)) => self.decode(what, &v).map(Some),
            Ok(None) => Ok(None),
            Err(e) => Err(self.sled_err(&format!("reading {}", what()), e)),
        }
    }

    fn put_meta(&self, job: &str, key_name: &str, value: &str) -> Result<(), StoreError> {
        check_job(job)?;
        let v = self.encode("a meta value", &value)?;
        self.meta
            .insert(key(job, key_name.as_bytes()), v)
            .map(|_| ())
            .map_err(|e| self.sled_err(&format!("writing meta {key_name:?} of job {job}"), e))
    }

    fn flush(&self) -> Result<(), StoreError> {
        let generation = self.next_generation()?;
        self.db.flush().map_err(|e| self.sled_err("flushing", e))?;
        self.record_generation(generation)
    }

    fn list_prefix(&self, job: &str, prefix: &str) -> Result<Vec<ObjectState>, StoreError> {
        check_job(job)?;
        self.scan(&self.objects, &key(job, prefix.as_bytes()), Kind::Object)
    }

    fn prune_logs_before(&self, job: &str, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        StoreAdmin::prune_logs(self, job, cutoff)
    }

    fn remove_objects(&self, job: &str) -> Result<u64, StoreError> {
        check_job(job)?;
        let mut n = 0;
        for k in self.objects.scan_prefix(prefix(job)).keys() {
            let k = k.map_err(|e| self.sled_err(&format!("reading objects of job {job}"), e))?;
            self.objects
                .remove(k)
                .map_err(|e| self.sled_err(&format!("removing an object of job {job}"), e))?;
            n += 1;
        }
        Ok(n)
    }

    fn scan_meta(&self, job: &str, prefix: &str) -> Result<Vec<(String, String)>, StoreError> {
        check_job(job)?;
        let start = key(job, prefix.as_bytes());
        let skip = prefix_len(job);
        let mut out = Vec::new();
        for item in self.meta.scan_prefix(&start) {
            let (k, v) = item.map_err(|e| self.sled_err(&Kind::Meta.reading(&start), e))?;
            let name = String::from_utf8_lossy(&k[skip..]).to_string();
            let value: String = self.decode(|| format!("meta {name:?} of job {job}"), &v)?;
            out.push((name, value));
        }
        Ok(out)
    }

    fn remove_meta(&self, job: &str, key_name: &str) -> Result<(), StoreError> {
        check_job(job)?;
        self.meta
            .remove(key(job, key_name.as_bytes()))
            .map(|_| ())
            .map_err(|e| self.sled_err(&format!("removing meta {key_name:?} of job {job}"), e))
    }

    /// Batches of [`RECORD_BATCH`]: a record per assigned user was an insert each.
    fn put_records(
        &self,
        job: &str,
        kind: &str,
        records: &[(String, String)],
    ) -> Result<(), StoreError> {
        check_job(job)?;
        for chunk in records.chunks(RECORD_BATCH) {
            let mut batch = sled::Batch::default();
            for (id, value) in chunk {
                let k = key(job, scimsync_core::record_key(kind, id).as_bytes());
                batch.insert(k, self.encode("a record value", value)?);
            }
            self.apply_meta(batch, || {
                format!("writing {} {kind} records of job {job}", records.len())
            })?;
        }
        Ok(())
    }

    fn mark_records(&self, job: &str, kind: &str, ids: &[String]) -> Result<(), StoreError> {
        let marked: Vec<(String, String)> =
            ids.iter().map(|id| (id.clone(), String::new())).collect();
        self.put_records(job, kind, &marked)
    }

    fn remove_records(&self, job: &str, kind: &str, ids: &[String]) -> Result<(), StoreError> {
        check_job(job)?;
        for chunk in ids.chunks(RECORD_BATCH) {
            let mut batch = sled::Batch::default();
            for id in chunk {
                batch.remove(key(job, scimsync_core::record_key(kind, id).as_bytes()));
            }
            self.apply_meta(batch, || {
                format!("removing {} {kind} records of job {job}", ids.len())
            })?;
        }
        Ok(())
    }
}

/// Records per sled batch. One batch of a 100k cycle's 37,683 assignment records raised the
/// cycle's peak RSS from ~260 to 404 MiB (the batch and what sled keeps while applying it);
/// batches of this size cost the same instructions without the peak.
const RECORD_BATCH: usize = 512;

impl StoreAdmin for SledStore {
    fn jobs(&self) -> Result<Vec<String>, StoreError> {
        let mut jobs = std::collections::BTreeSet::new();
        for tree in [&self.objects, &self.logs, &self.meta] {
            // Skip scan: after finding a job, seek past all its keys (`job \x01` sorts right
            // after every `job \0 …`), so this costs one seek per job, not one per record.
            let mut from: Vec<u8> = Vec::new();
            loop {
                let Some(entry) = tree.range(from.as_slice()..).next() else {
                    break;
                };
                let (k, _) = entry.map_err(|e| self.sled_err("listing jobs", e))?;
                // We only ever write `job \0 …` keys with UTF-8 job ids.
                let Some(end) = k.iter().position(|b| *b == 0) else {
                    return Err(self.corrupt(&format!(
                        "listing jobs: key {:?} has no job prefix",
                        String::from_utf8_lossy(&k)
                    )));
                };
                let job = std::str::from_utf8(&k[..end])
                    .map_err(|e| {
                        self.corrupt(&format!(
                            "listing jobs: key {:?} has a job id that is not UTF-8: {e}",
                            String::from_utf8_lossy(&k)
                        ))
                    })?
                    .to_owned();
                from = k[..end].to_vec();
                from.push(1);
                jobs.insert(job);
            }
        }
        Ok(jobs.into_iter().collect())
    }

    fn meta_entries(&self, job: &str) -> Result<Vec<(String, String)>, StoreError> {
        check_job(job)?;
        let p = prefix(job);
        self.meta
            .scan_prefix(&p)
            .map(|entry| {
                let (k, v) = entry.map_err(|e| self.sled_err(&Kind::Meta.reading(&p), e))?;
                let name = String::from_utf8(k[p.len()..].to_vec()).map_err(|e| {
                    self.corrupt(&format!("{} is not UTF-8: {e}", Kind::Meta.describe(&k)))
                })?;
                let value: String = self.decode(|| format!("meta {name:?} of job {job}"), &v)?;
                Ok((name, value))
            })
            .collect()
    }

    fn put_object(&self, job: &str, object: &ObjectState) -> Result<(), StoreError> {
        check_job(job)?;
        let v = self.encode("an object", object)?;
        self.objects
            .insert(key(job, object.source_id.as_bytes()), v)
            .map(|_| ())
            .map_err(|e| {
                self.sled_err(
                    &format!("writing object {:?} of job {job}", object.source_id),
                    e,
                )
            })
    }

    fn append_log(&self, job: &str, entry: &LogEntry) -> Result<(), StoreError> {
        check_job(job)?;
        let seq = self
            .db
            .generate_id()
            .map_err(|e| self.sled_err("allocating a log sequence number", e))?;
        let v = self.encode("a log entry", entry)?;
        self.logs
            .insert(key(job, &seq.to_be_bytes()), v)
            .map(|_| ())
            .map_err(|e| self.sled_err(&format!("writing a log entry of job {job}"), e))
    }

    fn prune_logs(&self, job: &str, older_than: DateTime<Utc>) -> Result<u64, StoreError> {
        check_job(job)?;
        let mut batch = sled::Batch::default();
        let mut count = 0u64;
        let p = prefix(job);
        /// Only the time of an entry: skipping the rest unparsed keeps a prune over 100,000
        /// entries cheap.
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct When {
            activity_date_time: DateTime<Utc>,
        }
        for entry in self.logs.scan_prefix(&p) {
            let (k, v) = entry.map_err(|e| self.sled_err(&Kind::Log.reading(&p), e))?;
            let log: When = self.decode(|| Kind::Log.describe(&k), &v)?;
            if log.activity_date_time < older_than {
                batch.remove(k);
                count += 1;
            }
        }
        self.logs
            .apply_batch(batch)
            .map_err(|e| self.sled_err(&format!("pruning logs of job {job}"), e))?;
        Ok(count)
    }
}

fn prefix(job: &str) -> Vec<u8> {
    let mut p = Vec::with_capacity(job.len() + 1);
    p.extend_from_slice(job.as_bytes());
    p.push(0);
    p
}

fn prefix_len(job: &str) -> usize {
    job.len() + 1
}

fn key(job: &str, rest: &[u8]) -> Vec<u8> {
    let mut k = prefix(job);
    k.extend_from_slice(rest);
    k
}

fn busy(dir: &Path) -> StoreError {
    StoreError::new(format!(
        "state store {} is locked by another process: is another scimsync process running on \
         this job?",
        dir.display()
    ))
}

fn acquire_lock(dir: &Path) -> Result<File, StoreError> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| {
            StoreError::new(format!(
                "state store: cannot open lock file {}: {e}",
                path.display()
            ))
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(busy(dir)),
        Err(fs::TryLockError::Error(e)) => Err(StoreError::new(format!(
            "state store: cannot lock {}: {e}",
            path.display()
        ))),
    }
}

/// [`open_trees_once`], waiting out a just-dropped instance's sled lock (a few seconds).
fn open_trees(dir: &Path) -> Result<Trees, OpenFailure> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match open_trees_once(dir) {
            Err(OpenFailure::SledLocked) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(OpenFailure::SledLocked) => return Err(OpenFailure::Fatal(busy(dir))),
            other => return other,
        }
    }
}

fn open_trees_once(dir: &Path) -> Result<Trees, OpenFailure> {
    // An earlier instance found damage that open does not see (see `SledStore::corrupt`).
    if let Some(reason) = read_corrupt_note(dir)? {
        return Err(OpenFailure::Corrupt(reason));
    }
    // Read before sled runs its recovery, which rewrites the files it finds torn.
    let recorded = read_integrity(dir)?;
    // sled silently starts empty when it finds no valid segment in `db`, so a store we wrote
    // before must still carry our marker, or it is reported as corrupt like any other.
    let existed = fs::metadata(dir.join("db")).is_ok_and(|m| m.len() > 0);
    let attempt = catch_unwind(AssertUnwindSafe(|| -> Result<Trees, OpenFailure> {
        let sled_err = |e| classify(dir, e);
        let db = sled::Config::new()
            .path(dir)
            .mode(Mode::LowSpace)
            .cache_capacity(CACHE_CAPACITY)
            .open()
            .map_err(sled_err)?;
        let written = match db.get(MARKER_KEY).map_err(|e| probe_err(dir, e))? {
            Some(v) if v.as_ref() == MARKER_VALUE => {
                let written = read_generation(dir, &db)?;
                if let Some(recorded) = recorded.filter(|r| written < *r) {
                    let recovered = match written {
                        0 => "without any flush".to_owned(),
                        n => format!("only as of flush {n}"),
                    };
                    return Err(OpenFailure::Corrupt(format!(
                        "sled recovered the database {recovered}, but flush {recorded} had \
                         completed: data written before that flush is lost (the database file \
                         is truncated or overwritten)"
                    )));
                }
                written
            }
            Some(v) => {
                return Err(OpenFailure::Fatal(StoreError::new(format!(
                    "state store {} has format {:?}, this scimsync reads {:?}",
                    dir.display(),
                    String::from_utf8_lossy(&v),
                    String::from_utf8_lossy(MARKER_VALUE)
                ))));
            }
            None if existed => {
                return Err(OpenFailure::Corrupt(
                    "sled recovered no data from the existing database file".to_owned(),
                ));
            }
            None if recorded.is_some() => {
                return Err(OpenFailure::Corrupt(format!(
                    "the database file is empty or missing, but flush {} of it had completed",
                    recorded.unwrap_or_default()
                )));
            }
            None => {
                // A new store: `SledStore::open` flushes the marker with the first generation.
                db.insert(MARKER_KEY, MARKER_VALUE).map_err(sled_err)?;
                0
            }
        };
        let objects = db.open_tree("objects").map_err(sled_err)?;
        let logs = db.open_tree("logs").map_err(sled_err)?;
        let meta = db.open_tree("meta").map_err(sled_err)?;
        // With a snapshot sled reads pages only when they are needed, so damage behind it
        // shows only then; reading both ends of every tree catches much of it for a few reads
        // (the newest pages, those a truncation takes, sit at the ends of the log trees).
        for (name, tree) in [("objects", &objects), ("logs", &logs), ("meta", &meta)] {
            for end in [tree.first(), tree.last()] {
                end.map_err(|e| match probe_err(dir, e) {
                    OpenFailure::Corrupt(m) => OpenFailure::Corrupt(format!("reading {name}: {m}")),
                    other => other,
                })?;
            }
        }
        Ok(Trees {
            db,
            objects,
            logs,
            meta,
            generations: Generations {
                written,
                recorded: recorded.unwrap_or(0),
            },
        })
    }));
    match attempt {
        Ok(result) => result,
        // sled 0.34 asserts on some malformed files instead of returning an error.
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "sled panicked while opening".to_owned());
            Err(OpenFailure::Corrupt(msg))
        }
    }
}

/// The flush generation sled recovered (0 for a store from before generations).
fn read_generation(dir: &Path, db: &Db) -> Result<u64, OpenFailure> {
    match db.get(GENERATION_KEY).map_err(|e| probe_err(dir, e))? {
        None => Ok(0),
        Some(v) => <[u8; 8]>::try_from(v.as_ref())
            .map(u64::from_be_bytes)
            .map_err(|_| {
                OpenFailure::Corrupt(format!(
                    "the flush generation in the database is {} bytes, not 8",
                    v.len()
                ))
            }),
    }
}

/// A sled error while probing an opened database: damage makes it corrupt.
fn probe_err(dir: &Path, e: sled::Error) -> OpenFailure {
    if is_damage(&e) {
        OpenFailure::Corrupt(e.to_string())
    } else {
        classify(dir, e)
    }
}

/// Whether a sled error after open means its files are damaged: a checksum or format
/// failure, a page cut off by a truncation, or a blob file that is gone.
fn is_damage(e: &sled::Error) -> bool {
    match e {
        sled::Error::Corruption { .. } => true,
        sled::Error::Io(io) => matches!(
            io.kind(),
            io::ErrorKind::NotFound | io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidData
        ),
        _ => false,
    }
}

/// The reason left by [`SledStore::corrupt`], if any.
fn read_corrupt_note(dir: &Path) -> Result<Option<String>, OpenFailure> {
    let path = dir.join(CORRUPT_FILE);
    match fs::read(&path) {
        Ok(bytes) => {
            let note = String::from_utf8_lossy(&bytes);
            let note = note.trim();
            Ok(Some(if note.is_empty() {
                "an earlier read found the store corrupt".to_owned()
            } else {
                format!("an earlier read found the store corrupt: {note}")
            }))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(OpenFailure::Fatal(StoreError::new(format!(
            "state store {}: cannot read {}: {e}",
            dir.display(),
            path.display()
        )))),
    }
}

/// The generation in the integrity file: `None` when there is none (a new store, or one
/// from before the file existed); corrupt when it is not what [`write_integrity`] writes.
fn read_integrity(dir: &Path) -> Result<Option<u64>, OpenFailure> {
    let path = dir.join(INTEGRITY_FILE);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(OpenFailure::Fatal(StoreError::new(format!(
                "state store {}: cannot read {}: {e}",
                dir.display(),
                path.display()
            ))));
        }
    };
    parse_integrity(&bytes).map(Some).ok_or_else(|| {
        OpenFailure::Corrupt(format!(
            "the integrity record {INTEGRITY_FILE} is damaged ({} bytes that are not a record)",
            bytes.len()
        ))
    })
}

fn integrity_text(generation: u64) -> String {
    format!("{INTEGRITY_HEADER}\ngeneration {generation}\nend\n")
}

fn parse_integrity(bytes: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut lines = text.strip_suffix("\nend\n")?.split('\n');
    if lines.next()? != INTEGRITY_HEADER {
        return None;
    }
    let n = lines.next()?.strip_prefix("generation ")?;
    if lines.next().is_some() || n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

/// Replace the integrity file: written and synced under another name, then renamed, so a
/// crash leaves the old record or the new one, never a torn one.
fn write_integrity(dir: &Path, generation: u64) -> io::Result<()> {
    use std::io::Write;
    let tmp = dir.join(INTEGRITY_TMP);
    let mut f = File::create(&tmp)?;
    f.write_all(integrity_text(generation).as_bytes())?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, dir.join(INTEGRITY_FILE))
}

fn classify(dir: &Path, e: sled::Error) -> OpenFailure {
    match e {
        sled::Error::Io(io) => {
            // Our own lock makes this unlikely, but sled has its own lock on `db`.
            if io.to_string().contains("could not acquire lock") {
                return OpenFailure::SledLocked;
            }
            match io.kind() {
                io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof => {
                    OpenFailure::Corrupt(io.to_string())
                }
                _ => OpenFailure::Fatal(StoreError::new(format!(
                    "state store {}: cannot open: {io}",
                    dir.display()
                ))),
            }
        }
        other => OpenFailure::Corrupt(other.to_string()),
    }
}

/// Move everything but our lock file into `<dir>.corrupt-<timestamp>`: entries rather than
/// the directory itself, so our lock is held throughout and no other process can slip in.
fn move_aside(dir: &Path) -> Result<PathBuf, StoreError> {
    let stamp = Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let base = dir.as_os_str().to_owned();
    let mut aside = None;
    for n in 0..100u32 {
        let mut name = base.clone();
        name.push(format!(".corrupt-{stamp}"));
        if n > 0 {
            name.push(format!("-{n}"));
        }
        let candidate = PathBuf::from(name);
        match fs::create_dir(&candidate) {
            Ok(()) => {
                aside = Some(candidate);
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(StoreError::new(format!(
                    "state store {} is corrupt and cannot be moved aside to {}: {e}",
                    dir.display(),
                    candidate.display()
                )));
            }
        }
    }
    let aside = aside.ok_or_else(|| {
        StoreError::new(format!(
            "state store {} is corrupt and no free name to move it aside was found",
            dir.display()
        ))
    })?;
    let fail = |e: io::Error| {
        StoreError::new(format!(
            "state store {} is corrupt and moving it to {} failed: {e}; remove its contents \
             (the next cycle re-matches every object)",
            dir.display(),
            aside.display()
        ))
    };
    for entry in fs::read_dir(dir).map_err(fail)? {
        let entry = entry.map_err(fail)?;
        if entry.file_name() == LOCK_FILE {
            continue;
        }
        fs::rename(entry.path(), aside.join(entry.file_name())).map_err(fail)?;
    }
    Ok(aside)
}

#[cfg(test)]
#[path = "sled_damage_tests.rs"]
mod damage_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance;
    use tempfile::TempDir;

    /// A store with its temporary directory; fields drop in order, store first.
    struct TempStore {
        store: SledStore,
        _dir: TempDir,
    }

    impl TempStore {
        fn new() -> Self {
            let dir = tempfile::tempdir().expect("tempdir");
            let (store, report) = SledStore::open(&dir.path().join("state")).expect("open");
            assert_eq!(report.moved_aside, None);
            TempStore { store, _dir: dir }
        }
    }

    impl StateStore for TempStore {
        fn get(&self, job: &str, source_id: &str) -> Result<Option<ObjectState>, StoreError> {
            self.store.get(job, source_id)
        }
        fn list(&self, job: &str) -> Result<Vec<ObjectState>, StoreError> {
            self.store.list(job)
        }
        fn commit(&self, job: &str, c: &StateChange, log: &LogEntry) -> Result<(), StoreError> {
            self.store.commit(job, c, log)
        }
        fn commit_batch(
            &self,
            job: &str,
            batch: &[(StateChange, LogEntry)],
        ) -> Result<(), StoreError> {
            self.store.commit_batch(job, batch)
        }
        fn logs(&self, job: &str, cycle_id: Option<&str>) -> Result<Vec<LogEntry>, StoreError> {
            self.store.logs(job, cycle_id)
        }
        fn get_meta(&self, job: &str, key: &str) -> Result<Option<String>, StoreError> {
            self.store.get_meta(job, key)
        }
        fn put_meta(&self, job: &str, key: &str, value: &str) -> Result<(), StoreError> {
            self.store.put_meta(job, key, value)
        }
        fn prune_logs_before(&self, job: &str, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
            self.store.prune_logs_before(job, cutoff)
        }
        fn list_prefix(&self, job: &str, prefix: &str) -> Result<Vec<ObjectState>, StoreError> {
            self.store.list_prefix(job, prefix)
        }
        fn remove_objects(&self, job: &str) -> Result<u64, StoreError> {
            self.store.remove_objects(job)
        }
        fn scan_meta(&self, job: &str, prefix: &str) -> Result<Vec<(String, String)>, StoreError> {
            self.store.scan_meta(job, prefix)
        }
        fn remove_meta(&self, job: &str, key: &str) -> Result<(), StoreError> {
            self.store.remove_meta(job, key)
        }
        fn flush(&self) -> Result<(), StoreError> {
            self.store.flush()
        }
    }

    impl StoreAdmin for TempStore {
        fn jobs(&self) -> Result<Vec<String>, StoreError> {
            self.store.jobs()
        }
        fn meta_entries(&self, job: &str) -> Result<Vec<(String, String)>, StoreError> {
            self.store.meta_entries(job)
        }
        fn put_object(&self, job: &str, object: &ObjectState) -> Result<(), StoreError> {
            self.store.put_object(job, object)
        }
        fn append_log(&self, job: &str, entry: &LogEntry) -> Result<(), StoreError> {
            self.store.append_log(job, entry)
        }
        fn prune_logs(&self, job: &str, older_than: DateTime<Utc>) -> Result<u64, StoreError> {
            self.store.prune_logs(job, older_than)
        }
    }

    #[test]
    fn sled_store_passes_the_conformance_suite() {
        conformance::run_all(TempStore::new);
    }

    #[test]
    fn sled_store_passes_the_admin_suite() {
        conformance::run_admin(TempStore::new);
    }

    #[test]
    fn data_survives_close_and_reopen() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("state");
        let object = conformance::object("u1", "t1");
        let log = conformance::log_entry("job", "c1", "u1");
        {
            let (store, _) = SledStore::open(&dir).expect("open");
            store
                .commit("job", &StateChange::Put(object.clone()), &log)
                .expect("commit");
            store
                .put_meta("job", "deltaLink", "https://x/delta")
                .expect("meta");
        }
        let (store, report) = SledStore::open(&dir).expect("reopen");
        assert_eq!(report.moved_aside, None);
        assert_eq!(store.get("job", "u1").expect("get"), Some(object));
        assert_eq!(store.logs("job", None).expect("logs"), vec![log]);
        assert_eq!(
            store.get_meta("job", "deltaLink").expect("meta").as_deref(),
            Some("https://x/delta")
        );
    }

    #[test]
    fn logs_keep_their_order_across_reopen() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("state");
        {
            let (store, _) = SledStore::open(&dir).expect("open");
            for i in 0..3 {
                let log = conformance::log_entry("job", "c1", &format!("first{i}"));
                store
                    .commit("job", &StateChange::None, &log)
                    .expect("commit");
            }
        }
        let (store, _) = SledStore::open(&dir).expect("reopen");
        let log = conformance::log_entry("job", "c2", "after");
        store
            .commit("job", &StateChange::None, &log)
            .expect("commit");
        let order: Vec<String> = store
            .logs("job", None)
            .expect("logs")
            .into_iter()
            .map(|e| e.source_id)
            .collect();
        assert_eq!(order, ["first0", "first1", "first2", "after"]);
    }

    #[test]
    fn second_open_while_first_is_open_fails_clearly() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("state");
        let (first, _) = SledStore::open(&dir).expect("open");
        first.put_meta("job", "k", "v").expect("meta");
        let err = SledStore::open(&dir).expect_err("second open must fail");
        assert!(
            err.message.contains("another scimsync process"),
            "unclear message: {}",
            err.message
        );
        assert!(err.message.contains(&dir.display().to_string()));
        // The busy store was not mistaken for a corrupt one.
        assert_eq!(
            first.get_meta("job", "k").expect("meta").as_deref(),
            Some("v")
        );
        let siblings = fs::read_dir(tmp.path()).expect("read_dir").count();
        assert_eq!(siblings, 1, "nothing was moved aside");
        drop(first);
        SledStore::open(&dir).expect("open after the first closed");
    }

    /// Fill a store, then overwrite the sled files whose names `damage` accepts with
    /// garbage, as a bad disk or a bad copy would.
    fn damaged_store(tmp: &Path, damage: fn(&str) -> bool) -> PathBuf {
        let dir = tmp.join("state");
        {
            let (store, _) = SledStore::open(&dir).expect("open");
            store
                .commit(
                    "job",
                    &StateChange::Put(conformance::object("u1", "t1")),
                    &conformance::log_entry("job", "c1", "u1"),
                )
                .expect("commit");
        }
        let garbage: Vec<u8> = (0..64 * 1024u32).map(|i| (i * 7919 % 251) as u8).collect();
        for entry in fs::read_dir(&dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            if path.is_file() && name != LOCK_FILE && damage(&name) {
                fs::write(&path, &garbage).expect("write garbage");
            }
        }
        dir
    }

    fn assert_moved_aside_and_fresh(dir: &Path) {
        let (store, report) = SledStore::open(dir).expect("open after corruption");
        assert!(report.reason.is_some(), "the report says why");
        let aside = report
            .moved_aside
            .expect("report names where the store went");
        let name = aside
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        assert!(name.starts_with("state.corrupt-"), "{name}");
        assert_eq!(aside.parent(), dir.parent(), "moved next to the store");
        assert!(
            aside.join("db").is_file(),
            "the corrupt files are kept for inspection"
        );
        // The fresh store is empty (the next cycle re-matches) and works.
        assert_eq!(store.get("job", "u1").expect("get"), None);
        store
            .commit(
                "job",
                &StateChange::Put(conformance::object("u2", "t2")),
                &conformance::log_entry("job", "c2", "u2"),
            )
            .expect("commit");
        drop(store);
        let (store, report) = SledStore::open(dir).expect("reopen");
        assert_eq!(report, OpenReport::default(), "the fresh store is healthy");
        assert!(store.get("job", "u2").expect("get").is_some());
    }

    #[test]
    fn garbage_store_is_moved_aside_and_a_fresh_one_opens() {
        let tmp = tempfile::tempdir().expect("tempdir");
        assert_moved_aside_and_fresh(&damaged_store(tmp.path(), |_| true));
    }

    #[test]
    fn garbage_data_file_alone_is_not_silently_treated_as_empty() {
        // sled itself opens this as an empty database without any error.
        let tmp = tempfile::tempdir().expect("tempdir");
        assert_moved_aside_and_fresh(&damaged_store(tmp.path(), |name| name == "db"));
    }

    #[test]
    fn export_then_import_into_a_fresh_store_gives_the_same_state() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (src, _) = SledStore::open(&tmp.path().join("a")).expect("open");
        conformance::fill_two_jobs(&src);
        let mut dump = Vec::new();
        let written = crate::export(&src, None, &mut dump).expect("export");
        assert!(written > 0);

        let (dst, _) = SledStore::open(&tmp.path().join("b")).expect("open");
        let read = crate::import(&dst, None, dump.as_slice()).expect("import");
        assert_eq!(read, written);
        for job in ["a", "ab"] {
            assert_eq!(dst.list(job).expect("list"), src.list(job).expect("list"));
            assert_eq!(
                dst.logs(job, None).expect("logs"),
                src.logs(job, None).expect("logs")
            );
            assert_eq!(
                dst.meta_entries(job).expect("meta"),
                src.meta_entries(job).expect("meta")
            );
        }
        assert_eq!(dst.jobs().expect("jobs"), ["a", "ab"]);
    }

    #[test]
    fn prune_logs_keeps_recent_entries() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (store, _) = SledStore::open(&tmp.path().join("s")).expect("open");
        let mut old = conformance::log_entry("job", "c1", "old");
        old.activity_date_time = Utc::now() - chrono::Duration::days(40);
        let new = conformance::log_entry("job", "c2", "new");
        store
            .commit("job", &StateChange::None, &old)
            .expect("commit");
        store
            .commit("job", &StateChange::None, &new)
            .expect("commit");
        let cutoff = Utc::now() - chrono::Duration::days(30);
        assert_eq!(store.prune_logs("job", cutoff).expect("prune"), 1);
        assert_eq!(store.logs("job", None).expect("logs"), vec![new]);
        assert!(store.size_on_disk().expect("size") > 0);
    }
}
