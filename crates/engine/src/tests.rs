//! Engine behaviour over the shared in-memory doubles: what an admin would notice.

use crate::test_support::mapping;
use crate::{Action, CycleKind, Engine, JobSpec, Mode};
use scimsync_core::{
    ChangeOp, ErrorCode, LogAction, LogStatus, ManualClock, SourceUser, StateStore, TargetError,
    UserScope,
};
use scimsync_store::MemoryStore;
use scimsync_testkit::doubles::{MemorySource, MemoryTarget, Write};
use serde_json::{Value, json};

fn job() -> JobSpec {
    JobSpec::new(
        "t",
        UserScope::All,
        vec![
            mapping("userName", "userPrincipalName", Some(1)),
            mapping("title", "jobTitle", None),
            mapping("emails[type eq \"work\"].value", "mail", None),
        ],
    )
}

fn user(id: &str, upn: &str, title: &str) -> SourceUser {
    let attrs = json!({"userPrincipalName": upn, "jobTitle": title, "accountEnabled": true});
    SourceUser {
        id: id.into(),
        attrs: attrs.as_object().unwrap().clone().into_iter().collect(),
    }
}

struct World {
    job: JobSpec,
    source: MemorySource,
    target: MemoryTarget,
    store: MemoryStore,
    clock: ManualClock,
}

impl World {
    fn new(users: Vec<SourceUser>) -> Self {
        World {
            job: job(),
            source: MemorySource::new(users),
            target: MemoryTarget::new(),
            store: MemoryStore::new(),
            clock: ManualClock::new(
                chrono::DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
                    .unwrap()
                    .into(),
            ),
        }
    }

    async fn cycle(&self, mode: Mode) -> crate::CycleReport {
        Engine::new(
            &self.job,
            &self.source,
            &self.target,
            &self.store,
            &self.clock,
        )
        .run(mode)
        .await
        .unwrap()
    }

    fn set(&self, id: &str, key: &str, value: Value) {
        self.source.edit(|s| {
            let u = s.users.iter_mut().find(|u| u.id == id).unwrap();
            u.attrs.insert(key.into(), value);
        });
    }
}

#[tokio::test]
async fn initial_cycle_creates_and_second_cycle_sends_nothing() {
    let w = World::new(vec![user("1", "a@x", "Dev"), user("2", "b@x", "Ops")]);
    let r = w.cycle(Mode::Apply).await;
    assert_eq!(r.kind, CycleKind::Initial);
    assert_eq!(r.tally.created, 2);
    assert_eq!(w.target.users().len(), 2);
    let created = w
        .target
        .users()
        .into_values()
        .find(|a| a["userName"] == "a@x")
        .unwrap();
    assert_eq!(
        created["active"],
        json!(true),
        "the engine owns `active` when no mapping sets it"
    );

    w.target.clear_log();
    let r = w.cycle(Mode::Apply).await;
    assert_eq!(r.kind, CycleKind::Incremental);
    assert!(!r.full_read, "an incremental cycle reads only changes");
    assert_eq!(w.source.reads().last().map(String::as_str), Some("changes"));
    assert_eq!(r.source_users, 0, "nothing changed, nothing to decide");
    assert!(w.target.writes().is_empty());
    assert_eq!(w.target.reads(), 0, "no change costs no request at all");
}

#[tokio::test]
async fn changed_attribute_is_one_patch_with_only_that_attribute() {
    let w = World::new(vec![user("1", "a@x", "Dev")]);
    w.cycle(Mode::Apply).await;
    w.target.clear_log();
    w.set("1", "jobTitle", json!("Lead"));
    w.cycle(Mode::Apply).await;
    let writes = w.target.writes();
    assert_eq!(writes.len(), 1);
    let Write::Update(_, changes) = &writes[0] else {
        panic!("expected a PATCH, got {writes:?}")
    };
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].path, "title");
    assert_eq!(changes[0].op, ChangeOp::Replace);
    assert_eq!(changes[0].value, json!("Lead"));
}

#[tokio::test]
async fn a_new_value_for_a_path_never_sent_is_an_add() {
    let w = World::new(vec![user("1", "a@x", "Dev")]);
    w.cycle(Mode::Apply).await;
    w.target.clear_log();
    w.set("1", "mail", json!("a@x.example"));
    w.cycle(Mode::Apply).await;
    let Write::Update(_, changes) = &w.target.writes()[0] else {
        panic!()
    };
    assert_eq!(changes[0].op, ChangeOp::Add);
    assert_eq!(changes[0].path, "emails[type eq \"work\"].value");
}

