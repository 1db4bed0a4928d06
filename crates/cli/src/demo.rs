//! `scimsync demo`: the whole product on loopback with no setup. An emulated Entra tenant
//! (Graph + token endpoint) and a built-in SCIM app start in this process; the demo writes a
//! real job file for them, runs the initial cycle, changes a few users the way an admin would,
//! and runs an incremental cycle.
//!
//! The job file and the state stay in `--dir` (default `./scimsync-demo`), so `logs`, `status`
//! and `serve` can explore them afterwards; the demo ends with those commands.

use crate::{commands, wiring};
use anyhow::Context;
use scimsync_core::{StateStore, SystemClock};
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

/// The file that marks a directory as the demo's (and lets a later demo reuse it).
const JOB_FILE: &str = "demo.toml";

pub async fn run(users: usize, dir: &Path, verbose: bool) -> u8 {
    match run_inner(users, dir, verbose).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: demo failed: {e:#}");
            1
        }
    }
}

/// Make `dir` ready for a new demo: created if missing; a previous demo's state is removed
/// (it belongs to emulators that are gone); any other non-empty directory is refused.
fn prepare(dir: &Path) -> anyhow::Result<std::path::PathBuf> {
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read the demo directory {}", dir.display()))?;
        if !dir.join(JOB_FILE).exists() && entries.next().is_some() {
            anyhow::bail!(
                "{} is not empty and holds no earlier demo ({JOB_FILE}); give another --dir",
                dir.display()
            );
        }
        let state = dir.join("state");
        if state.exists() {
            std::fs::remove_dir_all(&state).with_context(|| {
                format!(
                    "cannot remove the earlier demo's state {} (is a `serve` still running on it?)",
                    state.display()
                )
            })?;
        }
    }
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the demo directory {}", dir.display()))?;
    // The job file names its secret files by absolute path, so it works from anywhere.
    dir.canonicalize()
        .with_context(|| format!("cannot resolve {}", dir.display()))
}

/// The emulators' credentials, readable by this user only.
fn write_secret(path: &Path, value: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .with_context(|| format!("cannot write {}", path.display()))
}

/// What to run next on the demo's directory (as the user named it).
fn next_steps(dir: &Path) -> String {
    let d = dir.display();
    format!(
        "The job file and state stay in {d}; explore them with:\n\
         \x20 scimsync logs --job demo --state {d}/state\n\
         \x20 scimsync logs --job demo --state {d}/state --status failure --format csv\n\
         \x20 scimsync status --config {d}/{JOB_FILE} --state {d}/state\n\
         \x20 scimsync serve --config-dir {d} --state {d}/state   # the dashboard; its cycles \
         fail, since the emulators stopped with the demo\n"
    )
}

async fn run_inner(users: usize, shown: &Path, verbose: bool) -> anyhow::Result<u8> {
    let dir = prepare(shown)?;
    let dir = dir.as_path();
    let tenant = Tenant::generate("contoso.onmicrosoft.com", users, (users / 30).max(2), 42);
    let graph = GraphEmulator::start(tenant).await?;
    let target = ScimTarget::start(ScimTargetOptions::default()).await?;
    write_secret(&dir.join("graph-secret"), graph.client_secret())?;
    write_secret(&dir.join("scim-token"), target.token())?;
    let config_path = dir.join(JOB_FILE);
    std::fs::write(
        &config_path,
        job_toml(
            &graph.url(),
            graph.tenant_id(),
            graph.client_id(),
            graph.service_principal_id(),
            &target.url(),
            dir,
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
    let store = wiring::store(&dir.join("state"), &cfg.name)?;
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
    // Written through before the next command opens the state.
    store
        .flush()
        .map_err(|e| anyhow::anyhow!("cannot save the demo state: {e}"))?;
    println!("\n{}", next_steps(shown));
    Ok(0)
}
