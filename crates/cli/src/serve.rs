//! `scimsync serve`, and the job-control commands that work on a job's state offline or, when
//! a `serve` process holds the job, through that process's admin API: `restart`,
//! `approve-deletions`, `provision`.
//!
//! Several `serve` processes split jobs by config directory: give each process its own
//! directory of job files (and, if you like, its own `--state` directory and admin `bind`).
//! A job's state is locked by the process that opened it, so a second process configured with
//! the same job stops at once with an error naming the locked state directory.

use crate::{render, wiring};
use anyhow::{Context, Result, anyhow};
use scimsync_config::{AdminConfig, JobConfig, SERVICE_FILE};
use scimsync_core::{Secret, StateStore, SystemClock};
use scimsync_engine::{
    CycleReport, Engine, JobSpec, META_DELETIONS_APPROVED, Mode, ObjectReport, ResetScope,
};
use scimsync_service::{JobDef, Render, Service, ServiceOptions};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;

/// Where `serve` keeps the admin token it generates when none is configured.
const GENERATED_TOKEN_FILE: &str = "admin-token";

/// Renders API answers with the exact SCIM requests, as the CLI shows them.
struct CliRender {
    shapes: render::Shapes,
}

impl Render for CliRender {
    fn object(&self, o: &ObjectReport) -> Value {
        let mut v = serde_json::to_value(o).unwrap_or(Value::Null);
        let reqs: Vec<Value> = render::requests(o, self.shapes)
            .into_iter()
            .map(|q| json!({"method": q.method, "path": q.path, "body": q.body}))
            .collect();
        if let Value::Object(m) = &mut v {
            m.insert("requests".into(), Value::Array(reqs));
        }
        v
    }

    fn preview(&self, r: &CycleReport) -> Value {
        render::preview_json(r, self.shapes)
    }
}

fn admin_config(config_dir: &Path) -> Result<AdminConfig, u8> {
    let path = config_dir.join(SERVICE_FILE);
    if !path.exists() {
        return Ok(AdminConfig::default());
    }
    match scimsync_config::load_service(&path) {
        Ok(s) => {
            for w in &s.warnings {
                eprintln!("warning: {w}");
            }
            Ok(s.admin)
        }
        Err(errors) => {
            for e in &errors {
                eprintln!("error: {e}");
            }
            Err(2)
        }
    }
}

/// The configured admin token, or the one a `serve` generated into the state directory.
fn admin_token(admin: &AdminConfig, state: &Path, generate: bool) -> Result<Secret> {
    if let Some(t) = &admin.token {
        return t.resolve().map_err(|e| anyhow!("admin.token: {e}"));
    }
    let path = state.join(GENERATED_TOKEN_FILE);
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let t = existing.trim();
        if !t.is_empty() {
            return Ok(Secret::inline(t));
        }
    }
    if !generate {
        return Err(anyhow!(
            "no admin token: set [admin] token in {SERVICE_FILE}, or start `serve` once to generate {}",
            path.display()
        ));
    }
    let token = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    std::fs::create_dir_all(state)
        .with_context(|| format!("cannot create state directory {}", state.display()))?;
    write_private(&path, &token)?;
    eprintln!(
        "no [admin] token configured: generated one in {} (readable by this user only)",
        path.display()
    );
    Ok(Secret::inline(token))
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

fn load_jobs(config_dir: &Path) -> Result<Vec<JobConfig>, u8> {
    let (loaded, errors) = scimsync_config::load_dir(config_dir);
    for e in &errors {
        eprintln!("error: {e}");
    }
    let mut jobs = Vec::new();
    for l in loaded {
        for w in &l.warnings {
            eprintln!("warning: {w}");
        }
        jobs.push(l.job);
    }
    if jobs.is_empty() {
        eprintln!(
            "error: no valid job file in {} (one *.toml per job)",
            config_dir.display()
        );
        return Err(2);
    }
    Ok(jobs)
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// `scimsync serve --config-dir DIR`.
pub async fn serve(config_dir: &Path, state: &Path) -> u8 {
    match serve_inner(config_dir, state).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    }
}

