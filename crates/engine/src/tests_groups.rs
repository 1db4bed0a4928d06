//! Group provisioning over the shared doubles: created empty, filled by batched PATCHes, kept
//! exact incrementally.

use crate::test_support::mapping;
use crate::{GroupSpec, JobSpec, Mode};
use scimsync_core::{MemberKind, SourceGroup, SourceUser, StateStore, UserScope};
use scimsync_store::MemoryStore;
use scimsync_testkit::doubles::{MemorySource, MemoryTarget, Write};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

fn user(id: &str) -> SourceUser {
    let attrs = json!({"userPrincipalName": format!("{id}@x"), "accountEnabled": true});
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
    clock: scimsync_core::ManualClock,
}

fn group(id: &str, name: &str) -> SourceGroup {
    let attrs = json!({"displayName": name});
    SourceGroup {
        id: id.into(),
        attrs: attrs.as_object().unwrap().clone().into_iter().collect(),
    }
}

impl World {
    /// `users` users u0..; one group g1 "Team" holding `members` of them; all assigned.
    fn new(users: usize, members: usize, batch: usize) -> Self {
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
            batch_size: batch,
        });
        let ids: Vec<String> = (0..users).map(|i| format!("u{i}")).collect();
        let source = MemorySource::new(ids.iter().map(|i| user(i)).collect());
        source.edit(|s| s.assigned = Some(ids.iter().cloned().collect()));
        let w = World {
            job,
            source,
            target: MemoryTarget::new(),
            store: MemoryStore::new(),
            clock: scimsync_core::ManualClock::new(
                chrono::DateTime::from_timestamp(1_790_000_000, 0).unwrap(),
            ),
        };
        w.set_members(
            (0..members).map(|i| format!("u{i}")).collect(),
            "Team",
            true,
        );
        w
    }

    fn set_members(&self, members: Vec<String>, name: &str, assigned: bool) {
        let m: BTreeMap<String, Vec<(String, MemberKind)>> = [(
            "g1".to_string(),
            members.into_iter().map(|u| (u, MemberKind::User)).collect(),
        )]
        .into();
        let assigned: BTreeSet<String> = if assigned {
            ["g1".to_string()].into()
        } else {
            BTreeSet::new()
        };
        self.source.set_groups(vec![group("g1", name)], m, assigned);
    }

    async fn cycle(&self) -> crate::CycleReport {
        self.run(Mode::Apply).await
    }

    async fn run(&self, mode: Mode) -> crate::CycleReport {
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

    /// The group's entry in a preview of the next cycle.
    async fn preview_group(&self) -> crate::ObjectReport {
        self.run(Mode::Preview)
            .await
            .objects
            .into_iter()
            .find(|o| o.object_type == crate::ObjectType::Group)
            .expect("the preview shows the group")
    }

    fn member_writes(&self) -> Vec<Write> {
        self.target
            .writes()
            .into_iter()
            .filter(|w| {
                matches!(
                    w,
                    Write::AddMembers(..)
                        | Write::RemoveMembers(..)
                        | Write::CreateGroup(_)
                        | Write::UpdateGroup(..)
                        | Write::DeleteGroup(_)
                )
            })
            .collect()
    }

    fn target_members(&self) -> BTreeSet<String> {
        self.target
            .groups()
            .values()
            .next()
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    fn target_id_of(&self, user: &str) -> String {
        self.store.get("t", user).unwrap().unwrap().target_id
    }
}

#[tokio::test]
async fn a_group_is_created_empty_then_filled_in_batches_and_a_second_cycle_sends_nothing() {
    let w = World::new(6, 5, 2);
    let r = w.cycle().await;
    assert_eq!(r.tally.failed, 0, "{:?}", r.objects);
    let writes = w.member_writes();
    assert!(
        matches!(&writes[0], Write::CreateGroup(a) if a["displayName"] == "Team" && !a.contains_key("members"))
    );
    let batches: Vec<usize> = writes
        .iter()
        .filter_map(|x| match x {
            Write::AddMembers(_, ids) => Some(ids.len()),
            _ => None,
        })
        .collect();
    assert_eq!(
        batches,
        vec![2, 2, 1],
        "members in batches of the configured size"
    );
    assert_eq!(w.target_members().len(), 5);
    let group_report = r
        .objects
        .iter()
        .find(|o| o.object_type == crate::ObjectType::Group)
        .unwrap();
    assert_eq!(group_report.members_added.len(), 5);

    w.target.clear_log();
    w.cycle().await;
    assert!(w.target.writes().is_empty(), "{:?}", w.target.writes());
}

#[tokio::test]
async fn one_member_added_or_removed_at_the_source_is_one_patch_with_one_value() {
    let w = World::new(6, 3, 100);
    w.cycle().await;
    w.target.clear_log();
    w.set_members(
        vec!["u0".into(), "u1".into(), "u2".into(), "u3".into()],
        "Team",
        true,
    );
    w.cycle().await;
    assert_eq!(
        w.member_writes(),
        vec![Write::AddMembers(
            w.target.groups().keys().next().unwrap().clone(),
            vec![w.target_id_of("u3")]
        )]
    );

    w.target.clear_log();
    w.set_members(vec!["u0".into(), "u2".into(), "u3".into()], "Team", true);
    w.cycle().await;
    let gid = w.target.groups().keys().next().unwrap().clone();
    assert_eq!(
        w.member_writes(),
        vec![Write::RemoveMembers(gid, vec![w.target_id_of("u1")])]
    );
}

#[tokio::test]
async fn a_rename_is_one_patch_of_display_name() {
    let w = World::new(2, 2, 100);
    w.cycle().await;
    w.target.clear_log();
    w.set_members(vec!["u0".into(), "u1".into()], "Team Renamed", true);
    w.cycle().await;
    let writes = w.member_writes();
    assert_eq!(writes.len(), 1, "{writes:?}");
    let Write::UpdateGroup(_, changes) = &writes[0] else {
        panic!("{writes:?}")
    };
    assert_eq!(
        (changes[0].path.as_str(), &changes[0].value),
        ("displayName", &json!("Team Renamed"))
    );
}

#[tokio::test]
async fn a_member_out_of_user_scope_is_never_sent_and_joins_when_it_enters_scope() {
    let w = World::new(3, 3, 100);
    // u2 is a member of the group but disabled at the source (and so not provisioned).
    w.source.edit(|s| {
        s.users[2]
            .attrs
            .insert("accountEnabled".into(), json!(false));
    });
    let r = w.cycle().await;
    assert_eq!(
        w.target_members().len(),
        2,
        "only provisioned users are referenced"
    );
    let g = r
        .objects
        .iter()
        .find(|o| o.object_type == crate::ObjectType::Group)
        .unwrap();
    assert_eq!(g.members_left_out, vec!["u2".to_string()]);
    assert!(
        g.steps
            .iter()
            .any(|s| s.provisioning_step_type == "referenceResolution")
    );

    // Better than Entra: once u2 is enabled (and provisioned), it joins without a restart.
    w.source.edit(|s| {
        s.users[2]
            .attrs
            .insert("accountEnabled".into(), json!(true));
    });
    w.cycle().await;
    assert_eq!(w.target_members().len(), 3);
}

#[tokio::test]
async fn a_disabled_user_leaves_and_a_re_enabled_user_gets_its_membership_back() {
    let w = World::new(2, 2, 100);
    w.cycle().await;
    w.source.edit(|s| {
        s.users[1]
            .attrs
            .insert("accountEnabled".into(), json!(false));
    });
    w.cycle().await;
    assert_eq!(w.target_members().len(), 1);
    w.source.edit(|s| {
        s.users[1]
            .attrs
            .insert("accountEnabled".into(), json!(true));
    });
    w.cycle().await;
    assert_eq!(
        w.target_members().len(),
        2,
        "memberships restored, which Entra does not do"
    );
}

#[tokio::test]
async fn an_unassigned_group_is_deleted_or_kept_per_setting() {
    let mut w = World::new(2, 2, 100);
    w.cycle().await;
    w.job.groups.as_mut().unwrap().delete_out_of_scope = false;
    w.set_members(vec!["u0".into(), "u1".into()], "Team", false);
    let r = w.cycle().await;
    assert_eq!(w.target.groups().len(), 1, "kept");
    assert_eq!(r.tally.skipped, 1);
    w.job.groups.as_mut().unwrap().delete_out_of_scope = true;
    let r = w.cycle().await;
    assert_eq!(r.tally.deleted, 1);
    assert!(w.target.groups().is_empty());
}

#[tokio::test]
async fn a_crash_half_way_resumes_without_re_adding_or_losing_members() {
    let w = World::new(10, 10, 2);
    w.target.fail_member_patches_after(2);
    let r = w.cycle().await;
    assert_eq!(r.tally.failed, 1, "the group failed after two batches");
    assert_eq!(w.target_members().len(), 4);
    w.target.heal();
    w.target.clear_log();
    w.cycle().await;
    let added: Vec<String> = w
        .member_writes()
        .into_iter()
        .flat_map(|x| match x {
            Write::AddMembers(_, ids) => ids,
            _ => Vec::new(),
        })
        .collect();
    assert_eq!(
        added.len(),
        6,
        "only the members not yet confirmed: {added:?}"
    );
    assert_eq!(w.target_members().len(), 10);
}

#[tokio::test]
async fn ten_thousand_members_go_in_batches_and_a_second_cycle_sends_nothing() {
    let w = World::new(10_000, 10_000, 100);
    w.cycle().await;
    assert_eq!(w.target_members().len(), 10_000);
    let batches = w
        .member_writes()
        .iter()
        .filter(|x| matches!(x, Write::AddMembers(..)))
        .count();
    assert_eq!(batches, 100);
    w.target.clear_log();
    w.cycle().await;
    assert!(w.target.writes().is_empty());
}

#[tokio::test]
async fn a_reconcile_cycle_repairs_membership_drift_made_in_the_app() {
    let mut w = World::new(4, 3, 100);
    w.cycle().await;
    let gid = w.target.groups().keys().next().unwrap().clone();
    let dropped = w.target_id_of("u0");
    let stray = w.target_id_of("u3");
    w.target.edit_group_members(&gid, |m| {
        m.remove(&dropped);
        m.insert(stray.clone());
    });
    // Entra's behaviour (and ours by default): membership is not read back.
    w.target.clear_log();
    w.cycle().await;
    assert!(w.target.writes().is_empty());

    w.job.reconcile = crate::job::Reconcile::EveryCycle;
    let g = w.preview_group().await;
    assert_eq!(
        (g.members_added.clone(), g.members_removed.clone()),
        (vec![dropped.clone()], vec![stray.clone()]),
        "previewable"
    );
    assert!(w.target.writes().is_empty());
    w.cycle().await;
    let expected: BTreeSet<String> = ["u0", "u1", "u2"]
        .iter()
        .map(|u| w.target_id_of(u))
        .collect();
    assert_eq!(w.target_members(), expected);
}

#[tokio::test]
async fn a_preview_shows_the_membership_changes_the_run_then_sends() {
    let w = World::new(3, 3, 100);
    w.cycle().await;
    w.source.edit(|s| {
        s.users[1]
            .attrs
            .insert("accountEnabled".into(), json!(false));
    });
    let engine = crate::Engine::new(&w.job, &w.source, &w.target, &w.store, &w.clock);
    let preview = engine.run(Mode::Preview).await.unwrap();
    let planned = preview
        .objects
        .iter()
        .find(|o| o.object_type == crate::ObjectType::Group)
        .expect("group in preview");
    assert_eq!(
        planned.members_removed,
        vec![w.target_id_of("u1")],
        "the disabled user's membership goes"
    );
    w.target.clear_log();
    let applied = w.cycle().await;
    let done = applied
        .objects
        .iter()
        .find(|o| o.object_type == crate::ObjectType::Group)
        .unwrap();
    assert_eq!(done.members_removed, planned.members_removed);
}

#[tokio::test]
async fn a_target_that_refuses_large_member_patches_gets_smaller_ones_and_every_member() {
    let w = World::new(12, 10, 8);
    w.target.limit_members_per_patch(3);
    let r = w.cycle().await;
    assert_eq!(r.tally.failed, 0, "{:?}", r.objects);
    let batches: Vec<usize> = w
        .member_writes()
        .iter()
        .filter_map(|x| match x {
            Write::AddMembers(_, ids) => Some(ids.len()),
            _ => None,
        })
        .collect();
    assert_eq!(batches.iter().sum::<usize>(), 10, "{batches:?}");
    assert!(batches.iter().all(|n| *n <= 3), "{batches:?}");
    // Halved once per refusal (8 → 4 → 2), then grown back while the target answers, but
    // never to a size it refused (3 is the most below the refused 4).
    assert_eq!(batches, vec![2, 3, 3, 2]);
    assert_eq!(w.target_members().len(), 10);
    w.target.clear_log();
    w.cycle().await;
    assert!(w.target.writes().is_empty(), "{:?}", w.target.writes());
}

/// The marker a cycle leaves when it compared every group's membership and sent nothing.
fn settled(w: &World) -> bool {
    w.store
        .get_meta("t", crate::jobstate::MEMBERSHIP_SETTLED)
        .unwrap()
        .is_some()
}

fn added_ids(w: &World) -> Vec<String> {
    w.member_writes()
        .into_iter()
        .flat_map(|x| match x {
            Write::AddMembers(_, ids) => ids,
            _ => Vec::new(),
        })
        .collect()
}

/// A world with Graph-like group deltas, one cycle in: every member sent, every batch
/// confirmed and recorded, so the membership is settled.
async fn settled_world() -> World {
    let w = World::new(5, 3, 100);
    w.source.enable_group_deltas();
    w.cycle().await;
    assert!(settled(&w), "every batch was confirmed and recorded");
    assert_eq!(w.target_members().len(), 3);
    w.target.clear_log();
    w
}

/// Our record that `user` is a member of g1 goes missing (the target still has it); returns
/// the user's target id. Only a cycle that compares the membership notices.
fn lose_member_record(w: &World, user: &str) -> String {
    let target_id = w.target_id_of(user);
    w.store
        .remove_record("t", &crate::groups::members_kind("g1"), &target_id)
        .unwrap();
    target_id
}

#[tokio::test]
async fn a_settled_membership_is_compared_again_once_a_user_is_acted_on() {
    let w = settled_world().await;
    // Our record of u0's membership goes missing. A quiet cycle does not read the records
    // (that is what it saves), so it does not notice...
    let t0 = lose_member_record(&w, "u0");
    let r = w.cycle().await;
    assert!(w.target.writes().is_empty(), "{:?}", w.target.writes());
    assert_eq!(r.tally.failed, 0);
    assert!(settled(&w));
    // ...until something membership depends on changes: here a user (not even a member) is
    // updated, so every group is compared again and u0 is sent once more.
    w.source.edit(|s| {
        s.users[4]
            .attrs
            .insert("userPrincipalName".into(), json!("u4-renamed@x"));
    });
    w.cycle().await;
    assert_eq!(added_ids(&w), vec![t0]);
    assert!(settled(&w), "what it sent is confirmed and recorded");
    w.target.clear_log();
    w.cycle().await;
    assert!(w.target.writes().is_empty());
    assert!(settled(&w));
}

#[tokio::test]
async fn a_member_added_at_the_source_after_a_settled_cycle_is_sent() {
    let w = settled_world().await;
    w.set_members(
        vec!["u0".into(), "u1".into(), "u2".into(), "u4".into()],
        "Team",
        true,
    );
    w.cycle().await;
    assert_eq!(added_ids(&w), vec![w.target_id_of("u4")]);
    assert_eq!(w.target_members().len(), 4);
}

#[tokio::test]
async fn provisioning_on_demand_voids_a_settled_membership() {
    let w = settled_world().await;
    let t0 = lose_member_record(&w, "u0");
    crate::Engine::new(&w.job, &w.source, &w.target, &w.store, &w.clock)
        .provision_user("u4", Mode::Apply)
        .await
        .unwrap();
    assert!(!settled(&w), "a write outside a cycle voids the marker");
    w.target.clear_log();
    w.cycle().await;
    assert_eq!(
        added_ids(&w),
        vec![t0],
        "the next cycle compares every group"
    );
}

#[tokio::test]
async fn a_membership_write_that_fails_leaves_no_marker_and_is_sent_later() {
    let w = settled_world().await;
    w.set_members((0..5).map(|i| format!("u{i}")).collect(), "Team", true);
    w.target.fail_member_patches_after(0);
    let r = w.cycle().await;
    assert_eq!(r.tally.failed, 1, "{:?}", r.objects);
    assert!(!settled(&w));
    w.target.heal();
    w.cycle().await;
    assert_eq!(w.target_members().len(), 5);
}

#[tokio::test]
async fn a_preview_neither_skips_nor_touches_the_marker() {
    let w = settled_world().await;
    let t0 = lose_member_record(&w, "u0");
    let g = w.preview_group().await;
    assert_eq!(g.members_added, vec![t0]);
    assert!(settled(&w));
    assert!(w.target.writes().is_empty());
}

/// Whether `user` is provisioned and active.
fn active(w: &World, user: &str) -> bool {
    w.store.get("t", user).unwrap().is_some_and(|s| s.active)
}

/// Whether `user` was provisioned and is now disabled (its record kept).
fn disabled(w: &World, user: &str) -> bool {
    w.store.get("t", user).unwrap().is_some_and(|s| !s.active)
}

/// u2 (assigned only through g1) is renamed at the source; the next cycle must still find it
/// in scope and send the new name.
async fn renamed_u2_stays_in_scope(w: &World) {
    w.source.edit(|s| {
        s.users[2]
            .attrs
            .insert("userPrincipalName".into(), json!("u2-renamed@x"));
    });
    let r = w.cycle().await;
    assert_eq!(r.tally.failed, 0, "{:?}", r.objects);
    let u2 = w.store.get("t", "u2").unwrap().unwrap();
    assert!(u2.active, "still in scope through g1: {:?}", r.objects);
    assert_eq!(
        w.target.users()[&u2.target_id]["userName"],
        json!("u2-renamed@x")
    );
}

/// A world where u0 and u1 are assigned directly and u2 only through g1 (members u0..u2),
/// with Graph-like group deltas, two cycles in (the second quiet).
async fn assigned_through_a_group() -> World {
    assigned_through_a_group_in(World::new(5, 3, 100)).await
}

/// The same for a job that provisions users only (groups only bring their members in scope).
async fn users_only_assigned_through_a_group() -> World {
    let mut w = World::new(5, 3, 100);
    w.job.groups = None;
    let w = assigned_through_a_group_in(w).await;
    assert!(w.target.groups().is_empty());
    w
}

async fn assigned_through_a_group_in(w: World) -> World {
    w.source.enable_group_deltas();
    w.source
        .edit(|s| s.assigned = Some(["u0".to_string(), "u1".to_string()].into()));
    w.cycle().await;
    w.cycle().await;
    assert!(active(&w, "u2"));
    assert!(
        w.store.get("t", "u3").unwrap().is_none(),
        "u3 is not assigned"
    );
    w.target.clear_log();
    w
}

/// Our copy of g1's members loses `user`: only a cycle that expands the assigned groups again
/// sees a difference.
fn lose_mirrored_member(w: &World, user: &str) {
    let kind = crate::jobstate::GROUP_MIRROR;
    let (_, v) = w.store.list_records("t", kind).unwrap().remove(0);
    let mut g: crate::read::MirroredGroup = serde_json::from_str(&v).unwrap();
    assert!(g.users.remove(user));
    w.store
        .put_record("t", kind, "g1", &serde_json::to_string(&g).unwrap())
        .unwrap();
}

#[tokio::test]
async fn a_quiet_cycle_does_not_expand_assignments_again_but_any_change_does() {
    let w = assigned_through_a_group().await;
    // The list and the groups are as the last cycle left them: the expansion is not redone
    // (observed: a member missing from our copy of the group goes unnoticed)...
    lose_mirrored_member(&w, "u2");
    let r = w.cycle().await;
    assert!(w.target.writes().is_empty(), "{:?}", w.target.writes());
    assert_eq!(r.tally.failed, 0);
    // ...while a change to the assignment list is seen at once: u3 assigned directly.
    w.source
        .edit(|s| s.assigned = Some(["u0", "u1", "u3"].iter().map(|s| s.to_string()).collect()));
    w.cycle().await;
    assert!(active(&w, "u3"), "u3 provisioned");
    // The expansion ran again with it, from our (damaged) copy: u2 lost its assignment.
    assert!(disabled(&w, "u2"));
}

#[tokio::test]
async fn a_digest_not_saved_with_the_groups_it_was_computed_from_does_not_spare_the_expansion() {
    use crate::jobstate::ASSIGNMENTS_DIGEST;
    use crate::read::StoredDigests;
    let w = assigned_through_a_group().await;
    // As if a commit stopped between saving the copy of the groups (and its watermark) and
    // the digest: the stored digest stands for the groups at another watermark.
    let stored = StoredDigests::parse(&w.store.get_meta("t", ASSIGNMENTS_DIGEST).unwrap().unwrap());
    let raw = stored.raw.as_deref().unwrap().split_once('.').unwrap().0;
    let older = StoredDigests::raw_part(raw, Some("g0")).unwrap();
    assert_ne!(stored.raw.as_deref(), Some(older.as_str()));
    w.store
        .put_meta(
            "t",
            ASSIGNMENTS_DIGEST,
            &StoredDigests::join(&stored.effective, Some(&older)),
        )
        .unwrap();
    // The expansion runs again (observed: our copy of g1, which lost u2, is what counts).
    lose_mirrored_member(&w, "u2");
    w.cycle().await;
    assert!(disabled(&w, "u2"));
}

#[tokio::test]
async fn a_user_who_changes_in_a_quiet_cycle_keeps_the_assignment_it_has_through_a_group() {
    let w = assigned_through_a_group().await;
    renamed_u2_stays_in_scope(&w).await;
}

#[tokio::test]
async fn leaving_or_joining_an_assigned_group_after_quiet_cycles_takes_effect() {
    let w = assigned_through_a_group().await;
    w.set_members(vec!["u0".into(), "u1".into()], "Team", true);
    w.cycle().await;
    assert!(disabled(&w, "u2"), "u2 left g1");
    w.cycle().await;
    w.set_members(
        vec!["u0".into(), "u1".into(), "u2".into(), "u4".into()],
        "Team",
        true,
    );
    w.cycle().await;
    assert!(active(&w, "u2"), "u2 is back");
    assert!(active(&w, "u4"), "u4 joined");
}

#[tokio::test]
async fn a_users_only_job_expands_assigned_groups_from_its_copy_when_a_user_needs_it() {
    // Quiet cycles leave the job's copy of the groups unread; a user who changes still gets
    // the assignment it has through g1.
    let w = users_only_assigned_through_a_group().await;
    renamed_u2_stays_in_scope(&w).await;
    // A changed assignment list expands every group again, from the same copy: u3 comes in,
    // u2 stays.
    w.source
        .edit(|s| s.assigned = Some(["u0", "u1", "u3"].iter().map(|s| s.to_string()).collect()));
    let r = w.cycle().await;
    assert_eq!(r.tally.failed, 0, "{:?}", r.objects);
    assert!(active(&w, "u3"), "u3 provisioned");
    assert!(active(&w, "u2"), "u2 kept: {:?}", r.objects);
    // And a member leaving g1 is seen through the group delta.
    w.set_members(vec!["u0".into(), "u1".into()], "Team", true);
    w.cycle().await;
    assert!(disabled(&w, "u2"), "u2 left g1");
}
