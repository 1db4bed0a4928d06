//! The Graph HTTP client: configuration, authenticated GETs with retries, error envelopes and
//! `@odata.nextLink` paging.

use crate::credential::{AssertionSigner, CertificateAlgorithm, Credential};
use crate::retry::{backoff_delay, retry_after, retryable_status};
use crate::token::{Auth, TokenCache, TokenSettings, error_chain};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap};
use scimsync_core::{ErrorCode, Secret, SourceError};
use scimsync_http::{Body, human, read_capped, too_large_text, trust_roots_for};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;
use tokio::sync::Semaphore;
use url::Url;

pub use scimsync_core::defaults::{
    GRAPH_PAGE_SIZE as DEFAULT_PAGE_SIZE, GRAPH_URL as DEFAULT_GRAPH_URL,
    LOGIN_URL as DEFAULT_LOGIN_URL,
};
pub const DEFAULT_MAX_RETRIES: u32 = 6;
pub const DEFAULT_MAX_CONCURRENCY: usize = 4;
/// First step of the exponential backoff used when Graph sends no `Retry-After`.
pub const DEFAULT_RETRY_BASE: Duration = Duration::from_secs(1);
/// Largest Graph answer (one page, one `$batch` response) read, 64 MiB: a page of 999 users
/// with every property is a few MB.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 64 << 20;
/// Largest token endpoint answer read, 1 MiB (a token answer is a few KB).
pub const DEFAULT_MAX_TOKEN_RESPONSE_BYTES: usize = 1 << 20;
/// The smallest accepted value of either limit.
const MIN_RESPONSE_LIMIT: usize = 1 << 10;

/// How to reach a tenant's Graph with an app registration's client credentials.
#[derive(Debug, Clone)]
pub struct GraphConfig {
    /// Tenant GUID or a verified domain name.
    pub tenant_id: String,
    /// The app registration's application (client) id.
    pub client_id: String,
    /// A client secret or a certificate.
    pub credential: Credential,
    /// Graph base URL, default [`DEFAULT_GRAPH_URL`]; the token scope is `{graph_url}/.default`.
    pub graph_url: String,
    /// Login base URL, default [`DEFAULT_LOGIN_URL`].
    pub login_url: String,
    /// `$top` for list reads, 1..=999 (default 999).
    pub page_size: u32,
    /// Retries of a throttled (429), unavailable (5xx) or unreachable request (default 6).
    pub max_retries: u32,
    /// Graph requests in flight at once (default 4).
    pub max_concurrency: usize,
    /// Largest Graph answer read, in bytes (default [`DEFAULT_MAX_RESPONSE_BYTES`], at least
    /// 1 KiB). The body is read chunk by chunk and the read stops past the limit: the request
    /// fails with `GraphRequestFailed` naming it and the limit, and is not retried.
    pub max_response_bytes: usize,
    /// Largest token endpoint answer read, in bytes (default
    /// [`DEFAULT_MAX_TOKEN_RESPONSE_BYTES`], at least 1 KiB).
    pub max_token_response_bytes: usize,
}

impl GraphConfig {
    /// A configuration for the public cloud with default limits, signing in with a client
    /// secret.
    pub fn new(
        tenant_id: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: Secret,
    ) -> Self {
        Self::with_credential(tenant_id, client_id, Credential::Secret(client_secret))
    }

    /// Like [`GraphConfig::new`], signing in with a certificate: `cert_pem` is the certificate
    /// registered on the app (`-----BEGIN CERTIFICATE-----`), `key_pem` its private key
    /// (PKCS#8 `-----BEGIN PRIVATE KEY-----`, or PKCS#1 `-----BEGIN RSA PRIVATE KEY-----`).
    pub fn with_certificate(
        tenant_id: impl Into<String>,
        client_id: impl Into<String>,
        cert_pem: impl Into<String>,
        key_pem: Secret,
        algorithm: CertificateAlgorithm,
    ) -> Self {
        Self::with_credential(
            tenant_id,
            client_id,
            Credential::Certificate {
                cert_pem: cert_pem.into(),
                key_pem,
                algorithm,
            },
        )
    }

