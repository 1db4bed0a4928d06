//! Reading users, app-role assignments and soft-deleted users: the [`Source`] implementation.

use crate::attributes::{GraphProperty, graph_property, is_computed_attribute};
use crate::client::GraphClient;
use futures::{StreamExt, TryStreamExt};
use reqwest::StatusCode;
use scimsync_core::{Source, SourceError, SourceSnapshot, SourceUser, UserQuery, UserScope};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

const USER_READ: &str = "User.Read.All";
const GROUP_MEMBER_READ: &str = "GroupMember.Read.All";
const APPLICATION_READ: &str = "Application.Read.All";

/// Attributes the engine always needs, whatever the mappings read.
const ALWAYS: [&str; 3] = ["objectId", "userPrincipalName", "accountEnabled"];

/// The requested attributes resolved to Graph properties, plus the `$select` they need.
struct Projection {
    /// (name as requested, where it lives on Graph)
    attrs: Vec<(String, GraphProperty)>,
    select: String,
}

impl Projection {
    fn new(requested: &[String]) -> Self {
        let mut attrs: Vec<(String, GraphProperty)> = Vec::new();
        let mut select: Vec<String> = vec!["id".into()];
        let names = ALWAYS
            .iter()
            .map(|s| s.to_string())
            .chain(requested.iter().cloned());
        for name in names {
            if attrs.iter().any(|(n, _)| *n == name) {
                continue;
            }
            match graph_property(&name) {
                Some(p) => {
                    if !select.iter().any(|s| s == p.select()) {
                        select.push(p.select().to_string());
                    }
                    attrs.push((name, p));
                }
                None if is_computed_attribute(&name) => {}
                None if name.eq_ignore_ascii_case("manager") => {
                    tracing::warn!(
                        "source attribute manager is not supported yet; it reads as empty"
                    );
                }
                None => {
                    tracing::warn!(attribute = %name, "unknown source attribute; it reads as empty")
                }
            }
        }
        Projection {
            attrs,
            select: select.join(","),
        }
    }

    /// A Graph user object as a [`SourceUser`] keyed by Entra names; `None` without an id.
    fn user(&self, graph: &Value) -> Option<SourceUser> {
        let obj: &Map<String, Value> = graph.as_object()?;
        let id = obj.get("id")?.as_str()?.to_string();
        let attrs = self
            .attrs
            .iter()
            .filter_map(|(name, p)| p.read(obj).map(|v| (name.clone(), v)))
            .collect();
        Some(SourceUser { id, attrs })
    }
}

/// What `appRoleAssignedTo` and the group expansion yield.
#[derive(Default)]
struct Assignments {
    assigned: BTreeSet<String>,
    /// user id → (appRoleId, principalType) pairs.
    roles: BTreeMap<String, BTreeSet<(String, String)>>,
}

impl GraphClient {
    /// One user by object id or UPN, or `None` if Graph does not know it (404).
    pub async fn user(
        &self,
        id_or_upn: &str,
        attributes: &[String],
    ) -> Result<Option<SourceUser>, SourceError> {
        let projection = Projection::new(attributes);
        let url = self.url(
            &["users", id_or_upn],
            &format!("$select={}", projection.select),
        );
        match self.get(&url, USER_READ).await {
            Ok(body) => Ok(projection.user(&body)),
            Err(f) if f.status == Some(StatusCode::NOT_FOUND) => Ok(None),
            Err(f) => Err(f.error),
        }
    }

    async fn all_users(&self, projection: &Projection) -> Result<Vec<SourceUser>, SourceError> {
        let url = self.url(
            &["users"],
            &format!(
                "$select={}&$top={}",
                projection.select, self.inner.page_size
            ),
        );
        let mut users = Vec::new();
        self.get_pages(url, USER_READ, |page| {
            for u in page {
                match projection.user(&u) {
                    Some(user) => users.push(user),
                    None => tracing::warn!("Graph listed a user without an id; skipped"),
                }
            }
        })
        .await?;
        Ok(users)
    }

    async fn soft_deleted(&self) -> Result<BTreeSet<String>, SourceError> {
        let url = self.url(
            &["directory", "deletedItems", "microsoft.graph.user"],
            &format!("$select=id&$top={}", self.inner.page_size),
        );
        let mut ids = BTreeSet::new();
        self.get_pages(url, USER_READ, |page| {
            ids.extend(
                page.iter()
                    .filter_map(|u| u.get("id")?.as_str().map(str::to_string)),
            );
        })
        .await?;
        Ok(ids)
    }

