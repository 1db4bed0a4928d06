//! Runtime values and their conversions to and from the JSON the engine handles.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::dates;

/// A value produced by evaluating an expression.
///
/// Entra's expression language is string-typed; `Bool`, `Int` and `Date` keep more precise types
/// until the value leaves the evaluator, and [`Value::to_text`] gives the string Entra would send
/// (`True`/`False`, decimal digits, `M/d/yyyy h:mm:ss tt` UTC).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Str(String),
    Bool(bool),
    Int(i64),
    Date(DateTime<Utc>),
    /// A multi-valued attribute (or the result of `Split`, `RemoveDuplicates`, …).
    List(Vec<Value>),
    /// A complex value: an element of `[appRoleAssignments]` or a SCIM role produced by
    /// `AppRoleAssignmentsComplex`.
    Object(BTreeMap<String, Value>),
}

impl Value {
    /// Reads a source attribute value. Numbers that are not integers keep their text, because
    /// the language has no floating-point type (`Len(42568.75)` counts characters).
    pub fn from_json(json: &serde_json::Value) -> Value {
        match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Str(n.to_string()),
            },
            serde_json::Value::String(s) => Value::Str(s.clone()),
            serde_json::Value::Array(items) => {
                Value::List(items.iter().map(Value::from_json).collect())
            }
            serde_json::Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), Value::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// The JSON sent to a target. Dates become Entra's `M/d/yyyy h:mm:ss tt` UTC text.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Str(s) => serde_json::Value::String(s.clone()),
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Date(d) => serde_json::Value::String(dates::entra_text(d)),
            Value::List(items) => {
                serde_json::Value::Array(items.iter().map(Value::to_json).collect())
            }
            Value::Object(map) => serde_json::Value::Object(
                map.iter().map(|(k, v)| (k.clone(), v.to_json())).collect(),
            ),
        }
    }

    /// Null, `""` or an empty multi-valued attribute.
    pub fn is_null_or_empty(&self) -> bool {
        match self {
            Value::Null => true,
            Value::Str(s) => s.is_empty(),
            Value::List(items) => items.is_empty(),
            _ => false,
        }
    }

    /// The string form Entra would send, `None` for null (and for an empty list). A one-item list
    /// is its item; longer lists are joined with commas (functions that need a single value
    /// report an error instead of calling this).
    pub fn to_text(&self) -> Option<String> {
        match self {
            Value::Null => None,
            Value::Str(s) => Some(s.clone()),
            Value::Bool(b) => Some(bool_text(*b).to_string()),
            Value::Int(i) => Some(i.to_string()),
            Value::Date(d) => Some(dates::entra_text(d)),
            Value::List(items) => match items.as_slice() {
                [] => None,
                [one] => one.to_text(),
                _ => Some(
                    items
                        .iter()
                        .filter_map(Value::to_text)
                        .collect::<Vec<_>>()
                        .join(","),
                ),
            },
            Value::Object(_) => Some(self.to_json().to_string()),
        }
    }
}

/// .NET's `Boolean.ToString()`, which is what Entra compares and sends.
pub(crate) fn bool_text(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Str(s) => {
                let mut out = String::new();
                crate::ast::write_quoted(&mut out, s)?;
                f.write_str(&out)
            }
            Value::List(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Value::Object(_) => write!(f, "{}", self.to_json()),
            other => f.write_str(&other.to_text().unwrap_or_default()),
        }
    }
}
