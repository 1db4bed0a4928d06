//! `GET /v1.0/groups/delta` (and `/groups/microsoft.graph.delta`) with `members@delta`.
//!
//! Same round structure, tokens, expiry (400 `syncStateNotFound`), forced reset (410 + Location)
//! and quirks as `/users/delta`, plus what groups add (wire contract §3.2, §3.4):
//! - Membership is tracked when there is no `$select` or when it names `members`. On a group's
//!   first appearance in a round `members@delta` lists every direct member; later rounds list
//!   only members added (plain) and removed (`"@removed": {"reason": "deleted"}`). A group with
//!   nothing to list has no `members@delta` key at all.
//! - Large memberships come in chunks (`set_group_member_chunk`, default 100): the **same group
//!   object appears again** later in the round, with the same properties and the next chunk.
//!   Chunks are served first-chunks-of-all-groups, then second chunks, …, so a group's chunks
//!   are not adjacent and the client must merge.
//! - Soft-deleted users stay members (no removal until the hard delete).
//! - Security groups are never soft-deleted: a deleted group is `@removed` with reason `deleted`.
//! - Only changes to selected properties (or to membership, when tracked) make a group appear.

use axum::http::StatusCode;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::delta::{TOKEN_DAYS, bad_token, sync_state_not_found};
use super::handlers::HResult;
use super::model::{Directory, GroupRec};
use super::query::{Filter, QueryOptions, decode_token, encode_token};
use super::schema::{GROUP, Select};
use super::server::{Ctx, GraphError, Inner};

#[derive(Clone, Serialize, Deserialize)]
struct Tracking {
    /// `None` = default property set.
    s: Option<Vec<String>>,
    f: Option<Vec<String>>,
    /// `members@delta` tracked.
    m: bool,
}

#[derive(Serialize, Deserialize)]
struct DeltaToken {
    t: Tracking,
    w: u64,
    e: u64,
    i: i64,
    n: String,
    /// Marks the token as a groups token.
    g: bool,
}

#[derive(Serialize, Deserialize)]
struct SkipToken {
    t: Tracking,
    lo: u64,
    hi: u64,
    /// Last entry served: (chunk index, group id).
    a: Option<(usize, String)>,
    fin: bool,
    e: u64,
    init: bool,
    g: bool,
}

/// Handles one `/groups/delta` request.
pub(crate) fn groups_delta(inner: &mut Inner, ctx: &Ctx, q: &QueryOptions) -> HResult {
    if let Some(opt) = q.unsupported(&["$select", "$filter", "$deltatoken", "$skiptoken"]) {
        return Err(GraphError::unsupported(format!(
            "Query option '{opt}' is not supported with delta."
        )));
    }
    let epoch = inner.delta_epoch;
    let now_seq = inner.dir.seq;
    if let Some(raw) = q.get("$skiptoken") {
        let tok: SkipToken = decode_token(raw)
            .filter(|t: &SkipToken| t.g)
            .ok_or_else(bad_token)?;
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
        let tok: DeltaToken = decode_token(raw)
            .filter(|t: &DeltaToken| t.g)
            .ok_or_else(bad_token)?;
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
            g: true,
        };
        return Ok(page(inner, ctx, next));
    }
    let t = tracking(q)?;
    let first = SkipToken {
        t,
        lo: 0,
        hi: now_seq,
        a: None,
        fin: false,
        e: epoch,
        init: true,
        g: true,
    };
    Ok(page(inner, ctx, first))
}

fn tracking(q: &QueryOptions) -> Result<Tracking, GraphError> {
    let (s, m) = match q.get("$select").map(str::trim).filter(|s| !s.is_empty()) {
        // v1.0 returns members@delta by default when there is no $select.
        None => (None, true),
        Some(raw) => {
            let mut members = false;
            let rest: Vec<&str> = raw
                .split(',')
                .map(str::trim)
                .filter(|n| {
                    let is_members = n.eq_ignore_ascii_case("members");
                    members |= is_members;
                    !is_members
                })
                .collect();
            let props = match Select::parse(Some(&rest.join(",")), &GROUP)
                .map_err(|n| GraphError::unknown_property(&n, GROUP.type_name))?
            {
                Select::Props(p) => p,
                Select::Default => vec!["id".into()],
            };
            (Some(props), members)
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
    Ok(Tracking { s, f, m })
}

fn initial_url(ctx: &Ctx, t: &Tracking) -> String {
    let mut sel: Vec<String> = t.s.clone().unwrap_or_default();
    if t.m && t.s.is_some() {
        sel.push("members".into());
    }
    let mut parts = Vec::new();
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
        format!("{}/groups/delta", ctx.root())
    } else {
        format!("{}/groups/delta?{}", ctx.root(), parts.join("&"))
    }
}

fn context(ctx: &Ctx, t: &Tracking, init: bool) -> String {
    match (&t.s, init) {
        (Some(s), true) => format!("{}/$metadata#groups({})", ctx.root(), s.join(",")),
        _ => format!("{}/$metadata#groups", ctx.root()),
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
        g: true,
    });
    let mut body = Map::new();
    body.insert("@odata.context".into(), json!(context(ctx, t, init)));
    body.insert(
        "@odata.deltaLink".into(),
        json!(format!("{}/groups/delta?$deltatoken={token}", ctx.root())),
    );
    body.insert("value".into(), Value::Array(value));
    ctx.ok(Value::Object(body))
}

