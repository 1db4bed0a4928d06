//! `POST /v1.0/$batch` (wire contract §6.4).
//!
//! - Body `{"requests":[{"id","method","url","headers"?}]}`; at most 20 requests, unique ids,
//!   else the whole batch is 400 (the real body for 21+ is unconfirmed).
//! - `url` is relative to the version (`/users/{id}?$select=…`); an absolute URL is a 400 item.
//! - The batch answers 200 whenever it parses; each item carries its own `status`, `headers`
//!   and `body`, and the items come back **in random order**.
//! - `GraphEmulator::throttle_batch_items` makes the next items 429 with an inner `Retry-After`.
//! - Only `GET` items are served (the emulator is read-only); `dependsOn` is ignored.
//! - Each item is recorded in `GraphEmulator::requests` as its own request (`/v1.0{url}`),
//!   after the `POST /v1.0/$batch` itself.

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::server::{Ctx, Fault, GraphError, Shared, fault_error};

const MAX_REQUESTS: usize = 20;

struct Item {
    id: String,
    method: String,
    url: String,
    headers: HeaderMap,
}

fn parse(body: &[u8]) -> Result<Vec<Item>, GraphError> {
    let invalid = |m: &str| GraphError::new(StatusCode::BAD_REQUEST, "BadRequest", m);
    let v: Value =
        serde_json::from_slice(body).map_err(|_| invalid("Invalid batch payload format."))?;
    let requests = v
        .get("requests")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("Invalid batch payload format: 'requests' array missing."))?;
    if requests.len() > MAX_REQUESTS {
        return Err(invalid(
            "Number of batch request steps exceeds the maximum number of 20.",
        ));
    }
    let mut items: Vec<Item> = Vec::new();
    for r in requests {
        let text = |k: &str| r.get(k).and_then(Value::as_str).map(str::to_string);
        let (Some(id), Some(method), Some(url)) = (text("id"), text("method"), text("url")) else {
            return Err(invalid(
                "Every batch request needs string 'id', 'method' and 'url'.",
            ));
        };
        if items.iter().any(|i| i.id == id) {
            return Err(invalid("Batch request contains duplicate request ids."));
        }
        let mut headers = HeaderMap::new();
        if let Some(h) = r.get("headers").and_then(Value::as_object) {
            for (k, v) in h {
                if let (Ok(name), Some(Ok(value))) = (
                    HeaderName::try_from(k.as_str()),
                    v.as_str().map(HeaderValue::from_str),
                ) {
                    headers.insert(name, value);
                }
            }
        }
        items.push(Item {
            id,
            method,
            url,
            headers,
        });
    }
    Ok(items)
}

/// An inner response as a batch item: status, a few headers, JSON (or text) body.
async fn item_of(id: &str, resp: Response) -> Value {
    let status = resp.status().as_u16();
    let mut headers = Map::new();
    for (name, title) in [
        ("content-type", "Content-Type"),
        ("retry-after", "Retry-After"),
        ("location", "Location"),
    ] {
        if let Some(v) = resp.headers().get(name).and_then(|v| v.to_str().ok()) {
            headers.insert(title.into(), json!(v));
        }
    }
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    json!({"id": id, "status": status, "headers": headers, "body": body})
}

/// Handles one `$batch` request whose token and outer faults were already checked.
pub(crate) async fn handle(shared: &Shared, ctx: &Ctx, method: &Method, body: &[u8]) -> Response {
    if method != Method::POST {
        return ctx.error(GraphError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "Request_BadRequest",
            "Specified HTTP method is not allowed for the request target.",
        ));
    }
    let items = match parse(body) {
        Ok(items) => items,
        Err(e) => return ctx.error(e),
    };
    let mut responses = Vec::with_capacity(items.len());
    for item in items {
        let item_ctx = Ctx::new(&item.headers, &shared.base);
        let method =
            Method::from_bytes(item.method.to_ascii_uppercase().as_bytes()).unwrap_or(Method::GET);
        let target = format!("/v1.0{}", item.url);
        let resp = if !item.url.starts_with('/') {
            item_ctx.error(GraphError::new(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "Invalid request URL: batch request URLs must be relative, e.g. '/users/{id}'.",
            ))
        } else {
            match target.parse::<Uri>() {
                Err(_) => item_ctx.error(GraphError::bad_request("Invalid request URL.")),
                Ok(uri) => {
                    let mut inner = shared.lock();
                    match inner.batch_faults.pop_front() {
                        Some(secs) => {
                            let app_id = inner.dir.app.app_id.clone();
                            let tenant = inner.dir.guid.clone();
                            item_ctx.error(fault_error(Fault::Throttle(secs), &app_id, &tenant))
                        }
                        None => super::handlers::dispatch(
                            &mut inner,
                            &item_ctx,
                            &method,
                            &uri,
                            &item.headers,
                        ),
                    }
                }
            }
        };
        shared.record(&method, &target, resp.status());
        responses.push(item_of(&item.id, resp).await);
    }
    shuffle(&mut responses);
    ctx.ok(json!({"responses": responses}))
}

/// Fisher–Yates with random bytes from v4 UUIDs (no RNG crate needed for test noise).
fn shuffle(v: &mut [Value]) {
    for i in (1..v.len()).rev() {
        let r = u128::from_le_bytes(*uuid::Uuid::new_v4().as_bytes());
        let j = (r % (i as u128 + 1)) as usize;
        v.swap(i, j);
    }
}
