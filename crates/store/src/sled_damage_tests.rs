//! A sled store damaged on disk after real data was written and flushed: every kind of damage
//! is either moved aside at open with a reason, or fails the read that meets it with a
//! `StateStoreFailed` error naming the job and key and is moved aside at the next open. None
//! may open as a store that silently lost objects (the engine would match them all again
//! without the admin being told).
//!
//! Sled-only: the memory store has no files to damage.

use super::*;
use crate::conformance;
use scimsync_core::ErrorCode;
use tempfile::TempDir;

const OBJECTS: usize = 300;
const BIG: usize = 300 * 1024;

/// How a store was filled before it was damaged.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fill {
    /// One session: sled has no snapshot and recovers by replaying its whole log.
    OneSession,
    /// Three sessions: sled wrote a snapshot and reads older pages only when needed.
    WithSnapshot,
}

/// `OBJECTS` objects and log entries of job `job`, a `deltaLink`, and a value of `BIG` bytes
/// (which sled writes to its own blob file) in the middle; flushed and closed.
fn filled(fill: Fill) -> (TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("state");
    {
        let (store, report) = SledStore::open(&dir).expect("open");
        assert_eq!(report, OpenReport::default());
        for i in 0..OBJECTS {
            let id = format!("u{i:04}");
            store
                .commit(
                    "job",
                    &StateChange::Put(conformance::object(&id, &format!("t{i}"))),
                    &conformance::log_entry("job", "c1", &id),
                )
                .expect("commit");
            if i == OBJECTS / 3 {
                store
                    .put_meta("job", "rec/big/1", &"x".repeat(BIG))
                    .expect("big meta");
            }
        }
        store
            .put_meta("job", "deltaLink", "https://x/delta")
            .expect("meta");
        store.flush().expect("flush");
    }
    if fill == Fill::WithSnapshot {
        for n in 0..2 {
            let (store, report) = SledStore::open(&dir).expect("reopen");
            assert_eq!(report, OpenReport::default());
            store
                .put_meta("job", &format!("session{n}"), "1")
                .expect("meta");
            store.flush().expect("flush");
        }
        assert!(!snapshots(&dir).is_empty(), "sled wrote a snapshot");
    }
    assert!(!blobs(&dir).is_empty(), "the big value is in a blob file");
    (tmp, dir)
}

/// The store holds everything [`filled`] wrote.
fn assert_intact(store: &SledStore) {
    assert_eq!(store.list("job").expect("list").len(), OBJECTS);
    assert_eq!(store.logs("job", None).expect("logs").len(), OBJECTS);
    assert_eq!(
        store.get_meta("job", "deltaLink").expect("meta").as_deref(),
        Some("https://x/delta")
    );
    let big = store.get_meta("job", "rec/big/1").expect("big meta");
    assert_eq!(big.map(|v| v.len()), Some(BIG));
    store.verify().expect("verify");
}

fn snapshots(dir: &Path) -> Vec<PathBuf> {
    files(dir, |name| {
        name.starts_with("snap.") && !name.ends_with(".generating")
    })
}

fn blobs(dir: &Path) -> Vec<PathBuf> {
    files(&dir.join("blobs"), |_| true)
}

fn files(dir: &Path, keep: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_file() && keep(&p.file_name().expect("name").to_string_lossy()))
        .collect();
    out.sort();
    out
}

fn set_len(path: &Path, len: impl Fn(u64) -> u64) {
    let file = OpenOptions::new().write(true).open(path).expect("open");
    let old = file.metadata().expect("metadata").len();
    file.set_len(len(old)).expect("set_len");
}

/// Overwrite `n` bytes from `at` (a fraction of the length) with garbage.
fn overwrite(path: &Path, at: f64, n: usize) {
    let mut bytes = fs::read(path).expect("read");
    let start = (bytes.len() as f64 * at) as usize;
    let end = (start + n).min(bytes.len());
    for (i, b) in bytes[start..end].iter_mut().enumerate() {
        *b = (i * 7919 % 251) as u8 ^ 0xa5;
    }
    fs::write(path, bytes).expect("write");
}

