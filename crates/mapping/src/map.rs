//! Map: a source user and the job's mappings give the attributes the target should hold.
//!
//! Entra's rules: nulls are never sent (an attribute without a value is absent), a default
//! value applies only on create, and "Only during object creation" mappings are left out of
//! updates.

use chrono::{DateTime, Utc};
use scimsync_config::{Apply, Mapping, MappingValue};
use scimsync_core::{Attrs, ErrorCode, SourceUser};
use scimsync_expr::{Context, Expr, Outcome};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

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
    now: DateTime<Utc>,
) -> Result<Attrs, MapError> {
    let mut out = Attrs::new();
    for m in mappings {
        if m.apply == Apply::CreateOnly && !on_create {
            continue;
        }
        let value = match &m.value {
            MappingValue::Expression { text } => match evaluate(user, m, text, on_create, now)? {
                Evaluated::Ignore => continue,
                Evaluated::Value(v) => v,
            },
            MappingValue::Direct { source } => {
                user.attrs.get(source).filter(|v| !is_empty(v)).cloned()
            }
            MappingValue::Constant { value } => Some(Value::String(value.clone())),
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
        .flat_map(|m| match &m.value {
            MappingValue::Direct { source } => vec![source.clone()],
            MappingValue::Expression { text } => compiled(text)
                .map(|e| scimsync_expr::attributes(&e))
                .unwrap_or_default(),
            _ => Vec::new(),
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

enum Evaluated {
    /// `IgnoreFlowIfNullOrEmpty`: the attribute is not sent at all.
    Ignore,
    Value(Option<Value>),
}

/// Parsed expressions, by text: jobs evaluate the same few expressions for every user.
fn compiled(text: &str) -> Result<Arc<Expr>, scimsync_expr::ExprError> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Expr>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(e) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(text) {
        return Ok(e.clone());
    }
    let e = Arc::new(scimsync_expr::parse(text)?);
    cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(text.to_string(), e.clone());
    Ok(e)
}

/// A seed for `Guid()`/`RandomString()`: stable per user on updates (so an "Always" mapping
/// does not change every cycle), fresh on create (so generated secrets are not predictable).
fn seed(user: &SourceUser, on_create: bool) -> u64 {
    let digest = Sha256::digest(user.id.as_bytes());
    let stable = u64::from_le_bytes(digest[..8].try_into().unwrap_or([0; 8]));
    if on_create {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        stable ^ (nanos as u64).rotate_left(17)
    } else {
        stable
    }
}

fn evaluate(
    user: &SourceUser,
    m: &Mapping,
    text: &str,
    on_create: bool,
    now: DateTime<Utc>,
) -> Result<Evaluated, MapError> {
    let fail = |message: String| MapError {
        code: ErrorCode::ExpressionFailed,
        message,
    };
    let expr = compiled(text)
        .map_err(|e| fail(format!("mapping for {} (line {}): {e}", m.target, m.line)))?;
    let ctx = Context {
        attrs: &user.attrs,
        now,
        seed: seed(user, on_create),
        default_domain: None,
    };
    match scimsync_expr::eval(&expr, &ctx) {
        Ok(Outcome::Ignore) => Ok(Evaluated::Ignore),
        Ok(Outcome::Value(v)) => Ok(Evaluated::Value(Some(v.to_json()).filter(|j| !is_empty(j)))),
        // SelectUniqueValue: the first candidate; the engine checks them against the target
        // before a create (see `unique_candidates`).
        Ok(Outcome::Unique(c)) => Ok(Evaluated::Value(
            c.first().map(|v| v.to_json()).filter(|j| !is_empty(j)),
        )),
        Err(e) => Err(fail(format!("mapping for {}: {e}", m.target))),
    }
}

/// For mappings whose expression is a `SelectUniqueValue`, the candidate values in order
/// (only evaluated on create, as Entra does).
pub fn unique_candidates(
    user: &SourceUser,
    mappings: &[Mapping],
    now: DateTime<Utc>,
) -> Vec<(String, Vec<Value>)> {
    mappings
        .iter()
        .filter_map(|m| {
            let MappingValue::Expression { text } = &m.value else {
                return None;
            };
            let expr = compiled(text).ok()?;
            let ctx = Context {
                attrs: &user.attrs,
                now,
                seed: seed(user, true),
                default_domain: None,
            };
            match scimsync_expr::eval(&expr, &ctx) {
                Ok(Outcome::Unique(c)) => Some((
                    m.target.clone(),
                    c.iter()
                        .map(|v| v.to_json())
                        .filter(|j| !is_empty(j))
                        .collect(),
                )),
                _ => None,
            }
        })
        .collect()
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

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
            .unwrap()
            .into()
    }

    fn expr(target: &str, text: &str) -> Mapping {
        m(target, MappingValue::Expression { text: text.into() })
    }

    #[test]
    fn entra_default_expressions_map_active_and_formatted_name() {
        let maps = vec![
            expr(
                "active",
                "Switch([IsSoftDeleted], , \"False\", \"True\", \"True\", \"False\")",
            ),
            expr("name.formatted", "Join(\" \", [givenName], [surname])"),
        ];
        let u = user(json!({"IsSoftDeleted": false, "givenName": "Ada", "surname": "Lovelace"}));
        let out = map_user(&u, &maps, true, t0()).unwrap();
        assert_eq!(
            out.get("active"),
            Some(&json!(true)),
            "the Switch's \"True\" is typed to a boolean"
        );
        assert_eq!(out.get("name.formatted"), Some(&json!("Ada Lovelace")));
        assert_eq!(
            source_attributes(&maps),
            vec!["IsSoftDeleted", "givenName", "surname"]
        );
    }

    #[test]
    fn ignore_flow_drops_the_attribute_and_a_failing_expression_fails_the_object() {
        let u = user(json!({"givenName": "Ada"}));
        let out = map_user(
            &u,
            &[expr("title", "IgnoreFlowIfNullOrEmpty([jobTitle])")],
            true,
            t0(),
        )
        .unwrap();
        assert!(!out.contains_key("title"));
        let err = map_user(
            &u,
            &[expr("title", "IIF([country]=\"US\", \"a\", \"b\")")],
            true,
            t0(),
        )
        .unwrap_err();
        assert_eq!(err.code, ErrorCode::ExpressionFailed);
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
        let out = map_user(&u, &maps, true, t0()).unwrap();
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
            map_user(&u, std::slice::from_ref(&dept), true, t0())
                .unwrap()
                .get(key),
            Some(&json!("Unknown"))
        );
        assert_eq!(map_user(&u, &[dept], false, t0()).unwrap().get(key), None);
    }

    #[test]
    fn create_only_mappings_are_left_out_of_updates() {
        let mut title = direct("title", "jobTitle");
        title.apply = Apply::CreateOnly;
        let u = user(json!({"jobTitle": "Engineer"}));
        assert!(
            map_user(&u, std::slice::from_ref(&title), true, t0())
                .unwrap()
                .contains_key("title")
        );
        assert!(
            !map_user(&u, &[title], false, t0())
                .unwrap()
                .contains_key("title")
        );
    }

    #[test]
    fn required_attribute_without_value_fails_the_create() {
        let mut mail = direct("emails[type eq \"work\"].value", "mail");
        mail.required = true;
        let err = map_user(&user(json!({})), &[mail], true, t0()).unwrap_err();
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
            t0(),
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
