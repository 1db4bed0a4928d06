//! The part of Microsoft Graph's synchronization API that automation uses (wire contract
//! `entra-sync-api-contract.md` Part B), served beside the admin API under `/v1.0` and
//! `/beta` (same handlers), behind the same bearer token.
//!
//! | method | path | does |
//! |---|---|---|
//! | GET | `/v1.0/servicePrincipals/{id}/synchronization/jobs` | `{"value":[synchronizationJob…]}` |
//! | GET | `…/jobs/{jobId}` | one `synchronizationJob` (`schedule`, `status`) |
//! | POST | `…/jobs/{jobId}/start` · `pause` | 204 |
//! | POST | `…/jobs/{jobId}/restart` | 204; `{"criteria":{"resetScope":"Watermark, Escrows, QuarantineState"}}` (optional) |
//! | POST | `…/jobs/{jobId}/provisionOnDemand` | 200 `stringKeyStringValuePair` (5 per 10 s per job, then 429) |
//! | GET | `…/jobs/{jobId}/schema` | the job as Entra's `synchronizationSchema` (needs [`with_graph_jobs`]) |
//! | PUT | `…/jobs/{jobId}/schema` | 403 `Authorization_RequestDenied`: job files are edited by hand |
//! | GET | `…/jobs/{jobId}/schema/filterOperators` | the 14 scoping operators |
//! | POST | `…/jobs/{jobId}/validateCredentials` | 204, or 400 `CredentialValidationFailed`: Entra's Test Connection against the given or saved target |
//! | GET | `/v1.0/auditLogs/provisioning` | `provisioningObjectSummary`, every job, newest first; `$filter`, `$top`, `$orderby`, `@odata.nextLink` |
//!
//! Decisions (scimsync's, the contract's `[scimsync]`): `{jobId}` is the job's `name`. `{id}` is the job's `[source]
//! service_principal_id`; a job without one — and every job when the router was not given the
//! job files with [`with_graph_jobs`] — answers under any `{id}`. An `{id}` no job answers
//! under is 404 `Request_ResourceNotFound`. Errors use Graph's envelope
//! `{"error":{"code","message","innerError":{"date","request-id","client-request-id"}}}`;
//! every answer carries `request-id` and echoes `client-request-id`.
//!
//! Choices resting on what the contract marks unconfirmed or inferred, free to change when
//! evidence comes: 404 `Request_ResourceNotFound` for an unknown service principal or job;
//! 400 `CredentialValidationFailed` for a failed connection test; `synchronizedEntryCountByType`
//! keys `User` and `Group`; the JSON spellings of 6 of the 14 filter operators (`ENDS_WITH`,
//! `Includes`, `Greater_Than`, `Greater_Than_OR_EQUALS`, `&`, `!&`); `$top` 100 by default, at
//! most 1000; `eq` on `provisioningStatusInfo/status`; `resetScope` `ConnectorDataStore` runs
//! the full reset (scimsync cannot forget its links alone) and `ForceDeletes` approves the held
//! set (`approve-deletions`). Also scimsync's: `start` lifts a quarantine except
//! `TooManyDeletes` (that one waits for approval); `PUT …/schema` is always refused; on demand, a
//! group is provisioned with its members as `provision --group` does (`links` is not read); log
//! entries are `initiatedBy` `system`; `lastSuccessfulExecution` is the last cycle when it had no
//! errors (earlier cycles are not kept); the steady-state times read "never".

use crate::ApiState;
use crate::logs::{JobStores, blocking, mask, name_of};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, OriginalUri, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, SecondsFormat, Utc};
use scimsync_core::{ErrorCode, LogEntry, LogStatus};
use scimsync_engine::ResetScope;
use scimsync_service::CommandError;
use scimsync_service::{JobState, JobStatus, Subject};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the Graph endpoints know of a job beyond its status: from its job file.
#[derive(Debug, Clone, Default)]
pub struct GraphJob {
    /// `[source] service_principal_id`: the `{id}` the job answers under (any when `None`).
    pub service_principal_id: Option<String>,
    pub tenant_id: String,
    /// Fed to `synchronizationJobSettings` as `QuarantineTooManyDeletesThreshold`.
    pub deletion_threshold: usize,
    /// The cron expression, when the job runs on one (the interval comes from the status).
    pub cron: Option<String>,
    /// The job as Entra's `synchronizationSchema` (`scimsync export-entra`).
    pub schema: Option<Value>,
    /// `[target]` url, token reference and timeout: what `validateCredentials` tests with
    /// `useSavedCredentials`.
    pub target: Option<SavedTarget>,
}

/// The job's saved SCIM credentials (the token as its reference, resolved when tested).
#[derive(Debug, Clone)]
pub struct SavedTarget {
    pub url: String,
    pub token: scimsync_config::SecretRef,
    pub timeout: Duration,
}

impl GraphJob {
    pub fn from_config(cfg: &scimsync_config::JobConfig) -> Self {
        let schema = serde_json::to_value(&scimsync_config::entra_schema::export(cfg).schema).ok();
        GraphJob {
            service_principal_id: cfg.source.service_principal_id.clone(),
            tenant_id: cfg.source.tenant_id.clone(),
            deletion_threshold: cfg.deletion_threshold as usize,
            cron: match &cfg.schedule {
                scimsync_config::Schedule::Cron(c) => Some(c.clone()),
                scimsync_config::Schedule::Interval(_) => None,
            },
            schema,
            target: Some(SavedTarget {
                url: cfg.target.url.clone(),
                token: cfg.target.token.clone(),
                timeout: cfg.target.timeout,
            }),
        }
    }
}

/// The jobs' Graph facts, by job name.
#[derive(Clone, Default)]
pub struct GraphJobs(Arc<BTreeMap<String, GraphJob>>);

impl GraphJobs {
    pub fn new(jobs: BTreeMap<String, GraphJob>) -> Self {
        GraphJobs(Arc::new(jobs))
    }
    pub fn from_configs(cfgs: &[scimsync_config::JobConfig]) -> Self {
        GraphJobs::new(
            cfgs.iter()
                .map(|c| (c.name.clone(), GraphJob::from_config(c)))
                .collect(),
        )
    }
    pub fn get(&self, job: &str) -> Option<&GraphJob> {
        self.0.get(job)
    }
}

/// Give the Graph endpoints of `router` the jobs' files (service principal ids, tenant,
/// deletion threshold, schema): `with_graph_jobs(router, GraphJobs::from_configs(&jobs))`.
pub fn with_graph_jobs(router: Router, jobs: GraphJobs) -> Router {
    router.layer(Extension(jobs))
}

