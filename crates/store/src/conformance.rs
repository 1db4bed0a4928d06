//! The behaviour every [`StateStore`] must show, as one suite run against each
//! implementation (and usable by anyone writing another).
//!
//! Each case gets a fresh store from `make` and panics with a description on failure.

use crate::{StoreAdmin, export, import};
use chrono::{Duration, Utc};
use scimsync_core::{
    Attrs, LogAction, LogEntry, LogStatus, LogStep, ModifiedProperty, ObjectState, ObjectTarget,
    Outcome, StateChange, StateStore,
};
use serde_json::json;

type Case<S> = (&'static str, fn(&S));

/// Run every [`StateStore`] case, each on a fresh store from `make`.
pub fn run_all<S: StateStore>(make: impl Fn() -> S) {
    let cases: &[Case<S>] = &[
        ("get of a missing object is None", get_missing_is_none),
        ("put then get", put_then_get),
        ("remove", remove),
        (
            "StateChange::None writes only the log",
            none_writes_only_log,
        ),
        ("logs are chronological and filter by cycle", logs_by_cycle),
        ("meta put and get", meta_put_get),
        ("jobs are isolated by prefix", job_isolation),
        ("list is in source id order", list_order),
        ("get_many returns the ones that exist, in order", get_many),
        (
            "targets_many is get_many without the attributes",
            targets_many,
        ),
        ("invalid job ids are refused", invalid_job_ids),
        ("concurrent commits all land", concurrent_commits),
        ("records by kind", records_by_kind),
        ("records written and removed in batches", records_in_batches),
        ("remove_objects forgets one job's links", remove_objects),
        ("prune_logs_before applies retention", prune_before),
        (
            "commit_batch applies every change in order and logs each",
            commit_batch,
        ),
    ];
    for (name, case) in cases {
        eprintln!("conformance: {name}");
        case(&make());
    }
}

/// Run the [`StoreAdmin`] cases (retention, backup), each on fresh stores from `make`.
pub fn run_admin<S: StoreAdmin>(make: impl Fn() -> S) {
    eprintln!("conformance: prune_logs");
    prune_logs(&make());
    eprintln!("conformance: jobs");
    jobs(&make());
    eprintln!("conformance: export then import");
    export_import(&make(), &make());
    eprintln!("conformance: export and import of one job");
    export_import_one_job(&make(), &make());
    eprintln!("conformance: import rejects a bad line");
    import_rejects_bad_line(&make());
}

/// An object as the engine would store it, with nested and numeric confirmed values.
pub fn object(source_id: &str, target_id: &str) -> ObjectState {
    let mut confirmed = Attrs::new();
    confirmed.insert("userName".into(), json!(format!("{source_id}@example.com")));
    confirmed.insert("active".into(), json!(true));
    confirmed.insert("name.givenName".into(), json!("Zoë"));
    confirmed.insert("x:score".into(), json!(0.1));
    confirmed.insert("x:nested".into(), json!({"b": [1, 2], "a": null}));
    ObjectState {
        source_id: source_id.to_owned(),
        target_id: target_id.to_owned(),
        hash: format!("hash-{source_id}"),
        confirmed,
        active: true,
        outcome: Outcome::Created,
        updated_at: Utc::now(),
    }
}

/// A log entry of `job` and `cycle` about `source_id`.
pub fn log_entry(job: &str, cycle: &str, source_id: &str) -> LogEntry {
    LogEntry {
        id: format!("{cycle}-{source_id}"),
        activity_date_time: Utc::now(),
        job_id: job.to_owned(),
        cycle_id: cycle.to_owned(),
        change_id: format!("change-{source_id}"),
        provisioning_action: LogAction::Create,
        status: LogStatus::Success,
        error_code: None,
        reason: None,
        source_id: source_id.to_owned(),
        source_display_name: format!("User {source_id}"),
        target_id: Some(format!("t-{source_id}")),
        provisioning_steps: vec![LogStep {
            name: "EntryExportAdd".into(),
            provisioning_step_type: "export".into(),
            status: LogStatus::Success,
            description: "created".into(),
        }],
        modified_properties: vec![ModifiedProperty {
            display_name: "userName".into(),
            old_value: None,
            new_value: Some(format!("{source_id}@example.com")),
        }],
        duration_in_milliseconds: 12,
    }
}

/// Jobs "a" and "ab" (one a prefix of the other) with objects, logs and meta each.
pub fn fill_two_jobs(store: &dyn StateStore) {
    for (job, ids) in [("a", ["u2", "u1"]), ("ab", ["u3", "u1"])] {
        for id in ids {
            store
                .commit(
                    job,
                    &StateChange::Put(object(id, &format!("t-{job}-{id}"))),
                    &log_entry(job, "c1", id),
                )
                .expect("commit");
        }
        store
            .commit(job, &StateChange::None, &log_entry(job, "c2", "skipped"))
            .expect("commit");
        store
            .put_meta(job, "deltaLink", &format!("https://graph/{job}"))
            .expect("meta");
        store
            .put_meta(job, "anchor", "2025-01-01T00:00:00Z")
            .expect("meta");
    }
}

fn ids(objects: &[ObjectState]) -> Vec<&str> {
    objects.iter().map(|o| o.source_id.as_str()).collect()
}

fn log_ids(logs: &[LogEntry]) -> Vec<&str> {
    logs.iter().map(|e| e.source_id.as_str()).collect()
}

fn get_missing_is_none<S: StateStore>(s: &S) {
    assert_eq!(s.get("job", "nobody").expect("get"), None);
    assert!(s.list("job").expect("list").is_empty());
    assert!(s.logs("job", None).expect("logs").is_empty());
    assert_eq!(s.get_meta("job", "deltaLink").expect("meta"), None);
}

fn put_then_get<S: StateStore>(s: &S) {
    let o = object("u1", "t1");
    let log = log_entry("job", "c1", "u1");
    s.commit("job", &StateChange::Put(o.clone()), &log)
        .expect("commit");
    assert_eq!(
        s.get("job", "u1").expect("get"),
        Some(o.clone()),
        "values round-trip exactly"
    );
    assert_eq!(s.logs("job", None).expect("logs"), vec![log]);

    let mut updated = o;
    updated.hash = "hash-2".into();
    updated.outcome = Outcome::Updated;
    updated.active = false;
    s.commit(
        "job",
        &StateChange::Put(updated.clone()),
        &log_entry("job", "c2", "u1"),
    )
    .expect("commit");
    assert_eq!(
        s.get("job", "u1").expect("get"),
        Some(updated),
        "a second put replaces"
    );
    assert_eq!(s.list("job").expect("list").len(), 1);
    s.flush().expect("flush");
}

fn commit_batch<S: StateStore>(s: &S) {
    s.commit(
        "job",
        &StateChange::Put(object("u9", "t9")),
        &log_entry("job", "c0", "u9"),
    )
    .expect("commit");
    let mut again = object("u1", "t1");
    again.hash = "hash-2".into();
    let batch = vec![
        (
            StateChange::Put(object("u1", "t1")),
            log_entry("job", "c1", "u1"),
        ),
        (StateChange::None, log_entry("job", "c1", "skipped")),
        (
            StateChange::Put(object("u2", "t2")),
            log_entry("job", "c1", "u2"),
        ),
        (
            StateChange::Remove {
                source_id: "u9".into(),
            },
            log_entry("job", "c1", "u9"),
        ),
        // The same object twice in one batch: the later change wins, as committed one by one.
        (
            StateChange::Put(again.clone()),
            log_entry("job", "c1", "u1"),
        ),
    ];
    s.commit_batch("job", &batch).expect("commit_batch");
    s.commit_batch("job", &[]).expect("an empty batch");
    assert_eq!(ids(&s.list("job").expect("list")), ["u1", "u2"]);
    assert_eq!(s.get("job", "u1").expect("get"), Some(again));
    let logged: Vec<String> = s
        .logs("job", Some("c1"))
        .expect("logs")
        .into_iter()
        .map(|e| e.source_id)
        .collect();
    assert_eq!(
        logged,
        ["u1", "skipped", "u2", "u9", "u1"],
        "every entry, in order"
    );
    let only_logs = vec![
        (StateChange::None, log_entry("job", "c2", "a")),
        (StateChange::None, log_entry("job", "c2", "b")),
    ];
    s.commit_batch("job", &only_logs)
        .expect("a batch of log entries");
    assert_eq!(s.logs("job", Some("c2")).expect("logs").len(), 2);
    assert_eq!(
        s.list("job").expect("list").len(),
        2,
        "log entries alone change no object"
    );
}

fn remove<S: StateStore>(s: &S) {
    s.commit(
        "job",
        &StateChange::Put(object("u1", "t1")),
        &log_entry("job", "c1", "u1"),
    )
    .expect("commit");
    s.commit(
        "job",
        &StateChange::Put(object("u2", "t2")),
        &log_entry("job", "c1", "u2"),
    )
    .expect("commit");
    let remove = StateChange::Remove {
        source_id: "u1".into(),
    };
    s.commit("job", &remove, &log_entry("job", "c2", "u1"))
        .expect("commit");
    assert_eq!(s.get("job", "u1").expect("get"), None);
    assert_eq!(ids(&s.list("job").expect("list")), ["u2"]);
    assert_eq!(
        s.logs("job", None).expect("logs").len(),
        3,
        "the remove is logged"
    );
    // Removing what is not there is not an error: state may have been lost.
    s.commit("job", &remove, &log_entry("job", "c3", "u1"))
        .expect("remove of a missing object");
}

fn none_writes_only_log<S: StateStore>(s: &S) {
    let o = object("u1", "t1");
    s.commit(
        "job",
        &StateChange::Put(o.clone()),
        &log_entry("job", "c1", "u1"),
    )
    .expect("commit");
    let mut failed = log_entry("job", "c2", "u1");
    failed.status = LogStatus::Failure;
    failed.provisioning_action = LogAction::Other;
    failed.error_code = Some(scimsync_core::ErrorCode::TooManyRequests);
    failed.reason = Some("429 from the target".into());
    s.commit("job", &StateChange::None, &failed)
        .expect("commit");
    assert_eq!(
        s.get("job", "u1").expect("get"),
        Some(o),
        "object untouched"
    );
    let logs = s.logs("job", Some("c2")).expect("logs");
    assert_eq!(logs, vec![failed]);
    s.commit("job", &StateChange::None, &log_entry("job", "c2", "u9"))
        .expect("commit");
    assert_eq!(
        s.get("job", "u9").expect("get"),
        None,
        "no object appears for a log-only commit"
    );
}

fn logs_by_cycle<S: StateStore>(s: &S) {
    let order = [
        ("c1", "x"),
        ("c2", "y"),
        ("c1", "z"),
        ("c3", "a"),
        ("c2", "b"),
    ];
    for (cycle, id) in order {
        s.commit("job", &StateChange::None, &log_entry("job", cycle, id))
            .expect("commit");
    }
    let all = s.logs("job", None).expect("logs");
    assert_eq!(
        log_ids(&all),
        ["x", "y", "z", "a", "b"],
        "oldest first, not sorted by id"
    );
    assert_eq!(
        log_ids(&s.logs("job", Some("c1")).expect("logs")),
        ["x", "z"]
    );
    assert_eq!(
        log_ids(&s.logs("job", Some("c2")).expect("logs")),
        ["y", "b"]
    );
    assert!(s.logs("job", Some("c9")).expect("logs").is_empty());
}

fn meta_put_get<S: StateStore>(s: &S) {
    assert_eq!(s.get_meta("job", "deltaLink").expect("meta"), None);
    s.put_meta("job", "deltaLink", "https://graph/delta?token=1")
        .expect("put");
    s.put_meta("job", "quarantine", "").expect("put");
    assert_eq!(
        s.get_meta("job", "deltaLink").expect("meta").as_deref(),
        Some("https://graph/delta?token=1")
    );
    assert_eq!(
        s.get_meta("job", "quarantine").expect("meta").as_deref(),
        Some(""),
        "empty is a value"
    );
    s.put_meta("job", "deltaLink", "https://graph/delta?token=2")
        .expect("put");
    assert_eq!(
        s.get_meta("job", "deltaLink").expect("meta").as_deref(),
        Some("https://graph/delta?token=2"),
        "put replaces"
    );
    assert!(
        s.list("job").expect("list").is_empty(),
        "meta is not an object"
    );
    assert!(
        s.logs("job", None).expect("logs").is_empty(),
        "meta is not a log"
    );
}

fn job_isolation<S: StateStore>(s: &S) {
    fill_two_jobs(s);
    assert_eq!(ids(&s.list("a").expect("list")), ["u1", "u2"]);
    assert_eq!(ids(&s.list("ab").expect("list")), ["u1", "u3"]);
    assert_eq!(
        s.get("a", "u3").expect("get"),
        None,
        "job a must not see job ab's objects"
    );
    assert_eq!(
        s.get("a", "u1")
            .expect("get")
            .map(|o| o.target_id)
            .as_deref(),
        Some("t-a-u1")
    );
    assert_eq!(
        s.get("ab", "u1")
            .expect("get")
            .map(|o| o.target_id)
            .as_deref(),
        Some("t-ab-u1")
    );
    assert!(
        s.logs("a", None)
            .expect("logs")
            .iter()
            .all(|e| e.job_id == "a")
    );
    assert_eq!(s.logs("ab", None).expect("logs").len(), 3);
    assert_eq!(
        s.get_meta("a", "deltaLink").expect("meta").as_deref(),
        Some("https://graph/a")
    );
    assert!(
        s.list("b").expect("list").is_empty(),
        "a job that was never written is empty"
    );
    // Removing in one job leaves the same source id in the other.
    s.commit(
        "a",
        &StateChange::Remove {
            source_id: "u1".into(),
        },
        &log_entry("a", "c3", "u1"),
    )
    .expect("commit");
    assert!(s.get("ab", "u1").expect("get").is_some());
}

fn list_order<S: StateStore>(s: &S) {
    for id in ["c", "a", "B", "aa", "b", "a0"] {
        s.commit(
            "job",
            &StateChange::Put(object(id, "t")),
            &log_entry("job", "c1", id),
        )
        .expect("commit");
    }
    assert_eq!(
        ids(&s.list("job").expect("list")),
        ["B", "a", "a0", "aa", "b", "c"]
    );
}

fn get_many<S: StateStore>(s: &S) {
    for id in ["c", "a", "B", "group:g"] {
        s.commit(
            "job",
            &StateChange::Put(object(id, &format!("t-{id}"))),
            &log_entry("job", "c1", id),
        )
        .expect("commit");
    }
    s.commit(
        "other",
        &StateChange::Put(object("x", "t")),
        &log_entry("other", "c1", "x"),
    )
    .expect("commit");
    let ask: Vec<String> = ["c", "missing", "B", "x", "group:g", "c"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let found = s.get_many("job", &ask).expect("get_many");
    assert_eq!(ids(&found), ["B", "c", "group:g"]);
    assert_eq!(found[1].target_id, "t-c");
    assert!(s.get_many("job", &[]).expect("empty").is_empty());
}

fn targets_many<S: StateStore>(s: &S) {
    let mut disabled = object("d", "t-d");
    disabled.active = false;
    for o in [object("c", "t-c"), disabled, object("a", "t-a")] {
        let id = o.source_id.clone();
        s.commit("job", &StateChange::Put(o), &log_entry("job", "c1", &id))
            .expect("commit");
    }
    s.commit(
        "other",
        &StateChange::Put(object("b", "t-other")),
        &log_entry("other", "c1", "b"),
    )
    .expect("commit");
    let ask: Vec<String> = ["d", "b", "c", "missing", "a", "c"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let found = s.targets_many("job", &ask).expect("targets_many");
    let full: Vec<ObjectTarget> = s
        .get_many("job", &ask)
        .expect("get_many")
        .iter()
        .map(ObjectTarget::from)
        .collect();
    assert_eq!(found, full);
    let seen: Vec<(&str, &str, bool)> = found
        .iter()
        .map(|t| (t.source_id.as_str(), t.target_id.as_str(), t.active))
        .collect();
    assert_eq!(
        seen,
        [("a", "t-a", true), ("c", "t-c", true), ("d", "t-d", false)]
    );
    assert!(s.targets_many("job", &[]).expect("empty").is_empty());
    assert!(s.targets_many("a\0b", &ask).is_err());
}

fn invalid_job_ids<S: StateStore>(s: &S) {
    for job in ["", "a\0b"] {
        assert!(s.get(job, "u1").is_err(), "get with job {job:?}");
        assert!(s.list(job).is_err(), "list with job {job:?}");
        assert!(
            s.put_meta(job, "k", "v").is_err(),
            "put_meta with job {job:?}"
        );
        let err = s
            .commit(job, &StateChange::None, &log_entry(job, "c1", "u1"))
            .expect_err("commit with an invalid job id");
        assert_eq!(err.code, scimsync_core::ErrorCode::StateStoreFailed);
    }
    assert!(
        s.logs("a", None).expect("logs").is_empty(),
        "nothing leaked into job a"
    );
}

fn concurrent_commits<S: StateStore>(s: &S) {
    std::thread::scope(|scope| {
        for t in 0..4 {
            scope.spawn(move || {
                for i in 0..25 {
                    let id = format!("u{t}-{i:02}");
                    s.commit(
                        "job",
                        &StateChange::Put(object(&id, "t")),
                        &log_entry("job", "c1", &id),
                    )
                    .expect("commit");
                }
            });
        }
    });
    assert_eq!(s.list("job").expect("list").len(), 100);
    assert_eq!(s.logs("job", None).expect("logs").len(), 100);
}

fn prune_logs<S: StoreAdmin>(s: &S) {
    let mut old = log_entry("job", "c1", "old");
    old.activity_date_time = Utc::now() - Duration::days(40);
    let recent = log_entry("job", "c2", "recent");
    let mut other_old = log_entry("other", "c1", "old");
    other_old.activity_date_time = old.activity_date_time;
    s.commit("job", &StateChange::Put(object("old", "t")), &old)
        .expect("commit");
    s.commit("job", &StateChange::None, &recent)
        .expect("commit");
    s.commit("other", &StateChange::None, &other_old)
        .expect("commit");
    let cutoff = Utc::now() - Duration::days(30);
    assert_eq!(s.prune_logs("job", cutoff).expect("prune"), 1);
    assert_eq!(s.logs("job", None).expect("logs"), vec![recent]);
    assert!(
        s.get("job", "old").expect("get").is_some(),
        "pruning logs keeps objects"
    );
    assert_eq!(
        s.logs("other", None).expect("logs").len(),
        1,
        "other jobs untouched"
    );
    assert_eq!(s.prune_logs("job", cutoff).expect("prune"), 0);
    assert_eq!(s.prune_logs("never", cutoff).expect("prune"), 0);
}

fn jobs<S: StoreAdmin>(s: &S) {
    assert!(s.jobs().expect("jobs").is_empty());
    fill_two_jobs(s);
    s.put_meta("m-only", "k", "v").expect("meta");
    s.commit(
        "l-only",
        &StateChange::None,
        &log_entry("l-only", "c1", "u1"),
    )
    .expect("commit");
    assert_eq!(s.jobs().expect("jobs"), ["a", "ab", "l-only", "m-only"]);
    assert_eq!(
        s.meta_entries("a").expect("meta"),
        [
            ("anchor".to_owned(), "2025-01-01T00:00:00Z".to_owned()),
            ("deltaLink".to_owned(), "https://graph/a".to_owned())
        ]
    );
}

fn export_import<S: StoreAdmin>(src: &S, dst: &S) {
    fill_two_jobs(src);
    let mut dump = Vec::new();
    let written = export(src, None, &mut dump).expect("export");
    assert_eq!(
        written,
        2 * (2 + 2 + 3),
        "meta, objects and logs of both jobs"
    );
    let text = String::from_utf8(dump.clone()).expect("utf-8");
    assert_eq!(
        text.lines().count() as u64,
        written + 1,
        "one line per record plus the header"
    );
    assert_eq!(import(dst, None, dump.as_slice()).expect("import"), written);
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

fn export_import_one_job<S: StoreAdmin>(src: &S, dst: &S) {
    fill_two_jobs(src);
    let mut one = Vec::new();
    let written = export(src, Some("a"), &mut one).expect("export");
    assert_eq!(written, 2 + 2 + 3);
    assert_eq!(import(dst, None, one.as_slice()).expect("import"), written);
    assert_eq!(dst.jobs().expect("jobs"), ["a"]);

    // Restoring one job out of a full backup.
    let mut all = Vec::new();
    export(src, None, &mut all).expect("export");
    assert_eq!(import(dst, Some("ab"), all.as_slice()).expect("import"), 7);
    assert_eq!(dst.list("ab").expect("list"), src.list("ab").expect("list"));
    assert_eq!(
        dst.logs("a", None).expect("logs").len(),
        3,
        "job a was not imported twice"
    );
}

fn import_rejects_bad_line<S: StoreAdmin>(s: &S) {
    let text = "{\"kind\":\"header\",\"format\":\"scimsync-state\",\"version\":1}\n\n\
                {\"kind\":\"meta\",\"job\":\"j\",\"key\":\"k\",\"value\":\"v\"}\n\
                not json\n";
    let err = import(s, None, text.as_bytes()).expect_err("garbage must be refused");
    assert!(
        err.message.contains("line 4"),
        "names the line: {}",
        err.message
    );
    let future = "{\"kind\":\"header\",\"format\":\"scimsync-state\",\"version\":99}\n";
    let err = import(s, None, future.as_bytes()).expect_err("unknown version");
    assert!(err.message.contains("version 99"), "{}", err.message);
}

fn records_by_kind<S: StateStore>(s: &S) {
    s.put_record("a", "escrow", "u2", "two").unwrap();
    s.put_record("a", "escrow", "u1", "one").unwrap();
    s.put_record("a", "members", "u1", "m").unwrap();
    s.put_record("ab", "escrow", "u9", "other job").unwrap();
    assert_eq!(
        s.get_record("a", "escrow", "u1").unwrap().as_deref(),
        Some("one")
    );
    assert_eq!(
        s.list_records("a", "escrow").unwrap(),
        vec![
            ("u1".to_string(), "one".to_string()),
            ("u2".to_string(), "two".to_string())
        ],
        "records of one kind, in id order, without other kinds or jobs"
    );
    s.remove_record("a", "escrow", "u1").unwrap();
    assert_eq!(s.get_record("a", "escrow", "u1").unwrap(), None);
    assert_eq!(s.list_records("a", "escrow").unwrap().len(), 1);
    assert_eq!(s.list_records("a", "members").unwrap().len(), 1);
    assert_eq!(s.scan_meta("a", "rec/").unwrap().len(), 2);
}

fn records_in_batches<S: StateStore>(s: &S) {
    let ids = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<String>>();
    s.put_record("a", "members", "u1", "old").unwrap();
    // Repeated ids and one already there are fine; other kinds and jobs are untouched.
    s.mark_records("a", "members", &ids(&["u3", "u1", "u2", "u3"]))
        .unwrap();
    s.mark_records("a", "members", &[]).unwrap();
    s.put_record("a", "escrow", "u2", "e").unwrap();
    s.put_record("ab", "members", "u2", "other job").unwrap();
    let listed = |job: &str, kind: &str| -> Vec<String> {
        s.list_records(job, kind)
            .unwrap()
            .into_iter()
            .map(|(id, v)| format!("{id}={v}"))
            .collect()
    };
    assert_eq!(listed("a", "members"), vec!["u1=", "u2=", "u3="]);
    s.remove_records("a", "members", &ids(&["u2", "u9", "u3"]))
        .unwrap();
    s.remove_records("a", "members", &[]).unwrap();
    assert_eq!(listed("a", "members"), vec!["u1="]);
    assert_eq!(listed("a", "escrow"), vec!["u2=e"]);
    assert_eq!(listed("ab", "members"), vec!["u2=other job"]);

    // Values written in one batch: an id given twice keeps its last value, one already there
    // is overwritten, odd text round-trips, other kinds and jobs are untouched.
    let rec = |id: &str, v: &str| (id.to_string(), v.to_string());
    s.put_records("a", "members", &[rec("u1", "was empty")])
        .unwrap();
    s.put_records(
        "a",
        "assigned",
        &[
            rec("u2", "first"),
            rec("u1", "role-a,role-b"),
            rec("u2", "second"),
            rec("u3", "quote \" tab \t ctl \u{1} é"),
        ],
    )
    .unwrap();
    s.put_records("a", "assigned", &[]).unwrap();
    assert_eq!(
        listed("a", "assigned"),
        vec![
            "u1=role-a,role-b",
            "u2=second",
            "u3=quote \" tab \t ctl \u{1} é"
        ]
    );
    assert_eq!(listed("a", "members"), vec!["u1=was empty"]);
    assert_eq!(listed("a", "escrow"), vec!["u2=e"]);
    assert_eq!(listed("ab", "assigned"), Vec::<String>::new());

    // More than one backend batch (sled writes 512 at a time): all of them, each once.
    let many: Vec<(String, String)> = (0..1300).map(|i| rec(&format!("m{i:04}"), "r")).collect();
    s.put_records("a", "many", &many).unwrap();
    assert_eq!(s.list_records("a", "many").unwrap(), many);
    let ids: Vec<String> = many.iter().map(|(id, _)| id.clone()).collect();
    s.remove_records("a", "many", &ids[..1299]).unwrap();
    assert_eq!(listed("a", "many"), vec!["m1299=r"]);
}

fn remove_objects<S: StateStore>(s: &S) {
    let log = log_entry("a", "c1", "u1");
    s.commit("a", &StateChange::Put(object("u1", "t1")), &log)
        .unwrap();
    s.commit("a", &StateChange::Put(object("u2", "t2")), &log)
        .unwrap();
    s.commit(
        "ab",
        &StateChange::Put(object("u3", "t3")),
        &log_entry("ab", "c1", "u3"),
    )
    .unwrap();
    s.commit("a", &StateChange::Put(object("group:g1", "tg")), &log)
        .unwrap();
    let groups = s.list_prefix("a", "group:").unwrap();
    assert_eq!(groups.len(), 1, "list_prefix keeps only that prefix");
    assert_eq!(groups[0].source_id, "group:g1");
    assert_eq!(s.list_prefix("ab", "group:").unwrap().len(), 0);
    assert_eq!(s.remove_objects("a").unwrap(), 3);
    assert!(s.list("a").unwrap().is_empty());
    assert_eq!(s.list("ab").unwrap().len(), 1, "other jobs keep theirs");
    assert_eq!(s.logs("a", None).unwrap().len(), 3, "logs are kept");
}

fn prune_before<S: StateStore>(s: &S) {
    let entry = log_entry("a", "c1", "u1");
    s.commit("a", &StateChange::None, &entry).unwrap();
    let before = entry.activity_date_time - Duration::seconds(1);
    assert_eq!(
        s.prune_logs_before("a", before).unwrap(),
        0,
        "newer entries stay"
    );
    assert_eq!(
        s.prune_logs_before("a", entry.activity_date_time + Duration::seconds(1))
            .unwrap(),
        1
    );
    assert!(s.logs("a", None).unwrap().is_empty());
}
