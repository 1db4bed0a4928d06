//! The shape of a job file, checked on the parsed TOML tree before serde sees it.
//!
//! serde stops at the first unknown key or wrong type; this pass finds them all, reports each
//! at its own line:column, and prunes them so the typed pass and the semantic checks can still
//! report everything else in the same run. Messages name types, never values, so a secret
//! written with the wrong type cannot leak. The serde structs keep `deny_unknown_fields` as a
//! second guard; `tests::every_key_is_known_to_both_passes` keeps the two lists in step.

use std::collections::HashSet;
use std::ops::Range;
use toml::de::{DeTable, DeValue};

#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Str,
    /// A string holding a secret reference (only the type message differs).
    Secret,
    Int,
    Bool,
    Table(&'static [Field]),
    /// An array of tables (`[[users.mappings]]`, or an inline array of inline tables).
    Tables(&'static [Field]),
}

pub(crate) struct Field {
    name: &'static str,
    kind: Kind,
}

const fn f(name: &'static str, kind: Kind) -> Field {
    Field { name, kind }
}

const MAPPING: &[Field] = &[
    f("target", Kind::Str),
    f("source", Kind::Str),
    f("constant", Kind::Str),
    f("expression", Kind::Str),
    f("matching", Kind::Int),
    f("apply", Kind::Str),
    f("default", Kind::Str),
    f("required", Kind::Bool),
];
const USERS: &[Field] = &[f("mappings", Kind::Tables(MAPPING))];
const ACTIONS: &[Field] = &[
    f("create", Kind::Bool),
    f("update", Kind::Bool),
    f("delete", Kind::Bool),
];
const TARGET: &[Field] = &[
    f("url", Kind::Str),
    f("token", Kind::Secret),
    f("dialect", Kind::Str),
    f("max_concurrency", Kind::Int),
    f("timeout_secs", Kind::Int),
    f("actions", Kind::Table(ACTIONS)),
];
const SOURCE: &[Field] = &[
    f("tenant_id", Kind::Str),
    f("client_id", Kind::Str),
    f("client_secret", Kind::Secret),
    f("service_principal_id", Kind::Str),
    f("scope", Kind::Str),
    f("graph_url", Kind::Str),
    f("login_url", Kind::Str),
    f("page_size", Kind::Int),
];
pub(crate) const JOB: &[Field] = &[
    f("name", Kind::Str),
    f("schedule", Kind::Str),
    f("skip_out_of_scope_deletions", Kind::Bool),
    f("source", Kind::Table(SOURCE)),
    f("target", Kind::Table(TARGET)),
    f("users", Kind::Table(USERS)),
];

/// A problem found on the tree, located by byte span.
pub(crate) struct Issue {
    pub span: Range<usize>,
    pub key: String,
    pub message: String,
}

pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Check `table` against `fields`, removing unknown and wrong-typed entries. Keys removed for
/// a wrong type go into `pruned`, so later passes don't also call them missing.
pub(crate) fn check(
    table: &mut DeTable<'_>,
    fields: &'static [Field],
    path: &str,
    issues: &mut Vec<Issue>,
    pruned: &mut HashSet<String>,
) {
    let mut remove = Vec::new();
    for (k, v) in table.iter_mut() {
        let name: &str = k.get_ref();
        let key = join(path, name);
        let Some(field) = fields.iter().find(|f| f.name == name) else {
            let suggestion = suggest(name, fields);
            if let Some(meant) = suggestion {
                // The typo is the error; "`meant` is missing" would only repeat it.
                pruned.insert(join(path, meant));
            }
            issues.push(Issue {
                span: k.span(),
                key,
                message: unknown_key(name, suggestion, fields),
            });
            remove.push(name.to_string());
            continue;
        };
        let span = v.span();
        let ok = match (field.kind, v.get_mut()) {
            (Kind::Str | Kind::Secret, DeValue::String(_))
            | (Kind::Int, DeValue::Integer(_))
            | (Kind::Bool, DeValue::Boolean(_)) => true,
            (Kind::Table(sub), DeValue::Table(t)) => {
                check(t, sub, &key, issues, pruned);
                true
            }
            (Kind::Tables(sub), DeValue::Array(items)) => {
                let mut all_tables = true;
                for (i, item) in items.iter_mut().enumerate() {
                    let item_key = format!("{key}[{i}]");
                    let item_span = item.span();
                    match item.get_mut() {
                        DeValue::Table(t) => check(t, sub, &item_key, issues, pruned),
                        other => {
                            issues.push(Issue {
                                span: item_span,
                                key: item_key,
                                message: format!("expected a table, found {}", a(other.type_str())),
                            });
                            all_tables = false;
                        }
                    }
                }
                all_tables
            }
            (kind, other) => {
                issues.push(Issue {
                    span,
                    key: key.clone(),
                    message: format!("expected {}, found {}", expected(kind), a(other.type_str())),
                });
                false
            }
        };
        if !ok {
            remove.push(name.to_string());
            pruned.insert(key);
        }
    }
    for name in remove {
        table.remove(name.as_str());
    }
}

fn expected(kind: Kind) -> &'static str {
    match kind {
        Kind::Str => "a string",
        Kind::Secret => "a string (env:NAME, file:PATH or the secret itself)",
        Kind::Int => "an integer",
        Kind::Bool => "true or false",
        Kind::Table(_) => "a table",
        Kind::Tables(_) => "an array of tables ([[...]] entries)",
    }
}

