//! PATCH (RFC 7644 §3.5.2) on a stored resource, accepting both dialects Entra sends:
//! the default one (`Replace`/`Add`/`Remove` capitalised, `"False"` strings, member removal as
//! `{"op":"Remove","path":"members","value":[{"value":id}]}`) and the RFC one enabled by
//! `aadOptscim062020` (lowercase ops, path-less `replace` whose value keys are dotted paths or
//! full URNs, `members[value eq "id"]`).
//!
//! Choices where the RFC leaves room (documented because tests rely on them):
//! - `add`/`replace` on a value-filter path that matches nothing → 400 `noTarget` (as
//!   scim2-server): a client must `add` a new `emails` entry instead.
//! - `remove` on a value-filter path that matches nothing is a no-op (idempotent).
//! - `remove` of a multi-valued attribute *with* a `value` list removes only the listed values
//!   (matched by their `value` sub-attribute); without `value` it removes them all.
//! - `add` to a multi-valued attribute skips values already present (same `value` and `type`).
//! - Operations apply in order on a copy; the resource changes only if all succeed and the
//!   result still validates against the schema.

use serde_json::{Map, Value};

use super::error::ScimError;
use super::filter::{AttrRef, Filter, PatchPath, parse_path};
use super::schema::{AttrDef, Mutability, ResourceType};

pub(crate) const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Add,
    Replace,
    Remove,
}

fn get_ci<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

/// Apply a PatchOp body to `res` (a stored resource with canonical names) in place.
pub(crate) fn apply(
    rt: &ResourceType,
    res: &mut Map<String, Value>,
    body: &Value,
) -> Result<(), ScimError> {
    let body = body
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("the PATCH body must be a JSON object"))?;
    let schemas_ok = get_ci(body, "schemas")
        .and_then(Value::as_array)
        .is_some_and(|s| {
            s.iter()
                .any(|u| u.as_str().is_some_and(|u| u.eq_ignore_ascii_case(PATCH_OP)))
        });
    if !schemas_ok {
        return Err(ScimError::invalid_syntax(format!(
            "a PATCH body must have \"schemas\": [\"{PATCH_OP}\"]"
        )));
    }
    let ops = get_ci(body, "Operations")
        .and_then(Value::as_array)
        .filter(|o| !o.is_empty())
        .ok_or_else(|| {
            ScimError::invalid_syntax("a PATCH body needs a non-empty \"Operations\" array")
        })?;
    for (i, op) in ops.iter().enumerate() {
        apply_one(rt, res, op).map_err(|mut e| {
            e.detail = format!("operation {}: {}", i + 1, e.detail);
            e
        })?;
    }
    Ok(())
}

fn apply_one(rt: &ResourceType, res: &mut Map<String, Value>, op: &Value) -> Result<(), ScimError> {
    let op_obj = op
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("each operation must be a JSON object"))?;
    let name = get_ci(op_obj, "op")
        .and_then(Value::as_str)
        .ok_or_else(|| ScimError::invalid_syntax("an operation needs \"op\""))?;
    let kind = match name.to_ascii_lowercase().as_str() {
        "add" => Op::Add,
        "replace" => Op::Replace,
        "remove" => Op::Remove,
        _ => {
            return Err(ScimError::invalid_syntax(format!(
                "unknown op '{name}' (expected add, replace or remove)"
            )));
        }
    };
    let path = match get_ci(op_obj, "path") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) if p.trim().is_empty() => None,
        Some(Value::String(p)) => Some(parse_path(rt, p.trim())?),
        Some(other) => {
            return Err(ScimError::invalid_path(format!(
                "\"path\" must be a string, got {other}"
            )));
        }
    };
    let value = get_ci(op_obj, "value");
    match path {
        Some(p) => apply_path(rt, res, kind, &p, value),
        None => {
            if kind == Op::Remove {
                return Err(ScimError::no_target("a remove operation needs a \"path\""));
            }
            let obj = value.and_then(Value::as_object).ok_or_else(|| {
                ScimError::invalid_value(
                    "an add/replace without \"path\" needs a JSON object \"value\"",
                )
            })?;
            for (key, v) in obj {
                if key.eq_ignore_ascii_case("schemas") {
                    continue;
                }
                let p = parse_path(rt, key)?;
                apply_path(rt, res, kind, &p, Some(v))?;
            }
            Ok(())
        }
    }
}

