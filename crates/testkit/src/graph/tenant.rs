//! [`Tenant`]: the directory an emulator serves, built in code, generated, or loaded from a
//! JSON fixture.
//!
//! # Fixture format (`Tenant::to_json` / `Tenant::from_json`)
//!
//! ```json
//! {
//!   "tenantId": "contoso.onmicrosoft.com",
//!   "tenantGuid": "6f1c…",
//!   "app": {
//!     "displayName": "scimsync demo",
//!     "appId": "…client id…",
//!     "clientSecret": "…",
//!     "servicePrincipalId": "…",
//!     "appRoles": [ { "id": "…", "value": "Admin", "displayName": "Admin",
//!                     "allowedMemberTypes": ["User"], "isEnabled": true, "description": "…" } ],
//!     "certificates": [ "-----BEGIN CERTIFICATE-----\n… (optional)" ]
//!   },
//!   "users": [
//!     { "id": "…", "userPrincipalName": "adele.vance@contoso.onmicrosoft.com",
//!       "displayName": "Adele Vance", "accountEnabled": true, "businessPhones": [],
//!       "managerId": "…optional user id…",
//!       "deletedDateTime": "2024-05-01T09:12:44Z (optional: present = soft-deleted)" }
//!   ],
//!   "groups": [ { "id": "…", "displayName": "sg-Sales", "members": ["…user or group ids…"] } ],
//!   "assignments": [ { "id": "…", "principalId": "…", "appRoleId": "00000000-0000-0000-0000-000000000000",
//!                      "createdDateTime": "2021-02-02T04:22:45.9480566Z" } ]
//! }
//! ```
//!
//! Users and groups are Graph-shaped objects with canonical property names (unknown names are
//! rejected). A property stored as `null` was set and then cleared (delta reports it as `null`);
//! an absent property was never set. `appRoleId` defaults to Default Access (all zeros);
//! `principalType` is inferred. Change sequence numbers are not stored: loading assigns fresh ones.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::model::{App, Directory, UserRec, iso7};

/// An error loading a fixture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantError(pub String);

impl std::fmt::Display for TenantError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid tenant fixture: {}", self.0)
    }
}

impl std::error::Error for TenantError {}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AppFile {
    display_name: String,
    app_id: String,
    client_secret: String,
    service_principal_id: String,
    #[serde(default)]
    app_roles: Vec<Value>,
    /// PEM certificates registered as credentials (client assertions must be signed by one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    certificates: Vec<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AssignmentFile {
    #[serde(default)]
    id: Option<String>,
    principal_id: String,
    #[serde(default)]
    app_role_id: Option<String>,
    #[serde(default)]
    created_date_time: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TenantFile {
    tenant_id: String,
    tenant_guid: String,
    app: AppFile,
    #[serde(default)]
    users: Vec<Value>,
    #[serde(default)]
    groups: Vec<Value>,
    #[serde(default)]
    assignments: Vec<AssignmentFile>,
}

/// A directory (users, groups, memberships, app assignments, deleted users) not yet served.
///
/// Mutators panic on invalid input (unknown ids, unknown property names): they build test
/// fixtures, where a loud failure beats a silently different tenant.
#[derive(Clone, Debug)]
pub struct Tenant {
    dir: Directory,
}

fn panic_on<T>(what: &str, r: Result<T, String>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("Tenant::{what}: {e}"),
    }
}

impl Tenant {
    /// An empty tenant with a fresh GUID and a registered app (random client id and secret).
    pub fn new(tenant_id: &str) -> Tenant {
        let guid = || uuid::Uuid::new_v4().to_string();
        let secret = format!("{}8Q~{}", &guid()[..3], guid().replace('-', ""));
        Tenant {
            dir: Directory::new(
                tenant_id,
                guid(),
                App {
                    display_name: "scimsync".into(),
                    app_id: guid(),
                    client_secret: secret,
                    service_principal_id: guid(),
                    app_roles: Vec::new(),
                    certificates: Vec::new(),
                },
            ),
        }
    }

    /// A realistic tenant from a seed: `n` users, `groups` security groups with members, and an
    /// app with some users and groups assigned. The same arguments always give the same tenant
    /// (ids, secrets and timestamps included).
    pub fn generate(tenant_id: &str, n: usize, groups: usize, seed: u64) -> Tenant {
        Tenant {
            dir: super::generate::generate(tenant_id, n, groups, seed),
        }
    }

    pub(crate) fn from_directory(dir: Directory) -> Tenant {
        Tenant { dir }
    }

    pub(crate) fn into_directory(self) -> Directory {
        self.dir
    }