/// Open the damaged store and require that it was moved aside; returns the reason. The
/// fresh store is empty, works, and reopens without a report.
fn assert_moved_aside(dir: &Path) -> String {
    let (store, report) = SledStore::open(dir).expect("open after damage");
    let aside = report
        .moved_aside
        .clone()
        .unwrap_or_else(|| panic!("not moved aside: {report:?}"));
    let reason = report.reason.clone().expect("the report says why");
    assert!(
        aside
            .file_name()
            .expect("name")
            .to_string_lossy()
            .starts_with("state.corrupt-")
    );
    assert!(
        fs::read_dir(&aside).expect("aside").next().is_some(),
        "the damaged files are kept for inspection"
    );
    assert_eq!(store.list("job").expect("list"), vec![]);
    store
        .commit(
            "job",
            &StateChange::Put(conformance::object("new", "t")),
            &conformance::log_entry("job", "c2", "new"),
        )
        .expect("commit");
    drop(store);
    let (store, report) = SledStore::open(dir).expect("reopen");
    assert_eq!(report, OpenReport::default(), "the fresh store is healthy");
    assert!(store.get("job", "new").expect("get").is_some());
    reason
}

/// The error of a read that met damage: our code, "corrupt", the store and `names`.
fn assert_corrupt_error(err: &StoreError, dir: &Path, names: &str) {
    assert_eq!(err.code, ErrorCode::StateStoreFailed);
    assert!(err.message.contains("is corrupt"), "{}", err.message);
    assert!(
        err.message.contains(&dir.display().to_string()),
        "{}",
        err.message
    );
    assert!(err.message.contains(names), "{}", err.message);
    assert!(err.message.contains("moved aside"), "{}", err.message);
    // The CLI takes "locked" to mean another process holds the store.
    assert!(!err.message.contains("locked"), "{}", err.message);
}

/// The damage is found either at open (moved aside) or by reading everything; in the second
/// case the next open moves the store aside with the read's reason. Returns the reason.
fn assert_detected(dir: &Path) -> String {
    let (store, report) = SledStore::open(dir).expect("open after damage");
    if let Some(reason) = report.reason {
        assert!(report.moved_aside.is_some());
        drop(store);
        let (store, report) = SledStore::open(dir).expect("reopen");
        assert_eq!(report, OpenReport::default());
        assert_eq!(store.list("job").expect("list"), vec![]);
        return reason;
    }
    let err = store
        .verify()
        .expect_err("damage that open did not see must fail the read that meets it");
    // A page sled cannot read names the tree; a value that does not decode, its key.
    assert_corrupt_error(&err, dir, "reading");
    drop(store);
    let reason = assert_moved_aside(dir);
    assert!(
        reason.starts_with("an earlier read found the store corrupt"),
        "{reason}"
    );
    reason
}

// --- (a) truncation -------------------------------------------------------------------------

#[test]
fn truncated_database_without_snapshot_is_moved_aside() {
    // Before: sled replayed the valid prefix and the store opened with 80 to 270 of the 300
    // objects (or none at all for an empty file), without a word.
    type NewLen = fn(u64) -> u64;
    let cases: [(&str, NewLen); 5] = [
        ("90%", |l| l * 9 / 10),
        ("half", |l| l / 2),
        ("a quarter", |l| l / 4),
        ("16 bytes", |_| 16),
        ("0 bytes", |_| 0),
    ];
    for (name, len) in cases {
        let (_tmp, dir) = filled(Fill::OneSession);
        set_len(&dir.join("db"), len);
        let reason = assert_moved_aside(&dir);
        assert!(
            reason.contains("flush") || reason.contains("no data"),
            "{name}: {reason}"
        );
    }
}

#[test]
fn removed_database_file_is_moved_aside() {
    // Before: sled created an empty database and the store opened empty, without a word.
    let (_tmp, dir) = filled(Fill::OneSession);
    fs::remove_file(dir.join("db")).expect("remove");
    let reason = assert_moved_aside(&dir);
    assert!(reason.contains("empty or missing"), "{reason}");
}

