//! Graph v1.0 read endpoints: users, groups, members, app role assignments, deleted items,
//! service principals and organization. Each handler answers a full page with the list shape
//! of the wire contract: `@odata.context`, optional `@odata.count`, `@odata.nextLink` only while
//! more data remains, then `value`.
//!
//! Emulator choices where Graph's behaviour is unconfirmed:
//! - `$select` without `id` does not add `id` (engines must select it).
//! - Soft-deleted users are hidden from `/groups/{id}/members` and from `appRoleAssignedTo`,
//!   but keep both (they come back on restore).
//! - Lists are ordered by object id (assignment id for `appRoleAssignedTo`), which is stable under
//!   concurrent changes and looks unordered to a client; `$orderby` and `$search` are rejected.

use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::{Map, Value, json};
use std::ops::Bound;

use super::model::{AssignmentRec, Directory, UserRec};
use super::query::{Filter, PageToken, QueryOptions, decode_token, encode_token, next_link};
use super::schema::{self, APP_ROLE_ASSIGNMENT, GROUP, Schema, Select, USER};
use super::server::{Ctx, GraphError, Inner};

pub(crate) type HResult = Result<Response, GraphError>;

/// Routes a `/v1.0/...` request.
pub(crate) fn dispatch(
    inner: &mut Inner,
    ctx: &Ctx,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Response {
    match route(inner, ctx, method, uri, headers) {
        Ok(r) => r,
        Err(e) => ctx.error(e),
    }
}

fn route(inner: &mut Inner, ctx: &Ctx, method: &Method, uri: &Uri, headers: &HeaderMap) -> HResult {
    let path = uri.path().strip_prefix("/v1.0").unwrap_or(uri.path());
    let segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let q = QueryOptions::parse(uri.query()).map_err(GraphError::bad_request)?;
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();

    if method != Method::GET {
        return Err(GraphError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "Request_BadRequest",
            "Specified HTTP method is not allowed for the request target.",
        ));
    }
    let eventual = headers
        .get("consistencylevel")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("eventual"));
    if let Some(refused) = inner.access.refuse(&segs) {
        return Err(refused);
    }
    let d = &inner.dir;
    let epoch = inner.page_epoch;
    match segs.as_slice() {
        [] => Err(GraphError::bad_request(
            "Invalid request: no resource segment.",
        )),
        ["users"] => list_users(d, ctx, &q, eventual, epoch),
        ["users", "$count"] => {
            if !eventual {
                return Err(GraphError::bad_request(
                    "$count is not currently supported.",
                ));
            }
            Ok(ctx.ok_text(
                d.users
                    .values()
                    .filter(|u| u.deleted.is_none())
                    .count()
                    .to_string(),
            ))
        }
        ["users", "delta" | "microsoft.graph.delta"] => super::delta::users_delta(inner, ctx, &q),
        ["users", key] => get_user(d, ctx, key, &q),
        ["users", key, "manager"] => get_manager(d, ctx, key, &q),
        ["users", key, "memberOf"] => member_of(d, ctx, key, &q, epoch),
        ["groups"] => list_groups(d, ctx, &q, eventual, epoch),
        ["groups", "delta" | "microsoft.graph.delta"] => {
            super::group_delta::groups_delta(inner, ctx, &q)
        }
        ["groups", id] => get_group(d, ctx, id, &q),
        ["groups", id, "members"] => list_members(d, ctx, id, &q, epoch),
        ["servicePrincipals"] => list_service_principals(d, ctx, &q),
        ["servicePrincipals", id] => get_service_principal(d, ctx, id, &q),
        [alt] if alt.starts_with("servicePrincipals(appId=") => {
            let app_id = alt
                .trim_start_matches("servicePrincipals(appId=")
                .trim_end_matches(')')
                .trim_matches('\'');
            if app_id.eq_ignore_ascii_case(&d.app.app_id) {
                get_service_principal(d, ctx, &d.app.service_principal_id.clone(), &q)
            } else {
                Err(GraphError::not_found(app_id))
            }
        }
        ["servicePrincipals", id, "appRoleAssignedTo"] => {
            app_role_assigned_to(d, ctx, id, &q, epoch)
        }
        ["directory", "deletedItems"] => Err(GraphError::bad_request(
            "Unsupported query: a type cast such as 'microsoft.graph.user' is required on deletedItems.",
        )),
        ["directory", "deletedItems", "microsoft.graph.user"] => {
            list_deleted_users(d, ctx, &q, epoch)
        }
        ["directory", "deletedItems", id] => get_deleted_user(d, ctx, id, &q),
        ["organization"] => Ok(organization(d, ctx)),
        ["me", ..] => Err(GraphError::new(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "/me request is only valid with delegated authentication flow.",
        )),
        other => {
            let known = [
                "users",
                "groups",
                "servicePrincipals",
                "directory",
                "organization",
            ];
            let bad = other
                .iter()
                .enumerate()
                .find(|(i, s)| *i == 0 && !known.contains(s))
                .map_or_else(|| other[other.len() - 1], |(_, s)| s);
            Err(GraphError::new(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                format!("Resource not found for the segment '{bad}'."),
            ))
        }
    }
}

