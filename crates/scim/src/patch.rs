//! `[Change]` → SCIM PatchOp JSON, in the two forms Entra sends (reference §1.5–1.6).

use crate::path::{AttrPath, PATCH_OP_SCHEMA};
use crate::resource::{ManagerFormat, is_primary_entry, selector_value, wire_value};
use scimsync_core::{Change, ChangeOp};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// Which PatchOp form to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dialect {
    /// RFC 7644 form, Entra's behaviour with the `aadOptscim062020` flag (and what real servers
    /// such as scim2-server and SCIMMY accept): lowercase ops, boolean `active`, value-filter
    /// paths as their own op, a single other replace as `path` + `value`
    /// (`{"op":"replace","path":"active","value":false}`), several merged into one path-less
    /// `replace`.
    #[default]
    Rfc,
    /// Entra's default client: capitalised `Add`/`Replace`, one op per attribute with its
    /// path, `active` as the string `"True"`/`"False"`. For targets built against it.
    EntraDefault,
}

/// The PatchOp body for `changes`.
///
/// [`Dialect::Rfc`] (reference §1.6, `aadOptscim062020`): a `Replace` on a value-filter path
/// (`emails[type eq "work"].value`) is its own op; the other `Replace`s, when there are two or
/// more, join one path-less
/// `{"op":"replace","value":{"name.givenName": …, "urn:…:User:department": …}}` op, sent last;
/// a single one is `{"op":"replace","path":…,"value":…}` (the flag's disable:
/// `{"op":"replace","path":"active","value":false}`), also last.
/// An `Add` on a typed path adds an entry to the collection
/// (`{"op":"add","path":"emails","value":[{"type":"work","value":…,"primary":true}]}`), all
/// `Add`s for the same entry merged, because strict servers reject an add through a filter
/// that matches nothing. When the same change set also *replaces* a sub-attribute of that
/// entry, the entry exists and the `Add` keeps its filter path instead. Other `Add`s are
/// `{"op":"add","path":…,"value":…}`.
///
/// [`Dialect::EntraDefault`]: `{"op":"Add"|"Replace","path":…,"value":…}` per change.
///
/// In both, enterprise `manager` is sent as `{"value": id}` (see the crate docs).
pub fn patch_body(changes: &[Change], dialect: Dialect) -> Value {
    patch_body_with_manager(changes, dialect, ManagerFormat::Complex)
}

/// [`patch_body`], with enterprise `manager` rendered as `manager`.
pub fn patch_body_with_manager(
    changes: &[Change],
    dialect: Dialect,
    manager: ManagerFormat,
) -> Value {
    let ops = match dialect {
        Dialect::Rfc => rfc_ops(changes, manager),
        Dialect::EntraDefault => changes
            .iter()
            .filter(|c| c.op == ChangeOp::Remove || !c.value.is_null()) // nulls are never sent
            .map(|c| {
                let op = match c.op {
                    ChangeOp::Add => "Add",
                    ChangeOp::Replace => "Replace",
                    ChangeOp::Remove => return json!({"op": "Remove", "path": c.path}),
                };
                json!({"op": op, "path": c.path, "value": wire_value(&c.path, &c.value, true, manager)})
            })
            .collect(),
    };
    json!({"schemas": [PATCH_OP_SCHEMA], "Operations": ops})
}

