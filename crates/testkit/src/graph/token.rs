//! `POST /{tenant}/oauth2/v2.0/token`: the Entra client-credentials grant.
//!
//! Errors use the flat OAuth body (`error`, `error_description` starting `AADSTSnnnn:`, numeric
//! `error_codes`, `timestamp`, `trace_id`, `correlation_id`, `error_uri`), never the Graph envelope.
//!
//! Client assertions (certificate / federated credentials): when the app has a registered
//! certificate (`Tenant::register_certificate`), the JWT header must name it by `x5t#S256` or
//! `x5t` and the signature must verify with its key, else 401 `invalid_client` AADSTS700027.
//! Without a registered certificate the signature is not checked. Either way the emulator checks
//! `alg` (RS256 or PS256), `iss` = `sub` = client id, `aud`
//! = this tenant's token URL (by domain or GUID, on the emulator or on login.microsoftonline.com,
//! `/oauth2/v2.0/token` or the older `/v2.0`), and `exp`/`nbf` with 5 minutes of skew.
//! The AADSTS codes for assertion problems other than 5002738 and 700027 are approximations.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::Utc;
use serde_json::{Value, json};

use super::server::Shared;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";

struct TokenError {
    status: StatusCode,
    error: &'static str,
    code: u32,
    message: String,
}

fn err(
    status: StatusCode,
    error: &'static str,
    code: u32,
    message: impl Into<String>,
) -> TokenError {
    TokenError {
        status,
        error,
        code,
        message: message.into(),
    }
}

fn missing(param: &str) -> TokenError {
    err(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        900144,
        format!("The request body must contain the following parameter: '{param}'."),
    )
}

fn no_cache(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache"),
    );
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
}

fn error_response(e: TokenError, correlation_id: &str) -> Response {
    let trace_id = uuid::Uuid::new_v4().to_string();
    let ts = Utc::now().format("%Y-%m-%d %H:%M:%SZ").to_string();
    let body = json!({
        "error": e.error,
        "error_description": format!(
            "AADSTS{}: {}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {ts}",
            e.code, e.message
        ),
        "error_codes": [e.code],
        "timestamp": ts,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": format!("https://login.microsoftonline.com/error?code={}", e.code),
    });
    let mut resp = (e.status, body.to_string()).into_response();
    no_cache(&mut resp);
    resp
}

/// Handles one token request.
pub(crate) fn handle(shared: &Shared, tenant: &str, headers: &HeaderMap, body: &[u8]) -> Response {
    let correlation_id = headers
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_string);
    match issue(shared, tenant, headers, body) {
        Ok(resp) => resp,
        Err(e) => error_response(e, &correlation_id),
    }
}

fn issue(
    shared: &Shared,
    tenant: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, TokenError> {
    let mut inner = shared.lock();
    let dir = &inner.dir;
    if !tenant.eq_ignore_ascii_case(&dir.domain) && !tenant.eq_ignore_ascii_case(&dir.guid) {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
            ),
        ));
    }
    let mut form: HashMap<String, String> = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        form.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    let basic = basic_credentials(headers);

    match form.get("grant_type").map(String::as_str) {
        None => return Err(missing("grant_type")),
        Some("client_credentials") => {}
        Some(other) => {
            return Err(err(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                70003,
                format!("The app requested an unsupported grant type '{other}'."),
            ));
        }
    }
    let client_id = form
        .get("client_id")
        .cloned()
        .or_else(|| basic.as_ref().map(|(id, _)| id.clone()))
        .ok_or_else(|| missing("client_id"))?;
    if !client_id.eq_ignore_ascii_case(&dir.app.app_id) {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
                dir.domain
            ),
        ));
    }
    let scope = form.get("scope").ok_or_else(|| missing("scope"))?;
    let accepted = [
        "https://graph.microsoft.com/.default".to_string(),
        format!("{GRAPH_APP_ID}/.default"),
        format!("{}/.default", shared.base),
    ];
    let scopes: Vec<&str> = scope.split_whitespace().collect();
    if scopes.len() != 1 || !accepted.iter().any(|a| a.eq_ignore_ascii_case(scopes[0])) {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            70011,
            format!(
                "The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."
            ),
        ));
    }

    if let Some(assertion) = form.get("client_assertion") {
        if form.get("client_assertion_type").map(String::as_str) != Some(JWT_BEARER) {
            return Err(err(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                50027,
                format!(
                    "JWT token is invalid or malformed: client_assertion_type must be '{JWT_BEARER}'."
                ),
            ));
        }
        check_assertion(
            assertion,
            &client_id,
            &shared.base,
            (&dir.domain, &dir.guid),
            &dir.app.certificates,
        )?;
    } else {
        let secret = form
            .get("client_secret")
            .cloned()
            .or_else(|| basic.map(|(_, s)| s))
            .ok_or_else(|| {
                err(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    7000218,
                    "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
                )
            })?;
        if secret != dir.app.client_secret {
            return Err(err(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000215,
                format!(
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
                    dir.app.app_id
                ),
            ));
        }
    }

    let lifetime = inner.token_lifetime;
    let token = mint(
        &inner.dir.guid,
        &inner.dir.app.app_id,
        &inner.dir.app.service_principal_id,
        lifetime,
    );
    let now = Instant::now();
    inner.tokens.retain(|_, exp| *exp > now); // keep the map from growing in long demos
    inner
        .tokens
        .insert(token.clone(), now + Duration::from_secs(lifetime));
    let body = json!({
        "token_type": "Bearer",
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": token,
    });
    let mut resp = (StatusCode::OK, body.to_string()).into_response();
    no_cache(&mut resp);
    Ok(resp)
}

