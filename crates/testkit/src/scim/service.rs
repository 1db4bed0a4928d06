//! The HTTP face of the target: auth, fault injection, routing, the SCIM endpoints, and the
//! request log. One axum fallback handler does it all so every request — including a 401 or an
//! injected 429 — is recorded with the status it got.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::RecordedRequest;
use super::error::ScimError;
use super::filter::{AttrRef, parse, resolve};
use super::patch;
use super::schema::{self, Catalog, ResourceType, Returned, Rules};
use super::store::{self, Row, Table};

pub(crate) const SCIM_JSON: &str = "application/scim+json";
const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
const SEARCH_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

/// A queued injected failure.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fault {
    pub status: u16,
    pub retry_after: Option<u64>,
}

/// Mutable state; every handler holds the lock for its whole (synchronous) run.
/// Deliberately not `Debug`: it holds the bearer token.
#[derive(Default)]
pub(crate) struct Inner {
    pub token: String,
    pub users: Table,
    pub groups: Table,
    pub requests: Vec<RecordedRequest>,
    pub faults: VecDeque<Fault>,
    pub filter_404: bool,
    /// Filtered lists still to answer as if nothing matched.
    pub stale_filters: usize,
}

impl Inner {
    pub(crate) fn table(&mut self, rt: &ResourceType) -> &mut Table {
        if rt.name == "User" {
            &mut self.users
        } else {
            &mut self.groups
        }
    }
}

pub(crate) struct Shared {
    pub base_path: String,
    pub base_url: String,
    pub rules: Rules,
    /// Resource types and schemas, built-in plus the extensions registered at start.
    pub catalog: &'static Catalog,
    pub default_page_size: usize,
    pub max_page_size: usize,
    pub inner: Mutex<Inner>,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicking test thread must not take every later assertion down with it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What a request gets back, before it becomes an HTTP response.
struct Reply {
    status: u16,
    headers: Vec<(header::HeaderName, String)>,
    body: Option<Value>,
}

impl Reply {
    fn json(status: u16, body: Value) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            body: Some(body),
        }
    }
    fn empty(status: u16) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            body: None,
        }
    }
    fn with(mut self, name: header::HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
    fn resource(status: u16, row: &Row, body: Value) -> Self {
        Reply::json(status, body).with(header::ETAG, row.etag())
    }
}

impl From<ScimError> for Reply {
    fn from(e: ScimError) -> Self {
        Reply::json(e.status, e.body())
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut builder = Response::builder().status(status);
        for (name, value) in &self.headers {
            if let Ok(v) = HeaderValue::from_str(value) {
                builder = builder.header(name, v);
            }
        }
        let body = match &self.body {
            Some(b) => {
                builder = builder.header(header::CONTENT_TYPE, SCIM_JSON);
                Body::from(b.to_string())
            }
            None => Body::empty(),
        };
        builder
            .body(body)
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
    }
}

/// The single axum handler.
pub(crate) async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path_and_query = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned());
    let recorded_body = if body.is_empty() {
        None
    } else {
        Some(
            serde_json::from_slice::<Value>(&body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned())),
        )
    };
    let mut inner = shared.lock();
    let reply = process(&shared, &mut inner, &method, &uri, &headers, &body);
    inner.requests.push(RecordedRequest {
        method: method.as_str().to_owned(),
        path_and_query,
        body: recorded_body,
        status: reply.status,
    });
    drop(inner);
    reply.into_response()
}

fn authorized(inner: &Inner, headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some((scheme, token)) = value.split_once(' ') else {
        return false;
    };
    scheme.eq_ignore_ascii_case("bearer") && !inner.token.is_empty() && token.trim() == inner.token
}

