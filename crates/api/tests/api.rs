//! The admin API: every endpoint refuses a request without the bearer token (401 with a JSON
//! error), and with it the endpoints reach the running job.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use scimsync_config::{Apply, Mapping, MappingValue};
use scimsync_core::{Secret, SourceUser, UserScope};
use scimsync_engine::{Engine, JobSpec, JobState, Mode};
use scimsync_service::{JobDef, ManualTime, PlainRender, Service, ServiceOptions};
use scimsync_store::MemoryStore;
use scimsync_testkit::doubles::{MemorySource, MemoryTarget};
use serde_json::{Value, json};
use std::sync::Arc;
use tower::ServiceExt;

const TOKEN: &str = "admin-token-for-tests";

const ENDPOINTS: &[(&str, &str)] = &[
    ("GET", "/api/jobs"),
    ("GET", "/api/jobs/app"),
    ("POST", "/api/jobs/app/start"),
    ("POST", "/api/jobs/app/stop"),
    ("POST", "/api/jobs/app/pause"),
    ("POST", "/api/jobs/app/run"),
    ("POST", "/api/jobs/app/restart"),
    ("POST", "/api/jobs/app/approve-deletions"),
    ("GET", "/api/jobs/app/held"),
    ("POST", "/api/jobs/app/provision"),
    ("POST", "/api/jobs/app/preview"),
    ("GET", "/api/jobs/app/escrows"),
    ("GET", "/no/such/path"),
];

fn time() -> Arc<ManualTime> {
    ManualTime::new(
        chrono::DateTime::parse_from_rfc3339("2026-03-02T09:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc),
    )
}

fn service_of(
    time: Arc<ManualTime>,
    spec: JobSpec,
    source: MemorySource,
    target: MemoryTarget,
    store: Arc<MemoryStore>,
) -> Service {
    let mut service = Service::new(ServiceOptions {
        clock: time.clone(),
        sleeper: time,
        shutdown_grace: std::time::Duration::ZERO,
    });
    service
        .add_job(JobDef {
            name: "app".into(),
            schedule: scimsync_config::Schedule::default(),
            quarantine: scimsync_config::Quarantine::default(),
            spec,
            source,
            target,
            store,
            notifier: Arc::new(scimsync_service::notify::NoNotifier),
            render: Arc::new(PlainRender),
        })
        .unwrap();
    service
}

fn service() -> Service {
    service_with(Arc::new(MemoryStore::new()))
}

fn service_with(store: Arc<MemoryStore>) -> Service {
    service_of(
        time(),
        JobSpec::new("app", UserScope::All, Vec::new()),
        MemorySource::new(Vec::new()),
        MemoryTarget::new(),
        store,
    )
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
        line: 1,
    }
}

fn person(n: usize) -> SourceUser {
    let attrs = json!({
        "userPrincipalName": format!("person{n:02}@contoso.example"),
        "displayName": format!("Person {n:02}"),
        "accountEnabled": true,
    });
    SourceUser {
        id: format!("u{n:02}"),
        attrs: attrs.as_object().unwrap().clone().into_iter().collect(),
    }
}

/// A job with ten users provisioned whose last cycle held four disables (threshold 2); the
/// service then holds them again in its first cycle.
async fn service_with_held_disables(store: Arc<MemoryStore>) -> Service {
    let time = time();
    let mut spec = JobSpec::new(
        "app",
        UserScope::All,
        vec![
            mapping("userName", "userPrincipalName", Some(1)),
            mapping("displayName", "displayName", None),
        ],
    );
    spec.deletion_threshold = 2;
    let source = MemorySource::new((1..=10).map(person).collect());
    let target = MemoryTarget::new();
    {
        let engine = Engine::new(&spec, &source, &target, &*store, &*time);
        let first = engine.run(Mode::Apply).await.unwrap();
        assert_eq!(first.tally.created, 10);
        source.edit(|s| {
            let gone: Vec<String> = s.users.iter().take(4).map(|u| u.id.clone()).collect();
            s.users.retain(|u| !gone.contains(&u.id));
            s.soft_deleted.extend(gone);
        });
        let second = engine.run(Mode::Apply).await.unwrap();
        assert!(second.deletions_held, "{:?}", second.tally);
    }
    service_of(time, spec, source, target, store)
}