/// `http` or `https`, for `@odata.context` and `@odata.nextLink`.
#[derive(Clone, Copy)]
pub(crate) struct Scheme(pub &'static str);

/// Provision on demand: Entra's limit of 5 requests per 10 s per job.
#[derive(Clone, Default)]
pub(crate) struct OnDemandLimit(Arc<Mutex<HashMap<String, VecDeque<Instant>>>>);

const ON_DEMAND_MAX: usize = 5;
const ON_DEMAND_WINDOW: Duration = Duration::from_secs(10);

impl OnDemandLimit {
    /// `Err(wait)` when the job had its 5 requests in the last 10 s.
    fn take(&self, job: &str, now: Instant) -> Result<(), Duration> {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let q = m.entry(job.to_string()).or_default();
        while q
            .front()
            .is_some_and(|t| now.duration_since(*t) >= ON_DEMAND_WINDOW)
        {
            q.pop_front();
        }
        if q.len() >= ON_DEMAND_MAX {
            let oldest = q.front().copied().unwrap_or(now);
            return Err(ON_DEMAND_WINDOW.saturating_sub(now.duration_since(oldest)));
        }
        q.push_back(now);
        Ok(())
    }
}

const JOB: &str = "/servicePrincipals/{id}/synchronization/jobs/{job}";

fn versioned() -> Router<ApiState> {
    let jobs = "/servicePrincipals/{id}/synchronization/jobs";
    Router::new()
        .route(jobs, get(list_jobs).post(not_implemented))
        .route(
            JOB,
            get(get_job).delete(not_implemented).patch(not_implemented),
        )
        .route(&format!("{JOB}/start"), post(start))
        .route(&format!("{JOB}/pause"), post(pause))
        .route(&format!("{JOB}/restart"), post(restart))
        .route(
            &format!("{JOB}/provisionOnDemand"),
            post(provision_on_demand),
        )
        .route(&format!("{JOB}/schema"), get(get_schema).put(put_schema))
        .route(
            &format!("{JOB}/schema/filterOperators"),
            get(filter_operators),
        )
        .route(
            &format!("{JOB}/validateCredentials"),
            post(validate_credentials),
        )
        .route(
            "/servicePrincipals/{id}/synchronization/templates",
            get(not_implemented),
        )
        .route(
            "/servicePrincipals/{id}/synchronization/secrets",
            get(not_implemented).put(not_implemented),
        )
        .route("/auditLogs/provisioning", get(audit_logs))
        .fallback(graph_not_found)
}

/// The Graph routes, merged into the admin router behind the same auth.
pub(crate) fn routes() -> Router<ApiState> {
    Router::new()
        .nest("/v1.0", versioned())
        .nest("/beta", versioned())
        .layer(middleware::from_fn(request_ids))
}

/// Whether a path belongs to the Graph surface (its errors use Graph's codes).
pub(crate) fn is_graph_path(path: &str) -> bool {
    ["/v1.0", "/beta"]
        .iter()
        .any(|p| path == *p || path.starts_with(&format!("{p}/")))
}

static REQUEST_SEQ: AtomicU64 = AtomicU64::new(0);

/// A fresh `request-id` (UUID-shaped).
fn request_id() -> String {
    let n = REQUEST_SEQ.fetch_add(1, Ordering::Relaxed);
    let t = Utc::now().timestamp_nanos_opt().unwrap_or_default() as u64;
    let a = t ^ n.rotate_left(32);
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        (a >> 32) as u32,
        (a >> 16) as u16,
        a as u16 & 0xfff,
        n as u16 & 0xfff,
        (t.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ n) & 0xffff_ffff_ffff
    )
}

#[derive(Clone)]
struct Ids {
    request: String,
    client: Option<String>,
}

/// `request-id` on every answer, `client-request-id` echoed; both also reach error bodies.
async fn request_ids(mut req: Request, next: Next) -> Response {
    let ids = Ids {
        request: request_id(),
        client: req
            .headers()
            .get("client-request-id")
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(100).collect()),
    };
    req.extensions_mut().insert(ids.clone());
    let mut resp = next.run(req).await;
    if resp.status().is_client_error() || resp.status().is_server_error() {
        resp = with_inner_ids(resp, &ids).await;
    }
    if let Ok(v) = HeaderValue::from_str(&ids.request) {
        resp.headers_mut().insert("request-id", v);
    }
    if let Some(c) = ids
        .client
        .as_deref()
        .and_then(|c| HeaderValue::from_str(c).ok())
    {
        resp.headers_mut().insert("client-request-id", c);
    }
    resp
}

/// Error bodies were built without the request's ids: put them in `innerError`.
async fn with_inner_ids(resp: Response, ids: &Ids) -> Response {
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 1 << 20).await else {
        return (parts, axum::body::Body::empty()).into_response();
    };
    let Ok(mut v) = serde_json::from_slice::<Value>(&bytes) else {
        return (parts, axum::body::Body::from(bytes)).into_response();
    };
    if let Some(inner) = v
        .pointer_mut("/error/innerError")
        .and_then(Value::as_object_mut)
    {
        inner.insert("request-id".into(), json!(ids.request));
        inner.insert("client-request-id".into(), json!(ids.client));
    }
    let out = serde_json::to_vec(&v).unwrap_or_else(|_| bytes.to_vec());
    parts.headers.remove(header::CONTENT_LENGTH);
    (parts, axum::body::Body::from(out)).into_response()
}

/// Graph's error envelope.
pub fn graph_error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    graph_error_for(status, code, message, None)
}

/// Graph's error envelope for a request whose `client-request-id` is known: the body's
/// `innerError` and the headers carry the same ids.
pub(crate) fn graph_error_for(
    status: StatusCode,
    code: &str,
    message: impl Into<String>,
    client: Option<&str>,
) -> Response {
    let date = Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string();
    let request = request_id();
    let client: Option<String> = client.map(|c| c.chars().take(100).collect());
    let mut resp = (
        status,
        axum::Json(json!({"error": {
            "code": code,
            "message": message.into(),
            "innerError": {"date": date, "request-id": request, "client-request-id": client},
        }})),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&request) {
        resp.headers_mut().insert("request-id", v);
    }
    if let Some(c) = client
        .as_deref()
        .and_then(|c| HeaderValue::from_str(c).ok())
    {
        resp.headers_mut().insert("client-request-id", c);
    }
    resp
}

fn not_found(message: impl Into<String>) -> Response {
    graph_error(StatusCode::NOT_FOUND, "Request_ResourceNotFound", message)
}

fn bad_request(code: &str, message: impl Into<String>) -> Response {
    graph_error(StatusCode::BAD_REQUEST, code, message)
}

async fn graph_not_found(OriginalUri(uri): OriginalUri) -> Response {
    bad_request(
        "BadRequest",
        format!(
            "Resource not found for the segment in {:?}: scimsync serves the synchronization jobs of servicePrincipals and auditLogs/provisioning",
            uri.path()
        ),
    )
}

async fn not_implemented() -> Response {
    graph_error(
        StatusCode::NOT_IMPLEMENTED,
        "NotImplemented",
        "scimsync does not create or delete jobs, templates or secrets through Graph: edit the job files",
    )
}

fn command_error(e: CommandError) -> Response {
    match &e {
        CommandError::UnknownJob(_) => not_found(e.to_string()),
        CommandError::NotFound(m) => bad_request("RequestParameterInvalid", m.clone()),
        CommandError::ShuttingDown(_) => graph_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            e.to_string(),
        ),
        // Another replica runs the job: accepted, carried out there.
        CommandError::Queued { .. } => graph_error(StatusCode::ACCEPTED, "Accepted", e.to_string()),
        CommandError::Failed { code, message } => {
            let (status, c) = match code {
                ErrorCode::StateStoreFailed | ErrorCode::ConfigInvalid => {
                    (StatusCode::INTERNAL_SERVER_ERROR, "InternalError")
                }
                _ => (StatusCode::BAD_GATEWAY, code.as_str()),
            };
            graph_error(status, c, message.clone())
        }
    }
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// `{scheme}://{host}/v1.0` (or `/beta`), as the client called it.
fn base(headers: &HeaderMap, uri: &axum::http::Uri, scheme: Option<Extension<Scheme>>) -> String {
    let scheme = scheme.map_or("http", |Extension(s)| s.0);
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))
        .unwrap_or("localhost");
    let version = if uri.path().starts_with("/beta") {
        "beta"
    } else {
        "v1.0"
    };
    format!("{scheme}://{host}/{version}")
}