#[test]
fn truncated_database_with_snapshot_is_detected() {
    // Before: the half-truncated store opened without a report and every read failed with
    // sled's raw "Read corrupted data" error, at every open, for ever.
    for len in [|l| l / 2, |l| l / 4, |_| 0] as [fn(u64) -> u64; 3] {
        let (_tmp, dir) = filled(Fill::WithSnapshot);
        set_len(&dir.join("db"), len);
        assert_detected(&dir);
    }
}

#[test]
fn truncated_or_garbled_blob_without_snapshot_is_moved_aside() {
    // Before: sled stopped replaying at the damaged blob and opened with the first third.
    for damage in [
        |p: &Path| set_len(p, |l| l / 2),
        |p: &Path| set_len(p, |_| 0),
        |p: &Path| overwrite(p, 0.5, 64),
    ] {
        let (_tmp, dir) = filled(Fill::OneSession);
        for blob in blobs(&dir) {
            damage(&blob);
        }
        let reason = assert_moved_aside(&dir);
        assert!(reason.contains("flush"), "{reason}");
    }
}

#[test]
fn damaged_blob_with_snapshot_is_detected() {
    // Before: opened without a report; every read of the meta values failed with sled's raw
    // error (or "No such file or directory") for ever.
    for damage in [
        |p: &Path| set_len(p, |l| l / 2),
        |p: &Path| overwrite(p, 0.5, 64),
        |p: &Path| fs::remove_file(p).expect("remove"),
    ] {
        let (_tmp, dir) = filled(Fill::WithSnapshot);
        for blob in blobs(&dir) {
            damage(&blob);
        }
        assert_detected(&dir);
    }
}

#[test]
fn known_limitation_removed_blob_without_snapshot_goes_unnoticed() {
    // sled deletes blob files it no longer needs and skips a missing one when it replays its
    // log, so a removed blob file loses exactly that value (one of at least ~128 KiB) and
    // nothing tells it from sled's own clean-up. Pinned so a change in sled shows here.
    let (_tmp, dir) = filled(Fill::OneSession);
    for blob in blobs(&dir) {
        fs::remove_file(blob).expect("remove");
    }
    let (store, report) = SledStore::open(&dir).expect("open");
    assert_eq!(report, OpenReport::default());
    assert_eq!(store.list("job").expect("list").len(), OBJECTS);
    assert_eq!(store.get_meta("job", "rec/big/1").expect("meta"), None);
}

// --- (b) garbage in the middle --------------------------------------------------------------

#[test]
fn garbage_in_the_middle_of_the_database_without_snapshot_is_moved_aside() {
    // Before: sled replayed up to the garbage and opened with about half of the objects.
    for (at, n) in [(0.5, 64), (0.5, 4096), (0.3, 64 * 1024), (0.9, 16)] {
        let (_tmp, dir) = filled(Fill::OneSession);
        overwrite(&dir.join("db"), at, n);
        let reason = assert_moved_aside(&dir);
        assert!(reason.contains("flush"), "{at} {n}: {reason}");
    }
}

#[test]
fn garbage_in_the_middle_of_the_database_with_snapshot_is_detected() {
    // Before: opened without a report; the reads that met a damaged page failed with sled's
    // raw error at every open, the others went on.
    for (at, n) in [(0.25, 4096), (0.5, 4096), (0.1, 512 * 1024)] {
        let (_tmp, dir) = filled(Fill::WithSnapshot);
        overwrite(&dir.join("db"), at, n);
        let (store, report) = SledStore::open(&dir).expect("open");
        if report.moved_aside.is_some() {
            continue;
        }
        // Garbage over pages sled no longer uses loses nothing; anything else is detected.
        match store.verify() {
            Ok(_) => assert_intact(&store),
            Err(err) => {
                assert_corrupt_error(&err, &dir, "reading");
                drop(store);
                assert_moved_aside(&dir);
            }
        }
    }
}

// --- (c) sled's `conf` and snapshot files ---------------------------------------------------

