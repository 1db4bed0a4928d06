//! Issue 15, the command line as an admin meets it: one way to name a job, JSON from every
//! result command, "No changes.", short cycle ids, no panic on a closed pipe, human status,
//! the confirmation of a full restart, completions and the man page.

use crate::support::*;
use scimsync_testkit::scim::{ScimTarget, ScimTargetOptions};
use serde_json::Value;
use std::io::BufRead;
use std::process::{Command, Stdio};

fn ok(args: &[&str]) -> String {
    let out = scimsync(args);
    assert!(out.status.success(), "{args:?} failed: {}", text(&out));
    String::from_utf8(out.stdout).expect("utf-8")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_is_named_one_way_everywhere_and_every_result_speaks_json() {
    let graph = tenant(8).await;
    let t = ScimTarget::start(ScimTargetOptions::default())
        .await
        .expect("scim target");
    let job = write_job(&graph, &t.url(), t.token(), JobOptions::default());
    let dir = job.dir.path().to_str().unwrap();
    let state = job.state();
    let state = state.to_str().unwrap();
    let by_name = ["--job", "e2e", "--config-dir", dir];

    // validate and test-connection by name, as JSON.
    let v: Value = serde_json::from_str(&ok(&[&["validate", "--json"][..], &by_name[..]].concat()))
        .expect("validate --json");
    assert_eq!(v["valid"], true, "{v}");
    let c: Value = serde_json::from_str(&ok(
        &[&["test-connection", "--json"][..], &by_name[..]].concat()
    ))
    .expect("test-connection --json");
    assert_eq!(c["ok"], true, "{c}");
    assert!(c["checks"].as_array().unwrap().len() >= 2, "{c}");

    // An unknown name lists the known ones.
    let out = scimsync(&["preview", "--job", "nope", "--config-dir", dir]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("no job named \"nope\"") && text(&out).contains("the jobs there: e2e"),
        "{}",
        text(&out)
    );

    // A run by name, then a preview with nothing to do.
    let report: Value = serde_json::from_str(&ok(&[
        &["run", "--once", "--json", "--state", state][..],
        &by_name[..],
    ]
    .concat()))
    .expect("run report");
    let created = tally(&report, "created");
    assert!(created > 0, "{report}");
    let preview = ok(&[
        "preview",
        "--config",
        job.config.to_str().unwrap(),
        "--state",
        state,
    ]);
    assert!(preview.trim_end().ends_with("No changes."), "{preview}");

    // provision on demand by name, as JSON.
    let upn = upn_of(&graph, &user_id(&graph, 0));
    let doc: Value = serde_json::from_str(&ok(&[
        &[
            "provision",
            "--json",
            "--dry-run",
            "--state",
            state,
            "--user",
            &upn,
        ][..],
        &by_name[..],
    ]
    .concat()))
    .expect("provision --json");
    assert_eq!(doc["dryRun"], true, "{doc}");
    assert_eq!(doc["objects"][0]["objectType"], "User", "{doc}");
    assert!(
        doc["objects"][0]["steps"]
            .as_array()
            .is_some_and(|s| !s.is_empty()),
        "{doc}"
    );

    // logs: a unique short cycle id, the full id in the table, JSON as one document.
    let cycle = report["cycleId"].as_str().expect("cycle id").to_string();
    let short = &cycle[..cycle.len().min(10)];
    let table = ok(&[
        &["logs", "--state", state, "--cycle", short][..],
        &by_name[..],
    ]
    .concat());
    assert!(table.contains(&cycle), "{table}");
    let entries: Value =
        serde_json::from_str(&ok(&["logs", "--job", "e2e", "--state", state, "--json"]))
            .expect("logs --json");
    let n = entries.as_array().unwrap().len();
    assert!(n as u64 >= created, "{entries}");
    assert!(table.ends_with(&format!("\n{n} entries\n")), "{table}");
    // The skipped (disabled) users say why in the reason column.
    assert!(
        table.contains("out of scope: not active in source system"),
        "{table}"
    );
    let out = scimsync(&["logs", "--job", "e2e", "--state", state, "--cycle", "zz"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("no cycle id starts with \"zz\""),
        "{}",
        text(&out)
    );
    let out = scimsync(&["logs", "--job", "other", "--state", state]);
    assert!(
        text(&out).contains("jobs with state there: e2e"),
        "{}",
        text(&out)
    );

    // status: human times, the next cycle, held deletions.
    let status = ok(&[
        "status",
        "--config",
        job.config.to_str().unwrap(),
        "--state",
        state,
    ]);
    assert!(
        status.contains("just now)") || status.contains(" s ago)"),
        "{status}"
    );
    assert!(status.contains("next cycle   due "), "{status}");
    assert!(status.contains("deletions    none held"), "{status}");

    // restart --scope full: refused without a terminal unless --yes.
    let full = [
        &["restart", "--state", state, "--scope", "full"][..],
        &by_name[..],
    ]
    .concat();
    let out = Command::new(env!("CARGO_BIN_EXE_scimsync"))
        .args(&full)
        .stdin(Stdio::null())
        .output()
        .expect("restart");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("add --yes to confirm"),
        "{}",
        text(&out)
    );
    let said = ok(&[&full[..], &["--yes"][..]].concat());
    assert!(said.contains("e2e"), "{said}");

    // restart and approve-deletions speak JSON too.
    let r: Value = serde_json::from_str(&ok(&[
        &[
            "restart",
            "--json",
            "--state",
            state,
            "--scope",
            "watermark",
        ][..],
        &by_name[..],
    ]
    .concat()))
    .expect("restart --json");
    assert_eq!(
        (
            r["job"].clone(),
            r["scopes"].clone(),
            r["watermarkCleared"].clone()
        ),
        (
            Value::from("e2e"),
            serde_json::json!(["watermark"]),
            Value::from(true)
        ),
        "{r}"
    );
    for dry in [true, false] {
        let args = [
            &["approve-deletions", "--json", "--state", state][..],
            if dry { &["--dry-run"][..] } else { &[][..] },
            &by_name[..],
        ]
        .concat();
        let a: Value = serde_json::from_str(&ok(&args)).expect("approve-deletions --json");
        let result = if dry { "held" } else { "nothingHeld" };
        assert_eq!(a["result"], result, "{a}");
        assert!(a["held"].is_null(), "nothing is held: {a}");
    }
}

/// `scimsync logs | head -1`: the reader goes away after one line; the command neither
/// panics nor complains, and exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_pipe_ends_output_quietly() {
    let graph = tenant(300).await;
    let t = ScimTarget::start(ScimTargetOptions::default())
        .await
        .expect("scim target");
    let job = write_job(&graph, &t.url(), t.token(), JobOptions::default());
    run_once(&job);
    let state = job.state();
    // JSON lines of 300 entries are far more than a pipe buffers.
    for format in ["jsonl", "table", "csv"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_scimsync"))
            .args(["logs", "--job", "e2e", "--format", format, "--state"])
            .arg(&state)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn logs");
        let stdout = child.stdout.take().expect("stdout");
        let mut first = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut first)
            .expect("one line");
        // The reader is dropped here: the pipe is closed with most of the output unread.
        assert!(!first.is_empty());
        let out = child.wait_with_output().expect("logs ends");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !err.contains("panicked") && !err.contains("Broken pipe"),
            "{format}: {err}"
        );
        assert_eq!(out.status.code(), Some(0), "{format}: {err}");
    }
}

#[test]
fn completions_and_the_man_page() {
    for shell in ["bash", "zsh", "fish"] {
        let script = ok(&["completions", shell]);
        assert!(script.contains("approve-deletions"), "{shell}");
        assert!(script.contains("--config-dir"), "{shell}");
    }
    let page = ok(&["man"]);
    assert!(
        page.contains(".TH scimsync"),
        "{}",
        &page[..page.len().min(300)]
    );
    assert!(
        page.contains("scimsync\\-logs"),
        "every command has its section"
    );
}
