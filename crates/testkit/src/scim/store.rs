//! In-memory resource storage: one ordered table per resource type, with the
//! id/meta bookkeeping every write shares (REST handlers and test seeding alike).

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value, json};

use super::error::ScimError;
use super::schema::{ResourceType, Rules, USER, normalize};

/// One stored resource: its full JSON (with `id` and `meta`) and its version counter.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub resource: Map<String, Value>,
    pub version: u64,
}

impl Row {
    pub(crate) fn etag(&self) -> String {
        format!("W/\"{}\"", self.version)
    }
}

/// Resources of one type in creation order.
#[derive(Debug, Default)]
pub(crate) struct Table {
    next_seq: u64,
    rows: BTreeMap<u64, Row>,
    by_id: HashMap<String, u64>,
    /// Lower-cased userName → id, so uniqueness checks and `userName eq` filters stay O(1)
    /// with many thousands of users (benchmarks would otherwise measure this emulator).
    by_user_name: HashMap<String, String>,
}

fn user_name_key(row: &Row) -> Option<String> {
    row.resource
        .get("userName")
        .and_then(Value::as_str)
        .map(str::to_lowercase)
}

impl Table {
    pub(crate) fn get(&self, id: &str) -> Option<&Row> {
        self.by_id.get(id).and_then(|s| self.rows.get(s))
    }
    pub(crate) fn contains(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Row> {
        self.rows.values()
    }
    pub(crate) fn remove(&mut self, id: &str) -> Option<Row> {
        let seq = self.by_id.remove(id)?;
        let row = self.rows.remove(&seq)?;
        if let Some(k) = user_name_key(&row) {
            self.by_user_name.remove(&k);
        }
        Some(row)
    }
    /// The row whose userName equals `name` ignoring case.
    pub(crate) fn by_user_name(&self, name: &str) -> Option<&Row> {
        self.by_user_name
            .get(&name.to_lowercase())
            .and_then(|id| self.get(id))
    }
    fn put_new(&mut self, id: String, row: Row) {
        let seq = self.next_seq;
        self.next_seq += 1;
        if let Some(k) = user_name_key(&row) {
            self.by_user_name.insert(k, id.clone());
        }
        self.by_id.insert(id, seq);
        self.rows.insert(seq, row);
    }
    fn replace(&mut self, id: &str, row: Row) {
        if let Some(seq) = self.by_id.get(id).copied() {
            if let Some(old) = self.rows.get(&seq).and_then(user_name_key) {
                self.by_user_name.remove(&old);
            }
            if let Some(k) = user_name_key(&row) {
                self.by_user_name.insert(k, id.to_string());
            }
            self.rows.insert(seq, row);
        }
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// 409 if another user already has this userName (compared ignoring case, as RFC 7643
/// declares `userName` caseExact false and scim2-server does).
fn check_unique(
    rt: &ResourceType,
    table: &Table,
    attrs: &Map<String, Value>,
    own_id: Option<&str>,
) -> Result<(), ScimError> {
    if !std::ptr::eq(rt, &USER) {
        return Ok(());
    }
    let Some(name) = attrs.get("userName").and_then(Value::as_str) else {
        return Ok(());
    };
    let taken = table
        .by_user_name(name)
        .is_some_and(|r| r.resource.get("id").and_then(Value::as_str) != own_id);
    if taken {
        return Err(ScimError::uniqueness(format!(
            "userName '{name}' is already taken"
        )));
    }
    Ok(())
}

/// Assemble `schemas, id, <attributes>, meta` in the order clients expect to read them.
fn assemble(attrs: Map<String, Value>, id: &str, meta: Value) -> Map<String, Value> {
    let mut out = Map::new();
    let mut attrs = attrs;
    if let Some(s) = attrs.remove("schemas") {
        out.insert("schemas".into(), s);
    }
    out.insert("id".into(), Value::String(id.to_owned()));
    out.extend(attrs);
    out.insert("meta".into(), meta);
    out
}

/// Validate and store a new resource; returns the stored row.
pub(crate) fn create(
    rt: &ResourceType,
    table: &mut Table,
    base_url: &str,
    rules: Rules,
    input: &Value,
) -> Result<Row, ScimError> {
    let attrs = normalize(rt, input, rules, true)?;
    check_unique(rt, table, &attrs, None)?;
    let id = uuid::Uuid::new_v4().to_string();
    let ts = now();
    let meta = json!({
        "resourceType": rt.name,
        "created": ts,
        "lastModified": ts,
        "location": format!("{base_url}{}/{id}", rt.endpoint),
        "version": "W/\"1\"",
    });
    let row = Row {
        resource: assemble(attrs, &id, meta),
        version: 1,
    };
    table.put_new(id, row.clone());
    Ok(row)
}

/// Replace the attributes of `id` with `attrs` (already validated), keeping `id` and
/// `meta.created`. Unchanged content keeps its version, as a real ETag would.
pub(crate) fn update(
    rt: &ResourceType,
    table: &mut Table,
    id: &str,
    attrs: Map<String, Value>,
) -> Result<Row, ScimError> {
    let old = table
        .get(id)
        .ok_or_else(|| ScimError::not_found(format!("{} {id} not found", rt.name)))?
        .clone();
    check_unique(rt, table, &attrs, Some(id))?;
    let mut old_attrs = old.resource.clone();
    old_attrs.remove("id");
    let old_meta = old_attrs.remove("meta").unwrap_or(Value::Null);
    if old_attrs == attrs {
        return Ok(old);
    }
    let version = old.version + 1;
    let mut meta = old_meta.as_object().cloned().unwrap_or_default();
    meta.insert("lastModified".into(), Value::String(now()));
    meta.insert("version".into(), Value::String(format!("W/\"{version}\"")));
    let row = Row {
        resource: assemble(attrs, id, Value::Object(meta)),
        version,
    };
    table.replace(id, row.clone());
    Ok(row)
}
