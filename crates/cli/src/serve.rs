//! `scimsync serve`, and the job-control commands that work on a job's state offline or, when
//! a `serve` process holds the job, through that process's admin API: `restart`,
//! `approve-deletions`, `provision`.
//!
//! Several `serve` processes split jobs by config directory: give each process its own
//! directory of job files (and, if you like, its own `--state` directory and admin `bind`).
//! A job's state is locked by the process that opened it, so a second process configured with
//! the same job stops at once with an error naming the locked state directory.
//!
//! The admin listener speaks HTTPS when `[admin] tls_cert` and `tls_key` are set; a `bind`
//! beyond loopback without them is refused (exit 2) unless `allow_plain_http = true`. The
//! commands here reach a running `serve` the same way, trusting exactly the configured
//! certificate ([`admin_client`]).

use crate::{render, wiring};
use anyhow::{Context, Result, anyhow};
use scimsync_config::{AdminConfig, AdminTls, ConfigError, JobConfig, SERVICE_FILE};
use scimsync_core::{Secret, StateStore, SystemClock};
use scimsync_engine::{
    ApproveOutcome, CycleReport, Engine, HeldDeletions, JobSpec, JobState, Mode, ObjectReport,
    ResetScope, RestartSummary,
};
use scimsync_service::{
    JobDef, QuarantineReason, QuarantineState, Render, Service, ServiceOptions,
};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;

/// Where `serve` keeps the admin token it generates when none is configured.
const GENERATED_TOKEN_FILE: &str = "admin-token";

/// The tracing target of `serve`'s own messages (start, token, shutdown).
const SERVE_TARGET: &str = "scimsync::serve";

/// How `serve` writes its messages and log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Lines for people.
    #[default]
    Text,
    /// One JSON object per line (tracing-subscriber's JSON layer), for log shippers.
    Json,
}

/// The log of `serve`: warnings and errors (more with -v), plus `serve`'s own messages and
/// one line per finished cycle at every verbosity; `SCIMSYNC_LOG` overrides the filter.
pub fn init_tracing(verbose: u8, format: LogFormat) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let default = format!(
        "{level},{SERVE_TARGET}=info,{}=info",
        scimsync_service::events::CYCLE_TARGET
    );
    let filter = tracing_subscriber::EnvFilter::try_from_env("SCIMSYNC_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colours only for a person at a terminal, never into a journal or a file.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// An address a browser on this machine can open: loopback for an unspecified bind.
fn browsable(addr: std::net::SocketAddr) -> std::net::SocketAddr {
    match addr.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => {
            std::net::SocketAddr::from(([127, 0, 0, 1], addr.port()))
        }
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => {
            std::net::SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, addr.port()))
        }
        _ => addr,
    }
}

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

