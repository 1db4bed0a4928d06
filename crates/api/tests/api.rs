//! The admin API: every endpoint refuses a request without the bearer token (401 with a JSON
//! error), and with it the endpoints reach the running job.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use scimsync_core::{Secret, UserScope};
use scimsync_engine::JobSpec;
use scimsync_service::{JobDef, ManualTime, PlainRender, Service, ServiceOptions};
use scimsync_store::MemoryStore;
use scimsync_testkit::doubles::{MemorySource, MemoryTarget};
use serde_json::Value;
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
    ("POST", "/api/jobs/app/provision"),
    ("POST", "/api/jobs/app/preview"),
    ("GET", "/api/jobs/app/escrows"),
    ("GET", "/no/such/path"),
];

fn service() -> Service {
    let time = ManualTime::new(
        chrono::DateTime::parse_from_rfc3339("2026-03-02T09:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc),
    );
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
            spec: JobSpec::new("app", UserScope::All, Vec::new()),
            source: MemorySource::new(Vec::new()),
            target: MemoryTarget::new(),
            store: Arc::new(MemoryStore::new()),
            notifier: Arc::new(scimsync_service::notify::NoNotifier),
            render: Arc::new(PlainRender),
            log_retention_days: 30,
        })
        .unwrap();
    service
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
    let app = scimsync_api::router(service.handle(), Some(Secret::inline(TOKEN)));
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
    let closed = scimsync_api::router(service.handle(), None);
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
    let (status, body) = call(&app, "GET", "/api/jobs/app/escrows", auth, "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["escrows"], Value::Array(Vec::new()));
    service.shutdown().await;
}
