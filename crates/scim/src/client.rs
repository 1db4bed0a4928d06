//! The HTTP side: requests as Entra sends them, answers classified with Entra's error codes,
//! retried within a call where that is safe (see [`may_resend`]), concurrency bounded.
//!
//! Every request is first built as a [`PlannedRequest`] and then sent exactly as planned, so a
//! preview printed from the same plan is byte-for-byte what goes on the wire.

use crate::limit::{Limiter, Signal};
use crate::members::{MemberRemoval, add_members_body, remove_members_body};
use crate::patch::{Dialect, patch_body, patch_body_with_manager};
use crate::path::{ERROR_SCHEMA, LIST_RESPONSE_SCHEMA, match_filter};
use crate::resource::{
    ManagerFormat, flatten_group, flatten_user, group_resource_with, is_members_path,
    user_resource_with_manager,
};
use memchr::memmem;
use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, LOCATION, RETRY_AFTER,
};
use reqwest::{Method, redirect};
use scimsync_core::defaults;
use scimsync_core::{
    Attrs, Backoff, Change, ErrorCode, Secret, Target, TargetError, TargetGroup, TargetUser,
};
use scimsync_http::{Body, human, read_capped, too_large_text, trust_roots_for};
use serde::Serialize;
use serde_json::Value;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};
use url::Url;

const SCIM_JSON: &str = "application/scim+json";
/// A `Retry-After` longer than this is cut short: a sync cycle should not stall on one call.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// Longest computed back-off step (when the target gave no `Retry-After`).
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Entra's feature flags that admins paste into the Tenant URL; they are meant for Entra, not
/// for the target, so they are not forwarded.
const ENTRA_URL_FLAGS: [&str; 2] = ["aadOptscim062020", "AzureAdScimPatch2017"];
/// Largest SCIM answer read, 16 MiB: a filtered query returns one or two resources, a group's
/// member list of 100,000 ids is a few MB.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 << 20;
/// The smallest accepted [`ScimClientConfig::max_response_bytes`].
const MIN_RESPONSE_LIMIT: usize = 1 << 10;

/// One request, fully built but not sent. `path` is relative to the configured base URL and
/// already URL-encoded (`/Users/{id}`, `/Users?filter=userName+eq+%22x%22`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedRequest {
    pub method: &'static str,
    pub path: String,
    pub body: Option<Value>,
}

impl PlannedRequest {
    /// A `PATCH /Groups/{id}` that only adds or removes members. Its latency is the size of
    /// the group the target rewrites (≈170 ms into a 5,000-member group on scim2-server), not
    /// the target's load, so the limiter does not read it as a slowdown (issue 16).
    pub fn is_membership(&self) -> bool {
        self.method == "PATCH"
            && self.path.starts_with("/Groups/")
            && self
                .body
                .as_ref()
                .and_then(|b| b.get("Operations"))
                .and_then(Value::as_array)
                .is_some_and(|ops| {
                    !ops.is_empty()
                        && ops.iter().all(|o| {
                            o.get("path")
                                .and_then(Value::as_str)
                                .is_some_and(|p| p.starts_with("members"))
                        })
                })
    }

    /// `GET /Users?filter=…` looking a user up by a matching attribute.
    pub fn find(path: &str, value: &str) -> PlannedRequest {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("filter", &match_filter(path, value))
            .finish();
        PlannedRequest {
            method: "GET",
            path: format!("/Users?{query}"),
            body: None,
        }
    }

    /// `POST /Users`, manager complex.
    pub fn create(attrs: &Attrs, list_custom_schemas: bool) -> PlannedRequest {
        PlannedRequest::create_with_manager(attrs, list_custom_schemas, ManagerFormat::Complex)
    }

    /// `POST /Users`, enterprise `manager` rendered as `manager`.
    pub fn create_with_manager(
        attrs: &Attrs,
        list_custom_schemas: bool,
        manager: ManagerFormat,
    ) -> PlannedRequest {
        PlannedRequest {
            method: "POST",
            path: "/Users".into(),
            body: Some(user_resource_with_manager(
                attrs,
                list_custom_schemas,
                manager,
            )),
        }
    }

    /// `PATCH /Users/{id}`, manager complex.
    pub fn update(id: &str, changes: &[Change], dialect: Dialect) -> PlannedRequest {
        PlannedRequest::update_with_manager(id, changes, dialect, ManagerFormat::Complex)
    }

    /// `PATCH /Users/{id}`, enterprise `manager` rendered as `manager`.
    pub fn update_with_manager(
        id: &str,
        changes: &[Change],
        dialect: Dialect,
        manager: ManagerFormat,
    ) -> PlannedRequest {
        PlannedRequest {
            method: "PATCH",
            path: format!("/Users/{}", encode_segment(id)),
            body: Some(patch_body_with_manager(changes, dialect, manager)),
        }
    }

    /// `GET /Groups?filter=…&excludedAttributes=members` looking a group up by a matching
    /// attribute (`displayName` by default, or `externalId`, …).
    pub fn find_groups(path: &str, value: &str) -> PlannedRequest {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("filter", &match_filter(path, value))
            .append_pair("excludedAttributes", "members")
            .finish();
        PlannedRequest {
            method: "GET",
            path: format!("/Groups?{query}"),
            body: None,
        }
    }

    /// `POST /Groups`: the group, empty (see [`crate::group_resource_with`]).
    pub fn create_group(attrs: &Attrs, list_custom_schemas: bool) -> PlannedRequest {
        PlannedRequest {
            method: "POST",
            path: "/Groups".into(),
            body: Some(group_resource_with(attrs, list_custom_schemas)),
        }
    }