// ---- shared helpers ---------------------------------------------------------------------------

fn check_options(q: &QueryOptions, allowed: &[&str]) -> Result<(), GraphError> {
    match q.unsupported(allowed) {
        Some(opt) => Err(GraphError::unsupported(format!(
            "Query option '{opt}' is not supported by the emulator for this resource."
        ))),
        None => Ok(()),
    }
}

fn parse_select(q: &QueryOptions, schema: &Schema) -> Result<Select, GraphError> {
    Select::parse(q.get("$select"), schema)
        .map_err(|name| GraphError::unknown_property(&name, schema.type_name))
}

fn parse_filter(q: &QueryOptions, schema: &Schema) -> Result<Option<Filter>, GraphError> {
    let Some(raw) = q.get("$filter") else {
        return Ok(None);
    };
    let f = Filter::parse(raw).map_err(|_| GraphError::unsupported("Unsupported Query."))?;
    let canon = |p: &str| {
        schema
            .canonical(p)
            .filter(|c| schema.kind(c) == schema::Kind::Scalar && c != "deletedDateTime")
    };
    let f = f
        .resolve(&canon)
        .map_err(|p| GraphError::unknown_property(&p, schema.type_name))?;
    Ok(Some(f))
}

/// Where the previous page of `collection` stopped, from `$skiptoken`.
fn resume_after(
    q: &QueryOptions,
    collection: &str,
    epoch: u64,
) -> Result<Option<String>, GraphError> {
    let Some(raw) = q.get("$skiptoken") else {
        return Ok(None);
    };
    let tok: PageToken = decode_token(raw)
        .filter(|t: &PageToken| t.c == collection)
        .ok_or_else(|| GraphError::bad_request("The specified page token value is not valid."))?;
    if tok.e != epoch {
        return Err(GraphError::new(
            StatusCode::BAD_REQUEST,
            "Directory_ExpiredPageToken",
            "The specified page token value has expired and can no longer be included in your request.",
        ));
    }
    Ok(Some(tok.k))
}

/// Paging over `(key, item)` pairs already in key order.
struct Page<T> {
    items: Vec<T>,
    /// Key of the last item, when more remain.
    more_after: Option<String>,
    total: usize,
}

fn paginate<T>(all: Vec<(String, T)>, after: Option<&str>, top: usize) -> Page<T> {
    let total = all.len();
    let mut rest = all
        .into_iter()
        .skip_while(|(k, _)| after.is_some_and(|a| k.as_str() <= a))
        .peekable();
    let mut items = Vec::new();
    let mut last = None;
    while items.len() < top {
        match rest.next() {
            Some((k, v)) => {
                last = Some(k);
                items.push(v);
            }
            None => break,
        }
    }
    let more_after = if rest.peek().is_some() { last } else { None };
    Page {
        items,
        more_after,
        total,
    }
}

/// The list response body, keys in Graph's order.
#[allow(clippy::too_many_arguments)]
fn list_body(
    ctx: &Ctx,
    context: String,
    q: &QueryOptions,
    eventual: bool,
    path: &str,
    collection: &str,
    epoch: u64,
    page: Page<Value>,
) -> Response {
    let mut body = Map::new();
    body.insert("@odata.context".into(), json!(context));
    let first_page = q.get("$skiptoken").is_none();
    if eventual
        && first_page
        && q.get("$count")
            .is_some_and(|c| c.eq_ignore_ascii_case("true"))
    {
        body.insert("@odata.count".into(), json!(page.total));
    }
    if let Some(k) = page.more_after {
        let token = encode_token(&PageToken {
            c: collection.to_string(),
            k,
            e: epoch,
        });
        body.insert(
            "@odata.nextLink".into(),
            json!(next_link(&format!("{}{path}", ctx.root()), q, &token)),
        );
    }
    body.insert("value".into(), Value::Array(page.items));
    ctx.ok(Value::Object(body))
}