    /// The tenant's domain, e.g. `contoso.onmicrosoft.com`.
    pub fn tenant_id(&self) -> &str {
        &self.dir.domain
    }
    /// The tenant's GUID.
    pub fn tenant_guid(&self) -> &str {
        &self.dir.guid
    }
    /// The app (client) id.
    pub fn client_id(&self) -> &str {
        &self.dir.app.app_id
    }
    /// The client secret value.
    pub fn client_secret(&self) -> &str {
        &self.dir.app.client_secret
    }
    /// The service principal's object id.
    pub fn service_principal_id(&self) -> &str {
        &self.dir.app.service_principal_id
    }

    /// Adds a user (Graph-shaped JSON, `userPrincipalName` required); returns its id.
    pub fn add_user(&mut self, user: Value) -> String {
        panic_on("add_user", self.dir.add_user(user))
    }
    /// Adds a security group (`displayName` required, optional `members`); returns its id.
    pub fn add_group(&mut self, group: Value) -> String {
        panic_on("add_group", self.dir.add_group(group))
    }
    /// Adds a direct member (user or group) to a group.
    pub fn add_member(&mut self, group: &str, member: &str) {
        panic_on("add_member", self.dir.add_member(group, member))
    }
    /// Sets a user's manager.
    pub fn set_manager(&mut self, user: &str, manager: Option<&str>) {
        panic_on("set_manager", self.dir.set_manager(user, manager))
    }
    /// Soft-deletes a user.
    pub fn soft_delete_user(&mut self, id: &str) {
        panic_on("soft_delete_user", self.dir.soft_delete_user(id))
    }
    /// Assigns a user or group to the app with Default Access.
    pub fn assign(&mut self, principal: &str) {
        panic_on("assign", self.dir.assign(principal, None).map(drop))
    }
    /// Declares an app role on the app (`value` e.g. `"Admin"`); returns the role id.
    pub fn add_app_role(&mut self, value: &str, display_name: &str) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        self.dir.app.app_roles.push(json!({
            "allowedMemberTypes": ["User"],
            "description": display_name,
            "displayName": display_name,
            "id": id,
            "isEnabled": true,
            "origin": "Application",
            "value": value,
        }));
        id
    }
    /// Registers a certificate (PEM, `-----BEGIN CERTIFICATE-----`) as a credential of the app.
    /// From then on a `client_assertion` must name it (`x5t#S256` or `x5t`) and be signed with
    /// its key; otherwise the token endpoint answers 401 `AADSTS700027`. Secrets keep working.
    pub fn register_certificate(&mut self, cert_pem: &str) {
        let der = panic_on(
            "register_certificate",
            super::cert::certificate_der(cert_pem),
        );
        if !self.dir.app.certificates.contains(&der) {
            self.dir.app.certificates.push(der);
        }
    }
    /// Assigns a user or group to the app with a declared role.
    pub fn assign_role(&mut self, principal: &str, app_role_id: &str) {
        panic_on(
            "assign_role",
            self.dir.assign(principal, Some(app_role_id)).map(drop),
        )
    }

    /// All users (live and soft-deleted) in fixture form.
    pub fn users(&self) -> Vec<Value> {
        users_json(&self.dir, true)
    }
    /// All groups in fixture form.
    pub fn groups(&self) -> Vec<Value> {
        groups_json(&self.dir)
    }
    /// Ids of the users and groups assigned to the app.
    pub fn assigned_principals(&self) -> Vec<String> {
        self.dir
            .assignments
            .values()
            .map(|a| a.principal_id.clone())
            .collect()
    }

    /// Serialises to the fixture format (pretty JSON).
    pub fn to_json(&self) -> String {
        let d = &self.dir;
        let file = TenantFile {
            tenant_id: d.domain.clone(),
            tenant_guid: d.guid.clone(),
            app: AppFile {
                display_name: d.app.display_name.clone(),
                app_id: d.app.app_id.clone(),
                client_secret: d.app.client_secret.clone(),
                service_principal_id: d.app.service_principal_id.clone(),
                app_roles: d.app.app_roles.clone(),
                certificates: d
                    .app
                    .certificates
                    .iter()
                    .map(|der| super::cert::certificate_pem(der))
                    .collect(),
            },
            users: users_json(d, true),
            groups: groups_json(d),
            assignments: d
                .assignments
                .values()
                .map(|a| AssignmentFile {
                    id: Some(a.id.clone()),
                    principal_id: a.principal_id.clone(),
                    app_role_id: Some(a.app_role_id.clone()),
                    created_date_time: Some(a.created.clone()),
                })
                .collect(),
        };
        serde_json::to_string_pretty(&file).unwrap_or_default()
    }

    /// Loads the fixture format.
    pub fn from_json(json: &str) -> Result<Tenant, TenantError> {
        let file: TenantFile =
            serde_json::from_str(json).map_err(|e| TenantError(e.to_string()))?;
        let mut dir = Directory::new(
            &file.tenant_id,
            file.tenant_guid,
            App {
                display_name: file.app.display_name,
                app_id: file.app.app_id,
                client_secret: file.app.client_secret,
                service_principal_id: file.app.service_principal_id,
                app_roles: file.app.app_roles,
                certificates: Vec::new(),
            },
        );
        for (i, pem) in file.app.certificates.iter().enumerate() {
            let der = super::cert::certificate_der(pem)
                .map_err(|m| TenantError(format!("app.certificates[{i}]: {m}")))?;
            dir.app.certificates.push(der);
        }
        let e = |ctx: &str, m: String| TenantError(format!("{ctx}: {m}"));
        // Managers and members may point forward in the file, so links go in a second pass.
        let mut managers = Vec::new();
        for (i, mut u) in file.users.into_iter().enumerate() {
            let manager = u.as_object_mut().and_then(|o| o.shift_remove("managerId"));
            let id = dir.add_user(u).map_err(|m| e(&format!("users[{i}]"), m))?;
            if let Some(Value::String(m)) = manager {
                managers.push((id, m));
            }
        }
        for (id, m) in managers {
            dir.set_manager(&id, Some(&m))
                .map_err(|m| e(&format!("manager of {id}"), m))?;
        }
        let mut members = Vec::new();
        for (i, mut g) in file.groups.into_iter().enumerate() {
            let m = g.as_object_mut().and_then(|o| o.shift_remove("members"));
            let id = dir
                .add_group(g)
                .map_err(|m| e(&format!("groups[{i}]"), m))?;
            if let Some(Value::Array(list)) = m {
                members.push((id, list));
            }
        }
        for (gid, list) in members {
            for m in list {
                let m = m.as_str().ok_or_else(|| {
                    e(
                        &format!("members of {gid}"),
                        "member ids must be strings".into(),
                    )
                })?;
                dir.add_member(&gid, m)
                    .map_err(|m| e(&format!("members of {gid}"), m))?;
            }
        }
        for (i, a) in file.assignments.into_iter().enumerate() {
            let id = a.id.unwrap_or_else(|| {
                let mut b = [0u8; 32];
                b[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
                b[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
                super::model::assignment_id(b)
            });
            let created = a
                .created_date_time
                .unwrap_or_else(|| iso7(chrono::Utc::now()));
            dir.assign_with(&a.principal_id, a.app_role_id.as_deref(), id, created)
                .map_err(|m| e(&format!("assignments[{i}]"), m))?;
        }
        Ok(Tenant { dir })
    }
}

/// A user in fixture form: `id`, stored properties, `managerId`, `deletedDateTime`.
pub(crate) fn user_json(id: &str, u: &UserRec) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(id));
    m.extend(u.props.clone());
    if let Some(mgr) = &u.manager {
        m.insert("managerId".into(), json!(mgr));
    }
    if let Some(t) = u.deleted {
        m.insert("deletedDateTime".into(), json!(super::model::iso(t)));
    }
    Value::Object(m)
}