    /// `PATCH /Groups/{id}` changing attributes (a rename is one op), as for users.
    pub fn update_group(id: &str, changes: &[Change], dialect: Dialect) -> PlannedRequest {
        PlannedRequest {
            method: "PATCH",
            path: group_path(id),
            body: Some(patch_body(changes, dialect)),
        }
    }

    /// `PATCH /Groups/{id}` adding all `member_ids` in one op.
    pub fn add_members(group_id: &str, member_ids: &[String], dialect: Dialect) -> PlannedRequest {
        PlannedRequest {
            method: "PATCH",
            path: group_path(group_id),
            body: Some(add_members_body(member_ids, dialect)),
        }
    }

    /// `PATCH /Groups/{id}` removing all `member_ids` in one request, in the `removal` form.
    pub fn remove_members(
        group_id: &str,
        member_ids: &[String],
        dialect: Dialect,
        removal: MemberRemoval,
    ) -> PlannedRequest {
        PlannedRequest {
            method: "PATCH",
            path: group_path(group_id),
            body: Some(remove_members_body(member_ids, dialect, removal)),
        }
    }

    /// `GET /Groups/{id}?attributes=members`: the only read that asks for members.
    pub fn group_members(group_id: &str) -> PlannedRequest {
        PlannedRequest {
            method: "GET",
            path: format!("{}?attributes=members", group_path(group_id)),
            body: None,
        }
    }

    /// `DELETE /Groups/{id}`.
    pub fn delete_group(id: &str) -> PlannedRequest {
        PlannedRequest {
            method: "DELETE",
            path: group_path(id),
            body: None,
        }
    }

    /// `DELETE /Users/{id}`.
    pub fn delete(id: &str) -> PlannedRequest {
        PlannedRequest {
            method: "DELETE",
            path: format!("/Users/{}", encode_segment(id)),
            body: None,
        }
    }
}

/// How to reach and talk to one SCIM target.
#[derive(Debug, Clone)]
pub struct ScimClientConfig {
    /// Entra's "Tenant URL", e.g. `https://api.contoso.com/scim/v2`; `/Users` is appended. A
    /// query string is kept (minus Entra's `aadOptscim062020`/`AzureAdScimPatch2017` flags).
    pub base_url: String,
    /// Bearer token. Its `Debug` is redacted; it is only ever put in the `Authorization` header.
    pub token: Secret,
    pub dialect: Dialect,
    /// Requests in flight at once (at least 1). Default
    /// [`defaults::TARGET_MAX_CONCURRENCY`], as a job file's. With `adaptive_concurrency` the
    /// ceiling of the adaptive limit.
    pub max_concurrency: usize,
    /// Adapt the requests in flight to the target (AIMD, see `limit.rs`): grow while answers
    /// come back fast, halve on 429/503, ease off when latency rises. Default on.
    pub adaptive_concurrency: bool,
    /// Whole-request timeout, body included. Default [`defaults::TARGET_TIMEOUT`].
    pub timeout: Duration,
    /// Retries within one call. Default 5. A GET is retried on 429, 408, 500, 502, 503, 504,
    /// timeouts and transport errors; a write only on 429 and on 503 with `Retry-After`.
    pub max_retries: u32,
    /// List custom extension URNs in a POST body's `schemas`. Entra does not (reference §1.5),
    /// but RFC 7643 §3 says `schemas` names every extension a resource uses, so a validating
    /// server may reject unlisted extension attributes; the default is `true`. Set `false` to
    /// mimic Entra byte for byte. (scim2-server 0.8.3, probed, accepts both once the extension
    /// is registered with `--schema`/`--resource-type`; unregistered URNs are a 400 either way.)
    pub list_custom_schemas: bool,
    /// First back-off delay when a retryable answer has no `Retry-After`; doubles per retry
    /// (capped at 30 s) with jitter ([`Backoff`]). Default 250 ms.
    pub retry_base_delay: Duration,
    /// How member removal is written; `None` (the default) follows the dialect
    /// ([`MemberRemoval::for_dialect`]: `Rfc` → `Filter`, `EntraDefault` → `ValueList`).
    pub member_removal: Option<MemberRemoval>,
    /// How enterprise `manager` is written in POST and PATCH. Default `Complex`.
    pub manager_format: ManagerFormat,
    /// Largest answer read, in bytes (default [`DEFAULT_MAX_RESPONSE_BYTES`], at least 1 KiB).
    /// The body is read chunk by chunk and the read stops past the limit. A larger 2xx is
    /// `SystemForCrossDomainIdentityManagementServiceIncompatible` naming the request and the
    /// limit, never resent; after a write it carries the 2xx status (the target has acted, see
    /// [`TargetError::target_may_have_acted`]). A larger error answer is still that error,
    /// described from its first bytes.
    pub max_response_bytes: usize,
}

impl ScimClientConfig {
    /// A configuration with the defaults above.
    pub fn new(base_url: impl Into<String>, token: Secret) -> ScimClientConfig {
        ScimClientConfig {
            base_url: base_url.into(),
            token,
            dialect: Dialect::default(),
            max_concurrency: defaults::TARGET_MAX_CONCURRENCY,
            adaptive_concurrency: true,
            timeout: defaults::TARGET_TIMEOUT,
            max_retries: 5,
            list_custom_schemas: true,
            retry_base_delay: Duration::from_millis(250),
            member_removal: None,
            manager_format: ManagerFormat::Complex,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }
}

/// A SCIM 2.0 client behaving like the Entra provisioning service. Cheap to clone: clones
/// share the connection pool, the concurrency limit and the request counter.
#[derive(Clone)]
pub struct ScimClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    /// Base URL without query; its path has no trailing `/`.
    base: Url,
    base_query: Option<String>,
    auth: HeaderValue,
    dialect: Dialect,
    list_custom_schemas: bool,
    member_removal: MemberRemoval,
    manager_format: ManagerFormat,
    /// A group read carried `members` although we excluded them; warned about once.
    warned_members: AtomicBool,
    max_retries: u32,
    retry_base_delay: Duration,
    max_concurrency: usize,
    max_response_bytes: usize,
    limiter: Limiter,
    sent: AtomicU64,
}