async fn serve_inner(config_dir: &Path, state: &Path) -> Result<u8> {
    let admin = match admin_config(config_dir) {
        Ok(a) => a,
        Err(code) => return Ok(code),
    };
    let jobs = match load_jobs(config_dir) {
        Ok(j) => j,
        Err(code) => return Ok(code),
    };
    let mut service = Service::new(ServiceOptions::system());
    let mut stores = std::collections::BTreeMap::new();
    for cfg in &jobs {
        let graph = wiring::graph(cfg).with_context(|| format!("job {}", cfg.name))?;
        let scim = wiring::scim(cfg).with_context(|| format!("job {}", cfg.name))?;
        // Fails at once when another process holds the job's state.
        let store = wiring::store(state, &cfg.name).with_context(|| format!("job {}", cfg.name))?;
        let notifier = scimsync_service::notify::from_config(&cfg.notifications)
            .map_err(|e| anyhow!("job {}: {e}", cfg.name))?;
        let store = Arc::new(store);
        stores.insert(
            cfg.name.clone(),
            scimsync_api::JobStore {
                store: store.clone(),
                dir: Some(state.join(&cfg.name)),
            },
        );
        let mut def = JobDef::from_config(cfg, graph, scim, store, notifier);
        def.render = Arc::new(CliRender {
            shapes: wiring::shapes(cfg),
        });
        service.add_job(def).map_err(|e| anyhow!(e))?;
        println!("job {}: schedule {}", cfg.name, cfg.schedule);
    }
    let token = admin_token(&admin, state, true)?;
    let listener = tokio::net::TcpListener::bind(admin.bind)
        .await
        .with_context(|| format!("cannot listen on {} ([admin] bind)", admin.bind))?;
    let addr = listener.local_addr()?;
    println!(
        "admin API listening on http://{addr}/api/jobs (bearer token from {})",
        token.origin()
    );
    scimsync_api::metrics::install_recorder();
    let app = scimsync_api::with_stores(
        scimsync_api::router(service.handle(), Some(token)),
        scimsync_api::JobStores::new(stores),
    );
    let cancel = service.cancel_token();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { cancel.cancelled().await })
            .await
    });
    shutdown_signal().await;
    eprintln!("shutting down: finishing cycles in flight and saving state");
    service.shutdown().await;
    match server.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("warning: admin API: {e}"),
        Err(e) => eprintln!("warning: admin API task: {e}"),
    }
    Ok(0)
}

fn find_job(config_dir: &Path, name: &str) -> Result<JobConfig, u8> {
    let jobs = load_jobs(config_dir)?;
    match jobs.into_iter().find(|j| j.name == name) {
        Some(j) => Ok(j),
        None => {
            eprintln!("error: no job named {name:?} in {}", config_dir.display());
            Err(2)
        }
    }
}

fn is_locked(e: &anyhow::Error) -> bool {
    format!("{e:#}").contains("locked")
}

/// Send a request to the admin API of the `serve` that holds the job.
async fn via_api(
    config_dir: &Path,
    state: &Path,
    method: &str,
    path: &str,
    body: Value,
) -> Result<Value> {
    let admin = admin_config(config_dir).map_err(|_| anyhow!("invalid {SERVICE_FILE}"))?;
    let token = admin_token(&admin, state, false)?;
    let host = if admin.bind.ip().is_unspecified() {
        std::net::SocketAddr::from(([127, 0, 0, 1], admin.bind.port()))
    } else {
        admin.bind
    };
    let url = format!("http://{host}{path}");
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(120))
        .build()?;
    let req = match method {
        "GET" => client.get(&url),
        _ => client.post(&url).json(&body),
    };
    let resp = req
        .bearer_auth(token.expose())
        .send()
        .await
        .with_context(|| format!("the admin API at http://{host} is not reachable"))?;
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        let msg = v["error"]["message"].as_str().unwrap_or("").to_string();
        return Err(anyhow!("admin API answered {status}: {msg}"));
    }
    Ok(v)
}

