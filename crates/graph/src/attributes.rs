//! Entra source attribute names ↔ Microsoft Graph user properties.
//!
//! Entra's mapping UI names source attributes the way Azure AD Graph and AD did
//! (`objectId`, `mobile`, `telephoneNumber`, `physicalDeliveryOfficeName`, `extensionAttribute3`);
//! Microsoft Graph v1.0 names them differently and nests some. This module holds the one table
//! that translates between the two, used both to build `$select` and to read values back.

use serde_json::{Map, Value};

/// Where an Entra source attribute lives on a Graph `user` object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GraphProperty {
    /// A top-level property whose value is used as is (`surname`, `otherMails`,
    /// `extension_{appId}_{name}`).
    Property(String),
    /// The first element of a collection property (`telephoneNumber` ← `businessPhones[0]`).
    FirstOf(&'static str),
    /// A member of a complex property (`extensionAttribute3` ←
    /// `onPremisesExtensionAttributes.extensionAttribute3`).
    Member {
        property: &'static str,
        member: String,
    },
}

impl GraphProperty {
    /// The top-level property to put in `$select`.
    pub fn select(&self) -> &str {
        match self {
            GraphProperty::Property(p) => p,
            GraphProperty::FirstOf(p) => p,
            GraphProperty::Member { property, .. } => property,
        }
    }

    /// The value on a Graph user object, or `None` when Graph has no value (`null`, absent,
    /// an empty collection).
    pub fn read(&self, user: &Map<String, Value>) -> Option<Value> {
        let value = match self {
            GraphProperty::Property(p) => user.get(p.as_str())?.clone(),
            GraphProperty::FirstOf(p) => user
                .get(*p)?
                .as_array()?
                .iter()
                .find(|v| !v.is_null())?
                .clone(),
            GraphProperty::Member { property, member } => {
                user.get(*property)?.get(member.as_str())?.clone()
            }
        };
        has_value(&value).then_some(value)
    }
}

fn has_value(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Array(a) => !a.is_empty(),
        _ => true,
    }
}

/// Entra names that map to a top-level Graph property of another (or the same) name.
/// Matching is ASCII case-insensitive, as in Entra's expression language.
const PLAIN: &[(&str, &str)] = &[
    ("objectId", "id"),
    ("userPrincipalName", "userPrincipalName"),
    ("displayName", "displayName"),
    ("givenName", "givenName"),
    ("surname", "surname"),
    ("mail", "mail"),
    ("mailNickname", "mailNickname"),
    ("mobile", "mobilePhone"),
    ("facsimileTelephoneNumber", "faxNumber"),
    ("jobTitle", "jobTitle"),
    ("department", "department"),
    ("employeeId", "employeeId"),
    ("employeeType", "employeeType"),
    ("employeeHireDate", "employeeHireDate"),
    ("companyName", "companyName"),
    ("city", "city"),
    ("state", "state"),
    ("country", "country"),
    ("postalCode", "postalCode"),
    ("streetAddress", "streetAddress"),
    ("physicalDeliveryOfficeName", "officeLocation"),
    ("preferredLanguage", "preferredLanguage"),
    ("usageLocation", "usageLocation"),
    ("accountEnabled", "accountEnabled"),
    ("otherMails", "otherMails"),
    ("proxyAddresses", "proxyAddresses"),
    ("userType", "userType"),
    ("createdDateTime", "createdDateTime"),
    ("onPremisesImmutableId", "onPremisesImmutableId"),
    ("onPremisesSamAccountName", "onPremisesSamAccountName"),
    (
        "onPremisesSecurityIdentifier",
        "onPremisesSecurityIdentifier",
    ),
    ("onPremisesDistinguishedName", "onPremisesDistinguishedName"),
    ("onPremisesDomainName", "onPremisesDomainName"),
    ("onPremisesUserPrincipalName", "onPremisesUserPrincipalName"),
    ("onPremisesSyncEnabled", "onPremisesSyncEnabled"),
    // The UPN as Graph stores it. Entra rewrites a B2B guest's `userPrincipalName`
    // (`alias_domain#EXT#@tenant` → `alias@domain`) and keeps the raw value here; scimsync does
    // not rewrite yet, so both read Graph's `userPrincipalName`.
    ("originalUserPrincipalName", "userPrincipalName"),
];

