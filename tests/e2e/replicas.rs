//! Several `scimsync serve` replicas on one PostgreSQL database share the jobs by lease: the
//! replica running a job is SIGKILLed mid-cycle, another takes the job over within the lease
//! TTL and finishes it; nothing is duplicated or missing, and the next cycle writes nothing.
//!
//! Needs `SCIMSYNC_TEST_POSTGRES_URL` (skipped loudly without it, failed with
//! `SCIMSYNC_REQUIRE_POSTGRES=1`) and scim2-server (`SCIMSYNC_SCIM2_SERVER`).

use crate::support::*;
use scimsync_store_pg::PgStore;
use scimsync_store_pg::testing::TestDb;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const USERS: usize = 400;
const JOBS: usize = 3;
const REPLICAS: usize = 3;
const TTL: Duration = Duration::from_secs(3);

struct Replica {
    child: Child,
    log: PathBuf,
}

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
        for line in lines.by_ref() {
            if line.expect("stdout").starts_with("admin API listening on ") {
                break;
            }
        }
        std::thread::spawn(move || for _ in lines {});
        Replica { child, log }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replicas_job_is_taken_over_without_duplicates_or_losses() {
    let Some(db) = TestDb::create() else { return };
    let graph = tenant(USERS).await;
    let expected = enabled_upns(&graph);
    let config = tempfile::tempdir().expect("config dir");
    let mut targets = Vec::new();
    let mut jobs = Vec::new();
    for i in 0..JOBS {
        let t = Scim2Server::start();
        let job = write_job(
            &graph,
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
                "dialect = \"rfc\"\nmax_concurrency = 2\n",
            );
        std::fs::write(config.path().join(format!("job{i}.toml")), text).expect("write job");
        targets.push(t);
        jobs.push(job);
    }
    std::fs::write(
        config.path().join("scimsync.toml"),
        format!(
            "[admin]\nbind = \"127.0.0.1:0\"\n\n[store]\nurl = \"{}\"\nlease_ttl = \"{}s\"\n",
            db.url,
            TTL.as_secs()
        ),
    )
    .expect("service file");
    let mut replicas: Vec<Option<Replica>> = (0..REPLICAS)
        .map(|r| {
            let state = config.path().join(format!("state{r}"));
            let log = config.path().join(format!("replica{r}.log"));
            Some(Replica::start(config.path(), &state, log))
        })
        .collect();
    let store = PgStore::open(&db.url, None).expect("open the database");

    // Catch a job mid-cycle: some of its users provisioned, not all.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (victim_job, owner, epoch) = loop {
        assert!(Instant::now() < deadline, "no job seen mid-cycle");
        let mut found = None;
        for (i, t) in targets.iter().enumerate() {
            let n = t.user_count() as usize;
            if n > 10
                && n + 50 < expected.len()
                && let Some((owner, epoch)) = holder(&store, &format!("job{i}"))
            {
                found = Some((i, owner, epoch));
                break;
            }
        }
        if let Some(f) = found {
            break f;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let pid = pid_of(&owner);
    let idx = replicas
        .iter()
        .position(|r| r.as_ref().is_some_and(|r| r.child.id() == pid))
        .unwrap_or_else(|| panic!("owner {owner} is none of the replicas"));
    let killed_at = Instant::now();
    if let Some(mut r) = replicas[idx].take() {
        r.child.kill().expect("SIGKILL");
        let _ = r.child.wait();
    }
    let job_name = format!("job{victim_job}");

    // Another replica takes the job over within the TTL (plus a renewal tick).
    let taken = loop {
        if let Some((o, e)) = holder(&store, &job_name)
            && o != owner
        {
            assert!(e > epoch, "a takeover raises the epoch: {e} after {epoch}");
            break killed_at.elapsed();
        }
        assert!(killed_at.elapsed() < TTL * 3, "nobody took {job_name} over");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(taken <= TTL + TTL / 3 + Duration::from_secs(1), "{taken:?}");

    // Every job converges (paging while users are created is not a stable read: count only).
    let deadline = Instant::now() + Duration::from_secs(90);
    for (i, t) in targets.iter().enumerate() {
        loop {
            let n = t.user_count() as usize;
            if n >= expected.len() {
                break;
            }
            if Instant::now() > deadline {
                let logs: Vec<String> = replicas.iter().flatten().map(Replica::log).collect();
                panic!(
                    "job{i}: {n} of {} users; replica logs:\n{}",
                    expected.len(),
                    logs.join("\n---\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    for r in replicas.into_iter().flatten() {
        r.terminate();
    }
    // Every enabled user exactly once on each target.
    for (i, t) in targets.iter().enumerate() {
        let names = user_names(t);
        let unique: BTreeSet<&String> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "job{i}: duplicate userNames");
        assert_eq!(names, expected, "job{i}: users missing or extra");
    }

    // The state matches the targets: a cycle now sends nothing.
    for (i, job) in jobs.iter().enumerate() {
        let file = config.path().join(format!("job{i}.toml"));
        let out = scimsync(&[
            "run",
            "--once",
            "--json",
            "--config",
            file.to_str().expect("path"),
            "--state",
            job.state().to_str().expect("path"),
            "--store",
            &db.url,
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
