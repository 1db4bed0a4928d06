//! The running emulator: shared state, the axum router, response helpers (Graph error envelope,
//! OData content type, `request-id` headers), fault injection and request recording.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use chrono::Utc;
use serde_json::{Map, Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::Tenant;
use super::model::{Directory, ModelResult};

/// The `Content-Type` Graph puts on JSON success responses.
pub(crate) const ODATA_JSON: &str = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";

/// One request the emulator answered, for test assertions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// Path and query exactly as received, e.g. `/v1.0/users?$top=100`.
    pub path_and_query: String,
    /// HTTP status the emulator answered with.
    pub status: u16,
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum Fault {
    Throttle(f64),
    Fail(u16),
}

pub(crate) struct Inner {
    pub dir: Directory,
    /// Issued access token → expiry.
    pub tokens: HashMap<String, Instant>,
    pub token_lifetime: u64,
    pub faults: VecDeque<Fault>,
    pub requests: Vec<RecordedRequest>,
    /// Bumping it makes outstanding list `$skiptoken`s expire.
    pub page_epoch: u64,
    /// Bumping it makes outstanding delta tokens expire (400 `syncStateNotFound`).
    pub delta_epoch: u64,
    pub delta_page_size: usize,
    pub delta_quirks: bool,
    /// The next delta request that carries a token gets 410 Gone + Location.
    pub delta_reset_next: bool,
    /// Members per `members@delta` chunk in `/groups/delta`.
    pub group_member_chunk: usize,
    /// `Retry-After` seconds of the next `$batch` items to answer 429.
    pub batch_faults: VecDeque<f64>,
    /// Granted permissions and the service principal's existence (all there by default).
    pub access: super::access::Access,
}

pub(crate) struct Shared {
    pub inner: Mutex<Inner>,
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub base: String,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicking test thread must not wedge every later request.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn record(&self, method: &Method, path_and_query: &str, status: StatusCode) {
        self.lock().requests.push(RecordedRequest {
            method: method.to_string(),
            path_and_query: path_and_query.to_string(),
            status: status.as_u16(),
        });
    }
}

/// Per-request identifiers echoed in headers and error bodies.
pub(crate) struct Ctx {
    pub request_id: String,
    pub client_request_id: String,
    pub base: String,
}

impl Ctx {
    pub(crate) fn new(headers: &HeaderMap, base: &str) -> Ctx {
        let request_id = uuid::Uuid::new_v4().to_string();
        let client_request_id = headers
            .get("client-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .map_or_else(|| request_id.clone(), str::to_string);
        Ctx {
            request_id,
            client_request_id,
            base: base.to_string(),
        }
    }

    /// `{base}/v1.0`
    pub fn root(&self) -> String {
        format!("{}/v1.0", self.base)
    }

    fn stamp(&self, resp: &mut Response) {
        let h = resp.headers_mut();
        for (name, value) in [
            ("request-id", self.request_id.as_str()),
            ("client-request-id", self.client_request_id.as_str()),
        ] {
            if let Ok(v) = HeaderValue::from_str(value) {
                h.insert(name, v);
            }
        }
        h.insert(
            "x-ms-ags-diagnostic",
            HeaderValue::from_static(
                r#"{"ServerInfo":{"DataCenter":"Emulator","Slice":"E","Ring":"0","ScaleUnit":"000","RoleInstance":"scimsync-testkit"}}"#,
            ),
        );
    }

    /// A 200 with an OData JSON body.
    pub fn ok(&self, body: Value) -> Response {
        let mut resp = (
            StatusCode::OK,
            [(header::CONTENT_TYPE, ODATA_JSON)],
            body.to_string(),
        )
            .into_response();
        self.stamp(&mut resp);
        resp
    }

    /// A plain-text 200 (`/users/$count`).
    pub fn ok_text(&self, body: String) -> Response {
        let mut resp = (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain;charset=utf-8")],
            body,
        )
            .into_response();
        self.stamp(&mut resp);
        resp
    }

    /// A Graph error envelope response.
    pub fn error(&self, e: GraphError) -> Response {
        let mut inner = Map::new();
        for (k, v) in e.inner_extra {
            inner.insert(k, v);
        }
        inner.insert(
            "date".into(),
            json!(Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string()),
        );
        inner.insert("request-id".into(), json!(self.request_id));
        inner.insert("client-request-id".into(), json!(self.client_request_id));
        let body = json!({"error": {"code": e.code, "message": e.message, "innerError": inner}});
        let mut resp = (
            e.status,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response();
        for (k, v) in e.headers {
            if let Ok(v) = HeaderValue::from_str(&v) {
                resp.headers_mut().insert(k, v);
            }
        }
        self.stamp(&mut resp);
        resp
    }
}

/// A Graph error: status, `error.code`, `error.message`, plus optional extras.
pub(crate) struct GraphError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub inner_extra: Vec<(String, Value)>,
    pub headers: Vec<(&'static str, String)>,
}

impl GraphError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> GraphError {
        GraphError {
            status,
            code: code.to_string(),
            message: message.into(),
            inner_extra: Vec::new(),
            headers: Vec::new(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> GraphError {
        GraphError::new(StatusCode::BAD_REQUEST, "Request_BadRequest", message)
    }
    pub fn unsupported(message: impl Into<String>) -> GraphError {
        GraphError::new(StatusCode::BAD_REQUEST, "Request_UnsupportedQuery", message)
    }
    pub fn not_found(key: &str) -> GraphError {
        GraphError::new(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            format!(
                "Resource '{key}' does not exist or one of its queried reference-property objects are not present."
            ),
        )
    }
    pub fn unknown_property(name: &str, type_name: &str) -> GraphError {
        GraphError::bad_request(format!(
            "Could not find a property named '{name}' on type '{type_name}'."
        ))
    }
}

// ---- router -----------------------------------------------------------------------------------

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token_entry))
        .route("/v1.0", any(graph_entry))
        .route("/v1.0/", any(graph_entry))
        .route("/v1.0/{*rest}", any(graph_entry))
        .fallback(fallback)
        .with_state(shared)
}

async fn token_entry(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    method: Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let resp = super::token::handle(&shared, &tenant, &headers, &body);
    let pq = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    shared.record(&method, pq, resp.status());
    resp
}

async fn graph_entry(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let method = req.method().clone();
    let uri = req.uri().clone();
    let ctx = Ctx::new(req.headers(), &shared.base);
    let resp = if uri.path() == "/v1.0/$batch" {
        let (parts, body) = req.into_parts();
        match precheck(&shared, &ctx, &parts.headers) {
            Some(refused) => refused,
            None => match axum::body::to_bytes(body, 4 << 20).await {
                Ok(bytes) => super::batch::handle(&shared, &ctx, &method, &bytes).await,
                Err(_) => ctx.error(GraphError::bad_request("The batch body is too large.")),
            },
        }
    } else {
        graph_inner(&shared, &ctx, &method, &uri, req.headers())
    };
    let pq = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    shared.record(&method, pq, resp.status());
    resp
}

fn graph_inner(
    shared: &Shared,
    ctx: &Ctx,
    method: &Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
) -> Response {
    if let Some(refused) = precheck(shared, ctx, headers) {
        return refused;
    }
    let mut inner = shared.lock();
    super::handlers::dispatch(&mut inner, ctx, method, uri, headers)
}

/// Injected faults and the bearer token check, common to every Graph request.
fn precheck(shared: &Shared, ctx: &Ctx, headers: &HeaderMap) -> Option<Response> {
    let mut inner = shared.lock();
    if let Some(fault) = inner.faults.pop_front() {
        let app_id = inner.dir.app.app_id.clone();
        let tenant = inner.dir.guid.clone();
        return Some(ctx.error(fault_error(fault, &app_id, &tenant)));
    }
    check_bearer(&mut inner, headers)
        .err()
        .map(|e| ctx.error(e))
}

pub(crate) fn fault_error(fault: Fault, app_id: &str, tenant: &str) -> GraphError {
    match fault {
        Fault::Throttle(secs) => {
            let mut e = GraphError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                "Please retry again later.",
            );
            e.inner_extra = vec![
                ("code".into(), json!("429")),
                ("message".into(), json!("Please retry after")),
                ("status".into(), json!("429")),
            ];
            e.headers = vec![
                ("retry-after", format_seconds(secs)),
                (
                    "x-ms-throttle-scope",
                    format!("Tenant_Application/ReadWrite/{app_id}/{tenant}"),
                ),
                (
                    "x-ms-throttle-information",
                    "ResourceUnitLimitExceeded".to_string(),
                ),
            ];
            e
        }
        Fault::Fail(status) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            let (code, message) = match status.as_u16() {
                503 => (
                    "serviceNotAvailable",
                    "The service is temporarily unavailable. Please try again later.",
                ),
                504 => (
                    "gatewayTimeout",
                    "The gateway did not receive a response in time.",
                ),
                502 => ("badGateway", "The gateway received an invalid response."),
                500 => ("generalException", "An unspecified error has occurred."),
                401 => (
                    "InvalidAuthenticationToken",
                    "Access token validation failure.",
                ),
                403 => (
                    "Authorization_RequestDenied",
                    "Insufficient privileges to complete the operation.",
                ),
                404 => ("Request_ResourceNotFound", "Resource does not exist."),
                _ => ("UnknownError", "Injected failure."),
            };
            GraphError::new(status, code, message)
        }
    }
}