#[test]
fn conf_removed_or_emptied_is_rewritten_by_sled_and_loses_nothing() {
    // Before and after: sled writes a new `conf`; the data is all there.
    for damage in [
        |p: &Path| fs::remove_file(p).expect("remove"),
        |p: &Path| set_len(p, |_| 0),
        |p: &Path| set_len(p, |_| 4),
    ] {
        let (_tmp, dir) = filled(Fill::OneSession);
        damage(&dir.join("conf"));
        let (store, report) = SledStore::open(&dir).expect("open");
        assert_eq!(report, OpenReport::default());
        assert_intact(&store);
    }
}

#[test]
fn conf_garbled_is_moved_aside() {
    // Before and after: sled refuses it (corruption, or a changed segment size).
    for garble in [
        |b: &mut Vec<u8>| *b = b"garbage garbage garbage\n".to_vec(),
        |b: &mut Vec<u8>| {
            let at = b
                .windows(6)
                .position(|w| w == b"524288")
                .expect("segment size");
            b[at] = b'6';
        },
    ] {
        let (_tmp, dir) = filled(Fill::OneSession);
        let mut bytes = fs::read(dir.join("conf")).expect("read");
        garble(&mut bytes);
        fs::write(dir.join("conf"), bytes).expect("write");
        assert_moved_aside(&dir);
    }
}

#[test]
fn snapshot_garbled_or_truncated_is_moved_aside() {
    // Before and after: sled reports corruption at open.
    for damage in [
        |p: &Path| overwrite(p, 0.5, 64),
        |p: &Path| set_len(p, |l| l / 2),
        |p: &Path| set_len(p, |_| 0),
    ] {
        let (_tmp, dir) = filled(Fill::WithSnapshot);
        for snap in snapshots(&dir) {
            damage(&snap);
        }
        assert_moved_aside(&dir);
    }
}

#[test]
fn snapshot_removed_loses_nothing_or_is_moved_aside() {
    // sled replays its whole log without a snapshot; when segments were reused it recovers
    // less, which the flush generation (or the marker) catches.
    let (_tmp, dir) = filled(Fill::WithSnapshot);
    for snap in snapshots(&dir) {
        fs::remove_file(snap).expect("remove");
    }
    let (store, report) = SledStore::open(&dir).expect("open");
    if report.moved_aside.is_none() {
        assert_intact(&store);
    }
}

// --- our own files ----------------------------------------------------------------------------

#[test]
fn garbled_integrity_record_is_moved_aside() {
    for garble in [
        |p: &Path| fs::write(p, b"\x00\x01garbage").expect("write"),
        |p: &Path| set_len(p, |l| l - 3),
        |p: &Path| set_len(p, |_| 0),
        |p: &Path| {
            let text = fs::read_to_string(p).expect("read");
            fs::write(p, text.replace("generation ", "generation x")).expect("write");
        },
    ] {
        let (_tmp, dir) = filled(Fill::OneSession);
        garble(&dir.join(INTEGRITY_FILE));
        let reason = assert_moved_aside(&dir);
        assert!(reason.contains(INTEGRITY_FILE), "{reason}");
    }
}

#[test]
fn removed_integrity_record_is_written_again() {
    // Cannot be told from a store written before the record existed: opens, and from then on
    // damage is caught again.
    let (_tmp, dir) = filled(Fill::OneSession);
    fs::remove_file(dir.join(INTEGRITY_FILE)).expect("remove");
    {
        let (store, report) = SledStore::open(&dir).expect("open");
        assert_eq!(report, OpenReport::default());
        assert_intact(&store);
    }
    assert!(dir.join(INTEGRITY_FILE).is_file());
    set_len(&dir.join("db"), |l| l / 2);
    assert_moved_aside(&dir);
}

#[test]
fn store_from_before_the_integrity_record_opens_and_gets_one() {
    let (_tmp, dir) = filled(Fill::OneSession);
    {
        // What an earlier scimsync left: no generation in sled, no integrity file.
        let db = raw_sled(&dir);
        db.remove(GENERATION_KEY).expect("remove");
        db.flush().expect("flush");
    }
    fs::remove_file(dir.join(INTEGRITY_FILE)).expect("remove");
    {
        let (store, report) = SledStore::open(&dir).expect("open");
        assert_eq!(report, OpenReport::default());
        assert_intact(&store);
    }
    let record = fs::read(dir.join(INTEGRITY_FILE)).expect("record");
    assert!(parse_integrity(&record).is_some_and(|g| g >= 1));
    let (_store, report) = SledStore::open(&dir).expect("reopen");
    assert_eq!(report, OpenReport::default());
}

