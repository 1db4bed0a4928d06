//! Map: a source user and the job's mappings give the attributes the target should hold.
//!
//! Entra's rules: nulls are never sent (an attribute without a value is absent), a default
//! value applies only on create, and "Only during object creation" mappings are left out of
//! updates.
//!
//! Mapping is pure: time comes in as `now`, and the expressions are parsed once into a
//! [`CompiledMappings`] that the caller owns and passes to every user (no global cache). The
//! free functions taking `&[Mapping]` parse on every call; they are kept for callers that map
//! one object (`scimsync eval`, provision on demand).

use chrono::{DateTime, Utc};
use scimsync_config::{Apply, Mapping, MappingValue};
use scimsync_core::{Attrs, ErrorCode, SourceUser};
use scimsync_expr::{Context, Expr, ExprError, Outcome};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::borrow::Cow;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct MapError {
    pub code: ErrorCode,
    pub message: String,
}

/// A job's mappings with their expressions parsed once. Build it when the job is loaded (or
/// once per cycle) and map every user through it: parsing per user would dominate a large
/// cycle. Owned, `Send + Sync`, cheap to share behind an `Arc`.
#[derive(Debug, Clone)]
pub struct CompiledMappings {
    mappings: Vec<Mapping>,
    /// Index-aligned with `mappings`: the parsed expression of an Expression mapping (or why
    /// it does not parse), `None` for the other kinds.
    exprs: Vec<Option<Result<Expr, ExprError>>>,
}

impl CompiledMappings {
    pub fn new(mappings: &[Mapping]) -> CompiledMappings {
        let exprs = mappings
            .iter()
            .map(|m| match &m.value {
                MappingValue::Expression { text } => Some(scimsync_expr::parse(text)),
                _ => None,
            })
            .collect();
        CompiledMappings {
            mappings: mappings.to_vec(),
            exprs,
        }
    }

    /// The mappings this was built from.
    pub fn mappings(&self) -> &[Mapping] {
        &self.mappings
    }

    /// The target attributes for `user`. With `on_create`, create-only mappings and defaults
    /// apply too. `now` is the expressions' `Now()`; on create it also makes the
    /// `Guid()`/`RandomString()` seed fresh (see [`map_user`]).
    pub fn map_user(
        &self,
        user: &SourceUser,
        on_create: bool,
        now: DateTime<Utc>,
    ) -> Result<Attrs, MapError> {
        map_with(
            user,
            &self.mappings,
            Parsed::Ready(&self.exprs),
            on_create,
            now,
        )
    }

    /// For mappings whose expression is a `SelectUniqueValue`, the candidate values in order
    /// (only evaluated on create, as Entra does).
    pub fn unique_candidates(
        &self,
        user: &SourceUser,
        now: DateTime<Utc>,
    ) -> Vec<(String, Vec<Value>)> {
        unique_with(user, &self.mappings, Parsed::Ready(&self.exprs), now)
    }

    /// The Entra source attributes the mappings read, for the source's `$select`.
    pub fn source_attributes(&self) -> Vec<String> {
        attributes_with(&self.mappings, Parsed::Ready(&self.exprs))
    }

    /// Matching attributes with their values, in precedence order; see [`matching_keys`].
    pub fn matching_keys(&self, attrs: &Attrs) -> Vec<(String, String)> {
        matching_keys(&self.mappings, attrs)
    }
}

/// Where an expression's parse tree comes from: a [`CompiledMappings`], or parsed on the spot
/// by the one-shot free functions.
#[derive(Clone, Copy)]
enum Parsed<'a> {
    Ready(&'a [Option<Result<Expr, ExprError>>]),
    OnTheFly,
}

impl<'a> Parsed<'a> {
    fn get(self, index: usize, text: &str) -> Result<Cow<'a, Expr>, ExprError> {
        match self {
            Parsed::Ready(exprs) => match exprs.get(index) {
                Some(Some(Ok(e))) => Ok(Cow::Borrowed(e)),
                Some(Some(Err(e))) => Err(e.clone()),
                _ => scimsync_expr::parse(text).map(Cow::Owned),
            },
            Parsed::OnTheFly => scimsync_expr::parse(text).map(Cow::Owned),
        }
    }
}

/// The target attributes for `user`. With `on_create`, create-only mappings and defaults
/// apply too.
///
/// `now` is the expressions' `Now()`. It also seeds `Guid()`/`RandomString()`: stable per
/// user on updates (so an "Always" mapping does not change every cycle), mixed with `now` on
/// create (so generated values differ between creates; pass the real time there).
///
/// Parses the expressions on every call: to map many users, build a [`CompiledMappings`]
/// once and use [`CompiledMappings::map_user`].
pub fn map_user(
    user: &SourceUser,
    mappings: &[Mapping],
    on_create: bool,
    now: DateTime<Utc>,
) -> Result<Attrs, MapError> {
    map_with(user, mappings, Parsed::OnTheFly, on_create, now)
}