/// Open the job's store; when a running `serve` holds it, `None` (use its API).
fn open_store(state: &Path, job: &str) -> Result<Option<scimsync_store::SledStore>> {
    match wiring::store(state, job) {
        Ok(s) => Ok(Some(s)),
        Err(e) if is_locked(&e) => {
            eprintln!("the job's state is held by a running `scimsync serve`; using its admin API");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// `scimsync restart --job NAME [--scope …]`.
pub async fn restart(config_dir: &Path, state: &Path, job: &str, scopes: &[String]) -> u8 {
    let mut parsed = Vec::new();
    for s in scopes
        .iter()
        .flat_map(|s| s.split(','))
        .filter(|s| !s.trim().is_empty())
    {
        match ResetScope::parse(s) {
            Some(sc) => parsed.push(sc),
            None => {
                eprintln!("error: unknown scope {s:?}: use watermark, escrows, quarantine or full");
                return 2;
            }
        }
    }
    if parsed.is_empty() {
        parsed = ResetScope::DEFAULT.to_vec();
    }
    if let Err(code) = find_job(config_dir, job) {
        return code;
    }
    let result: Result<Value> = async {
        match open_store(state, job)? {
            Some(store) => {
                let s =
                    scimsync_engine::restart(&store, job, &parsed).map_err(|e| anyhow!("{e}"))?;
                Ok(serde_json::to_value(s)?)
            }
            None => {
                let names: Vec<Value> = parsed
                    .iter()
                    .map(|s| serde_json::to_value(s).unwrap_or(Value::Null))
                    .collect();
                via_api(
                    config_dir,
                    state,
                    "POST",
                    &format!("/api/jobs/{job}/restart"),
                    json!({"scopes": names}),
                )
                .await
            }
        }
    }
    .await;
    match result {
        Ok(v) => {
            println!(
                "job {job} restarted: watermark cleared: {}, escrows cleared: {}, quarantine lifted: {}, links forgotten: {}",
                v["watermarkCleared"],
                v["escrowsCleared"],
                v["quarantineLifted"],
                v["linksForgotten"]
            );
            println!("the next cycle re-evaluates every object");
            0
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    }
}

/// `scimsync approve-deletions --job NAME`.
pub async fn approve_deletions(config_dir: &Path, state: &Path, job: &str) -> u8 {
    if let Err(code) = find_job(config_dir, job) {
        return code;
    }
    let result: Result<()> = async {
        match open_store(state, job)? {
            Some(store) => {
                store
                    .put_meta(job, META_DELETIONS_APPROVED, "true")
                    .and_then(|_| store.flush())
                    .map_err(|e| anyhow!("{e}"))?;
                println!("deletions approved: the next cycle of job {job} sends the held disables and deletes");
                Ok(())
            }
            None => {
                via_api(config_dir, state, "POST", &format!("/api/jobs/{job}/approve-deletions"), json!({})).await?;
                println!("deletions approved: job {job} runs a cycle now and sends them");
                Ok(())
            }
        }
    }
    .await;
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    }
}

/// `scimsync provision --job NAME (--user ID|UPN | --group ID) [--dry-run]`.
pub async fn provision(
    config_dir: &Path,
    state: &Path,
    job: &str,
    user: Option<String>,
    group: Option<String>,
    dry_run: bool,
) -> u8 {
    let cfg = match find_job(config_dir, job) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let result = provision_inner(config_dir, state, &cfg, user, group, dry_run).await;
    match result {
        Ok(objects) => {
            let mut failed = false;
            for o in &objects {
                failed |= print_object(o);
            }
            if dry_run {
                println!("(dry run: nothing was sent or recorded)");
            }
            if failed { 4 } else { 0 }
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    }
}

async fn provision_inner(
    config_dir: &Path,
    state: &Path,
    cfg: &JobConfig,
    user: Option<String>,
    group: Option<String>,
    dry_run: bool,
) -> Result<Vec<Value>> {
    let job = &cfg.name;
    let (store, body) = match (&user, &group) {
        (Some(u), None) => (
            open_store(state, job)?,
            json!({"user": u, "dryRun": dry_run}),
        ),
        (None, Some(g)) => (
            open_store(state, job)?,
            json!({"group": g, "dryRun": dry_run}),
        ),
        _ => return Err(anyhow!("give exactly one of --user and --group")),
    };
    let Some(store) = store else {
        let v = via_api(
            config_dir,
            state,
            "POST",
            &format!("/api/jobs/{job}/provision"),
            body,
        )
        .await?;
        return Ok(v["objects"].as_array().cloned().unwrap_or_default());
    };
    let graph = wiring::graph(cfg)?;
    let scim = wiring::scim(cfg)?;
    let spec = JobSpec::from_config(cfg);
    let engine = Engine::new(&spec, &graph, &scim, &store, &SystemClock);
    let mode = if dry_run { Mode::Preview } else { Mode::Apply };
    let reports = match (user, group) {
        (Some(u), _) => vec![
            engine
                .provision_user(&u, mode)
                .await
                .map_err(|e| anyhow!("{} ({})", e, e.code()))?,
        ],
        (_, Some(g)) => engine
            .provision_group(&g, mode)
            .await
            .map_err(|e| anyhow!("{} ({})", e, e.code()))?,
        _ => Vec::new(),
    };
    store.flush().map_err(|e| anyhow!("{e}"))?;
    let r = CliRender {
        shapes: wiring::shapes(cfg),
    };
    Ok(reports.iter().map(|o| r.object(o)).collect())
}

/// Entra's on-demand steps for one object; true when it failed.
fn print_object(o: &Value) -> bool {
    let s = |k: &str| o[k].as_str().unwrap_or("").to_string();
    println!(
        "{} {} ({})",
        s("objectType"),
        s("displayName"),
        s("sourceId")
    );
    for step in o["steps"].as_array().into_iter().flatten() {
        println!(
            "  [{}] {}: {}",
            step["status"].as_str().unwrap_or(""),
            step["name"].as_str().unwrap_or(""),
            step["description"].as_str().unwrap_or("")
        );
    }
    println!("  scope: {}", s("scope"));
    if let Some(m) = o["matchedBy"].as_str() {
        println!("  matched by: {m}");
    }
    println!(
        "  action: {} ({})",
        o["action"]["action"].as_str().unwrap_or(""),
        s("status")
    );
    for r in o["requests"].as_array().into_iter().flatten() {
        println!(
            "  request: {} {}",
            r["method"].as_str().unwrap_or(""),
            r["path"].as_str().unwrap_or("")
        );
        if !r["body"].is_null() {
            let body = serde_json::to_string_pretty(&r["body"]).unwrap_or_default();
            for line in body.lines() {
                println!("    {line}");
            }
        }
    }
    if let Some(e) = o["error"].as_str() {
        println!("  error ({}): {e}", o["errorCode"].as_str().unwrap_or(""));
        return true;
    }
    false
}