    /// A configuration for the public cloud with default limits and the given credential.
    pub fn with_credential(
        tenant_id: impl Into<String>,
        client_id: impl Into<String>,
        credential: Credential,
    ) -> Self {
        GraphConfig {
            tenant_id: tenant_id.into(),
            client_id: client_id.into(),
            credential,
            graph_url: DEFAULT_GRAPH_URL.into(),
            login_url: DEFAULT_LOGIN_URL.into(),
            page_size: DEFAULT_PAGE_SIZE,
            max_retries: DEFAULT_MAX_RETRIES,
            max_concurrency: DEFAULT_MAX_CONCURRENCY,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            max_token_response_bytes: DEFAULT_MAX_TOKEN_RESPONSE_BYTES,
        }
    }
}

/// Microsoft Graph v1.0 reader. Cheap to clone: clones share the token cache, the connection
/// pool, the concurrency limit and the request counter.
#[derive(Clone)]
pub struct GraphClient {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    http: reqwest::Client,
    tokens: TokenCache,
    pub(crate) graph_url: Url,
    pub(crate) page_size: u32,
    pub(crate) max_retries: u32,
    pub(crate) retry_base: Duration,
    pub(crate) max_concurrency: usize,
    max_response_bytes: usize,
    permits: Semaphore,
    requests: Arc<AtomicU64>,
}

impl std::fmt::Debug for GraphClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphClient")
            .field("graph_url", &self.inner.graph_url.as_str())
            .field("requests_sent", &self.requests_sent())
            .finish_non_exhaustive()
    }
}

static CRYPTO_PROVIDER: Once = Once::new();