// ---- users ------------------------------------------------------------------------------------

/// Property lookup for a user; `deleted_view` shows the id-prefixed UPN of deleted items.
pub(crate) fn user_lookup<'a>(
    id: &'a str,
    rec: &'a UserRec,
    deleted_view: bool,
) -> impl Fn(&str) -> Option<Value> + 'a {
    move |name| match name {
        "id" => Some(json!(id)),
        "deletedDateTime" => rec.deleted.map(|t| json!(super::model::iso(t))),
        "userPrincipalName" if deleted_view => Some(json!(Directory::deleted_upn(id, rec.upn()))),
        _ => rec.props.get(name).cloned(),
    }
}

/// `$expand=manager` or `$expand=manager($select=a,b)`: the manager's select, if asked.
fn parse_expand(q: &QueryOptions) -> Result<Option<Select>, GraphError> {
    let Some(raw) = q.get("$expand") else {
        return Ok(None);
    };
    let raw = raw.trim();
    let (nav, inner) = match raw.split_once('(') {
        Some((nav, rest)) => (nav.trim(), Some(rest.trim_end_matches(')'))),
        None => (raw, None),
    };
    if !nav.eq_ignore_ascii_case("manager") {
        return Err(GraphError::new(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            format!(
                "Expand is not supported by the emulator for property '{nav}'; only 'manager' is."
            ),
        ));
    }
    let sel = match inner {
        None => Select::Default,
        Some(opts) => {
            let sel = opts
                .split(';')
                .find_map(|o| o.trim().strip_prefix("$select="))
                .map(str::to_string);
            Select::parse(sel.as_deref(), &USER)
                .map_err(|n| GraphError::unknown_property(&n, USER.type_name))?
        }
    };
    Ok(Some(sel))
}

fn render_user(
    d: &Directory,
    id: &str,
    rec: &UserRec,
    sel: &Select,
    expand: Option<&Select>,
) -> Value {
    let mut obj = schema::render(&USER, sel, user_lookup(id, rec, false));
    if let Some(msel) = expand
        && let Some(mid) = rec.manager.as_deref()
        && let Some(m) = d.users.get(mid).filter(|m| m.deleted.is_none())
    {
        // A user without a manager has no `manager` key at all (the contract's chosen form).
        let mut mobj = Map::new();
        mobj.insert("@odata.type".into(), json!("#microsoft.graph.user"));
        mobj.extend(schema::render(&USER, msel, user_lookup(mid, m, false)));
        obj.insert("manager".into(), Value::Object(mobj));
    }
    Value::Object(obj)
}

fn list_users(d: &Directory, ctx: &Ctx, q: &QueryOptions, eventual: bool, epoch: u64) -> HResult {
    check_options(
        q,
        &[
            "$select",
            "$top",
            "$filter",
            "$count",
            "$skiptoken",
            "$expand",
        ],
    )?;
    let sel = parse_select(q, &USER)?;
    let top = q.top().map_err(GraphError::unsupported)?;
    let filter = parse_filter(q, &USER)?;
    let expand = parse_expand(q)?;
    let after = resume_after(q, "users", epoch)?;
    let all: Vec<(String, (&String, &UserRec))> = d
        .users
        .iter()
        .filter(|(_, u)| u.deleted.is_none())
        .filter(|(id, u)| {
            filter
                .as_ref()
                .is_none_or(|f| f.matches(&user_lookup(id, u, false)))
        })
        .map(|(id, u)| (id.clone(), (id, u)))
        .collect();
    let page = paginate(all, after.as_deref(), top);
    let page = Page {
        items: page
            .items
            .into_iter()
            .map(|(id, u)| render_user(d, id, u, &sel, expand.as_ref()))
            .collect(),
        more_after: page.more_after,
        total: page.total,
    };
    let context = format!("{}/$metadata#users{}", ctx.root(), sel.context_suffix());
    Ok(list_body(
        ctx, context, q, eventual, "/users", "users", epoch, page,
    ))
}