/// Does `{id}` name this job's service principal?
fn answers_under(jobs: Option<&GraphJobs>, job: &str, sp: &str) -> bool {
    match jobs
        .and_then(|j| j.get(job))
        .and_then(|g| g.service_principal_id.as_deref())
    {
        Some(want) => want.eq_ignore_ascii_case(sp),
        None => true,
    }
}

/// The job `{jobId}` under `{id}`, or Graph's 404.
#[allow(clippy::result_large_err)]
fn find_job(
    s: &ApiState,
    jobs: Option<&GraphJobs>,
    sp: &str,
    job: &str,
) -> Result<JobStatus, Response> {
    let status = s.handle.status(job).map_err(command_error)?;
    if !answers_under(jobs, job, sp) {
        return Err(not_found(format!(
            "service principal {sp} has no synchronization job {job}"
        )));
    }
    Ok(status)
}

const NEVER: &str = "0001-01-01T00:00:00Z";

/// UTC with `Z`, at most microseconds (what every Graph SDK's date parser reads).
fn time(t: DateTime<Utc>) -> String {
    use chrono::SubsecRound;
    t.trunc_subsecs(6)
        .to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// `40m` → `PT40M`, `1h30m` → `PT1H30M`, `1d` → `P1D` (the status's schedule text).
pub fn iso_interval(text: &str) -> Option<String> {
    let (mut days, mut rest) = (0u64, String::new());
    let mut num = String::new();
    for ch in text.trim().chars() {
        if ch.is_ascii_digit() {
            num.push(ch);
            continue;
        }
        let n: u64 = num.parse().ok()?;
        num.clear();
        match ch {
            'd' => days += n,
            'h' => rest.push_str(&format!("{n}H")),
            'm' => rest.push_str(&format!("{n}M")),
            's' => rest.push_str(&format!("{n}S")),
            _ => return None,
        }
    }
    if !num.is_empty() {
        return None;
    }
    let mut out = "P".to_string();
    if days > 0 {
        out.push_str(&format!("{days}D"));
    }
    if !rest.is_empty() {
        out.push('T');
        out.push_str(&rest);
    }
    (out.len() > 1).then_some(out)
}

fn iso_duration(d: chrono::Duration) -> String {
    let secs = d.num_seconds().max(1) as u64;
    let (days, h, m, s) = (
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    let mut text = String::new();
    for (n, u) in [(days, "d"), (h, "h"), (m, "m"), (s, "s")] {
        if n > 0 {
            text.push_str(&format!("{n}{u}"));
        }
    }
    iso_interval(&text).unwrap_or_else(|| "PT40M".into())
}

fn interval(st: &JobStatus, g: Option<&GraphJob>) -> String {
    if let Some(expr) = g.and_then(|g| g.cron.as_deref())
        && let Ok(s) = scimsync_service::schedule::parse_cron(expr)
    {
        let mut it = s.after(&Utc::now());
        if let (Some(a), Some(b)) = (it.next(), it.next()) {
            return iso_duration(b - a);
        }
    }
    iso_interval(&st.schedule).unwrap_or_else(|| "P1D".into())
}

/// The last cycle as a `synchronizationTaskExecution`.
fn execution(l: &scimsync_engine::LastCycle) -> Value {
    let t = &l.tally;
    let exported = t.created + t.updated + t.disabled + t.deleted;
    let state = if t.failed > 0 {
        "EntryLevelErrors"
    } else {
        "Succeeded"
    };
    json!({
        "activityIdentifier": l.cycle_id,
        "countEntitled": l.source_users,
        "countEntitledForProvisioning": l.source_users,
        "countEscrowed": t.escrowed,
        "countEscrowedRaw": t.escrowed,
        "countExported": exported,
        "countExports": exported + t.failed,
        "countImported": l.source_users,
        "countImportedDeltas": if l.full_read { 0 } else { l.source_users },
        "countImportedReferenceDeltas": t.members_added + t.members_removed,
        "error": null,
        "state": state,
        "timeBegan": time(l.started),
        "timeEnded": time(l.finished),
    })
}

fn sync_error(code: Option<ErrorCode>, message: &str) -> Value {
    json!({
        "code": code.map_or("InternalError", |c| c.as_str()),
        "message": message,
        "tenantActionable": true,
    })
}

/// A job's status as Graph's `synchronizationJob`.
fn job_json(st: &JobStatus, g: Option<&GraphJob>, counts: Option<(u64, u64)>) -> Value {
    let schedule_state = match st.state {
        JobState::Off | JobState::Disabled => "Disabled",
        JobState::Paused => "Paused",
        _ => "Active",
    };
    let q = st.quarantine.as_ref();
    let code = match st.state {
        JobState::Off | JobState::Paused => "Paused",
        JobState::Quarantined | JobState::WaitingForApproval | JobState::Disabled => "Quarantine",
        _ if st.last_cycle.is_none() && st.last_error.is_none() => "NotRun",
        _ => "Active",
    };
    let last = st.last_cycle.as_ref().map(execution);
    let failed_whole = st.last_error.as_ref().map(|m| {
        let at = q.map_or(Value::Null, |q| json!(time(q.current_began)));
        json!({
            "activityIdentifier": "", "countEntitled": 0, "countEntitledForProvisioning": 0,
            "countEscrowed": 0, "countEscrowedRaw": 0, "countExported": 0, "countExports": 0,
            "countImported": 0, "countImportedDeltas": 0, "countImportedReferenceDeltas": 0,
            "state": "Failed", "timeBegan": at, "timeEnded": at,
            "error": sync_error(q.and_then(|q| q.error_code), m),
        })
    });
    let successful = last
        .clone()
        .filter(|l| l["state"] == "Succeeded" && st.last_error.is_none());
    let with_exports = successful
        .clone()
        .filter(|l| l["countExported"].as_u64().unwrap_or(0) > 0);
    let failures = match (q, &st.last_error) {
        (Some(q), Some(_)) => u64::from(q.series_count.max(1)),
        (None, Some(_)) => 1,
        _ => 0,
    };
    let progress = match (&st.progress, st.running_since) {
        (Some(p), Some(_)) => json!([{
            "completedUnits": p.done, "totalUnits": p.total, "units": p.phase,
            "progressObservationDateTime": time(Utc::now()),
        }]),
        _ => json!([]),
    };
    let quarantine = q.map(|q| {
        json!({
            "currentBegan": time(q.current_began),
            "nextAttempt": time(q.next_attempt),
            "reason": q.reason.as_str(),
            "seriesBegan": time(q.series_began),
            "seriesCount": q.series_count,
            "error": sync_error(q.error_code, &q.error),
        })
    });
    let (users, groups) = counts.unwrap_or((0, 0));
    let settings = g.map_or_else(Vec::new, |g| {
        vec![json!({"name": "QuarantineTooManyDeletesThreshold", "value": g.deletion_threshold.to_string()})]
    });
    json!({
        "id": st.name,
        "templateId": "scim",
        "schedule": {"expiration": null, "interval": interval(st, g), "state": schedule_state},
        "status": {
            "code": code,
            "countSuccessiveCompleteFailures": failures,
            "escrowsPruned": false,
            "lastExecution": failed_whole.or(last),
            "lastSuccessfulExecution": successful,
            "lastSuccessfulExecutionWithExports": with_exports,
            "progress": progress,
            "quarantine": quarantine,
            "steadyStateFirstAchievedTime": NEVER,
            "steadyStateLastAchievedTime": NEVER,
            "synchronizedEntryCountByType": [
                {"key": "User", "value": users},
                {"key": "Group", "value": groups},
            ],
            "troubleshootingUrl": null,
        },
        "synchronizationJobSettings": settings,
    })
}

/// Users and groups the job has linked (from its state store, when the router has it).
async fn counts(stores: Option<&JobStores>, job: &str) -> Option<(u64, u64)> {
    let js = stores?.get(job)?.clone();
    let job = job.to_string();
    blocking(move || {
        let all = js.store.list(&job)?;
        let groups = all
            .iter()
            .filter(|o| o.source_id.starts_with("group:"))
            .count() as u64;
        Ok((all.len() as u64 - groups, groups))
    })
    .await
    .ok()
}

type Jobs = Option<Extension<GraphJobs>>;
type Stores = Option<Extension<JobStores>>;
type SchemeExt = Option<Extension<Scheme>>;

fn ext<T>(e: &Option<Extension<T>>) -> Option<&T> {
    e.as_ref().map(|Extension(t)| t)
}

async fn list_jobs(
    State(s): State<ApiState>,
    jobs: Jobs,
    stores: Stores,
    scheme: SchemeExt,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Path(sp): Path<String>,
) -> Response {
    let mut value = Vec::new();
    for st in s.handle.jobs() {
        if !answers_under(ext(&jobs), &st.name, &sp) {
            continue;
        }
        let g = ext(&jobs).and_then(|j| j.get(&st.name));
        let c = counts(ext(&stores), &st.name).await;
        value.push(job_json(&st, g, c));
    }
    if value.is_empty() {
        return not_found(format!(
            "no synchronization job answers under service principal {sp}"
        ));
    }
    let ctx = format!(
        "{}/$metadata#servicePrincipals('{sp}')/synchronization/jobs",
        base(&headers, &uri, scheme)
    );
    axum::Json(json!({"@odata.context": ctx, "value": value})).into_response()
}

async fn get_job(
    State(s): State<ApiState>,
    jobs: Jobs,
    stores: Stores,
    scheme: SchemeExt,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Path((sp, job)): Path<(String, String)>,
) -> Response {
    let st = match find_job(&s, ext(&jobs), &sp, &job) {
        Ok(st) => st,
        Err(r) => return r,
    };
    let g = ext(&jobs).and_then(|j| j.get(&job));
    let mut v = job_json(&st, g, counts(ext(&stores), &job).await);
    v["@odata.context"] = json!(format!(
        "{}/$metadata#servicePrincipals('{sp}')/synchronization/jobs/$entity",
        base(&headers, &uri, scheme)
    ));
    axum::Json(v).into_response()
}

/// Entra's start resumes the job and lifts its quarantine (a `TooManyDeletes` one waits for
/// the held set to be approved: `restart` with `ForceDeletes`).
async fn start(
    State(s): State<ApiState>,
    jobs: Jobs,
    Path((sp, job)): Path<(String, String)>,
) -> Response {
    let st = match find_job(&s, ext(&jobs), &sp, &job) {
        Ok(st) => st,
        Err(r) => return r,
    };
    if let Err(e) = s.handle.start(&job).await {
        return command_error(e);
    }
    let quarantined = st
        .quarantine
        .as_ref()
        .is_some_and(|q| q.reason != scimsync_service::QuarantineReason::TooManyDeletes);
    if quarantined && let Err(e) = s.handle.restart(&job, vec![ResetScope::Quarantine]).await {
        return command_error(e);
    }
    no_content()
}

async fn pause(
    State(s): State<ApiState>,
    jobs: Jobs,
    Path((sp, job)): Path<(String, String)>,
) -> Response {
    if let Err(r) = find_job(&s, ext(&jobs), &sp, &job) {
        return r;
    }
    s.handle
        .pause(&job)
        .await
        .map_or_else(command_error, |_| no_content())
}

/// A JSON object body (empty = `{}`); property names are matched in any case.
#[allow(clippy::result_large_err)]
fn object_body(bytes: &Bytes) -> Result<Map<String, Value>, Response> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(bad_request("BadRequest", "the body must be a JSON object")),
        Err(e) => Err(bad_request("BadRequest", format!("invalid JSON body: {e}"))),
    }
}