/// rustls panics when more than one crypto provider is compiled in and none was chosen.
fn install_crypto_provider() {
    CRYPTO_PROVIDER.call_once(|| {
        // Err means another part of the process installed one first: fine.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
}

fn config_error(message: String) -> SourceError {
    SourceError {
        code: ErrorCode::ConfigInvalid,
        message,
        request_id: None,
    }
}

fn base_url(name: &str, value: &str) -> Result<Url, SourceError> {
    let trimmed = value.trim().trim_end_matches('/');
    let url = Url::parse(trimmed).map_err(|e| config_error(format!("{name} {value:?}: {e}")))?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
        return Err(config_error(format!(
            "{name} {value:?} must be an http(s) URL"
        )));
    }
    Ok(url)
}

impl GraphClient {
    /// Validate the configuration and build the client. No request is sent.
    pub fn new(cfg: GraphConfig) -> Result<Self, SourceError> {
        Self::with_retry_base(cfg, DEFAULT_RETRY_BASE)
    }

    /// Like [`GraphClient::new`], with another first backoff step (tests and emulators use a
    /// few milliseconds so that retries without `Retry-After` do not slow them down).
    pub fn with_retry_base(cfg: GraphConfig, retry_base: Duration) -> Result<Self, SourceError> {
        install_crypto_provider();
        let tenant = cfg.tenant_id.trim();
        if tenant.is_empty()
            || !tenant
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            return Err(config_error(format!(
                "tenant_id {:?} must be a tenant GUID or domain name",
                cfg.tenant_id
            )));
        }
        let client_id = cfg.client_id.trim();
        if client_id.is_empty() {
            return Err(config_error("client_id is empty".into()));
        }
        if !(1..=999).contains(&cfg.page_size) {
            return Err(config_error(format!(
                "page_size {} must be between 1 and 999 (Graph's $top limit)",
                cfg.page_size
            )));
        }
        if cfg.max_concurrency == 0 {
            return Err(config_error("max_concurrency must be at least 1".into()));
        }
        for (name, value) in [
            ("max_response_bytes", cfg.max_response_bytes),
            ("max_token_response_bytes", cfg.max_token_response_bytes),
        ] {
            if value < MIN_RESPONSE_LIMIT {
                return Err(config_error(format!(
                    "{name} {value} must be at least {}",
                    human(MIN_RESPONSE_LIMIT)
                )));
            }
        }
        let graph_url = base_url("graph_url", &cfg.graph_url)?;
        let login_url = base_url("login_url", &cfg.login_url)?;
        let builder = reqwest::Client::builder()
            .user_agent(concat!("scimsync/", env!("CARGO_PKG_VERSION")))
            // Never follow redirects: the token request carries the secret, Graph requests the token.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(15))
            .timeout(Duration::from_secs(120));
        let http = trust_roots_for(builder, &[&graph_url, &login_url])
            .build()
            .map_err(|e| {
                config_error(format!("cannot build the HTTP client: {}", error_chain(&e)))
            })?;
        let requests = Arc::new(AtomicU64::new(0));
        let graph_base = graph_url.as_str().trim_end_matches('/');
        let auth = match cfg.credential {
            Credential::Secret(secret) => Auth::Secret(secret),
            Credential::Certificate {
                cert_pem,
                key_pem,
                algorithm,
            } => Auth::Assertion(Box::new(
                AssertionSigner::new(&cert_pem, &key_pem, algorithm).map_err(config_error)?,
            )),
        };
        let tokens = TokenCache::new(
            TokenSettings {
                token_url: format!(
                    "{}/{tenant}/oauth2/v2.0/token",
                    login_url.as_str().trim_end_matches('/')
                ),
                scope: format!("{graph_base}/.default"),
                tenant_id: tenant.to_string(),
                client_id: client_id.to_string(),
                auth,
                max_retries: cfg.max_retries,
                retry_base,
                max_response_bytes: cfg.max_token_response_bytes,
            },
            http.clone(),
            requests.clone(),
        )
        .map_err(config_error)?;
        Ok(GraphClient {
            inner: Arc::new(Inner {
                http,
                tokens,
                graph_url,
                page_size: cfg.page_size,
                max_retries: cfg.max_retries,
                retry_base,
                max_concurrency: cfg.max_concurrency,
                max_response_bytes: cfg.max_response_bytes,
                permits: Semaphore::new(cfg.max_concurrency),
                requests,
            }),
        })
    }

    /// Make sure a valid token is cached, fetching one if needed. Test-connection uses it to
    /// check the credentials without reading any data.
    pub async fn token(&self) -> Result<(), SourceError> {
        self.inner.tokens.get().await.map(|_| ())
    }

    /// HTTP requests sent so far by this client and its clones: token requests and Graph
    /// requests, each retry counted.
    pub fn requests_sent(&self) -> u64 {
        self.inner.requests.load(Ordering::Relaxed)
    }

    /// `{graph_url}/v1.0/{path}?{query}`; `query` is OData text such as `$select=id&$top=999`.
    pub(crate) fn url(&self, path_segments: &[&str], query: &str) -> Url {
        let mut url = self.inner.graph_url.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().push("v1.0").extend(path_segments);
        }
        // `$` and `,` stay literal, as Graph's own nextLinks write them.
        url.set_query((!query.is_empty()).then_some(query));
        url
    }

    /// GET a Graph URL: token, concurrency limit, `client-request-id`, retries on 429/5xx and
    /// transport errors, one token refresh on 401. `permission` names the application
    /// permission the call needs, for the 403 message.
    pub(crate) async fn get(&self, url: &Url, permission: &str) -> Result<Value, Failure> {
        self.call(url, None, permission).await
    }

    /// [`GraphClient::get`], parsed straight into `T` (no JSON tree in between).
    pub(crate) async fn get_as<T: DeserializeOwned>(
        &self,
        url: &Url,
        permission: &str,
    ) -> Result<T, Failure> {
        self.call(url, None, permission).await
    }

    /// POST a JSON body (used for `$batch`), with the same retries as [`GraphClient::get`].
    pub(crate) async fn post(
        &self,
        url: &Url,
        body: &Value,
        permission: &str,
    ) -> Result<Value, Failure> {
        self.call(url, Some(body), permission).await
    }

    async fn call<T: DeserializeOwned>(
        &self,
        url: &Url,
        json_body: Option<&Value>,
        permission: &str,
    ) -> Result<T, Failure> {
        let inner = &self.inner;
        let mut attempt = 0u32;
        let mut refreshed = false;
        loop {
            let token = inner.tokens.get().await.map_err(Failure::other)?;
            let client_request_id = uuid::Uuid::new_v4().to_string();
            let started = std::time::Instant::now();
            let sent = {
                let _permit = inner.permits.acquire().await.map_err(|_| {
                    Failure::other(request_failed("the client is shut down".into(), None))
                })?;
                inner.requests.fetch_add(1, Ordering::Relaxed);
                let request = match json_body {
                    Some(b) => inner.http.post(url.clone()).json(b),
                    None => inner.http.get(url.clone()),
                };
                let response = request
                    .header(AUTHORIZATION, format!("Bearer {}", token.expose()))
                    .header(ACCEPT, "application/json")
                    .header("client-request-id", &client_request_id)
                    .send()
                    .await;
                match response {
                    Ok(r) => {
                        let status = r.status();
                        let headers = r.headers().clone();
                        read_capped(r, inner.max_response_bytes)
                            .await
                            .map(|body| (status, headers, body))
                    }
                    Err(e) => Err(e),
                }
            };
            let what = describe(json_body.is_some(), url);
            let (status, headers, body) = match sent {
                Ok(parts) => parts,
                Err(e) => {
                    if attempt < inner.max_retries {
                        let delay = backoff_delay(inner.retry_base, attempt);
                        tracing::warn!(request = %what, attempt = attempt + 1, delay_ms = delay.as_millis() as u64,
                            "Graph request failed ({}); retrying", error_chain(&e));
                        tokio::time::sleep(delay).await;
                        attempt += 1;
                        continue;
                    }
                    return Err(Failure::other(request_failed(
                        format!(
                            "{what}: cannot reach Graph after {attempt} retries: {} (client-request-id {client_request_id})",
                            error_chain(&e)
                        ),
                        None,
                    )));
                }
            };
            // Metrics for the admin server's `/metrics` (a no-op without a recorder).
            let method = if json_body.is_some() { "POST" } else { "GET" };
            metrics::histogram!(
                "scimsync_graph_request_duration_seconds",
                "method" => method,
                "status" => status.as_u16().to_string()
            )
            .record(started.elapsed().as_secs_f64());
            if status == StatusCode::TOO_MANY_REQUESTS {
                metrics::counter!("scimsync_throttled_total", "client" => "graph").increment(1);
            }
            let request_id = header(&headers, "request-id");
            tracing::debug!(request = %what, status = status.as_u16(), request_id = request_id.as_deref().unwrap_or(""), "Graph answered");
            let body = match body {
                Body::Complete(body) => body,
                // Not retried: the same request would bring the same answer.
                Body::TooLarge { declared, .. } if status.is_success() => {
                    return Err(Failure::other(request_failed(
                        format!(
                            "{what}: Graph answered {status} with a body {}; refused without \
                             reading the rest (raise max_response_bytes, or lower page_size) \
                             [request-id {}, client-request-id {client_request_id}]",
                            too_large_text(declared, inner.max_response_bytes),
                            request_id.as_deref().unwrap_or("none"),
                        ),
                        request_id,
                    )));
                }
                // An error answer is still that error; its start is enough for the message.
                Body::TooLarge { prefix, .. } => prefix,
            };
            if status.is_success() {
                return serde_json::from_slice(&body).map_err(|e| {
                    Failure::other(request_failed(
                        format!(
                            "{what}: Graph answered {status} with a body that is not the JSON expected: {e}"
                        ),
                        request_id,
                    ))
                });
            }
            let envelope = GraphErrorBody::parse(&body);
            let code = envelope.code.as_deref().unwrap_or("");
            if status == StatusCode::UNAUTHORIZED && !refreshed {
                // Expired early, revoked, or signed for another audience: one fresh token.
                tracing::info!(request = %what, code, "Graph refused the access token; fetching a new one");
                inner.tokens.invalidate(&token).await;
                refreshed = true;
                continue;
            }
            let retryable = retryable_status(status.as_u16());
            if retryable && attempt < inner.max_retries {
                let delay = retry_after(&headers)
                    .unwrap_or_else(|| backoff_delay(inner.retry_base, attempt));
                tracing::warn!(request = %what, status = status.as_u16(), code, attempt = attempt + 1,
                    delay_ms = delay.as_millis() as u64, "Graph throttled or unavailable; retrying");
                tokio::time::sleep(delay).await;
                attempt += 1;
                continue;
            }
            let ids = Ids {
                request_id: request_id.or_else(|| envelope.request_id.clone()),
                client_request_id: header(&headers, "client-request-id")
                    .or_else(|| envelope.client_request_id.clone())
                    .unwrap_or(client_request_id),
            };
            let mut message = format!("{what}: HTTP {}", status.as_u16());
            if !code.is_empty() {
                message.push_str(&format!(" {code}"));
            }
            if let Some(m) = &envelope.message {
                message.push_str(&format!(": {m}"));
            }
            let error_code = if status == StatusCode::UNAUTHORIZED {
                message.push_str(" (Graph refused a freshly issued token: check that graph_url matches the token audience)");
                ErrorCode::GraphAuthenticationFailed
            } else {
                if status == StatusCode::FORBIDDEN
                    && code.eq_ignore_ascii_case("Authorization_RequestDenied")
                {
                    message.push_str(&format!(
                        " (the app registration lacks the application permission {permission}, or admin consent for it)"
                    ));
                }
                if retryable {
                    message.push_str(&format!(" (gave up after {attempt} retries)"));
                }
                ErrorCode::GraphRequestFailed
            };
            message.push_str(&format!(
                " [request-id {}, client-request-id {}]",
                ids.request_id.as_deref().unwrap_or("none"),
                ids.client_request_id
            ));
            return Err(Failure {
                status: Some(status),
                code: envelope.code.clone(),
                error: SourceError {
                    code: error_code,
                    message,
                    request_id: ids.request_id,
                },
            });
        }
    }

    /// GET every page of a collection, handing each page's `value` to `each`.
    /// `@odata.nextLink` is followed unchanged, but only on the Graph host: it gets our token.
    ///
    /// A `$skiptoken` can expire while a large collection is paged (400
    /// `Directory_ExpiredPageToken`, e.g. when paging is slowed by throttling). The read then
    /// starts over once from the first page: `each` gets [`PageEvent::Restart`] and must drop
    /// what it collected, because resuming from a stale position could skip or repeat objects.
    pub(crate) async fn get_pages(
        &self,
        first: Url,
        permission: &str,
        each: impl FnMut(PageEvent<Vec<Value>>) + Send,
    ) -> Result<(), SourceError> {
        self.get_typed_pages::<Value>(first, permission, each).await
    }

    /// [`GraphClient::get_pages`] with each page parsed straight into `P`.
    pub(crate) async fn get_typed_pages<P: GraphPage>(
        &self,
        first: Url,
        permission: &str,
        mut each: impl FnMut(PageEvent<P::Items>) + Send,
    ) -> Result<(), SourceError> {
        let mut url = first.clone();
        let mut restarted = false;
        loop {
            let page = match self.get_as::<P>(&url, permission).await {
                Ok(page) => page,
                Err(f)
                    if f.has_code("Directory_ExpiredPageToken") && !restarted && url != first =>
                {
                    tracing::warn!(request = %describe_url(&first),
                        "Graph expired the page token mid-read; reading the collection again from the start");
                    restarted = true;
                    each(PageEvent::Restart);
                    url = first.clone();
                    continue;
                }
                Err(f) => return Err(f.error),
            };
            let (values, links) = page.split(&url)?;
            each(PageEvent::Page(values));
            let Some(next) = links.next else {
                return Ok(());
            };
            url = self.next_url(&url, &next)?;
        }
    }

    /// Validate an `@odata.nextLink` / `@odata.deltaLink` before our token is sent to it.
    pub(crate) fn next_url(&self, current: &Url, next: &str) -> Result<Url, SourceError> {
        let parsed = Url::parse(next).map_err(|e| {
            request_failed(
                format!(
                    "{}: unusable link {next:?} from Graph: {e}",
                    describe_url(current)
                ),
                None,
            )
        })?;
        if parsed.origin() != self.inner.graph_url.origin() {
            return Err(request_failed(
                format!(
                    "{}: @odata.nextLink points to another host ({}); refusing to send the token there",
                    describe_url(current),
                    parsed.origin().ascii_serialization()
                ),
                None,
            ));
        }
        if parsed == *current {
            return Err(request_failed(
                format!(
                    "{}: @odata.nextLink repeats the current page",
                    describe_url(current)
                ),
                None,
            ));
        }
        Ok(parsed)
    }

    /// `/users/x?$select=…` for a `$batch` item: the part of [`GraphClient::url`] after `/v1.0`.
    pub(crate) fn relative_url(&self, path_segments: &[&str], query: &str) -> String {
        let full = self.url(path_segments, query);
        let root = self.url(&[], "");
        full.as_str()
            .strip_prefix(root.as_str().trim_end_matches('/'))
            .unwrap_or(full.path())
            .to_string()
    }
}

