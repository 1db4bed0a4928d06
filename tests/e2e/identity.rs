//! Issue 11, "no silent damage", end to end: the binary against the Graph emulator and the real
//! scim2-server (PyPI), with the test kit's fault proxy in front of it where the network must
//! misbehave. Identity is never merged, a preview plans what a run does, faults converge
//! without duplicates, and a suspicious read or an approval nobody needed deprovisions nothing.
//!
//! scim2-server 0.8.3, probed by hand: a second group with an existing `displayName` is created
//! (201, no uniqueness check on groups, not even on `externalId`), and `displayName eq` filters
//! match case-insensitively.
//!
//! Exit codes asserted here: 0 success, 4 cycle completed with object failures, 5 cycle held
//! (deletions or a suspicious source read wait for approval).

use crate::support::*;
use scimsync_testkit::faults::{FaultPlan, FaultProxy};
use scimsync_testkit::graph::{GraphEmulator, Tenant};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::Output;

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

/// Exit code of a cycle held for approval.
const HELD: i32 = 5;

fn with_groups() -> String {
    format!("{DEFAULT_MAPPINGS}{GROUP_MAPPINGS}")
}

/// A user with a fixed id (so a tenant's SCIM traffic is the same on every run).
fn person(n: usize) -> Value {
    json!({
        "id": format!("00000000-0000-4000-8000-{n:012}"),
        "userPrincipalName": upn(n),
        "displayName": format!("Person {n:02}"),
        "givenName": "Person",
        "surname": format!("N{n:02}"),
        "mailNickname": format!("person.n{n:02}"),
        "accountEnabled": true,
    })
}

fn upn(n: usize) -> String {
    format!("person.n{n:02}@contoso.onmicrosoft.com")
}

fn group_id(n: usize) -> String {
    format!("00000000-0000-4000-9000-{n:012}")
}

fn group(n: usize, name: &str, members: &[&String]) -> Value {
    json!({"id": group_id(n), "displayName": name, "members": members})
}

fn upns(ns: impl IntoIterator<Item = usize>) -> BTreeSet<String> {
    ns.into_iter().map(upn).collect()
}

async fn start(tenant: Tenant) -> GraphEmulator {
    GraphEmulator::start(tenant).await.expect("graph emulator")
}

/// Exit code, everything printed, and the report when stdout is one.
fn run(job: &Job) -> (Option<i32>, String, Option<Value>) {
    let out = run_once_output(job);
    (
        out.status.code(),
        text(&out),
        serde_json::from_slice(&out.stdout).ok(),
    )
}

fn approve_deletions(job: &Job) -> Output {
    scimsync(&[
        "approve-deletions",
        "--job",
        "e2e",
        "--config-dir",
        job.dir.path().to_str().unwrap(),
        "--state",
        job.state().to_str().unwrap(),
    ])
}

fn status_json(job: &Job) -> Value {
    let out = scimsync(&[
        "status",
        "--json",
        "--config",
        job.config.to_str().unwrap(),
        "--state",
        job.state().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "status failed: {}", text(&out));
    let all: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("status is not JSON ({e}): {}", text(&out)));
    all[0].clone()
}

/// One group as scim2-server holds it, members as lower-case userNames.
#[derive(Debug)]
struct TargetGroup {
    display_name: String,
    external_id: Option<String>,
    members: BTreeSet<String>,
}

fn target_groups(server: &Scim2Server) -> Vec<TargetGroup> {
    let names: HashMap<String, String> = server
        .list_all("Users")
        .iter()
        .map(|u| {
            (
                u["id"].as_str().unwrap().to_string(),
                u["userName"].as_str().unwrap().to_lowercase(),
            )
        })
        .collect();
    server
        .list_all("Groups")
        .iter()
        .map(|g| {
            let full = server.get(&format!("/Groups/{}", g["id"].as_str().unwrap()));
            let members = full["members"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|m| {
                    let id = m["value"].as_str().unwrap();
                    names
                        .get(id)
                        .cloned()
                        .unwrap_or_else(|| panic!("group member {id} is no user: {full}"))
                })
                .collect();
            TargetGroup {
                display_name: full["displayName"].as_str().unwrap().to_string(),
                external_id: full["externalId"].as_str().map(str::to_string),
                members,
            }
        })
        .collect()
}

fn user_names(server: &Scim2Server) -> Vec<String> {
    let mut v: Vec<String> = server
        .list_all("Users")
        .iter()
        .map(|u| u["userName"].as_str().unwrap().to_lowercase())
        .collect();
    v.sort();
    v
}