#[tokio::test]
async fn disabled_user_is_disabled_and_a_disabled_newcomer_never_created() {
    let w = World::new(vec![user("1", "a@x", "Dev")]);
    w.cycle(Mode::Apply).await;
    w.source.edit(|s| s.users.push(user("2", "b@x", "Ops")));
    w.set("1", "accountEnabled", json!(false));
    w.set("2", "accountEnabled", json!(false));
    w.target.clear_log();
    let r = w.cycle(Mode::Apply).await;
    assert_eq!(r.tally.disabled, 1);
    let writes = w.target.writes();
    assert_eq!(writes.len(), 1, "{writes:?}");
    let Write::Update(_, changes) = &writes[0] else {
        panic!()
    };
    assert_eq!(
        (changes[0].path.as_str(), &changes[0].value),
        ("active", &json!(false))
    );
    assert!(w.target.users().values().all(|a| a["userName"] != "b@x"));

    // Re-enabled: active goes back to true.
    w.set("1", "accountEnabled", json!(true));
    w.target.clear_log();
    w.cycle(Mode::Apply).await;
    let Write::Update(_, changes) = &w.target.writes()[0] else {
        panic!()
    };
    assert_eq!(
        (changes[0].path.as_str(), &changes[0].value),
        ("active", &json!(true))
    );
}

#[tokio::test]
async fn user_already_in_target_is_matched_not_duplicated() {
    let w = World::new(vec![user("1", "A@X", "Dev")]);
    let existing = w.target.seed(
        [
            ("userName".to_string(), json!("a@x")),
            ("title".to_string(), json!("Old")),
            ("active".to_string(), json!(true)),
        ]
        .into(),
    );
    let r = w.cycle(Mode::Apply).await;
    assert_eq!(r.tally.created, 0);
    assert_eq!(w.target.users().len(), 1);
    let writes = w.target.writes();
    assert!(
        matches!(&writes[..], [Write::Update(id, _)] if *id == existing),
        "{writes:?}"
    );
    assert_eq!(w.store.get("t", "1").unwrap().unwrap().target_id, existing);
}

#[tokio::test]
async fn conflict_on_create_matches_again_and_links() {
    let w = World::new(vec![user("1", "a@x", "Dev")]);
    // The first matching query misses (a replica lag), the create answers 409, the second
    // query finds the user created meanwhile.
    let existing = w.target.seed(
        [
            ("userName".to_string(), json!("a@x")),
            ("title".to_string(), json!("Dev")),
            ("active".to_string(), json!(true)),
        ]
        .into(),
    );
    w.target.hide_from_next_finds(1);
    let r = w.cycle(Mode::Apply).await;
    assert_eq!(r.tally.failed, 0, "{:?}", r.objects);
    assert_eq!(w.target.users().len(), 1);
    assert_eq!(w.store.get("t", "1").unwrap().unwrap().target_id, existing);
}

#[tokio::test]
async fn permanent_failures_are_logged_with_codes_and_wait_for_entras_schedule() {
    let w = World::new(vec![user("1", "a@x", "Dev")]);
    w.target.fail_next(vec![TargetError {
        status: Some(400),
        ..TargetError::new(ErrorCode::SchemaViolation, "bad value")
    }]);
    let r = w.cycle(Mode::Apply).await;
    assert_eq!(r.tally.failed, 1);
    assert!(w.store.get("t", "1").unwrap().is_none());
    let logs = w.store.logs("t", Some(&r.cycle_id)).unwrap();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].status, LogStatus::Failure);
    assert_eq!(logs[0].error_code, Some(ErrorCode::SchemaViolation));
    // In escrow: the next cycle leaves it alone, the one after Entra's first delay retries.
    w.target.clear_log();
    let r = w.cycle(Mode::Apply).await;
    assert_eq!(r.tally.created, 0);
    assert_eq!(
        w.target.reads() + w.target.writes().len(),
        0,
        "not retried before its time"
    );
    let escrow = w.store.list_records("t", "escrow").unwrap();
    assert_eq!(escrow.len(), 1);
    assert!(escrow[0].1.contains("\"attempts\":1"), "{escrow:?}");
    w.clock.advance(chrono::Duration::hours(6));
    let r = w.cycle(Mode::Apply).await;
    assert_eq!(r.tally.created, 1);
    assert!(
        w.store.list_records("t", "escrow").unwrap().is_empty(),
        "out of escrow after success"
    );
}

