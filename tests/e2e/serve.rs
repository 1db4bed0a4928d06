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

/// A loopback webhook receiver: collects the bodies it is sent.
fn webhook() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut s = stream;
            s.set_read_timeout(Some(Duration::from_secs(5))).ok();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            // Read headers, then the body by Content-Length.
            let body = loop {
                let n = s.read(&mut chunk).unwrap_or(0);
                if n == 0 {
                    break String::new();
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if body.len() >= len {
                        break body.to_string();
                    }
                }
            };
            sink.lock().unwrap().push(body);
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (url, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_quarantines_a_job_whose_real_scim_server_rejects_its_token_and_notifies() {
    let graph = tenant(6).await;
    let server = Scim2Server::start();
    let (hook, received) = webhook();
    let extra = format!("[notifications]\nwebhook_url = \"{hook}\"\n");
    let job = write_job(
        &graph,
        &server.base,
        "not-the-servers-token",
        JobOptions {
            extra_top: &extra,
            ..Default::default()
        },
    );
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
    let http = reqwest::Client::new();
    let url = format!("{}/api/jobs/e2e", serve.api);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status: Value = loop {
        let s: Value = http
            .get(&url)
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if s["state"] == "quarantined" {
            break s;
        }
        assert!(Instant::now() < deadline, "never quarantined: {s}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        status["quarantine"]["reason"], "EncounteredQuarantineException",
        "{status}"
    );
    let next: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(status["nextRun"].clone()).expect("next run");
    assert!(
        next > chrono::Utc::now() + chrono::Duration::minutes(40),
        "backed off beyond the 40-minute interval: {next}"
    );
    wait_for(|| !received.lock().unwrap().is_empty(), "the webhook").await;
    let sent = received.lock().unwrap().join("\n");
    assert!(sent.contains("EncounteredQuarantineException"), "{sent}");
    assert!(
        !sent.contains(graph.client_secret()) && !sent.contains("not-the-servers-token"),
        "no secret in a notification"
    );
    assert_eq!(server.user_count(), 0, "nothing was provisioned");
    assert!(serve.terminate().success());
}

/// `serve` run until its first cycle is logged, then stopped: its stdout and stderr lines.
fn serve_lines(job: &crate::support::Job, extra: &[&str]) -> Vec<String> {
    serve_until(job, extra, "cycle finished")
}

/// `serve` run until a line contains `until`, then sent SIGTERM; it must exit with success.
fn serve_until(job: &crate::support::Job, extra: &[&str], until: &str) -> Vec<String> {
    use std::sync::{Arc, Mutex};
    let mut child = Command::new(env!("CARGO_BIN_EXE_scimsync"))
        .args(["serve", "--config-dir", job.dir.path().to_str().unwrap()])
        .args(["--state", job.state().to_str().unwrap()])
        .args(extra)
        .env_remove("SCIMSYNC_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start serve");
    let lines = Arc::new(Mutex::new(Vec::new()));
    let readers: Vec<_> = [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ]
    .into_iter()
    .map(|r| {
        let lines = lines.clone();
        std::thread::spawn(move || {
            for l in BufReader::new(r).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(l);
            }
        })
    })
    .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !lines.lock().unwrap().iter().any(|l| l.contains(until)) {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("no line with {until:?}: {:?}", lines.lock().unwrap());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    let status = child.wait().unwrap();
    for r in readers {
        r.join().unwrap();
    }
    let lines = lines.lock().unwrap().clone();
    assert!(status.success(), "serve ended with {status}: {lines:?}");
    lines
}

/// A job over a tenant of `users`, its API on a free port with no token configured (serve
/// generates one into the state directory).
async fn job_with_a_generated_admin_token(
    users: usize,
) -> (
    scimsync_testkit::graph::GraphEmulator,
    ScimTarget,
    crate::support::Job,
) {
    let graph = tenant(users).await;
    let t = ScimTarget::start(ScimTargetOptions::default())
        .await
        .unwrap();
    let job = write_job(&graph, &t.url(), t.token(), JobOptions::default());
    std::fs::write(
        job.dir.path().join("scimsync.toml"),
        "[admin]\nbind = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    (graph, t, job)
}

/// A stop requested while the jobs are still being added (before the API listens) is a clean
/// shutdown, not death by the signal's default action (CI saw this after a short first cycle).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_stopped_while_its_jobs_start_exits_cleanly() {
    let (_graph, _t, job) = job_with_a_generated_admin_token(3).await;
    // Signalled as soon as it prints anything, several times: before the fix the default
    // action killed it whenever the signal beat the handler (the first try, every run here).
    tokio::task::spawn_blocking(move || {
        for _ in 0..10 {
            let lines = serve_until(&job, &[], "");
            assert!(
                lines.iter().any(|l| l.contains("job e2e: schedule")),
                "{lines:?}"
            );
        }
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_prints_the_dashboard_and_a_line_per_cycle_as_text_or_json_without_secrets() {
    let (graph, t, job) = job_with_a_generated_admin_token(6).await;
    let token_file = job.state().join("admin-token");

    // Text, at default verbosity: where the dashboard is, then one line for the cycle.
    let lines = serve_lines(&job, &[]);
    let all = lines.join("\n");
    let dashboard = lines
        .iter()
        .find_map(|l| l.strip_prefix("dashboard: "))
        .unwrap_or_else(|| panic!("no dashboard URL:\n{all}"));
    assert!(
        dashboard.starts_with("http://127.0.0.1:") && dashboard.ends_with('/'),
        "{dashboard}"
    );
    assert!(
        all.contains(&format!(
            "generated token written to {}",
            token_file.display()
        )),
        "{all}"
    );
    assert!(!all.contains("from inline"), "{all}");
    let cycle: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("cycle finished"))
        .collect();
    assert_eq!(cycle.len(), 1, "{all}");
    for field in [
        "job=e2e",
        "kind=\"initial\"",
        "created=",
        "failed=0",
        "held=0",
        "duration_ms=",
        "quarantine=none",
    ] {
        assert!(
            cycle[0].contains(field) || cycle[0].contains(&field.replace('"', "")),
            "{field} missing: {}",
            cycle[0]
        );
    }
    let admin_token = std::fs::read_to_string(&token_file).unwrap();
    let secrets = [admin_token.trim(), t.token(), graph.client_secret()];
    for s in secrets {
        assert!(!all.contains(s), "a secret was printed:\n{all}");
    }

    // JSON: every line an object, the same facts as fields.
    let lines = serve_lines(&job, &["--log-format", "json"]);
    let all = lines.join("\n");
    let objects: Vec<Value> = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(objects.iter().all(Value::is_object), "{all}");
    let listening = objects
        .iter()
        .find(|o| o["message"] == "admin API listening")
        .unwrap_or_else(|| panic!("{all}"));
    assert!(
        listening["dashboard"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:"),
        "{listening}"
    );
    assert!(
        listening["token"]
            .as_str()
            .unwrap()
            .starts_with("generated token written to"),
        "{listening}"
    );
    let cycle = objects
        .iter()
        .find(|o| o["message"] == "cycle finished")
        .unwrap_or_else(|| panic!("{all}"));
    assert_eq!(cycle["target"], "scimsync::cycle", "{cycle}");
    assert_eq!(cycle["job"], "e2e", "{cycle}");
    assert_eq!(cycle["kind"], "incremental", "{cycle}");
    assert_eq!(cycle["failed"], 0, "{cycle}");
    assert_eq!(cycle["quarantine"], "none", "{cycle}");
    assert!(
        cycle["duration_ms"].is_u64() || cycle["duration_ms"].is_i64(),
        "{cycle}"
    );
    for s in secrets {
        assert!(!all.contains(s), "a secret was logged:\n{all}");
    }
}