/// A property in any case.
fn prop<'a>(m: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    m.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
        .filter(|v| !v.is_null())
}

/// What a `resetScope` asks of scimsync.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RestartPlan {
    pub scopes: Vec<ResetScope>,
    /// `ForceDeletes`: approve the held disables and deletes.
    pub force_deletes: bool,
    /// `None` alone: like start.
    pub start_only: bool,
}

/// `resetScope`: a comma list of Graph's `synchronizationJobRestartScope` names (exact).
pub fn parse_reset_scope(text: &str) -> Result<RestartPlan, String> {
    let mut plan = RestartPlan::default();
    let mut none = false;
    let mut any = false;
    for raw in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        any = true;
        let scope = match raw {
            "Watermark" => ResetScope::Watermark,
            "Escrows" => ResetScope::Escrows,
            "QuarantineState" => ResetScope::Quarantine,
            // scimsync cannot forget its links alone: the full reset does, with the rest.
            "ConnectorDataStore" | "Full" => ResetScope::Full,
            "ForceDeletes" => {
                plan.force_deletes = true;
                continue;
            }
            "None" => {
                none = true;
                continue;
            }
            other => {
                return Err(format!(
                    "unknown resetScope {other:?}: use None, ConnectorDataStore, Escrows, Watermark, QuarantineState, Full or ForceDeletes"
                ));
            }
        };
        if !plan.scopes.contains(&scope) {
            plan.scopes.push(scope);
        }
    }
    plan.start_only = none && plan.scopes.is_empty() && !plan.force_deletes;
    if !any {
        plan.scopes = ResetScope::DEFAULT.to_vec();
    }
    Ok(plan)
}

async fn restart(
    State(s): State<ApiState>,
    jobs: Jobs,
    Path((sp, job)): Path<(String, String)>,
    bytes: Bytes,
) -> Response {
    if let Err(r) = find_job(&s, ext(&jobs), &sp, &job) {
        return r;
    }
    let body = match object_body(&bytes) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let scope = match prop(&body, "criteria") {
        None => "",
        Some(Value::Object(c)) => match prop(c, "resetScope") {
            None => "",
            Some(Value::String(s)) => s.as_str(),
            Some(_) => {
                return bad_request("BadRequest", "criteria.resetScope must be a string");
            }
        },
        Some(_) => return bad_request("BadRequest", "criteria must be an object"),
    };
    let plan = match parse_reset_scope(scope) {
        Ok(p) => p,
        Err(m) => return bad_request("RequestParameterInvalid", m),
    };
    if plan.start_only {
        return s
            .handle
            .start(&job)
            .await
            .map_or_else(command_error, |_| no_content());
    }
    if !plan.scopes.is_empty()
        && let Err(e) = s.handle.restart(&job, plan.scopes.clone()).await
    {
        return command_error(e);
    }
    if plan.force_deletes
        && let Err(e) = s.handle.approve_deletions(&job, None).await
    {
        return command_error(e);
    }
    no_content()
}

/// The 14 scoping operators (contract A.3).
const OPERATORS: &[(&str, &str, &[&str])] = &[
    ("EQUALS", "Binary", &["String", "Integer"]),
    ("NOT EQUALS", "Binary", &["String", "Integer"]),
    ("REGEX MATCH", "Binary", &["String", "Integer"]),
    ("NOT REGEX MATCH", "Binary", &["String", "Integer"]),
    ("IS TRUE", "Unary", &["Boolean"]),
    ("IS FALSE", "Unary", &["Boolean"]),
    (
        "IS NULL",
        "Unary",
        &["Integer", "String", "Binary", "Boolean"],
    ),
    (
        "IS NOT NULL",
        "Unary",
        &["Integer", "String", "Binary", "Boolean"],
    ),
    ("ENDS_WITH", "Binary", &["String"]),
    ("Includes", "Binary", &["String"]),
    ("Greater_Than", "Binary", &["Integer"]),
    ("Greater_Than_OR_EQUALS", "Binary", &["Integer"]),
    ("&", "Binary", &["String"]),
    ("!&", "Binary", &["String"]),
];

