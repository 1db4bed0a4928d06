//! Flat attributes ⇄ SCIM User and Group resource JSON: the POST bodies and their inverses.
//!
//! The pairs round-trip: `flatten_user(&user_resource(a)).1 == a` for every path shape the
//! mappings use, and likewise `flatten_group(&group_resource(a)).1 == a`. What a server adds
//! (`meta`, `groups`, a group's `members`, untyped entries) is dropped.

use crate::path::{AttrPath, CORE_GROUP_SCHEMA, CORE_USER_SCHEMA, ENTERPRISE_USER_SCHEMA, escape};
use scimsync_core::Attrs;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// How enterprise `manager` goes on the wire in POST and PATCH bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ManagerFormat {
    /// `{"value": "<id>"}`, as RFC 7643 defines it; strict servers (scim2-server) need it.
    #[default]
    Complex,
    /// The bare id string, as server authors report the live Entra client sends it; for
    /// targets built against that.
    String,
}

/// The `POST /Users` body for `attrs`, listing custom extension URNs in `schemas` (the
/// [`crate::ScimClientConfig`] default). See [`user_resource_with`].
pub fn user_resource(attrs: &Attrs) -> Value {
    user_resource_with(attrs, true)
}

/// The `POST /Users` body for `attrs`.
///
/// `schemas` holds the core User URN, the enterprise URN when an enterprise attribute is
/// present, and — only with `list_custom_schemas` — custom extension URNs. Entra leaves custom
/// URNs out (reference §1.5), but RFC 7643 §3 requires every extension in use to be listed, so
/// a validating server may reject the attributes otherwise.
///
/// Typed paths (`emails[type eq "work"].value`) become one entry per type with its `type`
/// set; the work email is `primary`. `active` is always a JSON boolean, enterprise `manager`
/// the complex `{"value": id}`, and nulls are never sent.
pub fn user_resource_with(attrs: &Attrs, list_custom_schemas: bool) -> Value {
    user_resource_with_manager(attrs, list_custom_schemas, ManagerFormat::Complex)
}

/// [`user_resource_with`], with enterprise `manager` rendered as `manager`.
pub fn user_resource_with_manager(
    attrs: &Attrs,
    list_custom_schemas: bool,
    manager: ManagerFormat,
) -> Value {
    let mut body = build_resource(CORE_USER_SCHEMA, attrs.iter(), list_custom_schemas, manager);
    if let Value::Object(m) = &mut body {
        mark_primary_work_email(m);
    }
    body
}

/// The `POST /Groups` body for `attrs`, listing custom extension URNs in `schemas` (the
/// [`crate::ScimClientConfig`] default). See [`group_resource_with`].
pub fn group_resource(attrs: &Attrs) -> Value {
    group_resource_with(attrs, true)
}

/// The `POST /Groups` body for `attrs`: `schemas` (core Group, plus custom extension URNs with
/// `list_custom_schemas`), `displayName`, `externalId`, and extension attributes under their
/// URN key (`{"urn:ietf:params:scim:schemas:extension:klaxoon:2.0:Group": {"license": …}}`).
///
/// A group is always created empty (reference §1.7): `members` paths are never sent, members
/// follow with an `add` PATCH. Entra also lists Microsoft's
/// `http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group` URN; it is left
/// out because it carries no attributes and strict servers reject unregistered URNs.
pub fn group_resource_with(attrs: &Attrs, list_custom_schemas: bool) -> Value {
    build_resource(
        CORE_GROUP_SCHEMA,
        attrs.iter().filter(|(path, _)| !is_members_path(path)),
        list_custom_schemas,
        ManagerFormat::Complex,
    )
}

/// `members`, `members.value`, `members[value eq "x"]`: what groups never carry in a POST.
pub(crate) fn is_members_path(path: &str) -> bool {
    let name = path.split(['.', '[']).next().unwrap_or_default();
    name.eq_ignore_ascii_case("members")
}