fn get_user(d: &Directory, ctx: &Ctx, key: &str, q: &QueryOptions) -> HResult {
    check_options(q, &["$select", "$expand"])?;
    let sel = parse_select(q, &USER)?;
    let expand = parse_expand(q)?;
    let (id, rec) = d.live_user(key).ok_or_else(|| GraphError::not_found(key))?;
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        json!(format!(
            "{}/$metadata#users{}/$entity",
            ctx.root(),
            sel.context_suffix()
        )),
    );
    if let Value::Object(obj) = render_user(d, id, rec, &sel, expand.as_ref()) {
        body.extend(obj);
    }
    Ok(ctx.ok(Value::Object(body)))
}

fn get_manager(d: &Directory, ctx: &Ctx, key: &str, q: &QueryOptions) -> HResult {
    check_options(q, &["$select"])?;
    let sel = parse_select(q, &USER)?;
    let (_, rec) = d.live_user(key).ok_or_else(|| GraphError::not_found(key))?;
    let (mid, m) = rec
        .manager
        .as_deref()
        .and_then(|mid| d.users.get_key_value(mid))
        .filter(|(_, m)| m.deleted.is_none())
        .ok_or_else(|| GraphError::not_found("manager"))?;
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        json!(format!("{}/$metadata#directoryObjects/$entity", ctx.root())),
    );
    body.insert("@odata.type".into(), json!("#microsoft.graph.user"));
    body.extend(schema::render(&USER, &sel, user_lookup(mid, m, false)));
    Ok(ctx.ok(Value::Object(body)))
}

// ---- groups and members -----------------------------------------------------------------------

fn group_lookup<'a>(
    id: &'a str,
    g: &'a super::model::GroupRec,
) -> impl Fn(&str) -> Option<Value> + 'a {
    move |name| match name {
        "id" => Some(json!(id)),
        "deletedDateTime" => None,
        _ => g.props.get(name).cloned(),
    }
}

fn list_groups(d: &Directory, ctx: &Ctx, q: &QueryOptions, eventual: bool, epoch: u64) -> HResult {
    check_options(q, &["$select", "$top", "$filter", "$count", "$skiptoken"])?;
    let sel = parse_select(q, &GROUP)?;
    let top = q.top().map_err(GraphError::unsupported)?;
    let filter = parse_filter(q, &GROUP)?;
    let after = resume_after(q, "groups", epoch)?;
    let all: Vec<(String, Value)> = d
        .groups
        .iter()
        .filter(|(id, g)| {
            filter
                .as_ref()
                .is_none_or(|f| f.matches(&group_lookup(id, g)))
        })
        .map(|(id, g)| {
            (
                id.clone(),
                Value::Object(schema::render(&GROUP, &sel, group_lookup(id, g))),
            )
        })
        .collect();
    let page = paginate(all, after.as_deref(), top);
    let context = format!("{}/$metadata#groups{}", ctx.root(), sel.context_suffix());
    Ok(list_body(
        ctx, context, q, eventual, "/groups", "groups", epoch, page,
    ))
}

fn get_group(d: &Directory, ctx: &Ctx, id: &str, q: &QueryOptions) -> HResult {
    check_options(q, &["$select"])?;
    let sel = parse_select(q, &GROUP)?;
    let (id, g) = d
        .groups
        .get_key_value(id)
        .ok_or_else(|| GraphError::not_found(id))?;
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        json!(format!(
            "{}/$metadata#groups{}/$entity",
            ctx.root(),
            sel.context_suffix()
        )),
    );
    body.extend(schema::render(&GROUP, &sel, group_lookup(id, g)));
    Ok(ctx.ok(Value::Object(body)))
}

/// `$select` over `directoryObject`s: a name must exist on users or groups; each element then
/// gets only the names its own type has.
fn parse_directory_object_select(q: &QueryOptions) -> Result<Option<Vec<String>>, GraphError> {
    let Some(raw) = q.get("$select").map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    let mut out: Vec<String> = Vec::new();
    for name in raw.split(',').map(str::trim) {
        let canon = USER
            .canonical(name)
            .or_else(|| GROUP.canonical(name))
            .ok_or_else(|| GraphError::unknown_property(name, "microsoft.graph.directoryObject"))?;
        if !out.contains(&canon) {
            out.push(canon);
        }
    }
    Ok(Some(out))
}