impl fmt::Debug for ScimClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScimClient")
            .field("base_url", &self.inner.base.as_str())
            .field("dialect", &self.inner.dialect)
            .field("max_concurrency", &self.inner.max_concurrency)
            .field("concurrency_limit", &self.inner.limiter.limit())
            .field("requests_sent", &self.requests_sent())
            .finish_non_exhaustive()
    }
}

/// What a 404 means depends on what was addressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Addressing {
    /// `/Users?filter=…`: a miss must be an empty ListResponse, a 404 is non-compliance.
    Filter,
    /// `POST /Users`: the collection itself is missing.
    Collection,
    /// `/Users/{id}`, `/Groups/{id}?attributes=members`: the object we cached is gone.
    ById,
}

impl Addressing {
    pub(crate) fn of(path: &str) -> Addressing {
        let (resource, query) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path, None),
        };
        match (resource, query) {
            ("/Users" | "/Groups", Some(_)) => Addressing::Filter,
            ("/Users" | "/Groups", None) => Addressing::Collection,
            _ => Addressing::ById,
        }
    }
}

impl ScimClient {
    /// Builds the client. Fails with `ConfigInvalid` on a base URL that is not absolute
    /// http(s) or a token that cannot be a header value. Does no I/O.
    pub fn new(cfg: ScimClientConfig) -> Result<Self, TargetError> {
        let invalid = |msg: String| TargetError::new(ErrorCode::ConfigInvalid, msg);
        let mut base = Url::parse(cfg.base_url.trim())
            .map_err(|e| invalid(format!("SCIM base URL {:?}: {e}", cfg.base_url)))?;
        if !matches!(base.scheme(), "http" | "https") || base.host().is_none() {
            return Err(invalid(format!(
                "SCIM base URL {:?} must be an absolute http(s) URL",
                cfg.base_url
            )));
        }
        let base_query = base.query().and_then(|q| {
            let kept: Vec<&str> = q
                .split('&')
                .filter(|pair| {
                    let key = pair.split('=').next().unwrap_or_default();
                    !pair.is_empty() && !ENTRA_URL_FLAGS.iter().any(|f| f.eq_ignore_ascii_case(key))
                })
                .collect();
            (!kept.is_empty()).then(|| kept.join("&"))
        });
        if cfg.max_response_bytes < MIN_RESPONSE_LIMIT {
            return Err(invalid(format!(
                "max_response_bytes {} must be at least {}",
                cfg.max_response_bytes,
                human(MIN_RESPONSE_LIMIT)
            )));
        }
        base.set_query(None);
        base.set_fragment(None);
        let path = base.path().trim_end_matches('/').to_string();
        base.set_path(&path);

        let mut auth =
            HeaderValue::from_str(&format!("Bearer {}", cfg.token.expose())).map_err(|_| {
                invalid("the SCIM token contains characters not allowed in a header".into())
            })?;
        auth.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static(SCIM_JSON));
        let builder = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("scimsync/", env!("CARGO_PKG_VERSION")))
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout.min(Duration::from_secs(10)))
            // A redirected PATCH/POST may silently turn into a GET; report it instead.
            .redirect(redirect::Policy::none());
        let http = trust_roots_for(builder, &[&base])
            .build()
            .map_err(|e| invalid(format!("cannot build the HTTP client: {e}")))?;
        let max_concurrency = cfg.max_concurrency.max(1);
        Ok(ScimClient {
            inner: Arc::new(Inner {
                http,
                base,
                base_query,
                auth,
                dialect: cfg.dialect,
                list_custom_schemas: cfg.list_custom_schemas,
                member_removal: cfg
                    .member_removal
                    .unwrap_or_else(|| MemberRemoval::for_dialect(cfg.dialect)),
                manager_format: cfg.manager_format,
                warned_members: AtomicBool::new(false),
                max_retries: cfg.max_retries,
                retry_base_delay: cfg.retry_base_delay,
                max_concurrency,
                max_response_bytes: cfg.max_response_bytes,
                limiter: Limiter::new(max_concurrency, cfg.adaptive_concurrency),
                sent: AtomicU64::new(0),
            }),
        })
    }

    /// Requests this client lets into flight now (the adaptive limit, at most
    /// `max_concurrency`).
    pub fn concurrency_limit(&self) -> usize {
        self.inner.limiter.limit()
    }

    /// Entra's Test Connection: `GET /Users?filter=userName eq "<random uuid>"` must answer
    /// 200 with an empty ListResponse. A 404 is `ScimComplianceIssue`, and so is a hit (the
    /// server ignored the filter); 401 is `Unauthorized`.
    pub async fn test_connection(&self) -> Result<(), TargetError> {
        let probe = uuid::Uuid::new_v4().to_string();
        let req = PlannedRequest::find("userName", &probe);
        let body = self.send(&req).await?;
        let (total, users) = parse_list_response(&body, &req)?;
        if total > 0 || !users.is_empty() {
            return Err(TargetError::new(
                ErrorCode::ScimComplianceIssue,
                format!(
                    "{} {}: a filter on a random userName matched {} user(s); the target \
                     ignores `filter`, so matching would link the wrong users",
                    req.method,
                    req.path,
                    total.max(users.len() as u64)
                ),
            ));
        }
        Ok(())
    }

    /// HTTP requests sent so far (each retry counts), across all clones.
    pub fn requests_sent(&self) -> u64 {
        self.inner.sent.load(Ordering::Relaxed)
    }

    /// The `POST /Users` this client would send for `attrs`.
    pub fn plan_create(&self, attrs: &Attrs) -> PlannedRequest {
        PlannedRequest::create_with_manager(
            attrs,
            self.inner.list_custom_schemas,
            self.inner.manager_format,
        )
    }

    /// The `PATCH /Users/{id}` this client would send for `changes`.
    pub fn plan_update(&self, id: &str, changes: &[Change]) -> PlannedRequest {
        PlannedRequest::update_with_manager(
            id,
            changes,
            self.inner.dialect,
            self.inner.manager_format,
        )
    }

    /// The `POST /Groups` this client would send for `attrs`.
    pub fn plan_create_group(&self, attrs: &Attrs) -> PlannedRequest {
        PlannedRequest::create_group(attrs, self.inner.list_custom_schemas)
    }

    /// The `PATCH /Groups/{id}` this client would send for `changes`.
    pub fn plan_update_group(&self, id: &str, changes: &[Change]) -> PlannedRequest {
        PlannedRequest::update_group(id, changes, self.inner.dialect)
    }

    /// The `PATCH /Groups/{id}` this client would send to add `member_ids`.
    pub fn plan_add_members(&self, group_id: &str, member_ids: &[String]) -> PlannedRequest {
        PlannedRequest::add_members(group_id, member_ids, self.inner.dialect)
    }

    /// The `PATCH /Groups/{id}` this client would send to remove `member_ids`.
    pub fn plan_remove_members(&self, group_id: &str, member_ids: &[String]) -> PlannedRequest {
        PlannedRequest::remove_members(
            group_id,
            member_ids,
            self.inner.dialect,
            self.inner.member_removal,
        )
    }

    /// The member removal form in use (configured, or derived from the dialect).
    pub fn member_removal(&self) -> MemberRemoval {
        self.inner.member_removal
    }

    /// A group read that should not have carried members did: tolerated, logged once.
    fn note_unwanted_members(&self, req: &PlannedRequest, resource: &Value) {
        let carries = match resource.get("members") {
            None | Some(Value::Null) => false,
            Some(Value::Array(a)) => !a.is_empty(),
            Some(_) => true,
        };
        if carries && !self.inner.warned_members.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                method = req.method,
                path = %req.path,
                "the SCIM target returned group members although they were excluded; they are \
                 ignored (Entra fails such answers with \
                 SystemForCrossDomainIdentityManagementMultipleEntriesInResponse, scimsync is \
                 more lenient). Large groups will make these reads slow"
            );
        }
    }

    fn url_for(&self, planned_path: &str) -> Url {
        let (path, query) = match planned_path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (planned_path, None),
        };
        let mut url = self.inner.base.clone();
        url.set_path(&format!("{}{path}", self.inner.base.path()));
        let query = match (self.inner.base_query.as_deref(), query) {
            (Some(a), Some(b)) => Some(format!("{a}&{b}")),
            (a, b) => a.or(b).map(str::to_string),
        };
        url.set_query(query.as_deref());
        url
    }

    /// Sends `req`, retrying where [`may_resend`] allows; returns the body of a 2xx answer.
    async fn send(&self, req: &PlannedRequest) -> Result<Vec<u8>, TargetError> {
        self.send_for_status(req).await.map(|(_, body)| body)
    }

    /// Sends `req`, retrying where [`may_resend`] allows; returns the status and body of a 2xx
    /// answer.
    async fn send_for_status(&self, req: &PlannedRequest) -> Result<(u16, Vec<u8>), TargetError> {
        let addressing = Addressing::of(&req.path);
        let url = self.url_for(&req.path);
        let method = match req.method {
            "GET" => Method::GET,
            "POST" => Method::POST,
            "PATCH" => Method::PATCH,
            "DELETE" => Method::DELETE,
            other => Method::from_bytes(other.as_bytes()).map_err(|_| {
                TargetError::new(
                    ErrorCode::WebExceptionProtocolError,
                    format!("unsupported HTTP method {other}"),
                )
            })?,
        };
        let idempotent = method == Method::GET;
        let body = match &req.body {
            Some(v) => Some(serde_json::to_vec(v).map_err(|e| {
                TargetError::new(
                    ErrorCode::SchemaViolation,
                    format!("cannot serialise the request body: {e}"),
                )
            })?),
            None => None,
        };
        let backoff = Backoff::exponential(self.inner.retry_base_delay, MAX_BACKOFF);
        let mut attempt = 0u32;
        loop {
            let slot = self.inner.limiter.hold().await;
            self.inner.sent.fetch_add(1, Ordering::Relaxed);
            let started = Instant::now();
            let mut rb = self
                .inner
                .http
                .request(method.clone(), url.clone())
                .header(AUTHORIZATION, self.inner.auth.clone());
            if let Some(b) = &body {
                rb = rb.header(CONTENT_TYPE, SCIM_JSON).body(b.clone());
            }
            let answer = match rb.send().await {
                Err(e) => Err(transport_error(&e, req)),
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let header = |name| {
                        resp.headers()
                            .get(name)
                            .and_then(|v: &HeaderValue| v.to_str().ok())
                            .map(str::to_string)
                    };
                    let retry_after =
                        header(RETRY_AFTER).and_then(|v| parse_retry_after(&v, chrono::Utc::now()));
                    let location = header(LOCATION);
                    let success = (200..300).contains(&status);
                    match read_capped(resp, self.inner.max_response_bytes).await {
                        Ok(Body::Complete(bytes)) => Ok((status, retry_after, location, bytes)),
                        Ok(Body::TooLarge { declared, .. }) if success => Err(too_large(
                            req,
                            status,
                            declared,
                            self.inner.max_response_bytes,
                        )),
                        // An error answer is still that error; its start describes it.
                        Ok(Body::TooLarge { prefix, .. }) => {
                            Ok((status, retry_after, location, prefix))
                        }
                        // A 2xx cut short: the target acted, and we cannot tell the outcome.
                        Err(e) if success => {
                            Err(unreadable_success(req, status, &transport_error(&e, req)))
                        }
                        // An error whose body was cut short is still that error.
                        Err(_) => Ok((status, retry_after, location, Vec::new())),
                    }
                }
            };
            let signal = match &answer {
                Ok((429 | 503, retry_after, ..)) => Signal::Overloaded(*retry_after),
                Ok(_) if req.is_membership() => Signal::Succeeded,
                Ok(_) => Signal::Answered(started.elapsed()),
                Err(_) => Signal::Neutral,
            };
            slot.release(signal);
            let err = match answer {
                Err(err) => err,
                Ok((status, retry_after, location, bytes)) => {
                    // Metrics for the admin server's `/metrics` (a no-op without a recorder).
                    metrics::histogram!(
                        "scimsync_scim_request_duration_seconds",
                        "method" => req.method,
                        "status" => status.to_string()
                    )
                    .record(started.elapsed().as_secs_f64());
                    if status == 429 {
                        metrics::counter!("scimsync_throttled_total", "client" => "scim")
                            .increment(1);
                    }
                    tracing::debug!(
                        method = req.method,
                        path = %req.path,
                        status,
                        attempt,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "SCIM request"
                    );
                    if (200..300).contains(&status) {
                        match error_in_success(&bytes) {
                            Some(status) => http_error(req, addressing, status, &bytes, None, None),
                            None => return Ok((status, bytes)),
                        }
                    } else {
                        http_error(req, addressing, status, &bytes, retry_after, location)
                    }
                }
            };
            if attempt >= self.inner.max_retries || !may_resend(idempotent, &err) {
                return Err(err);
            }
            let delay = match err.retry_after {
                Some(d) => d.min(MAX_RETRY_AFTER),
                None => backoff.delay(attempt, rand::random::<f64>()),
            };
            tracing::debug!(
                method = req.method,
                path = %req.path,
                status = err.status,
                code = %err.code,
                attempt = attempt + 1,
                delay_ms = delay.as_millis() as u64,
                "SCIM request failed or was throttled; retrying"
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }
}