fn process(
    shared: &Shared,
    inner: &mut Inner,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Reply {
    if !authorized(inner, headers) {
        return Reply::from(ScimError::new(401, None, "missing or invalid bearer token"))
            .with(header::WWW_AUTHENTICATE, "Bearer realm=\"scim\"");
    }
    if let Some(fault) = inner.faults.pop_front() {
        let detail = if fault.status == 429 {
            "too many requests (injected)"
        } else {
            "injected failure"
        };
        let mut reply = Reply::from(ScimError::new(fault.status, None, detail));
        if let Some(secs) = fault.retry_after {
            reply = reply.with(header::RETRY_AFTER, secs.to_string());
        }
        return reply;
    }
    match route(shared, inner, method, uri, headers, body) {
        Ok(r) => r,
        Err(e) => e.into(),
    }
}

/// Query parameters (names compared ignoring case).
#[derive(Default)]
struct Query {
    filter: Option<String>,
    start_index: Option<String>,
    count: Option<String>,
    attributes: Vec<String>,
    excluded: Vec<String>,
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Query {
    fn parse(uri: &Uri) -> Self {
        let mut q = Query::default();
        for (k, v) in url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()) {
            match k.to_ascii_lowercase().as_str() {
                "filter" => q.filter = Some(v.into_owned()),
                "startindex" => q.start_index = Some(v.into_owned()),
                "count" => q.count = Some(v.into_owned()),
                "attributes" => q.attributes.extend(split_list(&v)),
                "excludedattributes" => q.excluded.extend(split_list(&v)),
                _ => {}
            }
        }
        q
    }

    fn wants_body(&self) -> bool {
        !self.attributes.is_empty() || !self.excluded.is_empty()
    }
}

fn read_json(headers: &HeaderMap, body: &Bytes) -> Result<Value, ScimError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = ct
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if essence != SCIM_JSON && essence != "application/json" {
        return Err(ScimError::new(
            415,
            None,
            format!("Content-Type must be {SCIM_JSON} or application/json, got {ct:?}"),
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| ScimError::invalid_syntax(format!("the body is not valid JSON: {e}")))
}

fn check_if_match(headers: &HeaderMap, row: &Row) -> Result<(), ScimError> {
    let Some(want) = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let etag = row.etag();
    if want
        .split(',')
        .map(str::trim)
        .any(|w| w == "*" || w == etag)
    {
        Ok(())
    } else {
        Err(ScimError::new(
            412,
            None,
            format!("If-Match {want} does not match the current version {etag}"),
        ))
    }
}

fn method_not_allowed(method: &Method) -> ScimError {
    ScimError::new(
        405,
        None,
        format!("{method} is not supported on this endpoint"),
    )
}

fn route(
    shared: &Shared,
    inner: &mut Inner,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Reply, ScimError> {
    let path = uri.path();
    let not_found = || ScimError::not_found(format!("no SCIM endpoint at {path}"));
    let rest = path
        .strip_prefix(shared.base_path.as_str())
        .ok_or_else(not_found)?;
    let segments: Vec<&str> = match rest {
        "" => Vec::new(),
        r => r
            .strip_prefix('/')
            .ok_or_else(not_found)?
            .split('/')
            .collect(),
    };
    let query = Query::parse(uri);
    let base = shared.base_url.as_str();
    let rt: &'static ResourceType = match segments.first().copied() {
        Some("Users") => shared.catalog.user,
        Some("Groups") => shared.catalog.group,
        Some("ServiceProviderConfig") if segments.len() == 1 => {
            return match *method {
                Method::GET => Ok(Reply::json(
                    200,
                    schema::service_provider_config(base, shared.max_page_size),
                )),
                _ => Err(method_not_allowed(method)),
            };
        }
        Some("Schemas") if *method != Method::GET => return Err(method_not_allowed(method)),
        Some("Schemas") => {
            let all: Vec<Value> = shared
                .catalog
                .schemas
                .iter()
                .map(|s| schema::schema_json(s, base))
                .collect();
            return match segments.get(1) {
                None => Ok(list_response(all.len(), 1, all)),
                Some(id) => all
                    .into_iter()
                    .find(|s| s["id"].as_str() == Some(*id))
                    .map(|s| Reply::json(200, s))
                    .ok_or_else(|| ScimError::not_found(format!("schema {id} not found"))),
            };
        }
        Some("ResourceTypes") if *method != Method::GET => return Err(method_not_allowed(method)),
        Some("ResourceTypes") => {
            let all: Vec<Value> = [shared.catalog.user, shared.catalog.group]
                .iter()
                .map(|rt| schema::resource_type_json(rt, base))
                .collect();
            return match segments.get(1) {
                None => Ok(list_response(all.len(), 1, all)),
                Some(id) => all
                    .into_iter()
                    .find(|s| s["id"].as_str() == Some(*id))
                    .map(|s| Reply::json(200, s))
                    .ok_or_else(|| ScimError::not_found(format!("resource type {id} not found"))),
            };
        }
        _ => return Err(not_found()),
    };
    match (segments.len(), segments.get(1).copied()) {
        (1, _) => match *method {
            Method::GET => list(shared, inner, rt, &query),
            Method::POST => {
                let input = read_json(headers, body)?;
                let row = store::create(rt, inner.table(rt), base, shared.rules, &input)?;
                let location = row.resource["meta"]["location"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let out = project(rt, &row.resource, &query)?;
                Ok(Reply::resource(201, &row, out).with(header::LOCATION, location))
            }
            _ => Err(method_not_allowed(method)),
        },
        (2, Some(".search")) => match *method {
            Method::POST => {
                let input = read_json(headers, body)?;
                search(shared, inner, rt, &input)
            }
            _ => Err(method_not_allowed(method)),
        },
        (2, Some(id)) => {
            let missing = || ScimError::not_found(format!("{} {id} not found", rt.name));
            match *method {
                Method::GET => {
                    let table = inner.table(rt);
                    let row = table.get(id).ok_or_else(missing)?;
                    Ok(Reply::resource(
                        200,
                        row,
                        project(rt, &row.resource, &query)?,
                    ))
                }
                Method::PUT => {
                    let row = inner.table(rt).get(id).ok_or_else(missing)?;
                    check_if_match(headers, row)?;
                    let input = read_json(headers, body)?;
                    let attrs = schema::normalize(rt, &input, shared.rules, true)?;
                    let row = store::update(rt, inner.table(rt), id, attrs)?;
                    Ok(Reply::resource(
                        200,
                        &row,
                        project(rt, &row.resource, &query)?,
                    ))
                }
                Method::PATCH => {
                    let row = inner.table(rt).get(id).ok_or_else(missing)?;
                    check_if_match(headers, row)?;
                    let mut resource = row.resource.clone();
                    let input = read_json(headers, body)?;
                    patch::apply(rt, &mut resource, &input)?;
                    let attrs =
                        schema::normalize(rt, &Value::Object(resource), shared.rules, false)?;
                    let row = store::update(rt, inner.table(rt), id, attrs)?;
                    // Entra expects 204 for groups (no member list back); users get the resource.
                    if rt.name == "Group" && !query.wants_body() {
                        Ok(Reply::empty(204).with(header::ETAG, row.etag()))
                    } else {
                        Ok(Reply::resource(
                            200,
                            &row,
                            project(rt, &row.resource, &query)?,
                        ))
                    }
                }
                Method::DELETE => {
                    let row = inner.table(rt).get(id).ok_or_else(missing)?;
                    check_if_match(headers, row)?;
                    inner.table(rt).remove(id);
                    Ok(Reply::empty(204))
                }
                _ => Err(method_not_allowed(method)),
            }
        }
        _ => Err(not_found()),
    }
}

fn list_response(total: usize, start_index: usize, resources: Vec<Value>) -> Reply {
    Reply::json(
        200,
        json!({
            "schemas": [LIST_RESPONSE],
            "totalResults": total,
            "Resources": resources,
            "startIndex": start_index,
            "itemsPerPage": resources.len(),
        }),
    )
}

fn list(
    shared: &Shared,
    inner: &mut Inner,
    rt: &ResourceType,
    query: &Query,
) -> Result<Reply, ScimError> {
    let filter = query.filter.as_deref().map(|f| parse(rt, f)).transpose()?;
    let start_index = match &query.start_index {
        None => 1,
        Some(s) => s
            .trim()
            .parse::<i64>()
            .map_err(|_| {
                ScimError::invalid_value(format!("startIndex must be an integer, got {s:?}"))
            })?
            .max(1) as usize,
    };
    let count = match &query.count {
        None => shared.default_page_size,
        Some(s) => s
            .trim()
            .parse::<i64>()
            .map_err(|_| ScimError::invalid_value(format!("count must be an integer, got {s:?}")))?
            .max(0) as usize,
    }
    .min(shared.max_page_size);
    let filter_404 = inner.filter_404;
    let stale = filter.is_some() && inner.stale_filters > 0;
    if stale {
        inner.stale_filters -= 1;
    }
    let table = inner.table(rt);
    let hits: Vec<&Row> = match query.filter.as_deref().and_then(simple_user_name_eq) {
        // The query every provisioning client sends most: answer it from the index.
        Some(name) => table
            .by_user_name(&name)
            .into_iter()
            .filter(|r| !stale && filter.as_ref().is_none_or(|f| f.matches(&r.resource)))
            .collect(),
        None => table
            .iter()
            .filter(|r| !stale && filter.as_ref().is_none_or(|f| f.matches(&r.resource)))
            .collect(),
    };
    if filter.is_some() && hits.is_empty() && filter_404 {
        return Err(ScimError::not_found(format!(
            "no {} matches the filter",
            rt.name
        )));
    }
    let page = hits
        .iter()
        .skip(start_index - 1)
        .take(count)
        .map(|r| project(rt, &r.resource, query))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(list_response(hits.len(), start_index, page))
}

/// `userName eq "x"` with no escapes or other clauses: the value, else `None`.
fn simple_user_name_eq(filter: &str) -> Option<String> {
    let f = filter.trim();
    let head = f.get(..13)?;
    if !head.eq_ignore_ascii_case("userName eq \"") || !f.ends_with('"') || f.len() < 14 {
        return None;
    }
    let value = &f[13..f.len() - 1];
    (!value.contains(['"', '\\'])).then(|| value.to_string())
}

/// `POST /Users/.search` (RFC 7644 §3.4.3): the same query, carried in a body.
fn search(
    shared: &Shared,
    inner: &mut Inner,
    rt: &ResourceType,
    input: &Value,
) -> Result<Reply, ScimError> {
    let obj = input
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("a SearchRequest must be a JSON object"))?;
    let is_search = obj
        .get("schemas")
        .and_then(Value::as_array)
        .is_some_and(|s| s.iter().any(|u| u.as_str() == Some(SEARCH_REQUEST)));
    if !is_search {
        return Err(ScimError::invalid_syntax(format!(
            "a search body must have \"schemas\": [\"{SEARCH_REQUEST}\"]"
        )));
    }
    let list_of = |key: &str| -> Vec<String> {
        match obj.get(key) {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            Some(Value::String(s)) => split_list(s),
            _ => Vec::new(),
        }
    };
    let scalar = |key: &str| -> Option<String> {
        obj.get(key).map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    };
    let query = Query {
        filter: scalar("filter"),
        start_index: scalar("startIndex"),
        count: scalar("count"),
        attributes: list_of("attributes"),
        excluded: list_of("excludedAttributes"),
    };
    list(shared, inner, rt, &query)
}

/// Apply `attributes` / `excludedAttributes` (RFC 7644 §3.9) and drop never-returned
/// attributes. Unknown names are ignored rather than failing the read.
fn project(
    rt: &ResourceType,
    resource: &Map<String, Value>,
    query: &Query,
) -> Result<Value, ScimError> {
    let mut res = resource.clone();
    for def in rt
        .core
        .attrs
        .iter()
        .filter(|a| a.returned == Returned::Never)
    {
        res.remove(def.name);
    }
    let refs = |names: &[String]| -> Vec<AttrRef> {
        names.iter().filter_map(|n| resolve(rt, n).ok()).collect()
    };
    if !query.attributes.is_empty() {
        let mut out = Map::new();
        for key in ["schemas", "id"] {
            if let Some(v) = res.get(key) {
                out.insert(key.to_owned(), v.clone());
            }
        }
        for r in refs(&query.attributes) {
            copy_attr(&res, &mut out, &r);
        }
        return Ok(Value::Object(out));
    }
    for r in refs(&query.excluded) {
        remove_attr(&mut res, &r);
    }
    Ok(Value::Object(res))
}

fn copy_attr(from: &Map<String, Value>, to: &mut Map<String, Value>, r: &AttrRef) {
    let (src, dst) = match r.ext {
        Some(ext) => {
            let Some(src) = from.get(ext.id).and_then(Value::as_object) else {
                return;
            };
            let Some(dst) = to
                .entry(ext.id)
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()
            else {
                return;
            };
            (src, dst)
        }
        None => (from, to),
    };
    let Some(attr) = r.attr else {
        dst.extend(src.clone());
        return;
    };
    let Some(value) = src.get(attr.name) else {
        return;
    };
    match r.sub {
        None => {
            dst.insert(attr.name.to_owned(), value.clone());
        }
        Some(sub) => {
            let pick = |v: &Value| -> Value {
                let mut m = Map::new();
                if let Some(x) = v.get(sub.name) {
                    m.insert(sub.name.to_owned(), x.clone());
                }
                Value::Object(m)
            };
            let picked = match value {
                Value::Array(items) => Value::Array(items.iter().map(pick).collect()),
                other => {
                    let mut merged = dst
                        .get(attr.name)
                        .and_then(Value::as_object)
                        .cloned()
                        .unwrap_or_default();
                    if let Value::Object(m) = pick(other) {
                        merged.extend(m);
                    }
                    Value::Object(merged)
                }
            };
            dst.insert(attr.name.to_owned(), picked);
        }
    }
}

fn remove_attr(res: &mut Map<String, Value>, r: &AttrRef) {
    let container = match r.ext {
        Some(ext) => match r.attr {
            None => {
                res.remove(ext.id);
                return;
            }
            Some(_) => match res.get_mut(ext.id).and_then(Value::as_object_mut) {
                Some(c) => c,
                None => return,
            },
        },
        None => res,
    };
    let Some(attr) = r.attr else { return };
    if attr.returned == Returned::Always {
        return;
    }
    match r.sub {
        None => {
            container.remove(attr.name);
        }
        Some(sub) => match container.get_mut(attr.name) {
            Some(Value::Array(items)) => {
                for item in items.iter_mut().filter_map(Value::as_object_mut) {
                    item.remove(sub.name);
                }
            }
            Some(Value::Object(o)) => {
                o.remove(sub.name);
            }
            _ => {}
        },
    }
}

/// Seed a resource without HTTP (the test-facing `insert_*` helpers).
pub(crate) fn seed(
    shared: &Shared,
    rt: &ResourceType,
    mut resource: Value,
) -> Result<String, ScimError> {
    if let Some(obj) = resource.as_object_mut()
        && !obj.keys().any(|k| k.eq_ignore_ascii_case("schemas"))
    {
        obj.insert("schemas".into(), json!([rt.core.id]));
    }
    let mut inner = shared.lock();
    let row = store::create(
        rt,
        inner.table(rt),
        &shared.base_url,
        shared.rules,
        &resource,
    )?;
    Ok(row.resource["id"].as_str().unwrap_or_default().to_owned())
}
