//! Group membership PATCH bodies, in the shapes Entra sends (reference §1.6–1.7).
//!
//! All ids of one call go in ONE request, as Entra batches them and the gallery checklist
//! asks endpoints to accept. Ids are the members' *target* ids.

use crate::patch::Dialect;
use crate::path::{PATCH_OP_SCHEMA, escape};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// How member removal is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberRemoval {
    /// One op per id: `{"op":"remove","path":"members[value eq \"id\"]"}` — Entra's form with
    /// `aadOptscim062020`, and the only one scim2-server accepts.
    Filter,
    /// One op for all ids: `{"op":"Remove","path":"members","value":[{"value":"id"},…]}` —
    /// Entra's default form; strict servers (scim2-server) answer 400.
    ValueList,
}

impl MemberRemoval {
    /// What Entra does in `dialect`: [`Dialect::Rfc`] → `Filter`,
    /// [`Dialect::EntraDefault`] → `ValueList`.
    pub fn for_dialect(dialect: Dialect) -> MemberRemoval {
        match dialect {
            Dialect::Rfc => MemberRemoval::Filter,
            Dialect::EntraDefault => MemberRemoval::ValueList,
        }
    }
}

/// The PatchOp adding `member_ids` to a group, all in one op.
///
/// [`Dialect::Rfc`]: `{"op":"add","path":"members","value":[{"value":"id"},…]}`.
/// [`Dialect::EntraDefault`]: `{"op":"Add","path":"members","value":[{"$ref":null,"value":"id"},…]}`,
/// byte for byte Entra's example. Repeated ids are sent once.
pub fn add_members_body(member_ids: &[String], dialect: Dialect) -> Value {
    let op = match dialect {
        Dialect::Rfc => "add",
        Dialect::EntraDefault => "Add",
    };
    let ops =
        vec![json!({"op": op, "path": "members", "value": member_values(member_ids, dialect)})];
    json!({"schemas": [PATCH_OP_SCHEMA], "Operations": ops})
}

/// The PatchOp removing `member_ids` from a group, in the `removal` form; the op name is
/// capitalised in [`Dialect::EntraDefault`] (`Remove`) and lowercase in [`Dialect::Rfc`].
/// With [`MemberRemoval::ValueList`] and `EntraDefault`, entries carry `"$ref": null` as in
/// Entra's add example ("removal is identical with `Remove`"). Repeated ids are sent once.
pub fn remove_members_body(
    member_ids: &[String],
    dialect: Dialect,
    removal: MemberRemoval,
) -> Value {
    let op = match dialect {
        Dialect::Rfc => "remove",
        Dialect::EntraDefault => "Remove",
    };
    let ops: Vec<Value> = match removal {
        MemberRemoval::Filter => unique(member_ids)
            .map(|id| json!({"op": op, "path": format!("members[value eq \"{}\"]", escape(id))}))
            .collect(),
        MemberRemoval::ValueList => {
            vec![json!({"op": op, "path": "members", "value": member_values(member_ids, dialect)})]
        }
    };
    json!({"schemas": [PATCH_OP_SCHEMA], "Operations": ops})
}

fn member_values(member_ids: &[String], dialect: Dialect) -> Vec<Value> {
    unique(member_ids)
        .map(|id| match dialect {
            Dialect::Rfc => json!({"value": id}),
            Dialect::EntraDefault => json!({"$ref": null, "value": id}),
        })
        .collect()
}

/// The ids in order, each once: a repeated member in one op is a 400 on some servers.
fn unique(ids: &[String]) -> impl Iterator<Item = &str> {
    ids.iter()
        .enumerate()
        .filter(|(i, id)| !ids[..*i].contains(id))
        .map(|(_, id)| id.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn add_matches_entra_and_rfc() {
        assert_eq!(
            add_members_body(&ids(&["f648f8d5ea4e4cd38e9c"]), Dialect::EntraDefault),
            json!({"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": "Add", "path": "members", "value": [{"$ref": null, "value": "f648f8d5ea4e4cd38e9c"}]}]})
        );
        assert_eq!(
            add_members_body(&ids(&["u1", "u2", "u1"]), Dialect::Rfc)["Operations"],
            json!([{"op": "add", "path": "members", "value": [{"value": "u1"}, {"value": "u2"}]}])
        );
    }

    #[test]
    fn removal_forms() {
        let two = ids(&["u1", "a\"b"]);
        assert_eq!(
            remove_members_body(&two, Dialect::Rfc, MemberRemoval::Filter)["Operations"],
            json!([
                {"op": "remove", "path": "members[value eq \"u1\"]"},
                {"op": "remove", "path": "members[value eq \"a\\\"b\"]"},
            ])
        );
        assert_eq!(
            remove_members_body(&two, Dialect::EntraDefault, MemberRemoval::ValueList)["Operations"],
            json!([{"op": "Remove", "path": "members", "value": [{"$ref": null, "value": "u1"}, {"$ref": null, "value": "a\"b"}]}])
        );
        assert_eq!(
            remove_members_body(&two, Dialect::Rfc, MemberRemoval::ValueList)["Operations"],
            json!([{"op": "remove", "path": "members", "value": [{"value": "u1"}, {"value": "a\"b"}]}])
        );
        assert_eq!(
            remove_members_body(&two, Dialect::EntraDefault, MemberRemoval::Filter)["Operations"]
                [0],
            json!({"op": "Remove", "path": "members[value eq \"u1\"]"})
        );
    }

    #[test]
    fn removal_default_follows_the_dialect() {
        assert_eq!(
            MemberRemoval::for_dialect(Dialect::Rfc),
            MemberRemoval::Filter
        );
        assert_eq!(
            MemberRemoval::for_dialect(Dialect::EntraDefault),
            MemberRemoval::ValueList
        );
    }
}