async fn filter_operators(
    State(s): State<ApiState>,
    jobs: Jobs,
    scheme: SchemeExt,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Path((sp, job)): Path<(String, String)>,
) -> Response {
    if let Err(r) = find_job(&s, ext(&jobs), &sp, &job) {
        return r;
    }
    let value: Vec<Value> = OPERATORS
        .iter()
        .map(|(name, arity, types)| {
            json!({"name": name, "arity": arity, "multivaluedComparisonType": "All",
                   "supportedAttributeTypes": types})
        })
        .collect();
    let ctx = format!(
        "{}/$metadata#Collection(microsoft.graph.filterOperatorSchema)",
        base(&headers, &uri, scheme)
    );
    axum::Json(json!({"@odata.context": ctx, "value": value})).into_response()
}

async fn get_schema(
    State(s): State<ApiState>,
    jobs: Jobs,
    scheme: SchemeExt,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Path((sp, job)): Path<(String, String)>,
) -> Response {
    if let Err(r) = find_job(&s, ext(&jobs), &sp, &job) {
        return r;
    }
    match ext(&jobs)
        .and_then(|j| j.get(&job))
        .and_then(|g| g.schema.clone())
    {
        Some(mut v) => {
            if let Value::Object(m) = &mut v {
                m.insert(
                    "@odata.context".into(),
                    json!(format!(
                        "{}/$metadata#servicePrincipals('{sp}')/synchronization/jobs('{job}')/schema/$entity",
                        base(&headers, &uri, scheme)
                    )),
                );
            }
            axum::Json(v).into_response()
        }
        None => graph_error(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            "this server was started without the job files: the schema is not available",
        ),
    }
}

async fn put_schema(
    State(s): State<ApiState>,
    jobs: Jobs,
    Path((sp, job)): Path<(String, String)>,
) -> Response {
    if let Err(r) = find_job(&s, ext(&jobs), &sp, &job) {
        return r;
    }
    graph_error(
        StatusCode::FORBIDDEN,
        "Authorization_RequestDenied",
        "updating the schema through Graph is not enabled: edit the job file (scimsync import-entra)",
    )
}

/// The `synchronizationSecret` names a credential may carry (case-sensitive).
const SECRET_KEYS: &[&str] = &[
    "None",
    "UserName",
    "Password",
    "SecretToken",
    "AppKey",
    "BaseAddress",
    "ClientIdentifier",
    "ClientSecret",
    "SingleSignOnType",
    "Sandbox",
    "Url",
    "Domain",
    "ConsumerKey",
    "ConsumerSecret",
    "TokenKey",
    "TokenExpiration",
    "Oauth2AccessToken",
    "Oauth2AccessTokenCreationTime",
    "Oauth2RefreshToken",
    "SyncAll",
    "InstanceName",
    "Oauth2ClientId",
    "Oauth2ClientSecret",
    "CompanyId",
    "UpdateKeyOnSoftDelete",
    "SynchronizationSchedule",
    "SystemOfRecord",
    "SandboxName",
    "EnforceDomain",
    "SyncNotificationSettings",
    "SkipOutOfScopeDeletions",
    "Oauth2AuthorizationCode",
    "Oauth2RedirectUri",
    "ApplicationTemplateIdentifier",
    "Oauth2TokenExchangeUri",
    "Oauth2AuthorizationUri",
    "AuthenticationType",
    "Server",
    "PerformInboundEntitlementGrants",
    "HardDeletesEnabled",
    "SyncAgentCompatibilityKey",
    "SyncAgentADContainer",
    "ValidateDomain",
    "TestReferences",
    "ConnectionString",
];

/// `validateCredentials`: Entra's Test Connection (`scimsync test-connection`'s target probe:
/// a filter on a random `userName` must answer an empty list) against `BaseAddress` with
/// `SecretToken` from `credentials`, or against the job's `[target]` with
/// `useSavedCredentials: true` (or no `credentials`). Keys are `synchronizationSecret` names,
/// case-sensitive (400 `BadRequest` otherwise); a failed test is 400
/// `CredentialValidationFailed` (scimsync's code; Entra's is unconfirmed). Values are never echoed or logged. The caller holds
/// the admin token, which already lets it point jobs anywhere, so probing the `BaseAddress` it
/// names adds no reach.
async fn validate_credentials(
    State(s): State<ApiState>,
    jobs: Jobs,
    Path((sp, job)): Path<(String, String)>,
    bytes: Bytes,
) -> Response {
    if let Err(r) = find_job(&s, ext(&jobs), &sp, &job) {
        return r;
    }
    let body = match object_body(&bytes) {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Some(creds) = prop(&body, "credentials") {
        let Value::Array(items) = creds else {
            return bad_request("BadRequest", "credentials must be an array of {key, value}");
        };
        for item in items {
            let key = item
                .as_object()
                .and_then(|m| prop(m, "key"))
                .and_then(Value::as_str);
            match key {
                Some(k) if SECRET_KEYS.contains(&k) => {}
                Some(k) => {
                    return bad_request(
                        "BadRequest",
                        format!(
                            "Requested value '{}' was not found: credential keys are synchronizationSecret names, case-sensitive (BaseAddress, SecretToken, …)",
                            scimsync_core::text::visible(k)
                        ),
                    );
                }
                None => {
                    return bad_request("BadRequest", "every credential needs a string \"key\"");
                }
            }
        }
    }
    let saved = prop(&body, "useSavedCredentials").and_then(Value::as_bool) == Some(true);
    let given = |name: &str| -> Option<String> {
        prop(&body, "credentials")?
            .as_array()?
            .iter()
            .filter_map(Value::as_object)
            .find(|m| prop(m, "key").and_then(Value::as_str) == Some(name))
            .and_then(|m| prop(m, "value"))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let (url, token, timeout) = if saved || prop(&body, "credentials").is_none() {
        let Some(t) = ext(&jobs)
            .and_then(|j| j.get(&job))
            .and_then(|g| g.target.clone())
        else {
            return graph_error(
                StatusCode::NOT_IMPLEMENTED,
                "NotImplemented",
                "this server was started without the job files: the saved credentials cannot be tested",
            );
        };
        match t.token.resolve() {
            Ok(token) => (t.url, token, t.timeout),
            Err(e) => {
                return bad_request(
                    "CredentialValidationFailed",
                    format!("the job's target.token cannot be read: {e}"),
                );
            }
        }
    } else {
        let (Some(url), Some(token)) = (given("BaseAddress"), given("SecretToken")) else {
            return bad_request(
                "BadRequest",
                "credentials need BaseAddress and SecretToken (or useSavedCredentials: true)",
            );
        };
        (
            url,
            scimsync_core::Secret::inline(token),
            Duration::from_secs(30),
        )
    };
    let mut cfg = scimsync_scim::ScimClientConfig::new(url, token);
    cfg.timeout = timeout;
    cfg.max_retries = 1;
    let tested = match scimsync_scim::ScimClient::new(cfg) {
        Ok(client) => client.test_connection().await,
        Err(e) => Err(e),
    };
    match tested {
        Ok(()) => no_content(),
        Err(e) => bad_request("CredentialValidationFailed", e.to_string()),
    }
}

// ---------------------------------------------------------------------------------------
// provisionOnDemand
// ---------------------------------------------------------------------------------------

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

/// The object's action in Entra's on-demand words.
fn action_word(o: &Value) -> &'static str {
    let a = o["action"]["action"]
        .as_str()
        .or_else(|| o["action"].as_str())
        .unwrap_or("");
    match a {
        "create" => "Create",
        "update" | "link" => "Update",
        "disable" => "Disable",
        "delete" => "Delete",
        "stagedDelete" => "StagedDelete",
        _ => "Other",
    }
}

fn result_word(status: &str) -> &'static str {
    match status {
        "failure" => "Failure",
        "skipped" => "Skipped",
        _ => "Success",
    }
}

