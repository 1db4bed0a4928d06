//! The shape of a job file, checked on the parsed TOML tree before serde sees it.
//!
//! serde stops at the first unknown key or wrong type; this pass finds them all, reports each
//! at its own line:column, and prunes them so the typed pass and the semantic checks can still
//! report everything else in the same run. Messages name types, never values, so a secret
//! written with the wrong type cannot leak. The keys and their types are declared once, in
//! `raw.rs`, which gives this pass its lists and serde its structs.

use crate::raw::{RawJob, RawService};
use std::collections::HashSet;
use std::ops::Range;
use toml::de::{DeTable, DeValue};

#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Str,
    /// A string holding a secret reference (only the type message differs).
    Secret,
    Int,
    /// A number: a float, or an integer standing for one (`threshold_ratio = 1`).
    Float,
    Bool,
    /// An array of strings.
    Strs,
    Table(&'static [Field]),
    /// An array of tables (`[[users.mappings]]`, or an inline array of inline tables).
    Tables(&'static [Field]),
}

pub(crate) struct Field {
    name: &'static str,
    kind: Kind,
}

impl Field {
    pub(crate) const fn new(name: &'static str, kind: Kind) -> Field {
        Field { name, kind }
    }
}

/// A job file's keys.
pub(crate) const JOB: &[Field] = RawJob::FIELDS;
/// The service file's keys (`scimsync.toml`).
pub(crate) const SERVICE: &[Field] = RawService::FIELDS;

/// Whether the dotted `key` (indices allowed) is declared a secret under `fields`: a serde
/// message about it must not be shown (it may quote the value).
pub(crate) fn is_secret_key(fields: &[Field], key: &str) -> bool {
    let mut fields = fields;
    let mut parts = key.split('.').peekable();
    while let Some(part) = parts.next() {
        let name = part.split('[').next().unwrap_or(part);
        let Some(field) = fields.iter().find(|f| f.name == name) else {
            return false;
        };
        match field.kind {
            Kind::Table(sub) | Kind::Tables(sub) if parts.peek().is_some() => fields = sub,
            Kind::Secret => return parts.peek().is_none(),
            _ => return false,
        }
    }
    false
}

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
            | (Kind::Float, DeValue::Float(_) | DeValue::Integer(_))
            | (Kind::Bool, DeValue::Boolean(_)) => true,
            (Kind::Strs, DeValue::Array(items)) => {
                let mut all_strings = true;
                for (i, item) in items.iter().enumerate() {
                    if !matches!(item.get_ref(), DeValue::String(_)) {
                        issues.push(Issue {
                            span: item.span(),
                            key: format!("{key}[{i}]"),
                            message: format!(
                                "expected a string, found {}",
                                a(item.get_ref().type_str())
                            ),
                        });
                        all_strings = false;
                    }
                }
                all_strings
            }
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
        Kind::Float => "a number",
        Kind::Strs => "an array of strings",
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
        .map(|f| (strsim::levenshtein(name, f.name), f.name))
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

    use crate::raw::{RawActions, RawSource};

    const SOURCE: &[Field] = RawSource::FIELDS;
    const ACTIONS: &[Field] = RawActions::FIELDS;

    #[test]
    fn secret_keys_are_those_declared_secret() {
        for key in [
            "source.client_secret",
            "source.private_key",
            "target.token",
            "notifications.smtp.password",
        ] {
            assert!(is_secret_key(JOB, key), "{key}");
        }
        for key in [
            "source.client_id",
            "target",
            "target.url",
            "users.mappings[0].target",
        ] {
            assert!(!is_secret_key(JOB, key), "{key}");
        }
        assert!(is_secret_key(SERVICE, "store.url"));
        assert!(is_secret_key(SERVICE, "admin.tls_key"));
        assert!(!is_secret_key(SERVICE, "admin.bind"));
    }

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
        // Written independently of the declarations: every documented key is accepted by the
        // shape pass and read by serde.
        let text = r#"
            name = "n"
            schedule = "1h"
            skip_out_of_scope_deletions = true
            deletion_threshold = 10
            log_retention_days = 7
            [source]
            tenant_id = "t"
            client_id = "c"
            client_secret = "env:S"
            certificate = "file:c.pem"
            private_key = "file:c.key"
            assertion_algorithm = "RS256"
            service_principal_id = "sp"
            scope = "all"
            exclude_default_access = true
            graph_url = "https://graph.microsoft.com"
            login_url = "https://login.microsoftonline.com"
            page_size = 10
            [target]
            url = "https://x.example/scim"
            token = "env:T"
            dialect = "entra"
            max_concurrency = 2
            timeout_secs = 5
            membership_batch_size = 50
            group_members_removal = "rfc"
            manager_format = "string"
            clear_on_null = true
            [target.actions]
            create = false
            update = false
            delete = false
            [escrow]
            retry_delays = ["1h"]
            daily_after = "1d"
            give_up_after = "2d"
            [quarantine]
            threshold_min_failures = 1
            threshold_ratio = 0.5
            threshold_non_reference = 2
            threshold_total = 3
            backoff_max = "1h"
            disable_after = "1d"
            [notifications]
            webhook_url = "https://h.example"
            webhook_token = "env:H"
            [notifications.smtp]
            host = "smtp.example"
            port = 25
            tls = "none"
            starttls = false
            username = "u"
            password = "env:P"
            from = "a@example"
            to = ["b@example"]
            [users]
            skip_out_of_scope_deletions = true
            deprovision = "delete"
            [[users.mappings]]
            target = "userName"
            source = "userPrincipalName"
            constant = "c"
            expression = "e"
            matching = 1
            apply = "create"
            default = "d"
            required = true
            [[users.scoping]]
            name = "f"
            [[users.scoping.clauses]]
            attribute = "a"
            operator = "EQUALS"
            value = "v"
            [groups]
            enabled = true
            nested = "include"
            out_of_scope = "skip"
            reconcile = "daily"
            [[groups.mappings]]
            target = "displayName"
            [[groups.scoping]]
            clauses = [{ attribute = "a", operator = "IS NULL" }]
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

    #[test]
    fn every_service_key_is_known_to_both_passes() {
        let text = "[admin]\nbind = \"127.0.0.1:1\"\ntoken = \"env:T\"\n";
        let mut root = DeTable::parse(text).unwrap();
        let mut issues = Vec::new();
        check(
            root.get_mut(),
            SERVICE,
            "",
            &mut issues,
            &mut HashSet::new(),
        );
        assert!(issues.is_empty());
        let raw: Result<crate::raw::RawService, _> =
            serde::Deserialize::deserialize(toml::de::Deserializer::from(root));
        assert!(raw.is_ok(), "{:?}", raw.err());
    }

    #[test]
    fn arrays_of_strings_and_numbers_are_typed() {
        let text = "[escrow]\nretry_delays = [\"1h\", 6]\n[quarantine]\nthreshold_ratio = 1\n";
        let mut root = DeTable::parse(text).unwrap();
        let mut issues = Vec::new();
        check(root.get_mut(), JOB, "", &mut issues, &mut HashSet::new());
        let got: Vec<_> = issues
            .iter()
            .map(|i| (i.key.as_str(), i.message.as_str()))
            .collect();
        assert_eq!(
            got,
            [(
                "escrow.retry_delays[1]",
                "expected a string, found an integer"
            )]
        );
    }
}
