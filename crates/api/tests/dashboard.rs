//! The dashboard end to end: cycles against the Graph and SCIM emulators (one object fails),
//! the admin router served on loopback, and the page loaded in headless Chromium filtered to
//! failures with one entry opened: the DOM shows the entry's error code and steps, and no
//! secret. Also the JSON endpoints behind it and `/metrics`.
//!
//! A second test drives the page through the Chrome DevTools Protocol and clicks every
//! action — pause, start, provision on demand, run now, review and approve held deletions,
//! restart with scopes (full after its confirmation), CSV download of the filtered log — and
//! checks what the page shows and what the service did.
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

mod cdp;

const ADMIN_TOKEN: &str = "dashboard-admin-token-0123456789";

const JOB: &str = r#"name = "app"
schedule = "40m"
log_retention_days = 30
deletion_threshold = 2

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

/// The graph id of the user with this UPN (case-insensitive).
fn graph_id(graph: &GraphEmulator, upn: &str) -> String {
    graph
        .users()
        .iter()
        .find(|u| {
            u["userPrincipalName"]
                .as_str()
                .is_some_and(|x| x.eq_ignore_ascii_case(upn))
        })
        .and_then(|u| u["id"].as_str())
        .unwrap_or_else(|| panic!("no user {upn}"))
        .to_string()
}