// Source attributes of the reference that cannot be read as a property of the user object:
// - `manager`: a navigation property, not a value `$select` returns; `read.rs` reads it with
//   `$expand=manager($select=id)` (GETs) and `manager@delta` (delta rounds) as the manager's
//   object id, which the engine resolves to a target id in its reference pass;
// - `SamAccountName`: listed as unavailable to Entra itself (on-premises only; the Graph
//   property is `onPremisesSamAccountName`, which is read);
// - `IsSoftDeleted`, `appRoleAssignments`: computed, see [`COMPUTED_ATTRIBUTES`];
// - `deletedDateTime`: not a source attribute; soft-deleted users come from `deletedItems`
//   and read as `IsSoftDeleted`.

/// Names of `onPremisesExtensionAttributes` members, so the table can hand out `&'static str`.
const EXTENSION_ATTRIBUTES: [&str; 15] = [
    "extensionAttribute1",
    "extensionAttribute2",
    "extensionAttribute3",
    "extensionAttribute4",
    "extensionAttribute5",
    "extensionAttribute6",
    "extensionAttribute7",
    "extensionAttribute8",
    "extensionAttribute9",
    "extensionAttribute10",
    "extensionAttribute11",
    "extensionAttribute12",
    "extensionAttribute13",
    "extensionAttribute14",
    "extensionAttribute15",
];

/// Entra source attributes that are not Graph properties: the engine or this crate computes
/// them. `IsSoftDeleted` comes from the deleted-items list; `appRoleAssignments` is filled by
/// [`crate::GraphClient`] when the scope is "assigned users".
pub const COMPUTED_ATTRIBUTES: &[&str] = &["IsSoftDeleted", "appRoleAssignments"];

/// Whether `entra_name` is a computed source attribute (see [`COMPUTED_ATTRIBUTES`]).
pub fn is_computed_attribute(entra_name: &str) -> bool {
    COMPUTED_ATTRIBUTES
        .iter()
        .any(|c| c.eq_ignore_ascii_case(entra_name))
}

/// Whether `entra_name` is a reference source attribute (`manager`): read as the referenced
/// user's object id, written by the engine's reference pass as that user's target id.
pub fn is_reference_attribute(entra_name: &str) -> bool {
    entra_name.eq_ignore_ascii_case("manager")
}

/// The Graph property behind an Entra source attribute name, or `None` when there is none.
///
/// `None` covers unknown names (so configuration validation can report them), the computed
/// attributes ([`COMPUTED_ATTRIBUTES`]) and `manager`, which is a navigation property
/// (read through `$expand` / `manager@delta`, see `read.rs`), not a value on the user.
pub fn graph_property(entra_name: &str) -> Option<GraphProperty> {
    if let Some((_, graph)) = PLAIN
        .iter()
        .find(|(entra, _)| entra.eq_ignore_ascii_case(entra_name))
    {
        return Some(GraphProperty::Property((*graph).to_string()));
    }
    let lower = entra_name.to_ascii_lowercase();
    match lower.as_str() {
        "telephonenumber" => return Some(GraphProperty::FirstOf("businessPhones")),
        "employeeorgdata.division" => {
            return Some(member("employeeOrgData", "division"));
        }
        "employeeorgdata.costcenter" => {
            return Some(member("employeeOrgData", "costCenter"));
        }
        _ => {}
    }
    if let Some(n) = lower.strip_prefix("extensionattribute") {
        // "extensionAttribute03" is not a name Entra knows: only canonical digits.
        if !n.starts_with('0')
            && let Ok(i) = n.parse::<usize>()
            && (1..=15).contains(&i)
        {
            return Some(GraphProperty::Member {
                property: "onPremisesExtensionAttributes",
                member: EXTENSION_ATTRIBUTES[i - 1].to_string(),
            });
        }
        return None;
    }
    if is_directory_extension(entra_name) {
        // Case-sensitive and passed through verbatim: `$select` and the JSON key are the name
        // as written in the mapping.
        return Some(GraphProperty::Property(entra_name.to_string()));
    }
    None
}

