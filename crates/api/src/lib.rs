//! The admin HTTP API of `scimsync serve` (axum 0.8).
//!
//! Every endpoint requires `Authorization: Bearer <token>`, compared in constant time; a
//! request without it gets 401 with a JSON error. A router built without a token refuses
//! everything (`serve` generates a token when none is configured). Bind it to loopback unless
//! the service file says otherwise; beyond loopback `serve` speaks HTTPS ([`tls`], `[admin]
//! tls_cert` and `tls_key`) unless `allow_plain_http = true`. Failed authentication is limited
//! per client address (429 with `Retry-After`), and every answer carries the security headers
//! of [`guard`].
//!
//! | method | path | does |
//! |---|---|---|
//! | GET | `/healthz` | liveness for container and service managers: `{"status":"ok"}`, **no token**, nothing about the jobs |
//! | GET | `/api/jobs` | every job's status |
//! | GET | `/api/jobs/{name}` | one job's status |
//! | POST | `/api/jobs/{name}/start` · `stop` · `pause` | provisioning on / off / paused |
//! | POST | `/api/jobs/{name}/run` | a cycle now |
//! | POST | `/api/jobs/{name}/restart` | `{"scopes":["watermark","escrows","quarantine","full"]}` (optional) |
//! | POST | `/api/jobs/{name}/approve-deletions` | Entra's "Allow deletes" for exactly the held set; `{"fingerprint":"…"}` (optional) approves only if it still matches |
//! | GET | `/api/jobs/{name}/held` | the disables and deletes the last cycle held, every one, with the reasons and fingerprint (`{"held":null}` when none) |
//! | POST | `/api/jobs/{name}/provision` | `{"user":"id-or-upn"}` or `{"group":"id"}`, `"dryRun":bool` |
//! | POST | `/api/jobs/{name}/preview` | the next cycle as a dry run |
//! | GET | `/api/jobs/{name}/escrows` | objects waiting for a retry |
//!
//! `approve-deletions` answers `{"result":"approved","held":{…},"status":{…}}`, or
//! `{"result":"nothingHeld","message":…,"status":{…}}` (nothing was approved), both 200; a
//! fingerprint that no longer matches is 409 `HeldSetChanged` with `"result":"mismatch"`, the
//! held set and the fingerprint given (nothing was approved). `restart` answers what it did,
//! with a `description` for people.
//!
//! Errors: `{"error":{"code":"…","message":"…"}}` with 400 (bad body), 401, 404 (unknown job
//! or object), 409 (the held set changed), 429 (too many failed authentications from this
//! address), 502 (the source or target failed), 503 (shutting down), 500 (state store).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use scimsync_core::{ErrorCode, Secret};
use scimsync_engine::{ApproveOutcome, ResetScope};
use scimsync_service::{CommandError, ServiceHandle, Subject};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use subtle::ConstantTimeEq;

pub mod dashboard;
pub mod graph_api;
pub mod guard;
pub mod logs;
pub mod metrics;
pub mod tls;

pub use graph_api::{GraphJob, GraphJobs, with_graph_jobs};
pub use guard::{AuthLimit, Options};
pub use logs::{JobStore, JobStores, with_stores};

/// What every handler can reach, including the ones in [`extra_routes`].
#[derive(Clone)]
pub struct ApiState {
    pub handle: ServiceHandle,
}

/// The admin API with the default [`Options`] (plain HTTP). `token: None` refuses every
/// request.
pub fn router(handle: ServiceHandle, token: Option<Secret>) -> Router {
    router_with(handle, token, Options::default())
}