fn rfc_ops(changes: &[Change], manager: ManagerFormat) -> Vec<Value> {
    // Entries (attr, filter attr, filter value) that this change set replaces into: they exist.
    let replaced: Vec<(&str, &str, String)> = changes
        .iter()
        .filter(|c| c.op == ChangeOp::Replace)
        .filter_map(|c| match AttrPath::parse(&c.path) {
            AttrPath::Filtered {
                attr,
                filter_attr,
                filter_value,
                ..
            } => Some((attr, filter_attr, filter_value)),
            _ => None,
        })
        .collect();

    let mut ops: Vec<Value> = Vec::new();
    // (attr, filter attr, filter value) → index in `ops` of the entry-adding op.
    let mut added_entries: Vec<((&str, &str, String), usize)> = Vec::new();
    let mut pathless = Map::new();

    for c in changes {
        if c.op == ChangeOp::Remove {
            ops.push(json!({"op": "remove", "path": c.path}));
            continue;
        }
        if c.value.is_null() {
            continue; // nulls are never sent
        }
        let value = wire_value(&c.path, &c.value, false, manager);
        let parsed = AttrPath::parse(&c.path);
        match (c.op, parsed) {
            (
                ChangeOp::Add,
                AttrPath::Filtered {
                    attr,
                    filter_attr,
                    filter_value,
                    sub,
                    ..
                },
            ) if !replaced
                .iter()
                .any(|(a, f, v)| *a == attr && *f == filter_attr && *v == filter_value) =>
            {
                let key = (attr, filter_attr, filter_value);
                let idx = match added_entries.iter().find(|(k, _)| *k == key) {
                    Some((_, idx)) => *idx,
                    None => {
                        let (attr, filter_attr, filter_value) = (key.0, key.1, key.2.clone());
                        let mut entry = Map::new();
                        entry.insert(
                            filter_attr.to_string(),
                            selector_value(filter_attr, &filter_value),
                        );
                        if is_primary_entry(attr, filter_attr, &filter_value) {
                            entry.insert("primary".into(), Value::Bool(true));
                        }
                        ops.push(json!({"op": "add", "path": attr, "value": [entry]}));
                        added_entries.push((key, ops.len() - 1));
                        ops.len() - 1
                    }
                };
                if let Some(entry) = ops[idx]["value"][0].as_object_mut() {
                    // Keep `primary` last, as in Entra's example.
                    let primary = entry.remove("primary");
                    entry.insert(AttrPath::filtered_sub(sub).to_string(), value);
                    if let Some(p) = primary {
                        entry.insert("primary".into(), p);
                    }
                }
            }
            (ChangeOp::Add, _) => {
                ops.push(json!({"op": "add", "path": c.path, "value": value}));
            }
            (ChangeOp::Replace, AttrPath::Filtered { .. }) => {
                ops.push(json!({"op": "replace", "path": c.path, "value": value}));
            }
            (ChangeOp::Replace, _) => {
                pathless.insert(c.path.clone(), value);
            }
            (ChangeOp::Remove, _) => {}
        }
    }
    // One attribute: `path` + `value`, as Entra's flagged disable; several: one path-less op.
    if pathless.len() == 1 {
        if let Some((path, value)) = pathless.into_iter().next() {
            ops.push(json!({"op": "replace", "path": path, "value": value}));
        }
    } else if !pathless.is_empty() {
        ops.push(json!({"op": "replace", "value": pathless}));
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::ENTERPRISE_USER_SCHEMA as ENT;

    fn ch(op: ChangeOp, path: &str, value: Value) -> Change {
        Change {
            op,
            path: path.to_string(),
            value,
        }
    }

    #[test]
    fn rfc_matches_the_reference_example() {
        // Reference §1.6, "Several attrs" with aadOptscim062020.
        let changes = [
            ch(ChangeOp::Replace, "displayName", json!("Bjfe")),
            ch(
                ChangeOp::Replace,
                r#"emails[type eq "work"].value"#,
                json!("TestMhvaes@test.microsoft.com"),
            ),
            ch(ChangeOp::Replace, "name.familyName", json!("Unua")),
            ch(ChangeOp::Replace, "name.givenName", json!("Kkom")),
            ch(
                ChangeOp::Replace,
                &format!("{ENT}:employeeNumber"),
                json!("Aklq"),
            ),
        ];
        let expected: Value = serde_json::from_str(
            r#"{
  "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
  "Operations": [
    {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "TestMhvaes@test.microsoft.com"},
    {"op": "replace", "value": {"displayName": "Bjfe", "name.familyName": "Unua", "name.givenName": "Kkom", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "Aklq"}}
  ]
}"#,
        )
        .unwrap();
        assert_eq!(patch_body(&changes, Dialect::Rfc), expected);
    }

    #[test]
    fn rfc_disable_add_string_and_department() {
        assert_eq!(
            patch_body(
                &[ch(ChangeOp::Replace, "active", json!("False"))],
                Dialect::Rfc
            )["Operations"],
            json!([{"op": "replace", "path": "active", "value": false}])
        );
        assert_eq!(
            patch_body(
                &[
                    ch(ChangeOp::Replace, "active", json!(false)),
                    ch(ChangeOp::Replace, "userName", json!("someone")),
                ],
                Dialect::Rfc
            )["Operations"],
            json!([{"op": "replace", "value": {"active": false, "userName": "someone"}}])
        );
        assert_eq!(
            patch_body(
                &[ch(ChangeOp::Add, "nickName", json!("Babs"))],
                Dialect::Rfc
            )["Operations"],
            json!([{"op": "add", "path": "nickName", "value": "Babs"}])
        );
        let dept = format!("{ENT}:department");
        assert_eq!(
            patch_body(
                &[ch(ChangeOp::Add, &dept, json!("Tech Infrastructure"))],
                Dialect::Rfc
            )["Operations"],
            json!([{"op": "add", "path": dept, "value": "Tech Infrastructure"}])
        );
    }

    #[test]
    fn rfc_add_on_a_typed_path_adds_one_entry() {
        let changes = [
            ch(
                ChangeOp::Add,
                r#"emails[type eq "work"].value"#,
                json!("x@y.z"),
            ),
            ch(
                ChangeOp::Add,
                r#"addresses[type eq "work"].locality"#,
                json!("Paris"),
            ),
            ch(
                ChangeOp::Add,
                r#"addresses[type eq "work"].postalCode"#,
                json!("75001"),
            ),
        ];
        assert_eq!(
            patch_body(&changes, Dialect::Rfc)["Operations"],
            json!([
                {"op": "add", "path": "emails", "value": [{"type": "work", "value": "x@y.z", "primary": true}]},
                {"op": "add", "path": "addresses", "value": [{"type": "work", "locality": "Paris", "postalCode": "75001"}]},
            ])
        );
    }

    #[test]
    fn rfc_add_into_an_entry_being_replaced_keeps_the_filter_path() {
        let changes = [
            ch(
                ChangeOp::Replace,
                r#"addresses[type eq "work"].locality"#,
                json!("Lyon"),
            ),
            ch(
                ChangeOp::Add,
                r#"addresses[type eq "work"].postalCode"#,
                json!("69001"),
            ),
        ];
        assert_eq!(
            patch_body(&changes, Dialect::Rfc)["Operations"],
            json!([
                {"op": "replace", "path": "addresses[type eq \"work\"].locality", "value": "Lyon"},
                {"op": "add", "path": "addresses[type eq \"work\"].postalCode", "value": "69001"},
            ])
        );
    }

    #[test]
    fn manager_is_complex_in_both_dialects() {
        let m = format!("{ENT}:manager");
        let c = [ch(ChangeOp::Replace, &m, json!("m-1"))];
        assert_eq!(
            patch_body(&c, Dialect::Rfc)["Operations"],
            json!([{"op": "replace", "path": m.clone(), "value": {"value": "m-1"}}])
        );
        assert_eq!(
            patch_body(&c, Dialect::EntraDefault)["Operations"],
            json!([{"op": "Replace", "path": m, "value": {"value": "m-1"}}])
        );
    }

    #[test]
    fn entra_default_matches_the_reference_examples() {
        let changes = [
            ch(
                ChangeOp::Replace,
                r#"emails[type eq "work"].value"#,
                json!("updatedEmail@microsoft.com"),
            ),
            ch(
                ChangeOp::Replace,
                "name.familyName",
                json!("updatedFamilyName"),
            ),
            ch(
                ChangeOp::Replace,
                "userName",
                json!("5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"),
            ),
        ];
        let expected: Value = serde_json::from_str(
            r#"{
  "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
  "Operations": [
    {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "updatedEmail@microsoft.com"},
    {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
    {"op": "Replace", "path": "userName", "value": "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"}
  ]
}"#,
        )
        .unwrap();
        assert_eq!(patch_body(&changes, Dialect::EntraDefault), expected);
        assert_eq!(
            patch_body(
                &[ch(ChangeOp::Replace, "active", json!(false))],
                Dialect::EntraDefault
            ),
            json!({"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": "Replace", "path": "active", "value": "False"}]})
        );
        assert_eq!(
            patch_body(
                &[ch(ChangeOp::Add, "nickName", json!("Babs"))],
                Dialect::EntraDefault
            )["Operations"],
            json!([{"op": "Add", "path": "nickName", "value": "Babs"}])
        );
    }
}
