//! Target-capacity benchmark (issue 16): what an admin feels against a real SCIM server.
//!
//! Run: `cargo bench --bench capacity [-- --users 5000|50000|100000] [--concurrency 4]
//! [--users-only]` (set `SCIMSYNC_SCIM2_SERVER` to the `scim2-server` binary, else
//! `.venv-scim/bin/scim2-server` at the workspace root is used; `pip install scim2-server==0.8.3`).
//! 100k users takes many minutes on two cores: run it in the background.
//!
//! 1. The Graph emulator serves a generated tenant of N users (about 40 % assigned to the app)
//!    plus N × 383/100,000 assigned groups holding N × 0.687 memberships of assigned users, one
//!    of them large (N/20 members), the shape of issue 16's table.
//! 2. **Raw**: a minimal load generator drives a fresh scim2-server with the requests the
//!    engine needs: per in-scope user a `GET /Users?filter=userName eq …` and a `POST /Users`;
//!    then per group a filtered GET, a `POST /Groups` and `PATCH` add-member batches of 100
//!    (the engine's default batch). Same concurrency as the engine's ceiling. The bodies carry
//!    the attributes the engine sends (the work email marked primary, as Entra does) with the
//!    same `Accept`: the server's cost per request depends on both.
//! 3. **scimsync**: the bench-built binary, `scimsync run --once` as a child process against a
//!    fresh server (users only, then again with groups on another fresh server), then a
//!    no-change cycle. Peak RSS is the child's `VmHWM`, sampled from `/proc` every 10 ms until
//!    it exits; Graph requests are counted by the emulator; SCIM requests by the server's
//!    access log (one line per request). The server's CPU per request and its busy share are
//!    printed for every run: scim2-server answers one request at a time, so busy ~100 % says
//!    the client kept it saturated and the ratio is the server's cost per request.
//!
//! `--keep-alive` serves the same scim2-server command and application through waitress
//! (`benches/scim2_server_keepalive.py`; `pip install waitress` in scim2-server's venv): HTTP/1.1
//! with connections kept open, as real targets do, where `scim2-server` itself (wsgiref) speaks
//! HTTP/1.0 and closes the connection after every response, so each request costs a TCP
//! connect and close on both sides.
//!
//! `--skip-raw` leaves out the raw baseline (its ratios print as NaN), for memory and
//! no-change figures alone.
//!
//! `SCIMSYNC_BENCH_BIN=/path/to/scimsync` measures another build of the binary (one copied
//! aside before a change), so before and after can run from one bench build.
//!
//! Prints users/s, requests/s, the ratio to raw, peak RSS, and the no-change cycle's time and
//! Graph request count. The emulator runs in this process and shares the CPU with both the
//! server and the engine: figures are for this machine, compare before/after in one setting.

use scimsync_core::{Secret, Source};
use scimsync_graph::{GraphClient, GraphConfig};
use scimsync_testkit::graph::{GraphEmulator, Tenant};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const BATCH: usize = 100;

const MAPPINGS: &str = r#"
[[users.mappings]]
target = "userName"
source = "userPrincipalName"
matching = 1

[[users.mappings]]
target = "externalId"
source = "mailNickname"

[[users.mappings]]
target = "displayName"
source = "displayName"

[[users.mappings]]
target = "name.givenName"
source = "givenName"

[[users.mappings]]
target = "name.familyName"
source = "surname"

[[users.mappings]]
target = "title"
source = "jobTitle"

[[users.mappings]]
target = 'emails[type eq "work"].value'
source = "mail"

[[users.mappings]]
target = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"
source = "department"
"#;

const GROUPS: &str = r#"
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

struct Args {
    users: usize,
    concurrency: usize,
    users_only: bool,
    /// Skip the raw baseline (ratios print as NaN): for memory or no-change figures only.
    skip_raw: bool,
    /// Serve scim2-server over HTTP/1.1 keep-alive (needs `pip install waitress` in its venv).
    keep_alive: bool,
}