pub(crate) fn users_json(d: &Directory, include_deleted: bool) -> Vec<Value> {
    d.users
        .iter()
        .filter(|(_, u)| include_deleted || u.deleted.is_none())
        .map(|(id, u)| user_json(id, u))
        .collect()
}

pub(crate) fn groups_json(d: &Directory) -> Vec<Value> {
    d.groups
        .iter()
        .map(|(id, g)| {
            let mut m = Map::new();
            m.insert("id".into(), json!(id));
            m.extend(g.props.clone());
            m.insert("members".into(), json!(g.members));
            Value::Object(m)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_round_trips() {
        let t = Tenant::generate("fabrikam.onmicrosoft.com", 30, 4, 7);
        let json = t.to_json();
        let back = Tenant::from_json(&json).unwrap();
        assert_eq!(back.to_json(), json);
        assert_eq!(back.users().len(), 30);
    }

    #[test]
    fn fixture_errors_are_clear() {
        let err = Tenant::from_json(r#"{"tenantId":"x"}"#).unwrap_err();
        assert!(err.to_string().contains("missing field"), "{err}");
        let t = Tenant::new("x.onmicrosoft.com");
        let mut v: Value = serde_json::from_str(&t.to_json()).unwrap();
        v["users"] = json!([{"userPrincipalName": "a@x", "shoeSize": 44}]);
        let err = Tenant::from_json(&v.to_string()).unwrap_err();
        assert!(err.to_string().contains("shoeSize"), "{err}");
    }
}
