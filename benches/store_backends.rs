//! sled vs PostgreSQL under the engine (run: `cargo bench --bench store_backends [-- users]`).
//!
//! The same job on each backend, same run: an initial cycle of N users (default 10,000) in G
//! groups from the Graph emulator (delta query, over loopback HTTP) into an in-memory target,
//! then a no-change cycle. Prints wall time and the store calls each cycle made, by method, so
//! a per-object call in a quiet cycle shows. PostgreSQL comes from `SCIMSYNC_TEST_POSTGRES_URL`
//! (a fresh database in it), else a throw-away cluster from `scripts/pg-test-cluster.sh`.
//! `--assigned` scopes the job to the users assigned to the app (the emulator's service
//! principal), so the cycle also keeps the assignment snapshot.

use chrono::{DateTime, Utc};
use scimsync_config::{Apply, Mapping, MappingValue};
use scimsync_core::{
    LogEntry, ObjectState, ObjectTarget, Secret, StateChange, StateStore, StoreError, SystemClock,
    UserScope,
};
use scimsync_engine::{Engine, GroupSpec, JobSpec, Mode};
use scimsync_graph::{GraphClient, GraphConfig};
use scimsync_testkit::doubles::MemoryTarget;
use scimsync_testkit::graph::{GraphEmulator, Tenant};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

/// Counts calls by method, forwarding every one (also the provided ones, so the backend's
/// overrides are what is measured).
struct Counting<S> {
    inner: S,
    calls: Mutex<BTreeMap<&'static str, u64>>,
}

impl<S> Counting<S> {
    fn new(inner: S) -> Self {
        Counting {
            inner,
            calls: Mutex::new(BTreeMap::new()),
        }
    }
    fn count(&self, m: &'static str) {
        *self.calls.lock().unwrap().entry(m).or_default() += 1;
    }
    fn take(&self) -> BTreeMap<&'static str, u64> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }
}

impl<S: StateStore> StateStore for Counting<S> {
    fn get(&self, job: &str, id: &str) -> Result<Option<ObjectState>, StoreError> {
        self.count("get");
        self.inner.get(job, id)
    }
    fn get_many(&self, job: &str, ids: &[String]) -> Result<Vec<ObjectState>, StoreError> {
        self.count("get_many");
        self.inner.get_many(job, ids)
    }
    fn targets_many(&self, job: &str, ids: &[String]) -> Result<Vec<ObjectTarget>, StoreError> {
        self.count("targets_many");
        self.inner.targets_many(job, ids)
    }
    fn list(&self, job: &str) -> Result<Vec<ObjectState>, StoreError> {
        self.count("list");
        self.inner.list(job)
    }
    fn list_prefix(&self, job: &str, prefix: &str) -> Result<Vec<ObjectState>, StoreError> {
        self.count("list_prefix");
        self.inner.list_prefix(job, prefix)
    }
    fn commit(&self, job: &str, change: &StateChange, log: &LogEntry) -> Result<(), StoreError> {
        self.count("commit");
        self.inner.commit(job, change, log)
    }
    fn commit_batch(&self, job: &str, batch: &[(StateChange, LogEntry)]) -> Result<(), StoreError> {
        self.count("commit_batch");
        self.inner.commit_batch(job, batch)
    }
    fn logs(&self, job: &str, cycle: Option<&str>) -> Result<Vec<LogEntry>, StoreError> {
        self.count("logs");
        self.inner.logs(job, cycle)
    }
    fn get_meta(&self, job: &str, key: &str) -> Result<Option<String>, StoreError> {
        self.count("get_meta");
        self.inner.get_meta(job, key)
    }
    fn put_meta(&self, job: &str, key: &str, value: &str) -> Result<(), StoreError> {
        self.count("put_meta");
        self.inner.put_meta(job, key, value)
    }
    fn flush(&self) -> Result<(), StoreError> {
        self.count("flush");
        self.inner.flush()
    }
    fn prune_logs_before(&self, job: &str, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        self.count("prune_logs_before");
        self.inner.prune_logs_before(job, cutoff)
    }
    fn remove_objects(&self, job: &str) -> Result<u64, StoreError> {
        self.count("remove_objects");
        self.inner.remove_objects(job)
    }
    fn scan_meta(&self, job: &str, prefix: &str) -> Result<Vec<(String, String)>, StoreError> {
        self.count("scan_meta");
        self.inner.scan_meta(job, prefix)
    }
    fn remove_meta(&self, job: &str, key: &str) -> Result<(), StoreError> {
        self.count("remove_meta");
        self.inner.remove_meta(job, key)
    }
    fn get_record(&self, job: &str, kind: &str, id: &str) -> Result<Option<String>, StoreError> {
        self.count("get_record");
        self.inner.get_record(job, kind, id)
    }
    fn put_record(&self, job: &str, kind: &str, id: &str, value: &str) -> Result<(), StoreError> {
        self.count("put_record");
        self.inner.put_record(job, kind, id, value)
    }
    fn remove_record(&self, job: &str, kind: &str, id: &str) -> Result<(), StoreError> {
        self.count("remove_record");
        self.inner.remove_record(job, kind, id)
    }
    fn mark_records(&self, job: &str, kind: &str, ids: &[String]) -> Result<(), StoreError> {
        self.count("mark_records");
        self.inner.mark_records(job, kind, ids)
    }
    fn put_records(
        &self,
        job: &str,
        kind: &str,
        records: &[(String, String)],
    ) -> Result<(), StoreError> {
        self.count("put_records");
        self.inner.put_records(job, kind, records)
    }
    fn remove_records(&self, job: &str, kind: &str, ids: &[String]) -> Result<(), StoreError> {
        self.count("remove_records");
        self.inner.remove_records(job, kind, ids)
    }
    fn list_records(&self, job: &str, kind: &str) -> Result<Vec<(String, String)>, StoreError> {
        self.count("list_records");
        self.inner.list_records(job, kind)
    }
}

