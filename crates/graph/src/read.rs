//! Reading users, app-role assignments and soft-deleted users, and the [`Source`]
//! implementation (delta reads live in `delta.rs`, groups in `groups.rs`).

use crate::assignment_page::AssignmentPage;
use crate::attributes::{GraphProperty, graph_property, is_computed_attribute};
use crate::batch::Fetched;
use crate::client::{GraphClient, PageEvent};
use futures::{StreamExt, TryStreamExt};
use reqwest::StatusCode;
use scimsync_core::{
    AppRoleAssignment, Assignments, GroupQuery, GroupRead, Source, SourceError, SourceSnapshot,
    SourceUser, UserQuery, UserRead, UserScope,
};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

pub(crate) const USER_READ: &str = "User.Read.All";
pub(crate) const GROUP_MEMBER_READ: &str = "GroupMember.Read.All";
const APPLICATION_READ: &str = "Application.Read.All";

/// Attributes the engine always needs, whatever the mappings read.
const ALWAYS: [&str; 3] = ["objectId", "userPrincipalName", "accountEnabled"];

/// The requested attributes resolved to Graph properties, plus the `$select` they need.
pub(crate) struct Projection {
    /// (name as requested, where it lives on Graph)
    attrs: Vec<(String, GraphProperty)>,
    select: String,
    /// `manager` was requested, under this name: a navigation property, read with
    /// `$expand=manager($select=id)` on GETs and as `manager@delta` in delta rounds (where
    /// selecting it turns on relationship tracking), never with `$select`.
    manager: Option<String>,
}

impl Projection {
    pub(crate) fn new(requested: &[String]) -> Self {
        let mut attrs: Vec<(String, GraphProperty)> = Vec::new();
        let mut select: Vec<String> = vec!["id".into()];
        let mut manager = None;
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
                None if name.eq_ignore_ascii_case("manager") => manager = Some(name),
                None => {
                    tracing::warn!(attribute = %name, "unknown source attribute; it reads as empty")
                }
            }
        }
        Projection {
            attrs,
            select: select.join(","),
            manager,
        }
    }

    /// The query of a GET of users (one or a list).
    pub(crate) fn get_query(&self) -> String {
        match self.manager {
            Some(_) => format!("$select={}&$expand=manager($select=id)", self.select),
            None => format!("$select={}", self.select),
        }
    }

    /// The query of an initial delta round (`$expand` is not allowed there).
    pub(crate) fn delta_query(&self) -> String {
        match self.manager {
            Some(_) => format!("$select={},manager", self.select),
            None => format!("$select={}", self.select),
        }
    }

    /// A Graph user object as a [`SourceUser`] keyed by Entra names; `None` without an id.
    pub(crate) fn user(&self, graph: &Value) -> Option<SourceUser> {
        let obj: &Map<String, Value> = graph.as_object()?;
        let id = obj.get("id")?.as_str()?.to_string();
        let mut attrs: scimsync_core::Attrs = self
            .attrs
            .iter()
            .filter_map(|(name, p)| p.read(obj).map(|v| (name.clone(), v)))
            .collect();
        if let Some(name) = &self.manager
            && let Some(manager) = manager_of(obj)
        {
            attrs.insert(name.clone(), manager);
        }
        Some(SourceUser { id, attrs })
    }
}

/// The manager's object id from `manager` (a GET with `$expand`) or `manager@delta` (a delta
/// item). `Value::Null` when a delta item says the link was removed; `None` when the object
/// does not say (no key, `null` or `{}` in an expanded list: all three are seen).
fn manager_of(obj: &Map<String, Value>) -> Option<Value> {
    if let Some(links) = obj.get("manager@delta").and_then(Value::as_array) {
        // 0 or 1 live element; a removed link carries `@removed`.
        let live = links
            .iter()
            .filter(|l| l.get("@removed").is_none())
            .find_map(|l| l.get("id").and_then(Value::as_str));
        return match live {
            Some(id) => Some(Value::String(id.to_string())),
            None if !links.is_empty() => Some(Value::Null),
            None => None,
        };
    }
    let id = obj.get("manager")?.get("id")?.as_str()?;
    Some(Value::String(id.to_string()))
}

