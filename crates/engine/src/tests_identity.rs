//! One source object ↔ one target object, always; preview equals run; faults converge; the
//! deletion guards cannot be fooled — over the shared doubles.

use crate::test_support::mapping;
use crate::{ApproveOutcome, GroupSpec, JobSpec, JobState, Mode, ObjectType};
use scimsync_core::{
    Clock, ErrorCode, LogStatus, ManualClock, MemberKind, SourceGroup, SourceUser, StateStore,
    UserScope,
};
use scimsync_store::MemoryStore;
use scimsync_testkit::doubles::{Chaos, MemorySource, MemoryTarget, Write};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

fn user(i: usize) -> SourceUser {
    let attrs = json!({"userPrincipalName": format!("u{i}@x"), "accountEnabled": true});
    SourceUser {
        id: format!("u{i}"),
        attrs: attrs.as_object().unwrap().clone().into_iter().collect(),
    }
}

fn group(id: &str, name: &str) -> SourceGroup {
    let attrs = json!({"displayName": name});
    SourceGroup {
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
    /// `n` users, all assigned; `groups` as (id, name, member indices), all assigned.
    fn new(n: usize, groups: &[(&str, &str, &[usize])]) -> Self {
        let mut job = JobSpec::new(
            "t",
            UserScope::Assigned {
                service_principal_id: "sp".into(),
            },
            vec![mapping("userName", "userPrincipalName", Some(1))],
        );
        job.groups = Some(GroupSpec {
            mappings: vec![
                mapping("displayName", "displayName", Some(1)),
                mapping("externalId", "objectId", None),
            ],
            scoping: Vec::new(),
            include_nested: false,
            delete_out_of_scope: true,
            batch_size: 10,
        });
        // Pauses between in-cycle retries are not what these tests are about.
        job.retry.backoff.base = std::time::Duration::ZERO;
        let ids: Vec<String> = (0..n).map(|i| format!("u{i}")).collect();
        let source = MemorySource::new((0..n).map(user).collect());
        source.edit(|s| s.assigned = Some(ids.iter().cloned().collect()));
        let members: BTreeMap<String, Vec<(String, MemberKind)>> = groups
            .iter()
            .map(|(id, _, m)| {
                let list = m
                    .iter()
                    .map(|i| (format!("u{i}"), MemberKind::User))
                    .collect();
                (id.to_string(), list)
            })
            .collect();
        source.set_groups(
            groups.iter().map(|(id, name, _)| group(id, name)).collect(),
            members,
            groups.iter().map(|(id, _, _)| id.to_string()).collect(),
        );
        World {
            job,
            source,
            target: MemoryTarget::new(),
            store: MemoryStore::new(),
            clock: ManualClock::new(chrono::DateTime::from_timestamp(1_790_000_000, 0).unwrap()),
        }
    }

    async fn cycle(&self, mode: Mode) -> crate::CycleReport {
        crate::Engine::new(
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

    /// Target groups as (displayName, member userNames).
    fn target_groups(&self) -> Vec<(String, BTreeSet<String>)> {
        let users = self.target.users();
        let mut out: Vec<_> = self
            .target
            .groups()
            .values()
            .map(|(a, m)| {
                let names = m
                    .iter()
                    .map(|id| users[id]["userName"].as_str().unwrap().to_string())
                    .collect();
                (a["displayName"].as_str().unwrap().to_string(), names)
            })
            .collect();
        out.sort();
        out
    }
}

fn names(v: &[usize]) -> BTreeSet<String> {
    v.iter().map(|i| format!("u{i}@x")).collect()
}

#[tokio::test]
async fn two_groups_with_one_name_become_two_target_groups_never_one() {
    let w = World::new(4, &[("g1", "Sales", &[0, 1]), ("g2", "Sales", &[2, 3])]);
    let r = w.cycle(Mode::Apply).await;
    assert_eq!(r.tally.failed, 0, "{:?}", r.objects);
    assert_eq!(
        w.target_groups(),
        vec![
            ("Sales".to_string(), names(&[0, 1])),
            ("Sales".to_string(), names(&[2, 3])),
        ]
    );
    let t1 = w.store.get("t", "group:g1").unwrap().unwrap().target_id;
    let t2 = w.store.get("t", "group:g2").unwrap().unwrap().target_id;
    assert_ne!(t1, t2, "each source group has its own target group");

    // Quiet afterwards, and losing the state does not merge them either: both now match
    // two target groups, which is a clear DuplicateTargetEntries, never a link.
    w.target.clear_log();
    let r = w.cycle(Mode::Apply).await;
    assert!(w.target.writes().is_empty(), "{:?}", r.objects);
}

#[tokio::test]
async fn a_target_refusing_a_second_name_fails_that_group_naming_both() {
    let w = World::new(4, &[("g1", "Sales", &[0, 1]), ("g2", "Sales", &[2, 3])]);
    w.target.refuse_duplicate_group_names();
    let r = w.cycle(Mode::Apply).await;
    assert_eq!(
        w.target_groups(),
        vec![("Sales".to_string(), names(&[0, 1]))]
    );
    let failed: Vec<_> = r
        .objects
        .iter()
        .filter(|o| o.status == LogStatus::Failure)
        .collect();
    assert_eq!(failed.len(), 1, "{:?}", r.objects);
    assert_eq!(failed[0].source_id, "group:g2");
    assert_eq!(failed[0].error_code, Some(ErrorCode::EntryConflict));
    let msg = failed[0].error.clone().unwrap();
    assert!(msg.contains("g1") && msg.contains("g2"), "{msg}");
    assert!(
        w.store.get("t", "group:g2").unwrap().is_none(),
        "never linked to g1's group"
    );
    // The failure is escrowed (a permanent one: on Entra's schedule), not forgotten.
    let escrows = JobState::new(&w.store, "t").escrows().unwrap();
    assert!(escrows.contains_key("group:g2"), "{escrows:?}");
}

#[tokio::test]
async fn matching_never_links_a_user_another_source_user_holds() {
    let w = World::new(2, &[]);
    w.cycle(Mode::Apply).await;
    // u1 is recreated in the source with a new id and u0's name: the target object of u0
    // must not be taken over.
    w.source.edit(|s| {
        let mut u = user(0);
        u.id = "u9".into();
        s.users.push(u);
        s.assigned.as_mut().unwrap().insert("u9".into());
    });
    let r = w.cycle(Mode::Apply).await;
    let o = r.objects.iter().find(|o| o.source_id == "u9").unwrap();
    assert_eq!(o.error_code, Some(ErrorCode::EntryConflict), "{o:?}");
    assert!(o.error.as_deref().unwrap().contains("u0"), "{o:?}");
    assert!(w.store.get("t", "u9").unwrap().is_none());
    assert_eq!(w.target.users().len(), 2);
}

#[tokio::test]
async fn preview_plans_the_same_requests_as_the_run_for_users_and_groups() {
    let w = World::new(5, &[("g1", "Sales", &[0, 1, 2]), ("g2", "Ops", &[3, 4])]);
    let preview = w.cycle(Mode::Preview).await;
    assert!(w.target.writes().is_empty());
    let run = w.cycle(Mode::Apply).await;
    let summary = |r: &crate::CycleReport| {
        let mut v: Vec<(String, String, usize)> = r
            .objects
            .iter()
            .map(|o| {
                (
                    o.source_id.clone(),
                    serde_json::to_value(&o.action).unwrap()["action"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                    o.members_added.len(),
                )
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(summary(&preview), summary(&run));
    assert_eq!(preview.tally.members_added, 5);
    assert_eq!(run.tally.members_added, 5);
    let groups = preview
        .objects
        .iter()
        .filter(|o| o.object_type == ObjectType::Group)
        .count();
    assert_eq!(groups, 2);
}

#[tokio::test]
async fn a_create_acknowledged_without_a_readable_body_is_linked_not_repeated() {
    let w = World::new(1, &[]);
    w.target.set_chaos(Some(Chaos {
        seed: 7,
        garbled_create_percent: 100,
        ..Default::default()
    }));
    let r = w.cycle(Mode::Apply).await;
    assert_eq!(r.tally.failed, 0, "{:?}", r.objects);
    assert_eq!(r.tally.linked, 1, "{:?}", r.objects);
    let creates = w
        .target
        .writes()
        .iter()
        .filter(|x| matches!(x, Write::Create(_)))
        .count();
    assert_eq!(creates, 1, "created once, then matched");
    assert_eq!(w.target.users().len(), 1);
    assert!(w.store.get("t", "u0").unwrap().is_some());
}

#[tokio::test]
async fn faults_converge_within_three_cycles_with_no_duplicates() {
    let members: Vec<usize> = (0..40).collect();
    let w = World::new(
        40,
        &[
            ("g1", "A", &members[0..15]),
            ("g2", "B", &members[10..30]),
            ("g3", "C", &members[25..40]),
        ],
    );
    w.target.set_chaos(Some(Chaos {
        seed: 42,
        fail_before_percent: 10,
        reset_after_percent: 10,
        garbled_create_percent: 20,
    }));
    let mut cycles = 0;
    let mut linked_after_faults = 0;
    let mut failed_first = 0;
    for _ in 0..3 {
        cycles += 1;
        let r = w.cycle(Mode::Apply).await;
        linked_after_faults += r.tally.linked;
        if cycles == 1 {
            failed_first = r.tally.failed;
        }
        w.clock.advance(chrono::Duration::minutes(40));
        if JobState::new(&w.store, "t").escrow_count().unwrap() == 0 {
            break;
        }
    }
    // The faults were real: creates whose answer was lost were found again and linked, and
    // some objects needed the next cycle.
    assert!(linked_after_faults > 0, "no create answer was lost");
    assert!(
        failed_first > 0 && cycles > 1,
        "no object needed a second cycle"
    );
    let js = JobState::new(&w.store, "t");
    assert_eq!(js.escrow_count().unwrap(), 0, "{:?}", js.escrows().unwrap());
    let users = w.target.users();
    let unique: BTreeSet<&str> = users
        .values()
        .map(|a| a["userName"].as_str().unwrap())
        .collect();
    assert_eq!(users.len(), 40, "no duplicates after {cycles} cycles");
    assert_eq!(unique.len(), 40);
    for i in 0..40 {
        assert!(
            w.store.get("t", &format!("u{i}")).unwrap().is_some(),
            "u{i} linked"
        );
    }
    assert_eq!(
        w.target_groups(),
        vec![
            ("A".to_string(), names(&members[0..15])),
            ("B".to_string(), names(&members[10..30])),
            ("C".to_string(), names(&members[25..40])),
        ]
    );
}

#[tokio::test]
async fn an_empty_assignment_list_deprovisions_nothing() {
    let w = World::new(3, &[("g1", "Sales", &[0, 1, 2])]);
    w.cycle(Mode::Apply).await;
    w.source.edit(|s| s.assigned = Some(BTreeSet::new()));
    w.source.set_groups(
        vec![group("g1", "Sales")],
        [("g1".to_string(), Vec::new())].into(),
        BTreeSet::new(),
    );
    w.target.clear_log();
    let r = w.cycle(Mode::Apply).await;
    assert!(r.deletions_held);
    assert!(
        r.hold_reasons.iter().any(|h| h.contains("no assignments")),
        "{:?}",
        r.hold_reasons
    );
    assert!(
        !w.target.writes().iter().any(|x| matches!(
            x,
            Write::Update(..) | Write::Delete(_) | Write::DeleteGroup(_) | Write::RemoveMembers(..)
        )),
        "{:?}",
        w.target.writes()
    );
    assert!(
        w.target
            .users()
            .values()
            .all(|a| a["active"] == json!(true))
    );
}

#[tokio::test]
async fn an_approval_given_when_nothing_is_held_arms_nothing() {
    let w = World::new(6, &[]);
    w.cycle(Mode::Apply).await;
    let js = JobState::new(&w.store, "t");
    assert_eq!(
        js.approve_deletions(None, w.clock.now()).unwrap(),
        ApproveOutcome::NothingHeld
    );
    // Then most users are unassigned: a sudden drop, held despite the earlier "approval".
    w.source
        .edit(|s| s.assigned = Some(["u0".to_string()].into()));
    let r = w.cycle(Mode::Apply).await;
    assert!(r.deletions_held);
    assert_eq!(r.tally.staged_deletes, 5);
    assert!(
        w.target
            .users()
            .values()
            .all(|a| a["active"] == json!(true))
    );
    // Approving what is shown sends exactly that; the cycle after sends it.
    let held = js.held().unwrap().unwrap();
    assert_eq!(held.ops.len(), 5);
    js.approve_deletions(Some(&held.fingerprint), w.clock.now())
        .unwrap();
    let r = w.cycle(Mode::Apply).await;
    assert!(!r.deletions_held);
    assert_eq!(r.tally.disabled, 5);
}

#[tokio::test]
async fn a_cycle_whose_deletions_differ_from_the_approved_set_holds_again() {
    let w = World::new(6, &[]);
    w.cycle(Mode::Apply).await;
    w.source
        .edit(|s| s.assigned = Some(["u0".to_string(), "u1".to_string()].into()));
    let r = w.cycle(Mode::Apply).await;
    assert_eq!(r.tally.staged_deletes, 4);
    let js = JobState::new(&w.store, "t");
    js.approve_deletions(None, w.clock.now()).unwrap();
    // Before the approved cycle runs, one more user is unassigned: not what was approved.
    w.source
        .edit(|s| s.assigned = Some(["u0".to_string()].into()));
    let r = w.cycle(Mode::Apply).await;
    assert!(r.deletions_held, "{:?}", r.objects);
    assert_eq!(r.tally.staged_deletes, 5);
    assert!(
        w.target
            .users()
            .values()
            .all(|a| a["active"] == json!(true))
    );
}

#[tokio::test]
async fn a_refused_membership_patch_waits_in_escrow_instead_of_being_resent_every_cycle() {
    let w = World::new(2, &[("g1", "Sales", &[0, 1])]);
    w.target.refuse_member_patches(scimsync_core::TargetError {
        status: Some(400),
        ..scimsync_core::TargetError::new(ErrorCode::SchemaViolation, "too many operations")
    });
    let r = w.cycle(Mode::Apply).await;
    let g = r
        .objects
        .iter()
        .find(|o| o.source_id == "group:g1")
        .unwrap();
    assert_eq!(g.status, LogStatus::Failure, "{g:?}");
    assert!(
        w.store.get("t", "group:g1").unwrap().is_some(),
        "the group itself is linked"
    );
    let member_patches = |w: &World| {
        w.target
            .writes()
            .iter()
            .filter(|x| matches!(x, Write::AddMembers(..)))
            .count()
    };
    w.target.clear_log();
    w.cycle(Mode::Apply).await;
    assert_eq!(member_patches(&w), 0, "not resent before its escrow is due");
    w.target.heal();
    w.clock.advance(chrono::Duration::hours(6));
    let r = w.cycle(Mode::Apply).await;
    assert_eq!(r.tally.members_added, 2, "{:?}", r.objects);
    assert_eq!(JobState::new(&w.store, "t").escrow_count().unwrap(), 0);
}