/// The admin API. `token: None` refuses every request.
pub fn router_with(handle: ServiceHandle, token: Option<Secret>, options: Options) -> Router {
    let auth = Arc::new(Auth {
        expected: token.map(|t| Sha256::digest(t.expose().as_bytes()).to_vec()),
        limiter: Mutex::new(guard::Limiter::new(options.auth_limit)),
    });
    let api = Router::new()
        .route("/api/jobs", get(list_jobs))
        .route("/api/jobs/{name}", get(job_status))
        .route("/api/jobs/{name}/start", post(start))
        .route("/api/jobs/{name}/stop", post(stop))
        .route("/api/jobs/{name}/pause", post(pause))
        .route("/api/jobs/{name}/run", post(run_now))
        .route("/api/jobs/{name}/restart", post(restart))
        .route("/api/jobs/{name}/approve-deletions", post(approve))
        .route("/api/jobs/{name}/held", get(held))
        .route("/api/jobs/{name}/provision", post(provision))
        .route("/api/jobs/{name}/preview", post(preview))
        .route("/api/jobs/{name}/escrows", get(escrows))
        .route("/api/jobs/{name}/commands/{id}", get(command))
        .merge(extra_routes())
        .fallback(not_found);
    let scheme = graph_api::Scheme(if options.tls { "https" } else { "http" });
    api.layer(middleware::from_fn_with_state(auth, require_token))
        .layer(axum::Extension(scheme))
        .layer(axum::Extension(graph_api::OnDemandLimit::default()))
        .with_state(ApiState { handle })
        // The dashboard page carries no data; what it shows comes from the endpoints above.
        .merge(dashboard::page())
        // Liveness only, so a health probe needs no token (and learns nothing).
        .route("/healthz", get(healthz))
        .layer(middleware::from_fn_with_state(
            options.tls,
            guard::security_headers,
        ))
}

// ---------------------------------------------------------------------------------------
// EXTRA ROUTES: `/metrics`, `/api/jobs/{name}/logs` and the dashboard page live in their own
// files (`dashboard.rs`, `metrics.rs`) and are merged here. They sit behind the same bearer
// token as everything else. Add `mod dashboard;` at the top and `.merge(dashboard::routes())`
// below.
// ---------------------------------------------------------------------------------------
/// Routes contributed by other modules, merged into [`router`] behind the same auth.
fn extra_routes() -> Router<ApiState> {
    Router::new()
        .merge(logs::routes())
        .merge(metrics::routes())
        .merge(dashboard::routes())
        // Microsoft Graph's synchronization API and provisioning logs (`graph_api.rs`).
        .merge(graph_api::routes())
}

/// A JSON error body.
pub fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(json!({"error": {"code": code, "message": message.into()}})),
    )
        .into_response()
}

/// The token's hash, and the failed attempts per client.
struct Auth {
    expected: Option<Vec<u8>>,
    limiter: Mutex<guard::Limiter>,
}

impl Auth {
    fn limiter(&self) -> std::sync::MutexGuard<'_, guard::Limiter> {
        self.limiter.lock().unwrap_or_else(|e| e.into_inner())
    }
}

async fn require_token(State(auth): State<Arc<Auth>>, req: Request, next: Next) -> Response {
    let addr = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let client = guard::Client::of(addr.map(|a| a.ip()));
    let graph = graph_api::is_graph_path(req.uri().path());
    let client_id: Option<String> = req
        .headers()
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let error = |status: StatusCode, code: &str, message: String| {
        if graph {
            let code = if status == StatusCode::UNAUTHORIZED {
                "InvalidAuthenticationToken"
            } else {
                code
            };
            graph_api::graph_error_for(status, code, message, client_id.as_deref())
        } else {
            error(status, code, message)
        }
    };
    let now = Instant::now();
    // Before the token is looked at: while refused, a good token is refused too, so guessing
    // learns nothing.
    let refused = auth.limiter().refused(client, now);
    if let Some(wait) = refused {
        let secs = guard::retry_after_secs(wait);
        let mut resp = error(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::TooManyRequests.as_str(),
            format!(
                "too many failed authentication attempts from this address; try again in {secs} s"
            ),
        );
        resp.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
        return resp;
    }
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|t| Sha256::digest(t.trim().as_bytes()).to_vec());
    let ok = match (auth.expected.as_ref(), given) {
        // Hashes have the same length, so the comparison time does not depend on the token.
        (Some(want), Some(got)) => bool::from(want.ct_eq(&got)),
        _ => false,
    };
    if !ok {
        if auth.limiter().failed(client, now) {
            let from =
                addr.map_or_else(|| "an unknown address".to_string(), |a| a.ip().to_string());
            tracing::warn!(
                "admin API: repeated failed authentication from {from}; refusing it for a while"
            );
        }
        let mut resp = error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "this API needs `Authorization: Bearer <admin token>`".to_string(),
        );
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        return resp;
    }
    next.run(req).await
}

