//! Map: a source user and the job's mappings give the attributes the target should hold.
//!
//! Entra's rules: nulls are never sent (an attribute without a value is absent), a default
//! value applies only on create, and "Only during object creation" mappings are left out of
//! updates.

use scimsync_config::{Apply, Mapping, MappingValue};
use scimsync_core::{Attrs, ErrorCode, SourceUser};
use serde_json::Value;
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct MapError {
    pub code: ErrorCode,
    pub message: String,
}

/// The target attributes for `user`. With `on_create`, create-only mappings and defaults
/// apply too.
pub fn map_user(
    user: &SourceUser,
    mappings: &[Mapping],
    on_create: bool,
) -> Result<Attrs, MapError> {
    let mut out = Attrs::new();
    for m in mappings {
        if m.apply == Apply::CreateOnly && !on_create {
            continue;
        }
        let value = match &m.value {
            MappingValue::Direct { source } => {
                user.attrs.get(source).filter(|v| !is_empty(v)).cloned()
            }
            MappingValue::Constant { value } => Some(Value::String(value.clone())),
            MappingValue::Expression { .. } => {
                return Err(MapError {
                    code: ErrorCode::ConfigInvalid,
                    message: format!(
                        "mapping for {}: expressions are not supported yet",
                        m.target
                    ),
                });
            }
            MappingValue::None => None,
        };
        let value = match value {
            Some(v) => Some(v),
            None if on_create => m.default.as_ref().map(|d| Value::String(d.clone())),
            None => None,
        };
        match value {
            Some(v) => {
                out.insert(m.target.clone(), typed(&m.target, v));
            }
            None if m.required && on_create => {
                return Err(MapError {
                    code: ErrorCode::MandatoryFieldsMissing,
                    message: format!(
                        "required attribute {} has no value for {}",
                        m.target,
                        user.display()
                    ),
                });
            }
            None => {}
        }
    }
    Ok(out)
}

