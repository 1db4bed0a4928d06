//! The dashboard end to end: cycles against the Graph and SCIM emulators (one object fails),
//! the admin router served on loopback, and the page loaded in headless Chromium filtered to
//! failures with one entry opened: the DOM shows the entry's error code and steps, and no
//! secret. Also the JSON endpoints behind it and `/metrics`.
//!
//! Needs Debian's `chromium`; without it the browser part is skipped with a message, unless
//! `CI` is set (then it fails). To refresh the screenshot in the repository:
//! `SCIMSYNC_WRITE_SCREENSHOT=1 cargo test -p scimsync-api --test dashboard` (writes
//! `docs/dashboard.png`).

use axum::body::Body;
use axum::http::{Request, StatusCode};
use scimsync_api::{JobStore, JobStores};
use scimsync_core::{Secret, StateStore, SystemClock};
use scimsync_engine::{Engine, JobSpec, Mode};
use scimsync_graph::{GraphClient, GraphConfig};
use scimsync_scim::{ScimClient, ScimClientConfig};
use scimsync_service::{JobDef, JobState, Service, ServiceOptions};
use scimsync_store::SledStore;
use scimsync_testkit::graph::{GraphEmulator, Tenant};
use scimsync_testkit::scim::{ScimTarget, ScimTargetOptions};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt;

const ADMIN_TOKEN: &str = "dashboard-admin-token-0123456789";

const JOB: &str = r#"name = "app"
schedule = "40m"
log_retention_days = 30

[source]
tenant_id = "TENANT"
client_id = "CLIENT"
client_secret = "literal-is-fine-in-tests"
scope = "all"
graph_url = "GRAPH"
login_url = "GRAPH"

[target]
url = "SCIM"
token = "file:TOKENFILE"
max_concurrency = 1

[[users.mappings]]
target = "userName"
source = "userPrincipalName"
matching = 1

[[users.mappings]]
target = "displayName"
source = "displayName"
"#;

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            let out = Command::new("which").arg(name).output().ok()?;
            let path = String::from_utf8(out.stdout).ok()?.trim().to_string();
            (out.status.success() && !path.is_empty()).then(|| PathBuf::from(path))
        })
}