/// Seconds as Graph writes them: `2.128`, `1`, `0.5`.
fn format_seconds(secs: f64) -> String {
    let s = format!("{:.3}", secs.max(0.0));
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() { "0".into() } else { s.into() }
}

fn check_bearer(inner: &mut Inner, headers: &HeaderMap) -> Result<(), GraphError> {
    let unauthorized = |message: &str| {
        let mut e = GraphError::new(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            message,
        );
        e.headers = vec![(
            "www-authenticate",
            r#"Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000""#.to_string(),
        )];
        e
    };
    let raw = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let token = match raw.split_once(' ') {
        Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") => t.trim(),
        _ => "",
    };
    if token.is_empty() {
        return Err(unauthorized("Access token is empty."));
    }
    match inner.tokens.get(token) {
        None => Err(unauthorized(
            "Access token validation failure. Invalid audience or unknown token.",
        )),
        Some(exp) if *exp <= Instant::now() => Err(unauthorized(
            "Lifetime validation failed, the token is expired.",
        )),
        Some(_) => Ok(()),
    }
}

async fn fallback(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let ctx = Ctx::new(&headers, &shared.base);
    let resp = ctx.error(GraphError::new(
        StatusCode::NOT_FOUND,
        "UnknownError",
        format!(
            "No HTTP resource was found that matches the request URI '{}'.",
            uri.path()
        ),
    ));
    let pq = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    shared.record(&method, pq, resp.status());
    resp
}