fn narrow(names: &Option<Vec<String>>, schema: &Schema) -> Select {
    match names {
        None => Select::Default,
        Some(n) => Select::Props(
            n.iter()
                .filter(|p| schema.canonical(p).as_deref() == Some(p.as_str()))
                .cloned()
                .collect(),
        ),
    }
}

/// A member as a typed `directoryObject`, or `None` if it is hidden (soft-deleted user).
fn render_directory_object(d: &Directory, id: &str, names: &Option<Vec<String>>) -> Option<Value> {
    let mut obj = Map::new();
    if let Some((id, u)) = d.users.get_key_value(id) {
        if u.deleted.is_some() {
            return None;
        }
        obj.insert("@odata.type".into(), json!("#microsoft.graph.user"));
        obj.extend(schema::render(
            &USER,
            &narrow(names, &USER),
            user_lookup(id, u, false),
        ));
    } else if let Some((id, g)) = d.groups.get_key_value(id) {
        obj.insert("@odata.type".into(), json!("#microsoft.graph.group"));
        obj.extend(schema::render(
            &GROUP,
            &narrow(names, &GROUP),
            group_lookup(id, g),
        ));
    } else {
        return None;
    }
    Some(Value::Object(obj))
}

fn select_suffix(names: &Option<Vec<String>>) -> String {
    names
        .as_ref()
        .map_or(String::new(), |n| format!("({})", n.join(",")))
}

fn list_members(d: &Directory, ctx: &Ctx, id: &str, q: &QueryOptions, epoch: u64) -> HResult {
    check_options(q, &["$select", "$top", "$skiptoken", "$count"])?;
    let names = parse_directory_object_select(q)?;
    let top = q.top().map_err(GraphError::unsupported)?;
    let g = d.groups.get(id).ok_or_else(|| GraphError::not_found(id))?;
    let collection = format!("groups/{id}/members");
    let after = resume_after(q, &collection, epoch)?;
    let mut ids: Vec<&String> = g.members.iter().collect();
    ids.sort();
    let all: Vec<(String, Value)> = ids
        .into_iter()
        .filter_map(|m| render_directory_object(d, m, &names).map(|v| (m.clone(), v)))
        .collect();
    let page = paginate(all, after.as_deref(), top);
    let context = format!(
        "{}/$metadata#directoryObjects{}",
        ctx.root(),
        select_suffix(&names)
    );
    Ok(list_body(
        ctx,
        context,
        q,
        false,
        &format!("/groups/{id}/members"),
        &collection,
        epoch,
        page,
    ))
}

fn member_of(d: &Directory, ctx: &Ctx, key: &str, q: &QueryOptions, epoch: u64) -> HResult {
    check_options(q, &["$select", "$top", "$skiptoken"])?;
    let names = parse_directory_object_select(q)?;
    let top = q.top().map_err(GraphError::unsupported)?;
    let (uid, _) = d.live_user(key).ok_or_else(|| GraphError::not_found(key))?;
    let collection = format!("users/{uid}/memberOf");
    let after = resume_after(q, &collection, epoch)?;
    let all: Vec<(String, Value)> = d
        .groups
        .iter()
        .filter(|(_, g)| g.members.iter().any(|m| m == uid))
        .filter_map(|(gid, _)| render_directory_object(d, gid, &names).map(|v| (gid.clone(), v)))
        .collect();
    let page = paginate(all, after.as_deref(), top);
    let context = format!(
        "{}/$metadata#directoryObjects{}",
        ctx.root(),
        select_suffix(&names)
    );
    Ok(list_body(
        ctx,
        context,
        q,
        false,
        &format!("/users/{key}/memberOf"),
        &collection,
        epoch,
        page,
    ))
}

// ---- service principal and assignments --------------------------------------------------------