/// A resource body for `attrs` under the `core` schema. The enterprise User URN is listed
/// whenever used; other extension URNs only with `list_custom_schemas`.
fn build_resource<'a>(
    core: &str,
    attrs: impl Iterator<Item = (&'a String, &'a Value)>,
    list_custom_schemas: bool,
    manager: ManagerFormat,
) -> Value {
    let mut body = Map::new();
    let mut has_enterprise = false;
    let mut custom: Vec<&str> = Vec::new();
    body.insert("schemas".into(), Value::Null); // placeholder keeps `schemas` first
    for (path, value) in attrs {
        if value.is_null() {
            continue;
        }
        let value = wire_value(path, value, false, manager);
        match AttrPath::parse(path) {
            AttrPath::Core { attr, sub: None } => {
                body.insert(attr.to_string(), value);
            }
            AttrPath::Core {
                attr,
                sub: Some(sub),
            } => {
                object_at(&mut body, attr).insert(sub.to_string(), value);
            }
            AttrPath::Filtered {
                attr,
                filter_attr,
                filter_value,
                sub,
                ..
            } => {
                let entry = entry_at(&mut body, attr, filter_attr, &filter_value);
                entry.insert(AttrPath::filtered_sub(sub).to_string(), value);
            }
            AttrPath::Extension { urn, attr, sub } => {
                if urn.eq_ignore_ascii_case(ENTERPRISE_USER_SCHEMA) {
                    has_enterprise = true;
                } else if list_custom_schemas && !custom.contains(&urn) {
                    custom.push(urn);
                }
                let ext = object_at(&mut body, urn);
                match sub {
                    None => {
                        ext.insert(attr.to_string(), value);
                    }
                    Some(sub) => {
                        object_at(ext, attr).insert(sub.to_string(), value);
                    }
                }
            }
        }
    }
    // Core, enterprise, then custom URNs: the order Entra and RFC 7643 examples use.
    let mut schemas = vec![Value::from(core)];
    if has_enterprise {
        schemas.push(Value::from(ENTERPRISE_USER_SCHEMA));
    }
    schemas.extend(custom.into_iter().map(Value::from));
    body.insert("schemas".into(), Value::Array(schemas));
    Value::Object(body)
}

/// Converts a value to what goes on the wire for `path`: `active` as a boolean (or Entra's
/// `"True"`/`"False"` string with `entra_strings`), enterprise `manager` as `{"value": id}`
/// unless [`ManagerFormat::String`].
pub(crate) fn wire_value(
    path: &str,
    value: &Value,
    entra_strings: bool,
    manager: ManagerFormat,
) -> Value {
    if path.eq_ignore_ascii_case("active") {
        return match as_bool(value) {
            Some(b) if entra_strings => Value::from(if b { "True" } else { "False" }),
            Some(b) => Value::Bool(b),
            None => value.clone(),
        };
    }
    if let (true, Value::String(id), ManagerFormat::Complex) = (is_manager(path), value, manager) {
        return json!({ "value": id });
    }
    value.clone()
}

pub(crate) fn is_manager(path: &str) -> bool {
    matches!(AttrPath::parse(path), AttrPath::Extension { urn, attr, sub: None }
        if urn.eq_ignore_ascii_case(ENTERPRISE_USER_SCHEMA) && attr == "manager")
}

fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// The JSON value a filter selects on: `primary eq "True"` means the boolean.
pub(crate) fn selector_value(filter_attr: &str, filter_value: &str) -> Value {
    if let ("primary", Some(b)) = (filter_attr, as_bool(&Value::from(filter_value))) {
        return Value::Bool(b);
    }
    Value::from(filter_value)
}

/// Whether Entra marks this typed entry `primary` (only the work email, as in its POST example).
pub(crate) fn is_primary_entry(attr: &str, filter_attr: &str, filter_value: &str) -> bool {
    attr == "emails" && filter_attr == "type" && filter_value == "work"
}