/// Entra source attribute names of **groups** → Graph `group` properties.
const GROUP_PLAIN: &[(&str, &str)] = &[
    ("objectId", "id"),
    ("displayName", "displayName"),
    ("mailNickname", "mailNickname"),
    ("description", "description"),
    ("mail", "mail"),
    ("securityEnabled", "securityEnabled"),
    ("mailEnabled", "mailEnabled"),
    ("groupTypes", "groupTypes"),
    ("proxyAddresses", "proxyAddresses"),
    (
        "onPremisesSecurityIdentifier",
        "onPremisesSecurityIdentifier",
    ),
    ("onPremisesSamAccountName", "onPremisesSamAccountName"),
];

/// The Graph property behind an Entra source attribute name of a group, or `None` for names
/// groups do not have. Matching is ASCII case-insensitive.
pub fn graph_group_property(entra_name: &str) -> Option<GraphProperty> {
    if is_directory_extension(entra_name) {
        // As for users: case-sensitive, selected and read back by the name as written.
        return Some(GraphProperty::Property(entra_name.to_string()));
    }
    GROUP_PLAIN
        .iter()
        .find(|(entra, _)| entra.eq_ignore_ascii_case(entra_name))
        .map(|(_, graph)| GraphProperty::Property((*graph).to_string()))
}

fn member(property: &'static str, member: &str) -> GraphProperty {
    GraphProperty::Member {
        property,
        member: member.to_string(),
    }
}