async fn healthz() -> Response {
    ok(json!({"status": "ok"}))
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "NotFound", "no such endpoint")
}

fn command_error(e: CommandError) -> Response {
    match &e {
        CommandError::UnknownJob(_) => error(StatusCode::NOT_FOUND, "UnknownJob", e.to_string()),
        CommandError::NotFound(_) => error(StatusCode::NOT_FOUND, "NotFound", e.to_string()),
        CommandError::ShuttingDown(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ShuttingDown",
            e.to_string(),
        ),
        CommandError::Queued {
            job,
            command,
            replica,
        } => queued(job, *command, replica, &e),
        CommandError::Failed { code, message } => {
            let status = match code {
                ErrorCode::StateStoreFailed | ErrorCode::ConfigInvalid => {
                    StatusCode::INTERNAL_SERVER_ERROR
                }
                _ => StatusCode::BAD_GATEWAY,
            };
            error(status, code.as_str(), message.clone())
        }
    }
}

/// 202: another replica runs the job and carries the action out (see `/commands/{id}`).
fn queued(job: &str, command: i64, replica: &Option<String>, e: &CommandError) -> Response {
    let v = json!({
        "queued": true,
        "job": job,
        "command": command,
        "replica": replica,
        "message": e.to_string(),
        "poll": format!("/api/jobs/{job}/commands/{command}"),
    });
    (StatusCode::ACCEPTED, axum::Json(v)).into_response()
}

/// A forwarded action: queued, taken by a replica, or done with its outcome.
async fn command(State(s): State<ApiState>, Path((name, id)): Path<(String, i64)>) -> Response {
    use scimsync_service::forward::Progress;
    match s.handle.command(&name, id).await {
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("job {name} has no forwarded action {id}"),
        ),
        Ok(Some(Progress::Queued)) => ok(json!({"command": id, "state": "queued"})),
        Ok(Some(Progress::Taken { by })) => {
            ok(json!({"command": id, "state": "taken", "replica": by}))
        }
        Ok(Some(Progress::Done(outcome))) => {
            let (result, err) = match outcome {
                Ok(v) => (v, Value::Null),
                Err(e) => (Value::Null, json!({"message": e.to_string()})),
            };
            ok(json!({"command": id, "state": "done", "result": result, "error": err}))
        }
        Err(e) => command_error(e),
    }
}

fn ok(v: impl serde::Serialize) -> Response {
    axum::Json(v).into_response()
}

fn respond<T: serde::Serialize>(r: Result<T, CommandError>) -> Response {
    r.map_or_else(command_error, ok)
}

async fn list_jobs(State(s): State<ApiState>) -> Response {
    ok(json!({"jobs": s.handle.jobs()}))
}

async fn job_status(State(s): State<ApiState>, Path(name): Path<String>) -> Response {
    respond(s.handle.status(&name))
}

async fn escrows(State(s): State<ApiState>, Path(name): Path<String>) -> Response {
    respond(s.handle.escrows(&name).map(|e| json!({"escrows": e})))
}

/// After a state change, answer with the job's new status.
async fn then_status(s: &ApiState, name: &str, r: Result<(), CommandError>) -> Response {
    respond(r.and_then(|_| s.handle.status(name)))
}

async fn start(State(s): State<ApiState>, Path(name): Path<String>) -> Response {
    let r = s.handle.start(&name).await;
    then_status(&s, &name, r).await
}

async fn stop(State(s): State<ApiState>, Path(name): Path<String>) -> Response {
    let r = s.handle.stop(&name).await;
    then_status(&s, &name, r).await
}

