//! The binary against the Graph emulator and the built-in SCIM app.

use crate::support::*;
use scimsync_testkit::scim::{ScimTarget, ScimTargetOptions};
use serde_json::{Value, json};
use std::time::Instant;

async fn target() -> ScimTarget {
    ScimTarget::start(ScimTargetOptions::default())
        .await
        .expect("scim target")
}

fn user_names(t: &ScimTarget) -> Vec<String> {
    let mut v: Vec<String> = t
        .users()
        .iter()
        .filter_map(|u| u["userName"].as_str().map(str::to_lowercase))
        .collect();
    v.sort();
    v
}

fn writes(t: &ScimTarget) -> Vec<(String, String, Option<Value>)> {
    t.writes()
        .into_iter()
        .map(|w| {
            (
                w.method.to_string(),
                w.path_and_query.clone(),
                w.body.clone(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_cycle_creates_enabled_users_and_a_second_cycle_sends_nothing() {
    let graph = tenant(40).await;
    let t = target().await;
    let job = write_job(&graph, &t.url(), t.token(), JobOptions::default());

    let report = run_once(&job);
    let expected = enabled_upns(&graph);
    assert!(
        expected.len() < 40,
        "the generated tenant should have disabled users"
    );
    assert_eq!(
        user_names(&t),
        expected,
        "exactly the enabled users, each once"
    );
    assert_eq!(tally(&report, "created"), expected.len() as u64);
    assert!(t.users().iter().all(|u| u["active"] == json!(true)));

    t.clear_requests();
    graph.clear_requests();
    let report = run_once(&job);
    assert_eq!(report["kind"], "incremental");
    assert_eq!(report["fullRead"], false, "{report}");
    assert!(
        t.requests().is_empty(),
        "a no-change cycle sends nothing: {:?}",
        writes(&t)
    );
    // A tenant without changes costs one delta round: no full read of /users.
    let reads: Vec<String> = graph
        .requests()
        .iter()
        .map(|r| r.path_and_query.clone())
        .collect();
    assert!(
        reads.iter().any(|p| p.contains("/users/delta")),
        "{reads:?}"
    );
    assert!(
        !reads.iter().any(|p| p.starts_with("/v1.0/users?")),
        "no full read: {reads:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_attribute_is_one_patch_with_just_that_attribute() {
    let graph = tenant(10).await;
    let t = target().await;
    let job = write_job(&graph, &t.url(), t.token(), JobOptions::default());
    run_once(&job);
    let id = user_id(&graph, 0);
    graph.update_user(&id, json!({"jobTitle": "Chief Widget Officer"}));
    t.clear_requests();
    run_once(&job);
    let w = writes(&t);
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0].0, "PATCH");
    assert_eq!(
        w[0].2,
        Some(json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "title", "value": "Chief Widget Officer"}]
        }))
    );
    let upn = upn_of(&graph, &id);
    assert_eq!(
        t.user_by_username(&upn).unwrap()["title"],
        "Chief Widget Officer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_entra_dialect_sends_entra_default_shapes() {
    let graph = tenant(6).await;
    let t = target().await;
    let job = write_job(
        &graph,
        &t.url(),
        t.token(),
        JobOptions {
            dialect: "entra",
            ..Default::default()
        },
    );
    run_once(&job);
    let id = user_id(&graph, 0);
    graph.disable_user(&id);
    t.clear_requests();
    run_once(&job);
    let w = writes(&t);
    assert_eq!(
        w[0].2,
        Some(json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "Replace", "path": "active", "value": "False"}]
        }))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_disabled_at_the_source_is_set_inactive_and_enabled_again() {
    let graph = tenant(10).await;
    let t = target().await;
    let job = write_job(&graph, &t.url(), t.token(), JobOptions::default());
    run_once(&job);
    let id = user_id(&graph, 1);
    let upn = upn_of(&graph, &id);
    graph.disable_user(&id);
    let report = run_once(&job);
    assert_eq!(tally(&report, "disabled"), 1);
    assert_eq!(t.user_by_username(&upn).unwrap()["active"], json!(false));

    graph.enable_user(&id);
    run_once(&job);
    assert_eq!(t.user_by_username(&upn).unwrap()["active"], json!(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_already_in_the_target_is_matched_not_duplicated() {
    let graph = tenant(8).await;
    let t = target().await;
    let id = user_id(&graph, 2);
    let upn = upn_of(&graph, &id);
    let existing = t.insert_user(json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": upn.to_uppercase(), "active": true, "title": "stale"
    }));
    let job = write_job(&graph, &t.url(), t.token(), JobOptions::default());
    run_once(&job);
    assert_eq!(user_names(&t), enabled_upns(&graph));
    let posted: Vec<_> = writes(&t).into_iter().filter(|w| w.0 == "POST").collect();
    assert_eq!(posted.len(), enabled_upns(&graph).len() - 1);
    assert!(
        writes(&t)
            .iter()
            .any(|w| w.0 == "PATCH" && w.1.ends_with(&existing))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_409_on_create_is_matched_again_and_updated() {
    let graph = tenant(6).await;
    let t = target().await;
    let id = user_id(&graph, 0);
    let upn = upn_of(&graph, &id);
    // One user in play, so the one stale answer below is certainly this user's first query.
    for u in graph.users() {
        let other = u["id"].as_str().unwrap();
        if other != id {
            graph.disable_user(other);
        }
    }
    let existing = t.insert_user(json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": upn, "active": true
    }));
    // The first query for this user misses, as a lagging replica would answer; the create
    // then meets the existing account.
    t.stale_filter_next(1);
    let job = write_job(
        &graph,
        &t.url(),
        t.token(),
        JobOptions {
            mappings: DEFAULT_MAPPINGS,
            ..Default::default()
        },
    );
    let report = run_once(&job);
    assert_eq!(tally(&report, "failed"), 0, "{report}");
    assert_eq!(user_names(&t), enabled_upns(&graph));
    assert!(
        t.requests().iter().any(|r| r.status == 409),
        "the create met a conflict"
    );
    assert!(
        writes(&t)
            .iter()
            .any(|w| w.0 == "PATCH" && w.1.ends_with(&existing))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_is_retried_after_retry_after() {
    let graph = tenant(6).await;
    let t = target().await;
    let job = write_job(&graph, &t.url(), t.token(), JobOptions::default());
    t.throttle_next(2, 1);
    graph.throttle_next(2, 0.2);
    let started = Instant::now();
    let report = run_once(&job);
    assert_eq!(tally(&report, "failed"), 0, "{report}");
    assert_eq!(user_names(&t), enabled_upns(&graph));
    assert!(t.requests().iter().filter(|r| r.status == 429).count() == 2);
    assert!(
        started.elapsed().as_millis() >= 1000,
        "the client waited for Retry-After"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_sends_nothing_and_run_then_sends_exactly_those_requests() {
    let graph = tenant(12).await;
    let t = target().await;
    let job = write_job(&graph, &t.url(), t.token(), JobOptions::default());

    // Initial cycle: creates.
    let planned = preview_json(&job);
    assert!(writes(&t).is_empty(), "preview wrote to the target");
    assert!(!job.state().join("e2e").exists(), "preview wrote state");
    run_once(&job);
    assert_eq!(sorted(requests_of(&planned)), sorted(writes(&t)));

    // Incremental cycle: updates, a disable, a new user.
    graph.update_user(&user_id(&graph, 0), json!({"jobTitle": "Lead"}));
    graph.update_user(
        &user_id(&graph, 1),
        json!({"mail": "changed@contoso.com", "department": "Legal"}),
    );
    graph.disable_user(&user_id(&graph, 2));
    graph.add_user(
        json!({"userPrincipalName": "zz.new@contoso.onmicrosoft.com", "displayName": "Zz New",
        "accountEnabled": true, "mailNickname": "zz.new"}),
    );
    t.clear_requests();
    let planned = preview_json(&job);
    assert!(writes(&t).is_empty());
    assert_eq!(planned["tally"]["updated"], 2);
    assert_eq!(planned["tally"]["disabled"], 1);
    assert_eq!(planned["tally"]["created"], 1);
    run_once(&job);
    assert_eq!(sorted(requests_of(&planned)), sorted(writes(&t)));
}

fn requests_of(preview: &Value) -> Vec<(String, String, Option<Value>)> {
    preview["objects"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|o| o["requests"].as_array().cloned().unwrap_or_default())
        .map(|r| {
            let body = if r["body"].is_null() {
                None
            } else {
                Some(r["body"].clone())
            };
            (
                r["method"].as_str().unwrap().to_string(),
                r["path"].as_str().unwrap().to_string(),
                body,
            )
        })
        .collect()
}

fn sorted(mut v: Vec<(String, String, Option<Value>)>) -> Vec<String> {
    // Paths are compared without the target's base path.
    v.iter_mut().for_each(|r| {
        if let Some(i) = r.1.find("/Users") {
            r.1 = r.1[i..].to_string();
        }
    });
    let mut s: Vec<String> = v
        .into_iter()
        .map(|r| format!("{} {} {}", r.0, r.1, r.2.unwrap_or(Value::Null)))
        .collect();
    s.sort();
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assignment_scope_provisions_assigned_users_and_disables_the_unassigned() {
    let graph = tenant(30).await;
    let t = target().await;
    let job = write_job(
        &graph,
        &t.url(),
        t.token(),
        JobOptions {
            scope: "assigned",
            ..Default::default()
        },
    );
    let report = run_once(&job);
    let created = tally(&report, "created");
    assert!(
        created > 0 && (created as usize) < enabled_upns(&graph).len(),
        "only assigned users: {created}"
    );
    let new_id = graph.add_user(
        json!({"userPrincipalName": "assigned.later@contoso.onmicrosoft.com",
        "accountEnabled": true, "displayName": "Assigned Later"}),
    );
    let report = run_once(&job);
    assert_eq!(tally(&report, "created"), 0, "not assigned yet");
    graph.assign_user(&new_id);
    let report = run_once(&job);
    assert_eq!(tally(&report, "created"), 1);
    graph.unassign_user(&new_id);
    let report = run_once(&job);
    assert_eq!(tally(&report, "disabled"), 1);
    assert_eq!(
        t.user_by_username("assigned.later@contoso.onmicrosoft.com")
            .unwrap()["active"],
        json!(false)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soft_delete_disables_restore_enables_hard_delete_deletes() {
    let graph = tenant(8).await;
    let t = target().await;
    let job = write_job(&graph, &t.url(), t.token(), JobOptions::default());
    run_once(&job);
    let id = user_id(&graph, 0);
    let upn = upn_of(&graph, &id);
    graph.soft_delete_user(&id);
    assert_eq!(tally(&run_once(&job), "disabled"), 1);
    assert_eq!(t.user_by_username(&upn).unwrap()["active"], json!(false));
    graph.restore_user(&id);
    run_once(&job);
    assert_eq!(t.user_by_username(&upn).unwrap()["active"], json!(true));
    graph.soft_delete_user(&id);
    run_once(&job);
    graph.hard_delete_user(&id);
    assert_eq!(tally(&run_once(&job), "deleted"), 1);
    assert!(t.user_by_username(&upn).is_none());
}

/// `scimsync run` (with `extra` arguments) over a 40-user tenant and a target slowed down by
/// throttling, returned once the target holds its first user: in the middle of the cycle.
async fn run_until_the_first_user(
    extra: &[&str],
) -> (
    scimsync_testkit::graph::GraphEmulator,
    ScimTarget,
    Job,
    std::process::Child,
) {
    let graph = tenant(40).await;
    let t = target().await;
    let job = write_job(&graph, &t.url(), t.token(), JobOptions::default());
    t.throttle_next(3, 1);
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_scimsync"))
        .arg("run")
        .args(extra)
        .args(["--config", job.config.to_str().unwrap()])
        .args(["--state", job.state().to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + std::time::Duration::from_secs(20);
    while t.users().is_empty() && Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    (graph, t, job, child)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_killed_mid_cycle_then_restarted_creates_no_duplicate() {
    let (graph, t, job, mut child) = run_until_the_first_user(&["--once"]).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let partial = t.users().len();
    let report = run_once(&job);
    assert_eq!(tally(&report, "failed"), 0, "{report}");
    assert_eq!(
        user_names(&t),
        enabled_upns(&graph),
        "no duplicates after a restart ({partial} before)"
    );
    t.clear_requests();
    run_once(&job);
    assert!(writes(&t).is_empty(), "settled: {:?}", writes(&t));
}

/// `run` without `--once` stopped by SIGTERM in the middle of a cycle lets the cycle finish,
/// then exits with its code (before: killed by the signal, the cycle cut short).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_stopped_mid_cycle_finishes_the_cycle_and_exits_cleanly() {
    let (graph, t, job, child) = run_until_the_first_user(&[]).await;
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "{:?}\n{stdout}\n{stderr}", out.status);
    assert!(stderr.contains("stopping after this cycle"), "{stderr}");
    assert!(stdout.contains("0 failed"), "{stdout}");
    assert_eq!(user_names(&t), enabled_upns(&graph), "the cycle finished");
    t.clear_requests();
    run_once(&job);
    assert!(
        writes(&t).is_empty(),
        "its state was committed: {:?}",
        writes(&t)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_appear_in_any_output() {
    let graph = tenant(6).await;
    let t = target().await;
    let job = write_job(&graph, &t.url(), t.token(), JobOptions::default());
    let cfg = job.config.to_str().unwrap();
    let state = job.state();
    let state = state.to_str().unwrap();
    let mut all = String::new();
    for args in [
        vec!["-vv", "run", "--once", "--config", cfg, "--state", state],
        vec!["-vv", "preview", "--config", cfg, "--state", state],
        vec![
            "-vv", "preview", "--json", "--config", cfg, "--state", state,
        ],
        vec!["-vv", "test-connection", "--config", cfg],
        vec!["validate", "--config", cfg],
        vec!["--help"],
        vec!["run", "--help"],
    ] {
        all.push_str(&text(&scimsync(&args)));
    }
    assert!(all.contains("created"), "the commands ran: {all}");
    assert!(!all.contains(graph.client_secret()), "client secret leaked");
    assert!(!all.contains(t.token()), "SCIM token leaked");
    // Nor in the state on disk.
    for entry in walk(&job.state()) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        let hay = String::from_utf8_lossy(&bytes);
        assert!(
            !hay.contains(graph.client_secret()) && !hay.contains(t.token()),
            "secret in {}",
            entry.display()
        );
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p))
        } else {
            out.push(p)
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_connection_reports_each_side() {
    let graph = tenant(3).await;
    let t = target().await;
    let job = write_job(&graph, &t.url(), t.token(), JobOptions::default());
    let out = scimsync(&["test-connection", "--config", job.config.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let q = t.requests();
    assert_eq!(q.len(), 1);
    assert!(
        q[0].path_and_query.contains("filter=userName"),
        "{:?}",
        q[0].path_and_query
    );

    std::fs::write(job.dir.path().join("graph-secret"), "wrong-secret").unwrap();
    std::fs::write(job.dir.path().join("scim-token"), "wrong-token").unwrap();
    let out = scimsync(&["test-connection", "--config", job.config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let s = text(&out);
    assert!(
        s.contains("source: FAILED") && s.to_lowercase().contains("invalid client secret"),
        "{s}"
    );
    assert!(
        s.contains("target: FAILED") && s.contains("Unauthorized"),
        "{s}"
    );
}

#[test]
fn validate_names_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.toml");
    std::fs::write(
        &p,
        "name = \"x\"\n[source]\ntenant_id = \"t\"\nclient_id = \"c\"\nclient_secret = \"env:S\"\nscope = \"all\"\nbogus = 1\n[target]\nurl = \"http://127.0.0.1:1/scim\"\ntoken = \"env:T\"\n[[users.mappings]]\ntarget = \"userName\"\nsource = \"userPrincipalName\"\nmatching = 1\napply = \"sometimes\"\n",
    )
    .unwrap();
    let out = scimsync(&["validate", "--config", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let s = text(&out);
    assert!(s.contains("bad.toml:7:"), "unknown key with its line: {s}");
    assert!(s.contains("bogus"), "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_delta_token_falls_back_to_a_full_read_without_duplicate_writes() {
    let graph = tenant(15).await;
    let t = target().await;
    let job = write_job(&graph, &t.url(), t.token(), JobOptions::default());
    run_once(&job);
    graph.expire_delta_tokens();
    t.clear_requests();
    let report = run_once(&job);
    assert_eq!(report["fullRead"], true, "{report}");
    assert!(
        report["notes"].to_string().contains("full"),
        "the fallback is said: {report}"
    );
    assert!(
        t.writes().is_empty(),
        "a full re-read changes nothing: {:?}",
        t.writes()
    );
    assert_eq!(user_names(&t), enabled_upns(&graph));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incremental_cycle_after_one_change_reads_one_delta_page_and_sends_one_patch() {
    let graph = tenant(15).await;
    let t = target().await;
    let job = write_job(&graph, &t.url(), t.token(), JobOptions::default());
    run_once(&job);
    graph.update_user(&user_id(&graph, 3), json!({"jobTitle": "Changed"}));
    graph.clear_requests();
    t.clear_requests();
    run_once(&job);
    let delta_pages = graph
        .requests()
        .iter()
        .filter(|r| r.path_and_query.contains("/users/delta"))
        .count();
    assert!(
        delta_pages <= 2,
        "one delta round (the emulator may end it with an empty page): {delta_pages}"
    );
    assert_eq!(t.writes().len(), 1, "{:?}", t.writes());
}

#[test]
fn validate_reports_unknown_source_attributes_and_bad_expressions_with_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("job.toml");
    let head = "name = \"x\"\n[source]\ntenant_id = \"t\"\nclient_id = \"c\"\nclient_secret = \"env:S\"\nscope = \"all\"\n[target]\nurl = \"http://127.0.0.1:1/scim\"\ntoken = \"env:T\"\n";
    std::fs::write(
        &p,
        format!("{head}[[users.mappings]]\ntarget = \"userName\"\nsource = \"userPrincipalName\"\nmatching = 1\n[[users.mappings]]\ntarget = \"title\"\nsource = \"jobTitel\"\n"),
    )
    .unwrap();
    let out = scimsync(&["validate", "--config", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains(":14: users.mappings[1]") && text(&out).contains("jobTitel"),
        "{}",
        text(&out)
    );

    std::fs::write(
        &p,
        format!("{head}[[users.mappings]]\ntarget = \"userName\"\nsource = \"userPrincipalName\"\nmatching = 1\n[[users.mappings]]\ntarget = \"displayName\"\nexpression = 'Join(\" \", [givenName], [surname]'\n"),
    )
    .unwrap();
    let out = scimsync(&["validate", "--config", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("job.toml:16:"), "{}", text(&out));
}

/// A store that lost part of its flushed data (its db file cut in half) is reported like a
/// corrupt one, with the reason, and the next cycle re-matches: no duplicate, no silent gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partly_lost_store_is_reported_and_rematched_without_duplicates() {
    let graph = tenant(30).await;
    let t = target().await;
    let job = write_job(&graph, &t.url(), t.token(), JobOptions::default());
    run_once(&job);
    let before = user_names(&t);
    let db = job.state().join("e2e").join("db");
    let len = std::fs::metadata(&db).expect("the job's sled db").len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&db)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    t.clear_requests();
    let out = run_once_output(&job);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("was damaged") && said.contains("moved to"),
        "the admin is told, with the reason: {said}"
    );
    assert_eq!(
        user_names(&t),
        before,
        "every user once, none lost, none twice"
    );
    assert!(
        !writes(&t).iter().any(|w| w.0 == "POST"),
        "re-matched, not created again"
    );
}