/// Whether the client itself may send a request again after `err`; `idempotent` is true for
/// GET.
///
/// A GET changes nothing, so it is resent whenever another try may pass: 429, 408, 500, 502,
/// 503, 504, a timeout, a transport error (refused, reset) or a 2xx whose body was cut short.
///
/// A write (POST, PATCH, DELETE) is resent only when the target said it did not process it:
/// 429, or 503 with `Retry-After`. After a 500/502/504, a timeout or a reset the target may
/// have acted (a reset can come after the user was created), and resending a POST could create
/// it twice. Such an error goes back to the engine ([`TargetError::target_may_have_acted`]),
/// which matches again before it retries a write.
fn may_resend(idempotent: bool, err: &TargetError) -> bool {
    match err.status {
        Some(429) => true,
        Some(503) if err.retry_after.is_some() => true,
        _ if !idempotent => false,
        Some(status) => matches!(status, 200..=299 | 408 | 500 | 502 | 503 | 504),
        None => matches!(
            err.code,
            ErrorCode::Timeout | ErrorCode::WebExceptionProtocolError
        ),
    }
}

/// A 2xx whose body cannot be used (cut short, not JSON, no `id`): `ServiceIncompatible`
/// carrying the 2xx status, so [`TargetError::target_may_have_acted`] says what it means.
fn unreadable_success(req: &PlannedRequest, status: u16, cause: &TargetError) -> TargetError {
    let detail = cause
        .detail
        .strip_prefix(&format!("{} {}: ", req.method, req.path))
        .unwrap_or(&cause.detail);
    TargetError {
        status: Some(status),
        ..incompatible(
            req,
            format!(
                "answered {status} but its body could not be read ({detail}); the target has probably acted"
            ),
        )
    }
}

