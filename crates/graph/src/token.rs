//! App-only access tokens from the Entra v2.0 token endpoint (OAuth2 client credentials).
//!
//! The `oauth2` crate builds the request and parses the answer; it runs over our own reqwest
//! 0.13 client through a small adapter (its bundled client is reqwest 0.12). oauth2 does not
//! cache, so [`TokenCache`] keeps the token and refreshes it ahead of expiry, one refresh at a
//! time. With a certificate credential each request carries a freshly signed
//! `client_assertion` instead of `client_secret`. Token endpoint errors are turned into one message that names the likely cause.

use crate::credential::AssertionSigner;
use crate::retry::{backoff_delay, retry_after, retryable_status};
use oauth2::basic::{
    BasicRevocationErrorResponse, BasicTokenIntrospectionResponse, BasicTokenResponse,
};
use oauth2::{
    AuthType, Client, ClientId, ClientSecret, EndpointNotSet, EndpointSet, ErrorResponse,
    HttpRequest, HttpResponse, RequestTokenError, Scope, StandardRevocableToken, TokenResponse,
    TokenUrl,
};
use scimsync_core::{ErrorCode, Secret, SourceError};
use scimsync_http::{Body, read_capped, too_large_text};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// The flat OAuth error body of the Entra token endpoint (not Graph's `{"error":{…}}`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AadError {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
    /// Numbers on the wire; accept strings too rather than fail on a lenient emulator.
    #[serde(default)]
    error_codes: Vec<Value>,
    #[serde(default)]
    trace_id: Option<String>,
    #[serde(default)]
    correlation_id: Option<String>,
}

impl fmt::Display for AadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.error)?;
        if let Some(d) = &self.error_description {
            write!(f, ": {}", first_line(d))?;
        }
        Ok(())
    }
}

impl ErrorResponse for AadError {}

impl AadError {
    /// The AADSTS number: from `error_codes`, else from the `AADSTSnnnn:` prefix of the text.
    pub(crate) fn code(&self) -> Option<u64> {
        let listed = self.error_codes.iter().find_map(|v| match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        });
        listed.or_else(|| {
            let d = self.error_description.as_deref()?;
            let digits: String = d
                .strip_prefix("AADSTS")?
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        })
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("").trim()
}

/// What an AADSTS code means for the admin who configured the job.
pub(crate) fn explain(code: u64) -> Option<&'static str> {
    Some(match code {
        7000215 => {
            "invalid client secret (use the secret's Value, not its Secret ID, and check it belongs to this app registration)"
        }
        7000222 => "client secret expired (create a new secret for the app registration)",
        700016 => {
            "application not found in the directory (wrong client_id or tenant, or not consented)"
        }
        90002 => "tenant not found (check tenant_id)",
        70011 | 1002012 => {
            "invalid scope (graph_url must be the Graph resource, e.g. https://graph.microsoft.com)"
        }
        65001 => {
            "consent missing: an administrator must grant admin consent for the application permissions"
        }
        700027 => {
            "client assertion refused: its signature does not match a certificate registered on the app registration (upload the certificate under Certificates & secrets, and check that the key file belongs to that certificate)"
        }
        700024 => "client assertion outside its validity period (check the system clock)",
        5002738 => {
            "client assertion signature algorithm not accepted (try the other algorithm: PS256 or RS256)"
        }
        7000218 => "no credential sent: configure a client secret or a certificate",
        _ => return None,
    })
}

