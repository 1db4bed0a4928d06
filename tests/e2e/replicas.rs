//! Several `scimsync serve` replicas on one PostgreSQL database share the jobs by lease: the
//! replica running a job is SIGKILLed mid-cycle, another takes the job over within the lease
//! TTL and finishes it; nothing is duplicated or missing, and the next cycle writes nothing.
//!
//! Needs `SCIMSYNC_TEST_POSTGRES_URL` (skipped loudly without it, failed with
//! `SCIMSYNC_REQUIRE_POSTGRES=1`) and scim2-server (`SCIMSYNC_SCIM2_SERVER`).

use crate::support::*;
use scimsync_store_pg::PgStore;
use scimsync_store_pg::testing::TestDb;
use scimsync_testkit::graph::GraphEmulator;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const USERS: usize = 400;
const TTL: Duration = Duration::from_secs(3);

struct Replica {
    child: Child,
    log: PathBuf,
    /// The admin API's base URL (`http://127.0.0.1:port`).
    api: String,
}

/// Every replica's admin token (`[admin] token` in the shared service file).
const ADMIN_TOKEN: &str = "replicas-admin-token";

impl Replica {
    fn start(config_dir: &Path, state: &Path, log: PathBuf) -> Replica {
        let err = std::fs::File::create(&log).expect("log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_scimsync"))
            .args(["serve", "--config-dir"])
            .arg(config_dir)
            .arg("--state")
            .arg(state)
            .stdout(Stdio::piped())
            .stderr(err)
            .spawn()
            .expect("start serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut api = String::new();
        for line in lines.by_ref() {
            let line = line.expect("stdout");
            if let Some(rest) = line.strip_prefix("admin API listening on ") {
                let url = rest.split_whitespace().next().unwrap_or_default();
                api = url.trim_end_matches("/api/jobs").to_owned();
                break;
            }
        }
        std::thread::spawn(move || for _ in lines {});
        Replica { child, log, api }
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(ok.success(), "kill {sig}");
    }