/// One object report as the `stringKeyStringValuePair` Entra answers.
fn on_demand_pair(job: &str, o: &Value, subject_type: &str, started: DateTime<Utc>) -> Value {
    let status = o["status"].as_str().unwrap_or("success");
    let result = result_word(status);
    let mut details = Map::new();
    if result != "Success" {
        // Entra's word for "nothing to send".
        let code = match (&o["errorCode"], action_word(o)) {
            (Value::Null, "Other") if result == "Skipped" => json!("RedundantExport"),
            (c, _) => c.clone(),
        };
        details.insert("errorCode".into(), code);
        details.insert("errorMessage".into(), o["error"].clone());
    }
    let key = json!({"result": result, "details": details}).to_string();
    let steps: Vec<Value> = o["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            json!({
                "name": s["name"],
                "type": capitalised(s["provisioningStepType"].as_str().unwrap_or("")),
                "status": capitalised(s["status"].as_str().unwrap_or("")),
                "description": s["description"],
                "timestamp": time(started),
                "details": {},
            })
        })
        .collect();
    let target_id = o["action"]["targetId"].clone();
    let value = json!({
        "action": action_word(o),
        "changeId": "",
        "startTime": time(started),
        "endTime": time(Utc::now()),
        "reportableIdentifier": o["displayName"],
        "modifiedProperties": [],
        "provisioningSteps": steps,
        "statusInfo": {"status": result, "errorCode": o["errorCode"], "reason": o["error"]},
        "sourceIdentity": {"id": o["sourceId"], "type": subject_type},
        "sourceSystem": {"name": "Microsoft Entra ID"},
        "targetIdentity": {"id": target_id, "type": subject_type},
        "targetSystem": {"name": job},
    });
    json!({"key": key, "value": value.to_string()})
}