#[tokio::test]
async fn every_touched_object_has_exactly_one_log_entry_per_cycle() {
    let w = World::new(vec![
        user("1", "a@x", "Dev"),
        user("2", "b@x", "Ops"),
        user("3", "c@x", "QA"),
    ]);
    let r = w.cycle(Mode::Apply).await;
    let logs = w.store.logs("t", Some(&r.cycle_id)).unwrap();
    assert_eq!(logs.len(), 3);
    assert!(
        logs.iter()
            .all(|l| l.provisioning_action == LogAction::Create && l.status == LogStatus::Success)
    );
    let created = logs.iter().find(|l| l.source_id == "1").unwrap();
    assert!(
        created
            .modified_properties
            .iter()
            .any(|p| p.display_name == "title" && p.new_value.as_deref() == Some("Dev"))
    );
    assert!(
        created
            .provisioning_steps
            .iter()
            .any(|s| s.provisioning_step_type == "matching")
    );
}

#[tokio::test]
async fn preview_sends_and_records_nothing_and_apply_does_what_it_showed() {
    let w = World::new(vec![user("1", "a@x", "Dev"), user("2", "b@x", "Ops")]);
    let preview = w.cycle(Mode::Preview).await;
    assert_eq!(preview.tally.created, 2);
    assert!(w.target.writes().is_empty());
    assert!(w.store.list("t").unwrap().is_empty());
    assert!(w.store.logs("t", None).unwrap().is_empty());
    assert_eq!(preview.kind, CycleKind::Initial);

    let applied = w.cycle(Mode::Apply).await;
    assert_eq!(
        applied.kind,
        CycleKind::Initial,
        "a preview does not count as a cycle"
    );
    let planned: Vec<_> = preview.objects.iter().map(|o| o.action.clone()).collect();
    let done: Vec<_> = applied.objects.iter().map(|o| o.action.clone()).collect();
    assert_eq!(planned, done);
}

#[tokio::test]
async fn unassigned_is_disabled_unless_skip_out_of_scope_deletions() {
    let mut w = World::new(vec![user("1", "a@x", "Dev"), user("2", "b@x", "Ops")]);
    w.job.scope = UserScope::Assigned {
        service_principal_id: "sp".into(),
    };
    w.source
        .edit(|s| s.assigned = Some(["1".to_string(), "2".to_string()].into()));
    w.cycle(Mode::Apply).await;
    w.source
        .edit(|s| s.assigned = Some(["1".to_string()].into()));
    w.job.skip_out_of_scope_deletions = true;
    w.target.clear_log();
    let r = w.cycle(Mode::Apply).await;
    assert!(w.target.writes().is_empty());
    assert_eq!(r.tally.skipped, 1);
    // Changing the setting changes the job's fingerprint: everything is evaluated again.
    w.job.skip_out_of_scope_deletions = false;
    w.job.fingerprint = "settings-v2".into();
    let r = w.cycle(Mode::Apply).await;
    assert!(r.full_read);
    assert_eq!(r.tally.disabled, 1);
}

#[tokio::test]
async fn a_full_read_keeps_whole_only_users_it_may_provision_and_still_logs_the_others() {
    let mut w = World::new(vec![
        user("1", "a@x", "Dev"),
        user("2", "b@x", "Ops"),
        user("3", "c@x", "QA"),
    ]);
    w.job.scope = UserScope::Assigned {
        service_principal_id: "sp".into(),
    };
    w.source
        .edit(|s| s.assigned = Some(["1".to_string(), "3".to_string()].into()));
    let r = w.cycle(Mode::Apply).await;
    assert_eq!(r.tally.created, 2);
    assert_eq!(
        w.source.last_keep(),
        Some(["1".to_string(), "3".to_string()].into()),
        "the unassigned, never provisioned user is read slim"
    );
    // Read slim, it is still decided and logged as the initial cycle logs it, by its name.
    let skipped = r.objects.iter().find(|o| o.source_id == "2").unwrap();
    assert_eq!(skipped.display_name, "b@x");
    assert!(matches!(&skipped.action, Action::Skip { reason } if reason.contains("not in scope")));
    assert!(skipped.scope.contains("not assigned"), "{}", skipped.scope);
    assert_eq!(r.source_users, 3);

    // 3 loses its assignment; a full read (the scope setting changed) keeps it whole as a
    // known user and disables it, while 2 stays slim.
    w.source
        .edit(|s| s.assigned = Some(["1".to_string()].into()));
    w.job.fingerprint = "settings-v2".into();
    w.target.clear_log();
    let r = w.cycle(Mode::Apply).await;
    assert!(r.full_read);
    assert_eq!(
        w.source.last_keep(),
        Some(["1".to_string(), "3".to_string()].into())
    );
    assert_eq!(r.tally.disabled, 1);
    assert_eq!(w.target.writes().len(), 1);
}

