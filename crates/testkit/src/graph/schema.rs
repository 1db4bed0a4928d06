//! Property tables for the Graph entity types the emulator serves, and `$select` handling.
//!
//! Graph matches `$select` names case-insensitively and answers with the canonical spelling; a
//! name that is not a property of the type is a 400. Plain GET/list fills selected-but-unset
//! properties with `null` (`[]` for collections), which is why each property carries a [`Kind`].

use serde_json::{Map, Value};

/// How an unset property is rendered on plain GET/list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `null` when unset.
    Scalar,
    /// `[]` when unset.
    Collection,
    /// `onPremisesExtensionAttributes`: an object with all 15 keys, each `null` when unset.
    ExtAttrs,
}

/// One entity type: its properties and its default `$select` set.
pub(crate) struct Schema {
    pub type_name: &'static str,
    pub props: &'static [(&'static str, Kind)],
    pub defaults: &'static [&'static str],
    /// Whether `extension_{appId}_{name}` directory extensions may be selected.
    pub extensions: bool,
}

use Kind::{Collection as C, ExtAttrs as X, Scalar as S};

/// `microsoft.graph.user` properties readable in a collection (the few that only a single GET
/// returns, such as `skills`, are left out, so selecting them in the emulator is a 400).
pub(crate) static USER: Schema = Schema {
    type_name: "microsoft.graph.user",
    props: &[
        ("id", S),
        ("accountEnabled", S),
        ("ageGroup", S),
        ("assignedLicenses", C),
        ("assignedPlans", C),
        ("businessPhones", C),
        ("city", S),
        ("companyName", S),
        ("consentProvidedForMinor", S),
        ("country", S),
        ("createdDateTime", S),
        ("creationType", S),
        ("deletedDateTime", S),
        ("department", S),
        ("displayName", S),
        ("employeeHireDate", S),
        ("employeeLeaveDateTime", S),
        ("employeeId", S),
        ("employeeOrgData", S),
        ("employeeType", S),
        ("externalUserState", S),
        ("externalUserStateChangeDateTime", S),
        ("faxNumber", S),
        ("givenName", S),
        ("identities", C),
        ("imAddresses", C),
        ("isResourceAccount", S),
        ("jobTitle", S),
        ("lastPasswordChangeDateTime", S),
        ("legalAgeGroupClassification", S),
        ("licenseAssignmentStates", C),
        ("mail", S),
        ("mailNickname", S),
        ("mobilePhone", S),
        ("officeLocation", S),
        ("onPremisesDistinguishedName", S),
        ("onPremisesDomainName", S),
        ("onPremisesExtensionAttributes", X),
        ("onPremisesImmutableId", S),
        ("onPremisesLastSyncDateTime", S),
        ("onPremisesProvisioningErrors", C),
        ("onPremisesSamAccountName", S),
        ("onPremisesSecurityIdentifier", S),
        ("onPremisesSyncEnabled", S),
        ("onPremisesUserPrincipalName", S),
        ("otherMails", C),
        ("passwordPolicies", S),
        ("passwordProfile", S),
        ("postalCode", S),
        ("preferredDataLocation", S),
        ("preferredLanguage", S),
        ("provisionedPlans", C),
        ("proxyAddresses", C),
        ("securityIdentifier", S),
        ("showInAddressList", S),
        ("signInSessionsValidFromDateTime", S),
        ("state", S),
        ("streetAddress", S),
        ("surname", S),
        ("usageLocation", S),
        ("userPrincipalName", S),
        ("userType", S),
    ],
    defaults: &[
        "businessPhones",
        "displayName",
        "givenName",
        "jobTitle",
        "mail",
        "mobilePhone",
        "officeLocation",
        "preferredLanguage",
        "surname",
        "userPrincipalName",
        "id",
    ],
    extensions: true,
};