fn service_principal_json(d: &Directory) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("id".into(), json!(d.app.service_principal_id));
    m.insert("deletedDateTime".into(), Value::Null);
    m.insert("accountEnabled".into(), json!(true));
    m.insert("appDisplayName".into(), json!(d.app.display_name));
    m.insert("appId".into(), json!(d.app.app_id));
    m.insert("appOwnerOrganizationId".into(), json!(d.guid));
    m.insert("appRoleAssignmentRequired".into(), json!(true));
    m.insert("displayName".into(), json!(d.app.display_name));
    m.insert("servicePrincipalNames".into(), json!([d.app.app_id]));
    m.insert("servicePrincipalType".into(), json!("Application"));
    m.insert("signInAudience".into(), json!("AzureADMyOrg"));
    m.insert("appRoles".into(), Value::Array(d.app.app_roles.clone()));
    m
}

/// Applies a `$select` to a fixed object; names are matched case-insensitively.
fn select_fixed(
    obj: Map<String, Value>,
    q: &QueryOptions,
) -> Result<Map<String, Value>, GraphError> {
    let Some(raw) = q.get("$select").map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(obj);
    };
    let mut out = Map::new();
    for name in raw.split(',').map(str::trim) {
        let (k, v) = obj
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                GraphError::unknown_property(name, "microsoft.graph.servicePrincipal")
            })?;
        out.insert(k.clone(), v.clone());
    }
    Ok(out)
}

fn get_service_principal(d: &Directory, ctx: &Ctx, id: &str, q: &QueryOptions) -> HResult {
    check_options(q, &["$select"])?;
    if !id.eq_ignore_ascii_case(&d.app.service_principal_id) {
        return Err(GraphError::not_found(id));
    }
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        json!(format!(
            "{}/$metadata#servicePrincipals/$entity",
            ctx.root()
        )),
    );
    body.extend(select_fixed(service_principal_json(d), q)?);
    Ok(ctx.ok(Value::Object(body)))
}

fn list_service_principals(d: &Directory, ctx: &Ctx, q: &QueryOptions) -> HResult {
    check_options(q, &["$select", "$filter", "$top"])?;
    q.top().map_err(GraphError::unsupported)?;
    let sp = service_principal_json(d);
    let keep = match q.get("$filter") {
        None => true,
        Some(raw) => {
            let f =
                Filter::parse(raw).map_err(|_| GraphError::unsupported("Unsupported Query."))?;
            let canon = |p: &str| {
                ["id", "appId", "displayName", "servicePrincipalType"]
                    .into_iter()
                    .find(|k| k.eq_ignore_ascii_case(p))
                    .map(str::to_string)
            };
            let f = f.resolve(&canon).map_err(|p| {
                GraphError::unknown_property(&p, "microsoft.graph.servicePrincipal")
            })?;
            f.matches(&|name: &str| sp.get(name).cloned())
        }
    };
    let value = if keep {
        vec![Value::Object(select_fixed(sp, q)?)]
    } else {
        vec![]
    };
    Ok(ctx.ok(json!({
        "@odata.context": format!("{}/$metadata#servicePrincipals", ctx.root()),
        "value": value,
    })))
}

fn app_role_assigned_to(
    d: &Directory,
    ctx: &Ctx,
    id: &str,
    q: &QueryOptions,
    epoch: u64,
) -> HResult {
    check_options(q, &["$select", "$top", "$skiptoken"])?;
    // Graph wants the service principal's object id here; the appId is not an alternate key.
    if !id.eq_ignore_ascii_case(&d.app.service_principal_id) {
        return Err(GraphError::not_found(id));
    }
    let sel = parse_select(q, &APP_ROLE_ASSIGNMENT)?;
    let top = q.top().map_err(GraphError::unsupported)?;
    let collection = format!("servicePrincipals/{id}/appRoleAssignedTo");
    let after = resume_after(q, &collection, epoch)?;
    let sp_id = d.app.service_principal_id.as_str();
    // A page starts where the token left off (a range of the id-ordered map) and only its
    // rows are rendered: walking or rendering every assignment for each page made a 41-page
    // read of a 100,000-user tenant cost seconds in the emulator alone.
    let start = after.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
    let mut rest = d
        .assignments
        .range::<str, _>((start, Bound::Unbounded))
        .map(|(_, a)| a)
        .filter(|a| d.assignment_visible(a))
        .peekable();
    let rows: Vec<&AssignmentRec> = rest.by_ref().take(top).collect();
    let more_after = match (rest.peek(), rows.last()) {
        (Some(_), Some(last)) => Some(last.id.clone()),
        _ => None,
    };
    let page = Page {
        // Only an eventual-consistency list reports a count; this one does not.
        total: 0,
        more_after,
        items: rows
            .into_iter()
            .map(|a| {
                let lookup = |name: &str| -> Option<Value> {
                    Some(match name {
                        "id" => json!(a.id),
                        "appRoleId" => json!(a.app_role_id),
                        "createdDateTime" => json!(a.created),
                        "principalDisplayName" => d.principal_display_name(a),
                        "principalId" => json!(a.principal_id),
                        "principalType" => json!(a.principal_type.as_str()),
                        "resourceDisplayName" => json!(d.app.display_name),
                        "resourceId" => json!(sp_id),
                        _ => return None,
                    })
                };
                Value::Object(schema::render(&APP_ROLE_ASSIGNMENT, &sel, lookup))
            })
            .collect(),
    };
    let context = format!(
        "{}/$metadata#servicePrincipals('{sp_id}')/appRoleAssignedTo",
        ctx.root()
    );
    Ok(list_body(
        ctx,
        context,
        q,
        false,
        &format!("/servicePrincipals/{id}/appRoleAssignedTo"),
        &collection,
        epoch,
        page,
    ))
}