/// What [`GraphClient::get_pages`] hands its callback.
pub(crate) enum PageEvent<T> {
    Page(T),
    /// The read starts over from the first page: forget what was collected.
    Restart,
}

/// The links at the end of a page.
#[derive(Debug)]
pub(crate) struct Links {
    pub next: Option<String>,
    pub delta: Option<String>,
}

/// A collection page as parsed from Graph's answer: its items and its links.
pub(crate) trait GraphPage: DeserializeOwned {
    type Items;
    fn split(self, url: &Url) -> Result<(Self::Items, Links), SourceError>;
}

impl GraphPage for Value {
    type Items = Vec<Value>;
    fn split(self, url: &Url) -> Result<(Vec<Value>, Links), SourceError> {
        split_page(url, self)
    }
}

/// A page's `value` array and its `@odata.nextLink` / `@odata.deltaLink`.
pub(crate) fn split_page(url: &Url, page: Value) -> Result<(Vec<Value>, Links), SourceError> {
    let Value::Object(mut page) = page else {
        return Err(request_failed(
            format!(
                "{}: Graph answered with a JSON value that is not an object",
                describe_url(url)
            ),
            None,
        ));
    };
    let Some(Value::Array(values)) = page.remove("value") else {
        return Err(no_value_array(url));
    };
    let link = |k: &str| page.get(k).and_then(Value::as_str).map(str::to_string);
    Ok((
        values,
        Links {
            next: link("@odata.nextLink"),
            delta: link("@odata.deltaLink"),
        },
    ))
}