/// `microsoft.graph.group` properties.
pub(crate) static GROUP: Schema = Schema {
    type_name: "microsoft.graph.group",
    props: &[
        ("id", S),
        ("assignedLabels", C),
        ("classification", S),
        ("createdDateTime", S),
        ("deletedDateTime", S),
        ("description", S),
        ("displayName", S),
        ("expirationDateTime", S),
        ("groupTypes", C),
        ("isAssignableToRole", S),
        ("mail", S),
        ("mailEnabled", S),
        ("mailNickname", S),
        ("membershipRule", S),
        ("membershipRuleProcessingState", S),
        ("onPremisesDomainName", S),
        ("onPremisesLastSyncDateTime", S),
        ("onPremisesNetBiosName", S),
        ("onPremisesProvisioningErrors", C),
        ("onPremisesSamAccountName", S),
        ("onPremisesSecurityIdentifier", S),
        ("onPremisesSyncEnabled", S),
        ("preferredDataLocation", S),
        ("preferredLanguage", S),
        ("proxyAddresses", C),
        ("renewedDateTime", S),
        ("resourceBehaviorOptions", C),
        ("resourceProvisioningOptions", C),
        ("securityEnabled", S),
        ("securityIdentifier", S),
        ("serviceProvisioningErrors", C),
        ("theme", S),
        ("uniqueName", S),
        ("visibility", S),
    ],
    defaults: &[
        "id",
        "deletedDateTime",
        "classification",
        "createdDateTime",
        "description",
        "displayName",
        "expirationDateTime",
        "groupTypes",
        "isAssignableToRole",
        "mail",
        "mailEnabled",
        "mailNickname",
        "membershipRule",
        "membershipRuleProcessingState",
        "onPremisesLastSyncDateTime",
        "onPremisesSecurityIdentifier",
        "onPremisesSyncEnabled",
        "preferredDataLocation",
        "preferredLanguage",
        "proxyAddresses",
        "renewedDateTime",
        "resourceBehaviorOptions",
        "resourceProvisioningOptions",
        "securityEnabled",
        "theme",
        "visibility",
        "onPremisesProvisioningErrors",
    ],
    extensions: true,
};

/// `microsoft.graph.appRoleAssignment` properties (all of them are in the default set).
pub(crate) static APP_ROLE_ASSIGNMENT: Schema = Schema {
    type_name: "microsoft.graph.appRoleAssignment",
    props: &[
        ("id", S),
        ("deletedDateTime", S),
        ("appRoleId", S),
        ("createdDateTime", S),
        ("principalDisplayName", S),
        ("principalId", S),
        ("principalType", S),
        ("resourceDisplayName", S),
        ("resourceId", S),
    ],
    defaults: &[
        "id",
        "deletedDateTime",
        "appRoleId",
        "createdDateTime",
        "principalDisplayName",
        "principalId",
        "principalType",
        "resourceDisplayName",
        "resourceId",
    ],
    extensions: false,
};

impl Schema {
    /// The canonical spelling of `name`, if it is a property of this type.
    pub fn canonical(&self, name: &str) -> Option<String> {
        if let Some((p, _)) = self
            .props
            .iter()
            .find(|(p, _)| p.eq_ignore_ascii_case(name))
        {
            return Some((*p).to_string());
        }
        if self.extensions && is_extension_name(name) {
            return Some(name.to_string());
        }
        None
    }

    /// How an unset value of `name` renders (extensions and unknown names are scalars).
    pub fn kind(&self, name: &str) -> Kind {
        self.props
            .iter()
            .find(|(p, _)| *p == name)
            .map_or(Kind::Scalar, |(_, k)| *k)
    }

    /// The value shown for a property that has none.
    pub fn empty_value(&self, name: &str) -> Value {
        match self.kind(name) {
            Kind::Scalar => Value::Null,
            Kind::Collection => Value::Array(Vec::new()),
            Kind::ExtAttrs => Value::Object(ext_attrs_template()),
        }
    }
}