/// HTTP Basic client authentication (RFC 6749 §2.3.1: id and secret are form-encoded first).
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let raw = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, b64) = raw.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(b64.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unform = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Some((unform(id), unform(secret)))
}

fn decode_part(part: &str) -> Option<Value> {
    let bytes = URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn check_assertion(
    jwt: &str,
    client_id: &str,
    base: &str,
    (domain, guid): (&str, &str),
    certificates: &[Vec<u8>],
) -> Result<(), TokenError> {
    let malformed = || {
        err(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            50027,
            "JWT token is invalid or malformed.",
        )
    };
    let parts: Vec<&str> = jwt.split('.').collect();
    if parts.len() != 3 {
        return Err(malformed());
    }
    let head = decode_part(parts[0]).ok_or_else(malformed)?;
    let claims = decode_part(parts[1]).ok_or_else(malformed)?;
    let alg = head.get("alg").and_then(Value::as_str).unwrap_or("");
    if alg != "RS256" && alg != "PS256" {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            5002738,
            format!(
                "Invalid JWT token. '{alg}' is not a supported signature algorithm. Supported signing algorithms are: 'RS256, PS256'"
            ),
        ));
    }
    if !certificates.is_empty() {
        check_signature(&parts, &head, alg, client_id, certificates)?;
    }
    let claim = |k: &str| claims.get(k).and_then(Value::as_str).unwrap_or("");
    if !claim("iss").eq_ignore_ascii_case(client_id)
        || !claim("sub").eq_ignore_ascii_case(client_id)
    {
        return Err(err(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            700021,
            "Client assertion application identifier doesn't match 'client_id' parameter.",
        ));
    }
    let mut accepted = Vec::new();
    for host in [base, "https://login.microsoftonline.com"] {
        for t in [domain, guid] {
            accepted.push(format!("{host}/{t}/oauth2/v2.0/token"));
            accepted.push(format!("{host}/{t}/v2.0"));
        }
    }
    let auds: Vec<&str> = match claims.get("aud") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if !auds
        .iter()
        .any(|a| accepted.iter().any(|x| x.eq_ignore_ascii_case(a)))
    {
        return Err(err(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            700027,
            "Client assertion contains an invalid audience. The 'aud' claim must be this tenant's token endpoint.",
        ));
    }
    let now = Utc::now().timestamp();
    let skew = 300;
    let exp = claims.get("exp").and_then(Value::as_i64);
    let nbf = claims.get("nbf").and_then(Value::as_i64);
    if exp.is_none_or(|e| e + skew < now) || nbf.is_some_and(|n| n - skew > now) {
        return Err(err(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            700024,
            "Client assertion is not within its valid time range.",
        ));
    }
    Ok(())
}

/// The assertion must name a registered certificate and carry a signature made with its key.
fn check_signature(
    parts: &[&str],
    head: &Value,
    alg: &str,
    client_id: &str,
    certificates: &[Vec<u8>],
) -> Result<(), TokenError> {
    let invalid = |reason: String| {
        err(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            700027,
            format!(
                "Client assertion contains an invalid signature. [Reason - {reason}, Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{client_id}'.]"
            ),
        )
    };
    let s256 = head.get("x5t#S256").and_then(Value::as_str);
    let sha1 = head.get("x5t").and_then(Value::as_str);
    let named = certificates.iter().find(|der| {
        s256.is_some_and(|t| t == super::cert::x5t_s256(der))
            || sha1.is_some_and(|t| t == super::cert::x5t(der))
    });
    let Some(der) = named else {
        let thumb = s256.or(sha1).unwrap_or("");
        return Err(invalid(format!(
            "The key was not found., Thumbprint of key used by client: '{thumb}'"
        )));
    };
    let key = super::cert::public_key(der).map_err(|e| invalid(e.to_string()))?;
    let signature = URL_SAFE_NO_PAD
        .decode(parts[2].trim_end_matches('='))
        .map_err(|_| invalid("The signature is not base64url".into()))?;
    let signed = format!("{}.{}", parts[0], parts[1]);
    if !super::cert::verify(&key, alg, signed.as_bytes(), &signature) {
        return Err(invalid(
            "The provided signature value did not match the expected signature value.".into(),
        ));
    }
    Ok(())
}

/// A JWT-shaped access token. Its signature is random bytes: only this emulator validates it,
/// by looking it up.
fn mint(tenant_guid: &str, app_id: &str, sp_id: &str, lifetime: u64) -> String {
    let now = Utc::now().timestamp();
    let head = json!({"typ": "JWT", "alg": "RS256", "kid": "scimsync-testkit"});
    let claims = json!({
        "aud": "https://graph.microsoft.com",
        "iss": format!("https://sts.windows.net/{tenant_guid}/"),
        "iat": now,
        "nbf": now,
        "exp": now + lifetime as i64,
        "appid": app_id,
        "idtyp": "app",
        "oid": sp_id,
        "roles": ["User.Read.All", "GroupMember.Read.All", "Application.Read.All"],
        "sub": sp_id,
        "tid": tenant_guid,
        "uti": uuid::Uuid::new_v4().simple().to_string(),
        "ver": "1.0",
    });
    let mut sig = Vec::with_capacity(64);
    for _ in 0..4 {
        sig.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    }
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(head.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(sig)
    )
}
