//! The reference pass (`manager`, issue 13 §3) over the shared doubles: creates never carry a
//! reference, the manager is written as its *target* id after the users of the cycle, a
//! manager provisioned later resolves a pending reference at that later cycle, and an
//! unchanged tenant sends nothing.

use crate::test_support::mapping;
use crate::{Action, CycleReport, Engine, JobSpec, JobState, Mode};
use scimsync_core::{ErrorCode, ManualClock, SourceUser, TargetError, UserScope};
use scimsync_store::MemoryStore;
use scimsync_testkit::doubles::{MemorySource, MemoryTarget, Write};
use serde_json::{Value, json};

const MANAGER: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager";

fn user(id: &str, upn: &str, manager: Option<&str>) -> SourceUser {
    let mut attrs = json!({"userPrincipalName": upn, "accountEnabled": true, "department": "x"});
    if let Some(m) = manager {
        attrs["manager"] = json!(m);
    }
    SourceUser {
        id: id.into(),
        attrs: attrs.as_object().unwrap().clone().into_iter().collect(),
    }
}

fn job() -> JobSpec {
    let mut job = JobSpec::new(
        "t",
        UserScope::All,
        vec![
            mapping("userName", "userPrincipalName", Some(1)),
            mapping(MANAGER, "manager", None),
        ],
    );
    job.scoping = vec![scimsync_config::ScopingFilter {
        name: None,
        clauses: vec![scimsync_config::Clause {
            attribute: "department".into(),
            operator: scimsync_config::Operator::parse("IS NOT NULL").unwrap(),
            value: None,
            line: 1,
        }],
        line: 1,
    }];
    job
}

async fn cycle(
    job: &JobSpec,
    source: &MemorySource,
    target: &MemoryTarget,
    store: &MemoryStore,
    mode: Mode,
) -> CycleReport {
    let clock = ManualClock::new(
        chrono::DateTime::parse_from_rfc3339("2026-12-06T10:00:00Z")
            .unwrap()
            .into(),
    );
    Engine::new(job, source, target, store, &clock)
        .run(mode)
        .await
        .unwrap()
}

fn target_id(target: &MemoryTarget, user_name: &str) -> String {
    target
        .users()
        .into_iter()
        .find(|(_, a)| a["userName"] == user_name)
        .map(|(id, _)| id)
        .unwrap_or_else(|| panic!("{user_name} not in the target"))
}

fn manager_of(target: &MemoryTarget, user_name: &str) -> Option<Value> {
    let id = target_id(target, user_name);
    target.users()[&id].get(MANAGER).cloned()
}

#[tokio::test]
async fn a_manager_is_written_as_its_target_id_after_the_creates() {
    // The report sorts before the manager: without a second pass its manager has no id yet.
    let source = MemorySource::new(vec![
        user("a-report", "report@x", Some("z-boss")),
        user("z-boss", "boss@x", None),
    ]);
    let (target, store) = (MemoryTarget::new(), MemoryStore::new());
    let report = cycle(&job(), &source, &target, &store, Mode::Apply).await;

    let boss = target_id(&target, "boss@x");
    assert_eq!(manager_of(&target, "report@x"), Some(json!(boss)));
    assert_eq!(report.tally.created, 2);
    assert_eq!(report.tally.references_set, 1);
    // No create carried a reference (it would have been the Graph id, unknown to the target).
    for w in target.writes() {
        if let Write::Create(attrs) = w {
            assert!(!attrs.contains_key(MANAGER), "{attrs:?}");
        }
    }
    // The PATCH names the target id, and its log entry has the reference step.
    let patch = target
        .writes()
        .into_iter()
        .find_map(|w| match w {
            Write::Update(id, changes) => Some((id, changes)),
            _ => None,
        })
        .expect("a PATCH for the manager");
    assert_eq!(patch.0, target_id(&target, "report@x"));
    assert_eq!(patch.1.len(), 1);
    assert_eq!(patch.1[0].path, MANAGER);
    assert_eq!(patch.1[0].value, json!(boss));
    let logs = scimsync_core::StateStore::logs(&store, "t", Some(&report.cycle_id)).unwrap();
    assert!(logs.iter().any(|e| {
        e.provisioning_steps
            .iter()
            .any(|s| s.provisioning_step_type == "referenceResolution")
    }));

    // An unchanged tenant: nothing sent.
    target.clear_log();
    let again = cycle(&job(), &source, &target, &store, Mode::Apply).await;
    assert!(target.writes().is_empty(), "{:?}", target.writes());
    assert_eq!(again.tally.references_set, 0);
}

