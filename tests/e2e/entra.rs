//! `export-entra` then `import-entra` end to end: a job with expressions, a constant, a
//! create-only default, scoping filters, groups and an action turned off goes out as Entra's
//! schema JSON and comes back as a job file that validates and plans exactly the same SCIM
//! requests against the Graph emulator and the built-in SCIM app.

use crate::support::*;
use scimsync_testkit::scim::{ScimTarget, ScimTargetOptions};
use serde_json::Value;
use std::process::{Command, Output};

const MAPPINGS: &str = r#"
[target.actions]
delete = false

[[users.mappings]]
target = "userName"
source = "userPrincipalName"
matching = 1

[[users.mappings]]
target = "active"
expression = 'Switch([IsSoftDeleted], , "False", "True", "True", "False")'

[[users.mappings]]
target = "displayName"
expression = 'Join(" ", [givenName], [surname])'

[[users.mappings]]
target = 'emails[type eq "work"].value'
source = "mail"

[[users.mappings]]
target = "preferredLanguage"
constant = "en-US"

[[users.mappings]]
target = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber"
source = "employeeId"
apply = "create"
default = "none"

[[users.scoping]]
name = "not sales, a to p"
[[users.scoping.clauses]]
attribute = "department"
operator = "NOT EQUALS"
value = "Sales"
[[users.scoping.clauses]]
attribute = "userPrincipalName"
operator = "REGEX MATCH"
value = '^[a-p]'

[[users.scoping]]
name = "engineers"
[[users.scoping.clauses]]
attribute = "department"
operator = "EQUALS"
value = "Engineering"

[groups]
enabled = true

[[groups.mappings]]
target = "displayName"
source = "displayName"
matching = 1

[[groups.mappings]]
target = "externalId"
source = "objectId"
"#;

fn scimsync_with(env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_scimsync"));
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run scimsync")
}

/// The preview's objects, in a stable order.
fn planned(preview: &Value) -> Vec<Value> {
    let mut objects = preview["objects"].as_array().expect("objects").clone();
    objects.sort_by_key(|o| (o["sourceId"].to_string(), o["action"].to_string()));
    objects
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exported_job_imports_back_and_plans_the_same_requests() {
    let graph = tenant(40).await;
    let target = ScimTarget::start(ScimTargetOptions::default())
        .await
        .expect("scim target");
    let original = write_job(
        &graph,
        &target.url(),
        target.token(),
        JobOptions {
            scope: "assigned",
            mappings: MAPPINGS,
            ..JobOptions::default()
        },
    );
    let dir = original.dir.path();
    let schema = dir.join("schema.json");
    let out = scimsync(&[
        "export-entra",
        "--config",
        original.config.to_str().unwrap(),
        "--out",
        schema.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "export failed: {}", text(&out));
    let exported: Value =
        serde_json::from_str(&std::fs::read_to_string(&schema).unwrap()).expect("JSON");
    assert_eq!(
        exported["synchronizationRules"][0]["objectMappings"][0]["flowTypes"],
        "Add, Update"
    );

    let imported = dir.join("imported.toml");
    let graph_url = graph.url();
    let out = scimsync(&[
        "import-entra",
        "--schema",
        schema.to_str().unwrap(),
        "--out",
        imported.to_str().unwrap(),
        "--name",
        "e2e",
        "--tenant-id",
        graph.tenant_id(),
        "--client-id",
        graph.client_id(),
        "--service-principal-id",
        graph.service_principal_id(),
        "--tenant-url",
        &target.url(),
        "--graph-url",
        &graph_url,
        "--login-url",
        &graph_url,
    ]);
    let said = text(&out);
    assert!(out.status.success(), "import failed: {said}");
    assert!(said.contains("Every placeholder is filled in"), "{said}");
    assert!(!said.contains("warning:"), "{said}");
    assert!(said.contains("export E2E_SCIM_TOKEN="), "{said}");

    let env = [
        ("GRAPH_CLIENT_SECRET", graph.client_secret()),
        ("E2E_SCIM_TOKEN", target.token()),
    ];
    let out = scimsync_with(&env, &["validate", "--config", imported.to_str().unwrap()]);
    assert!(out.status.success(), "validate failed: {}", text(&out));

    let preview = |config: &std::path::Path, state: &str| -> Value {
        let out = scimsync_with(
            &env,
            &[
                "preview",
                "--json",
                "--config",
                config.to_str().unwrap(),
                "--state",
                dir.join(state).to_str().unwrap(),
            ],
        );
        assert!(out.status.success(), "preview failed: {}", text(&out));
        serde_json::from_slice(&out.stdout).expect("preview JSON")
    };
    let before = preview(&original.config, "state-original");
    let after = preview(&imported, "state-imported");
    assert_eq!(before["tally"], after["tally"]);
    let (before, after) = (planned(&before), planned(&after));
    assert!(
        before.iter().any(|o| o["action"] != "skip"),
        "the preview plans something"
    );
    assert_eq!(before.len(), after.len());
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(b, a, "the imported job plans differently");
    }
}