/// `extension_{32 hex digits}_{name}`: a directory extension property name.
pub(crate) fn is_extension_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("extension_") else {
        return false;
    };
    let Some((app, prop)) = rest.split_once('_') else {
        return false;
    };
    app.len() == 32 && app.bytes().all(|b| b.is_ascii_hexdigit()) && !prop.is_empty()
}

/// All 15 `extensionAttributeN` keys set to `null`.
pub(crate) fn ext_attrs_template() -> Map<String, Value> {
    (1..=15)
        .map(|i| (format!("extensionAttribute{i}"), Value::Null))
        .collect()
}

/// A parsed `$select`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Select {
    /// No `$select`: the type's default set.
    Default,
    /// Canonical property names, in request order, without duplicates.
    Props(Vec<String>),
}

impl Select {
    /// Parses a `$select` value against `schema`; `Err` carries the first unknown name.
    pub fn parse(raw: Option<&str>, schema: &Schema) -> Result<Select, String> {
        let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty()) else {
            return Ok(Select::Default);
        };
        let mut out: Vec<String> = Vec::new();
        for name in raw.split(',').map(str::trim) {
            let canon = schema.canonical(name).ok_or_else(|| name.to_string())?;
            if !out.contains(&canon) {
                out.push(canon);
            }
        }
        Ok(Select::Props(out))
    }

    /// The property names to render for `schema`.
    pub fn names<'a>(&'a self, schema: &'a Schema) -> Vec<&'a str> {
        match self {
            Select::Default => schema.defaults.to_vec(),
            Select::Props(p) => p.iter().map(String::as_str).collect(),
        }
    }

    /// The `(a,b,c)` suffix of `@odata.context`, empty for the default set.
    pub fn context_suffix(&self) -> String {
        match self {
            Select::Default => String::new(),
            Select::Props(p) => format!("({})", p.join(",")),
        }
    }
}

/// Renders an object for plain GET/list: every selected name appears, unset ones as `null`/`[]`.
///
/// `lookup` answers the stored value of a property (`None` when never set or cleared).
pub(crate) fn render(
    schema: &Schema,
    select: &Select,
    lookup: impl Fn(&str) -> Option<Value>,
) -> Map<String, Value> {
    let mut out = Map::new();
    for name in select.names(schema) {
        let value = match lookup(name) {
            Some(Value::Null) | None => schema.empty_value(name),
            Some(Value::Object(m)) if schema.kind(name) == Kind::ExtAttrs => {
                let mut full = ext_attrs_template();
                for (k, v) in m {
                    full.insert(k, v);
                }
                Value::Object(full)
            }
            Some(v) => v,
        };
        out.insert(name.to_string(), value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_is_case_insensitive_and_canonicalises() {
        let s = Select::parse(Some("ID, userprincipalname,id"), &USER).unwrap();
        assert_eq!(
            s,
            Select::Props(vec!["id".into(), "userPrincipalName".into()])
        );
        assert_eq!(Select::parse(Some("id,bogus"), &USER), Err("bogus".into()));
        assert!(
            Select::parse(
                Some("extension_b7d8e648520f41d3b9c0fdeb91768a0a_costCenter"),
                &USER
            )
            .is_ok()
        );
        assert!(Select::parse(Some("extension_b7_x"), &USER).is_err());
    }

    #[test]
    fn unset_values_render_as_null_or_empty() {
        let s = Select::parse(
            Some("mobilePhone,businessPhones,onPremisesExtensionAttributes"),
            &USER,
        )
        .unwrap();
        let out = render(&USER, &s, |_| None);
        assert_eq!(out["mobilePhone"], Value::Null);
        assert_eq!(out["businessPhones"], Value::Array(vec![]));
        assert_eq!(
            out["onPremisesExtensionAttributes"]["extensionAttribute15"],
            Value::Null
        );
    }
}
