//! The service against the Graph emulator and the SCIM target emulator, on loopback, with a
//! manual clock: quarantine on a 401 with a webhook notification and back-off, recovery,
//! deletions held until exactly the held set is approved, provision on demand of one user, and a shutdown in the
//! middle of a cycle followed by a restart that neither loses nor duplicates anything.

use chrono::{DateTime, Duration, Utc};
use scimsync_core::{Secret, StateStore};
use scimsync_engine::ApproveOutcome;
use scimsync_graph::{GraphClient, GraphConfig};
use scimsync_scim::{ScimClient, ScimClientConfig};
use scimsync_service::notify::WebhookNotifier;
use scimsync_service::{
    JobDef, JobState, JobStatus, ManualTime, QuarantineReason, Service, ServiceHandle,
    ServiceOptions, Subject,
};
use scimsync_store::{MemoryStore, SledStore};
use scimsync_testkit::graph::{GraphEmulator, Tenant};
use scimsync_testkit::scim::{ScimTarget, ScimTargetOptions};
use serde_json::Value;
use std::sync::{Arc, Mutex};

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
"#;

type Hooked = Arc<Mutex<Vec<(Option<String>, Value)>>>;

/// A loopback webhook receiver recording the Authorization header and the JSON body.
async fn webhook() -> (String, Hooked) {
    let seen: Hooked = Arc::default();
    let rec = Arc::clone(&seen);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, axum::Json(body): axum::Json<Value>| {
                let rec = Arc::clone(&rec);
                async move {
                    let auth = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    rec.lock().unwrap().push((auth, body));
                    "ok"
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), seen)
}

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-02T09:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

struct Env {
    graph: GraphEmulator,
    target: ScimTarget,
    hook_url: String,
    hooked: Hooked,
    time: Arc<ManualTime>,
    dir: tempfile::TempDir,
}

async fn env(users: usize) -> Env {
    let graph = GraphEmulator::start(Tenant::generate("contoso.onmicrosoft.com", users, 2, 7))
        .await
        .unwrap();
    let target = ScimTarget::start(ScimTargetOptions::default())
        .await
        .unwrap();
    let (hook_url, hooked) = webhook().await;
    Env {
        graph,
        target,
        hook_url,
        hooked,
        time: ManualTime::new(t0()),
        dir: tempfile::tempdir().unwrap(),
    }
}

impl Env {
    fn options(&self) -> ServiceOptions {
        ServiceOptions {
            clock: self.time.clone(),
            sleeper: self.time.clone(),
            shutdown_grace: std::time::Duration::ZERO,
        }
    }

    fn config(&self, extra_top: &str, max_concurrency: usize) -> scimsync_config::JobConfig {
        let token = self.dir.path().join("scim-token");
        std::fs::write(&token, self.target.token()).unwrap();
        let text = format!(
            r#"name = "app"
schedule = "40m"
{extra_top}
[source]
tenant_id = "{tenant}"
client_id = "{client}"
client_secret = "literal-is-fine-in-tests"
scope = "all"
graph_url = "{url}"
login_url = "{url}"

[target]
url = "{scim}"
token = "file:{token}"
max_concurrency = {max_concurrency}
{MAPPINGS}"#,
            tenant = self.graph.tenant_id(),
            client = self.graph.client_id(),
            url = self.graph.url(),
            scim = self.target.url(),
            token = token.display(),
        );
        let path = self.dir.path().join("app.toml");
        scimsync_config::parse(&path, &text)
            .unwrap_or_else(|e| panic!("{e:?}"))
            .job
    }

    fn def<St: StateStore>(
        &self,
        cfg: &scimsync_config::JobConfig,
        store: Arc<St>,
    ) -> JobDef<GraphClient, ScimClient, St> {
        let mut gc = GraphConfig::new(
            self.graph.tenant_id(),
            self.graph.client_id(),
            Secret::inline(self.graph.client_secret()),
        );
        gc.graph_url = self.graph.url();
        gc.login_url = self.graph.url();
        let graph = GraphClient::new(gc).unwrap();
        // The client keeps the token it was configured with, whatever the target does later.
        let mut sc =
            ScimClientConfig::new(self.target.url(), Secret::inline("scimsync-test-token"));
        sc.max_concurrency = cfg.target.max_concurrency;
        sc.retry_base_delay = std::time::Duration::from_millis(5);
        let scim = ScimClient::new(sc).unwrap();
        let notifier = Arc::new(
            WebhookNotifier::new(&self.hook_url, Some(Secret::inline("hook-secret"))).unwrap(),
        );
        JobDef::from_config(cfg, graph, scim, store, notifier)
    }