/// Transport-level failure of a token request, seen by oauth2 as the HTTP client's error.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TokenTransportError {
    #[error("{0}")]
    Transport(#[from] reqwest::Error),
    /// 429 / 5xx but 501: worth another try, after `retry_after` if the endpoint said so.
    #[error("token endpoint answered HTTP {status}")]
    Busy {
        status: u16,
        retry_after: Option<Duration>,
    },
    #[error("{0}")]
    Http(#[from] oauth2::http::Error),
    /// The answer is larger than `max_token_response_bytes`; not retried.
    #[error("token endpoint answered HTTP {status} with a body {}", too_large_text(*declared, *cap))]
    TooLarge {
        status: u16,
        declared: Option<u64>,
        cap: usize,
    },
}

/// The adapter oauth2 5 asks for: run its `http::Request` on reqwest 0.13 and hand back an
/// `http::Response`. Throttling and server errors are reported as errors so we can retry.
async fn send(
    http: reqwest::Client,
    counter: Arc<AtomicU64>,
    cap: usize,
    request: HttpRequest,
) -> Result<HttpResponse, TokenTransportError> {
    let request = reqwest::Request::try_from(request)?;
    counter.fetch_add(1, Ordering::Relaxed);
    let response = http.execute(request).await?;
    let status = response.status();
    if retryable_status(status.as_u16()) {
        return Err(TokenTransportError::Busy {
            status: status.as_u16(),
            retry_after: retry_after(response.headers()),
        });
    }
    let mut builder = oauth2::http::Response::builder()
        .status(status)
        .version(response.version());
    for (name, value) in response.headers() {
        builder = builder.header(name, value);
    }
    let body = match read_capped(response, cap).await? {
        Body::Complete(body) => body,
        Body::TooLarge { declared, .. } => {
            return Err(TokenTransportError::TooLarge {
                status: status.as_u16(),
                declared,
                cap,
            });
        }
    };
    Ok(builder.body(body)?)
}

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How token requests authenticate the app.
pub(crate) enum Auth {
    Secret(Secret),
    /// Boxed: an RSA key is large next to a secret.
    Assertion(Box<AssertionSigner>),
}

type OAuthClient = Client<
    AadError,
    BasicTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

struct Cached {
    token: Secret,
    refresh_at: Instant,
}

/// Fetches and caches the app-only token. Holding the mutex across the fetch is deliberate:
/// concurrent requests wait for the one refresh instead of each asking for a token.
pub(crate) struct TokenCache {
    oauth: OAuthClient,
    http: reqwest::Client,
    counter: Arc<AtomicU64>,
    scope: String,
    token_url: String,
    auth: Auth,
    tenant_id: String,
    client_id: String,
    max_retries: u32,
    retry_base: Duration,
    max_response_bytes: usize,
    cached: Mutex<Option<Cached>>,
}

pub(crate) struct TokenSettings {
    pub token_url: String,
    pub scope: String,
    pub tenant_id: String,
    pub client_id: String,
    pub auth: Auth,
    pub max_retries: u32,
    pub retry_base: Duration,
    /// Largest token answer read.
    pub max_response_bytes: usize,
}

impl TokenCache {
    pub(crate) fn new(
        s: TokenSettings,
        http: reqwest::Client,
        counter: Arc<AtomicU64>,
    ) -> Result<Self, String> {
        let token_url = TokenUrl::new(s.token_url.clone())
            .map_err(|e| format!("invalid token URL {}: {e}", s.token_url))?;
        let mut oauth = Client::new(ClientId::new(s.client_id.clone()))
            .set_token_uri(token_url)
            // Entra accepts Basic too, but the documented form is the request body; without a
            // secret, oauth2 then sends just `client_id` in the body, as assertions need.
            .set_auth_type(AuthType::RequestBody);
        if let Auth::Secret(secret) = &s.auth {
            oauth = oauth.set_client_secret(ClientSecret::new(secret.expose().to_string()));
        }
        Ok(TokenCache {
            oauth,
            http,
            counter,
            scope: s.scope,
            token_url: s.token_url,
            auth: s.auth,
            tenant_id: s.tenant_id,
            client_id: s.client_id,
            max_retries: s.max_retries,
            retry_base: s.retry_base,
            max_response_bytes: s.max_response_bytes,
            cached: Mutex::new(None),
        })
    }

    /// A token that is valid for a while yet, fetching one if needed.
    pub(crate) async fn get(&self) -> Result<Secret, SourceError> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref()
            && Instant::now() < c.refresh_at
        {
            return Ok(c.token.clone());
        }
        let fresh = self.fetch().await?;
        let token = fresh.token.clone();
        *cached = Some(fresh);
        Ok(token)
    }

    /// Forget `used` (Graph refused it), unless another task has already replaced it.
    pub(crate) async fn invalidate(&self, used: &Secret) {
        let mut cached = self.cached.lock().await;
        if cached
            .as_ref()
            .is_some_and(|c| c.token.expose() == used.expose())
        {
            *cached = None;
        }
    }

    async fn fetch(&self) -> Result<Cached, SourceError> {
        let mut attempt = 0u32;
        loop {
            let http = self.http.clone();
            let counter = self.counter.clone();
            let cap = self.max_response_bytes;
            let adapter = move |req: HttpRequest| send(http.clone(), counter.clone(), cap, req);
            let mut request = self
                .oauth
                .exchange_client_credentials()
                .add_scope(Scope::new(self.scope.clone()));
            if let Auth::Assertion(signer) = &self.auth {
                let jwt =
                    signer
                        .sign(&self.token_url, &self.client_id)
                        .map_err(|e| SourceError {
                            code: ErrorCode::GraphAuthenticationFailed,
                            message: e,
                            request_id: None,
                        })?;
                request = request
                    .add_extra_param("client_assertion_type", JWT_BEARER)
                    .add_extra_param("client_assertion", jwt);
            }
            let result = request.request_async(&adapter).await;
            let failure = match result {
                Ok(response) => {
                    // Entra always sends expires_in; an hour is its usual value if one doesn't.
                    let lifetime = response.expires_in().unwrap_or(Duration::from_secs(3599));
                    tracing::debug!(
                        lifetime_secs = lifetime.as_secs(),
                        "fetched a Graph access token"
                    );
                    return Ok(Cached {
                        token: Secret::inline(response.access_token().secret().clone()),
                        refresh_at: Instant::now() + refresh_after(lifetime),
                    });
                }
                Err(e) => e,
            };
            let (retryable, wait) = match &failure {
                RequestTokenError::Request(TokenTransportError::Busy { retry_after, .. }) => {
                    (true, *retry_after)
                }
                RequestTokenError::Request(TokenTransportError::Transport(_)) => (true, None),
                _ => (false, None),
            };
            if retryable && attempt < self.max_retries {
                let delay = wait.unwrap_or_else(|| backoff_delay(self.retry_base, attempt));
                tracing::warn!(
                    attempt = attempt + 1,
                    delay_ms = delay.as_millis() as u64,
                    "token request failed ({}); retrying",
                    self.redact(&transport_text(&failure))
                );
                tokio::time::sleep(delay).await;
                attempt += 1;
                continue;
            }
            return Err(self.describe(failure, attempt));
        }
    }

    fn describe(
        &self,
        failure: RequestTokenError<TokenTransportError, AadError>,
        retries: u32,
    ) -> SourceError {
        let who = format!("tenant {}, client_id {}", self.tenant_id, self.client_id);
        let (code, message, request_id) = match failure {
            RequestTokenError::ServerResponse(err) => {
                let cause = match err.code() {
                    Some(n) => match explain(n) {
                        Some(text) => format!("{text} [AADSTS{n}]"),
                        None => format!(
                            "{} [AADSTS{n}]",
                            err.error_description
                                .as_deref()
                                .map(first_line)
                                .unwrap_or(err.error.as_str())
                        ),
                    },
                    None => err.to_string(),
                };
                let trace = err
                    .trace_id
                    .as_deref()
                    .map(|t| format!("; trace id {t}"))
                    .unwrap_or_default();
                (
                    ErrorCode::GraphAuthenticationFailed,
                    format!("Entra refused the token request ({who}): {cause}{trace}"),
                    err.correlation_id.clone(),
                )
            }
            RequestTokenError::Request(TokenTransportError::Busy { status, .. }) => (
                ErrorCode::GraphRequestFailed,
                format!(
                    "token endpoint unavailable ({who}): HTTP {status} after {retries} retries"
                ),
                None,
            ),
            RequestTokenError::Request(e @ TokenTransportError::TooLarge { .. }) => (
                ErrorCode::GraphRequestFailed,
                format!("{e} ({who}); refused without reading the rest (max_token_response_bytes)"),
                None,
            ),
            RequestTokenError::Request(e) => (
                ErrorCode::GraphRequestFailed,
                format!(
                    "cannot reach the token endpoint ({who}) after {retries} retries: {}",
                    error_chain(&e)
                ),
                None,
            ),
            RequestTokenError::Parse(e, body) => {
                let body = String::from_utf8_lossy(&body);
                // A malformed success body may still hold a usable token: never echo that.
                let snippet: String = if body.contains("access_token") {
                    "(withheld: it contains an access token)".into()
                } else {
                    body.chars().take(200).collect()
                };
                (
                    ErrorCode::GraphAuthenticationFailed,
                    format!(
                        "unexpected answer from the token endpoint ({who}): {e}; body starts: {snippet}"
                    ),
                    None,
                )
            }
            RequestTokenError::Other(e) => (
                ErrorCode::GraphAuthenticationFailed,
                format!("token request failed ({who}): {e}"),
                None,
            ),
        };
        SourceError {
            code,
            message: self.redact(&message),
            request_id,
        }
    }

    /// Belt and braces: no path should echo the secret, but never let one reach a message.
    fn redact(&self, text: &str) -> String {
        let Auth::Secret(secret) = &self.auth else {
            return text.to_string();
        };
        let secret = secret.expose();
        if secret.len() >= 4 {
            text.replace(secret, "[REDACTED]")
        } else {
            text.to_string()
        }
    }
}