/// A 2xx whose body is larger than `cap`: `ServiceIncompatible`, not resent (the same request
/// brings the same answer). A GET's error has no status, so it is permanent; a write's carries
/// the 2xx status, because the target has acted (the engine matches before anything else).
fn too_large(req: &PlannedRequest, status: u16, declared: Option<u64>, cap: usize) -> TargetError {
    let cause = incompatible(
        req,
        format!(
            "answered {status} with a body {}; refused without reading the rest \
             (max_response_bytes)",
            too_large_text(declared, cap)
        ),
    );
    if req.method == "GET" {
        cause
    } else {
        unreadable_success(req, status, &cause)
    }
}

/// [`incompatible`] for an unusable 2xx answer: the error carries the 2xx status.
fn acted(status: u16) -> impl Fn(TargetError) -> TargetError {
    move |e| TargetError {
        status: Some(status),
        detail: format!(
            "{} (answered {status}: the target has probably acted)",
            e.detail
        ),
        ..e
    }
}

impl Target for ScimClient {
    /// `GET /Users?filter=…`. Every resource returned is handed back, however many: more than
    /// one is the engine's `DuplicateTargetEntries` to decide.
    async fn find_users(&self, path: &str, value: &str) -> Result<Vec<TargetUser>, TargetError> {
        let req = PlannedRequest::find(path, value);
        let body = self.send(&req).await?;
        parse_list_response(&body, &req)?
            .1
            .iter()
            .map(|r| {
                let (id, attrs) = flatten_user(r);
                if id.is_empty() {
                    Err(incompatible(&req, "a returned user has no `id`".into()))
                } else {
                    Ok(TargetUser { id, attrs })
                }
            })
            .collect()
    }

