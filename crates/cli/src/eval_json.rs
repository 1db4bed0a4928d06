//! `scimsync eval --json`: the same steps and results as the text, as one JSON document.

use crate::eval::{context, describe};
use scimsync_config::{JobConfig, MappingValue};
use scimsync_core::SourceUser;
use scimsync_expr::{Expr, Outcome, Value};
use serde_json::{Value as Json, json};

fn steps(expr: &Expr, user: &SourceUser) -> Vec<Json> {
    scimsync_expr::trace(expr, &context(user))
        .into_iter()
        .map(|(step, v)| match v {
            Ok(v) => json!({"step": step, "value": v.to_json()}),
            Err(e) => json!({"step": step, "error": e}),
        })
        .collect()
}

fn outcome(o: &Outcome) -> Json {
    match o {
        Outcome::Value(v) => json!({"value": v.to_json(), "sent": !v.is_null_or_empty()}),
        Outcome::Ignore => json!({"value": null, "sent": false, "ignoreFlowIfNullOrEmpty": true}),
        Outcome::Unique(c) => json!({
            "selectUniqueValue": c.iter().map(Value::to_json).collect::<Vec<_>>(),
        }),
    }
}

/// One expression: its steps, and the result or the error at line:column.
pub fn one_expression(text: &str, expr: &Expr, user: &SourceUser) -> (Json, u8) {
    let mut doc = json!({"expression": text, "steps": steps(expr, user)});
    match scimsync_expr::eval(expr, &context(user)) {
        Ok(o) => {
            doc["result"] = outcome(&o);
            (doc, 0)
        }
        Err(e) => {
            doc["error"] = json!(e.to_string());
            (doc, 1)
        }
    }
}

/// Every user mapping of the job with its steps and value, and the attributes a create sends.
pub fn whole_mapping(cfg: &JobConfig, user: &SourceUser) -> (Json, u8) {
    let mut mappings = Vec::new();
    for m in &cfg.users.mappings {
        let mut entry = json!({"target": m.target, "line": m.line, "mapping": describe(m)});
        match &m.value {
            MappingValue::Direct { source } => {
                entry["result"] = json!({"value": user.attrs.get(source).cloned()});
            }
            MappingValue::Constant { value } => entry["result"] = json!({"value": value}),
            MappingValue::Expression { text } => match scimsync_expr::parse(text) {
                Ok(expr) => {
                    entry["steps"] = json!(steps(&expr, user));
                    match scimsync_expr::eval(&expr, &context(user)) {
                        Ok(o) => entry["result"] = outcome(&o),
                        Err(e) => entry["error"] = json!(e.to_string()),
                    }
                }
                Err(e) => entry["error"] = json!(e.to_string()),
            },
            MappingValue::None => entry["result"] = json!({"value": null}),
        }
        if m.default.is_some() {
            entry["default"] = json!(m.default);
        }
        mappings.push(entry);
    }
    let mut doc = json!({"job": cfg.name, "mappings": mappings});
    match scimsync_mapping::map_user(user, &cfg.users.mappings, true, chrono::Utc::now()) {
        Ok(attrs) => {
            doc["attributesOnCreate"] = json!(attrs);
            (doc, 0)
        }
        Err(e) => {
            doc["error"] = json!(format!("the user would not be created: {e}"));
            (doc, 1)
        }
    }
}