/// Values are typed to the target schema where the schema is fixed: `active` is a boolean.
/// A multi-valued source (e.g. `businessPhones`) feeding a single-valued path sends its first
/// value.
fn typed(target: &str, v: Value) -> Value {
    let v = match v {
        Value::Array(mut items) if !items.is_empty() => items.swap_remove(0),
        other => other,
    };
    if target == "active"
        && let Value::String(s) = &v
    {
        if s.eq_ignore_ascii_case("true") {
            return Value::Bool(true);
        }
        if s.eq_ignore_ascii_case("false") {
            return Value::Bool(false);
        }
    }
    v
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// Matching attributes with their values, in precedence order (1 first). Paths without a
/// value for this object are left out.
pub fn matching_keys(mappings: &[Mapping], attrs: &Attrs) -> Vec<(String, String)> {
    let mut keyed: Vec<(u32, &Mapping)> = mappings
        .iter()
        .filter_map(|m| m.matching.map(|p| (p, m)))
        .collect();
    keyed.sort_by_key(|(p, _)| *p);
    keyed
        .into_iter()
        .filter_map(|(_, m)| {
            let v = attrs.get(&m.target)?;
            let s = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            Some((m.target.clone(), s))
        })
        .collect()
}

/// The Entra source attributes the mappings read, for the source's `$select`.
pub fn source_attributes(mappings: &[Mapping]) -> Vec<String> {
    let mut names: Vec<String> = mappings
        .iter()
        .filter_map(|m| match &m.value {
            MappingValue::Direct { source } => Some(source.clone()),
            _ => None,
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// A stable hash of a representation: SHA-256 over its canonical JSON (keys sorted).
pub fn hash_attrs(attrs: &Attrs) -> String {
    let canonical = serde_json::to_vec(attrs).unwrap_or_default();
    let digest = Sha256::digest(&canonical);
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(target: &str, value: MappingValue) -> Mapping {
        Mapping {
            target: target.into(),
            value,
            matching: None,
            apply: Apply::Always,
            default: None,
            required: false,
            line: 1,
        }
    }

    fn direct(target: &str, source: &str) -> Mapping {
        m(
            target,
            MappingValue::Direct {
                source: source.into(),
            },
        )
    }

    fn user(attrs: serde_json::Value) -> SourceUser {
        let attrs = attrs.as_object().unwrap().clone().into_iter().collect();
        SourceUser {
            id: "u1".into(),
            attrs,
        }
    }

    #[test]
    fn direct_and_constant_values_are_mapped_and_nulls_never_sent() {
        let maps = vec![
            direct("userName", "userPrincipalName"),
            direct("title", "jobTitle"),
            m(
                "preferredLanguage",
                MappingValue::Constant {
                    value: "en-US".into(),
                },
            ),
        ];
        let u = user(json!({"userPrincipalName": "a@x", "jobTitle": null}));
        let out = map_user(&u, &maps, true).unwrap();
        assert_eq!(out.get("userName"), Some(&json!("a@x")));
        assert_eq!(out.get("preferredLanguage"), Some(&json!("en-US")));
        assert!(!out.contains_key("title"), "null must not be sent");
    }

    #[test]
    fn default_applies_on_create_only() {
        let mut dept = direct(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
            "department",
        );
        dept.default = Some("Unknown".into());
        let u = user(json!({}));
        let key = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department";
        assert_eq!(
            map_user(&u, std::slice::from_ref(&dept), true)
                .unwrap()
                .get(key),
            Some(&json!("Unknown"))
        );
        assert_eq!(map_user(&u, &[dept], false).unwrap().get(key), None);
    }

    #[test]
    fn create_only_mappings_are_left_out_of_updates() {
        let mut title = direct("title", "jobTitle");
        title.apply = Apply::CreateOnly;
        let u = user(json!({"jobTitle": "Engineer"}));
        assert!(
            map_user(&u, std::slice::from_ref(&title), true)
                .unwrap()
                .contains_key("title")
        );
        assert!(!map_user(&u, &[title], false).unwrap().contains_key("title"));
    }

    #[test]
    fn required_attribute_without_value_fails_the_create() {
        let mut mail = direct("emails[type eq \"work\"].value", "mail");
        mail.required = true;
        let err = map_user(&user(json!({})), &[mail], true).unwrap_err();
        assert_eq!(err.code, ErrorCode::MandatoryFieldsMissing);
        assert!(err.message.contains("emails[type eq \"work\"].value"));
    }

    #[test]
    fn multi_valued_source_gives_its_first_value_and_active_is_boolean() {
        let maps = vec![
            direct("phoneNumbers[type eq \"work\"].value", "businessPhones"),
            m(
                "active",
                MappingValue::Constant {
                    value: "True".into(),
                },
            ),
        ];
        let out = map_user(
            &user(json!({"businessPhones": ["+1 555", "+2"]})),
            &maps,
            true,
        )
        .unwrap();
        assert_eq!(
            out.get("phoneNumbers[type eq \"work\"].value"),
            Some(&json!("+1 555"))
        );
        assert_eq!(out.get("active"), Some(&json!(true)));
    }

    #[test]
    fn matching_keys_follow_precedence_and_skip_missing_values() {
        let mut a = direct("userName", "userPrincipalName");
        a.matching = Some(2);
        let mut b = direct("externalId", "mailNickname");
        b.matching = Some(1);
        let mut c = direct("emails[type eq \"work\"].value", "mail");
        c.matching = Some(3);
        let attrs: Attrs = [
            ("userName".to_string(), json!("u@x")),
            ("externalId".to_string(), json!("u")),
        ]
        .into();
        assert_eq!(
            matching_keys(&[a, b, c], &attrs),
            vec![
                ("externalId".to_string(), "u".to_string()),
                ("userName".to_string(), "u@x".to_string())
            ]
        );
    }

    #[test]
    fn hash_changes_with_any_value_and_not_with_insertion_order() {
        let a: Attrs = [("x".to_string(), json!("1")), ("y".to_string(), json!("2"))].into();
        let mut b = Attrs::new();
        b.insert("y".into(), json!("2"));
        b.insert("x".into(), json!("1"));
        assert_eq!(hash_attrs(&a), hash_attrs(&b));
        b.insert("x".into(), json!("3"));
        assert_ne!(hash_attrs(&a), hash_attrs(&b));
    }
}