    /// `POST /Users`; the answer must carry the new `id`. A 2xx without a readable one is
    /// `ServiceIncompatible` carrying that 2xx status: the user was probably created.
    async fn create_user(&self, attrs: &Attrs) -> Result<TargetUser, TargetError> {
        let req = self.plan_create(attrs);
        let (status, body) = self.send_for_status(&req).await?;
        let resource = parse_resource(&body, &req, "user").map_err(acted(status))?;
        let (id, attrs) = flatten_user(&resource);
        if id.is_empty() {
            return Err(acted(status)(incompatible(
                &req,
                "the created user has no `id`".into(),
            )));
        }
        Ok(TargetUser { id, attrs })
    }

    /// `PATCH /Users/{id}`; 200 (any body) or 204. No changes, no request.
    async fn update_user(&self, id: &str, changes: &[Change]) -> Result<(), TargetError> {
        if changes.iter().all(|c| c.value.is_null()) {
            return Ok(());
        }
        self.send(&self.plan_update(id, changes)).await.map(drop)
    }

    /// `DELETE /Users/{id}`; 204 (or any 2xx).
    async fn delete_user(&self, id: &str) -> Result<(), TargetError> {
        self.send(&PlannedRequest::delete(id)).await.map(drop)
    }

    /// `GET /Groups?filter=…&excludedAttributes=members`. Members sent anyway are ignored
    /// (with one warning per client) where Entra fails the read.
    async fn find_groups(&self, path: &str, value: &str) -> Result<Vec<TargetGroup>, TargetError> {
        let req = PlannedRequest::find_groups(path, value);
        let body = self.send(&req).await?;
        parse_list_response(&body, &req)?
            .1
            .iter()
            .map(|r| {
                self.note_unwanted_members(&req, r);
                let (id, attrs) = flatten_group(r);
                if id.is_empty() {
                    Err(incompatible(&req, "a returned group has no `id`".into()))
                } else {
                    Ok(TargetGroup { id, attrs })
                }
            })
            .collect()
    }

    /// `POST /Groups`, empty; the answer must carry the new `id`. A 2xx without a readable one
    /// is `ServiceIncompatible` carrying that 2xx status: the group was probably created.
    async fn create_group(&self, attrs: &Attrs) -> Result<TargetGroup, TargetError> {
        let req = self.plan_create_group(attrs);
        let (status, body) = self.send_for_status(&req).await?;
        let resource = parse_resource(&body, &req, "group").map_err(acted(status))?;
        let (id, attrs) = flatten_group(&resource);
        if id.is_empty() {
            return Err(acted(status)(incompatible(
                &req,
                "the created group has no `id`".into(),
            )));
        }
        Ok(TargetGroup { id, attrs })
    }

    /// `PATCH /Groups/{id}`; 204 or 200. No changes, no request. Members are not attributes
    /// here: a change to `members` is refused (use add/remove_members).
    async fn update_group(&self, id: &str, changes: &[Change]) -> Result<(), TargetError> {
        if let Some(c) = changes.iter().find(|c| is_members_path(&c.path)) {
            return Err(TargetError::new(
                ErrorCode::ConfigInvalid,
                format!(
                    "group attribute change on `{}`: members are changed with add/remove \
                     member requests, never through a group attribute mapping",
                    c.path
                ),
            ));
        }
        if changes.iter().all(|c| c.value.is_null()) {
            return Ok(());
        }
        self.send(&self.plan_update_group(id, changes))
            .await
            .map(drop)
    }

    /// One `PATCH /Groups/{id}` adding every id; none, no request.
    async fn add_members(&self, group_id: &str, member_ids: &[String]) -> Result<(), TargetError> {
        if member_ids.is_empty() {
            return Ok(());
        }
        self.send(&self.plan_add_members(group_id, member_ids))
            .await
            .map(drop)
    }

    /// One `PATCH /Groups/{id}` removing every id, in the configured form; none, no request.
    async fn remove_members(
        &self,
        group_id: &str,
        member_ids: &[String],
    ) -> Result<(), TargetError> {
        if member_ids.is_empty() {
            return Ok(());
        }
        self.send(&self.plan_remove_members(group_id, member_ids))
            .await
            .map(drop)
    }

    /// `GET /Groups/{id}?attributes=members` → member ids (entries without a `value` skipped).
    async fn group_members(&self, group_id: &str) -> Result<Vec<String>, TargetError> {
        let req = PlannedRequest::group_members(group_id);
        let body = self.send(&req).await?;
        let resource = parse_resource(&body, &req, "group")?;
        let members = match resource.get("members") {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::Array(a)) => a,
            Some(_) => return Err(incompatible(&req, "`members` is not an array".into())),
        };
        Ok(members
            .iter()
            .filter_map(|m| match m.get("value") {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Number(n)) => Some(n.to_string()),
                _ => None,
            })
            .collect())
    }

    /// `DELETE /Groups/{id}`; 204 (or any 2xx); 404 is `InvalidAnchor`.
    async fn delete_group(&self, id: &str) -> Result<(), TargetError> {
        self.send(&PlannedRequest::delete_group(id)).await.map(drop)
    }
}

/// A single resource answer (a JSON object), or `ServiceIncompatible`.
pub(crate) fn parse_resource(
    body: &[u8],
    req: &PlannedRequest,
    what: &str,
) -> Result<Value, TargetError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| incompatible(req, format!("the {what} answered is not JSON: {e}")))?;
    if !v.is_object() {
        return Err(incompatible(
            req,
            format!("the {what} answered is not a JSON object"),
        ));
    }
    Ok(v)
}