// --- (d) values that do not decode ----------------------------------------------------------

/// Write `value` under `key` of `tree` behind the store's back.
fn poke(dir: &Path, tree: &str, key: &[u8], value: &[u8]) {
    let db = raw_sled(dir);
    db.open_tree(tree)
        .expect("tree")
        .insert(key, value)
        .expect("insert");
    db.flush().expect("flush");
}

/// sled itself on the store's directory, once a just-closed store released sled's lock.
fn raw_sled(dir: &Path) -> Db {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match sled::Config::new().path(dir).mode(Mode::LowSpace).open() {
            Ok(db) => return db,
            Err(e) if std::time::Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("sled: {e}"),
        }
    }
}

fn raw_key(job: &str, rest: &[u8]) -> Vec<u8> {
    key(job, rest)
}

#[test]
fn object_that_does_not_decode_fails_every_read_by_name_and_is_moved_aside() {
    // Before: get failed naming the object, but list and list_prefix failed with "a record of
    // job job is unreadable" (no key), for ever; the store was never moved aside.
    for value in [&b"\x00\xffgarbage"[..], b"{\"sourceId\":\"u0007\"}", b""] {
        let (_tmp, dir) = filled(Fill::OneSession);
        poke(&dir, "objects", &raw_key("job", b"u0007"), value);
        {
            let (store, report) = SledStore::open(&dir).expect("open");
            assert_eq!(report, OpenReport::default());
            let named = "object \"u0007\" of job job";
            let err = store.get("job", "u0007").expect_err("get");
            assert_corrupt_error(&err, &dir, named);
            let err = store.list("job").expect_err("list");
            assert_corrupt_error(&err, &dir, named);
            let err = store.list_prefix("job", "u000").expect_err("list_prefix");
            assert_corrupt_error(&err, &dir, named);
            let err = store.verify().expect_err("verify");
            assert_corrupt_error(&err, &dir, named);
            // Other objects still read, so the cycle's error is about this one.
            assert!(store.get("job", "u0008").expect("get").is_some());
        }
        let reason = assert_moved_aside(&dir);
        assert!(reason.contains("object \"u0007\" of job job"), "{reason}");
    }
}

#[test]
fn log_entry_that_does_not_decode_fails_reads_by_name_and_is_moved_aside() {
    // Before: logs failed with "a record of job job is unreadable" (no key), for ever.
    let (_tmp, dir) = filled(Fill::OneSession);
    let third = {
        let (store, _) = SledStore::open(&dir).expect("open");
        let k = store
            .logs
            .scan_prefix(prefix("job"))
            .keys()
            .nth(2)
            .expect("a third entry")
            .expect("key");
        k.to_vec()
    };
    let seq = u64::from_be_bytes(third[4..].try_into().expect("8 bytes"));
    poke(&dir, "logs", &third, b"[1,2");
    {
        let (store, report) = SledStore::open(&dir).expect("open");
        assert_eq!(report, OpenReport::default());
        let named = format!("log entry {seq} of job job");
        let err = store.logs("job", None).expect_err("logs");
        assert_corrupt_error(&err, &dir, &named);
        let err = store.logs("job", Some("c1")).expect_err("logs of a cycle");
        assert_corrupt_error(&err, &dir, &named);
        let err = store
            .prune_logs("job", Utc::now() - chrono::Duration::days(1))
            .expect_err("prune");
        assert_corrupt_error(&err, &dir, &named);
        // Objects are untouched and still read.
        assert_eq!(store.list("job").expect("list").len(), OBJECTS);
    }
    let reason = assert_moved_aside(&dir);
    assert!(
        reason.contains(&format!("log entry {seq} of job job")),
        "{reason}"
    );
}

