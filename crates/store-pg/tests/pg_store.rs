//! The PostgreSQL store against a real server: the shared conformance suite, unchanged, and the
//! hostile cases (concurrent openers, odd ids, big values, broken connections, secrets).
//!
//! Needs `SCIMSYNC_TEST_POSTGRES_URL` (see `scimsync_store_pg::testing`); each test makes its
//! own database.

use scimsync_core::{Secret, StateChange, StateStore};
use scimsync_store::conformance::{self, log_entry, object};
use scimsync_store::{StoreAdmin, export, import};
use scimsync_store_pg::PgStore;
use scimsync_store_pg::testing::{TestDb, with_dbname};
use std::sync::{Arc, Mutex};

/// A store on a fresh database; the database lives as long as the returned guard list.
fn fresh(dbs: &Mutex<Vec<TestDb>>) -> PgStore {
    let db = TestDb::create().expect("checked by the caller");
    let store = PgStore::open(&db.url, None).expect("open");
    dbs.lock().unwrap().push(db);
    store
}

macro_rules! needs_postgres {
    () => {
        if scimsync_store_pg::testing::server_url().is_none() {
            return;
        }
    };
}

#[test]
fn pg_store_passes_the_conformance_suite() {
    needs_postgres!();
    let dbs = Mutex::new(Vec::new());
    conformance::run_all(|| fresh(&dbs));
}

#[test]
fn pg_store_passes_the_admin_suite() {
    needs_postgres!();
    let dbs = Mutex::new(Vec::new());
    conformance::run_admin(|| fresh(&dbs));
}

#[test]
fn opening_twice_reuses_the_schema_and_keeps_the_data() {
    needs_postgres!();
    let db = TestDb::create().unwrap();
    let a = PgStore::open(&db.url, None).unwrap();
    a.put_meta("j", "k", "v").unwrap();
    drop(a);
    let b = PgStore::open(&db.url, None).unwrap();
    assert_eq!(b.get_meta("j", "k").unwrap().as_deref(), Some("v"));
}

#[test]
fn concurrent_openers_migrate_once() {
    needs_postgres!();
    let db = TestDb::create().unwrap();
    let stores: Vec<PgStore> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|_| s.spawn(|| PgStore::open(&db.url, None)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap().expect("every opener succeeds"))
            .collect()
    });
    // One row per migration, whoever applied it.
    db.sql(&format!(
        "DO $$ BEGIN IF (SELECT count(*) FROM scimsync_schema_migrations) <> {} THEN \
         RAISE EXCEPTION 'migrations recorded more than once'; END IF; END $$",
        scimsync_store_pg::SCHEMA_VERSION
    ));
    stores[0].put_meta("j", "k", "1").unwrap();
    assert_eq!(stores[5].get_meta("j", "k").unwrap().as_deref(), Some("1"));
}

#[test]
fn a_newer_schema_is_refused() {
    needs_postgres!();
    let db = TestDb::create().unwrap();
    drop(PgStore::open(&db.url, None).unwrap());
    db.sql("INSERT INTO scimsync_schema_migrations (version, name) VALUES (99, 'future')");
    let err = PgStore::open(&db.url, None).unwrap_err();
    assert!(err.message.contains("schema version 99"), "{}", err.message);
    assert!(err.message.contains("upgrade scimsync"), "{}", err.message);
}

#[test]
fn odd_job_ids_and_keys_round_trip_and_stay_apart() {
    needs_postgres!();
    let db = TestDb::create().unwrap();
    let s = PgStore::open(&db.url, None).unwrap();
    let odd = "jöb/ü'; DROP TABLE scimsync_objects; --\t\"%_\\ 🚀";
    let ids = ["100%", "1_0", "a\\b", "ü", "'", "z"];
    for id in ids {
        s.commit(
            odd,
            &StateChange::Put(object(id, "t")),
            &log_entry(odd, "c1", id),
        )
        .unwrap();
    }
    s.put_meta(odd, "rec/k%/x_", "v").unwrap();
    s.put_meta(odd, "rec/kz/y", "w").unwrap();
    let listed: Vec<String> = s
        .list(odd)
        .unwrap()
        .into_iter()
        .map(|o| o.source_id)
        .collect();
    let mut sorted: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    sorted.sort(); // byte order, as sled
    assert_eq!(listed, sorted);
    // LIKE wildcards in a prefix are plain characters.
    assert_eq!(s.list_prefix(odd, "1").unwrap().len(), 2);
    assert_eq!(s.list_prefix(odd, "10").unwrap().len(), 1);
    assert_eq!(s.list_prefix(odd, "%").unwrap().len(), 0);
    assert_eq!(s.list_prefix(odd, "_").unwrap().len(), 0);
    assert_eq!(s.scan_meta(odd, "rec/k%").unwrap().len(), 1);
    assert_eq!(
        s.get("jöb", "ü").unwrap(),
        None,
        "a prefix of the job sees nothing"
    );
    assert_eq!(s.jobs().unwrap(), vec![odd.to_string()]);
    assert_eq!(s.logs(odd, Some("c1")).unwrap().len(), ids.len());
}

