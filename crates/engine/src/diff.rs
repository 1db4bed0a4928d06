//! Diff: the minimal changes from what the target last confirmed to what it should hold.
//! Pure; no I/O.

use scimsync_core::{Attrs, Change, ChangeOp};

/// Changes that bring `confirmed` to `desired`. Attributes absent from `desired` are left
/// alone: Entra never clears a target value because the source was cleared. A path the target
/// has no confirmed value for is an `Add`, otherwise a `Replace`.
pub fn diff(confirmed: &Attrs, desired: &Attrs) -> Vec<Change> {
    desired
        .iter()
        .filter(|(path, value)| confirmed.get(*path) != Some(*value))
        .map(|(path, value)| Change {
            op: if confirmed.contains_key(path) { ChangeOp::Replace } else { ChangeOp::Add },
            path: path.clone(),
            value: value.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attrs(pairs: &[(&str, serde_json::Value)]) -> Attrs {
        pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    #[test]
    fn unchanged_gives_nothing() {
        let a = attrs(&[("userName", json!("a")), ("active", json!(true))]);
        assert!(diff(&a, &a).is_empty());
    }

    #[test]
    fn changed_value_is_a_replace_and_new_value_an_add() {
        let old = attrs(&[("userName", json!("a")), ("title", json!("Dev"))]);
        let new = attrs(&[("userName", json!("a")), ("title", json!("Lead")), ("nickName", json!("Babs"))]);
        let d = diff(&old, &new);
        assert_eq!(
            d,
            vec![
                Change { op: ChangeOp::Add, path: "nickName".into(), value: json!("Babs") },
                Change { op: ChangeOp::Replace, path: "title".into(), value: json!("Lead") },
            ]
        );
    }

    #[test]
    fn a_cleared_source_value_never_clears_the_target() {
        let old = attrs(&[("title", json!("Dev"))]);
        assert!(diff(&old, &Attrs::new()).is_empty());
    }
}