    /// Direct members of a group that are users. Nested groups are not expanded, as in Entra.
    async fn group_user_members(&self, group_id: &str) -> Result<Vec<String>, SourceError> {
        let url = self.url(
            &["groups", group_id, "members"],
            &format!("$select=id&$top={}", self.inner.page_size),
        );
        let mut users = Vec::new();
        self.get_pages(url, GROUP_MEMBER_READ, |page| {
            for m in page {
                let Some(id) = m.get("id").and_then(Value::as_str) else {
                    continue;
                };
                match m.get("@odata.type").and_then(Value::as_str) {
                    // Without a type we cannot tell; an id that is no user matches nobody.
                    Some("#microsoft.graph.user") | None => users.push(id.to_string()),
                    Some("#microsoft.graph.group") => tracing::info!(
                        group = group_id,
                        nested_group = id,
                        "nested group in an assigned group is ignored (Entra assigns direct members only)"
                    ),
                    Some(other) => tracing::debug!(group = group_id, member = id, kind = other, "non-user member ignored"),
                }
            }
        })
        .await?;
        Ok(users)
    }

    async fn assignments(&self, service_principal_id: &str) -> Result<Assignments, SourceError> {
        let url = self.url(
            &[
                "servicePrincipals",
                service_principal_id,
                "appRoleAssignedTo",
            ],
            "",
        );
        let mut out = Assignments::default();
        // group id → appRoleIds assigned to it
        let mut groups: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        self.get_pages(url, APPLICATION_READ, |page| {
            for a in page {
                let text = |k: &str| a.get(k).and_then(Value::as_str).map(str::to_string);
                let (Some(principal), Some(kind)) = (text("principalId"), text("principalType"))
                else {
                    continue;
                };
                let role = text("appRoleId").unwrap_or_else(|| uuid::Uuid::nil().to_string());
                if kind.eq_ignore_ascii_case("User") {
                    out.assigned.insert(principal.clone());
                    out.roles
                        .entry(principal)
                        .or_default()
                        .insert((role, "User".into()));
                } else if kind.eq_ignore_ascii_case("Group") {
                    groups.entry(principal).or_default().insert(role);
                }
            }
        })
        .await?;
        let expanded: Vec<(String, Vec<String>)> =
            futures::stream::iter(groups.keys().cloned().map(|g| async move {
                let members = self.group_user_members(&g).await?;
                Ok::<_, SourceError>((g, members))
            }))
            .buffer_unordered(self.inner.max_concurrency)
            .try_collect()
            .await?;
        for (group, members) in expanded {
            let group_roles = &groups[&group];
            for user in members {
                out.assigned.insert(user.clone());
                let roles = out.roles.entry(user).or_default();
                for role in group_roles {
                    roles.insert((role.clone(), "Group".into()));
                }
            }
        }
        Ok(out)
    }
}

impl Source for GraphClient {
    async fn read_users(&self, query: &UserQuery) -> Result<SourceSnapshot, SourceError> {
        let projection = Projection::new(&query.attributes);
        let assignments = async {
            match &query.scope {
                UserScope::All => Ok(None),
                UserScope::Assigned {
                    service_principal_id,
                } => self.assignments(service_principal_id).await.map(Some),
            }
        };
        let (mut users, soft_deleted, assignments) = futures::try_join!(
            self.all_users(&projection),
            self.soft_deleted(),
            assignments
        )?;
        let assigned = assignments.map(|a| {
            for user in &mut users {
                if let Some(roles) = a.roles.get(&user.id) {
                    let list = roles
                        .iter()
                        .map(|(role, kind)| json!({"appRoleId": role, "principalType": kind}))
                        .collect();
                    user.attrs
                        .insert("appRoleAssignments".into(), Value::Array(list));
                }
            }
            a.assigned
        });
        tracing::info!(
            users = users.len(),
            assigned = assigned.as_ref().map(BTreeSet::len),
            soft_deleted = soft_deleted.len(),
            requests = self.requests_sent(),
            "read users from Graph"
        );
        Ok(SourceSnapshot {
            users,
            assigned,
            soft_deleted,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_always_has_the_engine_attributes_once() {
        let p = Projection::new(&[
            "telephoneNumber".into(),
            "extensionAttribute3".into(),
            "extensionAttribute4".into(),
            "objectId".into(),
            "IsSoftDeleted".into(),
            "nope".into(),
        ]);
        assert_eq!(
            p.select,
            "id,userPrincipalName,accountEnabled,businessPhones,onPremisesExtensionAttributes"
        );
    }

    #[test]
    fn graph_user_reads_back_under_entra_names() {
        let p = Projection::new(&[
            "telephoneNumber".into(),
            "mobile".into(),
            "extensionAttribute3".into(),
            "employeeOrgData.division".into(),
            "surname".into(),
        ]);
        let u = p
            .user(&json!({
                "id": "u1", "userPrincipalName": "a@x", "accountEnabled": false,
                "businessPhones": ["+1 555"], "mobilePhone": "+1 666", "surname": null,
                "onPremisesExtensionAttributes": {"extensionAttribute3": "E3"},
                "employeeOrgData": {"division": "R&D", "costCenter": null}
            }))
            .unwrap();
        assert_eq!(u.id, "u1");
        assert_eq!(
            serde_json::to_value(&u.attrs).unwrap(),
            json!({"objectId": "u1", "userPrincipalName": "a@x", "accountEnabled": false,
                   "telephoneNumber": "+1 555", "mobile": "+1 666", "extensionAttribute3": "E3",
                   "employeeOrgData.division": "R&D"})
        );
    }
}