fn check_writable(def: &AttrDef) -> Result<(), ScimError> {
    if def.mutability == Mutability::ReadOnly {
        return Err(ScimError::mutability(format!(
            "the attribute '{}' is read-only",
            def.name
        )));
    }
    Ok(())
}

/// The object holding the attribute: the resource, or its extension object.
fn container<'a>(
    res: &'a mut Map<String, Value>,
    target: &AttrRef,
    create: bool,
) -> Option<&'a mut Map<String, Value>> {
    match target.ext {
        None => Some(res),
        Some(ext) => {
            if create && !matches!(res.get(ext.id), Some(Value::Object(_))) {
                res.insert(ext.id.to_owned(), Value::Object(Map::new()));
            }
            res.get_mut(ext.id).and_then(Value::as_object_mut)
        }
    }
}

/// Insert `key` (canonicalised against `subs`), replacing any spelling of it.
fn set_ci(obj: &mut Map<String, Value>, subs: &'static [AttrDef], key: &str, value: Value) {
    let canonical = super::schema::find(subs, key)
        .map_or(key, |d| d.name)
        .to_owned();
    obj.retain(|k, _| !k.eq_ignore_ascii_case(&canonical));
    if !value.is_null() {
        obj.insert(canonical, value);
    }
}

/// Merge a complex value's sub-attributes into `target` (RFC: unspecified ones stay).
fn merge(def: &AttrDef, target: &mut Value, value: &Value) {
    match (target.as_object_mut(), value.as_object()) {
        (Some(t), Some(v)) => {
            for (k, x) in v {
                set_ci(t, def.sub, k, x.clone());
            }
        }
        _ => *target = value.clone(),
    }
}