/// `totalResults` and the resources of a ListResponse; anything else is `ServiceIncompatible`.
pub(crate) fn parse_list_response(
    body: &[u8],
    req: &PlannedRequest,
) -> Result<(u64, Vec<Value>), TargetError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| incompatible(req, format!("the answer is not JSON: {e}")))?;
    let obj = v
        .as_object()
        .ok_or_else(|| incompatible(req, "the answer is not a JSON object".into()))?;
    let listed = obj
        .get("schemas")
        .and_then(Value::as_array)
        .is_some_and(|s| s.iter().any(|s| s.as_str() == Some(LIST_RESPONSE_SCHEMA)));
    let total = obj.get("totalResults").and_then(Value::as_u64);
    if !listed && total.is_none() {
        return Err(incompatible(
            req,
            "a filtered query must answer a ListResponse".into(),
        ));
    }
    let resources = match obj.get("Resources") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(a)) => a.as_slice(),
        Some(_) => return Err(incompatible(req, "`Resources` is not an array".into())),
    };
    let total = total.unwrap_or(resources.len() as u64);
    if total > 0 && resources.is_empty() {
        return Err(incompatible(
            req,
            format!("totalResults is {total} but no resources were returned"),
        ));
    }
    Ok((total, resources.to_vec()))
}

fn incompatible(req: &PlannedRequest, what: String) -> TargetError {
    TargetError::new(
        ErrorCode::SystemForCrossDomainIdentityManagementServiceIncompatible,
        format!("{} {}: {what}", req.method, req.path),
    )
}

/// A SCIM Error body's fields; `status` may be a string (RFC) or a number (common).
#[derive(Debug, Default, PartialEq)]
struct ScimErrorBody {
    status: Option<u16>,
    scim_type: Option<String>,
    detail: Option<String>,
}

fn parse_error_body(body: &[u8]) -> Option<ScimErrorBody> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let o = v.as_object()?;
    let text = |k: &str| {
        o.get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let status = match o.get("status") {
        Some(Value::String(s)) => s.trim().parse().ok(),
        Some(Value::Number(n)) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        _ => None,
    };
    let parsed = ScimErrorBody {
        status,
        scim_type: text("scimType"),
        detail: text("detail"),
    };
    (parsed != ScimErrorBody::default()).then_some(parsed)
}

/// A 2xx whose body is a SCIM Error (some servers do that): its `status`, when ≥ 400.
pub(crate) fn error_in_success(body: &[u8]) -> Option<u16> {
    // Nearly every 2xx is a resource: without the schema's text (or an escape that could
    // spell it) it cannot be an Error, and the body is not parsed twice more.
    // Built once: building a searcher per answer cost more than the search.
    static SCHEMA: LazyLock<memmem::Finder<'static>> =
        LazyLock::new(|| memmem::Finder::new(ERROR_SCHEMA));
    static ESCAPE: LazyLock<memmem::Finder<'static>> =
        LazyLock::new(|| memmem::Finder::new(b"\\u"));
    if SCHEMA.find(body).is_none() && ESCAPE.find(body).is_none() {
        return None;
    }
    let v: Value = serde_json::from_slice(body).ok()?;
    let is_error = v
        .get("schemas")?
        .as_array()?
        .iter()
        .any(|s| s.as_str() == Some(ERROR_SCHEMA));
    let status = parse_error_body(body)?.status?;
    (is_error && status >= 400).then_some(status)
}

pub(crate) fn http_error(
    req: &PlannedRequest,
    addressing: Addressing,
    status: u16,
    body: &[u8],
    retry_after: Option<Duration>,
    location: Option<String>,
) -> TargetError {
    let code = match status {
        400 => ErrorCode::SchemaViolation,
        401 => ErrorCode::Unauthorized,
        403 => ErrorCode::InsufficientRights,
        404 if addressing == Addressing::ById => ErrorCode::InvalidAnchor,
        404 => ErrorCode::ScimComplianceIssue,
        405 => ErrorCode::MethodNotAllowed,
        408 => ErrorCode::Timeout,
        409 => ErrorCode::EntryConflict,
        422 => ErrorCode::UnprocessableEntity,
        429 => ErrorCode::TooManyRequests,
        501 => ErrorCode::NotImplemented,
        500..=599 => ErrorCode::InternalServerError,
        402..=499 => ErrorCode::SchemaViolation,
        _ => ErrorCode::WebExceptionProtocolError,
    };
    let parsed = parse_error_body(body).unwrap_or_default();
    let detail = match (&parsed.detail, status, location) {
        (_, 300..=399, Some(loc)) => {
            format!("redirected to {loc}; set the SCIM base URL to the final address")
        }
        (Some(d), _, _) => d.clone(),
        (None, 404, _) if addressing == Addressing::Filter => {
            "a filter query must answer 200 with an empty ListResponse when nothing matches, \
             not 404"
                .to_string()
        }
        (None, _, _) => snippet(body),
    };
    let reason = reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    TargetError {
        code,
        status: Some(status),
        scim_type: parsed.scim_type,
        detail: format!(
            "{} {} answered {status} {reason}: {detail}",
            req.method, req.path
        ),
        retry_after,
    }
}

/// The start of a non-SCIM error body, on one line, for the log.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(200) {
        _ if one_line.is_empty() => "no detail".into(),
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None => one_line,
    }
}

