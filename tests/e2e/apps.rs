//! The app templates end to end: `scimsync init --app <app>` against the Graph emulator and the
//! real `scim2-server`, one `run --once`, then every attribute of the app tutorial's table is
//! checked on the server against the source user, and groups with their exact members.

use crate::support::*;
use scimsync_testkit::graph::{GraphEmulator, Tenant};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const KLAXOON_GROUP: &str = "urn:ietf:params:scim:schemas:extension:klaxoon:2.0:Group";

/// A job written by `scimsync init`, with its secrets in the environment as `init` asks.
struct AppJob {
    dir: tempfile::TempDir,
    config: PathBuf,
    env: Vec<(String, String)>,
}

impl AppJob {
    fn scimsync(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_scimsync"));
        cmd.args(args);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.output().expect("run scimsync")
    }

    /// `run --once --json`: the exit code and the cycle report.
    fn run(&self) -> (i32, Value) {
        let state = self.dir.path().join("state");
        let out = self.scimsync(&[
            "run",
            "--once",
            "--json",
            "--config",
            self.config.to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
        ]);
        let report = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("report is not JSON ({e}): {}", text(&out)));
        (out.status.code().unwrap_or(-1), report)
    }
}

/// `scimsync init` with the emulator's ids and the server's URL, then `validate`.
fn init(app: &str, graph: &GraphEmulator, server: &impl RealScim) -> AppJob {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join(format!("{app}.toml"));
    let out = scimsync(&[
        "init",
        "--app",
        app,
        "--out",
        config.to_str().unwrap(),
        "--tenant-id",
        graph.tenant_id(),
        "--client-id",
        graph.client_id(),
        "--service-principal-id",
        graph.service_principal_id(),
        "--tenant-url",
        server.base(),
        "--graph-url",
        &graph.url(),
        "--login-url",
        &graph.url(),
    ]);
    let said = text(&out);
    assert!(out.status.success(), "init failed: {said}");
    assert!(said.contains("Every placeholder is filled in"), "{said}");
    let token_var = match app {
        "scim" => "SCIM_APP_TOKEN".to_string(),
        _ => format!("{}_SCIM_TOKEN", app.to_uppercase()),
    };
    assert!(said.contains("export GRAPH_CLIENT_SECRET="), "{said}");
    assert!(said.contains(&format!("export {token_var}=")), "{said}");
    let job = AppJob {
        dir,
        config,
        env: vec![
            ("GRAPH_CLIENT_SECRET".into(), graph.client_secret().into()),
            (token_var, server.token().to_string()),
        ],
    };
    let out = job.scimsync(&["validate", "--config", job.config.to_str().unwrap()]);
    assert!(out.status.success(), "validate failed: {}", text(&out));
    job
}

/// A value by path in a JSON object: `a.b`, and Graph's one-element collections (`[0]`).
fn source_value(user: &Value, path: &str) -> Option<Value> {
    let mut v = user;
    for part in path.split('.') {
        v = match part.strip_suffix("[0]") {
            Some(p) => v.get(p)?.get(0)?,
            None => v.get(part)?,
        };
    }
    match v {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        other => Some(other.clone()),
    }
}

/// A SCIM attribute of a resource by the target path of a mapping: `name.givenName`,
/// `emails[type eq "work"].value`, `urn:…:User:department`.
fn scim_value(resource: &Value, target: &str) -> Option<Value> {
    if let Some(rest) = target.strip_prefix("urn:") {
        let (schema, attr) = rest.rsplit_once(':')?;
        return resource
            .get(format!("urn:{schema}"))?
            .get(attr)
            .cloned()
            .filter(|v| !v.is_null());
    }
    if let Some((head, sub)) = target.split_once("[type eq \"") {
        let (kind, rest) = sub.split_once("\"]")?;
        let attr = rest.strip_prefix('.')?;
        let items = resource.get(head)?.as_array()?;
        let matching: Vec<&Value> = items.iter().filter(|i| i["type"] == kind).collect();
        assert!(matching.len() <= 1, "two {head} of type {kind}: {resource}");
        return matching.first()?.get(attr).cloned();
    }
    let mut v = resource;
    for part in target.split('.') {
        v = v.get(part)?;
    }
    Some(v.clone()).filter(|v| !v.is_null())
}