fn object_at<'m>(map: &'m mut Map<String, Value>, key: &str) -> &'m mut Map<String, Value> {
    let slot = map
        .entry(key.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        // A plain value and a sub-attribute for the same key: the sub-attribute wins, since
        // the schema says the attribute is complex.
        *slot = Value::Object(Map::new());
    }
    match slot {
        Value::Object(m) => m,
        _ => unreachable!("slot was just made an object"),
    }
}

fn entry_at<'m>(
    map: &'m mut Map<String, Value>,
    attr: &str,
    filter_attr: &str,
    filter_value: &str,
) -> &'m mut Map<String, Value> {
    let selector = selector_value(filter_attr, filter_value);
    let slot = map
        .entry(attr.to_string())
        .or_insert_with(|| Value::Array(Vec::new()));
    if !slot.is_array() {
        *slot = Value::Array(Vec::new());
    }
    let Value::Array(entries) = slot else {
        unreachable!("slot was just made an array")
    };
    let pos = entries
        .iter()
        .position(|e| e.get(filter_attr) == Some(&selector));
    let pos = pos.unwrap_or_else(|| {
        let mut entry = Map::new();
        entry.insert(filter_attr.to_string(), selector);
        entries.push(Value::Object(entry));
        entries.len() - 1
    });
    match &mut entries[pos] {
        Value::Object(m) => m,
        _ => unreachable!("entries are objects"),
    }
}

fn mark_primary_work_email(body: &mut Map<String, Value>) {
    if let Some(Value::Array(entries)) = body.get_mut("emails") {
        for entry in entries.iter_mut().filter_map(Value::as_object_mut) {
            if entry.get("type").and_then(Value::as_str) == Some("work") {
                entry.entry("primary").or_insert(Value::Bool(true));
            }
        }
    }
}

/// A User resource as flat paths, and its `id` (empty when the resource has none).
///
/// Complex attributes become `attr.sub`; multi-valued entries with a `type` become
/// `attr[type eq "t"].sub` (an untyped `primary` entry, such as a role, becomes
/// `attr[primary eq "True"].sub`); `type` and `primary` themselves are implied by the path and
/// left out. Extension objects become `urn:attr`, a complex `manager` its `value`. `active`
/// sent back as a `"True"`/`"False"` string is read as a boolean. `schemas`, `meta`, nulls and
/// entries a path cannot address are dropped.
pub fn flatten_user(resource: &Value) -> (String, Attrs) {
    let mut out = Attrs::new();
    let Some(obj) = resource.as_object() else {
        return (String::new(), out);
    };
    let id = match obj.get("id") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    for (key, value) in obj {
        if matches!(key.as_str(), "schemas" | "id" | "meta") || value.is_null() {
            continue;
        }
        // `get`: a key from the target may have a character across its fourth byte.
        let is_urn = key.len() > 4 && key.get(..4).is_some_and(|k| k.eq_ignore_ascii_case("urn:"));
        match value {
            Value::Object(ext) if is_urn => {
                let enterprise = key.eq_ignore_ascii_case(ENTERPRISE_USER_SCHEMA);
                for (attr, v) in ext {
                    let path = format!("{key}:{attr}");
                    match v {
                        Value::Null => {}
                        Value::Object(m) if enterprise && attr == "manager" => {
                            if let Some(id) = m.get("value").filter(|v| !v.is_null()) {
                                out.insert(path, id.clone());
                            }
                        }
                        Value::Object(m) => flatten_object(&mut out, &path, m),
                        v => {
                            out.insert(path, v.clone());
                        }
                    }
                }
            }
            Value::Object(m) => flatten_object(&mut out, key, m),
            Value::Array(entries) => flatten_entries(&mut out, key, entries),
            v => {
                let v = if key.eq_ignore_ascii_case("active") {
                    as_bool(v).map_or_else(|| v.clone(), Value::Bool)
                } else {
                    v.clone()
                };
                out.insert(key.clone(), v);
            }
        }
    }
    (id, out)
}