#[test]
fn a_nul_in_an_id_is_an_error_naming_it() {
    needs_postgres!();
    let db = TestDb::create().unwrap();
    let s = PgStore::open(&db.url, None).unwrap();
    let err = s
        .commit(
            "job",
            &StateChange::Put(object("bad\0id", "t")),
            &log_entry("job", "c1", "bad"),
        )
        .unwrap_err();
    assert!(err.message.contains("job job"), "{}", err.message);
    assert!(err.message.contains("bad\\0id"), "{}", err.message);
    assert!(
        s.logs("job", None).unwrap().is_empty(),
        "nothing half-written"
    );
}

#[test]
fn very_long_values_round_trip() {
    needs_postgres!();
    let db = TestDb::create().unwrap();
    let s = PgStore::open(&db.url, None).unwrap();
    let big = "x".repeat(8 * 1024 * 1024);
    s.put_meta("j", "big", &big).unwrap();
    assert_eq!(
        s.get_meta("j", "big").unwrap().as_deref(),
        Some(big.as_str())
    );
    let mut o = object("u1", "t1");
    o.confirmed
        .insert("x:huge".into(), serde_json::json!(big.clone()));
    let long_id = "i".repeat(2000);
    o.source_id = long_id.clone();
    s.commit(
        "j",
        &StateChange::Put(o.clone()),
        &log_entry("j", "c", "u1"),
    )
    .unwrap();
    assert_eq!(s.get("j", &long_id).unwrap(), Some(o));
}

#[test]
fn two_threads_committing_the_same_object_both_land_in_the_log() {
    needs_postgres!();
    let db = TestDb::create().unwrap();
    let s = PgStore::open(&db.url, None).unwrap();
    std::thread::scope(|scope| {
        for t in 0..2 {
            let s = &s;
            scope.spawn(move || {
                for i in 0..50 {
                    let mut o = object("same", &format!("t{t}"));
                    o.hash = format!("h{t}-{i}");
                    s.commit("j", &StateChange::Put(o), &log_entry("j", "c", "same"))
                        .unwrap();
                }
            });
        }
    });
    assert_eq!(s.list("j").unwrap().len(), 1);
    assert_eq!(s.logs("j", None).unwrap().len(), 100);
}

#[test]
fn a_store_dropped_while_another_handle_commits_loses_nothing_committed() {
    needs_postgres!();
    let db = TestDb::create().unwrap();
    let s = Arc::new(PgStore::open(&db.url, None).unwrap());
    let writer = {
        let s = s.clone();
        std::thread::spawn(move || {
            for i in 0..40 {
                let id = format!("u{i:02}");
                s.commit(
                    "j",
                    &StateChange::Put(object(&id, "t")),
                    &log_entry("j", "c", &id),
                )
                .unwrap();
            }
        })
    };
    drop(s); // the writer holds the last handle; its drop stops the thread afterwards
    writer.join().unwrap();
    let again = PgStore::open(&db.url, None).unwrap();
    assert_eq!(again.list("j").unwrap().len(), 40);
    assert_eq!(again.logs("j", None).unwrap().len(), 40);
}

#[test]
fn killed_connections_never_leave_half_a_commit() {
    needs_postgres!();
    let db = TestDb::create().unwrap();
    let s = PgStore::open(&db.url, None).unwrap();
    let mut failed = 0;
    std::thread::scope(|scope| {
        let killer = scope.spawn(|| {
            for _ in 0..10 {
                std::thread::sleep(std::time::Duration::from_millis(15));
                db.sql(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE datname = current_database() AND pid <> pg_backend_pid() \
                     AND application_name = 'scimsync'",
                );
            }
        });
        for i in 0..300 {
            let id = format!("u{i:03}");
            if s.commit(
                "j",
                &StateChange::Put(object(&id, "t")),
                &log_entry("j", "c", &id),
            )
            .is_err()
            {
                failed += 1;
            }
        }
        killer.join().unwrap();
    });
    // Every object that landed has its log entry and no log entry lacks its object.
    let objects: Vec<String> = s
        .list("j")
        .unwrap()
        .into_iter()
        .map(|o| o.source_id)
        .collect();
    let logged: Vec<String> = s
        .logs("j", None)
        .unwrap()
        .into_iter()
        .map(|e| e.source_id)
        .collect();
    let mut logged_sorted = logged.clone();
    logged_sorted.sort();
    assert_eq!(objects, logged_sorted, "state and log move together");
    // A commit whose answer was lost may have landed: failed counts it, the list has it.
    assert!(objects.len() + failed >= 300 && objects.len() <= 300);
    // The store recovers: the pool replaces the dead connections.
    s.commit("j", &StateChange::None, &log_entry("j", "c", "after"))
        .unwrap();
    eprintln!("{failed} commits failed while connections were killed");
}