/// Run headless Chromium on `url` with `extra` flags; returns stdout.
fn run_chromium(bin: &Path, profile: &Path, url: &str, extra: &[&str]) -> String {
    let out = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--virtual-time-budget=8000",
            "--window-size=1280,1260",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn get(app: &axum::Router, path: &str) -> (StatusCode, String) {
    let resp = app
        .clone()
        .oneshot(
            Request::get(path)
                .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 24)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

async fn get_json(app: &axum::Router, path: &str) -> Value {
    let (status, body) = get(app, path).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// The part of the page's HTML between `start` and the next `end`.
fn slice<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let from = html
        .find(start)
        .unwrap_or_else(|| panic!("{start} not in the page:\n{html}"));
    let rest = &html[from..];
    &rest[..rest.find(end).unwrap_or(rest.len())]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_filters_the_log_and_opens_a_failed_entry() {
    scimsync_api::metrics::install_recorder();
    let graph = GraphEmulator::start(Tenant::generate("contoso.onmicrosoft.com", 6, 2, 7))
        .await
        .unwrap();
    let target = ScimTarget::start(ScimTargetOptions::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("scim-token");
    std::fs::write(&token_file, target.token()).unwrap();
    let text = JOB
        .replace("TENANT", graph.tenant_id())
        .replace("CLIENT", graph.client_id())
        .replace("GRAPH", &graph.url())
        .replace("SCIM", &target.url())
        .replace("TOKENFILE", &token_file.display().to_string());
    let cfg = scimsync_config::parse(&dir.path().join("app.toml"), &text)
        .unwrap_or_else(|e| panic!("{e:?}"))
        .job;
    let spec = JobSpec::from_config(&cfg);
    let mut gc = GraphConfig::new(
        graph.tenant_id(),
        graph.client_id(),
        Secret::inline(graph.client_secret()),
    );
    gc.graph_url = graph.url();
    gc.login_url = graph.url();
    let source = GraphClient::new(gc).unwrap();
    let mut sc = ScimClientConfig::new(target.url(), Secret::inline(target.token()));
    sc.max_concurrency = 1;
    sc.max_retries = 0;
    let scim = ScimClient::new(sc).unwrap();
    let store_dir = dir.path().join("state").join("app");
    let (store, _) = SledStore::open(&store_dir).unwrap();
    let store = Arc::new(store);

    // Three cycles as `run` does them (the engine records each in the history): the first
    // with one rejected request, then an update, then nothing to do.
    {
        let engine = Engine::new(&spec, &source, &scim, &*store, &SystemClock);
        target.fail_next(1, 400);
        let first = engine.run(Mode::Apply).await.unwrap();
        assert!(first.tally.failed >= 1, "{:?}", first.tally);
        let someone = graph.users()[0]["id"].as_str().unwrap().to_string();
        graph.update_user(&someone, json!({"displayName": "Renamed Person"}));
        for _ in 0..2 {
            engine.run(Mode::Apply).await.unwrap();
        }
    }

    // The service on the same store, as `serve` runs it; it runs one cycle at start.
    let mut service = Service::new(ServiceOptions::system());
    service
        .add_job(JobDef::from_config(
            &cfg,
            source,
            scim,
            Arc::clone(&store),
            Arc::new(scimsync_service::notify::NoNotifier),
        ))
        .unwrap();
    let handle = service.handle();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(handle.status("app").unwrap().cycles_run >= 1
        && handle.status("app").unwrap().state != JobState::Running)
    {
        assert!(Instant::now() < deadline, "the service ran no cycle");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stores = JobStores::new(BTreeMap::from([(
        "app".to_string(),
        JobStore {
            store: store.clone() as Arc<dyn StateStore>,
            dir: Some(store_dir.clone()),
        },
    )]));
    let app = scimsync_api::with_stores(
        scimsync_api::router(handle.clone(), Some(Secret::inline(ADMIN_TOKEN))),
        stores,
    );

    // The JSON behind the page.
    let failures = get_json(&app, "/api/jobs/app/logs?status=failure").await;
    let entries = failures["entries"].as_array().unwrap();
    assert!(!entries.is_empty(), "{failures}");
    assert!(entries.iter().all(|e| e["status"] == "failure"));
    let failed = &entries[0];
    let id = failed["id"].as_str().unwrap().to_string();
    let code = failed["errorCode"].as_str().unwrap().to_string();
    let step = failed["provisioningSteps"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()["description"]
        .as_str()
        .unwrap()
        .to_string();
    let one = get_json(&app, &format!("/api/jobs/app/logs/{id}")).await;
    assert_eq!(one["id"], failed["id"]);
    let (status, _) = get(&app, "/api/jobs/app/logs?status=exploded").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let history = get_json(&app, "/api/jobs/app/history").await;
    // Three from `run`, one from the service, which records its cycles too.
    assert_eq!(history["cycles"].as_array().unwrap().len(), 4, "{history}");
    let failed_to_date: u64 = history["totals"]["operations"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|by_status| by_status["failure"].as_u64())
        .sum();
    assert!(failed_to_date >= 1, "{history}");
    let failed_action = failed["provisioningAction"]
        .as_str()
        .unwrap()
        .to_lowercase();
    let current = get_json(&app, "/api/jobs/app/current").await;
    assert_eq!(
        current["objectsManaged"],
        json!(store.list("app").unwrap().len())
    );
    assert!(current["lastCycle"]["cycleId"].is_string(), "{current}");

    let (status, metrics) = get(&app, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    let failure_metric = format!(
        "scimsync_operations_total{{job=\"app\",action=\"{failed_action}\",status=\"failure\"}}"
    );
    assert!(
        metrics.contains(&failure_metric),
        "{failure_metric} missing:\n{metrics}"
    );
    for needle in [
        "scimsync_scim_request_duration_seconds_bucket",
        "scimsync_graph_request_duration_seconds_bucket",
        "scimsync_cycle_duration_seconds_count{job=\"app\"} 4",
        "scimsync_escrow_size{job=\"app\"}",
        "scimsync_quarantined{job=\"app\",reason=\"\"} 0",
        "scimsync_store_size_bytes{job=\"app\"}",
    ] {
        assert!(
            metrics.contains(needle),
            "{needle} missing from:\n{metrics}"
        );
    }
    // The page needs no token, the data does.
    let page = app
        .clone()
        .oneshot(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let (status, _) = {
        let r = app
            .clone()
            .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
            .await
            .unwrap();
        (r.status(), ())
    };
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // The browser.
    let Some(bin) = chromium() else {
        if std::env::var_os("CI").is_some() {
            panic!(
                "chromium is not installed, and CI needs the browser test: apt-get install chromium"
            );
        }
        eprintln!("SKIPPED the browser part: chromium is not installed (apt-get install chromium)");
        return;
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = app.clone();
    tokio::spawn(async move { axum::serve(listener, served).await });
    let url = format!("http://{addr}/#token={ADMIN_TOKEN}&job=app&status=failure&entry={id}");
    let profile = tempfile::tempdir().unwrap();
    let (bin2, profile_path, url2) = (bin.clone(), profile.path().to_path_buf(), url.clone());
    let dom = tokio::task::spawn_blocking(move || {
        run_chromium(&bin2, &profile_path, &url2, &["--dump-dom"])
    })
    .await
    .unwrap();

    assert!(
        dom.contains("data-loaded=\"true\""),
        "the page did not load its data:\n{dom}"
    );
    let log = slice(&dom, "<table id=\"log\"", "</table>");
    assert!(log.contains(&format!("data-entry=\"{id}\"")), "{log}");
    assert!(log.contains("s-failure"), "{log}");
    assert!(
        !log.contains("s-success"),
        "the filter let successes through:\n{log}"
    );
    let detail = slice(&dom, "<section class=\"wide\" id=\"detail\"", "</section>");
    assert!(
        !detail.contains(" hidden"),
        "the entry is not open:\n{detail}"
    );
    assert!(
        detail.contains(&code),
        "error code {code} missing:\n{detail}"
    );
    assert!(detail.contains(&step), "step {step:?} missing:\n{detail}");
    assert!(detail.contains("class=\"step\""), "{detail}");
    let jobs = slice(&dom, "<table id=\"jobs\"", "</table>");
    assert!(jobs.contains(">app<"), "{jobs}");
    let chart = slice(&dom, "<svg id=\"chart\"", "</svg>");
    assert!(chart.matches("<rect").count() >= 6, "{chart}");
    for secret in [ADMIN_TOKEN, target.token(), graph.client_secret()] {
        assert!(!dom.contains(secret), "a secret reached the page");
    }

    // A screenshot of the same view: it renders, and refreshes docs/dashboard.png on request.
    let shot = profile.path().join("dashboard.png");
    let shot_arg = format!("--screenshot={}", shot.display());
    let profile2 = tempfile::tempdir().unwrap();
    let p2 = profile2.path().to_path_buf();
    tokio::task::spawn_blocking(move || run_chromium(&bin, &p2, &url, &[&shot_arg]))
        .await
        .unwrap();
    let png = std::fs::read(&shot).expect("chromium wrote the screenshot");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000);
    if std::env::var_os("SCIMSYNC_WRITE_SCREENSHOT").is_some() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/dashboard.png");
        std::fs::create_dir_all(docs.parent().unwrap()).unwrap();
        std::fs::write(&docs, &png).unwrap();
        eprintln!("wrote {}", docs.display());
    }
    service.shutdown().await;
}