#[test]
fn meta_value_that_does_not_decode_fails_reads_by_name_and_is_moved_aside() {
    let (_tmp, dir) = filled(Fill::OneSession);
    poke(&dir, "meta", &raw_key("job", b"deltaLink"), b"not json");
    {
        let (store, report) = SledStore::open(&dir).expect("open");
        assert_eq!(report, OpenReport::default());
        let named = "meta \"deltaLink\" of job job";
        let err = store.get_meta("job", "deltaLink").expect_err("get_meta");
        assert_corrupt_error(&err, &dir, named);
        let err = store.scan_meta("job", "delta").expect_err("scan_meta");
        assert_corrupt_error(&err, &dir, named);
        let err = store.meta_entries("job").expect_err("meta_entries");
        assert_corrupt_error(&err, &dir, named);
    }
    assert_moved_aside(&dir);
}

#[test]
fn key_outside_any_job_is_corrupt() {
    let (_tmp, dir) = filled(Fill::OneSession);
    poke(&dir, "objects", b"no-job-prefix", b"{}");
    {
        let (store, report) = SledStore::open(&dir).expect("open");
        assert_eq!(report, OpenReport::default());
        let err = store.jobs().expect_err("jobs");
        assert_corrupt_error(&err, &dir, "no-job-prefix");
        let err = store.verify().expect_err("verify");
        assert_corrupt_error(&err, &dir, "no job prefix");
    }
    assert_moved_aside(&dir);
}

// --- no false alarms --------------------------------------------------------------------------

#[test]
fn healthy_store_reopens_many_times_without_a_report() {
    let (_tmp, dir) = filled(Fill::WithSnapshot);
    for n in 0..4 {
        let (store, report) = SledStore::open(&dir).expect("open");
        assert_eq!(report, OpenReport::default(), "session {n}");
        store
            .commit(
                "job",
                &StateChange::Put(conformance::object(&format!("x{n}"), "t")),
                &conformance::log_entry("job", "c9", "x"),
            )
            .expect("commit");
        if n % 2 == 0 {
            store.flush().expect("flush"); // and close flushes again
        }
    }
    let (store, report) = SledStore::open(&dir).expect("open");
    assert_eq!(report, OpenReport::default());
    assert_eq!(store.list("job").expect("list").len(), OBJECTS + 4);
    assert!(store.verify().expect("verify") > 2 * OBJECTS as u64);
}

/// Copy the store's files (not our lock) as a crash at this moment would leave them.
fn crash_image(from: &Path, to: &Path) {
    fn copy(from: &Path, to: &Path) {
        fs::create_dir_all(to).expect("mkdir");
        for entry in fs::read_dir(from).expect("read_dir") {
            let entry = entry.expect("entry");
            let name = entry.file_name();
            if name == LOCK_FILE {
                continue;
            }
            if entry.path().is_dir() {
                copy(&entry.path(), &to.join(&name));
            } else {
                fs::copy(entry.path(), to.join(&name)).expect("copy");
            }
        }
    }
    copy(from, to);
}

#[test]
fn crash_after_a_flush_is_not_damage() {
    // Writes after the last flush may be lost by a crash: that is a crash, not damage.
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("state");
    let (store, _) = SledStore::open(&dir).expect("open");
    for i in 0..50 {
        let id = format!("u{i}");
        store
            .commit(
                "job",
                &StateChange::Put(conformance::object(&id, "t")),
                &conformance::log_entry("job", "c1", &id),
            )
            .expect("commit");
    }
    store.flush().expect("flush");
    crash_image(&dir, &tmp.path().join("right-after-flush"));
    for i in 50..60 {
        let id = format!("u{i}");
        store
            .commit(
                "job",
                &StateChange::Put(conformance::object(&id, "t")),
                &conformance::log_entry("job", "c1", &id),
            )
            .expect("commit");
    }
    crash_image(&dir, &tmp.path().join("after-more-writes"));
    drop(store);
    for image in ["right-after-flush", "after-more-writes"] {
        let (store, report) = SledStore::open(&tmp.path().join(image)).expect("open image");
        assert_eq!(report, OpenReport::default(), "{image}");
        let n = store.list("job").expect("list").len();
        assert!((50..=60).contains(&n), "{image}: {n} objects");
    }
}

