//! Diff: the minimal changes from what the target last confirmed to what it should hold.
//! Pure; no I/O.

use scimsync_core::{Attrs, Change, ChangeOp};

/// Changes that bring `confirmed` to `desired`. Attributes absent from `desired` are left
/// alone: Entra never clears a target value because the source was cleared. A path the target
/// has no confirmed value for is an `Add`, otherwise a `Replace`.
///
/// For a typed multi-valued path (`addresses[type eq "work"].postalCode`) the entry is what
/// exists or not: once any sub-attribute of that entry was confirmed, a new sub-attribute is
/// a `Replace` into the entry, since an `Add` would create a second "work" entry.
pub fn diff(confirmed: &Attrs, desired: &Attrs) -> Vec<Change> {
    desired
        .iter()
        .filter(|(path, value)| confirmed.get(*path) != Some(*value))
        .map(|(path, value)| Change {
            op: if exists(confirmed, path) {
                ChangeOp::Replace
            } else {
                ChangeOp::Add
            },
            path: path.clone(),
            value: value.clone(),
        })
        .collect()
}

/// [`diff`], plus a `Remove` for every clearable path the target holds but the source no
/// longer gives (the job's `clear_on_null` opt-in; Entra cannot do this).
pub fn diff_clearing(
    confirmed: &Attrs,
    desired: &Attrs,
    clearable: &dyn Fn(&str) -> bool,
) -> Vec<Change> {
    let mut changes = diff(confirmed, desired);
    changes.extend(
        confirmed
            .keys()
            .filter(|path| !desired.contains_key(*path) && clearable(path))
            .map(|path| Change {
                op: ChangeOp::Remove,
                path: path.clone(),
                value: serde_json::Value::Null,
            }),
    );
    changes
}

fn exists(confirmed: &Attrs, path: &str) -> bool {
    if confirmed.contains_key(path) {
        return true;
    }
    match path.find("].") {
        Some(end) => {
            let entry = &path[..=end];
            confirmed.keys().any(|k| k.starts_with(entry))
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attrs(pairs: &[(&str, serde_json::Value)]) -> Attrs {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn unchanged_gives_nothing() {
        let a = attrs(&[("userName", json!("a")), ("active", json!(true))]);
        assert!(diff(&a, &a).is_empty());
    }

    #[test]
    fn changed_value_is_a_replace_and_new_value_an_add() {
        let old = attrs(&[("userName", json!("a")), ("title", json!("Dev"))]);
        let new = attrs(&[
            ("userName", json!("a")),
            ("title", json!("Lead")),
            ("nickName", json!("Babs")),
        ]);
        let d = diff(&old, &new);
        assert_eq!(
            d,
            vec![
                Change {
                    op: ChangeOp::Add,
                    path: "nickName".into(),
                    value: json!("Babs")
                },
                Change {
                    op: ChangeOp::Replace,
                    path: "title".into(),
                    value: json!("Lead")
                },
            ]
        );
    }

    #[test]
    fn a_new_sub_attribute_of_a_known_typed_entry_is_a_replace() {
        let old = attrs(&[(
            "addresses[type eq \"work\"].streetAddress",
            json!("1 Main St"),
        )]);
        let new = attrs(&[
            (
                "addresses[type eq \"work\"].streetAddress",
                json!("1 Main St"),
            ),
            ("addresses[type eq \"work\"].postalCode", json!("12345")),
            ("addresses[type eq \"other\"].formatted", json!("x")),
        ]);
        let d = diff(&old, &new);
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].path, "addresses[type eq \"other\"].formatted");
        assert_eq!(d[0].op, ChangeOp::Add);
        assert_eq!(d[1].op, ChangeOp::Replace);
    }

    #[test]
    fn with_the_opt_in_a_cleared_source_value_is_removed_from_the_target() {
        let old = attrs(&[("title", json!("Dev")), ("nickName", json!("create-only"))]);
        let d = diff_clearing(&old, &Attrs::new(), &|p| p == "title");
        assert_eq!(
            d,
            vec![Change {
                op: ChangeOp::Remove,
                path: "title".into(),
                value: serde_json::Value::Null
            }]
        );
    }

    #[test]
    fn a_cleared_source_value_never_clears_the_target() {
        let old = attrs(&[("title", json!("Dev"))]);
        assert!(diff(&old, &Attrs::new()).is_empty());
    }
}