#[tokio::test]
async fn a_manager_provisioned_later_resolves_the_pending_reference() {
    // The boss has no department: out of scope, so the report's manager cannot resolve.
    let mut boss = user("boss", "boss@x", None);
    boss.attrs.remove("department");
    let source = MemorySource::new(vec![user("report", "report@x", Some("boss")), boss]);
    let (target, store) = (MemoryTarget::new(), MemoryStore::new());
    let first = cycle(&job(), &source, &target, &store, Mode::Apply).await;
    assert_eq!(first.tally.references_pending, 1);
    let pending = first
        .objects
        .iter()
        .find(|o| matches!(o.action, Action::ReferencePending { .. }))
        .expect("a pending reference in the report");
    assert_eq!(
        pending.error_code,
        Some(ErrorCode::UnableToResolveReferenceAttributeValue)
    );
    assert_eq!(manager_of(&target, "report@x"), None);
    let js = JobState::new(&store, "t");
    assert_eq!(js.all_pending_refs().unwrap().len(), 1);

    // Still unresolved: tried again, but not logged again.
    let second = cycle(&job(), &source, &target, &store, Mode::Apply).await;
    assert_eq!(second.tally.references_pending, 0);
    assert_eq!(js.all_pending_refs().unwrap().len(), 1);

    // The boss enters scope: an incremental cycle that reads only the boss resolves the
    // report's reference from its pending record.
    source.edit(|s| {
        let b = s.users.iter_mut().find(|u| u.id == "boss").unwrap();
        b.attrs.insert("department".into(), json!("x"));
    });
    target.clear_log();
    let third = cycle(&job(), &source, &target, &store, Mode::Apply).await;
    let boss_id = target_id(&target, "boss@x");
    assert_eq!(manager_of(&target, "report@x"), Some(json!(boss_id)));
    assert_eq!(third.tally.references_set, 1);
    assert!(js.all_pending_refs().unwrap().is_empty());
}

#[tokio::test]
async fn a_changed_manager_is_replaced_and_a_cleared_one_is_kept() {
    let source = MemorySource::new(vec![
        user("r", "report@x", Some("b1")),
        user("b1", "boss1@x", None),
        user("b2", "boss2@x", None),
    ]);
    let (target, store) = (MemoryTarget::new(), MemoryStore::new());
    cycle(&job(), &source, &target, &store, Mode::Apply).await;
    source.edit(|s| {
        let r = s.users.iter_mut().find(|u| u.id == "r").unwrap();
        r.attrs.insert("manager".into(), json!("b2"));
    });
    target.clear_log();
    cycle(&job(), &source, &target, &store, Mode::Apply).await;
    let b2 = target_id(&target, "boss2@x");
    assert_eq!(manager_of(&target, "report@x"), Some(json!(b2)));
    let ops: Vec<_> = target.writes();
    assert_eq!(ops.len(), 1, "{ops:?}");
    match &ops[0] {
        Write::Update(_, changes) => {
            assert_eq!(changes[0].op, scimsync_core::ChangeOp::Replace)
        }
        other => panic!("{other:?}"),
    }

    // The source removes the manager: Entra never clears a target value.
    source.edit(|s| {
        let r = s.users.iter_mut().find(|u| u.id == "r").unwrap();
        r.attrs.insert("manager".into(), Value::Null);
    });
    target.clear_log();
    cycle(&job(), &source, &target, &store, Mode::Apply).await;
    assert!(target.writes().is_empty(), "{:?}", target.writes());
    assert_eq!(manager_of(&target, "report@x"), Some(json!(b2)));
}

#[tokio::test]
async fn preview_shows_the_reference_and_sends_nothing() {
    let source = MemorySource::new(vec![
        user("a", "report@x", Some("b")),
        user("b", "boss@x", None),
    ]);
    let (target, store) = (MemoryTarget::new(), MemoryStore::new());
    let report = cycle(&job(), &source, &target, &store, Mode::Preview).await;
    assert!(target.writes().is_empty());
    let set = report
        .objects
        .iter()
        .find(|o| matches!(o.action, Action::SetReference { .. }))
        .expect("the preview shows the manager it would set");
    assert_eq!(set.source_id, "a");
    assert!(
        JobState::new(&store, "t")
            .all_pending_refs()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_failed_reference_write_is_retried_at_the_next_cycle() {
    let source = MemorySource::new(vec![
        user("a", "report@x", Some("b")),
        user("b", "boss@x", None),
    ]);
    let (target, store) = (MemoryTarget::new(), MemoryStore::new());
    let mut job = job();
    job.retry.attempts = 1;
    let first = {
        let clock = ManualClock::new(
            chrono::DateTime::parse_from_rfc3339("2026-12-06T10:00:00Z")
                .unwrap()
                .into(),
        );
        let engine = Engine::new(&job, &source, &target, &store, &clock);
        // Create both users first, then make the reference write fail.
        source.edit(|s| {
            s.users[0].attrs.remove("manager");
        });
        engine.run(Mode::Apply).await.unwrap();
        source.edit(|s| {
            s.users[0].attrs.insert("manager".into(), json!("b"));
        });
        target.fail_next(vec![TargetError::new(
            ErrorCode::InternalServerError,
            "HTTP 500",
        )]);
        engine.run(Mode::Apply).await.unwrap()
    };
    assert_eq!(first.tally.failed, 1, "{:?}", first.objects);
    assert_eq!(manager_of(&target, "report@x"), None);
    assert_eq!(
        JobState::new(&store, "t").all_pending_refs().unwrap().len(),
        1
    );
    // Nothing changed at the source: the pending reference alone brings it back.
    let next = cycle(&job, &source, &target, &store, Mode::Apply).await;
    assert_eq!(next.tally.references_set, 1);
    assert_eq!(
        manager_of(&target, "report@x"),
        Some(json!(target_id(&target, "boss@x")))
    );
}