fn args() -> Args {
    let mut a = Args {
        users: 5_000,
        concurrency: 4,
        users_only: false,
        skip_raw: false,
        keep_alive: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(x) = it.next() {
        match x.as_str() {
            "--users" => a.users = it.next().and_then(|v| v.parse().ok()).unwrap_or(a.users),
            "--concurrency" => {
                a.concurrency = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(a.concurrency)
            }
            "--users-only" => a.users_only = true,
            "--skip-raw" => a.skip_raw = true,
            "--keep-alive" => a.keep_alive = true,
            _ => {} // `cargo bench` passes `--bench`
        }
    }
    a
}

// ------------------------------------------------------------------------------------------
// scim2-server, fresh per run
// ------------------------------------------------------------------------------------------

struct Server {
    child: Child,
    base: String,
    log: PathBuf,
    /// Its CPU once listening (Python's imports), left out of the per-request figure.
    startup_cpu_secs: f64,
}

impl Server {
    /// `keep_alive`: the same command and application over HTTP/1.1 keep-alive (waitress, by
    /// `scim2_server_keepalive.py`) instead of wsgiref's one connection per request.
    fn start(dir: &Path, name: &str, keep_alive: bool) -> Server {
        let bin = std::env::var("SCIMSYNC_SCIM2_SERVER").map_or_else(
            |_| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-scim/bin/scim2-server"),
            PathBuf::from,
        );
        let log = dir.join(format!("{name}.log"));
        let mut command = if keep_alive {
            let mut c = Command::new(bin.with_file_name("python3"));
            c.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/scim2_server_keepalive.py"));
            c
        } else {
            Command::new(&bin)
        };
        let child = command
            .args(["--hostname", "127.0.0.1", "--port", "0"])
            .args(["--bearer-token", "bench-token"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("server log"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let Some(port) = listening_port(child.id(), Duration::from_secs(30)) else {
            // Say why (e.g. `--keep-alive` without waitress installed in scim2-server's venv).
            let said = std::fs::read_to_string(&log).unwrap_or_default();
            panic!("the SCIM server ({command:?}) did not listen within 30 s; it said:\n{said}");
        };
        let startup_cpu_secs = process_cpu_secs(child.id());
        Server {
            child,
            base: format!("http://127.0.0.1:{port}/v2"),
            log,
            startup_cpu_secs,
        }
    }

    /// CPU the server process used so far, seconds: beside its request count it says whether a
    /// run left the (single-threaded) server idle or gave it costlier requests.
    fn cpu_secs(&self) -> f64 {
        process_cpu_secs(self.child.id()) - self.startup_cpu_secs
    }

    /// Requests the server answered so far, by method (its access log).
    fn requests(&self) -> BTreeMap<String, usize> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let mut out = BTreeMap::new();
        for line in text.lines() {
            if let Some(m) = line.split('"').nth(1).and_then(|r| r.split(' ').next()) {
                *out.entry(m.to_string()).or_default() += 1;
            }
        }
        out
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn total(m: &BTreeMap<String, usize>) -> usize {
    m.values().sum()
}

/// The TCP port a process listens on, from /proc (scim2-server prints the port it was asked
/// for, not the one it got).
fn listening_port(pid: u32, within: Duration) -> Option<u16> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::read_link(e.path()).ok())
            .filter_map(|l| {
                let s = l.to_string_lossy().to_string();
                s.strip_prefix("socket:[")
                    .and_then(|r| r.strip_suffix(']'))
                    .map(str::to_string)
            })
            .collect();
        if let Ok(tcp) = std::fs::read_to_string("/proc/net/tcp") {
            for line in tcp.lines().skip(1) {
                let f: Vec<&str> = line.split_whitespace().collect();
                if f.len() > 9
                    && f[3] == "0A"
                    && inodes.iter().any(|i| i == f[9])
                    && let Some(p) = f[1]
                        .rsplit(':')
                        .next()
                        .and_then(|p| u16::from_str_radix(p, 16).ok())
                {
                    return Some(p);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

// ------------------------------------------------------------------------------------------
// The tenant
// ------------------------------------------------------------------------------------------

struct Workload {
    /// In-scope enabled users, Graph JSON, in id order.
    users: Vec<Value>,
    /// Assigned groups: (source id, displayName, member source ids).
    groups: Vec<(String, String, Vec<String>)>,
    memberships: usize,
}

fn graph_client(graph: &GraphEmulator) -> GraphClient {
    let mut gc = GraphConfig::new(
        graph.tenant_id(),
        graph.client_id(),
        Secret::inline(graph.client_secret()),
    );
    gc.graph_url = graph.url();
    gc.login_url = graph.url();
    gc.page_size = 999;
    GraphClient::new(gc).expect("graph client")
}

async fn workload(graph: &GraphEmulator, n: usize) -> Workload {
    let client = graph_client(graph);
    let assigned: Vec<String> = client
        .read_assignments(graph.service_principal_id())
        .await
        .expect("assignments")
        .users
        .into_keys()
        .collect();
    let g = (n * 383 / 100_000).max(3);
    let memberships = n * 687 / 1000;
    let large = (n / 20).min(assigned.len());
    let rest = (memberships.saturating_sub(large) / (g - 1)).min(assigned.len());
    let mut groups = Vec::new();
    for k in 0..g {
        let size = if k == 0 { large } else { rest };
        // A stride coprime with most list lengths, so members are distinct and spread out.
        let members: BTreeSet<String> = (0..size)
            .map(|j| assigned[(k * 7919 + j * 13) % assigned.len()].clone())
            .collect();
        let members: Vec<String> = members.into_iter().collect();
        let name = format!("cap-group-{k:04}");
        let id = graph.add_group(json!({"displayName": name, "members": members}));
        graph.assign_group(&id);
        groups.push((id, name, members));
    }
    let assigned: BTreeSet<&String> = assigned.iter().collect();
    let users: Vec<Value> = graph
        .users()
        .into_iter()
        .filter(|u| u["accountEnabled"] != Value::Bool(false))
        .filter(|u| {
            u["id"]
                .as_str()
                .is_some_and(|id| assigned.contains(&id.to_string()))
        })
        .collect();
    let memberships = groups.iter().map(|g| g.2.len()).sum();
    Workload {
        users,
        groups,
        memberships,
    }
}

// ------------------------------------------------------------------------------------------
// Raw load generator
// ------------------------------------------------------------------------------------------

fn user_body(u: &Value) -> Value {
    let mut b = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
        "userName": u["userPrincipalName"],
        "externalId": u["mailNickname"],
        "displayName": u["displayName"],
        "name": {"givenName": u["givenName"], "familyName": u["surname"]},
        "title": u["jobTitle"],
        "active": true,
        ENTERPRISE: {"department": u["department"]},
    });
    if let Some(mail) = u["mail"].as_str() {
        b["emails"] = json!([{"type": "work", "value": mail, "primary": true}]);
    }
    b
}

async fn raw_users(
    http: &reqwest::Client,
    base: &str,
    users: &[Value],
    c: usize,
) -> HashMap<String, String> {
    let sem = Arc::new(Semaphore::new(c));
    let mut set = tokio::task::JoinSet::new();
    for u in users {
        let (http, base, sem) = (http.clone(), base.to_string(), sem.clone());
        let (source_id, upn, body) = (
            u["id"].as_str().unwrap_or_default().to_string(),
            u["userPrincipalName"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            user_body(u),
        );
        set.spawn(async move {
            let _p = sem.acquire().await.expect("semaphore");
            let filter = format!("userName eq \"{upn}\"");
            let r = http
                .get(format!("{base}/Users"))
                .query(&[("filter", filter.as_str())])
                .bearer_auth("bench-token")
                .send()
                .await
                .expect("GET");
            let _ = r.bytes().await;
            let r = http
                .post(format!("{base}/Users"))
                .bearer_auth("bench-token")
                .header("content-type", "application/scim+json")
                .json(&body)
                .send()
                .await
                .expect("POST");
            let v: Value = r.json().await.unwrap_or(Value::Null);
            (source_id, v["id"].as_str().unwrap_or_default().to_string())
        });
    }
    let mut ids = HashMap::new();
    while let Some(r) = set.join_next().await {
        let (s, t) = r.expect("task");
        ids.insert(s, t);
    }
    ids
}

async fn raw_groups(
    http: &reqwest::Client,
    base: &str,
    groups: &[(String, String, Vec<String>)],
    ids: &HashMap<String, String>,
    c: usize,
) {
    let sem = Arc::new(Semaphore::new(c));
    let mut set = tokio::task::JoinSet::new();
    for (sid, name, members) in groups {
        let (http, base, sem) = (http.clone(), base.to_string(), sem.clone());
        let (sid, name) = (sid.clone(), name.clone());
        let members: Vec<String> = members.iter().filter_map(|m| ids.get(m)).cloned().collect();
        set.spawn(async move {
            let gid = {
                let _p = sem.acquire().await.expect("semaphore");
                let filter = format!("displayName eq \"{name}\"");
                let r = http
                    .get(format!("{base}/Groups"))
                    .query(&[
                        ("filter", filter.as_str()),
                        ("excludedAttributes", "members"),
                    ])
                    .bearer_auth("bench-token")
                    .send()
                    .await
                    .expect("GET");
                let _ = r.bytes().await;
                let r = http
                    .post(format!("{base}/Groups"))
                    .bearer_auth("bench-token")
                    .header("content-type", "application/scim+json")
                    .json(&json!({
                        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                        "displayName": name, "externalId": sid,
                    }))
                    .send()
                    .await
                    .expect("POST");
                let v: Value = r.json().await.unwrap_or(Value::Null);
                v["id"].as_str().unwrap_or_default().to_string()
            };
            for chunk in members.chunks(BATCH) {
                let _p = sem.acquire().await.expect("semaphore");
                let value: Vec<Value> = chunk.iter().map(|id| json!({"value": id})).collect();
                let r = http
                    .patch(format!("{base}/Groups/{gid}"))
                    .bearer_auth("bench-token")
                    .header("content-type", "application/scim+json")
                    .json(&json!({"schemas": [PATCH_OP],
                        "Operations": [{"op": "add", "path": "members", "value": value}]}))
                    .send()
                    .await
                    .expect("PATCH");
                let _ = r.bytes().await;
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r.expect("task");
    }
}

// ------------------------------------------------------------------------------------------
// scimsync as a child process
// ------------------------------------------------------------------------------------------

fn write_job(
    dir: &Path,
    graph: &GraphEmulator,
    server: &Server,
    groups: bool,
    c: usize,
) -> PathBuf {
    let secret = dir.join("graph-secret");
    let token = dir.join("scim-token");
    std::fs::write(&secret, graph.client_secret()).expect("secret");
    std::fs::write(&token, "bench-token").expect("token");
    let text = format!(
        r#"name = "capacity"
deletion_threshold = 0

[source]
tenant_id = "{tenant}"
client_id = "{client}"
client_secret = "file:{secret}"
service_principal_id = "{sp}"
scope = "assigned"
graph_url = "{url}"
login_url = "{url}"

[target]
url = "{scim}"
token = "file:{token}"
dialect = "rfc"
max_concurrency = {c}
{MAPPINGS}{groups}"#,
        tenant = graph.tenant_id(),
        client = graph.client_id(),
        secret = secret.display(),
        sp = graph.service_principal_id(),
        url = graph.url(),
        scim = server.base,
        token = token.display(),
        groups = if groups { GROUPS } else { "" },
    );
    let path = dir.join("job.toml");
    std::fs::write(&path, text).expect("job");
    path
}

struct Run {
    secs: f64,
    peak_rss_mib: f64,
    /// User + system CPU of the child, seconds (its last sample before exit).
    cpu_secs: f64,
    /// The (fresh) server's CPU after this run, seconds.
    server_cpu_secs: f64,
    report: Value,
}

impl Run {
    /// The cycle's users phase (the engine's own figure), seconds.
    fn users_phase_secs(&self) -> f64 {
        self.report["phases"]["usersMs"].as_f64().unwrap_or(0.0) / 1000.0
    }
}

/// `scimsync run --once --json`; the child's peak RSS sampled from /proc until it exits.
async fn run_once(job: &Path, state: &Path) -> Run {
    let t = Instant::now();
    // `SCIMSYNC_BENCH_BIN` runs another build (e.g. a copy of the binary before a change).
    let bin = std::env::var("SCIMSYNC_BENCH_BIN").unwrap_or(env!("CARGO_BIN_EXE_scimsync").into());
    let mut child = Command::new(bin)
        .args(["run", "--once", "--json", "--config"])
        .arg(job)
        .arg("--state")
        .arg(state)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn scimsync");
    let pid = child.id();
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let err = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let mut peak_kib = 0u64;
    let mut cpu_ticks = 0u64;
    let status = loop {
        if let Some(hwm) = vm_hwm_kib(pid) {
            peak_kib = peak_kib.max(hwm);
        }
        if let Some(t) = cpu_ticks_of(pid) {
            cpu_ticks = cpu_ticks.max(t);
        }
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let secs = t.elapsed().as_secs_f64();
    let out = out.join().unwrap_or_default();
    let err = err.join().unwrap_or_default();
    assert!(status.success(), "scimsync failed ({status}): {err}");
    let report: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("report: {e}: {err}"));
    Run {
        secs,
        peak_rss_mib: peak_kib as f64 / 1024.0,
        cpu_secs: cpu_ticks as f64 / CLOCK_TICKS_PER_SEC,
        server_cpu_secs: f64::NAN,
        report,
    }
}

/// `sysconf(_SC_CLK_TCK)` on Linux (the kernel's USER_HZ, 100 on every common build).
const CLOCK_TICKS_PER_SEC: f64 = 100.0;

/// utime + stime of a process, in clock ticks (fields 14 and 15 of `/proc/{pid}/stat`, after
/// the parenthesised command name).
fn cpu_ticks_of(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn process_cpu_secs(pid: u32) -> f64 {
    cpu_ticks_of(pid).map_or(f64::NAN, |t| t as f64 / CLOCK_TICKS_PER_SEC)
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn tally(r: &Value, k: &str) -> u64 {
    r["tally"][k].as_u64().unwrap_or(0)
}

/// One scimsync measurement: a fresh server, the initial cycle, then a no-change cycle.
async fn scimsync_run(
    dir: &Path,
    graph: &GraphEmulator,
    groups: bool,
    c: usize,
    keep_alive: bool,
) -> (Run, usize, Run, usize) {
    let name = if groups { "with-groups" } else { "users-only" };
    let dir = dir.join(name);
    std::fs::create_dir_all(&dir).expect("dir");
    let server = Server::start(&dir, name, keep_alive);
    let job = write_job(&dir, graph, &server, groups, c);
    let state = dir.join("state");
    let mut initial = run_once(&job, &state).await;
    initial.server_cpu_secs = server.cpu_secs();
    let initial_requests = total(&server.requests());
    graph.clear_requests();
    let quiet = run_once(&job, &state).await;
    let graph_requests = graph.requests().len();
    let writes = ["created", "updated", "disabled", "deleted", "members_added"]
        .iter()
        .map(|k| tally(&quiet.report, k))
        .sum::<u64>();
    assert_eq!(
        writes, 0,
        "the no-change cycle wrote: {}",
        quiet.report["tally"]
    );
    (initial, initial_requests, quiet, graph_requests)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let a = args();
    let dir = tempfile::tempdir().expect("tempdir");
    let t = Instant::now();
    let graph = GraphEmulator::start(Tenant::generate("bench.onmicrosoft.com", a.users, 0, 16))
        .await
        .expect("graph");
    let w = workload(&graph, a.users).await;
    println!(
        "capacity bench: tenant of {} users, {} in scope (enabled), {} assigned groups, {} memberships; \
         concurrency {}; server {}; set up in {:.1} s",
        a.users,
        w.users.len(),
        w.groups.len(),
        w.memberships,
        a.concurrency,
        if a.keep_alive {
            "HTTP/1.1 keep-alive (waitress)"
        } else {
            "HTTP/1.0, a connection per request (wsgiref)"
        },
        t.elapsed().as_secs_f64()
    );

    // Raw: the same requests from a minimal client, on a fresh server.
    let (raw_users_s, raw_user_requests, raw_groups_s, raw_all_requests, raw_cpu, raw_server_cpu) =
        if a.skip_raw {
            (f64::NAN, 0, f64::NAN, 0, f64::NAN, f64::NAN)
        } else {
            let raw_server = Server::start(dir.path(), "raw", a.keep_alive);
            // The engine's `Accept` too, so both send the same request.
            let mut headers = reqwest::header::HeaderMap::new();
            headers.insert(
                reqwest::header::ACCEPT,
                reqwest::header::HeaderValue::from_static("application/scim+json"),
            );
            let http = reqwest::Client::builder()
                .default_headers(headers)
                .build()
                .expect("client");
            let t = Instant::now();
            // This process's CPU while the raw client runs (the emulator is idle then): what a
            // bare reqwest client spends per request on this server, the floor for ours.
            let ticks = cpu_ticks_of(std::process::id());
            let ids = raw_users(&http, &raw_server.base, &w.users, a.concurrency).await;
            let raw_users_s = t.elapsed().as_secs_f64();
            let raw_cpu = match (ticks, cpu_ticks_of(std::process::id())) {
                (Some(a), Some(b)) => (b - a) as f64 / CLOCK_TICKS_PER_SEC,
                _ => f64::NAN,
            };
            let raw_user_requests = total(&raw_server.requests());
            let raw_server_cpu = raw_server.cpu_secs();
            let t = Instant::now();
            if !a.users_only {
                raw_groups(&http, &raw_server.base, &w.groups, &ids, a.concurrency).await;
            }
            let raw_groups_s = t.elapsed().as_secs_f64();
            (
                raw_users_s,
                raw_user_requests,
                raw_groups_s,
                total(&raw_server.requests()),
                raw_cpu,
                raw_server_cpu,
            )
        };
    let n = w.users.len() as f64;
    println!(
        "raw load generator (GET filter + POST per user; groups: GET + POST + PATCH/{BATCH}):"
    );
    println!(
        "  users:  {raw_users_s:.2} s, {:.0} users/s, {:.0} requests/s ({raw_user_requests} requests); \
         client CPU {raw_cpu:.2} s = {:.3} ms per request",
        n / raw_users_s,
        raw_user_requests as f64 / raw_users_s,
        raw_cpu * 1000.0 / raw_user_requests as f64
    );
    println!(
        "  {}",
        server_load(raw_server_cpu, raw_user_requests, raw_users_s)
    );
    if !a.users_only {
        println!(
            "  groups: {raw_groups_s:.2} s ({} requests); users + groups {:.2} s, {:.0} requests/s",
            raw_all_requests - raw_user_requests,
            raw_users_s + raw_groups_s,
            raw_all_requests as f64 / (raw_users_s + raw_groups_s)
        );
    }

    // scimsync, users only.
    let (init, reqs, quiet, graph_reqs) =
        scimsync_run(dir.path(), &graph, false, a.concurrency, a.keep_alive).await;
    let created = tally(&init.report, "created");
    let phase = init.users_phase_secs();
    println!("scimsync run --once, users only (fresh server):");
    println!(
        "  initial: {:.2} s, {created} created, {:.0} users/s, {:.0} requests/s ({reqs} requests), \
         ratio to raw {:.2}, peak RSS {:.0} MiB",
        init.secs,
        created as f64 / init.secs,
        reqs as f64 / init.secs,
        (created as f64 / init.secs) / (n / raw_users_s),
        init.peak_rss_mib
    );
    println!(
        "  users phase: {phase:.2} s, {:.0} users/s, ratio to raw {:.2}; CPU {:.2} s = {:.3} ms per SCIM request",
        created as f64 / phase,
        (created as f64 / phase) / (n / raw_users_s),
        init.cpu_secs,
        init.cpu_secs * 1000.0 / reqs.max(1) as f64
    );
    println!("  {}", server_load(init.server_cpu_secs, reqs, init.secs));
    println!(
        "  no-change: {:.3} s, {graph_reqs} Graph requests, peak RSS {:.0} MiB",
        quiet.secs, quiet.peak_rss_mib
    );
    if a.users_only {
        return;
    }

    // scimsync with groups.
    let (init, reqs, quiet, graph_reqs) =
        scimsync_run(dir.path(), &graph, true, a.concurrency, a.keep_alive).await;
    let raw_all_s = raw_users_s + raw_groups_s;
    println!("scimsync run --once, users and groups (fresh server):");
    println!(
        "  initial: {:.2} s, {} created, {} members added, {:.0} requests/s ({reqs} requests), \
         ratio to raw {:.2}, peak RSS {:.0} MiB",
        init.secs,
        tally(&init.report, "created"),
        tally(&init.report, "members_added"),
        reqs as f64 / init.secs,
        raw_all_s / init.secs,
        init.peak_rss_mib
    );
    println!(
        "  phases: read {:.2} s, users {:.2} s, groups {:.2} s; CPU {:.2} s = {:.3} ms per SCIM request",
        init.report["phases"]["readMs"].as_f64().unwrap_or(0.0) / 1000.0,
        init.users_phase_secs(),
        init.report["phases"]["groupsMs"].as_f64().unwrap_or(0.0) / 1000.0,
        init.cpu_secs,
        init.cpu_secs * 1000.0 / reqs.max(1) as f64
    );
    println!("  {}", server_load(init.server_cpu_secs, reqs, init.secs));
    println!(
        "  no-change: {:.3} s, {graph_reqs} Graph requests, peak RSS {:.0} MiB",
        quiet.secs, quiet.peak_rss_mib
    );
}

/// The server's side of a run: its CPU per request, and how busy it was over the run's wall
/// time. scim2-server runs one request at a time (wsgiref; waitress's threads share one GIL),
/// so busy well under 100 % means the client left it waiting.
fn server_load(cpu_secs: f64, requests: usize, wall_secs: f64) -> String {
    format!(
        "server CPU {cpu_secs:.2} s = {:.3} ms per request, busy {:.0} % of the time",
        cpu_secs * 1000.0 / requests.max(1) as f64,
        cpu_secs * 100.0 / wall_secs
    )
}
