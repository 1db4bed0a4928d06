//! Integration tests of scimsync-expr, in one test binary: parsing, checking, evaluation of
//! every documented Entra example, and property tests.

mod check;
mod eval;
mod parse;
mod props;

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use scimsync_expr::{Context, Outcome, Value, eval, parse};

pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2021, 7, 2, 15, 33, 38).unwrap()
}

pub fn attrs(json: serde_json::Value) -> BTreeMap<String, serde_json::Value> {
    match json {
        serde_json::Value::Object(map) => map.into_iter().collect(),
        other => panic!("attrs must be an object, got {other}"),
    }
}

/// Evaluates `text` against the given source attributes with a fixed clock and seed.
pub fn outcome(text: &str, json: serde_json::Value) -> Result<Outcome, String> {
    let expr = parse(text).map_err(|e| e.to_string())?;
    let attrs = attrs(json);
    let ctx = Context {
        attrs: &attrs,
        now: now(),
        seed: 42,
        default_domain: Some("contoso.com"),
    };
    eval(&expr, &ctx).map_err(|e| e.to_string())
}

pub fn value(text: &str, json: serde_json::Value) -> Value {
    match outcome(text, json) {
        Ok(Outcome::Value(v)) => v,
        other => panic!("{text}: expected a value, got {other:?}"),
    }
}

/// The string Entra would send (`None` for null).
pub fn text(expr: &str, json: serde_json::Value) -> Option<String> {
    value(expr, json).to_text()
}

pub fn err(text: &str, json: serde_json::Value) -> String {
    match outcome(text, json) {
        Err(e) => e,
        other => panic!("{text}: expected an error, got {other:?}"),
    }
}