/// A collection page without its `value` array.
pub(crate) fn no_value_array(url: &Url) -> SourceError {
    request_failed(
        format!(
            "{}: Graph's answer has no \"value\" array",
            describe_url(url)
        ),
        None,
    )
}

/// A failed GET, with the HTTP status when Graph answered (so callers can treat 404 apart).
#[derive(Debug)]
pub(crate) struct Failure {
    pub status: Option<StatusCode>,
    /// Graph's `error.code`, when it answered with the error envelope.
    pub code: Option<String>,
    pub error: SourceError,
}

impl Failure {
    fn other(error: SourceError) -> Self {
        Failure {
            status: None,
            code: None,
            error,
        }
    }

    /// Graph's `error.code` equals `code`, ignoring case (casing varies across workloads).
    pub(crate) fn has_code(&self, code: &str) -> bool {
        self.code
            .as_deref()
            .is_some_and(|c| c.eq_ignore_ascii_case(code))
    }
}

struct Ids {
    request_id: Option<String>,
    client_request_id: String,
}

pub(crate) fn request_failed(message: String, request_id: Option<String>) -> SourceError {
    SourceError {
        code: ErrorCode::GraphRequestFailed,
        message,
        request_id,
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// "GET /v1.0/users" for messages: the path without the (long, opaque) query.
pub(crate) fn describe_url(url: &Url) -> String {
    describe(false, url)
}

fn describe(post: bool, url: &Url) -> String {
    format!("{} {}", if post { "POST" } else { "GET" }, url.path())
}

/// Graph's `{"error":{"code","message","innerError":{"request-id","client-request-id"}}}`.
#[derive(Debug, Default)]
pub(crate) struct GraphErrorBody {
    pub(crate) code: Option<String>,
    pub(crate) message: Option<String>,
    pub(crate) request_id: Option<String>,
    pub(crate) client_request_id: Option<String>,
}

impl GraphErrorBody {
    pub(crate) fn parse(body: &[u8]) -> Self {
        #[derive(Deserialize)]
        struct Envelope {
            error: Option<Map<String, Value>>,
        }
        let Ok(Envelope { error: Some(e) }) = serde_json::from_slice::<Envelope>(body) else {
            return GraphErrorBody::default();
        };
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
        // `innerError` on the wire; errors.md spells it `innererror`.
        let inner = e
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("innerError"))
            .map(|(_, v)| v);
        GraphErrorBody {
            code: text(e.get("code")),
            message: text(e.get("message")),
            request_id: text(inner.and_then(|i| i.get("request-id"))),
            client_request_id: text(inner.and_then(|i| i.get("client-request-id"))),
        }
    }
}