#[tokio::test]
async fn soft_delete_disables_and_hard_delete_deletes() {
    let w = World::new(vec![user("1", "a@x", "Dev"), user("2", "b@x", "Ops")]);
    w.cycle(Mode::Apply).await;
    w.source.edit(|s| {
        s.users.retain(|u| u.id != "1");
        s.soft_deleted.insert("1".into());
    });
    w.target.clear_log();
    let r = w.cycle(Mode::Apply).await;
    assert_eq!(r.tally.disabled, 1);
    w.source.edit(|s| s.soft_deleted.clear());
    let r = w.cycle(Mode::Apply).await;
    assert_eq!(r.tally.deleted, 1);
    assert!(w.store.get("t", "1").unwrap().is_none());
    assert_eq!(w.target.users().len(), 1);
}

#[tokio::test]
async fn unassigned_then_deleted_sends_no_delete() {
    let mut w = World::new(vec![user("1", "a@x", "Dev"), user("2", "b@x", "Ops")]);
    w.job.scope = UserScope::Assigned {
        service_principal_id: "sp".into(),
    };
    w.source
        .edit(|s| s.assigned = Some(["1".to_string(), "2".to_string()].into()));
    w.cycle(Mode::Apply).await;
    w.source
        .edit(|s| s.assigned = Some(["2".to_string()].into()));
    w.cycle(Mode::Apply).await;
    w.source.edit(|s| s.users.retain(|u| u.id != "1"));
    w.target.clear_log();
    w.cycle(Mode::Apply).await;
    assert!(
        !w.target
            .writes()
            .iter()
            .any(|x| matches!(x, Write::Delete(_)))
    );
}

#[tokio::test]
async fn a_transient_failure_is_retried_at_the_next_incremental_cycle() {
    let w = World::new(vec![user("1", "a@x", "Dev"), user("2", "b@x", "Ops")]);
    w.cycle(Mode::Apply).await;
    w.set("1", "jobTitle", json!("Lead"));
    // Three 500s: more than the in-cycle retries of one PATCH.
    let e500 = || TargetError {
        status: Some(500),
        ..TargetError::new(ErrorCode::InternalServerError, "boom")
    };
    w.target.fail_next(vec![e500(), e500(), e500()]);
    let r = w.cycle(Mode::Apply).await;
    assert_eq!(r.tally.failed, 1, "{:?}", r.objects);
    w.target.clear_log();
    // Nothing changes in the source: only the escrow brings the user back, at once.
    let r = w.cycle(Mode::Apply).await;
    assert!(!r.full_read);
    assert_eq!(r.tally.updated, 1, "{:?}", r.objects);
    assert_eq!(w.target.writes().len(), 1);
    assert!(w.store.list_records("t", "escrow").unwrap().is_empty());
}

#[tokio::test]
async fn a_failed_delete_is_revisited_although_the_source_no_longer_names_it() {
    let w = World::new(vec![user("1", "a@x", "Dev"), user("2", "b@x", "Ops")]);
    w.cycle(Mode::Apply).await;
    w.source.edit(|s| s.users.retain(|u| u.id != "1"));
    let e503 = || TargetError {
        status: Some(503),
        ..TargetError::new(ErrorCode::InternalServerError, "unavailable")
    };
    w.target.fail_next(vec![e503(), e503(), e503()]);
    let r = w.cycle(Mode::Apply).await;
    assert_eq!(r.tally.failed, 1, "{:?}", r.objects);
    assert_eq!(w.target.users().len(), 2);
    let r = w.cycle(Mode::Apply).await;
    assert_eq!(r.tally.deleted, 1, "{:?}", r.objects);
    assert_eq!(w.target.users().len(), 1);
    assert!(w.store.get("t", "1").unwrap().is_none());
}

#[tokio::test]
async fn an_empty_full_read_never_deprovisions_everyone() {
    let w = World::new(vec![
        user("1", "a@x", "Dev"),
        user("2", "b@x", "Dev"),
        user("3", "c@x", "Dev"),
    ]);
    w.cycle(Mode::Apply).await;
    w.source.reject_next_watermark();
    w.source.edit(|s| s.users.clear());
    w.target.clear_log();
    let r = w.cycle(Mode::Apply).await;
    assert!(r.deletions_held);
    assert!(
        r.hold_reasons.iter().any(|h| h.contains("no users")),
        "{:?}",
        r.hold_reasons
    );
    assert_eq!(r.tally.staged_deletes, 3);
    assert!(w.target.writes().is_empty());
    // Held, not forgotten: the next cycle (the same changes as deltas) holds them too.
    let r = w.cycle(Mode::Apply).await;
    assert!(r.deletions_held, "{:?}", r.objects);
    assert!(w.target.writes().is_empty());
}

