//! A built-in SCIM 2.0 service provider (RFC 7643/7644), in memory, on loopback: the "app"
//! that end-to-end tests and `scimsync demo` provision into.
//!
//! It follows the RFCs and is at least as strict as scim2-server where that server is strict
//! (see `docs/real-scim-servers.md`), while accepting both PATCH dialects Entra sends. It is
//! deliberately written against the RFCs, not against our client.
//!
//! Behaviour worth knowing when writing tests:
//! - Every request needs `Authorization: Bearer <token>`; otherwise 401 with a SCIM error.
//!   Every request (401s and injected faults included) is recorded with its status.
//! - Injected faults ([`ScimTarget::throttle_next`], [`ScimTarget::fail_next`]) queue in call
//!   order and hit authenticated requests only.
//! - Request bodies must be `application/scim+json` or `application/json` (else 415).
//! - Unknown attributes and unknown schema URNs are rejected (400), so mapping mistakes surface.
//!   Custom extensions are registered with [`ScimTargetOptions::extra_schemas`], as
//!   scim2-server's `--schema` (e.g. [`klaxoon_group_schema`]); their attributes are then
//!   validated by type.
//! - Booleans: real JSON booleans; `"True"`/`"False"` strings are accepted and stored as
//!   booleans unless [`ScimTargetOptions::strict_booleans`].
//! - Lists default to `default_page_size` results per page (capped at `max_page_size`).
//! - PATCH of a user answers 200 with the resource; PATCH of a group answers 204 (200 with the
//!   group when `attributes`/`excludedAttributes` is given). PUT/PATCH/DELETE honour `If-Match`.
//! - Member ids are not checked (as scim2-server); deleting a user leaves it in groups.
//!   [`ScimTarget::dangling_members`] reports such references.

mod error;
mod filter;
mod patch;
mod schema;
mod service;
mod store;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use error::ScimError;
use schema::Rules;
use service::{Fault, Inner, Shared};

/// How to start a [`ScimTarget`].
#[derive(Clone)]
pub struct ScimTargetOptions {
    /// The bearer token every request must carry.
    pub token: String,
    /// Path prefix of the SCIM endpoints; default `/scim/v2`.
    pub base_path: String,
    /// Reject `"True"`/`"False"` strings for booleans (SCIMMY does); default false, since
    /// Entra's default client sends them.
    pub strict_booleans: bool,
    /// Page size when a list request has no `count`; default 100.
    pub default_page_size: usize,
    /// Largest page served whatever `count` asks; default 1000.
    pub max_page_size: usize,
    /// Extension schemas to serve besides the RFC 7643 ones, as RFC 7643 §7 schema resources
    /// (what scim2-server's `--schema FILE` lists). Attributes under a registered URN are
    /// accepted on Users or Groups — by the URN's last segment, `…:User` or `…:Group` — and
    /// validated by type; unregistered URNs stay a 400. Schemas with a built-in id are skipped,
    /// so a whole scim2-server schema file can be passed. Default none.
    pub extra_schemas: Vec<Value>,
}

impl Default for ScimTargetOptions {
    fn default() -> Self {
        ScimTargetOptions {
            token: "scimsync-test-token".into(),
            base_path: "/scim/v2".into(),
            strict_booleans: false,
            default_page_size: 100,
            max_page_size: 1000,
            extra_schemas: Vec::new(),
        }
    }
}

impl std::fmt::Debug for ScimTargetOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScimTargetOptions")
            .field("token", &"[REDACTED]")
            .field("base_path", &self.base_path)
            .field("strict_booleans", &self.strict_booleans)
            .field("default_page_size", &self.default_page_size)
            .field("max_page_size", &self.max_page_size)
            .field("extra_schemas", &self.extra_schemas.len())
            .finish()
    }
}

/// One request the target received, with the status it answered.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    pub method: String,
    /// As sent, still percent-encoded, e.g. `/scim/v2/Users?filter=userName%20eq%20%22a%22`.
    pub path_and_query: String,
    /// The body parsed as JSON (a JSON string holding the raw text if it was not JSON).
    pub body: Option<Value>,
    pub status: u16,
}