    fn hooks(&self) -> Vec<(Option<String>, Value)> {
        self.hooked.lock().unwrap().clone()
    }

    fn enabled_users(&self) -> Vec<Value> {
        self.graph
            .users()
            .into_iter()
            .filter(|u| u["accountEnabled"] != Value::Bool(false))
            .collect()
    }
}

async fn wait_for(h: &ServiceHandle, what: &str, pred: impl Fn(&JobStatus) -> bool) -> JobStatus {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let s = h.status("app").unwrap();
        if pred(&s) {
            return s;
        }
        if std::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}; status: {s:#?}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Notifications are sent after the job's state changes: wait for `n` of them to arrive (and
/// a moment more, so an unexpected extra one would be seen too).
async fn hooks_at_least(env: &Env, n: usize) -> Vec<(Option<String>, Value)> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while env.hooks().len() < n && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    env.hooks()
}

fn idle_after(n: u64) -> impl Fn(&JobStatus) -> bool {
    move |s| s.cycles_run >= n && s.state != JobState::Running
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_quarantines_backs_off_notifies_and_recovers() {
    let mut env = env(8).await;
    env.target.set_token("rotated-by-the-app-admin");
    let cfg = env.config("", 4);
    let mut service = Service::new(env.options());
    service
        .add_job(env.def(&cfg, Arc::new(MemoryStore::new())))
        .unwrap();
    let h = service.handle();

    let s = wait_for(&h, "the first cycle", idle_after(1)).await;
    assert_eq!(s.state, JobState::Quarantined);
    let q = s.quarantine.clone().expect("quarantined");
    assert_eq!(q.reason, QuarantineReason::EncounteredQuarantineException);
    assert_eq!(q.error_code, Some(scimsync_core::ErrorCode::Unauthorized));
    // Backed off: the next attempt is later than the regular 40-minute slot.
    assert!(s.next_run.unwrap() > t0() + Duration::minutes(40), "{s:#?}");
    assert!(env.target.users().is_empty());
    let hooks = hooks_at_least(&env, 1).await;
    assert_eq!(hooks.len(), 1, "one notification on entering: {hooks:?}");
    assert_eq!(hooks[0].0.as_deref(), Some("Bearer hook-secret"));
    assert_eq!(hooks[0].1["event"], "quarantined");
    assert_eq!(hooks[0].1["reason"], "EncounteredQuarantineException");
    assert!(!hooks[0].1.to_string().contains("scimsync-test-token"));

    // The regular slot passes: no cycle while quarantined.
    env.time.advance(Duration::minutes(41));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(h.status("app").unwrap().cycles_run, 1);

    // The app's token is fixed; at the next attempt the job provisions and leaves quarantine.
    env.target.set_token("scimsync-test-token");
    env.time.advance_to(q.next_attempt);
    let s = wait_for(&h, "recovery", idle_after(2)).await;
    assert_eq!(s.state, JobState::Idle, "{s:#?}");
    assert!(s.quarantine.is_none());
    assert_eq!(env.target.users().len(), env.enabled_users().len());
    let hooks = hooks_at_least(&env, 2).await;
    assert_eq!(hooks.len(), 2, "{hooks:?}");
    assert_eq!(hooks[1].1["event"], "released");
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletions_over_the_threshold_wait_for_approval() {
    let env = env(10).await;
    let cfg = env.config("deletion_threshold = 2", 4);
    let mut service = Service::new(env.options());
    service
        .add_job(env.def(&cfg, Arc::new(MemoryStore::new())))
        .unwrap();
    let h = service.handle();
    wait_for(&h, "the initial cycle", idle_after(1)).await;
    let provisioned = env.target.users().len();
    assert!(provisioned >= 4);

    let gone: Vec<String> = env
        .enabled_users()
        .iter()
        .take(3)
        .map(|u| u["id"].as_str().unwrap().to_string())
        .collect();
    for id in &gone {
        env.graph.soft_delete_user(id);
    }
    env.target.clear_requests();
    h.run_now("app").await.unwrap();
    let s = wait_for(&h, "the held cycle", idle_after(2)).await;
    assert_eq!(s.state, JobState::WaitingForApproval, "{s:#?}");
    assert!(s.deletions_held);
    assert_eq!(
        s.quarantine.as_ref().unwrap().reason,
        QuarantineReason::TooManyDeletes
    );
    assert!(
        env.target.writes().is_empty(),
        "nothing sent while held: {:?}",
        env.target.writes()
    );
    let held = s.held.clone().expect("status shows the held set");
    assert_eq!(
        (held.count, held.disables, held.deletes),
        (3, 3, 0),
        "{held:?}"
    );
    assert!(
        held.reasons.iter().any(|r| r.contains("threshold")),
        "{held:?}"
    );
    let full = h.held("app").unwrap().expect("held");
    assert_eq!(full.fingerprint, held.fingerprint);
    assert_eq!(full.ops.len(), 3);
    let hooks = hooks_at_least(&env, 1).await;
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0].1["reason"], "TooManyDeletes");

    // A stale fingerprint approves nothing and runs nothing.
    let out = h
        .approve_deletions("app", Some("0000000000000000".into()))
        .await
        .unwrap();
    assert!(
        matches!(&out, ApproveOutcome::Mismatch { held: h } if h.fingerprint == held.fingerprint),
        "{out:?}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let s = h.status("app").unwrap();
    assert_eq!(s.cycles_run, 2, "no cycle after a refused approval");
    assert_eq!(s.state, JobState::WaitingForApproval);
    assert!(env.target.writes().is_empty());

    let out = h
        .approve_deletions("app", Some(held.fingerprint.clone()))
        .await
        .unwrap();
    assert!(matches!(out, ApproveOutcome::Approved { .. }), "{out:?}");
    let s = wait_for(&h, "the approved cycle", idle_after(3)).await;
    assert_eq!(s.state, JobState::Idle, "{s:#?}");
    assert!(s.quarantine.is_none());
    let disabled = env
        .target
        .users()
        .iter()
        .filter(|u| u["active"] == Value::Bool(false))
        .count();
    assert_eq!(disabled, 3);
    assert!(!s.deletions_held && s.held.is_none(), "{s:#?}");
    assert_eq!(
        hooks_at_least(&env, 2).await.last().unwrap().1["event"],
        "released"
    );
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approving_with_nothing_held_arms_nothing() {
    let env = env(10).await;
    let cfg = env.config("deletion_threshold = 2", 4);
    let mut service = Service::new(env.options());
    service
        .add_job(env.def(&cfg, Arc::new(MemoryStore::new())))
        .unwrap();
    let h = service.handle();
    wait_for(&h, "the initial cycle", idle_after(1)).await;
    let out = h.approve_deletions("app", None).await.unwrap();
    assert_eq!(out, ApproveOutcome::NothingHeld);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(
        h.status("app").unwrap().cycles_run,
        1,
        "nothing to send: no cycle"
    );

    // A later mass deprovisioning is held all the same.
    for u in env.enabled_users().iter().take(3) {
        env.graph.soft_delete_user(u["id"].as_str().unwrap());
    }
    env.target.clear_requests();
    h.run_now("app").await.unwrap();
    let s = wait_for(&h, "the held cycle", idle_after(2)).await;
    assert_eq!(s.state, JobState::WaitingForApproval, "{s:#?}");
    assert_eq!(s.held.as_ref().map(|h| h.count), Some(3));
    assert!(env.target.writes().is_empty(), "{:?}", env.target.writes());
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provision_on_demand_changes_only_that_user() {
    let env = env(6).await;
    let cfg = env.config("", 4);
    let mut service = Service::new(env.options());
    service
        .add_job(env.def(&cfg, Arc::new(MemoryStore::new())))
        .unwrap();
    let h = service.handle();
    wait_for(&h, "the initial cycle", idle_after(1)).await;

    let users = env.enabled_users();
    let (a, b) = (&users[0], &users[1]);
    let a_id = a["id"].as_str().unwrap();
    env.graph
        .update_user(a_id, serde_json::json!({"displayName": "Alpha Renamed"}));
    env.graph.update_user(
        b["id"].as_str().unwrap(),
        serde_json::json!({"displayName": "Beta Renamed"}),
    );
    env.target.clear_requests();

    let dry = h
        .provision("app", Subject::User(a_id.into()), true)
        .await
        .unwrap();
    assert_eq!(dry.len(), 1);
    assert!(env.target.writes().is_empty(), "a dry run writes nothing");
    let steps = dry[0]["steps"].as_array().unwrap();
    assert!(steps.len() >= 3, "import, scope, match, action: {steps:?}");

    let upn = a["userPrincipalName"].as_str().unwrap();
    let out = h
        .provision("app", Subject::User(upn.into()), false)
        .await
        .unwrap();
    assert_eq!(out[0]["action"]["action"], "update", "{out:?}");
    let writes = env.target.writes();
    assert_eq!(writes.len(), 1, "{writes:?}");
    let a_target = env.target.user_by_username(upn).unwrap();
    assert!(writes[0].path().ends_with(a_target["id"].as_str().unwrap()));
    assert_eq!(a_target["displayName"], "Alpha Renamed");
    let b_target = env
        .target
        .user_by_username(b["userPrincipalName"].as_str().unwrap())
        .unwrap();
    assert_ne!(b_target["displayName"], "Beta Renamed");
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_mid_cycle_then_restart_loses_and_duplicates_nothing() {
    let env = env(150).await;
    let cfg = env.config("", 1);
    let state = env.dir.path().join("state");
    let open = || Arc::new(SledStore::open(&state).unwrap().0);

    let mut service = Service::new(env.options());
    service.add_job(env.def(&cfg, open())).unwrap();
    let h = service.handle();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while env.target.users().len() < 10 {
        assert!(std::time::Instant::now() < deadline, "no progress");
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    // SIGTERM: the service cancels; the cycle in flight is dropped at an await point.
    service.shutdown().await;
    let created_before = env.target.users().len();
    let expected = env.enabled_users().len();
    assert!(
        created_before < expected,
        "the cycle was interrupted ({created_before} of {expected})"
    );
    assert_eq!(h.status("app").unwrap().cycles_run, 0);
    drop(h);

    // A second process on the same state: the lock was released, nothing is lost.
    let mut service = Service::new(env.options());
    service.add_job(env.def(&cfg, open())).unwrap();
    let h = service.handle();
    let s = wait_for(&h, "the resumed cycle", idle_after(1)).await;
    assert_eq!(s.state, JobState::Idle, "{s:#?}");
    let users = env.target.users();
    assert_eq!(users.len(), expected, "every user provisioned");
    let mut names: Vec<&str> = users
        .iter()
        .map(|u| u["userName"].as_str().unwrap())
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), expected, "no duplicates");
    let creates = env
        .target
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.status == 201)
        .count();
    assert_eq!(creates, expected, "each user created exactly once");
    service.shutdown().await;
}

/// Issue 14: a leased job runs no cycle without its lease, runs once it is granted, drops a
/// cycle in flight when it is lost, and resumes on the committed state when granted again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leased_job_runs_only_while_it_holds_the_lease() {
    let env = env(150).await;
    let cfg = env.config("", 1);
    let store = Arc::new(MemoryStore::new());
    let (flag, lease) = tokio::sync::watch::channel(false);
    let mut service = Service::new(env.options());
    service
        .add_job_leased(env.def(&cfg, store.clone()), Some(lease))
        .unwrap();
    let h = service.handle();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(env.target.users().is_empty(), "no cycle without the lease");
    assert_eq!(h.status("app").unwrap().cycles_run, 0);

    flag.send(true).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while env.target.users().len() < 10 {
        assert!(std::time::Instant::now() < deadline, "no progress");
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    flag.send(false).unwrap();
    wait_for(&h, "the dropped cycle", |s| s.running_since.is_none()).await;
    let stopped_at = env.target.users().len();
    let expected = env.enabled_users().len();
    assert!(stopped_at < expected, "the cycle was cut short");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(env.target.users().len(), stopped_at, "nothing sent after");
    assert_eq!(h.status("app").unwrap().cycles_run, 0);

    flag.send(true).unwrap();
    wait_for(&h, "the resumed cycle", idle_after(1)).await;
    let mut names: Vec<String> = env
        .target
        .users()
        .iter()
        .map(|u| u["userName"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), expected, "every user once");
    service.shutdown().await;
}
