//! `GET /v1.0/users/delta` (and `/users/microsoft.graph.delta`) with real rounds and deltaLinks.
//!
//! Rules followed from the wire contract §3 and §10:
//! - Query options go on the first call only and live inside the opaque tokens; later links
//!   carry only `$skiptoken` / `$deltatoken`. `$select` (including `manager`) and `$filter=id eq
//!   '…' or …` (at most 50) are supported; `$top`, `$orderby`, `$expand` are 400.
//! - Every page has exactly one of nextLink or deltaLink; a no-change round still gets a new
//!   deltaLink; `$deltatoken=latest` answers a deltaLink and no data.
//! - Objects carry `id` plus the selected properties that have a value; never-set properties are
//!   omitted and cleared ones are `null`. Only changes to selected properties (the default set
//!   without `$select`) make a user appear.
//! - Soft delete → `@removed: {"reason": "changed"}`, hard delete → `"deleted"`, restore → a
//!   normal object; disabling is an ordinary property change.
//! - Quirks (on by default, see `GraphEmulator::set_delta_quirks`): the last object of each full
//!   page is replayed at the top of the next page, and a round ends with an empty page that
//!   carries the deltaLink, so engines that assume tidy rounds fail in tests.
//! - Tokens expire after 7 days or on `expire_delta_tokens` → 400 `syncStateNotFound`;
//!   `reset_delta_next` → 410 Gone with a `Location` that restarts the round.

use std::ops::Bound;

use axum::http::StatusCode;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::handlers::HResult;
use super::model::UserRec;
use super::query::{Filter, QueryOptions, decode_token, encode_token};
use super::schema::{Select, USER};
use super::server::{Ctx, GraphError, Inner};

pub(crate) const TOKEN_DAYS: i64 = 7;

/// What a round tracks; carried inside every delta token.
#[derive(Clone, Serialize, Deserialize)]
struct Tracking {
    /// `None` = default property set.
    s: Option<Vec<String>>,
    /// `$filter=id eq …` ids.
    f: Option<Vec<String>>,
    /// `manager` selected.
    m: bool,
}

#[derive(Serialize, Deserialize)]
struct DeltaToken {
    t: Tracking,
    /// Changes up to this sequence number have been delivered.
    w: u64,
    /// Delta epoch.
    e: u64,
    /// Issued at (unix seconds).
    i: i64,
    /// Nonce: every round gets a different deltaLink, even with no changes.
    n: String,
}

#[derive(Serialize, Deserialize)]
struct SkipToken {
    t: Tracking,
    lo: u64,
    hi: u64,
    /// Last id served.
    a: Option<String>,
    /// The next page is the empty closing page.
    fin: bool,
    e: u64,
    /// Whether this is the initial round (context carries the select list).
    init: bool,
}

pub(crate) fn sync_state_not_found() -> GraphError {
    GraphError::new(
        StatusCode::BAD_REQUEST,
        "syncStateNotFound",
        "The sync state generation is not found. The delta token is expired and data must be synchronized again.",
    )
}

pub(crate) fn bad_token() -> GraphError {
    GraphError::bad_request("The delta or skip token is malformed.")
}

/// Handles one `/users/delta` request.
pub(crate) fn users_delta(inner: &mut Inner, ctx: &Ctx, q: &QueryOptions) -> HResult {
    if let Some(opt) = q.unsupported(&["$select", "$filter", "$deltatoken", "$skiptoken"]) {
        return Err(GraphError::unsupported(format!(
            "Query option '{opt}' is not supported with delta."
        )));
    }
    let epoch = inner.delta_epoch;
    let now_seq = inner.dir.seq;

    if let Some(raw) = q.get("$skiptoken") {
        let tok: SkipToken = decode_token(raw).ok_or_else(bad_token)?;
        if tok.e != epoch {
            return Err(sync_state_not_found());
        }
        return Ok(page(inner, ctx, tok));
    }
    if let Some(raw) = q.get("$deltatoken") {
        if raw == "latest" {
            let t = tracking(q)?;
            return Ok(delta_link_page(ctx, &t, now_seq, epoch, Vec::new(), true));
        }
        let tok: DeltaToken = decode_token(raw).ok_or_else(bad_token)?;
        if tok.e != epoch || Utc::now().timestamp() - tok.i > TOKEN_DAYS * 86_400 {
            return Err(sync_state_not_found());
        }
        if inner.delta_reset_next {
            inner.delta_reset_next = false;
            let mut e = GraphError::new(
                StatusCode::GONE,
                "resyncRequired",
                "The delta token is no longer valid, and the app must reset the sync state.",
            );
            e.headers = vec![("location", initial_url(ctx, &tok.t))];
            return Err(e);
        }
        let next = SkipToken {
            t: tok.t,
            lo: tok.w,
            hi: now_seq,
            a: None,
            fin: false,
            e: epoch,
            init: false,
        };
        return Ok(page(inner, ctx, next));
    }
    let t = tracking(q)?;
    Ok(page(
        inner,
        ctx,
        SkipToken {
            t,
            lo: 0,
            hi: now_seq,
            a: None,
            fin: false,
            e: epoch,
            init: true,
        },
    ))
}

