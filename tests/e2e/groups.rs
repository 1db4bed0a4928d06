//! Groups end to end: the binary provisions assigned groups and keeps their membership exact,
//! against the built-in SCIM app and the real scim2-server.

use crate::support::*;
use scimsync_testkit::graph::{GraphEmulator, Tenant};
use scimsync_testkit::scim::{ScimTarget, ScimTargetOptions};
use serde_json::{Value, json};
use std::collections::BTreeSet;

const GROUP_MAPPINGS: &str = r#"
[groups]
enabled = true

[[groups.mappings]]
target = "displayName"
source = "displayName"
matching = 1

[[groups.mappings]]
target = "externalId"
source = "objectId"
"#;

async fn tenant_with_groups() -> GraphEmulator {
    GraphEmulator::start(Tenant::generate("contoso.onmicrosoft.com", 40, 3, 7))
        .await
        .expect("graph emulator")
}

fn job_text() -> String {
    format!("{DEFAULT_MAPPINGS}{GROUP_MAPPINGS}")
}

/// Source groups assigned to the app, as (id, displayName, user member ids).
fn assigned_groups(graph: &GraphEmulator) -> Vec<(String, String, Vec<String>)> {
    let assigned: BTreeSet<String> = graph.snapshot().assigned_principals().into_iter().collect();
    let users: BTreeSet<String> = graph
        .users()
        .iter()
        .filter_map(|u| u["id"].as_str().map(str::to_string))
        .collect();
    graph
        .groups()
        .into_iter()
        .filter(|g| assigned.contains(g["id"].as_str().unwrap_or_default()))
        .map(|g| {
            let members = g["members"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .filter(|m| users.contains(*m))
                .map(str::to_string)
                .collect();
            (
                g["id"].as_str().unwrap().to_string(),
                g["displayName"].as_str().unwrap().to_string(),
                members,
            )
        })
        .collect()
}

/// Target ids the members of a source group should have: provisioned, active users only.
fn expected_member_ids(
    t: &ScimTarget,
    graph: &GraphEmulator,
    members: &[String],
) -> BTreeSet<String> {
    members
        .iter()
        .filter_map(|id| {
            let upn = upn_of(graph, id);
            t.user_by_username(&upn)
                .filter(|u| u["active"] == json!(true))
                .and_then(|u| u["id"].as_str().map(str::to_string))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assigned_groups_are_created_with_exactly_their_provisioned_members_and_kept_exact() {
    let graph = tenant_with_groups().await;
    let t = ScimTarget::start(ScimTargetOptions::default())
        .await
        .unwrap();
    let mappings = job_text();
    let job = write_job(
        &graph,
        &t.url(),
        t.token(),
        JobOptions {
            scope: "assigned",
            mappings: &mappings,
            ..Default::default()
        },
    );
    let report = run_once(&job);
    assert_eq!(tally(&report, "failed"), 0, "{report}");
    let groups = assigned_groups(&graph);
    assert!(!groups.is_empty());
    for (_, name, members) in &groups {
        let g = t
            .group_by_display_name(name)
            .unwrap_or_else(|| panic!("group {name} provisioned"));
        let have: BTreeSet<String> = t
            .group_member_ids(g["id"].as_str().unwrap())
            .into_iter()
            .collect();
        assert_eq!(
            have,
            expected_member_ids(&t, &graph, members),
            "members of {name}"
        );
        assert!(!have.is_empty());
    }
    assert!(t.dangling_members().is_empty(), "no dangling references");

    // No change: nothing sent.
    t.clear_requests();
    run_once(&job);
    assert!(t.writes().is_empty(), "{:?}", t.writes());

    // One member added at the source → one PATCH with one value.
    let (gid, name, members) = groups[0].clone();
    let provisioned_outsider = graph
        .users()
        .iter()
        .filter_map(|u| u["id"].as_str().map(str::to_string))
        .find(|id| {
            !members.contains(id)
                && t.user_by_username(&upn_of(&graph, id))
                    .is_some_and(|u| u["active"] == json!(true))
        })
        .expect("a provisioned user outside the group");
    graph.add_member(&gid, &provisioned_outsider);
    t.clear_requests();
    run_once(&job);
    let target_gid = t.group_by_display_name(&name).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let new_tid = t
        .user_by_username(&upn_of(&graph, &provisioned_outsider))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        t.membership_patches(),
        vec![(target_gid.clone(), vec![new_tid.clone()], vec![])]
    );
    assert_eq!(t.writes().len(), 1);

    // And removed → one PATCH removing it.
    graph.remove_member(&gid, &provisioned_outsider);
    t.clear_requests();
    run_once(&job);
    assert_eq!(
        t.membership_patches(),
        vec![(target_gid.clone(), vec![], vec![new_tid])]
    );

    // Renamed → one PATCH of displayName.
    graph.update_group(&gid, json!({"displayName": "sg-Renamed"}));
    t.clear_requests();
    run_once(&job);
    let w = t.writes();
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0].method, "PATCH");
    assert!(
        w[0].body
            .as_ref()
            .unwrap()
            .to_string()
            .contains("sg-Renamed")
    );
    assert!(t.group_by_display_name("sg-Renamed").is_some());

    // Unassigned → deleted (Entra's default for groups leaving scope).
    graph.unassign_group(&gid);
    let report = run_once(&job);
    assert!(tally(&report, "deleted") >= 1, "{report}");
    assert!(t.group_by_display_name("sg-Renamed").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_against_scim2_server() {
    groups_flow(&Scim2Server::start()).await;
}

/// Assigned groups with their members on a real SCIM server (scim2-server here, SCIMMY in
/// `scimmy.rs`): created with exactly the provisioned members, a member added, a member
/// removed (with a rename in the same cycle).
pub async fn groups_flow(server: &impl RealScim) {
    let graph = tenant_with_groups().await;
    let mappings = job_text();
    let job = write_job(
        &graph,
        server.base(),
        server.token(),
        JobOptions {
            scope: "assigned",
            mappings: &mappings,
            ..Default::default()
        },
    );
    let report = run_once(&job);
    assert_eq!(tally(&report, "failed"), 0, "{report}");
    let groups = assigned_groups(&graph);
    let (gid, name, members) = groups[0].clone();
    let found = |name: &str| -> Option<Value> {
        let q = format!("/Groups?filter=displayName%20eq%20%22{name}%22");
        server.get(&q)["Resources"]
            .as_array()
            .and_then(|a| a.first().cloned())
    };
    let g = found(&name).expect("group on the server");
    assert_eq!(g["externalId"], gid.as_str());
    let full = server.get(&format!("/Groups/{}", g["id"].as_str().unwrap()));
    let have: BTreeSet<String> = full["members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["value"].as_str().map(str::to_string))
        .collect();
    let expected: BTreeSet<String> = members
        .iter()
        .filter_map(|id| {
            server
                .user(&upn_of(&graph, id))
                .and_then(|u| u["id"].as_str().map(str::to_string))
        })
        .collect();
    assert_eq!(have, expected);

    // A provisioned user who is not a member joins the group: one member add.
    let joining = graph
        .users()
        .into_iter()
        .filter_map(|u| u["id"].as_str().map(str::to_string))
        .filter(|id| !members.contains(id))
        .find(|id| server.user(&upn_of(&graph, id)).is_some())
        .expect("a provisioned user outside the group");
    graph.add_member(&gid, &joining);
    let report = run_once(&job);
    assert_eq!(tally(&report, "failed"), 0, "{report}");
    let joined_id = server.user(&upn_of(&graph, &joining)).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let full = server.get(&format!("/Groups/{}", g["id"].as_str().unwrap()));
    assert!(
        full["members"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|m| m["value"] == joined_id.as_str()),
        "{joining} joined: {full}"
    );

    // A member removed at the source leaves the group on the server (RFC removal form).
    let leaving = members[0].clone();
    graph.remove_member(&gid, &leaving);
    graph.update_group(&gid, json!({"displayName": format!("{name}-renamed")}));
    let report = run_once(&job);
    assert_eq!(tally(&report, "failed"), 0, "{report}");
    let g = found(&format!("{name}-renamed")).expect("renamed");
    let full = server.get(&format!("/Groups/{}", g["id"].as_str().unwrap()));
    let left_id = server.user(&upn_of(&graph, &leaving)).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        !full["members"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|m| m["value"] == left_id.as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_added_to_an_assigned_group_is_provisioned() {
    let graph = tenant_with_groups().await;
    let t = ScimTarget::start(ScimTargetOptions::default())
        .await
        .unwrap();
    // Users only: the group matters for assignment scope, not provisioned itself.
    let job = write_job(
        &graph,
        &t.url(),
        t.token(),
        JobOptions {
            scope: "assigned",
            ..Default::default()
        },
    );
    run_once(&job);
    let (gid, _, _) = assigned_groups(&graph)[0].clone();
    let newcomer = graph.add_user(
        json!({"userPrincipalName": "joined.group@contoso.onmicrosoft.com",
        "displayName": "Joined Group", "accountEnabled": true, "mailNickname": "joined.group"}),
    );
    let report = run_once(&job);
    assert_eq!(tally(&report, "created"), 0, "not assigned yet: {report}");
    graph.add_member(&gid, &newcomer);
    let report = run_once(&job);
    assert_eq!(tally(&report, "created"), 1, "{report}");
    assert!(
        t.user_by_username("joined.group@contoso.onmicrosoft.com")
            .is_some()
    );
    graph.remove_member(&gid, &newcomer);
    let report = run_once(&job);
    assert_eq!(
        tally(&report, "disabled"),
        1,
        "left the assigned group: {report}"
    );
}