/// Whether `name` is a directory extension, `extension_{appId without hyphens}_{name}`:
/// `extension_[0-9a-f]{32}_[A-Za-z0-9_]+`, case-sensitive (Entra and Graph write the app id in
/// lowercase). Such a source attribute is selected from Graph and read back by exactly this name;
/// its value is a string, number, boolean or string array (the extension's `dataType`).
pub fn is_directory_extension(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("extension_") else {
        return false;
    };
    let Some((app, attr)) = rest.split_once('_') else {
        return false;
    };
    app.len() == 32
        && app.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
        && !attr.is_empty()
        && attr.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn renamed_and_nested_attributes_translate() {
        assert_eq!(graph_property("objectId").unwrap().select(), "id");
        assert_eq!(graph_property("mobile").unwrap().select(), "mobilePhone");
        assert_eq!(
            graph_property("physicalDeliveryOfficeName")
                .unwrap()
                .select(),
            "officeLocation"
        );
        assert_eq!(
            graph_property("facsimileTelephoneNumber").unwrap().select(),
            "faxNumber"
        );
        assert_eq!(
            graph_property("telephoneNumber"),
            Some(GraphProperty::FirstOf("businessPhones"))
        );
        assert_eq!(
            graph_property("extensionAttribute15").unwrap().select(),
            "onPremisesExtensionAttributes"
        );
        assert_eq!(
            graph_property("employeeOrgData.costCenter")
                .unwrap()
                .select(),
            "employeeOrgData"
        );
        // Entra's expression language ignores case.
        assert_eq!(graph_property("Surname").unwrap().select(), "surname");
    }

    #[test]
    fn unknown_computed_and_navigation_names_have_no_property() {
        for name in [
            "IsSoftDeleted",
            "appRoleAssignments",
            "manager",
            "extensionAttribute0",
            "extensionAttribute16",
            "extensionAttribute03",
            "extension_notanappid_x",
            "extension_x",
            "extension_B7D8E648520F41D3B9C0FDEB91768A0A_upper",
            "extension_b7d8e648520f41d3b9c0fdeb91768a0a_",
            "extension_b7d8e648520f41d3b9c0fdeb91768a0a_bad-name",
            "Extension_b7d8e648520f41d3b9c0fdeb91768a0a_x",
            "noSuchAttribute",
            "",
        ] {
            assert_eq!(graph_property(name), None, "{name}");
        }
        assert!(is_computed_attribute("isSoftDeleted"));
        assert!(!is_computed_attribute("manager"));
    }

    #[test]
    fn group_attributes_translate() {
        assert_eq!(graph_group_property("objectId").unwrap().select(), "id");
        assert_eq!(
            graph_group_property("SecurityEnabled").unwrap().select(),
            "securityEnabled"
        );
        assert_eq!(graph_group_property("surname"), None);
    }

    #[test]
    fn directory_extensions_pass_through() {
        let name = "extension_b7d8e648520f41d3b9c0fdeb91768a0a_jobGroupTracker";
        assert_eq!(
            graph_property(name),
            Some(GraphProperty::Property(name.to_string()))
        );
        let name = "extension_b7d8e648520f41d3b9c0fdeb91768a0a_permanent_pensionable";
        assert!(is_directory_extension(name));
        assert_eq!(graph_property(name).unwrap().select(), name);
        // Read by exactly the name as written: a key differing in case is another property.
        let u = user(json!({
            "extension_b7d8e648520f41d3b9c0fdeb91768a0a_jobGroupTracker": "E4",
            "extension_b7d8e648520f41d3b9c0fdeb91768a0a_level": 7,
            "extension_b7d8e648520f41d3b9c0fdeb91768a0a_permanent_pensionable": true,
            "extension_b7d8e648520f41d3b9c0fdeb91768a0a_skills": ["a", "b"],
        }));
        for (name, want) in [
            (
                "extension_b7d8e648520f41d3b9c0fdeb91768a0a_jobGroupTracker",
                Some(json!("E4")),
            ),
            (
                "extension_b7d8e648520f41d3b9c0fdeb91768a0a_jobgrouptracker",
                None,
            ),
            (
                "extension_b7d8e648520f41d3b9c0fdeb91768a0a_level",
                Some(json!(7)),
            ),
            (
                "extension_b7d8e648520f41d3b9c0fdeb91768a0a_permanent_pensionable",
                Some(json!(true)),
            ),
            (
                "extension_b7d8e648520f41d3b9c0fdeb91768a0a_skills",
                Some(json!(["a", "b"])),
            ),
        ] {
            assert_eq!(graph_property(name).unwrap().read(&u), want, "{name}");
        }
    }

    #[test]
    fn the_reference_attributes_added_with_issue_13_translate() {
        assert_eq!(
            graph_property("onPremisesSyncEnabled").unwrap().select(),
            "onPremisesSyncEnabled"
        );
        assert_eq!(
            graph_property("originalUserPrincipalName")
                .unwrap()
                .select(),
            "userPrincipalName"
        );
    }

    #[test]
    fn reading_skips_nulls_and_empty_collections() {
        let u = user(json!({
            "businessPhones": [],
            "mobilePhone": null,
            "otherMails": [],
            "onPremisesExtensionAttributes": {"extensionAttribute3": null},
            "employeeOrgData": null,
        }));
        for name in [
            "telephoneNumber",
            "mobile",
            "otherMails",
            "extensionAttribute3",
            "employeeOrgData.division",
        ] {
            assert_eq!(graph_property(name).unwrap().read(&u), None, "{name}");
        }
        let u = user(json!({"businessPhones": ["+1 555 0100", "+1 555 0101"]}));
        assert_eq!(
            graph_property("telephoneNumber").unwrap().read(&u),
            Some(json!("+1 555 0100"))
        );
    }
}