fn transport_error(e: &reqwest::Error, req: &PlannedRequest) -> TargetError {
    let code = if e.is_timeout() {
        ErrorCode::Timeout
    } else {
        ErrorCode::WebExceptionProtocolError
    };
    // reqwest's own message is terse ("error sending request"); the cause is in the chain.
    let mut detail = String::new();
    let mut cause: Option<&dyn std::error::Error> = Some(e);
    while let Some(c) = cause {
        if !detail.is_empty() {
            detail.push_str(": ");
        }
        detail.push_str(&c.to_string());
        cause = c.source();
    }
    TargetError::new(code, format!("{} {}: {detail}", req.method, req.path))
}

/// `Retry-After` as seconds (fractions allowed) or an HTTP-date.
pub(crate) fn parse_retry_after(v: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::from_secs_f64(secs.min(MAX_RETRY_AFTER.as_secs_f64())));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    Some(
        (when.with_timezone(&chrono::Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

fn group_path(id: &str) -> String {
    format!("/Groups/{}", encode_segment(id))
}

/// Percent-encodes an id for use as one path segment.
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn membership_patches_are_told_from_attribute_patches() {
        let ids = ["u1".to_string(), "u2".to_string()];
        for d in [Dialect::Rfc, Dialect::EntraDefault] {
            assert!(PlannedRequest::add_members("g", &ids, d).is_membership());
            for r in [MemberRemoval::Filter, MemberRemoval::ValueList] {
                assert!(PlannedRequest::remove_members("g", &ids, d, r).is_membership());
            }
            let rename = Change {
                op: scimsync_core::ChangeOp::Replace,
                path: "displayName".into(),
                value: Value::String("x".into()),
            };
            assert!(!PlannedRequest::update_group("g", &[rename], d).is_membership());
        }
        assert!(!PlannedRequest::find("userName", "a").is_membership());
    }

    #[test]
    fn retry_after_accepts_seconds_fractions_and_dates() {
        let now = chrono::DateTime::parse_from_rfc2822("Wed, 21 Oct 2015 07:28:00 GMT")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(parse_retry_after("1", now), Some(Duration::from_secs(1)));
        assert_eq!(
            parse_retry_after(" 0.5 ", now),
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
    }

    #[test]
    fn gets_are_resent_on_anything_passing_writes_only_when_unprocessed() {
        let err = |code, status: Option<u16>, retry_after: Option<u64>| TargetError {
            status,
            retry_after: retry_after.map(Duration::from_secs),
            ..TargetError::new(code, "x")
        };
        use ErrorCode as C;
        // (error, GET resent, write resent)
        let cases = [
            (err(C::TooManyRequests, Some(429), None), true, true),
            (err(C::TooManyRequests, Some(429), Some(1)), true, true),
            (err(C::InternalServerError, Some(503), Some(1)), true, true),
            (err(C::InternalServerError, Some(503), None), true, false),
            (err(C::InternalServerError, Some(500), None), true, false),
            (err(C::InternalServerError, Some(502), None), true, false),
            (err(C::InternalServerError, Some(504), Some(1)), true, false),
            (err(C::Timeout, Some(408), None), true, false),
            (err(C::Timeout, None, None), true, false),
            (err(C::WebExceptionProtocolError, None, None), true, false),
            (
                err(
                    C::SystemForCrossDomainIdentityManagementServiceIncompatible,
                    Some(200),
                    None,
                ),
                true,
                false,
            ),
            (err(C::NotImplemented, Some(501), None), false, false),
            (err(C::EntryConflict, Some(409), None), false, false),
            (err(C::InvalidAnchor, Some(404), None), false, false),
            (
                err(C::WebExceptionProtocolError, Some(302), None),
                false,
                false,
            ),
        ];
        for (e, get, write) in cases {
            assert_eq!(may_resend(true, &e), get, "GET after {e:?}");
            assert_eq!(may_resend(false, &e), write, "write after {e:?}");
        }
    }

    #[test]
    fn error_bodies_with_string_or_numeric_status() {
        let b = br#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"409","scimType":"uniqueness","detail":"taken"}"#;
        assert_eq!(
            parse_error_body(b),
            Some(ScimErrorBody {
                status: Some(409),
                scim_type: Some("uniqueness".into()),
                detail: Some("taken".into())
            })
        );
        let b = br#"{"status":400,"detail":"bad"}"#;
        assert_eq!(parse_error_body(b).unwrap().status, Some(400));
        assert_eq!(parse_error_body(b"<html>oops</html>"), None);
        assert_eq!(
            error_in_success(
                br#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":409}"#
            ),
            Some(409)
        );
        assert_eq!(error_in_success(br#"{"status":409}"#), None);
        // The schema spelt with a JSON escape is still an Error.
        assert_eq!(
            error_in_success(
                br#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:\u0045rror"],"status":"409"}"#
            ),
            Some(409)
        );
        assert_eq!(
            error_in_success(
                br#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"1"}"#
            ),
            None
        );
    }

    #[test]
    fn planned_paths_are_encoded() {
        assert_eq!(
            PlannedRequest::find("userName", "a b\"c&d").path,
            "/Users?filter=userName+eq+%22a+b%5C%22c%26d%22"
        );
        assert_eq!(PlannedRequest::delete("a/b c").path, "/Users/a%2Fb%20c");
    }

    #[test]
    fn addressing_decides_what_a_404_means() {
        let find = PlannedRequest::find("userName", "x");
        let by_id = PlannedRequest::delete("x");
        assert_eq!(
            http_error(&find, Addressing::of(&find.path), 404, b"", None, None).code,
            ErrorCode::ScimComplianceIssue
        );
        assert_eq!(
            http_error(&by_id, Addressing::of(&by_id.path), 404, b"", None, None).code,
            ErrorCode::InvalidAnchor
        );
    }
}