/// The round's tracking options from the first request's `$select` / `$filter`.
fn tracking(q: &QueryOptions) -> Result<Tracking, GraphError> {
    let mut manager = false;
    let s = match q.get("$select").map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(raw) => {
            let rest: Vec<&str> = raw
                .split(',')
                .map(str::trim)
                .filter(|n| {
                    let is_mgr = n.eq_ignore_ascii_case("manager");
                    manager |= is_mgr;
                    !is_mgr
                })
                .collect();
            match Select::parse(Some(&rest.join(",")), &USER)
                .map_err(|n| GraphError::unknown_property(&n, USER.type_name))?
            {
                Select::Props(p) => Some(p),
                Select::Default => Some(vec!["id".into()]),
            }
        }
    };
    let f = match q.get("$filter") {
        None => None,
        Some(raw) => {
            let ids = Filter::parse(raw)
                .ok()
                .and_then(|f| f.id_list())
                .ok_or_else(|| {
                    GraphError::unsupported(
                        "Unsupported Query. Delta supports only 'id eq' filters joined by 'or'.",
                    )
                })?;
            if ids.len() > 50 {
                return Err(GraphError::unsupported(
                    "At most 50 'id eq' terms are supported with delta.",
                ));
            }
            Some(ids)
        }
    };
    Ok(Tracking { s, f, m: manager })
}

fn initial_url(ctx: &Ctx, t: &Tracking) -> String {
    let mut parts = Vec::new();
    let mut sel: Vec<String> = t.s.clone().unwrap_or_default();
    if t.m {
        sel.push("manager".into());
    }
    if !sel.is_empty() {
        parts.push(format!("$select={}", sel.join(",")));
    }
    if let Some(ids) = &t.f {
        let f: Vec<String> = ids.iter().map(|i| format!("id eq '{i}'")).collect();
        parts.push(format!(
            "$filter={}",
            percent_encoding::utf8_percent_encode(
                &f.join(" or "),
                percent_encoding::NON_ALPHANUMERIC
            )
        ));
    }
    if parts.is_empty() {
        format!("{}/users/delta", ctx.root())
    } else {
        format!("{}/users/delta?{}", ctx.root(), parts.join("&"))
    }
}

fn context(ctx: &Ctx, t: &Tracking, init: bool) -> String {
    match (&t.s, init) {
        (Some(s), true) => format!("{}/$metadata#users({})", ctx.root(), s.join(",")),
        _ => format!("{}/$metadata#users", ctx.root()),
    }
}

fn delta_link_page(
    ctx: &Ctx,
    t: &Tracking,
    w: u64,
    e: u64,
    value: Vec<Value>,
    init: bool,
) -> axum::response::Response {
    let token = encode_token(&DeltaToken {
        t: t.clone(),
        w,
        e,
        i: Utc::now().timestamp(),
        n: uuid::Uuid::new_v4().simple().to_string()[..8].to_string(),
    });
    let mut body = Map::new();
    body.insert("@odata.context".into(), json!(context(ctx, t, init)));
    body.insert(
        "@odata.deltaLink".into(),
        json!(format!("{}/users/delta?$deltatoken={token}", ctx.root())),
    );
    body.insert("value".into(), Value::Array(value));
    ctx.ok(Value::Object(body))
}

/// Two id-ordered sequences as one, each id once.
fn merged<'a>(
    a: impl Iterator<Item = &'a String>,
    b: impl Iterator<Item = &'a String>,
) -> impl Iterator<Item = &'a String> {
    let (mut a, mut b) = (a.peekable(), b.peekable());
    std::iter::from_fn(move || match (a.peek(), b.peek()) {
        (Some(x), Some(y)) if x < y => a.next(),
        (Some(x), Some(y)) if y < x => b.next(),
        (Some(_), Some(_)) => {
            b.next();
            a.next()
        }
        (Some(_), None) => a.next(),
        (None, _) => b.next(),
    })
}