/// The `members@delta` links of a changed group, in chunks (at least one, maybe empty).
fn member_links(
    d: &Directory,
    g: &GroupRec,
    lo: u64,
    whole: bool,
    chunk: usize,
) -> Vec<Vec<Value>> {
    let mut links: Vec<Value> = Vec::new();
    for m in &g.members {
        if whole || g.member_seq.get(m).is_some_and(|s| *s > lo) {
            links.push(json!({"@odata.type": d.odata_type(m), "id": m}));
        }
    }
    if !whole {
        let mut removed: Vec<(&String, &(u64, &str))> = g
            .removed_members
            .iter()
            .filter(|(_, (s, _))| *s > lo)
            .collect();
        removed.sort();
        for (id, (_, kind)) in removed {
            links.push(json!({"@odata.type": kind, "id": id, "@removed": {"reason": "deleted"}}));
        }
    }
    if links.is_empty() {
        return vec![Vec::new()];
    }
    links.chunks(chunk.max(1)).map(<[Value]>::to_vec).collect()
}

/// The entries a group contributes to a round: one object per members chunk.
fn delta_group(
    d: &Directory,
    id: &str,
    g: &GroupRec,
    t: &Tracking,
    lo: u64,
    chunk: usize,
) -> Vec<Value> {
    let names: Vec<&str> = match &t.s {
        None => GROUP.defaults.to_vec(),
        Some(s) => s.iter().map(String::as_str).collect(),
    };
    let fresh = lo == 0 || g.created_seq > lo;
    let props_changed = names
        .iter()
        .any(|n| g.prop_seq.get(*n).is_some_and(|s| *s > lo));
    let members_changed = t.m
        && (g.member_seq.values().any(|s| *s > lo)
            || g.removed_members.values().any(|(s, _)| *s > lo));
    if !(fresh || props_changed || members_changed) {
        return Vec::new();
    }
    let mut base = Map::new();
    for n in names {
        if n == "id" {
            continue;
        }
        if let Some(v) = g.props.get(n) {
            base.insert(n.to_string(), v.clone());
        }
    }
    base.insert("id".into(), json!(id));
    if !t.m {
        return vec![Value::Object(base)];
    }
    member_links(d, g, lo, fresh, chunk)
        .into_iter()
        .map(|links| {
            let mut obj = base.clone();
            if !links.is_empty() {
                obj.insert("members@delta".into(), Value::Array(links));
            }
            Value::Object(obj)
        })
        .collect()
}

fn page(inner: &mut Inner, ctx: &Ctx, tok: SkipToken) -> axum::response::Response {
    if tok.fin {
        return delta_link_page(ctx, &tok.t, tok.hi, tok.e, Vec::new(), tok.init);
    }
    let d = &inner.dir;
    let size = inner.delta_page_size;
    let quirks = inner.delta_quirks;
    let chunk = inner.group_member_chunk;

    let wanted = |id: &str| {
        tok.t
            .f
            .as_ref()
            .is_none_or(|f| f.iter().any(|x| x.eq_ignore_ascii_case(id)))
    };
    // Every entry of the round, keyed (chunk index, group id): first chunks of all groups,
    // then second chunks, … so one group's chunks are spread over the round.
    let mut entries: Vec<((usize, String), Value)> = Vec::new();
    for (id, g) in &d.groups {
        if !wanted(id) {
            continue;
        }
        for (i, v) in delta_group(d, id, g, &tok.t, tok.lo, chunk)
            .into_iter()
            .enumerate()
        {
            entries.push(((i, id.clone()), v));
        }
    }
    for (id, seq) in &d.group_tombstones {
        if *seq > tok.lo && wanted(id) && !d.groups.contains_key(id) {
            entries.push((
                (0, id.clone()),
                json!({"id": id, "@removed": {"reason": "deleted"}}),
            ));
        }
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));

    let mut emitted: Vec<((usize, String), Value)> = Vec::new();
    let mut exhausted = true;
    for (key, v) in entries {
        if tok.a.as_ref().is_some_and(|a| key <= *a) {
            continue;
        }
        if emitted.len() == size {
            exhausted = false;
            break;
        }
        emitted.push((key, v));
    }
    let next = |a: Option<(usize, String)>, fin: bool| {
        let t = encode_token(&SkipToken {
            t: tok.t.clone(),
            lo: tok.lo,
            hi: tok.hi,
            a,
            fin,
            e: tok.e,
            init: tok.init,
            g: true,
        });
        json!(format!("{}/groups/delta?$skiptoken={t}", ctx.root()))
    };
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        json!(context(ctx, &tok.t, tok.init)),
    );
    if !exhausted {
        // Replay the last entry on the next page, as Graph's duplicates within a round do.
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
