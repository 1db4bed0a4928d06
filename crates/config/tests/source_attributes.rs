//! Source attribute names the job file can check by itself: directory extensions
//! (`extension_<appId without hyphens>_<name>`, issue 13 §3) are accepted exactly in their
//! documented form and a malformed one is an error at its key.

use scimsync_config::*;
use std::path::Path;

const FILE: &str = "jobs/ext.toml";

const EXT: &str = "extension_b7d8e648520f41d3b9c0fdeb91768a0a_costCenter";

fn job(extra: &str) -> String {
    format!(
        r#"name = "ext"
[source]
tenant_id = "contoso.onmicrosoft.com"
client_id = "00000000-0000-0000-0000-000000000001"
client_secret = "env:GRAPH_CLIENT_SECRET"
scope = "all"
[target]
url = "https://app.example.com/scim/v2"
token = "env:APP_SCIM_TOKEN"
[[users.mappings]]
target = "userName"
source = "userPrincipalName"
matching = 1
{extra}"#
    )
}

fn errors(text: &str) -> Vec<ConfigError> {
    match parse(Path::new(FILE), text) {
        Ok(l) => panic!("expected errors, got {:#?}", l.job),
        Err(e) => e,
    }
}

#[test]
fn a_well_formed_directory_extension_is_accepted_verbatim() {
    let text = job(&format!(
        r#"[[users.mappings]]
target = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter"
source = "{EXT}"
[[users.mappings]]
target = "title"
expression = 'Join(" ", [{EXT}], [extension_b7d8e648520f41d3b9c0fdeb91768a0a_level_2])'
[[users.scoping]]
[[users.scoping.clauses]]
attribute = "{EXT}"
operator = "IS NOT NULL"
"#
    ));
    let loaded = match parse(Path::new(FILE), &text) {
        Ok(l) => l,
        Err(e) => panic!("unexpected errors: {e:#?}"),
    };
    let m = &loaded.job.users.mappings[1];
    assert_eq!(
        m.value,
        MappingValue::Direct {
            source: EXT.to_string()
        },
        "case preserved"
    );
    assert_eq!(loaded.job.users.scoping[0].clauses[0].attribute, EXT);
}

#[test]
fn a_malformed_directory_extension_is_an_error_at_its_key() {
    let cases = [
        (
            "source = \"extension_x\"",
            "extension_x",
            "users.mappings[1].source",
        ),
        (
            // Upper-case app id: Entra writes it in lowercase, and the name is case-sensitive.
            "source = \"extension_B7D8E648520F41D3B9C0FDEB91768A0A_costCenter\"",
            "extension_B7D8E648520F41D3B9C0FDEB91768A0A_costCenter",
            "users.mappings[1].source",
        ),
        (
            "source = \"extension_b7d8e648520f41d3b9c0fdeb91768a0a_\"",
            "extension_b7d8e648520f41d3b9c0fdeb91768a0a_",
            "users.mappings[1].source",
        ),
        (
            "expression = 'ToLower([extension_1234_name])'",
            "extension_1234_name",
            "users.mappings[1].expression",
        ),
    ];
    for (line, name, key) in cases {
        let text = job(&format!("[[users.mappings]]\ntarget = \"title\"\n{line}\n"));
        let e = errors(&text);
        assert_eq!(e.len(), 1, "{line}: {e:#?}");
        assert_eq!(e[0].key, key, "{line}");
        assert_eq!(e[0].line, 16, "{line}");
        assert!(
            e[0].message.contains(&format!("{name:?}"))
                && e[0]
                    .message
                    .contains("is not a directory extension name: expected extension_<app id")
                && e[0].message.contains("32 lowercase hex digits"),
            "{line}: {}",
            e[0].message
        );
    }
    let text = job(
        "[[users.scoping]]\n[[users.scoping.clauses]]\nattribute = \"extension_x\"\noperator = \"IS NOT NULL\"\n",
    );
    let e = errors(&text);
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!(e[0].key, "users.scoping[0].clauses[0].attribute");
    assert!(
        e[0].message
            .contains("\"extension_x\" is not a directory extension name")
    );
}

#[test]
fn names_that_only_resemble_extensions_are_left_to_validate() {
    // `extensionAttribute3` is an on-premises extension attribute, not a directory extension.
    let text = job("[[users.mappings]]\ntarget = \"title\"\nsource = \"extensionAttribute3\"\n");
    assert!(parse(Path::new(FILE), &text).is_ok());
}
