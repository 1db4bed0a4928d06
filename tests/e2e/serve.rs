//! `scimsync serve` as a real process: it provisions on its own schedule, answers the admin
//! API only with the bearer token, and stops cleanly on SIGTERM without losing or
//! duplicating anything.

use crate::support::*;
use scimsync_testkit::scim::{ScimTarget, ScimTargetOptions};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Serve {
    child: Child,
    api: String,
}

impl Serve {
    fn start(config_dir: &std::path::Path, state: &std::path::Path) -> Serve {
        let mut child = Command::new(env!("CARGO_BIN_EXE_scimsync"))
            .args([
                "serve",
                "--config-dir",
                config_dir.to_str().unwrap(),
                "--state",
                state.to_str().unwrap(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start serve");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
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
        // Keep draining stdout so the process never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Serve { child, api }
    }

    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "serve did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn wait_for(mut ok: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_provisions_guards_its_api_and_stops_cleanly_on_sigterm() {
    let graph = tenant(20).await;
    let t = ScimTarget::start(ScimTargetOptions::default())
        .await
        .unwrap();
    let job = write_job(&graph, &t.url(), t.token(), JobOptions::default());
    let token = "admin-token-for-e2e";
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
    let names = || {
        let mut v: Vec<String> = t
            .users()
            .iter()
            .filter_map(|u| u["userName"].as_str().map(str::to_lowercase))
            .collect();
        v.sort();
        v
    };
    wait_for(|| names() == expected, "the first cycle").await;

    let http = reqwest::Client::new();
    let jobs = format!("{}/api/jobs", serve.api);
    assert_eq!(http.get(&jobs).send().await.unwrap().status(), 401);
    assert_eq!(
        http.get(&jobs)
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let list: Value = http
        .get(&jobs)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(list.to_string().contains("\"e2e\""), "{list}");

    // Provision on demand, as a dry run: steps, and nothing sent.
    let upn = upn_of(&graph, &user_id(&graph, 0));
    graph.update_user(&user_id(&graph, 0), json!({"jobTitle": "On Demand"}));
    t.clear_requests();
    let resp = http
        .post(format!("{jobs}/e2e/provision"))
        .bearer_auth(token)
        .json(&json!({"user": upn, "dryRun": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body.to_string().contains("On Demand"),
        "the planned PATCH shows the change: {body}"
    );
    assert!(t.writes().is_empty(), "a dry run sends nothing");

    let status = serve.terminate();
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");

    // Started again on the same state: nothing lost, nothing duplicated.
    let serve = Serve::start(job.dir.path(), &job.state());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(names(), expected);
    assert!(serve.terminate().success());
}
