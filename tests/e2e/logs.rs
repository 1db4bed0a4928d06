//! `scimsync logs` and `scimsync status` on a real job (the Graph emulator and the built-in
//! SCIM app): one log entry per object per cycle for creates, updates, disables, failures and
//! skips; the filters; every output format; and no secret in any of them.

use crate::support::*;
use scimsync_testkit::scim::{ScimTarget, ScimTargetOptions};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

fn logs(job: &Job, extra: &[&str]) -> String {
    let state = job.state();
    let mut args = vec!["logs", "--job", "e2e", "--state", state.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = scimsync(&args);
    assert!(out.status.success(), "logs failed: {}", text(&out));
    String::from_utf8(out.stdout).unwrap()
}

fn entries(job: &Job, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["--format", "jsonl"];
    args.extend_from_slice(extra);
    logs(job, &args)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_hold_one_entry_per_object_per_cycle_filter_and_never_show_secrets() {
    let graph = tenant(12).await;
    let t = ScimTarget::start(ScimTargetOptions::default())
        .await
        .expect("scim target");
    let job = write_job(&graph, &t.url(), t.token(), JobOptions::default());

    // Cycle 1: creates, skips (disabled users are not provisioned), one rejected request.
    t.fail_next(1, 400);
    let out = scimsync(&[
        "run",
        "--once",
        "--json",
        "--config",
        job.config.to_str().unwrap(),
        "--state",
        job.state().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    // Progress went to stderr as plain lines; stdout is the report alone.
    let first: Value = serde_json::from_slice(&out.stdout).expect("stdout is the JSON report");
    assert!(String::from_utf8_lossy(&out.stderr).contains("cycle: users"));
    assert_eq!(tally(&first, "failed"), 1);

    // Cycle 2: an update and a disable.
    // Which object failed depends on request order; change two others.
    let failed_id = first["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["status"] == "failure")
        .and_then(|o| o["sourceId"].as_str())
        .unwrap()
        .to_string();
    let mut others = (0..6)
        .map(|i| user_id(&graph, i))
        .filter(|id| *id != failed_id);
    let renamed = others.next().unwrap();
    let disabled = others.next().unwrap();
    graph.update_user(&renamed, json!({"displayName": "Renamed Person"}));
    graph.disable_user(&disabled);
    let second = run_once(&job);
    assert_eq!(tally(&second, "updated"), 1, "{second}");
    assert_eq!(tally(&second, "disabled"), 1, "{second}");

    // Exactly one entry per reported object per cycle.
    let all = entries(&job, &[]);
    let mut by_cycle: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in &all {
        by_cycle
            .entry(e["cycleId"].as_str().unwrap().into())
            .or_default()
            .push(e["sourceId"].as_str().unwrap().into());
    }
    for report in [&first, &second] {
        let ids = &by_cycle[report["cycleId"].as_str().unwrap()];
        let unique: BTreeSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "an object logged twice in a cycle");
        let reported: BTreeSet<String> = report["objects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["sourceId"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            unique.into_iter().cloned().collect::<BTreeSet<_>>(),
            reported
        );
    }
    let seen: BTreeSet<(String, String)> = all
        .iter()
        .map(|e| {
            (
                e["provisioningAction"].as_str().unwrap().to_string(),
                e["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for want in [
        ("create", "success"),
        ("update", "success"),
        ("disable", "success"),
        ("other", "skipped"),
    ] {
        assert!(
            seen.contains(&(want.0.to_string(), want.1.to_string())),
            "no {want:?} entry in {seen:?}"
        );
    }
    assert!(seen.iter().any(|(_, s)| s == "failure"), "{seen:?}");

    // Filters.
    let failed = entries(&job, &["--status", "failure"]);
    assert_eq!(failed.len(), 1);
    assert!(failed[0]["errorCode"].is_string() && failed[0]["reason"].is_string());
    let dis = entries(&job, &["--action", "disable"]);
    assert_eq!(dis.len(), 1);
    assert_eq!(dis[0]["sourceId"], json!(disabled));
    let upn = upn_of(&graph, &renamed);
    let local = upn.split('@').next().unwrap().to_uppercase();
    let mine = entries(&job, &["--user", &local]);
    assert!(mine.len() >= 2, "{mine:?}");
    assert!(mine.iter().all(|e| e["sourceId"] == json!(renamed)));
    let cycle2 = second["cycleId"].as_str().unwrap();
    assert_eq!(
        entries(&job, &["--cycle", cycle2]).len(),
        second["objects"].as_array().unwrap().len()
    );
    assert_eq!(entries(&job, &["--since", "1h"]).len(), all.len());
    assert!(
        logs(&job, &["--until", "2000-01-01"]).contains("no log entries match"),
        "an empty result says so"
    );
    let bad = scimsync(&[
        "logs",
        "--job",
        "e2e",
        "--state",
        job.state().to_str().unwrap(),
        "--status",
        "sideways",
    ]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));

    // Every format: one row per entry, no secret.
    let table = logs(&job, &[]);
    assert!(table.contains(&format!("{} entries", all.len())), "{table}");
    let csv = logs(&job, &["--format", "csv"]);
    assert_eq!(csv.lines().count(), all.len() + 1, "{csv}");
    assert!(csv.starts_with("Date (UTC),Id,Job ID,Cycle ID,Change ID,Action,Status"));
    let jsonl = logs(&job, &["--format", "jsonl"]);
    for out in [&table, &csv, &jsonl] {
        assert!(!out.contains(graph.client_secret()));
        assert!(!out.contains(t.token()));
    }

    // Status.
    let out = scimsync(&[
        "status",
        "--config",
        job.config.to_str().unwrap(),
        "--state",
        job.state().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let status = String::from_utf8_lossy(&out.stdout);
    assert!(status.contains(cycle2), "{status}");
    assert!(status.contains("quarantine   none"), "{status}");
    assert!(status.contains("disabled 1"), "{status}");
    assert!(status.contains("2 cycles"), "{status}");

    // A job that never ran has no log, and says so.
    let none = scimsync(&[
        "logs",
        "--job",
        "nope",
        "--state",
        job.state().to_str().unwrap(),
    ]);
    assert_eq!(none.status.code(), Some(1));
    assert!(text(&none).contains("no state for job \"nope\""));
}