#[allow(clippy::too_many_arguments)]
async fn provision_on_demand(
    State(s): State<ApiState>,
    jobs: Jobs,
    limit: Option<Extension<OnDemandLimit>>,
    scheme: SchemeExt,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Path((sp, job)): Path<(String, String)>,
    bytes: Bytes,
) -> Response {
    if let Err(r) = find_job(&s, ext(&jobs), &sp, &job) {
        return r;
    }
    let body = match object_body(&bytes) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(Value::Array(params)) = prop(&body, "parameters") else {
        return bad_request(
            "BadRequest",
            "the body needs \"parameters\": [{\"ruleId\", \"subjects\": [{\"objectId\", \"objectTypeName\"}]}]",
        );
    };
    let Some(param) = params.first().and_then(Value::as_object) else {
        return bad_request("BadRequest", "parameters must hold one object");
    };
    if params.len() > 1 {
        return bad_request("BadRequest", "give one entry in parameters");
    }
    let rule = prop(param, "ruleId").and_then(Value::as_str).unwrap_or("");
    let schema = ext(&jobs)
        .and_then(|j| j.get(&job))
        .and_then(|g| g.schema.as_ref());
    if let Some(schema) = schema {
        let known = schema["synchronizationRules"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| r["id"] == rule || r["name"] == rule);
        if !known {
            return bad_request(
                "RequestParameterInvalid",
                format!(
                    "The request identified this synchronization job: {job}. The request also identified this synchronization rule: {}. However, the job does not include the rule.",
                    scimsync_core::text::visible(rule)
                ),
            );
        }
    }
    let subjects = prop(param, "subjects").and_then(Value::as_array);
    let subject = match subjects.map(Vec::as_slice) {
        Some([one]) => one.as_object(),
        _ => None,
    };
    let Some(subject) = subject else {
        return bad_request(
            "BadRequest",
            "give exactly one subject {\"objectId\", \"objectTypeName\"}",
        );
    };
    let id = prop(subject, "objectId")
        .and_then(Value::as_str)
        .map(str::trim)
        .unwrap_or("");
    let kind = prop(subject, "objectTypeName")
        .and_then(Value::as_str)
        .unwrap_or("");
    if id.is_empty() {
        return bad_request("RequestParameterInvalid", "the subject needs an objectId");
    }
    let subject = match kind {
        "User" => Subject::User(id.to_string()),
        "Group" => Subject::Group(id.to_string()),
        other => {
            return bad_request(
                "RequestParameterInvalid",
                format!(
                    "objectTypeName {:?} is not provisioned by this job: use User or Group",
                    scimsync_core::text::visible(other)
                ),
            );
        }
    };
    if let Some(Extension(l)) = &limit
        && let Err(wait) = l.take(&job, Instant::now())
    {
        let secs = wait.as_secs().max(1);
        let mut r = graph_error(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            format!(
                "provision on demand takes 5 requests per 10 seconds per job; retry in {secs} s"
            ),
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        return r;
    }
    let started = Utc::now();
    let objects = match s.handle.provision(&job, subject.clone(), false).await {
        Ok(o) => o,
        Err(e) => return command_error(e),
    };
    let mut pair = match (&subject, objects.as_slice()) {
        (Subject::User(_), [o, ..]) => on_demand_pair(&job, o, kind, started),
        (Subject::Group(_), [o, ..]) => {
            // Entra answers "{}" as value for a group provisioned with its members.
            let mut p = on_demand_pair(&job, o, kind, started);
            if objects.len() > 1 {
                p["value"] = json!("{}");
            }
            p
        }
        (_, []) => {
            json!({"key": json!({"result": "Skipped", "details": {}}).to_string(), "value": "{}"})
        }
    };
    pair["@odata.context"] = json!(format!(
        "{}/$metadata#microsoft.graph.stringKeyStringValuePair",
        base(&headers, &uri, scheme)
    ));
    axum::Json(pair).into_response()
}

// ---------------------------------------------------------------------------------------
// auditLogs/provisioning
// ---------------------------------------------------------------------------------------

/// A log entry as Graph's `provisioningObjectSummary`.
pub fn summary(e: &LogEntry, g: Option<&GraphJob>) -> Value {
    let (kind, source_id) = match e.source_id.strip_prefix("group:") {
        Some(id) => ("Group", id),
        None => ("User", e.source_id.as_str()),
    };
    let status = name_of(&e.status);
    let error = (e.error_code.is_some() || e.status == LogStatus::Failure).then(|| {
        json!({
            "errorCode": e.error_code.map(|c| c.as_str()),
            "errorCategory": if e.status == LogStatus::Failure { "failure" } else { "nonServiceFailure" },
            "reason": e.reason,
            "additionalDetails": null,
            "recommendedAction": null,
        })
    });
    let sp = g
        .and_then(|g| g.service_principal_id.clone())
        .unwrap_or_default();
    let steps: Vec<Value> = e
        .provisioning_steps
        .iter()
        .map(|s| {
            json!({"name": s.name, "provisioningStepType": s.provisioning_step_type,
                   "status": name_of(&s.status), "description": s.description, "details": {}})
        })
        .collect();
    let props: Vec<Value> = e
        .modified_properties
        .iter()
        .map(|p| json!({"displayName": p.display_name, "oldValue": p.old_value, "newValue": p.new_value}))
        .collect();
    json!({
        "id": e.id,
        "activityDateTime": time(e.activity_date_time),
        "tenantId": g.map_or("", |g| g.tenant_id.as_str()),
        "jobId": e.job_id,
        "cycleId": e.cycle_id,
        "changeId": e.change_id,
        "provisioningAction": name_of(&e.provisioning_action),
        "durationInMilliseconds": e.duration_in_milliseconds.min(i32::MAX as u64),
        "initiatedBy": {"id": "", "displayName": "scimsync", "initiatorType": "system"},
        "servicePrincipal": {"id": sp, "name": e.job_id, "displayName": e.job_id},
        "sourceSystem": {"id": "", "displayName": "Microsoft Entra ID", "details": {}},
        "targetSystem": {"id": "", "displayName": e.job_id, "details": {}},
        "sourceIdentity": {"id": source_id, "displayName": e.source_display_name, "identityType": kind, "details": {}},
        "targetIdentity": {"id": e.target_id.clone().unwrap_or_default(), "displayName": e.source_display_name, "identityType": kind, "details": {}},
        "provisioningStatusInfo": {"status": status, "errorInformation": error},
        "provisioningSteps": steps,
        "modifiedProperties": props,
    })
}

/// The fields `$filter` may name (`activityDateTime` aside).
const FILTER_FIELDS: &[&str] = &[
    "id",
    "jobId",
    "cycleId",
    "changeId",
    "tenantId",
    "provisioningAction",
    "initiatedBy/id",
    "initiatedBy/displayName",
    "servicePrincipal/id",
    "servicePrincipal/name",
    "servicePrincipal/displayName",
    "sourceIdentity/id",
    "sourceIdentity/displayName",
    "sourceIdentity/identityType",
    "targetIdentity/id",
    "targetIdentity/displayName",
    "targetIdentity/identityType",
    "sourceSystem/displayName",
    "targetSystem/displayName",
    "provisioningStatusInfo/status",
];

#[derive(Debug, Clone, PartialEq)]
enum Clause {
    Eq(String, String),
    Contains(String, String),
    Time(std::cmp::Ordering, bool, DateTime<Utc>),
}

/// A parsed `$filter`: clauses joined by `and`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LogFilter(Vec<Clause>);

impl LogFilter {
    /// Parse `$filter`; the error is the message of a 400 `BadRequest`.
    pub fn parse(text: &str) -> Result<LogFilter, String> {
        let mut p = Parser {
            s: text.as_bytes(),
            i: 0,
        };
        let mut clauses = Vec::new();
        p.ws();
        if p.at_end() {
            return Ok(LogFilter(clauses));
        }
        loop {
            clauses.push(p.clause()?);
            p.ws();
            if p.at_end() {
                break;
            }
            let w = p.word();
            if !w.eq_ignore_ascii_case("and") {
                return Err(format!(
                    "invalid $filter near {:?}: clauses are joined by `and` (`or` and `not` are not supported)",
                    p.rest_from(w.len())
                ));
            }
        }
        Ok(LogFilter(clauses))
    }

    pub fn matches(&self, v: &Value) -> bool {
        self.0.iter().all(|c| match c {
            Clause::Eq(f, want) => field(v, f).is_some_and(|s| s == want),
            Clause::Contains(f, part) => field(v, f).is_some_and(|s| s.contains(part.as_str())),
            Clause::Time(ord, or_eq, t) => v["activityDateTime"]
                .as_str()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .is_some_and(|at| {
                    let c = at.with_timezone(&Utc).cmp(t);
                    c == *ord || (*or_eq && c == std::cmp::Ordering::Equal)
                }),
        })
    }
}

fn field<'a>(v: &'a Value, path: &str) -> Option<&'a str> {
    v.pointer(&format!("/{path}")).and_then(Value::as_str)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }
    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }
    fn rest_from(&self, back: usize) -> String {
        String::from_utf8_lossy(&self.s[self.i.saturating_sub(back)..])
            .chars()
            .take(40)
            .collect()
    }
    /// Letters, digits, `/`, `_`, `:`, `.`, `-`, `+` (names and unquoted times).
    fn word(&mut self) -> String {
        self.ws();
        let start = self.i;
        while self
            .s
            .get(self.i)
            .is_some_and(|c| c.is_ascii_alphanumeric() || b"/_:.-+".contains(c))
        {
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }
    fn expect(&mut self, c: u8) -> Result<(), String> {
        self.ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!(
                "invalid $filter: expected `{}` near {:?}",
                c as char,
                self.rest_from(0)
            ))
        }
    }
    /// `'text'` with `''` for a quote, or an unquoted word.
    fn literal(&mut self) -> Result<(String, bool), String> {
        self.ws();
        if self.s.get(self.i) != Some(&b'\'') {
            let w = self.word();
            if w.is_empty() {
                return Err(format!(
                    "invalid $filter: expected a value near {:?}",
                    self.rest_from(0)
                ));
            }
            return Ok((w, false));
        }
        self.i += 1;
        let mut out = Vec::new();
        loop {
            match self.s.get(self.i) {
                None => return Err("invalid $filter: unterminated string".into()),
                Some(b'\'') if self.s.get(self.i + 1) == Some(&b'\'') => {
                    out.push(b'\'');
                    self.i += 2;
                }
                Some(b'\'') => {
                    self.i += 1;
                    break;
                }
                Some(c) => {
                    out.push(*c);
                    self.i += 1;
                }
            }
        }
        Ok((String::from_utf8_lossy(&out).into_owned(), true))
    }
    fn clause(&mut self) -> Result<Clause, String> {
        let name = self.word();
        if name.eq_ignore_ascii_case("contains") {
            self.expect(b'(')?;
            let f = self.word();
            check_field(&f)?;
            self.expect(b',')?;
            let (v, quoted) = self.literal()?;
            if !quoted {
                return Err("invalid $filter: contains takes a quoted string".into());
            }
            self.expect(b')')?;
            return Ok(Clause::Contains(f, v));
        }
        if name.is_empty() {
            return Err(format!(
                "invalid $filter near {:?}: expected a property",
                self.rest_from(0)
            ));
        }
        let op = self.word().to_ascii_lowercase();
        let (v, quoted) = self.literal()?;
        if name == "activityDateTime" {
            let t = DateTime::parse_from_rfc3339(&v)
                .map_err(|_| {
                    format!("invalid $filter: {v:?} is not a date and time (2026-03-02T09:00:00Z)")
                })?
                .with_timezone(&Utc);
            use std::cmp::Ordering::*;
            let (ord, or_eq) = match op.as_str() {
                "eq" => (Equal, false),
                "gt" => (Greater, false),
                "lt" => (Less, false),
                "ge" => (Greater, true),
                "le" => (Less, true),
                other => {
                    return Err(format!(
                        "invalid $filter: operator {other:?} on activityDateTime: use eq, gt, lt, ge or le"
                    ));
                }
            };
            return Ok(Clause::Time(ord, or_eq, t));
        }
        check_field(&name)?;
        if op != "eq" {
            return Err(format!(
                "invalid $filter: operator {op:?} on {name}: use eq or contains()"
            ));
        }
        if !quoted {
            return Err(format!("invalid $filter: {name} eq takes a quoted string"));
        }
        Ok(Clause::Eq(name, v))
    }
}

fn check_field(f: &str) -> Result<(), String> {
    if FILTER_FIELDS.contains(&f) {
        Ok(())
    } else {
        Err(format!(
            "invalid $filter: {f:?} cannot be filtered on; use activityDateTime or one of {}",
            FILTER_FIELDS.join(", ")
        ))
    }
}