#[tokio::test]
async fn mass_deletion_is_held_until_approved() {
    let mut w = World::new(
        (0..6)
            .map(|i| user(&i.to_string(), &format!("u{i}@x"), "Dev"))
            .collect(),
    );
    w.job.deletion_threshold = 3;
    w.cycle(Mode::Apply).await;
    w.source.edit(|s| s.users.truncate(1));
    w.target.clear_log();
    let r = w.cycle(Mode::Apply).await;
    assert!(r.deletions_held);
    assert_eq!(r.tally.staged_deletes, 5);
    assert!(w.target.writes().is_empty(), "nothing deleted while held");
    let logs = w.store.logs("t", Some(&r.cycle_id)).unwrap();
    assert_eq!(
        logs.iter()
            .filter(|l| l.provisioning_action == LogAction::StagedDelete)
            .count(),
        5
    );

    // Still held on the next cycle: the changes behind them come back.
    let r = w.cycle(Mode::Apply).await;
    assert!(r.deletions_held);
    assert!(w.target.writes().is_empty());

    let js = crate::JobState::new(&w.store, "t");
    let held = js.held().unwrap().expect("the held set is recorded");
    assert_eq!(held.ops.len(), 5);
    let out = js
        .approve_deletions(Some(&held.fingerprint), scimsync_core::Clock::now(&w.clock))
        .unwrap();
    assert!(matches!(out, crate::ApproveOutcome::Approved { .. }));
    let r = w.cycle(Mode::Apply).await;
    assert!(!r.deletions_held);
    assert_eq!(r.tally.deleted, 5);
    assert_eq!(w.target.users().len(), 1);
    assert!(js.approval().unwrap().is_none(), "approval is used once");
    assert!(js.held().unwrap().is_none(), "nothing is held any more");
}

#[tokio::test]
async fn an_expired_watermark_falls_back_to_a_full_read_without_duplicates() {
    let w = World::new(vec![user("1", "a@x", "Dev"), user("2", "b@x", "Ops")]);
    w.cycle(Mode::Apply).await;
    w.source.reject_next_watermark();
    w.target.clear_log();
    let r = w.cycle(Mode::Apply).await;
    assert!(r.full_read);
    assert!(
        r.notes.iter().any(|n| n.contains("expired")),
        "{:?}",
        r.notes
    );
    assert!(w.target.writes().is_empty());
    assert_eq!(r.tally.unchanged, 2);
}

#[tokio::test]
async fn a_newly_assigned_user_is_fetched_and_provisioned() {
    let mut w = World::new(vec![user("1", "a@x", "Dev"), user("2", "b@x", "Ops")]);
    w.job.scope = UserScope::Assigned {
        service_principal_id: "sp".into(),
    };
    w.source
        .edit(|s| s.assigned = Some(["1".to_string()].into()));
    let r = w.cycle(Mode::Apply).await;
    assert_eq!(r.tally.created, 1);
    w.source
        .edit(|s| s.assigned = Some(["1".to_string(), "2".to_string()].into()));
    let r = w.cycle(Mode::Apply).await;
    assert_eq!(r.tally.created, 1);
    assert!(
        w.source.reads().contains(&"by-id:1".to_string()),
        "{:?}",
        w.source.reads()
    );
}

#[tokio::test]
async fn losing_the_state_never_duplicates() {
    let w = World::new(vec![user("1", "a@x", "Dev")]);
    w.cycle(Mode::Apply).await;
    let fresh = MemoryStore::new();
    let r = Engine::new(&w.job, &w.source, &w.target, &fresh, &w.clock)
        .run(Mode::Apply)
        .await
        .unwrap();
    assert_eq!(r.tally.created, 0);
    assert!(
        matches!(r.objects[0].action, Action::Link { .. }),
        "{:?}",
        r.objects
    );
    assert_eq!(w.target.users().len(), 1);
}

#[tokio::test]
async fn a_cleared_source_value_stays_unless_the_job_opts_in_to_clearing() {
    let mut w = World::new(vec![user("1", "a@x", "Dev")]);
    w.cycle(Mode::Apply).await;
    w.source.edit(|s| {
        s.users[0].attrs.remove("jobTitle");
    });
    w.target.clear_log();
    w.cycle(Mode::Apply).await;
    assert!(
        w.target.writes().is_empty(),
        "Entra never clears a target value"
    );
    let t = w.target.users().into_values().next().unwrap();
    assert_eq!(t["title"], json!("Dev"));

    w.job.clear_on_null = true;
    w.source.edit(|s| {
        s.users[0]
            .attrs
            .insert("displayName".into(), json!("touch"));
    });
    w.cycle(Mode::Apply).await;
    let writes = w.target.writes();
    let Write::Update(_, changes) = &writes[0] else {
        panic!("{writes:?}")
    };
    assert!(
        changes
            .iter()
            .any(|c| c.op == ChangeOp::Remove && c.path == "title"),
        "{changes:?}"
    );
    assert!(
        !w.target
            .users()
            .into_values()
            .next()
            .unwrap()
            .contains_key("title")
    );
}