    fn terminate(mut self) {
        self.signal("-TERM");
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().expect("wait").is_none() {
            assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The pid in an owner id `host-pid-random`.
fn pid_of(owner: &str) -> u32 {
    let mut parts = owner.rsplitn(3, '-');
    parts.next();
    parts.next().and_then(|p| p.parse().ok()).unwrap_or(0)
}

fn user_names(s: &Scim2Server) -> Vec<String> {
    let mut v: Vec<String> = s
        .list_all("Users")
        .iter()
        .filter_map(|u| u["userName"].as_str().map(str::to_lowercase))
        .collect();
    v.sort();
    v
}

fn holder(store: &PgStore, job: &str) -> Option<(String, i64)> {
    store
        .leases()
        .expect("leases")
        .into_iter()
        .find(|r| r.live && r.lease.job == job)
        .map(|r| (r.lease.owner, r.lease.epoch))
}

/// Jobs against one scim2-server each, replicas of `serve` on one fresh database.
struct Fixture {
    replicas: Vec<Option<Replica>>,
    store: PgStore,
    targets: Vec<Scim2Server>,
    /// Each job's enabled users (what it provisions).
    expected: Vec<Vec<String>>,
    config: tempfile::TempDir,
    jobs: Vec<Job>,
    _graphs: Vec<GraphEmulator>,
    db: TestDb,
}

async fn fixture(jobs_n: usize, replicas_n: usize) -> Option<Fixture> {
    fixture_sized(&vec![USERS; jobs_n], replicas_n, 2).await
}

/// Job `i` provisions a tenant of `sizes[i]` users (one tenant per distinct size), at most
/// `concurrency` objects at once.
async fn fixture_sized(sizes: &[usize], replicas_n: usize, concurrency: usize) -> Option<Fixture> {
    let db = TestDb::create()?;
    let mut graphs: Vec<(usize, GraphEmulator)> = Vec::new();
    for &n in sizes {
        if !graphs.iter().any(|(m, _)| *m == n) {
            graphs.push((n, tenant(n).await));
        }
    }
    let config = tempfile::tempdir().expect("config dir");
    let mut targets = Vec::new();
    let mut jobs = Vec::new();
    let mut expected = Vec::new();
    for (i, &n) in sizes.iter().enumerate() {
        let graph = &graphs.iter().find(|(m, _)| *m == n).expect("tenant").1;
        expected.push(enabled_upns(graph));
        let t = Scim2Server::start();
        let job = write_job(
            graph,
            &t.base,
            &t.token,
            JobOptions {
                extra_top: "schedule = \"4s\"",
                ..JobOptions::default()
            },
        );
        let text = std::fs::read_to_string(&job.config)
            .expect("job file")
            .replace("name = \"e2e\"", &format!("name = \"job{i}\""))
            // Slow enough that a cycle can be caught in flight.
            .replace(
                "dialect = \"rfc\"\n",
                &format!("dialect = \"rfc\"\nmax_concurrency = {concurrency}\n"),
            );
        std::fs::write(config.path().join(format!("job{i}.toml")), text).expect("write job");
        targets.push(t);
        jobs.push(job);
    }
    let token_file = config.path().join("admin.secret");
    std::fs::write(&token_file, ADMIN_TOKEN).expect("token file");
    std::fs::write(
        config.path().join("scimsync.toml"),
        format!(
            "[admin]\nbind = \"127.0.0.1:0\"\ntoken = \"file:{}\"\n\n[store]\nurl = \"{}\"\n\
             lease_ttl = \"{}s\"\n",
            token_file.display(),
            db.url,
            TTL.as_secs()
        ),
    )
    .expect("service file");
    let replicas = (0..replicas_n)
        .map(|r| {
            let state = config.path().join(format!("state{r}"));
            let log = config.path().join(format!("replica{r}.log"));
            Some(Replica::start(config.path(), &state, log))
        })
        .collect();
    let store = PgStore::open(&db.url, None).expect("open the database");
    Some(Fixture {
        replicas,
        store,
        targets,
        expected,
        config,
        jobs,
        _graphs: graphs.into_iter().map(|(_, g)| g).collect(),
        db,
    })
}

impl Fixture {
    /// A job caught mid-cycle (some users provisioned, not all): its index, holder and epoch.
    async fn mid_cycle(&self) -> (usize, String, i64) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            assert!(Instant::now() < deadline, "no job seen mid-cycle");
            for (i, t) in self.targets.iter().enumerate() {
                let n = t.user_count() as usize;
                if n > 10
                    && n + 50 < self.expected[i].len()
                    && let Some((owner, epoch)) = holder(&self.store, &format!("job{i}"))
                {
                    return (i, owner, epoch);
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Job `i` caught mid-cycle: its holder and epoch.
    async fn mid_cycle_of(&self, i: usize) -> (String, i64) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            assert!(Instant::now() < deadline, "job{i} not seen mid-cycle");
            let n = self.targets[i].user_count() as usize;
            // Well into the cycle, with plenty left to do.
            if n > self.expected[i].len() / 4
                && n + 500 < self.expected[i].len()
                && let Some(h) = holder(&self.store, &format!("job{i}"))
            {
                return h;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn replica_of(&self, owner: &str) -> usize {
        let pid = pid_of(owner);
        self.replicas
            .iter()
            .position(|r| r.as_ref().is_some_and(|r| r.child.id() == pid))
            .unwrap_or_else(|| panic!("owner {owner} is none of the replicas"))
    }

    /// How long until another owner holds the job, at a higher epoch.
    async fn taken_over(&self, job: &str, owner: &str, epoch: i64, since: Instant) -> Duration {
        loop {
            if let Some((o, e)) = holder(&self.store, job)
                && o != owner
            {
                assert!(e > epoch, "a takeover raises the epoch: {e} after {epoch}");
                return since.elapsed();
            }
            assert!(since.elapsed() < TTL * 3, "nobody took {job} over");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn logs(&self) -> String {
        let logs: Vec<String> = self.replicas.iter().flatten().map(Replica::log).collect();
        logs.join("\n---\n")
    }

    /// Every target has as many users as the tenant has enabled (paging while users are
    /// created is not a stable read: count only).
    async fn converged(&self) {
        let largest = self.expected.iter().map(Vec::len).max().unwrap_or(0) as u64;
        let deadline = Instant::now() + Duration::from_secs(90 + largest / 20);
        for (i, t) in self.targets.iter().enumerate() {
            loop {
                let n = t.user_count() as usize;
                if n >= self.expected[i].len() {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "job{i}: {n} of {} users; replica logs:\n{}",
                    self.expected[i].len(),
                    self.logs()
                );
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
    }

    /// Stop every replica; then each target has every enabled user exactly once, and a cycle
    /// on the committed state sends nothing.
    fn finish(mut self) {
        for r in self.replicas.drain(..).flatten() {
            r.terminate();
        }
        for (i, t) in self.targets.iter().enumerate() {
            let names = user_names(t);
            let unique: BTreeSet<&String> = names.iter().collect();
            assert_eq!(unique.len(), names.len(), "job{i}: duplicate userNames");
            assert_eq!(names, self.expected[i], "job{i}: users missing or extra");
        }
        for (i, job) in self.jobs.iter().enumerate() {
            let file = self.config.path().join(format!("job{i}.toml"));
            let out = scimsync(&[
                "run",
                "--once",
                "--json",
                "--config",
                file.to_str().expect("path"),
                "--state",
                job.state().to_str().expect("path"),
                "--store",
                &self.db.url,
            ]);
            assert!(out.status.success(), "run failed: {}", text(&out));
            let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("report");
            for key in ["created", "updated", "linked", "disabled", "deleted"] {
                let n = report["tally"]
                    .get(key)
                    .and_then(|v| v.as_u64())
                    .unwrap_or(0);
                assert_eq!(n, 0, "job{i}: {key} after convergence: {report}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replicas_job_is_taken_over_without_duplicates_or_losses() {
    let Some(mut f) = fixture(3, 3).await else {
        return;
    };
    let (job, owner, epoch) = f.mid_cycle().await;
    let idx = f.replica_of(&owner);
    let killed_at = Instant::now();
    if let Some(mut r) = f.replicas[idx].take() {
        r.child.kill().expect("SIGKILL");
        let _ = r.child.wait();
    }
    // Another replica takes the job over within the TTL (plus a renewal tick).
    let taken = f
        .taken_over(&format!("job{job}"), &owner, epoch, killed_at)
        .await;
    assert!(taken <= TTL + TTL / 3 + Duration::from_secs(1), "{taken:?}");
    f.converged().await;
    f.finish();
}

/// A replica paused past its lease (SIGSTOP) and resumed (SIGCONT) finds its job taken over:
/// its late state writes are refused by the fence, it stops the job, and nothing is duplicated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_replicas_late_writes_are_fenced_off() {
    let Some(f) = fixture(2, 2).await else { return };
    let (job, owner, epoch) = f.mid_cycle().await;
    let idx = f.replica_of(&owner);
    let paused = f.replicas[idx].as_ref().expect("running");
    paused.signal("-STOP");
    let stopped_at = Instant::now();
    f.taken_over(&format!("job{job}"), &owner, epoch, stopped_at)
        .await;
    f.converged().await;
    paused.signal("-CONT");
    // Its lease keeper and its job thread wake up; give them a few renewal ticks. The keeper's
    // "lease lost" comes first and the job's own line (a refused write, or the cycle stopped)
    // moments later: wait for the latter, not just the former.
    let deadline = Instant::now() + TTL * 3;
    let settled = |log: &str| {
        log.contains("lease lost")
            && (log.contains("state write refused by the lease fence")
                || log.contains("this replica stops the cycle"))
    };
    let log = loop {
        let log = paused.log();
        if settled(&log) || Instant::now() > deadline {
            break log;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        log.contains("lease lost"),
        "the paused replica noticed: {log}"
    );
    // The job is held at a later epoch than the paused replica's. Once that replica is live
    // again, the other holds more than its share and may give this very job back (rebalancing):
    // for a moment nobody holds it, then the resumed replica does, at a new epoch of its own.
    let deadline = Instant::now() + TTL * 3;
    let (now_owner, now_epoch) = loop {
        match holder(&f.store, &format!("job{job}")) {
            Some(h) => break h,
            None if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            None => panic!("nobody holds job{job} {:?} after it was resumed", TTL * 3),
        }
    };
    assert!(
        now_epoch > epoch && (now_owner != owner || now_epoch > epoch + 1),
        "job{job} is held by {now_owner} at epoch {now_epoch}: the paused replica ({owner}) \
         held epoch {epoch} and was taken over, so its old epoch must not come back"
    );
    // After SIGCONT two things race: the keeper's overdue renewal (which stops the cycle) and the
    // cycle's next commit (which the fence refuses). Either way nothing it writes lands: a
    // refused write is logged, a stopped cycle is logged, and the targets converge with no
    // duplicate. That a stale holder's write is refused and absent is shown deterministically
    // by crates/store-pg/tests/leases.rs (`a_stale_holders_writes_are_refused_and_write_nothing`).
    eprintln!("job{job}: epoch {epoch} ({owner}) paused, now epoch {now_epoch} ({now_owner})");
    let refused = log
        .matches("state write refused by the lease fence")
        .count();
    eprintln!("paused replica: {refused} refused write(s)");
    assert!(
        refused >= 1 || log.contains("this replica stops the cycle"),
        "the paused replica neither had a write refused nor stopped its cycle: {log}"
    );
    f.finish();
}

/// POST an admin action to a replica's API: the HTTP status and JSON body.
async fn post(r: &Replica, path: &str, body: &str) -> (u16, serde_json::Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}{path}", r.api))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("POST");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(serde_json::Value::Null))
}

async fn job_state(r: &Replica, job: &str) -> String {
    let v: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/api/jobs/{job}", r.api))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("status JSON");
    v["state"].as_str().unwrap_or_default().to_owned()
}

/// An action sent to the replica that does not run the job is queued in the database, carried
/// out by the lease holder, and answered with the holder's result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_through_another_replicas_api_takes_effect_on_the_holder() {
    let Some(f) = fixture(1, 2).await else { return };
    let deadline = Instant::now() + TTL * 4;
    let (owner, _) = loop {
        if let Some(h) = holder(&f.store, "job0") {
            break h;
        }
        assert!(Instant::now() < deadline, "nobody took job0");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let a = f.replica_of(&owner);
    let holder_replica = f.replicas[a].as_ref().expect("running");
    let other = f.replicas[1 - a].as_ref().expect("running");

    let (status, body) = post(other, "/api/jobs/job0/pause", "").await;
    assert_eq!(status, 200, "pause through the other replica: {body}");
    assert_eq!(body["state"], "paused", "{body}");
    // It took effect where the job runs: the switch is stored (a fenced write only the holder
    // can make), and the holder's own view says paused once a cycle in flight finished.
    use scimsync_core::StateStore;
    assert_eq!(
        f.store.get_meta("job0", "service_state").expect("meta"),
        Some("paused".to_owned())
    );
    let deadline = Instant::now() + Duration::from_secs(90);
    while job_state(holder_replica, "job0").await != "paused" {
        assert!(Instant::now() < deadline, "the holder never paused the job");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        holder_replica
            .log()
            .contains("carrying out an action forwarded by another replica"),
        "{}",
        holder_replica.log()
    );

    // A restart answers with the holder's summary.
    let (status, body) = post(
        other,
        "/api/jobs/job0/restart",
        r#"{"scopes":["watermark"]}"#,
    )
    .await;
    assert_eq!(status, 200, "restart through the other replica: {body}");
    assert!(body["description"].is_string(), "{body}");

    let (status, body) = post(other, "/api/jobs/job0/start", "").await;
    assert_eq!(status, 200, "start through the other replica: {body}");
    assert_ne!(job_state(holder_replica, "job0").await, "paused");
    // The lease did not move: the holder acted, nobody took the job over to do it.
    assert_eq!(holder(&f.store, "job0").map(|h| h.0), Some(owner));
    f.converged().await;
    f.finish();
}

/// The users of the big job in the issue-sized test.
const BIG: usize = 5_000;

/// The issue's size: three replicas on one database, six jobs against scim2-server (one of
/// 5,000 users, five small). The replica running the big job's initial cycle is SIGKILLed
/// mid-cycle; another takes the job over within the lease TTL and its first cycle of the job
/// finishes it; no userName is duplicated or missing, and a cycle after that writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_jobs_on_three_replicas_a_killed_5000_user_cycle_is_finished_by_another() {
    let began = Instant::now();
    let Some(mut f) = fixture_sized(&[BIG, 30, 30, 30, 30, 30], 3, 8).await else {
        return;
    };
    let (owner, epoch) = f.mid_cycle_of(0).await;
    let idx = f.replica_of(&owner);
    let finished_before: Vec<usize> = f
        .replicas
        .iter()
        .map(|r| {
            r.as_ref()
                .map_or(0, |r| r.log().matches("cycle finished job=job0 ").count())
        })
        .collect();
    let killed_at = Instant::now();
    let done_at_kill = f.targets[0].user_count();
    if let Some(mut r) = f.replicas[idx].take() {
        r.child.kill().expect("SIGKILL");
        let _ = r.child.wait();
    }
    let taken = f.taken_over("job0", &owner, epoch, killed_at).await;
    assert!(taken <= TTL + TTL / 3 + Duration::from_secs(1), "{taken:?}");
    let (new_owner, _) = holder(&f.store, "job0").expect("held");
    let new = f.replica_of(&new_owner);
    // The new holder's first cycle of the job finishes it.
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let log = f.replicas[new].as_ref().expect("running").log();
        if log.matches("cycle finished job=job0 ").count() > finished_before[new] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "job0 never finished on {new_owner}:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let resumed = killed_at.elapsed();
    assert_eq!(
        f.targets[0].user_count() as usize,
        f.expected[0].len(),
        "one cycle of the new holder provisions every user"
    );
    eprintln!(
        "issue-sized takeover: {done_at_kill} of {BIG} users done at SIGKILL; taken over after \
         {taken:?}; finished {resumed:?} after the kill; setup + run so far {:?}",
        began.elapsed()
    );
    f.converged().await;
    f.finish();
    eprintln!("issue-sized test: {:?} in all", began.elapsed());
}