fn mapping(target: &str, source: &str, matching: Option<u32>) -> Mapping {
    Mapping {
        target: target.into(),
        value: MappingValue::Direct {
            source: source.into(),
        },
        matching,
        apply: Apply::Always,
        default: None,
        required: false,
        line: 0,
    }
}

fn job(scope: UserScope) -> JobSpec {
    let mut job = JobSpec::new(
        "bench",
        scope,
        vec![
            mapping("userName", "userPrincipalName", Some(1)),
            mapping("displayName", "displayName", None),
            mapping("title", "jobTitle", None),
            mapping("externalId", "mailNickname", None),
            mapping("name.givenName", "givenName", None),
            mapping("name.familyName", "surname", None),
        ],
    );
    job.concurrency = 8;
    job.deletion_threshold = 0;
    job.groups = Some(GroupSpec {
        mappings: vec![mapping("displayName", "displayName", Some(1))],
        scoping: Vec::new(),
        include_nested: false,
        delete_out_of_scope: true,
        batch_size: 100,
    });
    job
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
    GraphClient::new(gc).expect("client")
}

struct Figures {
    initial_s: f64,
    quiet_s: f64,
    quiet_calls: BTreeMap<&'static str, u64>,
}

async fn measure<S: StateStore>(
    name: &str,
    graph: &GraphEmulator,
    store: S,
    assigned: bool,
) -> Figures {
    let store = Counting::new(store);
    let source = graph_client(graph);
    let target = MemoryTarget::new();
    let spec = job(if assigned {
        UserScope::Assigned {
            service_principal_id: graph.service_principal_id().to_owned(),
        }
    } else {
        UserScope::All
    });
    let engine = Engine::new(&spec, &source, &target, &store, &SystemClock);
    let t = Instant::now();
    let r = engine.run(Mode::Apply).await.expect("initial cycle");
    let initial_s = t.elapsed().as_secs_f64();
    let initial_calls = store.take();
    println!(
        "{name}: initial cycle {initial_s:.2} s ({} objects created), store calls {initial_calls:?}",
        r.tally.created
    );
    target.clear_log();
    let t = Instant::now();
    let r = engine.run(Mode::Apply).await.expect("no-change cycle");
    let quiet_s = t.elapsed().as_secs_f64();
    let quiet_calls = store.take();
    println!(
        "{name}: no-change cycle {quiet_s:.3} s ({} writes to the target), store calls {quiet_calls:?}",
        target.writes().len()
    );
    let _ = r;
    Figures {
        initial_s,
        quiet_s,
        quiet_calls,
    }
}

/// Without `SCIMSYNC_TEST_POSTGRES_URL`: start a throw-away cluster, run this bench again with
/// the variables it prints, stop the cluster. `Some(exit code)` when it did.
fn with_throwaway_cluster() -> Option<i32> {
    if std::env::var(scimsync_store_pg::testing::URL_VAR).is_ok_and(|v| !v.is_empty()) {
        return None;
    }
    let out = std::process::Command::new("scripts/pg-test-cluster.sh")
        .arg("start")
        .output()
        .expect("scripts/pg-test-cluster.sh (run from the workspace root)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut vars = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some((k, v)) = line.trim_start_matches("export ").split_once('=') {
            vars.push((
                k.to_owned(),
                v.trim_matches(|c| c == '\'' || c == '"').to_owned(),
            ));
        }
    }
    let exe = std::env::current_exe().expect("this bench");
    let status = std::process::Command::new(exe)
        .args(std::env::args().skip(1))
        .envs(vars.iter().cloned())
        .status()
        .expect("run the bench again");
    if let Some((_, dir)) = vars.iter().find(|(k, _)| k == "SCIMSYNC_PG_CLUSTER_DIR") {
        let _ = std::process::Command::new("scripts/pg-test-cluster.sh")
            .args(["stop", dir])
            .status();
    }
    Some(status.code().unwrap_or(1))
}

fn main() {
    let users = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10_000usize);
    let assigned = std::env::args().any(|a| a == "--assigned");
    if let Some(code) = with_throwaway_cluster() {
        std::process::exit(code);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let groups = (users / 200).max(1);
        let graph =
            GraphEmulator::start(Tenant::generate("bench.onmicrosoft.com", users, groups, 7))
                .await
                .expect("graph");
        let dir = tempfile::tempdir().expect("temp dir");
        let (sled, _) = scimsync_store::SledStore::open(&dir.path().join("sled")).expect("sled");
        let s = measure("sled", &graph, sled, assigned).await;
        let db = scimsync_store_pg::testing::TestDb::create().expect("PostgreSQL");
        let pg = scimsync_store_pg::PgStore::open(&db.url, None).expect("PostgreSQL store");
        let p = measure("postgres", &graph, pg, assigned).await;
        println!(
            "summary ({users} users, {groups} groups, {}; Graph emulator source, in-memory target):",
            if assigned { "assigned users in scope" } else { "every user in scope" }
        );
        println!(
            "  initial cycle:   sled {:.2} s, PostgreSQL {:.2} s, ratio {:.2}x",
            s.initial_s,
            p.initial_s,
            p.initial_s / s.initial_s
        );
        println!(
            "  no-change cycle: sled {:.3} s, PostgreSQL {:.3} s, ratio {:.2}x (goal: within 1.5x)",
            s.quiet_s,
            p.quiet_s,
            p.quiet_s / s.quiet_s
        );
        println!(
            "  store calls in the no-change cycle: {}",
            s.quiet_calls.values().sum::<u64>()
        );
        drop(db);
    });
}