/// Where the admin token comes from, for people: never the token itself.
fn token_origin(admin: &AdminConfig, state: &Path) -> String {
    match &admin.token {
        Some(t) if t.is_literal() => format!("token set in {SERVICE_FILE}"),
        Some(t) => format!("token from {t}"),
        None => format!(
            "generated token written to {}",
            state.join(GENERATED_TOKEN_FILE).display()
        ),
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
    tracing::info!(
        target: SERVE_TARGET,
        path = %path.display(),
        "no [admin] token configured: generated token written to {} (readable by this user only)",
        path.display()
    );
    Ok(Secret::inline(token))
}

/// The rustls configuration for `[admin] tls_cert` / `tls_key`, or errors at those keys.
fn admin_tls(tls: &AdminTls) -> Result<Arc<scimsync_api::tls::ServerConfig>, Vec<ConfigError>> {
    let pem = tls.read()?;
    scimsync_api::tls::server_config(pem.cert.as_bytes(), pem.key.expose().as_bytes()).map_err(
        |e| {
            vec![match e {
                scimsync_api::tls::TlsError::Cert(m) => tls.cert_error(m),
                scimsync_api::tls::TlsError::Key(m) => tls.key_error(m),
            }]
        },
    )
}

/// How the admin listener is secured: TLS, loopback, or plain HTTP beyond loopback only when
/// `allow_plain_http` says so (the service file refuses the rest already; this holds for an
/// `AdminConfig` from anywhere).
fn admin_transport(
    admin: &AdminConfig,
) -> Result<Option<Arc<scimsync_api::tls::ServerConfig>>, Vec<String>> {
    if let Some(tls) = &admin.tls {
        return admin_tls(tls)
            .map(Some)
            .map_err(|errors| errors.iter().map(ToString::to_string).collect());
    }
    if !admin.bind.ip().is_loopback() && !admin.allow_plain_http {
        return Err(vec![format!(
            "[admin] bind {} is beyond loopback without TLS: the admin token would cross the \
             network in clear; set tls_cert and tls_key, or allow_plain_http = true",
            admin.bind
        )]);
    }
    Ok(None)
}

/// How the CLI reaches the admin API of a running `serve`: the base URL (`https` with
/// `[admin] tls_cert`, loopback when the bind address is unspecified) and a client that, over
/// TLS, accepts exactly the configured certificate. Only the certificate is read, never the
/// key.
pub(crate) fn admin_client(
    admin: &AdminConfig,
    timeout: std::time::Duration,
) -> Result<(String, reqwest::Client)> {
    let host = browsable(admin.bind);
    let builder = reqwest::Client::builder().timeout(timeout);
    let (scheme, builder) = match &admin.tls {
        None => ("http", builder),
        Some(tls) => {
            let pem = tls.cert.resolve().map_err(|e| {
                anyhow!(tls.cert_error(format!("cannot read the certificate chain: {e}")))
            })?;
            let config = scimsync_api::tls::pinned_client_config(pem.expose().as_bytes())
                .map_err(|e| anyhow!(tls.cert_error(e.to_string())))?;
            ("https", builder.tls_backend_preconfigured(config))
        }
    };
    Ok((format!("{scheme}://{host}"), builder.build()?))
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

/// `scimsync serve --config-dir DIR --log-format …`.
pub async fn serve_as(config_dir: &Path, state: &Path, format: LogFormat) -> u8 {
    match serve_inner(config_dir, state, format).await {
        Ok(code) => code,
        Err(e) => {
            match format {
                LogFormat::Text => eprintln!("error: {e:#}"),
                LogFormat::Json => tracing::error!(target: SERVE_TARGET, "{e:#}"),
            }
            1
        }
    }
}

async fn serve_inner(config_dir: &Path, state: &Path, format: LogFormat) -> Result<u8> {
    let mut shutdown = crate::shutdown::ShutdownSignal::listen();
    let admin = match admin_config(config_dir) {
        Ok(a) => a,
        Err(code) => return Ok(code),
    };
    // Before anything is opened: a listener that would be unsafe, or a certificate or key that
    // cannot be used, stops here (exit 2, like any configuration error).
    let tls = match admin_transport(&admin) {
        Ok(t) => t,
        Err(errors) => {
            for e in &errors {
                eprintln!("error: {e}");
            }
            return Ok(2);
        }
    };
    let jobs = match load_jobs(config_dir) {
        Ok(j) => j,
        Err(code) => return Ok(code),
    };
    let mut service = Service::new(ServiceOptions::system());
    let mut stores = std::collections::BTreeMap::new();
    // On PostgreSQL the replicas on one database share the jobs by lease.
    let mut keeper: Option<crate::leases::Keeper> = None;
    for cfg in &jobs {
        let graph = wiring::graph(cfg).with_context(|| format!("job {}", cfg.name))?;
        let scim = wiring::scim(cfg).with_context(|| format!("job {}", cfg.name))?;
        // Fails at once when another process holds the job's state.
        let store = wiring::store(state, &cfg.name).with_context(|| format!("job {}", cfg.name))?;
        let (store, lease) = match (store, crate::store_select::lease_ttl()) {
            (crate::store_select::Store::Postgres(pg), Some(ttl)) => {
                let k = keeper.get_or_insert_with(|| {
                    let k = crate::leases::Keeper::new(pg.clone(), ttl);
                    tracing::info!(target: SERVE_TARGET, owner = %k.owner(), lease_ttl = ?ttl, "job leases on PostgreSQL: this replica runs the jobs it holds");
                    if format == LogFormat::Text {
                        println!("replica {}: jobs shared by lease (TTL {ttl:?})", k.owner());
                    }
                    k
                });
                let (fenced, flag) = k.add(&cfg.name);
                (crate::store_select::Store::Postgres(fenced), Some(flag))
            }
            (store, _) => (store, None),
        };
        let notifier = scimsync_service::notify::from_config(&cfg.notifications)
            .map_err(|e| anyhow!("job {}: {e}", cfg.name))?;
        let store = Arc::new(store);
        stores.insert(
            cfg.name.clone(),
            scimsync_api::JobStore {
                store: store.clone(),
                dir: store.dir(),
            },
        );
        let mut def = JobDef::from_config(cfg, graph, scim, store, notifier);
        def.render = Arc::new(CliRender {
            shapes: wiring::shapes(cfg),
        });
        service.add_job_leased(def, lease).map_err(|e| anyhow!(e))?;
        match format {
            LogFormat::Text => println!("job {}: schedule {}", cfg.name, cfg.schedule),
            LogFormat::Json => {
                tracing::info!(target: SERVE_TARGET, job = %cfg.name, schedule = %cfg.schedule, "job added");
            }
        }
    }
    let mut forwarded = None;
    let leases = match keeper {
        Some(k) => {
            service.set_lease_view(crate::leases::view(k.database()));
            // Actions on a job another replica runs go through the database (see forward_pg).
            let forward: Arc<dyn scimsync_service::Forward> =
                Arc::new(crate::forward_pg::PgForward {
                    store: k.database(),
                    owner: k.owner().to_owned(),
                });
            service.set_forwarding(scimsync_service::Forwarding {
                forward: forward.clone(),
                wait: crate::forward_pg::WAIT,
            });
            forwarded = Some(forward);
            Some(k.spawn().context("cannot start the lease keeper thread")?)
        }
        None => None,
    };
    if let Some(forward) = forwarded {
        tokio::spawn(scimsync_service::forward::serve_forwarded(
            service.handle(),
            forward,
            crate::forward_pg::POLL,
            service.cancel_token(),
        ));
    }
    let token = admin_token(&admin, state, true)?;
    let listener = tokio::net::TcpListener::bind(admin.bind)
        .await
        .with_context(|| format!("cannot listen on {} ([admin] bind)", admin.bind))?;
    let addr = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let origin = token_origin(&admin, state);
    let dashboard = format!("{scheme}://{}/", browsable(addr));
    match format {
        LogFormat::Text => {
            println!("admin API listening on {scheme}://{addr}/api/jobs ({origin})");
            println!("dashboard: {dashboard}");
        }
        LogFormat::Json => tracing::info!(
            target: SERVE_TARGET,
            api = %format!("{scheme}://{addr}/api/jobs"),
            dashboard = %dashboard,
            token = %origin,
            "admin API listening"
        ),
    }
    scimsync_api::metrics::install_recorder();
    let options = scimsync_api::Options {
        tls: tls.is_some(),
        ..Default::default()
    };
    let app = scimsync_api::with_stores(
        scimsync_api::router_with(service.handle(), Some(token), options),
        scimsync_api::JobStores::new(stores),
    );
    // The Graph-shaped API answers under each job's service principal id, with its schema.
    let app = scimsync_api::with_graph_jobs(app, scimsync_api::GraphJobs::from_configs(&jobs));
    let cancel = service.cancel_token();
    let server = tokio::spawn(scimsync_api::tls::serve(listener, app, tls, async move {
        cancel.cancelled().await
    }));
    shutdown.recv().await;
    tracing::info!(
        target: SERVE_TARGET,
        "shutting down: finishing cycles in flight and saving state"
    );
    service.shutdown().await;
    // After the cycles finished: release the leases so another replica takes over at once.
    if let Some(l) = leases {
        tokio::task::spawn_blocking(move || l.stop()).await.ok();
    }
    match server.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("warning: admin API: {e}"),
        Err(e) => eprintln!("warning: admin API task: {e}"),
    }
    Ok(0)
}

fn is_locked(e: &anyhow::Error) -> bool {
    format!("{e:#}").contains("locked")
}

/// Send a request to the admin API of the `serve` that holds the job; an answer other than
/// 2xx is an error with the API's message.
async fn via_api(
    config_dir: &Path,
    state: &Path,
    method: &str,
    path: &str,
    body: Value,
) -> Result<Value> {
    let (status, v) = via_api_raw(config_dir, state, method, path, body).await?;
    if !status.is_success() {
        let msg = v["error"]["message"].as_str().unwrap_or("").to_string();
        return Err(anyhow!("admin API answered {status}: {msg}"));
    }
    Ok(v)
}

/// Send a request to the admin API of the `serve` that holds the job: its status and body.
async fn via_api_raw(
    config_dir: &Path,
    state: &Path,
    method: &str,
    path: &str,
    body: Value,
) -> Result<(reqwest::StatusCode, Value)> {
    let admin = admin_config(config_dir).map_err(|_| anyhow!("invalid {SERVICE_FILE}"))?;
    let token = admin_token(&admin, state, false)?;
    let (base, client) = admin_client(&admin, std::time::Duration::from_secs(120))?;
    let url = format!("{base}{path}");
    let req = match method {
        "GET" => client.get(&url),
        _ => client.post(&url).json(&body),
    };
    let resp = req
        .bearer_auth(token.expose())
        .send()
        .await
        .with_context(|| format!("the admin API at {base} is not reachable"))?;
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    Ok((status, v))
}

/// Open the job's store; when a running `serve` holds it, `None` (use its API).
fn open_store(state: &Path, job: &str) -> Result<Option<crate::store_select::Store>> {
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
pub async fn restart(
    config_dir: &Path,
    state: &Path,
    cfg: &JobConfig,
    scopes: &[String],
    json: bool,
) -> u8 {
    let job = cfg.name.as_str();
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
    let result: Result<(RestartSummary, bool)> = async {
        match open_store(state, job)? {
            Some(store) => {
                let s =
                    scimsync_engine::restart(&store, job, &parsed).map_err(|e| anyhow!("{e}"))?;
                Ok((s, false))
            }
            None => {
                let names: Vec<Value> = parsed
                    .iter()
                    .map(|s| serde_json::to_value(s).unwrap_or(Value::Null))
                    .collect();
                let v = via_api(
                    config_dir,
                    state,
                    "POST",
                    &format!("/api/jobs/{job}/restart"),
                    json!({"scopes": names}),
                )
                .await?;
                Ok((restart_summary(&v)?, true))
            }
        }
    }
    .await;
    match result {
        Ok((s, via_serve)) if json => {
            println!("{}", restart_json(job, &parsed, &s, via_serve));
            0
        }
        Ok((s, via_serve)) => {
            print!("{}", restarted(job, &s, via_serve));
            0
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    }
}

/// The admin API's answer to a restart, typed again.
fn restart_summary(v: &Value) -> Result<RestartSummary> {
    serde_json::from_value(v.clone())
        .map_err(|e| anyhow!("the admin API answered a restart with an unreadable summary: {e}"))
}

/// `restart --json`: the admin API's answer (the summary and its `description`), with the
/// job, the scopes applied and whether a running `serve` carried it out.
fn restart_json(job: &str, scopes: &[ResetScope], s: &RestartSummary, via_serve: bool) -> Value {
    let mut v = serde_json::to_value(s).unwrap_or_else(|_| json!({}));
    v["job"] = json!(job);
    v["scopes"] = json!(scopes);
    v["viaServe"] = json!(via_serve);
    v["description"] = json!(s.describe());
    v
}

/// What a restart did, and what the next cycle will do.
fn restarted(job: &str, s: &RestartSummary, via_serve: bool) -> String {
    let mut out = format!("job {job} restarted: {}\n", s.describe());
    let next = if via_serve {
        "the cycle `serve` runs now"
    } else {
        "the next cycle"
    };
    if s.links_forgotten > 0 {
        out.push_str(&format!(
            "{next} matches every object again (the links were forgotten) and reads the source in full\n"
        ));
    } else if s.watermark_cleared {
        out.push_str(&format!(
            "{next} reads the source in full and re-evaluates every object\n"
        ));
    }
    if s.escrows_due_now > 0 {
        out.push_str(&format!(
            "{next} retries the {} escrowed objects; they stay in escrow until they succeed\n",
            s.escrows_due_now
        ));
    }
    out
}

/// What `approve-deletions` found or did.
#[derive(Debug)]
enum Approval {
    /// `--dry-run`: the held set, if any.
    Shown(Option<HeldDeletions>),
    Done {
        outcome: ApproveOutcome,
        /// A `TooManyDeletes` quarantine was lifted (the job no longer waits).
        lifted: bool,
    },
}

/// Approve (or with `dry_run` only show) the held set in the job's own store.
fn approve_in_store(
    store: &dyn StateStore,
    job: &str,
    expect: Option<&str>,
    dry_run: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Approval> {
    let js = JobState::new(store, job);
    if dry_run {
        let held = js.held().map_err(|e| anyhow!("{e}"))?;
        return Ok(Approval::Shown(held.filter(|h| !h.ops.is_empty())));
    }
    let outcome = js
        .approve_deletions(expect, now)
        .map_err(|e| anyhow!("{e}"))?;
    let mut lifted = false;
    if matches!(outcome, ApproveOutcome::Approved { .. }) {
        // The job no longer waits: a `serve` started later schedules it normally.
        let q: Option<QuarantineState> = js.quarantine().map_err(|e| anyhow!("{e}"))?;
        if q.is_some_and(|q| q.reason == QuarantineReason::TooManyDeletes) {
            js.set_quarantine::<QuarantineState>(None)
                .and_then(|_| store.flush())
                .map_err(|e| anyhow!("{e}"))?;
            lifted = true;
        }
    }
    Ok(Approval::Done { outcome, lifted })
}

/// The admin API's answer to an approval (`result` and `held`), typed again.
fn approval_from_api(v: &Value) -> Result<ApproveOutcome> {
    let held = || -> Result<HeldDeletions> {
        serde_json::from_value(v["held"].clone())
            .map_err(|e| anyhow!("unexpected answer from the admin API: {e}"))
    };
    match v["result"].as_str() {
        Some("nothingHeld") => Ok(ApproveOutcome::NothingHeld),
        Some("approved") => Ok(ApproveOutcome::Approved { held: held()? }),
        Some("mismatch") => Ok(ApproveOutcome::Mismatch { held: held()? }),
        _ => Err(anyhow!("unexpected answer from the admin API: {v}")),
    }
}

/// The text for the admin, and the exit code: 0 unless a given fingerprint no longer matched.
fn approval_text(
    job: &str,
    config_dir: &Path,
    a: &Approval,
    expect: Option<&str>,
    via_serve: bool,
) -> (String, u8) {
    match a {
        Approval::Shown(None)
        | Approval::Done {
            outcome: ApproveOutcome::NothingHeld,
            ..
        } => {
            let mut out = format!("nothing is held for job {job}; nothing was approved\n");
            if matches!(a, Approval::Done { .. }) {
                out.push_str(
                    "(an approval names one held set: a later cycle that would disable or delete \
                     too much is held as before)\n",
                );
            }
            (out, 0)
        }
        Approval::Shown(Some(h)) => {
            let mut out = render::held_set(job, h);
            out.push_str(&format!(
                "(dry run: nothing was approved; approve this set with `scimsync approve-deletions --job {job} --config-dir {} --fingerprint {}`)\n",
                render::dir_arg(Some(config_dir)),
                h.fingerprint
            ));
            (out, 0)
        }
        Approval::Done {
            outcome: ApproveOutcome::Mismatch { held },
            ..
        } => {
            let mut out = format!(
                "the held set of job {job} changed: its fingerprint is {}, not {} (the one given); nothing was approved\n",
                held.fingerprint,
                expect.unwrap_or("")
            );
            out.push_str("the set held now:\n");
            out.push_str(&render::held_set(job, held));
            (out, crate::EXIT_FAILED)
        }
        Approval::Done {
            outcome: ApproveOutcome::Approved { held },
            lifted,
        } => {
            let mut out = render::held_set(job, held);
            let n = held.ops.len();
            if via_serve {
                out.push_str(&format!(
                    "approved: job {job} stops waiting and runs a cycle now (after `start` if it is stopped or paused) that sends exactly these {n} (a cycle that would disable or delete others as well is held again)\n"
                ));
            } else {
                out.push_str(&format!(
                    "approved: the next cycle of job {job} sends exactly these {n} (a cycle that would disable or delete others as well is held again)\n"
                ));
                if *lifted {
                    out.push_str("the job's TooManyDeletes quarantine was lifted\n");
                }
            }
            (out, 0)
        }
    }
}

/// `approve-deletions --json`: the admin API's words (`result`: `approved`, `nothingHeld`,
/// `mismatch`, or `held` for a dry run; `held`: the set or null), with the job, the fingerprint
/// given and what else happened. The exit code is [`approval_text`]'s.
fn approval_json(a: &Approval, job: &str, expect: Option<&str>, via_serve: bool) -> Value {
    let (result, held, lifted) = match a {
        Approval::Shown(h) => ("held", h.as_ref(), false),
        Approval::Done { outcome, lifted } => match outcome {
            ApproveOutcome::NothingHeld => ("nothingHeld", None, false),
            ApproveOutcome::Approved { held } => ("approved", Some(held), *lifted),
            ApproveOutcome::Mismatch { held } => ("mismatch", Some(held), false),
        },
    };
    json!({
        "job": job,
        "result": result,
        "dryRun": matches!(a, Approval::Shown(_)),
        "held": held,
        "fingerprintGiven": expect,
        "quarantineLifted": lifted,
        "viaServe": via_serve,
    })
}

/// `scimsync approve-deletions --job NAME [--fingerprint F] [--dry-run] [--json]`.
pub async fn approve_deletions(
    config_dir: &Path,
    state: &Path,
    cfg: &JobConfig,
    fingerprint: Option<&str>,
    dry_run: bool,
    json: bool,
) -> u8 {
    let job = cfg.name.as_str();
    let result: Result<(Approval, bool)> = async {
        match open_store(state, job)? {
            Some(store) => Ok((
                approve_in_store(&store, job, fingerprint, dry_run, chrono::Utc::now())?,
                false,
            )),
            None if dry_run => {
                let v = via_api(
                    config_dir,
                    state,
                    "GET",
                    &format!("/api/jobs/{job}/held"),
                    Value::Null,
                )
                .await?;
                let held: Option<HeldDeletions> = serde_json::from_value(v["held"].clone())
                    .map_err(|e| anyhow!("unexpected answer from the admin API: {e}"))?;
                Ok((Approval::Shown(held), true))
            }
            None => {
                let body = match fingerprint {
                    Some(f) => json!({"fingerprint": f}),
                    None => json!({}),
                };
                let (status, v) = via_api_raw(
                    config_dir,
                    state,
                    "POST",
                    &format!("/api/jobs/{job}/approve-deletions"),
                    body,
                )
                .await?;
                // A stale fingerprint is 409 with the held set; other failures are errors.
                if !status.is_success() && v["result"].is_null() {
                    let msg = v["error"]["message"].as_str().unwrap_or("");
                    return Err(anyhow!("admin API answered {status}: {msg}"));
                }
                let outcome = approval_from_api(&v)?;
                Ok((
                    Approval::Done {
                        outcome,
                        lifted: false,
                    },
                    true,
                ))
            }
        }
    }
    .await;
    match result {
        Ok((a, via_serve)) => {
            let (text, code) = approval_text(job, config_dir, &a, fingerprint, via_serve);
            if json {
                println!("{}", approval_json(&a, job, fingerprint, via_serve));
            } else if code == 0 {
                print!("{text}");
            } else {
                eprint!("error: {text}");
            }
            code
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    }
}

/// What `provision` is asked for.
pub struct ProvisionRequest {
    pub user: Option<String>,
    pub group: Option<String>,
    pub dry_run: bool,
    /// One JSON document (`{"dryRun", "objects"}`) instead of the steps as text.
    pub json: bool,
}

/// `scimsync provision --job NAME (--user ID|UPN | --group ID) [--dry-run] [--json]`.
pub async fn provision(
    config_dir: &Path,
    state: &Path,
    cfg: &JobConfig,
    req: ProvisionRequest,
) -> u8 {
    let ProvisionRequest {
        user,
        group,
        dry_run,
        json,
    } = req;
    let result = provision_inner(config_dir, state, cfg, user, group, dry_run).await;
    match result {
        Ok(objects) if json => {
            let failed = objects.iter().any(|o| o["error"].is_string());
            let doc = json!({"dryRun": dry_run, "objects": objects});
            outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
            if failed { 4 } else { 0 }
        }
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
    // Every value is shown safely: names and texts come from the source and the target.
    let v = |v: &Value| render::visible(v.as_str().unwrap_or("")).into_owned();
    let s = |k: &str| v(&o[k]);
    println!(
        "{} {} ({})",
        s("objectType"),
        s("displayName"),
        s("sourceId")
    );
    for step in o["steps"].as_array().into_iter().flatten() {
        println!(
            "  [{}] {}: {}",
            v(&step["status"]),
            v(&step["name"]),
            v(&step["description"])
        );
    }
    println!("  scope: {}", s("scope"));
    if o["matchedBy"].is_string() {
        println!("  matched by: {}", s("matchedBy"));
    }
    println!("  action: {} ({})", v(&o["action"]["action"]), s("status"));
    for r in o["requests"].as_array().into_iter().flatten() {
        println!("  request: {} {}", v(&r["method"]), v(&r["path"]));
        if !r["body"].is_null() {
            let body = serde_json::to_string_pretty(&r["body"]).unwrap_or_default();
            for line in body.lines() {
                println!("    {}", render::visible(line));
            }
        }
    }
    if o["error"].is_string() {
        println!("  error ({}): {}", s("errorCode"), s("error"));
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::held_job;

    fn now() -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now()
    }

    #[tokio::test]
    async fn approving_with_nothing_held_arms_nothing() {
        let (report, store) = held_job(1).await;
        assert!(!report.deletions_held, "one disable is under the threshold");
        let a = approve_in_store(&store, "app", None, false, now()).unwrap();
        let (text, code) = approval_text("app", Path::new("jobs"), &a, None, false);
        assert_eq!(code, 0);
        assert!(
            text.contains("nothing is held for job app; nothing was approved"),
            "{text}"
        );
        assert!(!text.contains("approved:"), "{text}");
        assert!(JobState::new(&store, "app").approval().unwrap().is_none());
        // The same with a fingerprint.
        let a = approve_in_store(&store, "app", Some("0123456789abcdef"), false, now()).unwrap();
        assert!(
            approval_text(
                "app",
                Path::new("jobs"),
                &a,
                Some("0123456789abcdef"),
                false
            )
            .0
            .contains("nothing is held")
        );
        assert!(JobState::new(&store, "app").approval().unwrap().is_none());
    }

    #[tokio::test]
    async fn a_stale_fingerprint_arms_nothing_and_shows_both() {
        let (_, store) = held_job(4).await;
        let held = JobState::new(&store, "app").held().unwrap().unwrap();
        let stale = "0123456789abcdef";
        let a = approve_in_store(&store, "app", Some(stale), false, now()).unwrap();
        let (text, code) = approval_text("app", Path::new("jobs"), &a, Some(stale), false);
        assert_eq!(code, 1);
        assert!(
            text.contains(stale) && text.contains(&held.fingerprint),
            "{text}"
        );
        assert!(text.contains("nothing was approved"), "{text}");
        assert!(JobState::new(&store, "app").approval().unwrap().is_none());
    }

    #[tokio::test]
    async fn approval_shows_and_arms_exactly_the_held_set_and_lifts_the_wait() {
        let (report, store) = held_job(4).await;
        assert!(report.deletions_held);
        let js = JobState::new(&store, "app");
        let held = js.held().unwrap().unwrap();
        let at = report.finished;
        js.set_quarantine(Some(&QuarantineState {
            reason: QuarantineReason::TooManyDeletes,
            series_began: at,
            current_began: at,
            next_attempt: at + chrono::Duration::hours(20),
            series_count: 3,
            error_code: None,
            error: "held".into(),
            disabled: false,
        }))
        .unwrap();

        // A dry run shows the set and arms nothing.
        let a = approve_in_store(&store, "app", None, true, now()).unwrap();
        let (text, code) = approval_text("app", Path::new("jobs"), &a, None, false);
        assert_eq!(code, 0);
        assert!(text.contains("4 disables and deletes held"), "{text}");
        assert!(
            text.contains("person01@contoso.example") && text.contains("disable"),
            "{text}"
        );
        assert!(text.contains("deletion threshold of 2"), "{text}");
        assert!(text.contains(&held.fingerprint), "{text}");
        assert!(text.contains("nothing was approved"), "{text}");
        assert!(js.approval().unwrap().is_none());

        let a = approve_in_store(&store, "app", Some(&held.fingerprint), false, now()).unwrap();
        let (text, code) =
            approval_text("app", Path::new("jobs"), &a, Some(&held.fingerprint), false);
        assert_eq!(code, 0, "{text}");
        assert!(text.contains("sends exactly these 4"), "{text}");
        assert!(text.contains("quarantine was lifted"), "{text}");
        let approval = js.approval().unwrap().expect("armed");
        assert_eq!(approval.fingerprint, held.fingerprint);
        assert_eq!(approval.ids.len(), 4);
        assert!(js.quarantine::<QuarantineState>().unwrap().is_none());
    }

    #[tokio::test]
    async fn the_admin_api_answers_read_back_as_outcomes() {
        let (_, store) = held_job(4).await;
        let held = JobState::new(&store, "app").held().unwrap().unwrap();
        for outcome in [
            ApproveOutcome::NothingHeld,
            ApproveOutcome::Approved { held: held.clone() },
            ApproveOutcome::Mismatch { held: held.clone() },
        ] {
            let mut v = serde_json::to_value(&outcome).unwrap();
            v["status"] = json!({"name": "app"});
            assert_eq!(approval_from_api(&v).unwrap(), outcome);
        }
        assert!(approval_from_api(&json!({"result": "maybe"})).is_err());
    }

    #[test]
    fn restart_says_escrowed_objects_are_retried_not_dropped() {
        let s = RestartSummary {
            watermark_cleared: true,
            escrows_due_now: 3,
            quarantine_lifted: true,
            links_forgotten: 0,
            escrows_dropped: 0,
        };
        let text = restarted("app", &s, false);
        assert!(text.contains(&s.describe()), "{text}");
        assert!(text.contains("retries the 3 escrowed objects"), "{text}");
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(restart_summary(&v).unwrap(), s);

        // --json: what the API answers, with the job and the scopes.
        let scopes = ResetScope::DEFAULT.to_vec();
        let j = restart_json("app", &scopes, &s, true);
        assert_eq!(j["job"], "app");
        assert_eq!(j["scopes"], json!(["watermark", "escrows", "quarantine"]));
        assert_eq!(j["escrowsDueNow"], 3);
        assert_eq!(j["watermarkCleared"], true);
        assert_eq!(j["viaServe"], true);
        assert_eq!(j["description"], s.describe());
    }

    /// Issue 15: `approve-deletions --json` says in the API's words what was found and done,
    /// with the whole held set, for a dry run, an approval, a stale fingerprint and nothing held.
    #[tokio::test]
    async fn approval_json_names_the_result_and_the_held_set() {
        let (_, store) = held_job(4).await;
        let held = JobState::new(&store, "app").held().unwrap().unwrap();

        let a = approve_in_store(&store, "app", None, true, now()).unwrap();
        let j = approval_json(&a, "app", None, false);
        assert_eq!(
            (j["result"].clone(), j["dryRun"].clone()),
            (json!("held"), json!(true))
        );
        assert_eq!(j["held"]["fingerprint"], json!(held.fingerprint));
        assert_eq!(j["held"]["ops"].as_array().unwrap().len(), 4);

        let stale = "0123456789abcdef";
        let a = approve_in_store(&store, "app", Some(stale), false, now()).unwrap();
        let j = approval_json(&a, "app", Some(stale), false);
        assert_eq!(j["result"], "mismatch");
        assert_eq!(j["fingerprintGiven"], stale);
        assert_eq!(j["held"]["fingerprint"], json!(held.fingerprint));
        assert_eq!(
            approval_text("app", Path::new("jobs"), &a, Some(stale), false).1,
            1
        );

        let a = approve_in_store(&store, "app", Some(&held.fingerprint), false, now()).unwrap();
        let j = approval_json(&a, "app", Some(&held.fingerprint), false);
        assert_eq!(j["result"], "approved");
        assert_eq!(j["dryRun"], false);
        let back: HeldDeletions = serde_json::from_value(j["held"].clone()).unwrap();
        assert_eq!(back.ops.len(), 4);

        let (_, empty) = held_job(1).await;
        let a = approve_in_store(&empty, "app", None, false, now()).unwrap();
        let j = approval_json(&a, "app", None, false);
        assert_eq!(j["result"], "nothingHeld");
        assert!(j["held"].is_null(), "{j}");
    }
}

/// The admin listener's transport: TLS from the service file, the refusal of plain HTTP beyond
/// loopback, and the commands reaching a running `serve` over HTTPS.
#[cfg(test)]
mod admin_tests {
    use super::*;
    use scimsync_core::UserScope;
    use scimsync_service::{PlainRender, ServiceOptions};
    use scimsync_store::MemoryStore;
    use scimsync_testkit::doubles::{MemorySource, MemoryTarget};

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../api/tests/fixtures");
    const TOKEN: &str = "cli-admin-token";

    fn fixture(name: &str) -> String {
        format!("{FIXTURES}/{name}")
    }

    /// A config directory with `scimsync.toml` holding `admin` (the `[admin]` table's body).
    fn config_dir(admin: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(SERVICE_FILE), format!("[admin]\n{admin}")).unwrap();
        dir
    }

    fn loaded(dir: &Path) -> AdminConfig {
        scimsync_config::load_service(&dir.join(SERVICE_FILE))
            .unwrap()
            .admin
    }

    #[tokio::test]
    async fn serve_refuses_plain_http_beyond_loopback_with_exit_2() {
        let dir = config_dir("bind = \"0.0.0.0:0\"\ntoken = \"env:SCIMSYNC_TEST_UNSET\"\n");
        let state = tempfile::tempdir().unwrap();
        assert_eq!(serve_as(dir.path(), state.path(), LogFormat::Text).await, 2);
        // Nothing was started or written.
        assert_eq!(std::fs::read_dir(state.path()).unwrap().count(), 0);

        // The same holds for settings made in code, not read from a file.
        let mut admin = AdminConfig {
            bind: "0.0.0.0:8787".parse().unwrap(),
            ..AdminConfig::default()
        };
        let e = admin_transport(&admin).unwrap_err();
        assert!(e[0].contains("beyond loopback without TLS"), "{e:?}");
        admin.allow_plain_http = true;
        assert!(admin_transport(&admin).unwrap().is_none());
        assert!(admin_transport(&AdminConfig::default()).unwrap().is_none());
    }

    #[test]
    fn unusable_certificates_and_keys_are_errors_at_their_keys() {
        let dir = config_dir(&format!(
            "tls_cert = \"file:{}\"\ntls_key = \"file:{}\"\n",
            fixture("admin-cert.pem"),
            fixture("other-key.pem")
        ));
        let file = dir.path().join(SERVICE_FILE).display().to_string();
        let e = admin_transport(&loaded(dir.path())).unwrap_err();
        assert_eq!(
            e,
            [format!(
                "{file}:3:11: admin.tls_key: does not belong to the certificate in tls_cert (the \
                 first certificate of the chain must be the one this key is for)"
            )]
        );

        let dir = config_dir(&format!(
            "tls_cert = \"file:{}\"\ntls_key = \"file:missing-key.pem\"\n",
            fixture("admin-key.pem")
        ));
        let file = dir.path().join(SERVICE_FILE).display().to_string();
        let e = admin_transport(&loaded(dir.path())).unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with(&format!(
                "{file}:3:11: admin.tls_key: cannot read the private key"
            )),
            "{e:?}"
        );
        // The certificate is fine to read but is a key: found once the key is readable.
        std::fs::copy(fixture("admin-key.pem"), dir.path().join("missing-key.pem")).unwrap();
        let e = admin_transport(&loaded(dir.path())).unwrap_err();
        assert_eq!(
            e,
            [format!(
                "{file}:2:12: admin.tls_cert: holds a private key, not a certificate (PEM CERTIFICATE)"
            )]
        );
        // Never the key's content.
        let key = std::fs::read_to_string(fixture("admin-key.pem")).unwrap();
        let body = key.lines().nth(1).unwrap();
        assert!(!format!("{e:?}").contains(body));

        let dir = config_dir(&format!(
            "tls_cert = \"file:{}\"\ntls_key = \"file:{}\"\n",
            fixture("admin-cert.pem"),
            fixture("admin-key.pem")
        ));
        assert!(admin_transport(&loaded(dir.path())).unwrap().is_some());
    }

    #[tokio::test]
    async fn commands_reach_serve_over_https_trusting_the_configured_certificate() {
        let mut service = scimsync_service::Service::new(ServiceOptions::system());
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
            })
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let dir = config_dir(&format!(
            "bind = \"127.0.0.1:{port}\"\ntoken = \"file:token\"\n\
             tls_cert = \"file:{}\"\ntls_key = \"file:{}\"\n",
            fixture("admin-cert.pem"),
            fixture("admin-key.pem")
        ));
        std::fs::write(dir.path().join("token"), TOKEN).unwrap();
        let admin = loaded(dir.path());
        let tls = admin_transport(&admin).unwrap();
        assert!(tls.is_some());
        let app = scimsync_api::router_with(
            service.handle(),
            Some(Secret::inline(TOKEN)),
            scimsync_api::Options {
                tls: true,
                ..Default::default()
            },
        );
        let cancel = service.cancel_token();
        let server = tokio::spawn(scimsync_api::tls::serve(listener, app, tls, async move {
            cancel.cancelled().await
        }));

        let (base, _) = admin_client(&admin, std::time::Duration::from_secs(5)).unwrap();
        assert_eq!(base, format!("https://127.0.0.1:{port}"));
        let state = tempfile::tempdir().unwrap();
        let v = via_api(
            dir.path(),
            state.path(),
            "GET",
            "/api/jobs/app",
            Value::Null,
        )
        .await
        .unwrap();
        assert_eq!(v["name"], "app", "{v}");
        let (status, v) = via_api_raw(
            dir.path(),
            state.path(),
            "POST",
            "/api/jobs/app/restart",
            json!({"scopes": ["nonsense"]}),
        )
        .await
        .unwrap();
        assert_eq!(status, 400, "{v}");

        // A CLI whose service file names another certificate refuses to talk (and so never
        // sends the token to a server it cannot trust).
        let other = config_dir(&format!(
            "bind = \"127.0.0.1:{port}\"\ntoken = \"file:token\"\n\
             tls_cert = \"file:{}\"\ntls_key = \"file:{}\"\n",
            fixture("other-cert.pem"),
            fixture("other-key.pem")
        ));
        std::fs::write(other.path().join("token"), TOKEN).unwrap();
        let e = via_api(other.path(), state.path(), "GET", "/api/jobs", Value::Null)
            .await
            .unwrap_err();
        let e = format!("{e:#}");
        assert!(
            e.contains(&format!(
                "the admin API at https://127.0.0.1:{port} is not reachable"
            )),
            "{e}"
        );
        assert!(
            e.contains("another certificate than [admin] tls_cert"),
            "{e}"
        );

        // Without TLS in the service file the CLI speaks plain HTTP, which the TLS port does
        // not answer.
        let plain = config_dir(&format!(
            "bind = \"127.0.0.1:{port}\"\ntoken = \"file:token\"\n"
        ));
        std::fs::write(plain.path().join("token"), TOKEN).unwrap();
        assert!(
            via_api(plain.path(), state.path(), "GET", "/api/jobs", Value::Null)
                .await
                .is_err()
        );

        service.shutdown().await;
        server.await.unwrap().unwrap();
    }

    #[test]
    fn the_token_origin_names_where_the_token_is_never_the_token() {
        use scimsync_config::SecretRef;
        let state = Path::new("/var/lib/scimsync");
        let mut admin = AdminConfig::default();
        assert_eq!(
            token_origin(&admin, state),
            "generated token written to /var/lib/scimsync/admin-token"
        );
        admin.token = Some(SecretRef::env("SCIMSYNC_ADMIN_TOKEN"));
        assert_eq!(
            token_origin(&admin, state),
            "token from env:SCIMSYNC_ADMIN_TOKEN"
        );
        admin.token = Some(SecretRef::literal("hunter2-admin"));
        let said = token_origin(&admin, state);
        assert_eq!(said, format!("token set in {SERVICE_FILE}"));
        assert!(!said.contains("hunter2"));
    }

    #[test]
    fn the_dashboard_url_of_an_unspecified_bind_is_on_loopback() {
        let url = |a: &str| browsable(a.parse().unwrap()).to_string();
        assert_eq!(url("0.0.0.0:8787"), "127.0.0.1:8787");
        assert_eq!(url("[::]:8787"), "[::1]:8787");
        assert_eq!(url("192.0.2.7:8443"), "192.0.2.7:8443");
    }

    #[test]
    fn an_unspecified_bind_is_reached_on_loopback_of_its_family() {
        let mut admin = AdminConfig {
            bind: "0.0.0.0:8787".parse().unwrap(),
            ..AdminConfig::default()
        };
        let (base, _) = admin_client(&admin, std::time::Duration::from_secs(1)).unwrap();
        assert_eq!(base, "http://127.0.0.1:8787");
        admin.bind = "[::]:8787".parse().unwrap();
        let (base, _) = admin_client(&admin, std::time::Duration::from_secs(1)).unwrap();
        assert_eq!(base, "http://[::1]:8787");
    }
}
