//! The job file text of an import: deterministic order, Entra's names in comments, and a
//! comment on every placeholder and on every mapping left out.

use super::import::{Item, ObjectOut};
use super::*;
use crate::{Apply, Deprovision, Mapping, MappingValue, ScopeSetting, TargetActions};

/// A TOML string: a literal string when that avoids escapes, else a basic string.
fn toml_str(s: &str) -> String {
    let literal_ok = !s.contains('\'') && !s.chars().any(|c| c.is_control());
    if literal_ok && (s.contains('"') || s.contains('\\')) {
        return format!("'{s}'");
    }
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Text for a comment: one line.
fn comment_text(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// `line` with a comment aligned at column 36 (as the templates have them).
fn with_comment(line: &str, comment: &str) -> String {
    format!("{line:<34} # {}\n", comment_text(comment))
}

fn mapping_lines(table: &str, m: &Mapping) -> Vec<String> {
    let mut lines = vec![
        format!("[[{table}.mappings]]"),
        format!("target = {}", toml_str(&m.target)),
    ];
    match &m.value {
        MappingValue::Direct { source } => lines.push(format!("source = {}", toml_str(source))),
        MappingValue::Constant { value } => lines.push(format!("constant = {}", toml_str(value))),
        MappingValue::Expression { text } => lines.push(format!("expression = {}", toml_str(text))),
        MappingValue::None => {}
    }
    if let Some(n) = m.matching {
        lines.push(format!("matching = {n}"));
    }
    if m.apply == Apply::CreateOnly {
        lines.push("apply = \"create\"".into());
    }
    if let Some(d) = &m.default {
        lines.push(format!("default = {}", toml_str(d)));
    }
    if m.required {
        lines.push("required = true".into());
    }
    lines
}

fn object_section(out: &mut String, table: &str, o: &ObjectOut) {
    for item in &o.items {
        match item {
            Item::Mapping(m) => {
                out.push('\n');
                for l in mapping_lines(table, m) {
                    out.push_str(&l);
                    out.push('\n');
                }
            }
            Item::Skipped {
                path,
                reason,
                mapping,
            } => {
                out.push('\n');
                out.push_str(&format!(
                    "# Not imported ({path}):\n# {}\n",
                    comment_text(reason)
                ));
                for l in mapping.iter().flat_map(|m| mapping_lines(table, m)) {
                    out.push_str(&format!("# {l}\n"));
                }
            }
            Item::Members { path } => {
                out.push_str(&format!(
                    "\n# members <- [members] ({path}):\n# not a mapping; the engine sends each group's direct members that are provisioned\n# users, by their ids in the app.\n"
                ));
            }
        }
    }
    for f in &o.scoping {
        out.push('\n');
        out.push_str(&format!("[[{table}.scoping]]\n"));
        if let Some(n) = &f.name {
            out.push_str(&format!("name = {}\n", toml_str(n)));
        }
        for c in &f.clauses {
            out.push_str(&format!("[[{table}.scoping.clauses]]\n"));
            out.push_str(&format!("attribute = {}\n", toml_str(&c.attribute)));
            out.push_str(&format!("operator = {}\n", toml_str(c.operator.as_str())));
            if let Some(v) = &c.value {
                out.push_str(&format!("value = {}\n", toml_str(v)));
            }
        }
    }
}

fn value_or_placeholder(v: &Option<String>, placeholder: &str) -> String {
    toml_str(v.as_deref().map(str::trim).unwrap_or(placeholder))
}

pub(super) fn render(
    opts: &ImportOptions,
    rule: &SynchronizationRule,
    users: &ObjectOut,
    groups: Option<&ObjectOut>,
    actions: &TargetActions,
) -> String {
    let mut s = String::new();
    s.push_str(
        "# scimsync job imported from Entra's provisioning schema by `scimsync import-entra`.\n#\n",
    );
    s.push_str(&format!(
        "# From {}: rule {:?} ({} -> {}).\n",
        comment_text(&opts.origin),
        comment_text(rule.name.as_deref().unwrap_or("")),
        comment_text(
            rule.source_directory_name
                .as_deref()
                .unwrap_or(ENTRA_DIRECTORY)
        ),
        comment_text(rule.target_directory_name.as_deref().unwrap_or("?")),
    ));
    s.push_str(
        "# The schema holds the attribute mappings, the scoping filters, the target object actions\n\
         # and whether groups are provisioned. It does not hold the tenant, the credentials, the\n\
         # Tenant URL or the job's settings: those are import-entra's flags, and what no flag gave\n\
         # is a {{PLACEHOLDER}} below. Then `scimsync validate --config <this file>` and\n\
         # `scimsync preview`. Every key is documented in config/examples/demo.toml.\n\n",
    );
    s.push_str(&format!("name = {}\n", toml_str(&opts.name)));
    s.push_str(&with_comment(
        "# schedule = \"40m\"",
        "Entra's cycle is about every 40 minutes",
    ));
    if opts.skip_out_of_scope_deletions {
        s.push_str(&with_comment(
            "skip_out_of_scope_deletions = true",
            "Entra's SkipOutOfScopeDeletions (a job setting)",
        ));
    } else {
        s.push_str(&with_comment(
            "# skip_out_of_scope_deletions = false",
            "Entra's SkipOutOfScopeDeletions: not in the schema",
        ));
    }
    match opts.deletion_threshold {
        Some(n) => s.push_str(&with_comment(
            &format!("deletion_threshold = {n}"),
            "Entra's accidental-deletions threshold",
        )),
        None => s.push_str(&with_comment(
            "# deletion_threshold = 500",
            "Entra's accidental-deletions threshold: not in the schema",
        )),
    }

    s.push('\n');
    s.push_str(&with_comment(
        "[source]",
        "Microsoft Graph: the Entra tenant",
    ));
    s.push_str(&with_comment(
        &format!(
            "tenant_id = {}",
            value_or_placeholder(&opts.tenant_id, "{{TENANT_ID}}")
        ),
        "the Entra tenant id or domain (--tenant-id)",
    ));
    s.push_str(&with_comment(
        &format!(
            "client_id = {}",
            value_or_placeholder(&opts.client_id, "{{CLIENT_ID}}")
        ),
        "the app registration scimsync signs in with (--client-id)",
    ));
    s.push_str("client_secret = \"env:GRAPH_CLIENT_SECRET\"\n");
    s.push_str("# The enterprise app's object id (service principal) whose assigned users and groups are\n");
    s.push_str("# provisioned (--service-principal-id).\n");
    s.push_str(&format!(
        "service_principal_id = {}\n",
        value_or_placeholder(&opts.service_principal_id, "{{SERVICE_PRINCIPAL_ID}}")
    ));
    match opts.scope {
        ScopeSetting::Assigned => s.push_str(&with_comment(
            "scope = \"assigned\"",
            "\"Sync only assigned users and groups\" (--scope all: SyncAll)",
        )),
        ScopeSetting::All => s.push_str(&with_comment(
            "scope = \"all\"",
            "\"Sync all users and groups\" (Entra's SyncAll)",
        )),
    }
    match &opts.graph_url {
        Some(u) => s.push_str(&format!("graph_url = {}\n", toml_str(u.trim()))),
        None => s.push_str("# graph_url = \"https://graph.microsoft.com\"\n"),
    }
    match &opts.login_url {
        Some(u) => s.push_str(&format!("login_url = {}\n", toml_str(u.trim()))),
        None => s.push_str("# login_url = \"https://login.microsoftonline.com\"\n"),
    }

    s.push('\n');
    s.push_str(&with_comment(
        "[target]",
        "Entra's \"Tenant URL\" and \"Secret Token\"",
    ));
    s.push_str(&with_comment(
        &format!(
            "url = {}",
            value_or_placeholder(&opts.tenant_url, "{{TENANT_URL}}")
        ),
        "the app's SCIM endpoint (--tenant-url)",
    ));
    s.push_str(&format!(
        "token = {}\n",
        toml_str(&format!("env:{}", token_env(&opts.name)))
    ));
    if *actions == TargetActions::default() {
        s.push_str(&with_comment(
            "# [target.actions]",
            "flowTypes \"Add, Update, Delete\": every action on",
        ));
    } else {
        s.push('\n');
        s.push_str(&with_comment(
            "[target.actions]",
            &format!(
                "Entra's Target Object Actions: flowTypes {:?}",
                flow_types_text(actions)
            ),
        ));
        s.push_str(&format!("create = {}\n", actions.create));
        s.push_str(&format!("update = {}\n", actions.update));
        s.push_str(&format!("delete = {}\n", actions.delete));
    }

    s.push_str("\n[users]\n");
    match opts.deprovision {
        Deprovision::Disable => s.push_str(&with_comment(
            "deprovision = \"disable\"",
            "as Entra for a custom SCIM app (--deprovision delete)",
        )),
        Deprovision::Delete => s.push_str(&with_comment(
            "deprovision = \"delete\"",
            "users leaving scope are deleted (--deprovision)",
        )),
    }
    s.push_str(&format!(
        "\n# {:?} ({}).\n",
        comment_text(&users.name),
        users.path
    ));
    object_section(&mut s, "users", users);

    match groups {
        None => s.push_str("\n# The schema has no group mapping: groups are not provisioned.\n"),
        Some(g) if !g.enabled && g.mappings().next().is_none() => {
            s.push_str(&format!(
                "\n# {:?} ({}) is disabled (\"Enabled: No\"): groups are not provisioned.\n",
                comment_text(&g.name),
                g.path
            ));
            if !g.items.is_empty() || !g.scoping.is_empty() {
                object_section(&mut s, "groups", g);
            }
        }
        Some(g) => {
            s.push_str(&format!(
                "\n# {:?} ({}).\n[groups]\n",
                comment_text(&g.name),
                g.path
            ));
            if g.enabled {
                s.push_str("enabled = true\n");
            } else {
                s.push_str(&with_comment(
                    "enabled = false",
                    "the group mapping is disabled (\"Enabled: No\")",
                ));
            }
            s.push_str(&with_comment(
                "# nested = \"ignore\"",
                "as Entra: only direct user members are provisioned",
            ));
            object_section(&mut s, "groups", g);
        }
    }
    s
}