/// Renders the delta form of a changed user, or `None` if nothing it tracks changed after `lo`.
fn delta_user(id: &str, u: &UserRec, t: &Tracking, lo: u64) -> Option<Value> {
    // `seq` is the last change of anything about the user (every other `*_seq` is at most it).
    if lo > 0 && u.seq <= lo {
        return None;
    }
    if u.deleted.is_some() {
        return (lo == 0 || u.state_seq > lo).then(|| removed(id, "changed"));
    }
    let names: Vec<&str> = match &t.s {
        None => USER.defaults.to_vec(),
        Some(s) => s.iter().map(String::as_str).collect(),
    };
    let props_changed = names
        .iter()
        .any(|n| u.prop_seq.get(*n).is_some_and(|s| *s > lo));
    let changed = lo == 0
        || u.created_seq > lo
        || u.state_seq > lo
        || props_changed
        || (t.m && u.manager_seq > lo);
    if !changed {
        return None;
    }
    let mut obj = Map::new();
    for n in names {
        if n == "id" {
            continue;
        }
        if let Some(v) = u.props.get(n) {
            obj.insert(n.to_string(), v.clone());
        }
    }
    obj.insert("id".into(), json!(id));
    if t.m {
        let mut links = Vec::new();
        if lo > 0
            && u.manager_seq > lo
            && let Some(prev) = u.manager_prev.as_deref()
            && u.manager.as_deref() != Some(prev)
        {
            links.push(json!({"@odata.type": "#microsoft.graph.user", "id": prev, "@removed": {"reason": "deleted"}}));
        }
        if let Some(m) = u.manager.as_deref() {
            links.push(json!({"@odata.type": "#microsoft.graph.user", "id": m}));
        }
        if !links.is_empty() {
            obj.insert("manager@delta".into(), Value::Array(links));
        }
    }
    Some(Value::Object(obj))
}

fn removed(id: &str, reason: &str) -> Value {
    json!({"id": id, "@removed": {"reason": reason}})
}

fn page(inner: &mut Inner, ctx: &Ctx, tok: SkipToken) -> axum::response::Response {
    if tok.fin {
        return delta_link_page(ctx, &tok.t, tok.hi, tok.e, Vec::new(), tok.init);
    }
    let d = &inner.dir;
    let size = inner.delta_page_size;
    let quirks = inner.delta_quirks;

    // Users and hard-delete tombstones merged in id order, from just after the last id served
    // (both maps are id-ordered: a page does not sort or walk the ids before it).
    let start = tok.a.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
    let ids = merged(
        d.users
            .range::<str, _>((start, Bound::Unbounded))
            .map(|(k, _)| k),
        d.user_tombstones
            .range::<str, _>((start, Bound::Unbounded))
            .map(|(k, _)| k),
    );
    let mut emitted: Vec<(String, Value)> = Vec::new();
    let mut exhausted = true;
    for id in ids {
        if tok
            .t
            .f
            .as_ref()
            .is_some_and(|f| !f.iter().any(|x| x.eq_ignore_ascii_case(id)))
        {
            continue;
        }
        let entry = match d.users.get(id) {
            Some(u) => delta_user(id, u, &tok.t, tok.lo),
            None => d
                .user_tombstones
                .get(id)
                .filter(|s| **s > tok.lo)
                .map(|_| removed(id, "deleted")),
        };
        if let Some(v) = entry {
            if emitted.len() == size {
                exhausted = false;
                break;
            }
            emitted.push((id.clone(), v));
        }
    }
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        json!(context(ctx, &tok.t, tok.init)),
    );
    let next = |a: Option<String>, fin: bool| {
        let t = encode_token(&SkipToken {
            t: tok.t.clone(),
            lo: tok.lo,
            hi: tok.hi,
            a,
            fin,
            e: tok.e,
            init: tok.init,
        });
        json!(format!("{}/users/delta?$skiptoken={t}", ctx.root()))
    };
    if !exhausted {
        // Replaying the last object on the next page mimics Graph's duplicates within a round.
        let resume = if quirks && emitted.len() >= 2 {
            emitted[emitted.len() - 2].0.clone()
        } else {
            emitted[emitted.len() - 1].0.clone()
        };
        body.insert("@odata.nextLink".into(), next(Some(resume), false));
    } else if quirks && !emitted.is_empty() {
        body.insert("@odata.nextLink".into(), next(None, true));
    } else {
        let values = emitted.into_iter().map(|(_, v)| v).collect();
        return delta_link_page(ctx, &tok.t, tok.hi, tok.e, values, tok.init);
    }
    body.insert(
        "value".into(),
        Value::Array(emitted.into_iter().map(|(_, v)| v).collect()),
    );
    ctx.ok(Value::Object(body))
}