fn map_with(
    user: &SourceUser,
    mappings: &[Mapping],
    parsed: Parsed<'_>,
    on_create: bool,
    now: DateTime<Utc>,
) -> Result<Attrs, MapError> {
    let mut out = Attrs::new();
    for (i, m) in mappings.iter().enumerate() {
        if m.apply == Apply::CreateOnly && !on_create {
            continue;
        }
        let value = match &m.value {
            MappingValue::Expression { text } => {
                match evaluate(user, m, parsed.get(i, text), on_create, now)? {
                    Evaluated::Ignore => continue,
                    Evaluated::Value(v) => v,
                }
            }
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

/// The Entra source attributes the mappings read, for the source's `$select`. Parses the
/// expressions; [`CompiledMappings::source_attributes`] reuses its parse.
pub fn source_attributes(mappings: &[Mapping]) -> Vec<String> {
    attributes_with(mappings, Parsed::OnTheFly)
}

fn attributes_with(mappings: &[Mapping], parsed: Parsed<'_>) -> Vec<String> {
    let mut names: Vec<String> = mappings
        .iter()
        .enumerate()
        .flat_map(|(i, m)| match &m.value {
            MappingValue::Direct { source } => vec![source.clone()],
            MappingValue::Expression { text } => parsed
                .get(i, text)
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

/// A seed for `Guid()`/`RandomString()`: stable per user on updates (so an "Always" mapping
/// does not change every cycle), mixed with the caller's `now` on create (so generated values
/// differ from one create to the next). The same inputs always give the same seed.
fn seed(user: &SourceUser, on_create: bool, now: DateTime<Utc>) -> u64 {
    let digest = Sha256::digest(user.id.as_bytes());
    let stable = u64::from_le_bytes(digest[..8].try_into().unwrap_or([0; 8]));
    if on_create {
        let nanos = now
            .timestamp_nanos_opt()
            .unwrap_or_else(|| now.timestamp_micros().wrapping_mul(1000));
        stable ^ (nanos as u64).rotate_left(17)
    } else {
        stable
    }
}

fn evaluate(
    user: &SourceUser,
    m: &Mapping,
    expr: Result<Cow<'_, Expr>, ExprError>,
    on_create: bool,
    now: DateTime<Utc>,
) -> Result<Evaluated, MapError> {
    let fail = |message: String| MapError {
        code: ErrorCode::ExpressionFailed,
        message,
    };
    let expr =
        expr.map_err(|e| fail(format!("mapping for {} (line {}): {e}", m.target, m.line)))?;
    let ctx = Context {
        attrs: &user.attrs,
        now,
        seed: seed(user, on_create, now),
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
/// (only evaluated on create, as Entra does). Parses the expressions on every call; see
/// [`CompiledMappings::unique_candidates`].
pub fn unique_candidates(
    user: &SourceUser,
    mappings: &[Mapping],
    now: DateTime<Utc>,
) -> Vec<(String, Vec<Value>)> {
    unique_with(user, mappings, Parsed::OnTheFly, now)
}

fn unique_with(
    user: &SourceUser,
    mappings: &[Mapping],
    parsed: Parsed<'_>,
    now: DateTime<Utc>,
) -> Vec<(String, Vec<Value>)> {
    mappings
        .iter()
        .enumerate()
        .filter_map(|(i, m)| {
            let MappingValue::Expression { text } = &m.value else {
                return None;
            };
            let expr = parsed.get(i, text).ok()?;
            let ctx = Context {
                attrs: &user.attrs,
                now,
                seed: seed(user, true, now),
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
    fn compiled_mappings_map_like_the_one_shot_functions() {
        let mut upn = direct("userName", "userPrincipalName");
        upn.matching = Some(1);
        let maps = vec![
            upn,
            expr(
                "active",
                "Switch([IsSoftDeleted], , \"False\", \"True\", \"True\", \"False\")",
            ),
            expr("name.formatted", "Join(\" \", [givenName], [surname])"),
            expr(
                "externalId",
                "SelectUniqueValue(Join(\"\", [givenName], [surname]), [mailNickname])",
            ),
            expr("id2", "Guid()"),
        ];
        let compiled = CompiledMappings::new(&maps);
        fn shareable<T: Send + Sync>(_: &T) {}
        shareable(&compiled);
        assert_eq!(compiled.mappings(), &maps[..]);
        let u = user(json!({
            "userPrincipalName": "ada@x", "IsSoftDeleted": false, "givenName": "Ada",
            "surname": "Lovelace", "mailNickname": "ada"
        }));
        for on_create in [true, false] {
            assert_eq!(
                compiled.map_user(&u, on_create, t0()),
                map_user(&u, &maps, on_create, t0())
            );
        }
        assert_eq!(
            compiled.unique_candidates(&u, t0()),
            unique_candidates(&u, &maps, t0())
        );
        assert_eq!(
            compiled.unique_candidates(&u, t0()),
            vec![(
                "externalId".to_string(),
                vec![json!("AdaLovelace"), json!("ada")]
            )]
        );
        assert_eq!(compiled.source_attributes(), source_attributes(&maps));
        let attrs = compiled.map_user(&u, true, t0()).unwrap();
        assert_eq!(
            compiled.matching_keys(&attrs),
            vec![("userName".to_string(), "ada@x".to_string())]
        );
    }

    #[test]
    fn a_bad_expression_fails_the_same_way_compiled_or_not() {
        let maps = vec![expr("title", "Join(")];
        let u = user(json!({}));
        let compiled = CompiledMappings::new(&maps).map_user(&u, true, t0());
        assert_eq!(compiled, map_user(&u, &maps, true, t0()));
        let err = compiled.unwrap_err();
        assert_eq!(err.code, ErrorCode::ExpressionFailed);
        assert!(
            err.message.starts_with("mapping for title (line 1): "),
            "{}",
            err.message
        );
    }

    #[test]
    fn mapping_is_a_function_of_its_inputs() {
        // Generated values depend only on the user, `on_create` and `now`: the same inputs
        // give the same output, an update is stable across time, a create at another instant
        // gets a fresh value.
        let maps = CompiledMappings::new(&[expr("password", "RandomString(16, 3, 3, 3, 3, \"\")")]);
        let u = user(json!({}));
        let later = t0() + chrono::Duration::nanoseconds(1);
        let get = |on_create, now| maps.map_user(&u, on_create, now).unwrap()["password"].clone();
        assert_eq!(get(true, t0()), get(true, t0()));
        assert_ne!(get(true, t0()), get(true, later));
        assert_eq!(get(false, t0()), get(false, later));
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