async fn wait_idle(app: &axum::Router, auth: Option<&str>, cycles: u64) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (_, s) = call(app, "GET", "/api/jobs/app", auth, "").await;
        if s["cyclesRun"].as_u64().unwrap_or(0) >= cycles && s["state"] != "running" {
            return s;
        }
        assert!(std::time::Instant::now() < deadline, "no cycle: {s}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

async fn call(
    app: &axum::Router,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: &str,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_needs_the_bearer_token() {
    let service = service();
    // Some fifty failures in a row: without a higher limit the 11th would be 429 (that limit
    // has its own tests in tests/tls.rs).
    let options = scimsync_api::Options {
        auth_limit: scimsync_api::AuthLimit {
            max_failures: 1000,
            ..Default::default()
        },
        ..Default::default()
    };
    let app = scimsync_api::router_with(
        service.handle(),
        Some(Secret::inline(TOKEN)),
        options.clone(),
    );
    let wrong = format!("Bearer {TOKEN}x");
    for (method, path) in ENDPOINTS {
        for auth in [None, Some("Bearer "), Some(wrong.as_str()), Some(TOKEN)] {
            let (status, body) = call(&app, method, path, auth, "").await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {auth:?}"
            );
            assert_eq!(body["error"]["code"], "Unauthorized", "{method} {path}");
        }
    }
    // Without a configured token nothing is open.
    let closed = scimsync_api::router_with(service.handle(), None, options);
    for (method, path) in ENDPOINTS {
        let bearer = format!("Bearer {TOKEN}");
        let (status, _) = call(&closed, method, path, Some(&bearer), "").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
    }
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_token_the_endpoints_reach_the_job() {
    let service = service();
    let app = scimsync_api::router(service.handle(), Some(Secret::inline(TOKEN)));
    let auth = Some(format!("Bearer {TOKEN}"));
    let auth = auth.as_deref();

    let (status, body) = call(&app, "GET", "/api/jobs", auth, "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["jobs"][0]["name"], "app");
    assert_eq!(body["jobs"][0]["schedule"], "40m");

    let (status, body) = call(&app, "POST", "/api/jobs/app/stop", auth, "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "off");
    let (_, body) = call(&app, "POST", "/api/jobs/app/pause", auth, "").await;
    assert_eq!(body["state"], "paused");
    let (_, body) = call(&app, "POST", "/api/jobs/app/start", auth, "").await;
    assert_ne!(body["state"], "paused");

    let (status, body) = call(&app, "GET", "/api/jobs/nope", auth, "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "UnknownJob");

    let (status, body) = call(
        &app,
        "POST",
        "/api/jobs/app/restart",
        auth,
        r#"{"scopes":["watermark","escrows"]}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["watermarkCleared"], true);
    let (status, _) = call(
        &app,
        "POST",
        "/api/jobs/app/restart",
        auth,
        r#"{"scopes":["everything"]}"#,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, _) = call(&app, "POST", "/api/jobs/app/provision", auth, "{}").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = call(
        &app,
        "POST",
        "/api/jobs/app/provision",
        auth,
        r#"{"user":"nobody@contoso.com","dryRun":true}"#,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    let (status, body) = call(&app, "POST", "/api/jobs/app/preview", auth, "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["mode"], "preview");

    let (status, body) = call(&app, "POST", "/api/jobs/app/approve-deletions", auth, "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"], "nothingHeld", "{body}");
    let (status, _) = call(
        &app,
        "POST",
        "/api/jobs/app/approve-deletions",
        auth,
        r#"{"everything":true}"#,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = call(&app, "GET", "/api/jobs/app/escrows", auth, "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["escrows"], Value::Array(Vec::new()));
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approving_with_nothing_held_arms_nothing() {
    let store = Arc::new(MemoryStore::new());
    let service = service_with(Arc::clone(&store));
    let app = scimsync_api::router(service.handle(), Some(Secret::inline(TOKEN)));
    let auth = format!("Bearer {TOKEN}");
    let auth = Some(auth.as_str());
    wait_idle(&app, auth, 1).await;

    for body in ["", r#"{"fingerprint":"0123456789abcdef"}"#] {
        let (status, v) = call(&app, "POST", "/api/jobs/app/approve-deletions", auth, body).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        assert_eq!(v["result"], "nothingHeld", "{v}");
        assert!(
            v["message"]
                .as_str()
                .unwrap()
                .contains("nothing is held for job app"),
            "{v}"
        );
        assert_eq!(v["status"]["deletionsHeld"], false, "{v}");
        assert!(
            JobState::new(&*store, "app").approval().unwrap().is_none(),
            "nothing armed"
        );
    }
    let (status, v) = call(&app, "GET", "/api/jobs/app/held", auth, "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(v["held"].is_null(), "{v}");
    // No cycle ran for it: there was nothing to send.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let (_, s) = call(&app, "GET", "/api/jobs/app", auth, "").await;
    assert_eq!(s["cyclesRun"], 1, "{s}");
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_the_held_set_and_only_its_fingerprint_approves_it() {
    let store = Arc::new(MemoryStore::new());
    let service = service_with_held_disables(Arc::clone(&store)).await;
    let app = scimsync_api::router(service.handle(), Some(Secret::inline(TOKEN)));
    let auth = format!("Bearer {TOKEN}");
    let auth = Some(auth.as_str());

    // The service's first cycle holds the same four disables again.
    let s = wait_idle(&app, auth, 1).await;
    assert_eq!(s["state"], "waitingForApproval", "{s}");
    assert_eq!(s["deletionsHeld"], true, "{s}");
    assert_eq!(s["held"]["count"], 4, "{s}");
    assert_eq!(s["held"]["disables"], 4, "{s}");
    assert!(
        s["held"]["reasons"][0]
            .as_str()
            .unwrap()
            .contains("deletion threshold of 2"),
        "{s}"
    );
    assert_eq!(s["quarantine"]["reason"], "TooManyDeletes", "{s}");
    assert_eq!(s["lastCycle"]["held"], 4, "{s}");
    let fingerprint = s["held"]["fingerprint"].as_str().unwrap().to_string();
    let (_, current) = call(&app, "GET", "/api/jobs/app/current", auth, "").await;
    assert_eq!(current["held"]["count"], 4, "{current}");

    let (status, v) = call(&app, "GET", "/api/jobs/app/held", auth, "").await;
    assert_eq!(status, StatusCode::OK);
    let ops = v["held"]["ops"].as_array().unwrap();
    assert_eq!(ops.len(), 4, "{v}");
    assert!(ops.iter().all(|o| o["action"] == "disable"), "{v}");
    assert!(
        ops.iter()
            .any(|o| o["displayName"] == "person01@contoso.example"),
        "{v}"
    );
    assert_eq!(v["held"]["fingerprint"], json!(fingerprint));

    // A stale fingerprint: 409, both fingerprints, nothing armed, no cycle.
    let (status, v) = call(
        &app,
        "POST",
        "/api/jobs/app/approve-deletions",
        auth,
        r#"{"fingerprint":"0123456789abcdef"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"]["code"], "HeldSetChanged", "{v}");
    assert_eq!(v["result"], "mismatch", "{v}");
    assert_eq!(v["held"]["fingerprint"], json!(fingerprint), "{v}");
    assert_eq!(v["expected"], "0123456789abcdef", "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&fingerprint) && message.contains("0123456789abcdef"),
        "{message}"
    );
    assert!(JobState::new(&*store, "app").approval().unwrap().is_none());
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let (_, s) = call(&app, "GET", "/api/jobs/app", auth, "").await;
    assert_eq!(
        (s["cyclesRun"].as_u64(), s["deletionsHeld"].as_bool()),
        (Some(1), Some(true))
    );

    // The fingerprint shown: approved, the wait lifted, a cycle sends exactly those four.
    let body = json!({"fingerprint": fingerprint}).to_string();
    let (status, v) = call(&app, "POST", "/api/jobs/app/approve-deletions", auth, &body).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["result"], "approved", "{v}");
    assert_eq!(v["held"]["ops"].as_array().unwrap().len(), 4, "{v}");
    assert!(v["status"]["quarantine"].is_null(), "{v}");
    let s = wait_idle(&app, auth, 2).await;
    assert_eq!(s["deletionsHeld"], false, "{s}");
    assert!(s["held"].is_null(), "{s}");
    assert_eq!(s["lastCycle"]["tally"]["disabled"], 4, "{s}");
    assert_eq!(s["state"], "idle", "{s}");
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_answers_liveness_without_the_token_and_nothing_else() {
    let service = service();
    let app = scimsync_api::router(service.handle(), Some(Secret::inline(TOKEN)));
    let bearer = format!("Bearer {TOKEN}");
    for auth in [None, Some("Bearer wrong"), Some(bearer.as_str())] {
        let (status, body) = call(&app, "GET", "/healthz", auth, "").await;
        assert_eq!(status, StatusCode::OK, "{auth:?}");
        assert_eq!(body, serde_json::json!({"status": "ok"}));
    }
    // Even a router that refuses everything else is alive; and only GET is open.
    let closed = scimsync_api::router(service.handle(), None);
    assert_eq!(
        call(&closed, "GET", "/healthz", None, "").await.0,
        StatusCode::OK
    );
    assert_eq!(
        call(&closed, "POST", "/healthz", None, "").await.0,
        StatusCode::METHOD_NOT_ALLOWED
    );
    // Many probes without a token never trip the failed-authentication limit.
    for _ in 0..30 {
        assert_eq!(
            call(&app, "GET", "/healthz", None, "").await.0,
            StatusCode::OK
        );
    }
    assert_eq!(
        call(&app, "GET", "/api/jobs", Some(&bearer), "").await.0,
        StatusCode::OK
    );
    service.shutdown().await;
}