/// A Group resource as flat paths, and its `id` (empty when the resource has none): the same
/// rules as [`flatten_user`], with `members` dropped — a group read never carries them on
/// purpose (see [`crate::ScimClient`] for what happens when a server sends them anyway).
pub fn flatten_group(resource: &Value) -> (String, Attrs) {
    match resource.as_object() {
        Some(obj) if obj.keys().any(|k| k.eq_ignore_ascii_case("members")) => {
            let without: Map<String, Value> = obj
                .iter()
                .filter(|(k, _)| !k.eq_ignore_ascii_case("members"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            flatten_user(&Value::Object(without))
        }
        _ => flatten_user(resource),
    }
}

fn flatten_object(out: &mut Attrs, prefix: &str, m: &Map<String, Value>) {
    for (sub, v) in m {
        if is_scalar(v) {
            out.insert(format!("{prefix}.{sub}"), v.clone());
        }
    }
}

fn flatten_entries(out: &mut Attrs, attr: &str, entries: &[Value]) {
    for entry in entries.iter().filter_map(Value::as_object) {
        let selector = match (entry.get("type"), entry.get("primary")) {
            (Some(Value::String(t)), _) => format!("{attr}[type eq \"{}\"]", escape(t)),
            (None, Some(p)) if as_bool(p) == Some(true) => format!("{attr}[primary eq \"True\"]"),
            _ => continue,
        };
        for (sub, v) in entry {
            if sub == "type" || sub == "primary" || !is_scalar(v) {
                continue;
            }
            // Types are unique per attribute (Entra's rule); if a server repeats one, the
            // first entry is the one a filter path would address.
            out.entry(format!("{selector}.{sub}"))
                .or_insert_with(|| v.clone());
        }
    }
}

fn is_scalar(v: &Value) -> bool {
    matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENT: &str = ENTERPRISE_USER_SCHEMA;
    const CUSTOM: &str = "urn:ietf:params:scim:schemas:extension:Klaxoon:2.0:User";

    fn rich() -> Attrs {
        let mut a = Attrs::new();
        let mut put = |k: &str, v: Value| {
            a.insert(k.to_string(), v);
        };
        put("userName", json!("bjensen@example.com"));
        put("displayName", json!("Barbara Jensen"));
        put("title", json!("Tour Guide"));
        put("preferredLanguage", json!("en-US"));
        put("locale", json!("en-US"));
        put("timezone", json!("America/Los_Angeles"));
        put("nickName", json!("Babs"));
        put("externalId", json!("0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"));
        put("userType", json!("Employee"));
        put("active", json!(true));
        put("name.givenName", json!("Barbara"));
        put("name.familyName", json!("Jensen"));
        put("name.formatted", json!("Barbara Jensen"));
        put(
            r#"emails[type eq "work"].value"#,
            json!("bjensen@example.com"),
        );
        put(
            r#"emails[type eq "other"].value"#,
            json!("babs@home.example"),
        );
        put(
            r#"phoneNumbers[type eq "mobile"].value"#,
            json!("+1 555 0100"),
        );
        put(
            r#"phoneNumbers[type eq "work"].value"#,
            json!("+1 555 0101"),
        );
        put(r#"phoneNumbers[type eq "fax"].value"#, json!("+1 555 0102"));
        for (sub, v) in [
            ("formatted", "100 Universal City Plaza"),
            ("streetAddress", "100 Universal City Plaza"),
            ("locality", "Hollywood"),
            ("region", "CA"),
            ("postalCode", "91608"),
            ("country", "US"),
        ] {
            put(&format!(r#"addresses[type eq "work"].{sub}"#), json!(v));
        }
        for attr in [
            "department",
            "division",
            "employeeNumber",
            "costCenter",
            "organization",
        ] {
            put(&format!("{ENT}:{attr}"), json!(format!("{attr}-1")));
        }
        put(
            &format!("{ENT}:manager"),
            json!("26118915-6090-4610-87e4-49d8ca9f808d"),
        );
        put(&format!("{CUSTOM}:license"), json!("premium"));
        a
    }

    #[test]
    fn rich_attribute_set_round_trips() {
        let attrs = rich();
        let mut body = user_resource(&attrs);
        body["id"] = json!("2819c223");
        body["meta"] = json!({"resourceType": "User", "location": "https://x/Users/2819c223"});
        let (id, back) = flatten_user(&body);
        assert_eq!(id, "2819c223");
        assert_eq!(back, attrs);
    }

    #[test]
    fn post_body_has_entra_shape() {
        let body = user_resource_with(&rich(), false);
        assert_eq!(body["schemas"], json!([CORE_USER_SCHEMA, ENT]));
        assert_eq!(
            body["emails"],
            json!([
                {"type": "other", "value": "babs@home.example"},
                {"type": "work", "value": "bjensen@example.com", "primary": true},
            ])
        );
        assert_eq!(
            body[ENT]["manager"],
            json!({"value": "26118915-6090-4610-87e4-49d8ca9f808d"})
        );
        assert_eq!(body[CUSTOM]["license"], json!("premium"));
        assert_eq!(body["name"]["givenName"], json!("Barbara"));
        assert_eq!(body["active"], json!(true));
        assert_eq!(body.as_object().unwrap().keys().next().unwrap(), "schemas");
        let listed = user_resource(&rich());
        assert_eq!(listed["schemas"], json!([CORE_USER_SCHEMA, ENT, CUSTOM]));
    }

    #[test]
    fn active_is_always_a_boolean_and_nulls_are_never_sent() {
        let mut a = Attrs::new();
        a.insert("userName".into(), json!("u"));
        a.insert("active".into(), json!("False"));
        a.insert("title".into(), Value::Null);
        let body = user_resource(&a);
        assert_eq!(
            body,
            json!({"schemas": [CORE_USER_SCHEMA], "userName": "u", "active": false})
        );
    }

    #[test]
    fn flatten_tolerates_what_real_servers_return() {
        let resource = json!({
            "schemas": [CORE_USER_SCHEMA],
            "id": 17,
            "userName": "u",
            "active": "True",
            "title": null,
            "addresses": null,
            "groups": [{"value": "g1", "display": "Group"}],
            "roles": [{"primary": true, "value": "Admin", "type": "WindowsAzureActiveDirectoryRole"}],
            "emails": [{"value": "untyped@x"}],
            (ENT): {"manager": {"value": "m1", "displayName": "Boss"}, "department": null},
        });
        let (id, attrs) = flatten_user(&resource);
        assert_eq!(id, "17");
        let expected: Attrs = [
            ("userName".to_string(), json!("u")),
            ("active".to_string(), json!(true)),
            (
                r#"roles[type eq "WindowsAzureActiveDirectoryRole"].value"#.to_string(),
                json!("Admin"),
            ),
            (format!("{ENT}:manager"), json!("m1")),
        ]
        .into_iter()
        .collect();
        assert_eq!(attrs, expected);
    }

    #[test]
    fn keys_with_multibyte_characters_near_the_start_are_read() {
        // Found by the `scim_path` fuzz target: a key such as "dm!\u{7c8}i" in a target's
        // answer panicked while checking for a `urn:` prefix.
        let (_, attrs) = flatten_user(&json!({"id": "1", "dm!\u{7c8}i": "x", "éé": {"a": 1}}));
        assert_eq!(attrs["dm!\u{7c8}i"], json!("x"));
        assert_eq!(attrs["éé.a"], json!(1));
    }

    #[test]
    fn primary_role_paths_round_trip() {
        let mut a = Attrs::new();
        a.insert(r#"roles[primary eq "True"].value"#.into(), json!("Admin"));
        let body = user_resource(&a);
        assert_eq!(body["roles"], json!([{"primary": true, "value": "Admin"}]));
        assert_eq!(flatten_user(&body).1, a);
    }
}