/// Wait (off the browser) until `ok` holds for the job's status.
async fn until(
    handle: &scimsync_service::ServiceHandle,
    what: &str,
    ok: impl Fn(&scimsync_service::JobStatus) -> bool,
) -> scimsync_service::JobStatus {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = handle.status("app").unwrap();
        if ok(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_actions_click_through_and_reach_the_service() {
    let Some(bin) = chromium() else {
        if std::env::var_os("CI").is_some() {
            panic!("chromium is not installed, and CI needs the browser test");
        }
        eprintln!("SKIPPED: chromium is not installed (apt-get install chromium)");
        return;
    };
    let graph = GraphEmulator::start(Tenant::generate("contoso.onmicrosoft.com", 8, 2, 11))
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
    let mut gc = GraphConfig::new(
        graph.tenant_id(),
        graph.client_id(),
        Secret::inline(graph.client_secret()),
    );
    gc.graph_url = graph.url();
    gc.login_url = graph.url();
    let source = GraphClient::new(gc).unwrap();
    let mut sc = ScimClientConfig::new(target.url(), Secret::inline(target.token()));
    sc.max_retries = 0;
    let scim = ScimClient::new(sc).unwrap();
    let store_dir = dir.path().join("state").join("app");
    let (store, _) = SledStore::open(&store_dir).unwrap();
    let store = Arc::new(store);
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
    until(&handle, "the first cycle", |s| {
        s.cycles_run >= 1 && s.state != JobState::Running
    })
    .await;
    let provisioned = target.users().len();
    assert!(provisioned >= 5, "{provisioned}");
    let app = scimsync_api::with_stores(
        scimsync_api::router(handle.clone(), Some(Secret::inline(ADMIN_TOKEN))),
        JobStores::new(BTreeMap::from([(
            "app".to_string(),
            JobStore {
                store: store.clone() as Arc<dyn StateStore>,
                dir: Some(store_dir.clone()),
            },
        )])),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = app.clone();
    tokio::spawn(async move { axum::serve(listener, served).await });

    let profile = tempfile::tempdir().unwrap();
    let downloads = tempfile::tempdir().unwrap();
    let mut b = cdp::Browser::launch(&bin, profile.path(), &[("TZ", "Asia/Tokyo")]);
    b.open_tab();
    b.allow_downloads(downloads.path());
    b.send(
        "Emulation.setTimezoneOverride",
        json!({"timezoneId": "Asia/Tokyo"}),
    );
    b.navigate(&format!("http://{addr}/#token={ADMIN_TOKEN}&job=app"));
    b.wait(
        "document.body.dataset.loaded === 'true'",
        "the page to load",
    );

    // One time zone, the browser's, labelled; log times converted to it.
    assert_eq!(b.text("#tz"), "times in Asia/Tokyo (this browser)");
    let logs = get_json(&app, "/api/jobs/app/logs?limit=1").await;
    let newest = &logs["entries"][0];
    let at = chrono::DateTime::parse_from_rfc3339(newest["activityDateTime"].as_str().unwrap())
        .unwrap()
        .with_timezone(&chrono::FixedOffset::east_opt(9 * 3600).unwrap());
    let first_time = b.wait(
        "(document.querySelector('#log tbody tr td') || {}).innerText",
        "the log",
    );
    assert_eq!(
        first_time,
        json!(at.format("%Y-%m-%d %H:%M:%S").to_string())
    );
    assert!(b.text("#log thead").contains("Time (Asia/Tokyo)"));
    // Idle: no progress bar; not quarantined: "none".
    let visible =
        |id: &str| format!("getComputedStyle(document.getElementById('{id}')).display !== 'none'");
    assert_eq!(b.eval(&visible("cur-barwrap")), json!(false));
    assert_eq!(b.eval(&visible("restart-confirm")), json!(false));
    assert_eq!(b.eval(&visible("held-set")), json!(false));
    assert_eq!(b.text("#jobs td.quarantine"), "none");
    assert!(
        b.text("#cur-facts").contains("Quarantine\tnone")
            || b.text("#cur-facts").contains("Quarantine\nnone"),
        "{}",
        b.text("#cur-facts")
    );

    // Pause, then start.
    b.click_expecting(
        "#act-pause",
        "document.getElementById('act-result').innerText.startsWith('Paused app')",
        "pause",
    );
    assert_eq!(handle.status("app").unwrap().state, JobState::Paused);
    b.click_expecting(
        "#act-start",
        "document.getElementById('act-result').innerText.startsWith('Started app')",
        "start",
    );
    until(&handle, "the job to run again", |s| {
        s.state != JobState::Paused
    })
    .await;

    // Provision on demand: one user, its steps shown, the change sent.
    let upn = target.users()[0]["userName"].as_str().unwrap().to_string();
    graph.update_user(
        &graph_id(&graph, &upn),
        json!({"displayName": "On Demand Person"}),
    );
    b.fill("#provision-form input[name=user]", &upn);
    // Provisioning the same user again changes nothing more: idempotent.
    b.click_expecting(
        "#act-provision",
        "document.getElementById('provision-status').innerText.startsWith('Provisioned')",
        "provision on demand",
    );
    let steps = b.eval("document.querySelectorAll('#provision-result li.step').length");
    assert!(steps.as_u64().unwrap() >= 3, "{steps}");
    let shown = b.text("#provision-result");
    assert!(
        shown.to_lowercase().contains(&upn.to_lowercase()),
        "{shown}"
    );
    assert!(
        target
            .users()
            .iter()
            .any(|u| u["displayName"] == "On Demand Person"),
        "the on-demand update reached the app"
    );

    // Three users disabled in the tenant: "Run now" runs a cycle that holds the disables.
    let victims: Vec<String> = target
        .users()
        .iter()
        .skip(1)
        .take(3)
        .map(|u| u["userName"].as_str().unwrap().to_string())
        .collect();
    for upn in &victims {
        graph.disable_user(&graph_id(&graph, upn));
    }
    let before = handle.status("app").unwrap().cycles_run;
    b.click("#act-run");
    b.wait(
        "document.getElementById('act-result').innerText.startsWith('Run now')",
        "run now",
    );
    let st = until(&handle, "the held cycle", |s| {
        s.cycles_run > before && s.state != JobState::Running
    })
    .await;
    assert!(st.deletions_held, "{st:?}");
    b.wait(
        "document.getElementById('held-summary').dataset.held === '3'",
        "the held count",
    );
    b.wait(
        "document.querySelector('#jobs tbody').innerText.includes('held 3 — waiting for approval')",
        "the held badge in the jobs table",
    );

    // The held set is shown before it can be approved, and approval names its fingerprint.
    b.click_expecting(
        "#act-held",
        "document.querySelectorAll('#held-ops tbody tr').length === 3",
        "the held set",
    );
    let shown = b.text("#held-ops");
    let held = get_json(&app, "/api/jobs/app/held").await;
    for op in held["held"]["ops"].as_array().unwrap() {
        let name = op["displayName"].as_str().unwrap();
        assert!(
            shown.contains(name) && shown.contains("disable"),
            "{name}: {shown}"
        );
    }
    assert_eq!(
        b.text("#held-fp"),
        held["held"]["fingerprint"].as_str().unwrap()
    );
    // Approved, the service runs a cycle at once, which sends exactly these.
    let before = handle.status("app").unwrap().cycles_run;
    b.click("#act-approve");
    b.wait(
        "document.getElementById('approve-result').innerText.startsWith('Approved 3')",
        "approval",
    );
    until(&handle, "the approved cycle", |s| {
        s.cycles_run > before && s.state != JobState::Running
    })
    .await;
    let inactive = target
        .users()
        .iter()
        .filter(|u| u["active"] == json!(false))
        .count();
    assert_eq!(inactive, 3, "the approved disables were sent");
    b.wait(
        "document.getElementById('held-summary').dataset.held === '0'",
        "nothing held",
    );

    // Restart with the default scopes: the service runs a cycle at once, reading everything.
    let before = handle.status("app").unwrap().cycles_run;
    b.click("#act-restart");
    b.wait(
        "document.getElementById('act-result').innerText.startsWith('Restarted app (watermark, escrows, quarantine)')",
        "restart",
    );
    let st = until(&handle, "the cycle after restart", |s| {
        s.cycles_run > before && s.state != JobState::Running
    })
    .await;
    assert!(
        st.last_cycle.unwrap().full_read,
        "a restart clears the watermark"
    );

    // CSV of the filtered log: the file the browser saved is the API's CSV for that filter.
    b.eval("document.querySelector('#filters select[name=status]').value = 'success'");
    b.click("#act-csv");
    b.wait(
        "(document.getElementById('logcount').dataset.csvRows || '') !== ''",
        "the CSV",
    );
    let file = downloads.path().join("app-provisioning-log.csv");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !file.exists() {
        assert!(Instant::now() < deadline, "no CSV downloaded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let csv = std::fs::read_to_string(&file).unwrap();
    let (status, api_csv) = get(&app, "/api/jobs/app/logs.csv?status=success").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(csv, api_csv);
    // The approved disables carry no error, yet their Reason says why (the rule `logs` uses).
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header = reader.headers().unwrap().clone();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (action, reason) = (col("Action"), col("Reason"));
    let disables: Vec<_> = reader
        .records()
        .map(Result::unwrap)
        .filter(|r| &r[action] == "disable")
        .collect();
    assert_eq!(disables.len(), 3, "{csv}");
    for r in &disables {
        assert!(!r[reason].is_empty(), "a disable without a reason: {r:?}");
    }
    let successes = get_json(&app, "/api/jobs/app/logs?status=success&limit=5000").await;
    let rows = csv.split("\r\n").filter(|l| !l.is_empty()).count() - 1;
    assert_eq!(rows as u64, successes["total"].as_u64().unwrap());
    assert!(!csv.contains(",failure,"), "the filter applies to the CSV");
    assert_eq!(
        b.eval("document.getElementById('logcount').dataset.csvRows"),
        json!(rows.to_string())
    );

    // A full restart asks first; confirmed, it forgets every link, so the cycle it starts
    // matches every object again (links, not creates).
    b.eval("document.querySelector('#restart-form input[value=full]').checked = true");
    let before = handle.status("app").unwrap().cycles_run;
    b.click("#act-restart");
    b.wait(&visible("restart-confirm"), "the confirmation");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        handle.status("app").unwrap().cycles_run,
        before,
        "nothing happens before confirming"
    );
    let users = target.users().len();
    b.click("#act-restart-confirm");
    b.wait(
        "document.getElementById('act-result').innerText.startsWith('Restarted app (watermark, escrows, quarantine, full)')",
        "full restart",
    );
    let st = until(&handle, "the cycle after a full restart", |s| {
        s.cycles_run > before && s.state != JobState::Running
    })
    .await;
    let tally = st.last_cycle.unwrap().tally;
    assert!(tally.linked >= 1 && tally.created == 0, "{tally:?}");
    assert_eq!(
        target.users().len(),
        users,
        "matched again, nothing duplicated"
    );

    let html = b.eval("document.documentElement.outerHTML");
    let html = html.as_str().unwrap();
    for secret in [ADMIN_TOKEN, target.token(), graph.client_secret()] {
        assert!(!html.contains(secret), "a secret reached the page");
    }
    drop(b);
    service.shutdown().await;
}