#[tokio::test]
async fn an_unchanged_assignment_list_skips_the_per_user_assignment_snapshot() {
    let mut w = World::new(vec![user("1", "a@x", "Dev"), user("2", "b@x", "Ops")]);
    w.job.scope = UserScope::Assigned {
        service_principal_id: "sp".into(),
    };
    w.source
        .edit(|s| s.assigned = Some(["1".to_string(), "2".to_string()].into()));
    w.cycle(Mode::Apply).await;
    w.cycle(Mode::Apply).await;
    // A stale snapshot record: read, it would name user "zzz" as unassigned and look it up.
    w.store
        .put_record("t", crate::jobstate::ASSIGNED, "zzz", "[]")
        .unwrap();
    let reads_before = w.source.reads().len();
    let r = w.cycle(Mode::Apply).await;
    let reads: Vec<String> = w.source.reads()[reads_before..].to_vec();
    assert!(
        !reads.iter().any(|x| x.starts_with("by-id")),
        "the assignment digest is unchanged, so the snapshot is not loaded: {reads:?}"
    );
    assert_eq!(r.tally.disabled, 0);

    // A real change is seen: user 2 is unassigned and disabled.
    w.source
        .edit(|s| s.assigned = Some(["1".to_string()].into()));
    let r = w.cycle(Mode::Apply).await;
    assert_eq!(r.tally.disabled, 1);
}

#[tokio::test]
async fn old_log_entries_are_pruned_after_a_cycle_at_most_hourly() {
    use scimsync_core::{Clock, StateChange};
    let mut w = World::new(vec![user("1", "a@x", "Dev")]);
    w.job.log_retention_days = 30;
    let old = |id: &str| {
        let mut e = scimsync_store::conformance::log_entry("t", "old", id);
        e.activity_date_time = w.clock.now() - chrono::Duration::days(40);
        e
    };
    let kept = |w: &World| -> Vec<String> {
        w.store
            .logs("t", Some("old"))
            .unwrap()
            .into_iter()
            .map(|e| e.source_id)
            .collect()
    };
    w.store.commit("t", &StateChange::None, &old("x1")).unwrap();
    w.cycle(Mode::Apply).await;
    assert!(kept(&w).is_empty(), "pruned after the first cycle");

    w.store.commit("t", &StateChange::None, &old("x2")).unwrap();
    w.clock.advance(chrono::Duration::minutes(20));
    w.cycle(Mode::Apply).await;
    assert_eq!(kept(&w), ["x2"], "not again within the hour");

    w.clock.advance(chrono::Duration::minutes(41));
    w.cycle(Mode::Apply).await;
    assert!(
        kept(&w).is_empty(),
        "pruned again an hour after the last prune"
    );
    assert_eq!(
        w.store.logs("t", None).unwrap().len(),
        1,
        "the cycle's own entries (the create) are kept"
    );
}

#[tokio::test]
async fn a_large_run_lists_failures_and_the_first_thousand_objects_and_counts_every_one() {
    let n = crate::LISTED_OBJECTS + 5;
    let users: Vec<SourceUser> = (0..n)
        .map(|i| user(&format!("{i:05}"), &format!("u{i}@x"), "Dev"))
        .collect();
    let w = World::new(users);
    // A preview lists every object: it writes no log to look them up in.
    let preview = w.cycle(Mode::Preview).await;
    assert_eq!(preview.objects.len(), n);
    assert_eq!(preview.objects_not_listed, 0);

    // One object fails (its first request is refused); whatever the order, it is listed.
    w.target.fail_next(vec![TargetError {
        status: Some(400),
        ..TargetError::new(ErrorCode::SchemaViolation, "bad value")
    }]);
    let r = w.cycle(Mode::Apply).await;
    assert_eq!(r.tally.failed, 1);
    assert_eq!(r.tally.created, n - 1, "every object is counted");
    assert_eq!(r.objects.len(), crate::LISTED_OBJECTS + 1);
    assert_eq!(r.objects_not_listed, n - 1 - crate::LISTED_OBJECTS);
    assert!(r.objects.iter().any(|o| o.status == LogStatus::Failure));
    assert_eq!(
        w.store.logs("t", Some(&r.cycle_id)).unwrap().len(),
        n,
        "every object has its log entry"
    );
    let totals = crate::cycle_totals(&w.store, "t").unwrap();
    assert_eq!(totals.operations["create"]["success"], (n - 1) as u64);
    let failures: u64 = totals
        .operations
        .values()
        .filter_map(|by_status| by_status.get("failure"))
        .sum();
    assert_eq!(failures, 1, "{:?}", totals.operations);
}