impl RecordedRequest {
    /// The path without the query string.
    pub fn path(&self) -> &str {
        self.path_and_query.split('?').next().unwrap_or_default()
    }

    /// A decoded query parameter, e.g. `query_param("filter")` → `userName eq "a"`.
    pub fn query_param(&self, name: &str) -> Option<String> {
        let query = self.path_and_query.split_once('?')?.1;
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.into_owned())
    }

    /// POST, PUT, PATCH or DELETE.
    pub fn is_write(&self) -> bool {
        matches!(self.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE")
    }
}

/// The running in-memory SCIM service provider. Dropping it stops the server.
pub struct ScimTarget {
    shared: Arc<Shared>,
    addr: SocketAddr,
    /// A copy of the token the server checks, so `token()` can lend a `&str`.
    token: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for ScimTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScimTarget")
            .field("url", &self.shared.base_url)
            .finish_non_exhaustive()
    }
}

impl ScimTarget {
    /// Bind 127.0.0.1 on a free port and serve until [`ScimTarget::shutdown`] or drop.
    /// An invalid [`ScimTargetOptions::extra_schemas`] entry is an `InvalidInput` error.
    pub async fn start(opts: ScimTargetOptions) -> std::io::Result<ScimTarget> {
        let catalog = schema::catalog(&opts.extra_schemas).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("extra_schemas: {e}"),
            )
        })?;
        let listener = tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let trimmed = opts.base_path.trim().trim_end_matches('/');
        let base_path = if trimmed.is_empty() || trimmed.starts_with('/') {
            trimmed.to_owned()
        } else {
            format!("/{trimmed}")
        };
        let shared = Arc::new(Shared {
            base_url: format!("http://{addr}{base_path}"),
            base_path,
            rules: Rules {
                strict_booleans: opts.strict_booleans,
            },
            catalog,
            default_page_size: opts.default_page_size,
            max_page_size: opts.max_page_size.max(1),
            inner: Mutex::new(Inner {
                token: opts.token.clone(),
                ..Inner::default()
            }),
        });
        let app = axum::Router::new()
            .fallback(service::handle)
            .with_state(Arc::clone(&shared));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            // The listener broke: tests will see connection errors, stderr is enough.
            if let Err(e) = serve.await {
                eprintln!("scim target: server stopped: {e}");
            }
        });
        Ok(ScimTarget {
            shared,
            addr,
            token: opts.token,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The base URL a client uses as "Tenant URL", e.g. `http://127.0.0.1:PORT/scim/v2`.
    pub fn url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// The socket the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bearer token currently required (changes with [`ScimTarget::set_token`]).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// All users, in creation order, as stored (with `id` and `meta`).
    pub fn users(&self) -> Vec<Value> {
        self.shared
            .lock()
            .users
            .iter()
            .map(|r| Value::Object(r.resource.clone()))
            .collect()
    }

    pub fn user(&self, id: &str) -> Option<Value> {
        self.shared
            .lock()
            .users
            .get(id)
            .map(|r| Value::Object(r.resource.clone()))
    }

    /// The user with this userName, compared ignoring case.
    pub fn user_by_username(&self, user_name: &str) -> Option<Value> {
        let wanted = user_name.to_lowercase();
        self.users().into_iter().find(|u| {
            u["userName"]
                .as_str()
                .is_some_and(|n| n.to_lowercase() == wanted)
        })
    }

    /// All groups, in creation order.
    pub fn groups(&self) -> Vec<Value> {
        self.shared
            .lock()
            .groups
            .iter()
            .map(|r| Value::Object(r.resource.clone()))
            .collect()
    }

    pub fn group(&self, id: &str) -> Option<Value> {
        self.shared
            .lock()
            .groups
            .get(id)
            .map(|r| Value::Object(r.resource.clone()))
    }

    /// The first group with this displayName (exact match; duplicates are allowed).
    pub fn group_by_display_name(&self, name: &str) -> Option<Value> {
        self.groups()
            .into_iter()
            .find(|g| g["displayName"].as_str() == Some(name))
    }

    /// Member ids of a group (empty if the group does not exist).
    pub fn group_member_ids(&self, group_id: &str) -> Vec<String> {
        self.group(group_id)
            .and_then(|g| g.get("members").and_then(Value::as_array).cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|m| m["value"].as_str().map(str::to_owned))
            .collect()
    }

    /// Seed a user as if a POST had created it (validation and uniqueness included); `schemas`
    /// defaults to the core User schema. Returns the new id.
    pub fn try_insert_user(&self, resource: Value) -> Result<String, ScimError> {
        service::seed(&self.shared, self.shared.catalog.user, resource)
    }

    /// [`ScimTarget::try_insert_user`] for tests.
    ///
    /// # Panics
    /// If the resource is invalid or its userName is taken.
    pub fn insert_user(&self, resource: Value) -> String {
        self.try_insert_user(resource)
            .unwrap_or_else(|e| panic!("insert_user: {e}"))
    }

    /// Seed a group as if a POST had created it. Returns the new id.
    pub fn try_insert_group(&self, resource: Value) -> Result<String, ScimError> {
        service::seed(&self.shared, self.shared.catalog.group, resource)
    }

    /// [`ScimTarget::try_insert_group`] for tests.
    ///
    /// # Panics
    /// If the resource is invalid.
    pub fn insert_group(&self, resource: Value) -> String {
        self.try_insert_group(resource)
            .unwrap_or_else(|e| panic!("insert_group: {e}"))
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.shared.lock().requests.clear();
    }

    /// Only the POST/PUT/PATCH/DELETE requests.
    pub fn writes(&self) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(RecordedRequest::is_write)
            .collect()
    }

    /// Membership changes of every successful (2xx) group PATCH, oldest first, as
    /// `(group id, added member ids, removed member ids)`; PATCHes that touch no members (a
    /// rename) are left out. Both removal shapes count: `members[value eq "id"]` paths and
    /// Entra's `{"op":"Remove","path":"members","value":[…]}`; a pathless `add` of `members`
    /// counts as added. Lets a test assert "one PATCH adding one member".
    pub fn membership_patches(&self) -> Vec<(String, Vec<String>, Vec<String>)> {
        let prefix = format!("{}/Groups/", self.shared.base_path);
        self.requests()
            .iter()
            .filter(|r| r.method == "PATCH" && (200..300).contains(&r.status))
            .filter_map(|r| {
                let raw_id = r.path().strip_prefix(&prefix)?;
                let id = percent_encoding::percent_decode_str(raw_id)
                    .decode_utf8_lossy()
                    .into_owned();
                let (added, removed) = membership_ops(r.body.as_ref()?);
                (!added.is_empty() || !removed.is_empty()).then_some((id, added, removed))
            })
            .collect()
    }

    /// The next `n` authenticated requests get 429 with `Retry-After: retry_after_secs`.
    pub fn throttle_next(&self, n: usize, retry_after_secs: u64) {
        let fault = Fault {
            status: 429,
            retry_after: Some(retry_after_secs),
        };
        self.shared
            .lock()
            .faults
            .extend(std::iter::repeat_n(fault, n));
    }

    /// The next `n` authenticated requests get `status` with a SCIM error body.
    pub fn fail_next(&self, n: usize, status: u16) {
        let fault = Fault {
            status,
            retry_after: None,
        };
        self.shared
            .lock()
            .faults
            .extend(std::iter::repeat_n(fault, n));
    }

    /// Non-compliant mode: a filtered GET that matches nothing answers 404 instead of an empty
    /// ListResponse (the behaviour Entra quarantines as a "SCIM compliance issue").
    pub fn set_filter_404(&self, on: bool) {
        self.shared.lock().filter_404 = on;
    }

    /// Rotate the token: from now on the old one gets 401.
    pub fn set_token(&mut self, token: &str) {
        token.clone_into(&mut self.token);
        self.shared.lock().token = token.to_owned();
    }

    /// The next `n` filtered list requests answer an empty ListResponse even when something
    /// matches, as a lagging replica would (then a create meets 409 on the existing account).
    pub fn stale_filter_next(&self, n: usize) {
        self.shared.lock().stale_filters += n;
    }

    /// `(group id, member id)` for every member that is neither a user nor a group here.
    pub fn dangling_members(&self) -> Vec<(String, String)> {
        let inner = self.shared.lock();
        let mut out = Vec::new();
        for g in inner.groups.iter() {
            let gid = g.resource["id"].as_str().unwrap_or_default();
            for m in g
                .resource
                .get("members")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(mid) = m["value"].as_str()
                    && !inner.users.contains(mid)
                    && !inner.groups.contains(mid)
                {
                    out.push((gid.to_owned(), mid.to_owned()));
                }
            }
        }
        out
    }

    /// Stop accepting connections and wait (up to 5 s) for in-flight requests.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }
}