fn is_primary(v: &Value) -> bool {
    match v.get("primary") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// RFC 7644 §3.5.2: a value newly marked primary demotes the others.
fn demote_other_primaries(items: &mut [Value], touched: &[usize]) {
    if !touched
        .iter()
        .any(|&i| items.get(i).is_some_and(is_primary))
    {
        return;
    }
    for (i, item) in items.iter_mut().enumerate() {
        if !touched.contains(&i)
            && is_primary(item)
            && let Some(o) = item.as_object_mut()
        {
            o.insert("primary".into(), Value::Bool(false));
        }
    }
}

fn same_value(a: &Value, b: &Value) -> bool {
    if a == b {
        return true;
    }
    match (a.get("value"), b.get("value")) {
        (Some(x), Some(y)) if x == y => match (a.get("type"), b.get("type")) {
            (Some(s), Some(t)) => {
                s.as_str().map(str::to_lowercase) == t.as_str().map(str::to_lowercase)
            }
            _ => true,
        },
        _ => false,
    }
}

fn as_items(value: &Value) -> Vec<Value> {
    match value {
        Value::Array(a) => a.iter().filter(|v| !v.is_null()).cloned().collect(),
        Value::Null => Vec::new(),
        other => vec![other.clone()],
    }
}

fn apply_path(
    rt: &ResourceType,
    res: &mut Map<String, Value>,
    kind: Op,
    path: &PatchPath,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let target = path.target;
    let needs_value = || ScimError::invalid_value(format!("{kind:?} needs a \"value\""));
    let Some(attr) = target.attr else {
        // The whole extension object, e.g. path "urn:…:enterprise:2.0:User".
        let Some(ext) = target.ext else {
            return Err(ScimError::invalid_path("no attribute in path"));
        };
        if kind == Op::Remove {
            res.remove(ext.id);
            return Ok(());
        }
        let value = value.ok_or_else(needs_value)?;
        if value.is_null() && kind == Op::Replace {
            res.remove(ext.id);
            return Ok(());
        }
        let obj = value.as_object().ok_or_else(|| {
            ScimError::invalid_value(format!("the value for '{}' must be a JSON object", ext.id))
        })?;
        for (k, v) in obj {
            let p = parse_path(rt, &format!("{}:{k}", ext.id))?;
            apply_path(rt, res, kind, &p, Some(v))?;
        }
        return Ok(());
    };
    check_writable(attr)?;
    if let Some(sub) = target.sub.or(path.filter_sub) {
        check_writable(sub)?;
    }

    if let Some(filter) = &path.filter {
        return apply_filtered(res, kind, &target, attr, filter, path.filter_sub, value);
    }

    if let Some(sub) = target.sub {
        let create = kind != Op::Remove;
        let Some(c) = container(res, &target, create) else {
            return Ok(());
        };
        if kind == Op::Remove {
            match c.get_mut(attr.name) {
                Some(Value::Array(items)) => {
                    for item in items.iter_mut().filter_map(Value::as_object_mut) {
                        item.remove(sub.name);
                    }
                }
                Some(Value::Object(o)) => {
                    o.remove(sub.name);
                }
                _ => {}
            }
            return Ok(());
        }
        if attr.multi {
            return Err(ScimError::invalid_path(format!(
                "'{}.{}' is ambiguous on a multi-valued attribute: use a value filter such as {}[type eq \"work\"].{}",
                attr.name, sub.name, attr.name, sub.name
            )));
        }
        let value = value.ok_or_else(needs_value)?;
        let slot = c
            .entry(attr.name)
            .or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        if let Some(o) = slot.as_object_mut() {
            set_ci(o, attr.sub, sub.name, value.clone());
        }
        return Ok(());
    }

    let Some(c) = container(res, &target, kind != Op::Remove) else {
        return Ok(());
    };
    match kind {
        Op::Remove => {
            match value {
                Some(v) if attr.multi && !v.is_null() => {
                    // Entra's default dialect: remove only the listed values.
                    let listed = as_items(v);
                    if let Some(Value::Array(items)) = c.get_mut(attr.name) {
                        items.retain(|item| !listed.iter().any(|l| same_value(item, l)));
                        if items.is_empty() {
                            c.remove(attr.name);
                        }
                    }
                }
                _ => {
                    c.remove(attr.name);
                }
            }
            Ok(())
        }
        Op::Add | Op::Replace => {
            let value = value.ok_or_else(needs_value)?;
            if value.is_null() {
                if kind == Op::Replace {
                    c.remove(attr.name);
                }
                return Ok(());
            }
            if attr.multi {
                let new_items = as_items(value);
                if kind == Op::Replace {
                    if new_items.is_empty() {
                        c.remove(attr.name);
                    } else {
                        c.insert(attr.name.to_owned(), Value::Array(new_items));
                    }
                    return Ok(());
                }
                let slot = c
                    .entry(attr.name)
                    .or_insert_with(|| Value::Array(Vec::new()));
                if !slot.is_array() {
                    *slot = Value::Array(Vec::new());
                }
                if let Some(items) = slot.as_array_mut() {
                    let mut touched = Vec::new();
                    for item in new_items {
                        match items.iter().position(|e| same_value(e, &item)) {
                            Some(i) => touched.push(i),
                            None => {
                                items.push(item);
                                touched.push(items.len() - 1);
                            }
                        }
                    }
                    demote_other_primaries(items, &touched);
                }
                return Ok(());
            }
            match c.get_mut(attr.name) {
                Some(existing) if attr.is_complex() => merge(attr, existing, value),
                _ => {
                    c.insert(attr.name.to_owned(), value.clone());
                }
            }
            Ok(())
        }
    }
}

fn apply_filtered(
    res: &mut Map<String, Value>,
    kind: Op,
    target: &AttrRef,
    attr: &'static AttrDef,
    filter: &Filter,
    sub: Option<&'static AttrDef>,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let items = container(res, target, false)
        .and_then(|c| c.get_mut(attr.name))
        .and_then(Value::as_array_mut);
    let matched: Vec<usize> = match &items {
        Some(items) => items
            .iter()
            .enumerate()
            .filter(|(_, v)| v.as_object().is_some_and(|o| filter.matches(o)))
            .map(|(i, _)| i)
            .collect(),
        None => Vec::new(),
    };
    if kind == Op::Remove {
        let Some(items) = items else { return Ok(()) };
        match sub {
            Some(s) => {
                for &i in &matched {
                    if let Some(o) = items[i].as_object_mut() {
                        o.remove(s.name);
                    }
                }
            }
            None => {
                let mut i = 0;
                items.retain(|_| {
                    let keep = !matched.contains(&i);
                    i += 1;
                    keep
                });
            }
        }
        if items.is_empty()
            && let Some(c) = container(res, target, false)
        {
            c.remove(attr.name);
        }
        return Ok(());
    }
    let value =
        value.ok_or_else(|| ScimError::invalid_value(format!("{kind:?} needs a \"value\"")))?;
    let Some(items) = items.filter(|_| !matched.is_empty()) else {
        return Err(ScimError::no_target(format!(
            "no value of '{}' matches the filter; to create one, add a new '{}' value instead",
            attr.name, attr.name
        )));
    };
    for &i in &matched {
        let item = &mut items[i];
        match (sub, kind) {
            (Some(s), _) => {
                if let Some(o) = item.as_object_mut() {
                    set_ci(o, attr.sub, s.name, value.clone());
                }
            }
            (None, Op::Add) => merge(attr, item, value),
            (None, _) => *item = value.clone(),
        }
    }
    demote_other_primaries(items, &matched);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::schema::{ENTERPRISE_USER, GROUP, USER};
    use super::*;
    use serde_json::json;

    fn user() -> Map<String, Value> {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": "u",
            "userName": "a",
            "name": {"givenName": "A", "familyName": "B"},
            "emails": [{"type": "work", "value": "a@w", "primary": true}],
        })
        .as_object()
        .cloned()
        .unwrap_or_default()
    }

    fn patch(res: &mut Map<String, Value>, ops: Value) -> Result<(), ScimError> {
        apply(
            &USER,
            res,
            &json!({"schemas": [PATCH_OP], "Operations": ops}),
        )
    }

    #[test]
    fn pathless_replace_with_dotted_and_urn_keys() {
        let mut u = user();
        patch(
            &mut u,
            json!([{"op": "replace", "value": {
                "displayName": "D", "name.givenName": "G",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "7",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Eng"}
            }}]),
        )
        .expect("patch");
        assert_eq!(u["displayName"], "D");
        assert_eq!(u["name"], json!({"givenName": "G", "familyName": "B"}));
        assert_eq!(
            u[ENTERPRISE_USER],
            json!({"employeeNumber": "7", "department": "Eng"})
        );
    }

    #[test]
    fn filtered_replace_needs_a_match() {
        let mut u = user();
        let err = patch(
            &mut u,
            json!([{"op": "Replace", "path": "emails[type eq \"home\"].value", "value": "h"}]),
        )
        .expect_err("no home email");
        assert_eq!(err.scim_type, Some("noTarget"));
        patch(&mut u, json!([{"op": "add", "path": "emails", "value": [{"type": "home", "value": "h", "primary": true}]}]))
            .expect("add");
        assert_eq!(
            u["emails"][0]["primary"], false,
            "new primary demotes the old one"
        );
        patch(
            &mut u,
            json!([{"op": "Replace", "path": "emails[type eq \"home\"].value", "value": "h2"}]),
        )
        .expect("replace");
        assert_eq!(u["emails"][1]["value"], "h2");
    }

    #[test]
    fn member_removal_both_dialects() {
        let mut g = json!({"displayName": "G", "members": [{"value": "1"}, {"value": "2"}, {"value": "3"}]})
            .as_object()
            .cloned()
            .unwrap_or_default();
        let body = |ops: Value| json!({"schemas": [PATCH_OP], "Operations": ops});
        apply(
            &GROUP,
            &mut g,
            &body(json!([{"op": "Remove", "path": "members", "value": [{"value": "1"}]}])),
        )
        .expect("entra");
        apply(
            &GROUP,
            &mut g,
            &body(json!([{"op": "remove", "path": "members[value eq \"2\"]"}])),
        )
        .expect("rfc");
        assert_eq!(g["members"], json!([{"value": "3"}]));
        apply(
            &GROUP,
            &mut g,
            &body(json!([{"op": "remove", "path": "members[value eq \"9\"]"}])),
        )
        .expect("no-op");
        apply(
            &GROUP,
            &mut g,
            &body(json!([{"op": "remove", "path": "members"}])),
        )
        .expect("all");
        assert!(!g.contains_key("members"));
    }

    #[test]
    fn rejects_read_only_and_bad_bodies() {
        let mut u = user();
        assert_eq!(
            patch(
                &mut u,
                json!([{"op": "replace", "path": "id", "value": "x"}])
            )
            .expect_err("ro")
            .scim_type,
            Some("mutability")
        );
        assert_eq!(
            patch(&mut u, json!([{"op": "remove"}]))
                .expect_err("no path")
                .scim_type,
            Some("noTarget")
        );
        assert!(apply(&USER, &mut u, &json!({"Operations": []})).is_err());
        assert!(
            patch(
                &mut u,
                json!([{"op": "frobnicate", "path": "title", "value": "x"}])
            )
            .is_err()
        );
    }
}