#[test]
fn concurrent_flushes_keep_the_record_consistent() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("state");
    {
        let (store, _) = SledStore::open(&dir).expect("open");
        std::thread::scope(|s| {
            for t in 0..4 {
                let store = &store;
                s.spawn(move || {
                    for i in 0..20 {
                        let id = format!("t{t}-{i}");
                        store
                            .commit(
                                "job",
                                &StateChange::Put(conformance::object(&id, "t")),
                                &conformance::log_entry("job", "c1", &id),
                            )
                            .expect("commit");
                        store.flush().expect("flush");
                    }
                });
            }
        });
        let g = *store.lock_generations();
        assert_eq!(
            g.recorded, g.written,
            "the last flush recorded the last generation"
        );
    }
    let (store, report) = SledStore::open(&dir).expect("reopen");
    assert_eq!(report, OpenReport::default());
    assert_eq!(store.list("job").expect("list").len(), 80);
}

#[test]
fn flush_async_records_the_generation() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("state");
    let (store, _) = SledStore::open(&dir).expect("open");
    let before = store.lock_generations().recorded;
    store.put_meta("job", "k", "v").expect("meta");
    futures_lite_block_on(store.flush_async()).expect("flush_async");
    let after = store.lock_generations().recorded;
    assert!(after > before);
    let record = fs::read(dir.join(INTEGRITY_FILE)).expect("record");
    assert_eq!(parse_integrity(&record), Some(after));
}

/// Drive a future that completes without an executor's help (sled's flush future is
/// completed by sled's own threads).
fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};
    struct Thread(std::thread::Thread);
    impl Wake for Thread {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Thread(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        match f.as_mut().poll(&mut cx) {
            Poll::Ready(out) => return out,
            Poll::Pending => std::thread::park(),
        }
    }
}

#[test]
fn integrity_record_round_trips_and_rejects_near_misses() {
    for g in [0, 1, 42, u64::MAX] {
        assert_eq!(parse_integrity(integrity_text(g).as_bytes()), Some(g));
    }
    let good = integrity_text(42);
    for bad in [
        "",
        good.trim_end(),
        &good.replace("42", "4 2"),
        &good.replace("42", "-42"),
        &good.replace("format 1", "format 2"),
        &format!("{good}extra\n"),
    ] {
        assert_eq!(parse_integrity(bad.as_bytes()), None, "{bad:?}");
    }
}

#[test]
fn sled_damage_met_by_a_read_is_corrupt_and_moves_the_store_aside_at_next_open() {
    // What a read behind a snapshot meets when a page or blob is damaged (see the tests
    // above, where whether open or a read meets it depends on where the damage falls).
    let (_tmp, dir) = filled(Fill::OneSession);
    {
        let (store, report) = SledStore::open(&dir).expect("open");
        assert_eq!(report, OpenReport::default());
        // Not damage: reported as it is, and the store stays.
        let full = sled::Error::Io(io::Error::other("No space left on device"));
        let err = store.sled_err("writing meta \"k\" of job job", full);
        assert!(!err.message.contains("corrupt"), "{}", err.message);
        assert!(!dir.join(CORRUPT_FILE).exists());
        // Damage.
        for damage in [
            sled::Error::Corruption { at: None, bt: () },
            sled::Error::Io(io::Error::new(io::ErrorKind::NotFound, "blob gone")),
            sled::Error::Io(io::Error::new(io::ErrorKind::UnexpectedEof, "cut off")),
        ] {
            let err = store.sled_err("reading objects of job job", damage);
            assert_corrupt_error(&err, &dir, "reading objects of job job");
        }
        // The first reason is the one kept.
        let note = fs::read_to_string(dir.join(CORRUPT_FILE)).expect("note");
        assert!(note.contains("Read corrupted data"), "{note}");
    }
    let reason = assert_moved_aside(&dir);
    assert!(reason.contains("reading objects of job job"), "{reason}");
    assert!(reason.contains("Read corrupted data"), "{reason}");
}