#[test]
fn the_password_never_shows() {
    // No server needed: a closed port.
    let url = "postgres://app:Hunter2-Very-Secret@127.0.0.1:1/state?connect_timeout=2";
    let err = PgStore::open(url, None).unwrap_err();
    assert!(
        !err.message.contains("Hunter2-Very-Secret"),
        "{}",
        err.message
    );
    assert!(!format!("{err:?}").contains("Hunter2-Very-Secret"));
    assert!(
        err.message.contains("postgres://app@127.0.0.1:1/state"),
        "{}",
        err.message
    );
    let secret = Secret::inline("Other-Secret-Pw");
    let err = PgStore::open(
        "postgres://app@127.0.0.1:1/x?connect_timeout=2",
        Some(&secret),
    )
    .unwrap_err();
    assert!(!err.message.contains("Other-Secret-Pw"), "{}", err.message);
}

#[test]
fn the_password_never_shows_with_a_server() {
    needs_postgres!();
    let db = TestDb::create().unwrap();
    // Trust auth ignores the password: the store opens, and prints none of it.
    let url = db
        .url
        .replacen("postgres@", "postgres:Hunter2-Very-Secret@", 1);
    let s = PgStore::open(&url, None).unwrap();
    assert!(!format!("{s:?}").contains("Hunter2-Very-Secret"), "{s:?}");
    assert!(!s.database().contains("Hunter2-Very-Secret"));
    let err = s.put_meta("j", "nul\0key", "v").unwrap_err();
    assert!(
        !err.message.contains("Hunter2-Very-Secret"),
        "{}",
        err.message
    );
    // A database that does not exist: the server's error names it, not the password.
    let missing = with_dbname(&url, "no_such_db_here");
    let err = PgStore::open(&missing, None).unwrap_err();
    assert!(
        !err.message.contains("Hunter2-Very-Secret"),
        "{}",
        err.message
    );
    assert!(err.message.contains("no_such_db_here"), "{}", err.message);
}

#[test]
fn calls_from_inside_a_tokio_runtime_work() {
    needs_postgres!();
    let db = TestDb::create().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let s = PgStore::open(&db.url, None).unwrap();
        s.put_meta("j", "k", "v").unwrap();
        assert_eq!(s.get_meta("j", "k").unwrap().as_deref(), Some("v"));
        drop(s);
    });
}

#[test]
fn export_from_pg_imports_into_memory_unchanged() {
    needs_postgres!();
    let db = TestDb::create().unwrap();
    let s = PgStore::open(&db.url, None).unwrap();
    conformance::fill_two_jobs(&s);
    let mut dump = Vec::new();
    export(&s, None, &mut dump).unwrap();
    let mem = scimsync_store::MemoryStore::new();
    import(&mem, None, dump.as_slice()).unwrap();
    for job in ["a", "ab"] {
        assert_eq!(mem.list(job).unwrap(), s.list(job).unwrap());
        assert_eq!(mem.logs(job, None).unwrap(), s.logs(job, None).unwrap());
        assert_eq!(mem.meta_entries(job).unwrap(), s.meta_entries(job).unwrap());
    }
}

#[test]
fn sslmode_require_against_a_server_without_tls_fails_clearly() {
    needs_postgres!();
    let db = TestDb::create().unwrap();
    let url = format!("{}?sslmode=require", db.url);
    match PgStore::open(&url, None) {
        // The throw-away cluster has no certificate: the server refuses TLS.
        Err(e) => assert!(
            e.message.contains("TLS") || e.message.contains("SSL") || e.message.contains("tls"),
            "{}",
            e.message
        ),
        // A server with TLS whose certificate the platform trusts would do.
        Ok(s) => s.put_meta("j", "k", "v").unwrap(),
    }
}