/// Past the listed objects the report builds no entry for a success (it only counts it); the
/// success still takes the object out of escrow and still has its log entry.
#[tokio::test]
async fn a_success_only_counted_still_leaves_escrow() {
    let w = World::new(vec![user("99999", "late@x", "Dev")]);
    w.target.fail_next(vec![TargetError {
        status: Some(400),
        ..TargetError::new(ErrorCode::SchemaViolation, "bad value")
    }]);
    let r = w.cycle(Mode::Apply).await;
    assert_eq!(r.tally.failed, 1);
    assert_eq!(w.store.list_records("t", "escrow").unwrap().len(), 1);

    // More new users than the report lists, all before the escrowed one in source order.
    let n = crate::LISTED_OBJECTS + 5;
    w.source.edit(|s| {
        s.users
            .extend((0..n).map(|i| user(&format!("{i:05}"), &format!("u{i}@x"), "Dev")))
    });
    w.clock.advance(chrono::Duration::hours(6));
    let r = w.cycle(Mode::Apply).await;
    assert_eq!(r.tally.failed, 0);
    assert_eq!(r.tally.created, n + 1, "every object is counted");
    assert!(
        r.objects.iter().all(|o| o.source_id != "99999"),
        "the retried user came after the listed ones (else this test checks nothing)"
    );
    assert!(
        w.store.list_records("t", "escrow").unwrap().is_empty(),
        "out of escrow after a success the report only counted"
    );
    let logs = w.store.logs("t", Some(&r.cycle_id)).unwrap();
    assert_eq!(logs.len(), n + 1, "every object has its log entry");
    assert!(logs.iter().any(|l| l.source_id == "99999"));
}

/// The memory store, refusing every commit from the one that would carry more than `ok` object
/// changes in total (a disk that filled up in the middle of a phase) until `ok` is raised;
/// it counts commit batches and the escrow lookups made one object at a time.
struct RefusesAfter {
    inner: MemoryStore,
    ok: std::sync::atomic::AtomicUsize,
    batches: std::sync::atomic::AtomicUsize,
    escrow_lookups: std::sync::atomic::AtomicUsize,
}

impl RefusesAfter {
    fn new(ok: usize) -> Self {
        RefusesAfter {
            inner: MemoryStore::new(),
            ok: ok.into(),
            batches: 0.into(),
            escrow_lookups: 0.into(),
        }
    }
}