// ---- public handle ----------------------------------------------------------------------------

/// A running Graph + token-endpoint emulator on `127.0.0.1`.
///
/// All mutation methods are thread-safe and take effect for the next request. They panic with a
/// clear message when given an unknown id or an invalid object: they are test fixtures, and a
/// silently ignored typo would make a test pass for the wrong reason.
pub struct GraphEmulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    client_id: String,
    client_secret: String,
    tenant_id: String,
    tenant_guid: String,
    service_principal_id: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl GraphEmulator {
    /// Starts the emulator on `127.0.0.1:0` (a free port) serving `tenant`.
    pub async fn start(tenant: Tenant) -> std::io::Result<GraphEmulator> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let dir = tenant.into_directory();
        let shared = Arc::new(Shared {
            base: format!("http://{addr}"),
            inner: Mutex::new(Inner {
                tokens: HashMap::new(),
                token_lifetime: 3599,
                faults: VecDeque::new(),
                requests: Vec::new(),
                page_epoch: 0,
                delta_epoch: 0,
                delta_page_size: 200,
                delta_quirks: true,
                delta_reset_next: false,
                group_member_chunk: 100,
                batch_faults: VecDeque::new(),
                access: super::access::Access::default(),
                dir: dir.clone(),
            }),
        });
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let app = router(shared.clone());
        let task = tokio::spawn(async move {
            // As Graph's front ends do: no Nagle delay between a response's header and body.
            let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                let _ = tcp.set_nodelay(true);
            });
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stop_rx.await;
            });
            // An accept error ends the server; tests then see connection errors, which is clear enough.
            let _ = serve.await;
        });
        Ok(GraphEmulator {
            shared,
            addr,
            client_id: dir.app.app_id.clone(),
            client_secret: dir.app.client_secret.clone(),
            tenant_id: dir.domain.clone(),
            tenant_guid: dir.guid.clone(),
            service_principal_id: dir.app.service_principal_id.clone(),
            stop: Some(stop_tx),
            task: Some(task),
        })
    }

    /// Base URL, e.g. `http://127.0.0.1:41234`: use it as both the Graph and the login URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
    /// The token endpoint for this tenant (by domain).
    pub fn token_url(&self) -> String {
        format!("{}/{}/oauth2/v2.0/token", self.url(), self.tenant_id)
    }
    /// The app (client) id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }
    /// The client secret value.
    pub fn client_secret(&self) -> &str {
        &self.client_secret
    }
    /// The tenant's domain, e.g. `contoso.onmicrosoft.com`.
    pub fn tenant_id(&self) -> &str {
        &self.tenant_id
    }
    /// The tenant's GUID (also accepted in the token URL).
    pub fn tenant_guid(&self) -> &str {
        &self.tenant_guid
    }
    /// Object id of the app's service principal (for `/servicePrincipals/{id}/appRoleAssignedTo`).
    pub fn service_principal_id(&self) -> &str {
        &self.service_principal_id
    }

    fn mutate<T>(&self, what: &str, f: impl FnOnce(&mut Directory) -> ModelResult<T>) -> T {
        let mut inner = self.shared.lock();
        match f(&mut inner.dir) {
            Ok(v) => v,
            Err(e) => {
                drop(inner);
                panic!("GraphEmulator::{what}: {e}")
            }
        }
    }

    /// Adds a user (Graph-shaped JSON; `userPrincipalName` required) and returns its id.
    pub fn add_user(&self, user: Value) -> String {
        self.mutate("add_user", |d| d.add_user(user))
    }
    /// Sets the properties in `patch`; a JSON `null` clears a property.
    pub fn update_user(&self, id: &str, patch: Value) {
        self.mutate("update_user", |d| d.update_user(id, patch))
    }
    /// `accountEnabled = false`.
    pub fn disable_user(&self, id: &str) {
        self.update_user(id, json!({"accountEnabled": false}));
    }
    /// `accountEnabled = true`.
    pub fn enable_user(&self, id: &str) {
        self.update_user(id, json!({"accountEnabled": true}));
    }
    /// Sets (or with `None` removes) a user's manager.
    pub fn set_manager(&self, id: &str, manager: Option<&str>) {
        self.mutate("set_manager", |d| d.set_manager(id, manager))
    }
    /// Moves the user to deleted items; memberships and assignments are kept.
    pub fn soft_delete_user(&self, id: &str) {
        self.mutate("soft_delete_user", |d| d.soft_delete_user(id))
    }
    /// Brings a soft-deleted user back with the same id. Panics if its UPN was taken meanwhile.
    pub fn restore_user(&self, id: &str) {
        self.mutate("restore_user", |d| d.restore_user(id))
    }
    /// Removes a user (live or soft-deleted) everywhere.
    pub fn hard_delete_user(&self, id: &str) {
        self.mutate("hard_delete_user", |d| d.hard_delete_user(id))
    }
    /// Adds a security group (`displayName` required; optional `members` id list); returns its id.
    pub fn add_group(&self, group: Value) -> String {
        self.mutate("add_group", |d| d.add_group(group))
    }
    /// Sets group properties.
    pub fn update_group(&self, id: &str, patch: Value) {
        self.mutate("update_group", |d| d.update_group(id, patch))
    }
    /// Deletes a (security) group at once; there is no soft delete for security groups.
    pub fn delete_group(&self, id: &str) {
        self.mutate("delete_group", |d| d.delete_group(id))
    }
    /// Assigns a user to the app with the Default Access role.
    pub fn assign_user(&self, id: &str) {
        self.mutate("assign_user", |d| d.assign(id, None).map(drop))
    }
    /// Assigns a user or group to the app with a declared app role.
    pub fn assign_role(&self, principal: &str, app_role_id: &str) {
        self.mutate("assign_role", |d| {
            d.assign(principal, Some(app_role_id)).map(drop)
        })
    }
    /// Removes all of a user's assignments to the app.
    pub fn unassign_user(&self, id: &str) {
        self.mutate("unassign_user", |d| d.unassign(id))
    }
    /// Assigns a group to the app with the Default Access role.
    pub fn assign_group(&self, id: &str) {
        self.mutate("assign_group", |d| d.assign(id, None).map(drop))
    }
    /// Removes all of a group's assignments to the app.
    pub fn unassign_group(&self, id: &str) {
        self.mutate("unassign_group", |d| d.unassign(id))
    }
    /// Adds a direct member (user or group) to a group.
    pub fn add_member(&self, group: &str, member: &str) {
        self.mutate("add_member", |d| d.add_member(group, member))
    }
    /// Removes a direct member from a group.
    pub fn remove_member(&self, group: &str, member: &str) {
        self.mutate("remove_member", |d| d.remove_member(group, member))
    }

    /// All live users, each with every stored property plus `id` (no `null` filling).
    pub fn users(&self) -> Vec<Value> {
        let inner = self.shared.lock();
        super::tenant::users_json(&inner.dir, false)
    }
    /// A live user by UPN (case-insensitive).
    pub fn user_by_upn(&self, upn: &str) -> Option<Value> {
        let inner = self.shared.lock();
        let (id, rec) = inner.dir.live_user(upn)?;
        Some(super::tenant::user_json(id, rec))
    }
    /// All groups with their `members` id lists.
    pub fn groups(&self) -> Vec<Value> {
        let inner = self.shared.lock();
        super::tenant::groups_json(&inner.dir)
    }
    /// A snapshot of the current directory as a [`Tenant`] (e.g. to save a fixture).
    pub fn snapshot(&self) -> Tenant {
        Tenant::from_directory(self.shared.lock().dir.clone())
    }
    /// The change sequence number of a user or group (live, soft-deleted or tombstoned).
    pub fn change_seq(&self, id: &str) -> Option<u64> {
        let inner = self.shared.lock();
        let d = &inner.dir;
        d.users
            .get(id)
            .map(|u| u.seq)
            .or_else(|| d.groups.get(id).map(|g| g.seq))
            .or_else(|| d.user_tombstones.get(id).copied())
            .or_else(|| d.group_tombstones.get(id).copied())
    }

    /// The next `n` Graph (non-token) requests answer 429 with `Retry-After: retry_after_secs`
    /// (fractional values are written as such, e.g. `2.128`).
    pub fn throttle_next(&self, n: usize, retry_after_secs: f64) {
        let mut inner = self.shared.lock();
        inner
            .faults
            .extend(std::iter::repeat_n(Fault::Throttle(retry_after_secs), n));
    }
    /// The next `n` Graph requests answer `status` (e.g. 503, 504) with a Graph error envelope.
    pub fn fail_next(&self, n: usize, status: u16) {
        let mut inner = self.shared.lock();
        inner
            .faults
            .extend(std::iter::repeat_n(Fault::Fail(status), n));
    }
    /// Every token issued so far becomes expired (→ 401 `InvalidAuthenticationToken`).
    pub fn expire_tokens(&self) {
        let mut inner = self.shared.lock();
        let past = Instant::now();
        for exp in inner.tokens.values_mut() {
            *exp = past;
        }
    }
    /// Lifetime (and `expires_in`) of tokens issued from now on. Default 3599.
    pub fn set_token_lifetime(&self, secs: u64) {
        self.shared.lock().token_lifetime = secs;
    }
    /// Outstanding list `$skiptoken`s become expired (400 `Directory_ExpiredPageToken`).
    pub fn expire_page_tokens(&self) {
        self.shared.lock().page_epoch += 1;
    }
    /// Outstanding delta links become expired (400 `syncStateNotFound`).
    pub fn expire_delta_tokens(&self) {
        self.shared.lock().delta_epoch += 1;
    }
    /// The next delta request with a token answers 410 Gone + `Location` (a sync reset).
    pub fn reset_delta_next(&self) {
        self.shared.lock().delta_reset_next = true;
    }
    /// Objects per `/users/delta` and `/groups/delta` page (default 200).
    pub fn set_delta_page_size(&self, n: usize) {
        self.shared.lock().delta_page_size = n.max(1);
    }
    /// Members per `members@delta` chunk in `/groups/delta` (default 100): a group with more
    /// members appears several times in a round.
    pub fn set_group_member_chunk(&self, n: usize) {
        self.shared.lock().group_member_chunk = n.max(1);
    }
    /// The next `n` requests inside `$batch` bodies answer 429 with an inner `Retry-After:
    /// retry_after_secs` header; the batch itself still answers 200.
    pub fn throttle_batch_items(&self, n: usize, retry_after_secs: f64) {
        let mut inner = self.shared.lock();
        inner
            .batch_faults
            .extend(std::iter::repeat_n(retry_after_secs, n));
    }
    /// Registers a certificate (PEM) as a credential of the app: client assertions must then be
    /// signed with its key (see `Tenant::register_certificate`).
    pub fn register_certificate(&self, cert_pem: &str) {
        self.mutate("register_certificate", |d| {
            let der = super::cert::certificate_der(cert_pem)?;
            if !d.app.certificates.contains(&der) {
                d.app.certificates.push(der);
            }
            Ok(())
        })
    }
    /// Delta realism quirks (default on): a round ends with an empty page that carries the
    /// deltaLink, and the last object of a page is replayed at the top of the next one.
    pub fn set_delta_quirks(&self, on: bool) {
        self.shared.lock().delta_quirks = on;
    }

    /// Withdraws an application permission (`User.Read.All`, `GroupMember.Read.All`,
    /// `Group.Read.All`, `Application.Read.All`, `Directory.Read.All`; all granted at start):
    /// reads that no remaining permission allows answer 403 `Authorization_RequestDenied`
    /// (`/users` and deleted items: `User.Read.All`; `/groups`: `GroupMember.Read.All` or
    /// `Group.Read.All`; `/servicePrincipals…`: `Application.Read.All`; `Directory.Read.All`
    /// allows all three). Tokens are still issued.
    pub fn revoke_permission(&self, permission: &str) {
        self.shared.lock().access.granted.remove(permission);
    }
    /// Grants an application permission again (see [`GraphEmulator::revoke_permission`]).
    pub fn grant_permission(&self, permission: &str) {
        self.shared
            .lock()
            .access
            .granted
            .insert(permission.to_string());
    }
    /// Withdraws every permission that allows reading users (`User.Read.All`,
    /// `Directory.Read.All`): `/users` answers 403.
    pub fn deny_users(&self) {
        self.revoke_permission("User.Read.All");
        self.revoke_permission("Directory.Read.All");
    }
    /// Withdraws every permission that allows reading groups (`GroupMember.Read.All`,
    /// `Group.Read.All`, `Directory.Read.All`): `/groups` answers 403.
    pub fn deny_groups(&self) {
        for p in [
            "GroupMember.Read.All",
            "Group.Read.All",
            "Directory.Read.All",
        ] {
            self.revoke_permission(p);
        }
    }
    /// Withdraws every permission that allows reading service principals and their
    /// `appRoleAssignedTo` (`Application.Read.All`, `Directory.Read.All`): they answer 403.
    pub fn deny_service_principals(&self) {
        self.revoke_permission("Application.Read.All");
        self.revoke_permission("Directory.Read.All");
    }
    /// The app's service principal no longer exists (or never did, for this tenant): every
    /// `/servicePrincipals/{id}…` read answers 404 `Request_ResourceNotFound`. `false` restores it.
    pub fn set_service_principal_missing(&self, missing: bool) {
        self.shared.lock().access.service_principal_missing = missing;
    }

    /// Requests answered so far (token and Graph), oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }
    /// Forgets recorded requests.
    pub fn clear_requests(&self) {
        self.shared.lock().requests.clear();
    }

    /// Stops the server and waits for it to finish.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

impl Drop for GraphEmulator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl std::fmt::Debug for GraphEmulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The client secret is deliberately left out.
        f.debug_struct("GraphEmulator")
            .field("url", &self.url())
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::format_seconds;

    #[test]
    fn retry_after_keeps_fractions() {
        assert_eq!(format_seconds(2.128), "2.128");
        assert_eq!(format_seconds(1.0), "1");
        assert_eq!(format_seconds(0.5), "0.5");
        assert_eq!(format_seconds(0.0), "0");
    }
}