/// `$top` when not given, and at most.
pub const DEFAULT_TOP: usize = 100;
pub const MAX_TOP: usize = 1000;

#[derive(Debug, Default, serde::Deserialize)]
struct LogParams {
    #[serde(rename = "$filter")]
    filter: Option<String>,
    #[serde(rename = "$top")]
    top: Option<String>,
    #[serde(rename = "$orderby")]
    orderby: Option<String>,
    #[serde(rename = "$skiptoken")]
    skiptoken: Option<String>,
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<String> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// Percent-encoding for a query value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The position of an entry in the listing: time, then id.
type Key = (DateTime<Utc>, String);

async fn audit_logs(
    jobs: Jobs,
    stores: Stores,
    scheme: SchemeExt,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Query(q): Query<LogParams>,
) -> Response {
    let Some(Extension(stores)) = stores else {
        return graph_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "this server was started without access to the jobs' state stores",
        );
    };
    let filter = match LogFilter::parse(q.filter.as_deref().unwrap_or("")) {
        Ok(f) => f,
        Err(m) => return bad_request("BadRequest", m),
    };
    let top = match q.top.as_deref().map(str::trim) {
        None | Some("") => DEFAULT_TOP,
        Some(t) => match t.parse::<usize>() {
            Ok(n) if (1..=MAX_TOP).contains(&n) => n,
            _ => {
                return bad_request(
                    "BadRequest",
                    format!("invalid $top {t:?}: a number from 1 to {MAX_TOP}"),
                );
            }
        },
    };
    let ascending = match q
        .orderby
        .as_deref()
        .map(|o| o.split_whitespace().map(str::to_string).collect::<Vec<_>>())
    {
        None => false,
        Some(parts) => match parts
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice()
        {
            ["activityDateTime"] | ["activityDateTime", "asc"] => true,
            ["activityDateTime", "desc"] => false,
            _ => {
                return bad_request(
                    "BadRequest",
                    "invalid $orderby: use activityDateTime asc or activityDateTime desc",
                );
            }
        },
    };
    let after: Option<Key> = match q.skiptoken.as_deref() {
        None => None,
        Some(t) => {
            let key = unhex(t).and_then(|s| {
                let (time, id) = s.split_once('|')?;
                Some((
                    DateTime::parse_from_rfc3339(time).ok()?.with_timezone(&Utc),
                    id.to_string(),
                ))
            });
            match key {
                Some(k) => Some(k),
                None => {
                    return bad_request(
                        "BadRequest",
                        "invalid $skiptoken: use the @odata.nextLink of the previous page",
                    );
                }
            }
        }
    };
    let names: Vec<(String, crate::JobStore, Option<GraphJob>)> = stores
        .iter()
        .map(|(n, s)| {
            (
                n.clone(),
                s.clone(),
                ext(&jobs).and_then(|j| j.get(n)).cloned(),
            )
        })
        .collect();
    let read = blocking(move || {
        let mut rows: Vec<(Key, Value)> = Vec::new();
        for (name, js, g) in &names {
            for e in js.store.logs(name, None)? {
                let v = summary(&mask(&e), g.as_ref());
                if filter.matches(&v) {
                    rows.push(((e.activity_date_time, e.id.clone()), v));
                }
            }
        }
        Ok(rows)
    })
    .await;
    let mut rows = match read {
        Ok(r) => r,
        Err(r) => return r,
    };
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    if !ascending {
        rows.reverse();
    }
    let start = match &after {
        None => 0,
        Some(k) => rows
            .iter()
            .position(|(key, _)| if ascending { key > k } else { key < k })
            .unwrap_or(rows.len()),
    };
    let page: Vec<&(Key, Value)> = rows.iter().skip(start).take(top).collect();
    let more = start + page.len() < rows.len();
    let base = base(&headers, &uri, scheme);
    let mut out = json!({
        "@odata.context": format!("{base}/$metadata#auditLogs/provisioning"),
        "value": page.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>(),
    });
    if more && let Some(((t, id), _)) = page.last() {
        let token = hex(&format!(
            "{}|{id}",
            t.to_rfc3339_opts(SecondsFormat::Nanos, true)
        ));
        let mut link = format!("{base}/auditLogs/provisioning?");
        if let Some(f) = q.filter.as_deref().filter(|f| !f.trim().is_empty()) {
            link.push_str(&format!("$filter={}&", encode(f)));
        }
        if let Some(o) = q.orderby.as_deref() {
            link.push_str(&format!("$orderby={}&", encode(o)));
        }
        link.push_str(&format!("$top={top}&$skiptoken={token}"));
        out["@odata.nextLink"] = json!(link);
    }
    axum::Json(out).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_are_iso_8601() {
        assert_eq!(iso_interval("40m").as_deref(), Some("PT40M"));
        assert_eq!(iso_interval("1h30m").as_deref(), Some("PT1H30M"));
        assert_eq!(iso_interval("1d").as_deref(), Some("P1D"));
        assert_eq!(iso_interval("1d2h").as_deref(), Some("P1DT2H"));
        assert_eq!(iso_interval("cron: 0 0 2 * * *"), None);
    }

    #[test]
    fn reset_scopes_map_to_restart() {
        let p = parse_reset_scope("Watermark, Escrows, QuarantineState").unwrap();
        assert_eq!(p.scopes, ResetScope::DEFAULT.to_vec());
        assert_eq!(
            parse_reset_scope("").unwrap().scopes,
            ResetScope::DEFAULT.to_vec()
        );
        let f = parse_reset_scope("ForceDeletes").unwrap();
        assert!(f.force_deletes && f.scopes.is_empty() && !f.start_only);
        assert!(parse_reset_scope("None").unwrap().start_only);
        assert_eq!(
            parse_reset_scope("ConnectorDataStore").unwrap().scopes,
            vec![ResetScope::Full]
        );
        assert!(parse_reset_scope("watermark").is_err());
    }

    #[test]
    fn filters_parse_and_match() {
        let v = json!({"jobId": "app", "activityDateTime": "2026-03-02T09:00:00Z",
                       "sourceIdentity": {"displayName": "O'Brien"},
                       "provisioningStatusInfo": {"status": "failure"}});
        let m = |f: &str| LogFilter::parse(f).unwrap().matches(&v);
        assert!(m(""));
        assert!(m("jobId eq 'app'"));
        assert!(!m("jobId eq 'App'"));
        assert!(m(
            "jobId eq 'app' and activityDateTime gt 2026-03-02T00:00:00Z"
        ));
        assert!(!m("activityDateTime lt 2026-03-02T09:00:00Z"));
        assert!(m("activityDateTime le 2026-03-02T09:00:00Z"));
        assert!(m("contains(sourceIdentity/displayName, 'O''B')"));
        assert!(m("provisioningStatusInfo/status eq 'failure'"));
        for bad in [
            "jobId eq app",
            "jobId ne 'app'",
            "nope eq 'x'",
            "jobId eq 'a' or jobId eq 'b'",
            "activityDateTime gt yesterday",
            "jobId eq 'unterminated",
        ] {
            assert!(LogFilter::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn on_demand_limit_is_five_per_ten_seconds() {
        let l = OnDemandLimit::default();
        let t0 = Instant::now();
        for _ in 0..5 {
            assert!(l.take("app", t0).is_ok());
        }
        assert!(l.take("app", t0).is_err());
        assert!(l.take("other", t0).is_ok());
        assert!(l.take("app", t0 + Duration::from_secs(10)).is_ok());
    }
}