/// What `appRoleAssignedTo` and the group expansion yield.
#[derive(Default)]
struct Expanded {
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
        let url = self.url(&["users", id_or_upn], &projection.get_query());
        match self.get(&url, USER_READ).await {
            Ok(body) => Ok(projection.user(&body)),
            Err(f) if f.status == Some(StatusCode::NOT_FOUND) => Ok(None),
            Err(f) => Err(f.error),
        }
    }

    async fn all_users(&self, projection: &Projection) -> Result<Vec<SourceUser>, SourceError> {
        let url = self.url(
            &["users"],
            &format!("{}&$top={}", projection.get_query(), self.inner.page_size),
        );
        let mut users = Vec::new();
        self.get_pages(url, USER_READ, |event| match event {
            PageEvent::Page(page) => {
                for u in page {
                    match projection.user(&u) {
                        Some(user) => users.push(user),
                        None => tracing::warn!("Graph listed a user without an id; skipped"),
                    }
                }
            }
            PageEvent::Restart => users.clear(),
        })
        .await?;
        Ok(users)
    }

    pub(crate) async fn soft_deleted(&self) -> Result<BTreeSet<String>, SourceError> {
        let url = self.url(
            &["directory", "deletedItems", "microsoft.graph.user"],
            &format!("$select=id&$top={}", self.inner.page_size),
        );
        let mut ids = BTreeSet::new();
        self.get_pages(url, USER_READ, |event| match event {
            PageEvent::Page(page) => ids.extend(
                page.iter()
                    .filter_map(|u| u.get("id")?.as_str().map(str::to_string)),
            ),
            PageEvent::Restart => ids.clear(),
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
        self.get_pages(url, GROUP_MEMBER_READ, |event| {
            let page = match event {
                PageEvent::Page(page) => page,
                PageEvent::Restart => {
                    users.clear();
                    return;
                }
            };
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

    /// `appRoleAssignedTo` of the app, paged, split into user and group principals.
    ///
    /// Graph has no delta query for assignments, so every cycle reads the whole list: with
    /// the largest page Graph allows (`$top=999`, against a default of 100) and only the three
    /// properties the scope needs, that is one request per 999 assignments (a tenant with
    /// 40,000 direct assignments: 41 requests, where it took 400).
    async fn app_role_assigned_to(
        &self,
        service_principal_id: &str,
    ) -> Result<Assignments, SourceError> {
        let url = self.url(
            &[
                "servicePrincipals",
                service_principal_id,
                "appRoleAssignedTo",
            ],
            &format!(
                "$select=principalId,principalType,appRoleId&$top={}",
                self.inner.page_size
            ),
        );
        let mut out = Assignments::default();
        let mut unreadable = 0usize;
        // Each distinct role id and principal type is allocated once for the whole list.
        let (user, group): (Arc<str>, Arc<str>) = ("User".into(), "Group".into());
        let mut role_ids: HashMap<String, Arc<str>> = HashMap::new();
        self.get_typed_pages::<AssignmentPage>(url, APPLICATION_READ, |event| {
            let page = match event {
                PageEvent::Page(page) => page,
                PageEvent::Restart => {
                    out = Assignments::default();
                    unreadable = 0;
                    return;
                }
            };
            for a in page {
                let (Some(principal), Some(kind)) = (a.principal_id, a.principal_type) else {
                    unreadable += 1;
                    continue;
                };
                let role = a
                    .app_role_id
                    .unwrap_or_else(|| uuid::Uuid::nil().to_string());
                let role = match role_ids.get(&role) {
                    Some(shared) => shared.clone(),
                    None => {
                        let shared: Arc<str> = role.as_str().into();
                        role_ids.insert(role, shared.clone());
                        shared
                    }
                };
                let (target, principal_type) = if kind.eq_ignore_ascii_case("User") {
                    (&mut out.users, &user)
                } else if kind.eq_ignore_ascii_case("Group") {
                    (&mut out.groups, &group)
                } else {
                    tracing::info!(principal = %principal, principal_type = %kind,
                        "app role assignment to a non-user, non-group principal ignored");
                    continue;
                };
                let assignment = AppRoleAssignment {
                    app_role_id: role,
                    principal_type: principal_type.clone(),
                    principal_id: principal.as_str().into(),
                };
                let list = target.entry(principal).or_default();
                if !list.contains(&assignment) {
                    list.push(assignment);
                }
            }
        })
        .await?;
        if unreadable > 0 {
            tracing::warn!(
                service_principal = service_principal_id,
                count = unreadable,
                "app role assignments without a principalId or principalType ignored"
            );
        }
        Ok(out)
    }

    /// The assignments with assigned groups expanded to their direct user members.
    async fn expanded_assignments(
        &self,
        service_principal_id: &str,
    ) -> Result<Expanded, SourceError> {
        let assignments = self.app_role_assigned_to(service_principal_id).await?;
        let mut out = Expanded::default();
        for (user, list) in &assignments.users {
            out.assigned.insert(user.clone());
            let roles = out.roles.entry(user.clone()).or_default();
            for a in list {
                roles.insert((a.app_role_id.to_string(), "User".into()));
            }
        }
        let expanded: Vec<(String, Vec<String>)> =
            futures::stream::iter(assignments.groups.keys().cloned().map(|g| async move {
                let members = self.group_user_members(&g).await?;
                Ok::<_, SourceError>((g, members))
            }))
            .buffer_unordered(self.inner.max_concurrency)
            .try_collect()
            .await?;
        for (group, members) in expanded {
            let group_roles = &assignments.groups[&group];
            for user in members {
                out.assigned.insert(user.clone());
                let roles = out.roles.entry(user).or_default();
                for role in group_roles {
                    roles.insert((role.app_role_id.to_string(), "Group".into()));
                }
            }
        }
        Ok(out)
    }

    /// Users by object id through `$batch`, complete under `projection`; unknown ids are left
    /// out. The answer keeps the order of `ids` (without repeats).
    pub(crate) async fn users_by_id(
        &self,
        ids: &[String],
        projection: &Projection,
    ) -> Result<Vec<SourceUser>, SourceError> {
        let mut seen = BTreeSet::new();
        let unique: Vec<&String> = ids.iter().filter(|id| seen.insert(id.as_str())).collect();
        let query = projection.get_query();
        let urls: Vec<String> = unique
            .iter()
            .map(|id| self.relative_url(&["users", id], &query))
            .collect();
        let fetched = self.batch_get(&urls, USER_READ).await?;
        let mut users = Vec::with_capacity(fetched.len());
        for (id, f) in unique.into_iter().zip(fetched) {
            match f {
                Fetched::Found(body) => match projection.user(&body) {
                    Some(u) => users.push(u),
                    None => {
                        tracing::warn!(user = %id, "Graph returned a user without an id; skipped")
                    }
                },
                Fetched::NotFound => {
                    tracing::debug!(user = %id, "user not found (deleted meanwhile?); left out")
                }
            }
        }
        Ok(users)
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
                } => self
                    .expanded_assignments(service_principal_id)
                    .await
                    .map(Some),
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

    async fn read_user_changes(
        &self,
        query: &UserQuery,
        watermark: Option<&str>,
    ) -> Result<UserRead, SourceError> {
        self.user_changes(
            &Projection::new(&query.attributes),
            watermark,
            query.keep.as_deref(),
        )
        .await
    }

    async fn read_users_by_id(
        &self,
        ids: &[String],
        query: &UserQuery,
    ) -> Result<Vec<SourceUser>, SourceError> {
        self.users_by_id(ids, &Projection::new(&query.attributes))
            .await
    }

    async fn read_assignments(
        &self,
        service_principal_id: &str,
    ) -> Result<Assignments, SourceError> {
        self.app_role_assigned_to(service_principal_id).await
    }

    async fn read_groups(
        &self,
        query: &GroupQuery,
        watermark: Option<&str>,
    ) -> Result<GroupRead, SourceError> {
        self.group_changes(query, watermark).await
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

    #[test]
    fn directory_extensions_are_selected_and_read_verbatim() {
        let ext = "extension_b7d8e648520f41d3b9c0fdeb91768a0a_jobGroupTracker";
        let p = Projection::new(&[
            ext.into(),
            "originalUserPrincipalName".into(),
            "extension_x".into(),
        ]);
        assert_eq!(
            p.select,
            format!("id,userPrincipalName,accountEnabled,{ext}")
        );
        let u = p
            .user(
                &json!({"id": "u1", "userPrincipalName": "a@x", "accountEnabled": true, ext: "E4"}),
            )
            .unwrap();
        assert_eq!(u.attrs.get(ext), Some(&json!("E4")));
        assert_eq!(u.str("originalUserPrincipalName"), Some("a@x"));
    }
}