/// What a row of the tutorial's table should hold for a source user.
enum Want {
    /// A Graph property (path as in [`source_value`]).
    Source(&'static str),
    /// `active` from the `Switch([IsSoftDeleted], …)` expression: true for a provisioned user.
    Active,
    /// `Join(" ", [givenName], [surname])`.
    FormattedName,
    /// No Entra source: the template leaves it unmapped.
    Absent,
}

fn check_user(app: &str, server: &impl RealScim, src: &Value, table: &[(&str, Want)]) -> Value {
    let upn = src["userPrincipalName"].as_str().expect("upn");
    let u = server
        .user(upn)
        .unwrap_or_else(|| panic!("{app}: {upn} was not provisioned"));
    for (target, want) in table {
        let expected = match want {
            Want::Source(path) => source_value(src, path),
            Want::Active => Some(json!(true)),
            Want::FormattedName => Some(json!(format!(
                "{} {}",
                src["givenName"].as_str().unwrap_or_default(),
                src["surname"].as_str().unwrap_or_default()
            ))),
            Want::Absent => None,
        };
        assert_eq!(
            scim_value(&u, target),
            expected,
            "{app}: {target} of {upn} on the server: {u}"
        );
    }
    u
}

/// Ids of the app's user assignments (direct) and group assignments, from a tenant snapshot.
fn assigned(graph: &GraphEmulator) -> BTreeSet<String> {
    graph.snapshot().assigned_principals().into_iter().collect()
}

/// Enabled users assigned directly or through a direct membership of an assigned group.
fn in_scope_users(graph: &GraphEmulator, principals: &BTreeSet<String>) -> Vec<Value> {
    let groups = graph.groups();
    let via_group: BTreeSet<String> = groups
        .iter()
        .filter(|g| principals.contains(g["id"].as_str().unwrap_or_default()))
        .flat_map(|g| g["members"].as_array().cloned().unwrap_or_default())
        .filter_map(|m| m.as_str().map(str::to_string))
        .collect();
    graph
        .users()
        .into_iter()
        .filter(|u| u["accountEnabled"] != json!(false))
        .filter(|u| {
            let id = u["id"].as_str().unwrap_or_default();
            principals.contains(id) || via_group.contains(id)
        })
        .collect()
}

fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn server_groups(server: &impl RealScim) -> Vec<Value> {
    server.get("/Groups?count=100")["Resources"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Every assigned group is on the server once, with `externalId` if the app maps it, and
/// its members are exactly the server ids of its provisioned direct user members.
fn check_groups(
    app: &str,
    graph: &GraphEmulator,
    server: &impl RealScim,
    principals: &BTreeSet<String>,
    provisioned: &[Value],
    external_id: bool,
) -> Vec<Value> {
    let provisioned_ids: BTreeSet<&str> = provisioned
        .iter()
        .filter_map(|u| u["id"].as_str())
        .collect();
    let in_scope: Vec<Value> = graph
        .groups()
        .into_iter()
        .filter(|g| principals.contains(g["id"].as_str().unwrap_or_default()))
        .collect();
    assert!(!in_scope.is_empty(), "{app}: the tenant assigns no group");
    assert_eq!(server_groups(server).len(), in_scope.len(), "{app}: groups");
    let mut with_members = 0;
    let mut out = Vec::new();
    for g in in_scope {
        let name = g["displayName"].as_str().expect("group name");
        let q = format!(
            "/Groups?filter={}",
            pct(&format!("displayName eq \"{name}\""))
        );
        let found = server.get(&q)["Resources"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            found.len(),
            1,
            "{app}: group {name} on the server: {found:?}"
        );
        let sg = found[0].clone();
        if external_id {
            assert_eq!(sg["externalId"], g["id"], "{app}: externalId of {name}");
        }
        let expected: BTreeSet<String> = g["members"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter_map(Value::as_str)
            .filter(|m| provisioned_ids.contains(m))
            .map(|m| {
                let upn = upn_of(graph, m);
                server.user(&upn).expect("member provisioned")["id"]
                    .as_str()
                    .expect("id")
                    .to_string()
            })
            .collect();
        let actual: BTreeSet<String> = sg["members"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter_map(|m| m["value"].as_str().map(str::to_string))
            .collect();
        assert_eq!(actual, expected, "{app}: members of {name}");
        with_members += usize::from(!expected.is_empty());
        out.push(sg);
    }
    assert!(with_members > 0, "{app}: no group had a provisioned member");
    out
}

/// A provisioned user assigned directly and not through any assigned group.
fn directly_assigned(
    graph: &GraphEmulator,
    principals: &BTreeSet<String>,
    provisioned: &[Value],
) -> Value {
    let in_groups: BTreeSet<String> = graph
        .groups()
        .iter()
        .filter(|g| principals.contains(g["id"].as_str().unwrap_or_default()))
        .flat_map(|g| g["members"].as_array().cloned().unwrap_or_default())
        .filter_map(|m| m.as_str().map(str::to_string))
        .collect();
    provisioned
        .iter()
        .find(|u| {
            let id = u["id"].as_str().unwrap_or_default();
            principals.contains(id) && !in_groups.contains(id)
        })
        .cloned()
        .expect("a directly assigned user")
}

async fn emulator(users: usize, groups: usize) -> GraphEmulator {
    GraphEmulator::start(Tenant::generate(
        "contoso.onmicrosoft.com",
        users,
        groups,
        7,
    ))
    .await
    .expect("graph emulator")
}

fn assert_clean(app: &str, code: i32, report: &Value) {
    assert_eq!(code, 0, "{app}: {report}");
    assert_eq!(tally(report, "failed"), 0, "{app}: {report}");
}

/// Unassigning a directly assigned user deletes it in the app (the apps that "remove" users).
fn unassign_deletes(
    app: &str,
    job: &AppJob,
    graph: &GraphEmulator,
    server: &impl RealScim,
    u: &Value,
) {
    graph.unassign_user(u["id"].as_str().unwrap());
    let (code, report) = job.run();
    assert_clean(app, code, &report);
    let upn = u["userPrincipalName"].as_str().unwrap();
    assert!(
        server.user(upn).is_none(),
        "{app}: {upn} was not removed: {report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_template_provisions_its_table() {
    chaos_flow(&Scim2Server::start()).await;
}

/// The chaos template against a real SCIM server (scim2-server here, SCIMMY in `scimmy.rs`).
pub async fn chaos_flow(server: &impl RealScim) {
    let graph = emulator(40, 5).await;
    let job = init("chaos", &graph, server);
    let (code, report) = job.run();
    assert_clean("chaos", code, &report);
    let principals = assigned(&graph);
    let users = in_scope_users(&graph, &principals);
    assert_eq!(server.user_count(), users.len() as u64);
    // chaos-provisioning-tutorial.md, Step 5, the Attribute-Mapping table.
    let table = [
        ("userName", Want::Source("userPrincipalName")),
        ("active", Want::Active),
        ("emails[type eq \"work\"].value", Want::Source("mail")),
        ("name.givenName", Want::Source("givenName")),
        ("name.familyName", Want::Source("surname")),
        ("displayName", Want::Absent),
        ("externalId", Want::Absent),
    ];
    for u in &users {
        check_user("chaos", server, u, &table);
    }
    assert!(server_groups(server).is_empty(), "Chaos takes no groups");
    let u = directly_assigned(&graph, &principals, &users);
    unassign_deletes("chaos", &job, &graph, server, &u);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tribeloo_template_provisions_its_table() {
    tribeloo_flow(&Scim2Server::start()).await;
}

/// The tribeloo template against a real SCIM server (scim2-server here, SCIMMY in `scimmy.rs`).
pub async fn tribeloo_flow(server: &impl RealScim) {
    let graph = emulator(40, 5).await;
    let job = init("tribeloo", &graph, server);
    let (code, report) = job.run();
    assert_clean("tribeloo", code, &report);
    let principals = assigned(&graph);
    let users = in_scope_users(&graph, &principals);
    assert_eq!(server.user_count(), users.len() as u64);
    // tribeloo-provisioning-tutorial.md, Step 5, the Attribute-Mapping table.
    let table = [
        ("userName", Want::Source("userPrincipalName")),
        ("emails[type eq \"work\"].value", Want::Source("mail")),
        ("active", Want::Active),
        ("displayName", Want::Source("displayName")),
        ("name.givenName", Want::Source("givenName")),
        ("name.familyName", Want::Source("surname")),
        (
            "addresses[type eq \"work\"].formatted",
            Want::Source("officeLocation"),
        ),
    ];
    for u in &users {
        check_user("tribeloo", server, u, &table);
    }
    assert!(server_groups(server).is_empty(), "Tribeloo takes no groups");
    let u = directly_assigned(&graph, &principals, &users);
    unassign_deletes("tribeloo", &job, &graph, server, &u);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn atmos_template_provisions_users_with_enterprise_attributes_and_groups() {
    atmos_flow(&Scim2Server::start()).await;
}

/// The atmos template against a real SCIM server (scim2-server here, SCIMMY in `scimmy.rs`).
pub async fn atmos_flow(server: &impl RealScim) {
    let graph = emulator(40, 5).await;
    let job = init("atmos", &graph, server);
    let (code, report) = job.run();
    assert_clean("atmos", code, &report);
    let principals = assigned(&graph);
    let users = in_scope_users(&graph, &principals);
    assert_eq!(server.user_count(), users.len() as u64);
    // atmos-provisioning-tutorial.md, Step 5, item 10: the user Attribute-Mapping table.
    let table = [
        ("userName", Want::Source("userPrincipalName")),
        ("active", Want::Active),
        ("displayName", Want::Source("displayName")),
        ("emails[type eq \"work\"].value", Want::Source("mail")),
        ("name.givenName", Want::Source("givenName")),
        ("name.familyName", Want::Source("surname")),
        ("externalId", Want::Source("mailNickname")),
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
            Want::Source("department"),
        ),
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:division",
            Want::Source("employeeOrgData.division"),
        ),
    ];
    for u in &users {
        let su = check_user("atmos", server, u, &table);
        assert!(su[ENTERPRISE]["division"].is_string(), "{su}");
    }
    // Item 12: the group table (displayName, members, externalId).
    check_groups("atmos", &graph, server, &principals, &users, true);
    let u = directly_assigned(&graph, &principals, &users);
    unassign_deletes("atmos", &job, &graph, server, &u);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn klaxoon_template_provisions_required_attributes_licensed_groups_and_disables() {
    let args = klaxoon_schema_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    klaxoon_flow(&Scim2Server::start_with(&args)).await;
}

/// The arguments that make a real server (scim2-server, SCIMMY) serve Klaxoon's group
/// extension schema.
pub fn klaxoon_schema_args() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let schema = root.join("klaxoon-schema.json");
    let types = root.join("klaxoon-resource-types.json");
    vec![
        "--schema".into(),
        schema.display().to_string(),
        "--resource-type".into(),
        types.display().to_string(),
    ]
}

/// The klaxoon template against a real SCIM server started with [`klaxoon_schema_args`].
pub async fn klaxoon_flow(server: &impl RealScim) {
    let graph = emulator(40, 5).await;
    let job = init("klaxoon", &graph, server);
    let (code, report) = job.run();
    let principals = assigned(&graph);
    let in_scope = in_scope_users(&graph, &principals);
    // Every attribute is required by Klaxoon: a user without a mail is not created, and the
    // report says so; everyone else is.
    let (users, no_mail): (Vec<Value>, Vec<Value>) = in_scope
        .into_iter()
        .partition(|u| source_value(u, "mail").is_some());
    assert!(
        !no_mail.is_empty(),
        "the tenant should have a user without mail"
    );
    assert_eq!(tally(&report, "failed"), no_mail.len() as u64, "{report}");
    assert_eq!(code, 4, "some objects failed: {report}");
    assert!(
        report.to_string().contains("MandatoryFieldsMissing"),
        "the failure names the missing attribute: {report}"
    );
    assert_eq!(server.user_count(), users.len() as u64);
    // klaxoon-provisioning-tutorial.md, Step 5, item 10: the user Attribute-Mapping table.
    let table = [
        ("userName", Want::Source("userPrincipalName")),
        ("emails[type eq \"work\"].value", Want::Source("mail")),
        ("externalId", Want::Source("mailNickname")),
        ("name.givenName", Want::Source("givenName")),
        ("name.familyName", Want::Source("surname")),
        ("active", Want::Active),
    ];
    for u in &users {
        check_user("klaxoon", server, u, &table);
    }
    // Item 12/13: groups with externalId, members and the licence at its documented default.
    for g in check_groups("klaxoon", &graph, server, &principals, &users, true) {
        assert_eq!(g[KLAXOON_GROUP]["license"], json!("true"), "{g}");
    }
    // "Disable users in Klaxoon when they do not require access anymore".
    let u = directly_assigned(&graph, &principals, &users);
    graph.unassign_user(u["id"].as_str().unwrap());
    let (_, report) = job.run();
    assert_eq!(tally(&report, "disabled"), 1, "{report}");
    let upn = u["userPrincipalName"].as_str().unwrap();
    let kept = server.user(upn).expect("disabled, not deleted");
    assert_eq!(kept["active"], json!(false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cybsafe_template_skips_default_access_and_provisions_its_tables() {
    cybsafe_flow(&Scim2Server::start()).await;
}

/// The cybsafe template against a real SCIM server (scim2-server here, SCIMMY in `scimmy.rs`).
pub async fn cybsafe_flow(server: &impl RealScim) {
    let mut tenant = Tenant::generate("contoso.onmicrosoft.com", 40, 5, 7);
    let role = tenant.add_app_role("User", "CybSafe user");
    // The generated assignments all use Default Access: CybSafe's tutorial excludes those.
    // Give a role to five users and to one group.
    let users = tenant.users();
    let chosen: Vec<String> = users
        .iter()
        .filter(|u| u["accountEnabled"] != json!(false))
        .take(5)
        .map(|u| u["id"].as_str().unwrap().to_string())
        .collect();
    for id in &chosen {
        tenant.assign_role(id, &role);
    }
    let groups = tenant.groups();
    let group = groups
        .iter()
        .rfind(|g| g["members"].as_array().is_some_and(|m| m.len() > 1))
        .expect("a group with members")["id"]
        .as_str()
        .unwrap()
        .to_string();
    tenant.assign_role(&group, &role);
    let graph = GraphEmulator::start(tenant).await.expect("graph emulator");
    let job = init("cybsafe", &graph, server);
    let said = std::fs::read_to_string(&job.config).unwrap();
    assert!(
        said.contains(&format!("url = \"{}\"", server.base())),
        "--tenant-url replaced the fixed CybSafe URL"
    );
    let (code, report) = job.run();
    assert_clean("cybsafe", code, &report);
    let principals: BTreeSet<String> = chosen.iter().cloned().chain([group.clone()]).collect();
    let users = in_scope_users(&graph, &principals);
    let with_default_access = in_scope_users(&graph, &assigned(&graph));
    assert!(
        with_default_access.len() > users.len(),
        "the tenant has users assigned with Default Access only"
    );
    assert_eq!(
        server.user_count(),
        users.len() as u64,
        "only users with a role other than Default Access"
    );
    // cybsafe-provisioning-tutorial.md, Step 5, item 9: the user Attribute-Mapping table.
    let table = [
        ("userName", Want::Source("userPrincipalName")),
        ("active", Want::Active),
        ("displayName", Want::Source("displayName")),
        ("title", Want::Source("jobTitle")),
        ("preferredLanguage", Want::Source("preferredLanguage")),
        ("name.givenName", Want::Source("givenName")),
        ("name.familyName", Want::Source("surname")),
        ("name.formatted", Want::FormattedName),
        ("name.honorificPrefix", Want::Absent),
        ("name.honorificSuffix", Want::Absent),
        ("nickName", Want::Absent),
        (
            "phoneNumbers[type eq \"mobile\"].value",
            Want::Source("mobilePhone"),
        ),
        ("emails[type eq \"work\"].value", Want::Source("mail")),
        ("locale", Want::Absent),
        ("timezone", Want::Absent),
        ("userType", Want::Source("userType")),
    ];
    for u in &users {
        check_user("cybsafe", server, u, &table);
    }
    assert!(
        users
            .iter()
            .any(|u| source_value(u, "mobilePhone").is_some()),
        "some user has a mobile number to check"
    );
    // Item 11: the group table (displayName, members); no externalId mapped.
    for g in check_groups("cybsafe", &graph, server, &principals, &users, false) {
        assert!(g.get("externalId").is_none(), "{g}");
    }
    let u = directly_assigned(&graph, &principals, &users);
    unassign_deletes("cybsafe", &job, &graph, server, &u);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scim_template_is_entras_default_mapping_end_to_end() {
    scim_flow(&Scim2Server::start()).await;
}

/// The scim template against a real SCIM server (scim2-server here, SCIMMY in `scimmy.rs`).
pub async fn scim_flow(server: &impl RealScim) {
    let graph = emulator(30, 5).await;
    let job = init("scim", &graph, server);
    let (code, report) = job.run();
    assert_clean("scim", code, &report);
    let principals = assigned(&graph);
    let users = in_scope_users(&graph, &principals);
    assert_eq!(server.user_count(), users.len() as u64);
    let w = "[type eq \"work\"]";
    let table = [
        ("userName".to_string(), Want::Source("userPrincipalName")),
        ("active".into(), Want::Active),
        ("displayName".into(), Want::Source("displayName")),
        ("title".into(), Want::Source("jobTitle")),
        (format!("emails{w}.value"), Want::Source("mail")),
        (
            "preferredLanguage".into(),
            Want::Source("preferredLanguage"),
        ),
        ("name.givenName".into(), Want::Source("givenName")),
        ("name.familyName".into(), Want::Source("surname")),
        ("name.formatted".into(), Want::FormattedName),
        (
            format!("addresses{w}.formatted"),
            Want::Source("officeLocation"),
        ),
        (
            format!("addresses{w}.streetAddress"),
            Want::Source("streetAddress"),
        ),
        (format!("addresses{w}.locality"), Want::Source("city")),
        (format!("addresses{w}.region"), Want::Source("state")),
        (
            format!("addresses{w}.postalCode"),
            Want::Source("postalCode"),
        ),
        (format!("addresses{w}.country"), Want::Source("country")),
        (
            format!("phoneNumbers{w}.value"),
            Want::Source("businessPhones[0]"),
        ),
        (
            "phoneNumbers[type eq \"mobile\"].value".into(),
            Want::Source("mobilePhone"),
        ),
        (
            "phoneNumbers[type eq \"fax\"].value".into(),
            Want::Source("faxNumber"),
        ),
        ("externalId".into(), Want::Source("mailNickname")),
        (
            format!("{ENTERPRISE}:employeeNumber"),
            Want::Source("employeeId"),
        ),
        (
            format!("{ENTERPRISE}:department"),
            Want::Source("department"),
        ),
    ];
    let table: Vec<(&str, Want)> = table.into_iter().map(|(t, w)| (leak(t), w)).collect();
    for u in &users {
        check_user("scim", server, u, &table);
    }
    for path in ["businessPhones[0]", "mobilePhone", "employeeId", "state"] {
        assert!(
            users.iter().any(|u| source_value(u, path).is_some()),
            "some user has {path} to check"
        );
    }
    check_groups("scim", &graph, server, &principals, &users, true);
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_lists_templates_and_eval_shows_each_step() {
    let out = scimsync(&["apps"]);
    assert!(out.status.success());
    let listed = text(&out);
    for app in ["atmos", "chaos", "cybsafe", "klaxoon", "scim", "tribeloo"] {
        assert!(listed.contains(&format!("  {app} ")), "{listed}");
    }

    let graph = emulator(6, 2).await;
    let server = Scim2Server::start();
    let job = init("scim", &graph, &server);
    let again = scimsync(&[
        "init",
        "--app",
        "scim",
        "--out",
        job.config.to_str().unwrap(),
    ]);
    assert!(!again.status.success(), "init must not overwrite");
    assert!(text(&again).contains("--force"), "{}", text(&again));

    let file = job.dir.path().join("ada.json");
    std::fs::write(
        &file,
        r#"{"userPrincipalName": "ada@contoso.com", "givenName": "Ada", "surname": "Lovelace",
            "mail": "ada@contoso.com", "employeeId": "42"}"#,
    )
    .unwrap();
    let cfg = job.config.to_str().unwrap();
    let json = file.to_str().unwrap();
    let out = job.scimsync(&["eval", "--config", cfg, "--user-file", json]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("[givenName] = \"Ada\""), "{shown}");
    assert!(
        shown.contains("\"name.formatted\": \"Ada Lovelace\""),
        "{shown}"
    );
    assert!(shown.contains("\"active\": true"), "{shown}");
    assert!(
        shown.contains(&format!("\"{ENTERPRISE}:employeeNumber\": \"42\"")),
        "{shown}"
    );

    let out = job.scimsync(&[
        "eval",
        "--config",
        cfg,
        "--user-file",
        json,
        "--expression",
        "Join(\".\", ToLower([givenName]), [surname])",
    ]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("ToLower([givenName]) = \"ada\""), "{shown}");
    assert!(shown.contains("result: \"ada.Lovelace\""), "{shown}");
    // --json is JSON output now; `--json FILE` still reads the user, with a note.
    let out = job.scimsync(&[
        "eval",
        "--config",
        cfg,
        "--user-file",
        json,
        "--json",
        "--expression",
        "Join(\".\", ToLower([givenName]), [surname])",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("eval --json prints JSON");
    assert_eq!(doc["result"]["value"], "ada.Lovelace", "{doc}");
    let steps = doc["steps"].as_array().expect("steps");
    assert!(
        steps
            .iter()
            .any(|s| s["step"] == "ToLower([givenName])" && s["value"] == "ada"),
        "{doc}"
    );
    let out = job.scimsync(&[
        "eval",
        "--config",
        cfg,
        "--json",
        json,
        "--expression",
        "[surname]",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("`--json FILE` is now `--user-file FILE`"),
        "{}",
        text(&out)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("result: \"Lovelace\""));

    let out = job.scimsync(&[
        "eval",
        "--config",
        cfg,
        "--user-file",
        json,
        "--expression",
        "Join(\" \", [givenName]",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("error: expression 1:"),
        "{}",
        text(&out)
    );
    let out = job.scimsync(&[
        "eval",
        "--config",
        cfg,
        "--user-file",
        json,
        "--expression",
        "Left([nope], 2)",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("1:6: unknown source attribute [nope]"),
        "{}",
        text(&out)
    );

    // The same user read from Graph (the emulator) by user principal name.
    let src = graph.users().into_iter().next().unwrap();
    let upn = src["userPrincipalName"].as_str().unwrap();
    let out = job.scimsync(&["eval", "--config", cfg, "--user", upn]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains(&format!("\"userName\": \"{upn}\"")),
        "{shown}"
    );
}