fn assert_all_active(server: &Scim2Server, who: &BTreeSet<String>) {
    for u in who {
        let got = server
            .user(u)
            .unwrap_or_else(|| panic!("{u} is gone from scim2-server"));
        assert_eq!(got["active"], json!(true), "{u} was deprovisioned: {got}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_groups_with_one_name_stay_two_groups() {
    let mut t = Tenant::new("contoso.onmicrosoft.com");
    let u: Vec<String> = (0..=5).map(|n| t.add_user(person(n))).collect();
    let first = t.add_group(group(1, "Sales", &[&u[1], &u[2], &u[3]]));
    let second = t.add_group(group(2, "Sales", &[&u[4], &u[5]]));
    t.assign(&first);
    t.assign(&second);
    let graph = start(t).await;
    let server = Scim2Server::start();
    let mappings = with_groups();
    let job = write_job(
        &graph,
        &server.base,
        &server.token,
        JobOptions {
            scope: "assigned",
            mappings: &mappings,
            ..Default::default()
        },
    );
    // scim2-server accepts a second group with the same displayName, so both are created and
    // each keeps its own members; the second cycle (incremental) must not merge them either.
    for cycle in 1..=2 {
        let (code, out, _) = run(&job);
        assert_eq!(code, Some(0), "cycle {cycle}: {out}");
        let groups = target_groups(&server);
        let sales: Vec<&TargetGroup> = groups
            .iter()
            .filter(|g| g.display_name == "Sales")
            .collect();
        assert_eq!(
            sales.len(),
            2,
            "cycle {cycle}: two groups named Sales: {groups:?}"
        );
        assert_eq!(groups.len(), 2, "{groups:?}");
        for (source, members) in [(&first, upns(1..=3)), (&second, upns(4..=5))] {
            let g = sales
                .iter()
                .find(|g| g.external_id.as_deref() == Some(source.as_str()))
                .unwrap_or_else(|| panic!("cycle {cycle}: no Sales group for {source}: {sales:?}"));
            assert_eq!(g.members, members, "cycle {cycle}: members of {source}");
        }
    }
    assert_eq!(user_names(&server), Vec::from_iter(upns(1..=5)));
}

/// The groups a `preview --json` plans to create, by displayName, with their members as
/// lower-case userNames (members are the users the same preview creates).
fn planned_groups(preview: &Value) -> BTreeMap<String, BTreeSet<String>> {
    let objects = preview["objects"].as_array().expect("preview objects");
    let requests = |o: &Value| o["requests"].as_array().cloned().unwrap_or_default();
    let is = |r: &Value, method: &str, resource: &str| {
        r["method"] == method
            && r["path"]
                .as_str()
                .unwrap_or_default()
                .trim_end_matches('/')
                .ends_with(resource)
    };
    // Every way a preview may refer to a user it creates → that user's userName.
    let mut who: HashMap<String, String> = HashMap::new();
    for o in objects {
        for r in requests(o).iter().filter(|r| is(r, "POST", "Users")) {
            let name = r["body"]["userName"].as_str().unwrap().to_lowercase();
            let display = o["displayName"].as_str().unwrap_or_default();
            for key in [
                format!("(new user {display})"),
                o["sourceId"].as_str().unwrap_or_default().to_string(),
                name.clone(),
            ] {
                assert!(
                    who.insert(key.clone(), name.clone())
                        .is_none_or(|n| n == name),
                    "ambiguous user reference {key}"
                );
            }
        }
    }
    let mut planned = BTreeMap::new();
    for o in objects {
        let reqs = requests(o);
        let Some(create) = reqs.iter().find(|r| is(r, "POST", "Groups")) else {
            continue;
        };
        let name = create["body"]["displayName"].as_str().unwrap().to_string();
        let mut refs: Vec<String> = create["body"]["members"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["value"].as_str().map(str::to_string))
            .collect();
        for patch in reqs.iter().filter(|r| r["method"] == "PATCH") {
            for op in patch["body"]["Operations"].as_array().into_iter().flatten() {
                if !op["op"]
                    .as_str()
                    .unwrap_or_default()
                    .eq_ignore_ascii_case("add")
                {
                    continue;
                }
                let values = match op["path"].as_str() {
                    Some(p) if p.eq_ignore_ascii_case("members") => op["value"].clone(),
                    None => op["value"]["members"].clone(),
                    Some(_) => continue,
                };
                refs.extend(
                    values
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|m| m["value"].as_str().map(str::to_string)),
                );
            }
        }
        let members: BTreeSet<String> = refs
            .iter()
            .map(|r| {
                who.get(r)
                    .cloned()
                    .unwrap_or_else(|| panic!("{name}: member {r} is no user the preview creates"))
            })
            .collect();
        assert!(
            planned.insert(name.clone(), members).is_none(),
            "{name} planned twice"
        );
    }
    planned
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_plans_the_same_group_requests_as_run() {
    let mut t = Tenant::new("contoso.onmicrosoft.com");
    let u: Vec<String> = (0..=7).map(|n| t.add_user(person(n))).collect();
    t.add_user(json!({"id": "00000000-0000-4000-8000-000000000099",
        "userPrincipalName": upn(99), "displayName": "Person 99", "mailNickname": "person.n99",
        "accountEnabled": false}));
    let disabled = "00000000-0000-4000-8000-000000000099".to_string();
    let engineering = t.add_group(group(1, "Engineering", &[&u[1], &u[2], &u[3], &disabled]));
    let marketing = t.add_group(group(2, "Marketing", &[&u[3], &u[4]]));
    t.add_group(group(3, "Legal", &[&u[5]])); // not assigned: not provisioned
    t.assign(&engineering);
    t.assign(&marketing);
    t.assign(&u[6]);
    let graph = start(t).await;
    let server = Scim2Server::start();
    let mappings = with_groups();
    let job = write_job(
        &graph,
        &server.base,
        &server.token,
        JobOptions {
            scope: "assigned",
            mappings: &mappings,
            ..Default::default()
        },
    );

    let planned = planned_groups(&preview_json(&job));
    assert_eq!(server.user_count(), 0, "a preview sends nothing");
    assert_eq!(
        planned.keys().map(String::as_str).collect::<Vec<_>>(),
        ["Engineering", "Marketing"],
        "{planned:?}"
    );
    assert!(planned.values().all(|m| !m.is_empty()), "{planned:?}");

    let (code, out, _) = run(&job);
    assert_eq!(code, Some(0), "{out}");
    let done: BTreeMap<String, BTreeSet<String>> = target_groups(&server)
        .into_iter()
        .map(|g| (g.display_name, g.members))
        .collect();
    assert_eq!(done, planned, "the run did what the preview planned");
}

/// Which of persons 1..=30 a group holds.
type InGroup = fn(usize) -> bool;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_converge_within_three_cycles() {
    let mut t = Tenant::new("contoso.onmicrosoft.com");
    // Person 00 exists but is disabled: 30 users to provision.
    let mut nobody = person(0);
    nobody["accountEnabled"] = json!(false);
    let mut u = vec![t.add_user(nobody)];
    u.extend((1..=30).map(|n| t.add_user(person(n))));
    let pick = |f: InGroup| -> Vec<&String> { (1..=30).filter(|n| f(*n)).map(|n| &u[n]).collect() };
    let members: [(&str, InGroup); 3] = [
        ("Alpha", |n| n % 3 == 0),
        ("Beta", |n| n % 2 == 0),
        ("Gamma", |n| n <= 12),
    ];
    for (i, (name, f)) in members.iter().enumerate() {
        t.add_group(group(i + 1, name, &pick(*f)));
    }
    let graph = start(t).await;
    let server = Scim2Server::start();
    let proxy = FaultProxy::start(
        &server.base,
        FaultPlan {
            seed: 11,
            error_500: 0.10,
            reset_after_forward: 0.08,
            malformed_201: 0.25,
        },
    )
    .await
    .expect("fault proxy");
    let mappings = with_groups();
    let job = write_job(
        &graph,
        &proxy.url(),
        &server.token,
        JobOptions {
            scope: "all",
            mappings: &mappings,
            ..Default::default()
        },
    );

    let mut codes = Vec::new();
    let mut last = String::new();
    for cycle in 1..=3 {
        let (code, out, _) = run(&job);
        assert!(
            matches!(code, Some(0 | 4)),
            "cycle {cycle} exited {code:?}: {out}"
        );
        codes.push(code);
        last = out;
        if code == Some(0) {
            break;
        }
    }
    let stats = proxy.stats();
    assert_eq!(
        codes.last(),
        Some(&Some(0)),
        "still failing after 3 cycles (exit codes {codes:?}); {stats:?}; injected {:?}\n{last}",
        proxy.injected()
    );
    assert!(
        stats.error_500 > 0 && stats.resets > 0 && stats.malformed_201() > 0,
        "every kind of fault was injected: {stats:?}"
    );

    // Exactly one user per source user, exactly one group per source group, exact members.
    assert_eq!(user_names(&server), Vec::from_iter(upns(1..=30)));
    let groups = target_groups(&server);
    assert_eq!(groups.len(), 3, "{groups:?}");
    for (i, (name, f)) in members.iter().enumerate() {
        let g = groups
            .iter()
            .find(|g| g.display_name == *name)
            .unwrap_or_else(|| panic!("no group {name}: {groups:?}"));
        assert_eq!(g.external_id.as_deref(), Some(group_id(i + 1).as_str()));
        assert_eq!(
            g.members,
            upns((1..=30).filter(|n| f(*n))),
            "members of {name}"
        );
    }

    // Nothing is still failing or waiting in escrow.
    let status = status_json(&job);
    assert_eq!(status["escrowCount"], json!(0), "{status}");
    assert_eq!(status["lastCycle"]["tally"]["failed"], json!(0), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_assignment_page_deprovisions_nothing() {
    let mut t = Tenant::new("contoso.onmicrosoft.com");
    let u: Vec<String> = (0..=6).map(|n| t.add_user(person(n))).collect();
    for id in &u[1..=3] {
        t.assign(id);
    }
    let team = t.add_group(group(1, "Team", &[&u[4], &u[5]]));
    t.assign(&team);
    let graph = start(t).await;
    let server = Scim2Server::start();
    // Faults off: the proxy only records what scimsync sends.
    let proxy = FaultProxy::start(&server.base, FaultPlan::default())
        .await
        .expect("proxy");
    let job = write_job(
        &graph,
        &proxy.url(),
        &server.token,
        JobOptions {
            scope: "assigned",
            ..Default::default()
        },
    );
    let (code, out, _) = run(&job);
    assert_eq!(code, Some(0), "{out}");
    let provisioned = upns(1..=5);
    assert_eq!(user_names(&server), Vec::from_iter(provisioned.clone()));

    // The assignments read now answers an empty list (every assignment gone at once, as a
    // permissions or paging glitch looks from here).
    for principal in graph.snapshot().assigned_principals() {
        if principal == team {
            graph.unassign_group(&principal);
        } else {
            graph.unassign_user(&principal);
        }
    }
    assert!(graph.snapshot().assigned_principals().is_empty());

    // Held, twice: nothing is sent until an admin approves.
    for cycle in 2..=3 {
        proxy.clear_requests();
        let (code, out, _) = run(&job);
        assert_eq!(code, Some(HELD), "cycle {cycle} is held: {out}");
        assert!(out.to_lowercase().contains("held"), "{out}");
        assert!(
            proxy.writes().is_empty(),
            "cycle {cycle} sent {:?}",
            proxy.writes()
        );
        assert_all_active(&server, &provisioned);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_with_nothing_held_arms_nothing() {
    let mut t = Tenant::new("contoso.onmicrosoft.com");
    let u: Vec<String> = (0..=10).map(|n| t.add_user(person(n))).collect();
    for id in &u[1..=10] {
        t.assign(id);
    }
    let graph = start(t).await;
    let server = Scim2Server::start();
    let proxy = FaultProxy::start(&server.base, FaultPlan::default())
        .await
        .expect("proxy");
    let job = write_job(
        &graph,
        &proxy.url(),
        &server.token,
        JobOptions {
            scope: "assigned",
            extra_top: "deletion_threshold = 3",
            ..Default::default()
        },
    );
    let (code, out, _) = run(&job);
    assert_eq!(code, Some(0), "{out}");
    let everyone = upns(1..=10);
    assert_all_active(&server, &everyone);

    // Nothing is held: approving says so and arms nothing.
    let approved = approve_deletions(&job);
    let said = text(&approved);
    assert!(approved.status.success(), "{said}");
    let lower = said.to_lowercase();
    assert!(
        lower.contains("nothing") && lower.contains("held"),
        "approve-deletions must say nothing is held: {said}"
    );
    assert!(!lower.contains("deletions approved"), "{said}");

    // Five unassigned, over the threshold of 3: held, not sent, despite the earlier approval.
    for id in &u[1..=5] {
        graph.unassign_user(id);
    }
    proxy.clear_requests();
    let (code, out, _) = run(&job);
    assert_eq!(code, Some(HELD), "{out}");
    assert!(out.to_lowercase().contains("held"), "{out}");
    assert!(proxy.writes().is_empty(), "sent {:?}", proxy.writes());
    assert_all_active(&server, &everyone);
    assert_eq!(status_json(&job)["deletionsHeld"], json!(true));

    // Approved now, the next cycle sends exactly the held disables.
    let approved = approve_deletions(&job);
    assert!(approved.status.success(), "{}", text(&approved));
    proxy.clear_requests();
    let (code, out, _) = run(&job);
    assert_eq!(code, Some(0), "{out}");
    let writes = proxy.writes();
    assert_eq!(writes.len(), 5, "{writes:?}");
    assert!(writes.iter().all(|w| w.method == "PATCH"), "{writes:?}");
    for n in 1..=10 {
        let active = server.user(&upn(n)).expect("still there")["active"].clone();
        assert_eq!(active, json!(n > 5), "{}", upn(n));
    }
}