/// Member ids a PatchOp body adds and removes (see [`ScimTarget::membership_patches`]).
fn membership_ops(body: &Value) -> (Vec<String>, Vec<String>) {
    let (mut added, mut removed) = (Vec::new(), Vec::new());
    let ids = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|m| m.get("value").and_then(Value::as_str).map(str::to_owned))
            .collect()
    };
    let ops = body
        .get("Operations")
        .or_else(|| body.get("operations"))
        .and_then(Value::as_array);
    for op in ops.into_iter().flatten() {
        let name = op
            .get("op")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_ascii_lowercase();
        let path = op.get("path").and_then(Value::as_str).map(str::trim);
        match (name.as_str(), path) {
            ("add", Some(p)) if p.eq_ignore_ascii_case("members") => {
                added.extend(ids(op.get("value")));
            }
            ("add", None) => {
                let members = op.get("value").and_then(Value::as_object).and_then(|o| {
                    o.iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case("members"))
                        .map(|(_, v)| v)
                });
                added.extend(ids(members));
            }
            ("remove", Some(p)) if p.eq_ignore_ascii_case("members") => {
                removed.extend(ids(op.get("value")));
            }
            ("remove", Some(p)) => removed.extend(member_filter_id(p)),
            _ => {}
        }
    }
    (added, removed)
}

