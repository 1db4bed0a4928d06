//! A real Graph client drives `scimsync serve`: the official Microsoft Graph Python SDK
//! (`msgraph-sdk` from PyPI), pointed at serve's base URL with the admin token, lists the
//! jobs, pauses, starts and restarts one, provisions one user on demand and pages through the
//! provisioning logs (`graph_sdk.py`).

use crate::support::*;
use scimsync_testkit::scim::{ScimTarget, ScimTargetOptions};
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The version probed against these endpoints.
const MSGRAPH_SDK: &str = "msgraph-sdk==1.65.0";

/// `SCIMSYNC_MSGRAPH_PYTHON`, else `.venv-msgraph/bin/python` at the workspace root, installed
/// there from PyPI on first use so `cargo test` works on a fresh machine.
fn python() -> PathBuf {
    if let Ok(p) = std::env::var("SCIMSYNC_MSGRAPH_PYTHON") {
        return PathBuf::from(p);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let venv = root.join(".venv-msgraph");
    let bin = venv.join("bin/python");
    let ready = venv.join(".installed");
    if ready.exists() {
        return bin;
    }
    let lock = std::fs::File::create(root.join("target/.venv-msgraph.lock")).expect("lock file");
    lock.lock().expect("lock");
    if !ready.exists() {
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success())
            && Command::new(venv.join("bin/pip"))
                .args([
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    MSGRAPH_SDK,
                ])
                .status()
                .is_ok_and(|s| s.success());
        assert!(
            ok,
            "could not install {MSGRAPH_SDK} from PyPI into {}",
            venv.display()
        );
        std::fs::write(&ready, MSGRAPH_SDK).expect("mark the venv installed");
    }
    bin
}

struct Serve {
    child: Child,
    api: String,
}

impl Serve {
    fn start(config_dir: &Path, state: &Path) -> Serve {
        let mut child = Command::new(env!("CARGO_BIN_EXE_scimsync"))
            .args(["serve", "--config-dir"])
            .arg(config_dir)
            .arg("--state")
            .arg(state)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start serve");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let api = loop {
            let line = lines
                .next()
                .expect("serve printed where it listens")
                .expect("stdout");
            if let Some(rest) = line.strip_prefix("admin API listening on ") {
                break rest
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .trim_end_matches("/api/jobs")
                    .to_string();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Serve { child, api }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_graph_python_sdk_drives_jobs_and_pages_provisioning_logs() {
    let python = python();
    let graph = tenant(8).await;
    let t = ScimTarget::start(ScimTargetOptions::default())
        .await
        .unwrap();
    let job = write_job(&graph, &t.url(), t.token(), JobOptions::default());
    let token = "admin-token-for-graph-sdk";
    std::fs::write(job.dir.path().join("admin.secret"), token).unwrap();
    std::fs::write(
        job.dir.path().join("scimsync.toml"),
        format!(
            "[admin]\nbind = \"127.0.0.1:0\"\ntoken = \"file:{}\"\n",
            job.dir.path().join("admin.secret").display()
        ),
    )
    .unwrap();
    let serve = Serve::start(job.dir.path(), &job.state());
    let expected = enabled_upns(&graph);
    let deadline = Instant::now() + Duration::from_secs(30);
    while t.users().len() < expected.len() {
        assert!(Instant::now() < deadline, "the first cycle did not finish");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let script = job.dir.path().join("graph_sdk.py");
    std::fs::write(&script, include_str!("graph_sdk.py")).unwrap();
    let user = user_id(&graph, 0);
    let out = tokio::task::spawn_blocking({
        let (api, sp) = (serve.api.clone(), graph.service_principal_id().to_string());
        move || {
            Command::new(python)
                .arg(&script)
                .env("SCIMSYNC_BASE", api)
                .env("SCIMSYNC_TOKEN", token)
                .env("SCIMSYNC_SP", sp)
                .env("SCIMSYNC_JOB", "e2e")
                .env("SCIMSYNC_USER", user)
                .output()
                .expect("run the SDK script")
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the SDK script failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_str(stdout.trim()).expect("one JSON line");

    assert_eq!(seen["jobs"], serde_json::json!(["e2e"]), "{seen}");
    assert!(
        ["Active", "NotRun"].contains(&seen["code"].as_str().unwrap()),
        "{seen}"
    );
    assert_eq!(seen["interval_seconds"], 2400.0, "PT40M: {seen}");
    assert_eq!(seen["last_state"], "Succeeded", "{seen}");
    assert_eq!(seen["after_pause"], "Paused", "{seen}");
    assert_eq!(seen["after_start"], "Active", "{seen}");
    assert_eq!(seen["restarted"], true);
    assert!(
        ["Success", "Skipped"].contains(&seen["on_demand_key"]["result"].as_str().unwrap()),
        "{seen}"
    );
    assert_eq!(
        seen["on_demand_value"]["sourceIdentity"]["id"],
        user_id(&graph, 0)
    );

    // Every entry of the first cycle was paged through, each once, three to a page.
    let ids: Vec<&str> = seen["log_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "no entry twice: {seen}");
    assert!(
        ids.len() >= expected.len(),
        "{} < {}: {seen}",
        ids.len(),
        expected.len()
    );
    assert!(
        seen["log_pages"].as_u64().unwrap() >= ids.len().div_ceil(3) as u64,
        "{seen}"
    );
    drop(serve);
}