impl StateStore for RefusesAfter {
    fn get(
        &self,
        job: &str,
        id: &str,
    ) -> Result<Option<scimsync_core::ObjectState>, scimsync_core::StoreError> {
        self.inner.get(job, id)
    }
    fn list(
        &self,
        job: &str,
    ) -> Result<Vec<scimsync_core::ObjectState>, scimsync_core::StoreError> {
        self.inner.list(job)
    }
    fn commit(
        &self,
        job: &str,
        change: &scimsync_core::StateChange,
        log: &scimsync_core::LogEntry,
    ) -> Result<(), scimsync_core::StoreError> {
        self.commit_batch(job, &[(change.clone(), log.clone())])
    }
    fn commit_batch(
        &self,
        job: &str,
        batch: &[(scimsync_core::StateChange, scimsync_core::LogEntry)],
    ) -> Result<(), scimsync_core::StoreError> {
        use std::sync::atomic::Ordering::SeqCst;
        self.batches.fetch_add(1, SeqCst);
        let ok = self.ok.load(SeqCst);
        if batch.len() > ok {
            self.ok.store(0, SeqCst);
            return Err(scimsync_core::StoreError::new("disk full"));
        }
        self.ok.store(ok - batch.len(), SeqCst);
        self.inner.commit_batch(job, batch)
    }
    fn logs(
        &self,
        job: &str,
        cycle: Option<&str>,
    ) -> Result<Vec<scimsync_core::LogEntry>, scimsync_core::StoreError> {
        self.inner.logs(job, cycle)
    }
    fn get_meta(&self, job: &str, key: &str) -> Result<Option<String>, scimsync_core::StoreError> {
        self.inner.get_meta(job, key)
    }
    fn put_meta(&self, job: &str, key: &str, value: &str) -> Result<(), scimsync_core::StoreError> {
        self.inner.put_meta(job, key, value)
    }
    fn flush(&self) -> Result<(), scimsync_core::StoreError> {
        self.inner.flush()
    }
    fn remove_objects(&self, job: &str) -> Result<u64, scimsync_core::StoreError> {
        self.inner.remove_objects(job)
    }
    fn scan_meta(
        &self,
        job: &str,
        prefix: &str,
    ) -> Result<Vec<(String, String)>, scimsync_core::StoreError> {
        self.inner.scan_meta(job, prefix)
    }
    fn remove_meta(&self, job: &str, key: &str) -> Result<(), scimsync_core::StoreError> {
        self.inner.remove_meta(job, key)
    }
    fn get_record(
        &self,
        job: &str,
        kind: &str,
        id: &str,
    ) -> Result<Option<String>, scimsync_core::StoreError> {
        if kind == crate::jobstate::ESCROW {
            self.escrow_lookups
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        self.inner.get_record(job, kind, id)
    }
}

#[tokio::test]
async fn state_lost_when_the_store_fails_mid_phase_costs_a_match_never_a_duplicate() {
    let n = 300;
    let users: Vec<SourceUser> = (0..n)
        .map(|i| user(&format!("{i:04}"), &format!("u{i}@x"), "Dev"))
        .collect();
    let w = World::new(users);
    let store = RefusesAfter::new(150);
    let engine = || Engine::new(&w.job, &w.source, &w.target, &store, &w.clock);
    let err = engine().run(Mode::Apply).await.unwrap_err();
    assert!(err.to_string().contains("disk full"), "{err}");
    let created = w.target.users().len();
    let kept = store.inner.list("t").unwrap().len();
    assert!(
        created > kept,
        "the target confirmed more than the store kept: {created} vs {kept}"
    );
    assert!(kept <= 150);
    assert!(
        store.batches.load(std::sync::atomic::Ordering::SeqCst) < kept,
        "confirmed changes are written in batches, not a transaction per object"
    );

    // The store works again: the objects whose state was lost are matched, none is created
    // twice, and every one ends with its state and a log entry.
    store
        .ok
        .store(usize::MAX, std::sync::atomic::Ordering::SeqCst);
    w.clock.advance(chrono::Duration::minutes(40));
    let r = engine().run(Mode::Apply).await.unwrap();
    assert_eq!(w.target.users().len(), n, "no duplicate account");
    let user_names: std::collections::BTreeSet<String> = w
        .target
        .users()
        .values()
        .map(|u| u["userName"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(user_names.len(), n);
    assert_eq!(store.inner.list("t").unwrap().len(), n);
    assert_eq!(
        r.tally.created,
        n - created,
        "only the ones never created are created"
    );
    assert_eq!(
        store.inner.logs("t", Some(&r.cycle_id)).unwrap().len(),
        n - kept
    );
}

/// A cycle settles escrows against the records it read at its start: no lookup per object
/// (one round trip each on PostgreSQL), and a repeated failure still counts its attempts.
#[tokio::test]
async fn a_cycle_settles_escrows_without_a_lookup_per_object() {
    use std::sync::atomic::Ordering::SeqCst;
    let users: Vec<SourceUser> = (0..20)
        .map(|i| user(&format!("{i:02}"), &format!("u{i}@x"), "Dev"))
        .collect();
    let w = World::new(users);
    let store = RefusesAfter::new(usize::MAX);
    let engine = || Engine::new(&w.job, &w.source, &w.target, &store, &w.clock);
    let bad = || {
        w.target.fail_next(vec![TargetError {
            status: Some(400),
            ..TargetError::new(ErrorCode::SchemaViolation, "bad value")
        }])
    };
    let escrows = || {
        store
            .inner
            .list_records("t", crate::jobstate::ESCROW)
            .unwrap()
    };

    bad();
    let r = engine().run(Mode::Apply).await.unwrap();
    assert_eq!((r.tally.created, r.tally.failed), (19, 1));
    assert_eq!(escrows().len(), 1);
    assert!(escrows()[0].1.contains("\"attempts\":1"), "{:?}", escrows());

    // Retried on schedule and failing again: the second attempt is counted from the first.
    w.clock.advance(chrono::Duration::days(1));
    bad();
    let r = engine().run(Mode::Apply).await.unwrap();
    assert_eq!(r.tally.failed, 1, "{:?}", r.objects);
    assert!(escrows()[0].1.contains("\"attempts\":2"), "{:?}", escrows());

    w.clock.advance(chrono::Duration::days(1));
    let r = engine().run(Mode::Apply).await.unwrap();
    assert_eq!((r.tally.created, r.tally.failed), (1, 0));
    assert!(escrows().is_empty(), "out of escrow after success");
    assert_eq!(w.target.users().len(), 20);
    assert_eq!(
        store.escrow_lookups.load(SeqCst),
        0,
        "escrow looked up per object"
    );
}