/// `"u1"` from `members[value eq "u1"]` (any case, `\"`/`\\` escapes honoured).
fn member_filter_id(path: &str) -> Option<String> {
    let inner = path
        .get(..8)
        .filter(|p| p.eq_ignore_ascii_case("members["))
        .and_then(|_| path[8..].strip_suffix(']'))?
        .trim();
    let (attr, rest) = inner.split_once(char::is_whitespace)?;
    let (op, literal) = rest.trim_start().split_once(char::is_whitespace)?;
    if !attr.eq_ignore_ascii_case("value") || !op.eq_ignore_ascii_case("eq") {
        return None;
    }
    serde_json::from_str::<String>(literal.trim()).ok()
}

/// The Klaxoon group extension (RFC 7643 §7 schema resource) for
/// [`ScimTargetOptions::extra_schemas`]: `urn:ietf:params:scim:schemas:extension:klaxoon:2.0:Group`
/// with one attribute, `license`.
///
/// `license` is a **string** (`"true"`/`"false"`): the Klaxoon tutorial lists it as type
/// String in Entra's attribute table, so Entra sends the text; scim2-server, given this schema,
/// rejects a JSON boolean. The same schema, with scim2-server's defaults, is in
/// `tests/fixtures/klaxoon-schema.json` (pass it with
/// `--resource-type tests/fixtures/klaxoon-resource-types.json`).
pub fn klaxoon_group_schema() -> Value {
    serde_json::json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
        "id": "urn:ietf:params:scim:schemas:extension:klaxoon:2.0:Group",
        "name": "KlaxoonGroup",
        "description": "Klaxoon group extension: license grants Klaxoon PRO to the group's members",
        "attributes": [{
            "name": "license",
            "type": "string",
            "multiValued": false,
            "description": "\"true\" (or absent) gives the group's members a Klaxoon PRO license; \"false\" does not.",
            "required": false,
            "caseExact": false,
            "mutability": "readWrite",
            "returned": "default",
            "uniqueness": "none"
        }]
    })
}

impl Drop for ScimTarget {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