// ---- deleted items ----------------------------------------------------------------------------

fn deleted_select(q: &QueryOptions) -> Result<Select, GraphError> {
    Ok(match parse_select(q, &USER)? {
        Select::Default => {
            let mut names: Vec<String> = USER.defaults.iter().map(|s| (*s).to_string()).collect();
            names.push("deletedDateTime".into());
            Select::Props(names)
        }
        s => s,
    })
}

fn list_deleted_users(d: &Directory, ctx: &Ctx, q: &QueryOptions, epoch: u64) -> HResult {
    check_options(q, &["$select", "$top", "$skiptoken"])?;
    let shown = q.get("$select").is_some();
    let sel = deleted_select(q)?;
    let top = q.top().map_err(GraphError::unsupported)?;
    let collection = "directory/deletedItems/microsoft.graph.user";
    let after = resume_after(q, collection, epoch)?;
    let all: Vec<(String, Value)> = d
        .users
        .iter()
        .filter(|(_, u)| u.deleted.is_some())
        .map(|(id, u)| {
            (
                id.clone(),
                Value::Object(schema::render(&USER, &sel, user_lookup(id, u, true))),
            )
        })
        .collect();
    let page = paginate(all, after.as_deref(), top);
    let suffix = if shown {
        sel.context_suffix()
    } else {
        String::new()
    };
    let context = format!(
        "{}/$metadata#directoryObjects/microsoft.graph.user{suffix}",
        ctx.root()
    );
    Ok(list_body(
        ctx,
        context,
        q,
        false,
        &format!("/{collection}"),
        collection,
        epoch,
        page,
    ))
}

fn get_deleted_user(d: &Directory, ctx: &Ctx, id: &str, q: &QueryOptions) -> HResult {
    check_options(q, &["$select"])?;
    let sel = deleted_select(q)?;
    let (id, u) = d
        .users
        .get_key_value(id)
        .filter(|(_, u)| u.deleted.is_some())
        .ok_or_else(|| GraphError::not_found(id))?;
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        json!(format!("{}/$metadata#directoryObjects/$entity", ctx.root())),
    );
    body.insert("@odata.type".into(), json!("#microsoft.graph.user"));
    body.extend(schema::render(&USER, &sel, user_lookup(id, u, true)));
    Ok(ctx.ok(Value::Object(body)))
}

fn organization(d: &Directory, ctx: &Ctx) -> Response {
    let name = d.domain.split('.').next().unwrap_or(&d.domain);
    let mut display = name.to_string();
    if let Some(first) = display.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    ctx.ok(json!({
        "@odata.context": format!("{}/$metadata#organization", ctx.root()),
        "value": [{
            "id": d.guid,
            "deletedDateTime": null,
            "displayName": display,
            "tenantType": "AAD",
            "verifiedDomains": [{
                "capabilities": "Email, OfficeCommunicationsOnline",
                "isDefault": true,
                "isInitial": true,
                "name": d.domain,
                "type": "Managed"
            }]
        }]
    }))
}