fn transport_text(e: &RequestTokenError<TokenTransportError, AadError>) -> String {
    match e {
        RequestTokenError::Request(e) => error_chain(e),
        other => other.to_string(),
    }
}

/// An error and its sources on one line (reqwest's top-level text hides the root cause).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Refresh five minutes before expiry, or at half-life for tokens shorter than ten minutes.
pub(crate) fn refresh_after(lifetime: Duration) -> Duration {
    let margin = Duration::from_secs(300);
    if lifetime >= margin * 2 {
        lifetime - margin
    } else {
        lifetime / 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_is_early_for_long_tokens_and_at_half_life_for_short_ones() {
        assert_eq!(
            refresh_after(Duration::from_secs(3599)),
            Duration::from_secs(3299)
        );
        assert_eq!(
            refresh_after(Duration::from_secs(120)),
            Duration::from_secs(60)
        );
        assert_eq!(refresh_after(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn aadsts_code_comes_from_error_codes_or_the_description() {
        let e: AadError = serde_json::from_str(
            r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret is provided.\r\nTrace ID: x","error_codes":[7000215]}"#,
        )
        .unwrap();
        assert_eq!(e.code(), Some(7000215));
        let e: AadError = serde_json::from_str(
            r#"{"error":"invalid_request","error_description":"AADSTS90002: Tenant 'x' not found."}"#,
        )
        .unwrap();
        assert_eq!(e.code(), Some(90002));
    }
}
