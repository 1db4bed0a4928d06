//! `scimsync demo`: the whole product on loopback with no setup. An emulated Entra tenant
//! (Graph + token endpoint) and a built-in SCIM app start in this process; the demo writes a
//! real job file for them, runs the initial cycle, changes a few users the way an admin would,
//! and runs an incremental cycle.

use crate::{commands, wiring};
use scimsync_core::SystemClock;
use scimsync_engine::{Engine, JobSpec, Mode};
use scimsync_testkit::graph::{GraphEmulator, Tenant};
use scimsync_testkit::scim::{ScimTarget, ScimTargetOptions};
use serde_json::json;
use std::path::Path;

/// The demo job: Entra's default user mapping for a custom SCIM app, minus expressions.
pub fn job_toml(
    graph_url: &str,
    tenant: &str,
    client_id: &str,
    sp_id: &str,
    scim_url: &str,
    dir: &Path,
) -> String {
    format!(
        r#"# Written by `scimsync demo`: a job against the built-in emulators.
name = "demo"
schedule = "40m"

[source]
tenant_id = "{tenant}"
client_id = "{client_id}"
client_secret = "file:{secret}"
service_principal_id = "{sp_id}"
scope = "assigned"
graph_url = "{graph_url}"
login_url = "{graph_url}"

[target]
url = "{scim_url}"
token = "file:{token}"

[[users.mappings]]
target = "userName"
source = "userPrincipalName"
matching = 1

[[users.mappings]]
target = "externalId"
source = "mailNickname"

[[users.mappings]]
target = "displayName"
source = "displayName"

[[users.mappings]]
target = "name.givenName"
source = "givenName"

[[users.mappings]]
target = "name.familyName"
source = "surname"

[[users.mappings]]
target = "title"
source = "jobTitle"

[[users.mappings]]
target = 'emails[type eq "work"].value'
source = "mail"

[[users.mappings]]
target = 'phoneNumbers[type eq "mobile"].value'
source = "mobile"

[[users.mappings]]
target = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"
source = "department"
default = "Unknown"

[[users.mappings]]
target = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber"
source = "employeeId"

[[users.mappings]]
target = "preferredLanguage"
constant = "en-US"

# The app's assigned groups, with their provisioned members.
[groups]
enabled = true

[[groups.mappings]]
target = "displayName"
source = "displayName"
matching = 1

[[groups.mappings]]
target = "externalId"
source = "objectId"
"#,
        secret = dir.join("graph-secret").display(),
        token = dir.join("scim-token").display(),
    )
}

pub async fn run(users: usize, verbose: bool) -> u8 {
    match run_inner(users, verbose).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: demo failed: {e:#}");
            1
        }
    }
}

async fn run_inner(users: usize, verbose: bool) -> anyhow::Result<u8> {
    let dir = tempfile::tempdir()?;
    let tenant = Tenant::generate("contoso.onmicrosoft.com", users, (users / 30).max(2), 42);
    let graph = GraphEmulator::start(tenant).await?;
    let target = ScimTarget::start(ScimTargetOptions::default()).await?;
    std::fs::write(dir.path().join("graph-secret"), graph.client_secret())?;
    std::fs::write(dir.path().join("scim-token"), target.token())?;
    let config_path = dir.path().join("demo.toml");
    std::fs::write(
        &config_path,
        job_toml(
            &graph.url(),
            graph.tenant_id(),
            graph.client_id(),
            graph.service_principal_id(),
            &target.url(),
            dir.path(),
        ),
    )?;

    println!("scimsync demo");
    println!(
        "  Graph emulator (tenant {}): {}",
        graph.tenant_id(),
        graph.url()
    );
    println!("  SCIM app:                   {}", target.url());
    println!("  job file:                   {}", config_path.display());
    println!(
        "  tenant: {} users; the app has some of them assigned (directly or by group)\n",
        users
    );

    let cfg =
        wiring::load(&config_path).map_err(|_| anyhow::anyhow!("the demo job file is invalid"))?;
    let source = wiring::graph(&cfg)?;
    let scim = wiring::scim(&cfg)?;
    let store = wiring::store(&dir.path().join("state"), &cfg.name)?;
    let job = JobSpec::from_config(&cfg);
    let engine = Engine::new(&job, &source, &scim, &store, &SystemClock);

    println!("1. Initial cycle");
    let first = engine.run(Mode::Apply).await?;
    commands::print_run(&first, config_path.parent());
    println!(
        "   the app now holds {} users and {} groups\n",
        target.users().len(),
        target.groups().len()
    );

    println!("2. An admin changes the tenant:");
    let provisioned: Vec<String> = first
        .objects
        .iter()
        .filter(|o| matches!(o.action, scimsync_engine::Action::Create { .. }))
        .map(|o| o.source_id.clone())
        .collect();
    let mut changed = 0;
    for (i, id) in provisioned.iter().take(3).enumerate() {
        graph.update_user(
            id,
            json!({"jobTitle": format!("Principal Engineer {}", i + 1)}),
        );
        changed += 1;
    }
    println!("   - {changed} users get a new job title");
    if let Some(id) = provisioned.get(3) {
        graph.update_user(id, json!({"department": "Platform"}));
        println!("   - 1 user moves to the Platform department");
    }
    if let Some(id) = provisioned.get(4) {
        graph.disable_user(id);
        println!("   - 1 user is disabled (accountEnabled = false)");
    }
    if let Some(id) = provisioned.get(5) {
        graph.unassign_user(id);
        println!("   - 1 user is unassigned from the app");
    }
    if let Some(id) = provisioned.get(6) {
        graph.soft_delete_user(id);
        println!("   - 1 user is deleted (soft delete: restorable for 30 days)");
    }
    let new_id = graph.add_user(json!({
        "userPrincipalName": "new.hire@contoso.onmicrosoft.com", "displayName": "New Hire",
        "givenName": "New", "surname": "Hire", "mail": "new.hire@contoso.com", "mailNickname": "new.hire",
        "accountEnabled": true, "jobTitle": "Analyst", "department": "Finance"
    }));
    graph.assign_user(&new_id);
    println!("   - 1 new hire is created and assigned\n");

    println!("3. Preview of the incremental cycle (nothing is sent):");
    let preview = engine.run(Mode::Preview).await?;
    print!(
        "{}",
        crate::render::preview_table(&preview, wiring::shapes(&cfg))
    );
    println!();

    println!("4. Incremental cycle");
    let before = target.writes().len();
    let second = engine.run(Mode::Apply).await?;
    commands::print_run(&second, config_path.parent());
    println!("   SCIM writes sent: {}", target.writes().len() - before);
    if verbose {
        for w in target.writes().iter().skip(before) {
            println!(
                "   {} {} {}",
                w.method,
                w.path_and_query,
                w.body.as_ref().map(|b| b.to_string()).unwrap_or_default()
            );
        }
    }

    println!("\n5. A third cycle with no changes");
    let before = target.writes().len();
    let third = engine.run(Mode::Apply).await?;
    commands::print_run(&third, config_path.parent());
    println!("   SCIM writes sent: {}", target.writes().len() - before);

    println!(
        "\nSummary: created {}, updated {}, disabled {}, deleted {}, failed {}",
        first.tally.created + second.tally.created,
        first.tally.updated + second.tally.updated,
        first.tally.disabled + second.tally.disabled,
        first.tally.deleted + second.tally.deleted,
        first.tally.failed + second.tally.failed + third.tally.failed,
    );
    Ok(0)
}