fn a(type_name: &str) -> String {
    let article = if type_name.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {type_name}")
}

/// The known key `name` is probably a typo of.
fn suggest(name: &str, fields: &[Field]) -> Option<&'static str> {
    fields
        .iter()
        .map(|f| (edit_distance(name, f.name), f.name))
        .filter(|(d, known)| *d <= 2.max(known.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, known)| known)
}

fn unknown_key(name: &str, suggestion: Option<&str>, fields: &[Field]) -> String {
    match suggestion {
        Some(known) => format!("unknown key `{name}` (did you mean `{known}`?)"),
        None => {
            let known: Vec<&str> = fields.iter().map(|f| f.name).collect();
            format!(
                "unknown key `{name}`; expected one of: {}",
                known.join(", ")
            )
        }
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The dotted key whose key or value contains `offset`, deepest first ("" if none).
pub(crate) fn locate(table: &DeTable<'_>, offset: usize, path: &str) -> String {
    for (k, v) in table.iter() {
        let key = join(path, k.get_ref());
        if k.span().contains(&offset) {
            return key;
        }
        match v.get_ref() {
            DeValue::Table(t) => {
                let inner = locate(t, offset, &key);
                if !inner.is_empty() {
                    return inner;
                }
            }
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let item_key = format!("{key}[{i}]");
                    if let DeValue::Table(t) = item.get_ref() {
                        let inner = locate(t, offset, &item_key);
                        if !inner.is_empty() {
                            return inner;
                        }
                    }
                    if item.span().contains(&offset) {
                        return item_key;
                    }
                }
            }
            _ => {}
        }
        if v.span().contains(&offset) {
            return key;
        }
    }
    String::new()
}

/// Best-effort key for a TOML syntax error, read from the text (the tree is incomplete then):
/// the last table header before the error plus the key on the error's line.
pub(crate) fn syntax_key(text: &str, offset: usize) -> String {
    let offset = offset.min(text.len());
    let mut header = String::new();
    let mut counts: std::collections::HashMap<String, usize> = Default::default();
    let mut line_start = 0;
    for line in text.split_inclusive('\n') {
        let line_end = line_start + line.len();
        let trimmed = line.trim();
        if offset < line_end || line_end == text.len() {
            let before = line
                .get(..offset - line_start)
                .or_else(|| line.get(..line.len()))
                .unwrap_or("");
            return match before.split_once('=') {
                Some((k, _)) if !trimmed.starts_with('[') && !k.trim().is_empty() => {
                    join(&header, &clean_key(k))
                }
                _ if trimmed.starts_with('[') => String::new(),
                _ => header,
            };
        }
        if let Some(name) = trimmed.strip_prefix("[[") {
            let name = clean_key(name.split("]]").next().unwrap_or(""));
            let n = counts.entry(name.clone()).or_insert(0);
            header = format!("{name}[{n}]");
            *n += 1;
        } else if let Some(name) = trimmed.strip_prefix('[') {
            header = clean_key(name.split(']').next().unwrap_or(""));
        }
        line_start = line_end;
    }
    header
}

fn clean_key(k: &str) -> String {
    k.split('.')
        .map(|part| part.trim().trim_matches(['"', '\'']))
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_for_near_misses() {
        assert_eq!(
            unknown_key("clent_secret", suggest("clent_secret", SOURCE), SOURCE),
            "unknown key `clent_secret` (did you mean `client_secret`?)"
        );
        assert_eq!(suggest("colour", ACTIONS), None);
        assert!(
            unknown_key("colour", None, ACTIONS)
                .contains("expected one of: create, update, delete")
        );
    }

    #[test]
    fn syntax_key_reads_headers_and_keys() {
        let text = "name = \"x\"\n[source]\ntenant_id = oops\n[[users.mappings]]\n[[users.mappings]]\ntarget = ?\n";
        let at = |needle: &str| text.find(needle).unwrap();
        assert_eq!(syntax_key(text, at("oops")), "source.tenant_id");
        assert_eq!(syntax_key(text, at("?")), "users.mappings[1].target");
    }

    #[test]
    fn every_key_is_known_to_both_passes() {
        // Written independently of the tables above: a key added to only one pass fails here.
        let text = r#"
            name = "n"
            schedule = "1h"
            skip_out_of_scope_deletions = true
            [source]
            tenant_id = "t"
            client_id = "c"
            client_secret = "env:S"
            service_principal_id = "sp"
            scope = "all"
            graph_url = "https://graph.microsoft.com"
            login_url = "https://login.microsoftonline.com"
            page_size = 10
            [target]
            url = "https://x.example/scim"
            token = "env:T"
            dialect = "entra"
            max_concurrency = 2
            timeout_secs = 5
            [target.actions]
            create = false
            update = false
            delete = false
            [[users.mappings]]
            target = "userName"
            source = "userPrincipalName"
            constant = "c"
            expression = "e"
            matching = 1
            apply = "create"
            default = "d"
            required = true
        "#;
        let mut root = DeTable::parse(text).unwrap();
        let mut issues = Vec::new();
        check(root.get_mut(), JOB, "", &mut issues, &mut HashSet::new());
        let messages: Vec<_> = issues.iter().map(|i| i.message.clone()).collect();
        assert!(messages.is_empty(), "{messages:?}");
        let raw: Result<crate::raw::RawJob, _> =
            serde::Deserialize::deserialize(toml::de::Deserializer::from(root));
        assert!(raw.is_ok(), "{:?}", raw.err());
    }
}