async fn pause(State(s): State<ApiState>, Path(name): Path<String>) -> Response {
    let r = s.handle.pause(&name).await;
    then_status(&s, &name, r).await
}

async fn run_now(State(s): State<ApiState>, Path(name): Path<String>) -> Response {
    let r = s.handle.run_now(&name).await;
    then_status(&s, &name, r).await
}

async fn held(State(s): State<ApiState>, Path(name): Path<String>) -> Response {
    respond(s.handle.held(&name).map(|h| json!({"held": h})))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApproveBody {
    /// Approve only if the held set still has this fingerprint.
    fingerprint: Option<String>,
}

async fn approve(State(s): State<ApiState>, Path(name): Path<String>, bytes: Bytes) -> Response {
    let b: ApproveBody = match body(&bytes) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let expected = b.fingerprint.clone();
    let outcome = match s.handle.approve_deletions(&name, b.fingerprint).await {
        Ok(o) => o,
        Err(e) => return command_error(e),
    };
    let mut v = serde_json::to_value(&outcome).unwrap_or(Value::Null);
    match &outcome {
        ApproveOutcome::Mismatch { held } => {
            let message = format!(
                "the held set changed: its fingerprint is {}, not {}; nothing was approved",
                held.fingerprint,
                expected.as_deref().unwrap_or("")
            );
            v["error"] = json!({"code": "HeldSetChanged", "message": message});
            v["expected"] = json!(expected);
            (StatusCode::CONFLICT, axum::Json(v)).into_response()
        }
        ApproveOutcome::NothingHeld | ApproveOutcome::Approved { .. } => {
            if matches!(outcome, ApproveOutcome::NothingHeld) {
                v["message"] = json!(format!(
                    "nothing is held for job {name}; nothing was approved"
                ));
            }
            match s.handle.status(&name) {
                Ok(st) => {
                    v["status"] = serde_json::to_value(st).unwrap_or(Value::Null);
                    ok(v)
                }
                Err(e) => command_error(e),
            }
        }
    }
}

/// An optional JSON body: empty means all defaults.
fn body<T: for<'de> Deserialize<'de> + Default>(bytes: &Bytes) -> Result<T, Box<Response>> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(bytes).map_err(|e| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("invalid JSON body: {e}"),
        ))
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RestartBody {
    #[serde(default)]
    scopes: Vec<String>,
}

async fn restart(State(s): State<ApiState>, Path(name): Path<String>, bytes: Bytes) -> Response {
    let b: RestartBody = match body(&bytes) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let mut scopes = Vec::new();
    for raw in &b.scopes {
        match ResetScope::parse(raw) {
            Some(sc) => scopes.push(sc),
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    format!("unknown scope {raw:?}: use watermark, escrows, quarantine or full"),
                );
            }
        }
    }
    respond(s.handle.restart(&name, scopes).await.map(|summary| {
        let mut v = serde_json::to_value(&summary).unwrap_or(Value::Null);
        v["description"] = json!(summary.describe());
        v
    }))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ProvisionBody {
    user: Option<String>,
    group: Option<String>,
    #[serde(default)]
    dry_run: bool,
}

async fn provision(State(s): State<ApiState>, Path(name): Path<String>, bytes: Bytes) -> Response {
    let b: ProvisionBody = match body(&bytes) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let subject = match (b.user, b.group) {
        (Some(u), None) if !u.trim().is_empty() => Subject::User(u),
        (None, Some(g)) if !g.trim().is_empty() => Subject::Group(g),
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "give exactly one of \"user\" (object id or UPN) and \"group\" (object id)",
            );
        }
    };
    respond(
        s.handle
            .provision(&name, subject, b.dry_run)
            .await
            .map(|objects| json!({"dryRun": b.dry_run, "objects": objects})),
    )
}

async fn preview(State(s): State<ApiState>, Path(name): Path<String>) -> Response {
    respond(s.handle.preview(&name).await.map(|v: Value| v))
}
