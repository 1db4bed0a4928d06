//! The in-memory directory behind the emulator: users, groups, memberships, app role assignments,
//! soft-deleted users and hard-delete tombstones, each with change sequence numbers.
//!
//! Every mutation takes the next value of one tenant-wide counter and stamps it on the objects it
//! touches (`seq`), and on the individual properties it sets (`prop_seq`), so a delta round can ask
//! "what changed after N" and see only changes to the properties it selected.
//! Properties are stored by canonical name; a property that was set and then cleared is kept as
//! an explicit `null`, which is how delta tells "cleared" from "never set".

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

use super::schema::{self, GROUP, USER};

/// `appRoleId` of the "Default Access" role, used when the app declares no roles.
pub const DEFAULT_ACCESS_ROLE: &str = "00000000-0000-0000-0000-000000000000";

/// What a model mutation can reject.
pub(crate) type ModelResult<T> = Result<T, String>;

/// Kind of principal in an app role assignment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PrincipalType {
    User,
    Group,
}

impl PrincipalType {
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalType::User => "User",
            PrincipalType::Group => "Group",
        }
    }
}

#[derive(Clone, Debug, Default)]
pub(crate) struct UserRec {
    /// Canonical property name → value (never `id`/`deletedDateTime`); `null` = cleared.
    pub props: Map<String, Value>,
    /// Property name → sequence number of its last change.
    pub prop_seq: HashMap<String, u64>,
    /// Last change of anything about this user (properties, memberships, assignments, state).
    pub seq: u64,
    pub created_seq: u64,
    /// Last soft delete or restore.
    pub state_seq: u64,
    pub deleted: Option<DateTime<Utc>>,
    pub manager: Option<String>,
    /// The manager before the last manager change, for `manager@delta` removals.
    pub manager_prev: Option<String>,
    pub manager_seq: u64,
}

impl UserRec {
    pub fn upn(&self) -> &str {
        self.props
            .get("userPrincipalName")
            .and_then(Value::as_str)
            .unwrap_or("")
    }
    pub fn display_name(&self) -> Option<&str> {
        self.props.get("displayName").and_then(Value::as_str)
    }
}

#[derive(Clone, Debug, Default)]
pub(crate) struct GroupRec {
    pub props: Map<String, Value>,
    /// Property name → sequence number of its last change (for `/groups/delta`).
    pub prop_seq: HashMap<String, u64>,
    /// Direct members (user or group ids) in the order they were added.
    pub members: Vec<String>,
    /// Member id → sequence number of when it was (last) added.
    pub member_seq: HashMap<String, u64>,
    /// Former members → (sequence number of the removal, `@odata.type`), for `members@delta`
    /// removals. Re-adding a member drops its entry.
    pub removed_members: HashMap<String, (u64, &'static str)>,
    pub seq: u64,
    pub created_seq: u64,
}

#[derive(Clone, Debug)]
pub(crate) struct AssignmentRec {
    pub id: String,
    pub principal_id: String,
    pub principal_type: PrincipalType,
    pub app_role_id: String,
    pub created: String,
}

/// The application registration and its service principal (the "enterprise app").
#[derive(Clone)]
pub(crate) struct App {
    pub display_name: String,
    pub app_id: String,
    pub client_secret: String,
    pub service_principal_id: String,
    /// Graph `appRole` objects (`id`, `value`, `displayName`, `allowedMemberTypes`, `isEnabled`…).
    pub app_roles: Vec<Value>,
    /// DER of the certificates registered as credentials: when there is one, client
    /// assertions must be signed by the key of one of them.
    pub certificates: Vec<Vec<u8>>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the client secret.
        f.debug_struct("App")
            .field("display_name", &self.display_name)
            .field("app_id", &self.app_id)
            .field("client_secret", &"[REDACTED]")
            .field("service_principal_id", &self.service_principal_id)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Directory {
    pub domain: String,
    pub guid: String,
    pub app: App,
    pub users: BTreeMap<String, UserRec>,
    pub groups: BTreeMap<String, GroupRec>,
    /// Keyed by assignment id (the paging order of `appRoleAssignedTo`).
    pub assignments: BTreeMap<String, AssignmentRec>,
    /// Hard-deleted user id → sequence number of the deletion.
    pub user_tombstones: BTreeMap<String, u64>,
    pub group_tombstones: BTreeMap<String, u64>,
    pub seq: u64,
    /// Lower-cased UPN → id of live users: UPN look-ups and uniqueness checks stay O(1), so
    /// a 100,000-user tenant builds in seconds.
    upn_index: std::collections::HashMap<String, String>,
}

/// Graph's timestamp format: second precision, `Z`.
pub(crate) fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The 7-digit-fraction form appRoleAssignment `createdDateTime` uses.
pub(crate) fn iso7(t: DateTime<Utc>) -> String {
    format!(
        "{}.{:07}Z",
        t.format("%Y-%m-%dT%H:%M:%S"),
        t.timestamp_subsec_nanos() / 100
    )
}

/// A 43-character base64url-like assignment id, as Graph uses (not a GUID).
pub(crate) fn assignment_id(bytes: [u8; 32]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn new_guid() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn random_assignment_id() -> String {
    let mut b = [0u8; 32];
    b[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    b[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    assignment_id(b)
}

impl Directory {
    pub fn new(domain: &str, guid: String, app: App) -> Self {
        Directory {
            domain: domain.to_string(),
            guid,
            app,
            users: BTreeMap::new(),
            groups: BTreeMap::new(),
            assignments: BTreeMap::new(),
            user_tombstones: BTreeMap::new(),
            group_tombstones: BTreeMap::new(),
            seq: 0,
            upn_index: Default::default(),
        }
    }

    fn bump(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    // ---- lookups -------------------------------------------------------------------------

    /// A live (not soft-deleted) user by id or UPN (case-insensitive).
    pub fn live_user(&self, key: &str) -> Option<(&String, &UserRec)> {
        if let Some((id, u)) = self.users.get_key_value(key)
            && u.deleted.is_none()
        {
            return Some((id, u));
        }
        let id = self.upn_index.get(&key.to_lowercase())?;
        self.users
            .get_key_value(id)
            .filter(|(_, u)| u.deleted.is_none())
    }

    fn user_mut(&mut self, id: &str) -> ModelResult<&mut UserRec> {
        self.users
            .get_mut(id)
            .ok_or_else(|| format!("no user with id '{id}'"))
    }

    fn check_upn_free(&self, upn: &str, except: Option<&str>) -> ModelResult<()> {
        let taken = self
            .upn_index
            .get(&upn.to_lowercase())
            .is_some_and(|owner| Some(owner.as_str()) != except);
        if taken {
            Err(format!("userPrincipalName '{upn}' is already in use"))
        } else {
            Ok(())
        }
    }

    /// The UPN a soft-deleted user shows in `deletedItems`: the id without hyphens, prepended.
    pub fn deleted_upn(id: &str, upn: &str) -> String {
        format!("{}{}", id.replace('-', ""), upn)
    }

    // ---- users ---------------------------------------------------------------------------

    /// Adds a user from a Graph-shaped object. `userPrincipalName` is required; `id` is
    /// generated when absent; `accountEnabled` defaults to `true` and `createdDateTime` to now.
    pub fn add_user(&mut self, user: Value) -> ModelResult<String> {
        let Value::Object(mut obj) = user else {
            return Err("a user must be a JSON object".into());
        };
        let id = match obj.shift_remove("id") {
            Some(Value::String(s)) if !s.is_empty() => s,
            None | Some(Value::Null) => new_guid(),
            Some(other) => return Err(format!("user id must be a string, got {other}")),
        };
        if self.users.contains_key(&id) || self.groups.contains_key(&id) {
            return Err(format!("an object with id '{id}' already exists"));
        }
        let deleted = match obj.shift_remove("deletedDateTime") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(
                DateTime::parse_from_rfc3339(&s)
                    .map_err(|e| format!("bad deletedDateTime '{s}': {e}"))?
                    .with_timezone(&Utc),
            ),
            Some(other) => return Err(format!("deletedDateTime must be a string, got {other}")),
        };
        let manager = match obj.shift_remove("managerId") {
            Some(Value::String(s)) => Some(s),
            None | Some(Value::Null) => None,
            Some(other) => return Err(format!("managerId must be a string, got {other}")),
        };
        let props = canonical_props(obj)?;
        let upn = props
            .get("userPrincipalName")
            .and_then(Value::as_str)
            .ok_or("a user needs a string userPrincipalName")?
            .to_string();
        if deleted.is_none() {
            self.check_upn_free(&upn, None)?;
        }
        let seq = self.bump();
        let mut rec = UserRec {
            props,
            seq,
            created_seq: seq,
            state_seq: seq,
            deleted,
            manager,
            manager_seq: seq,
            ..UserRec::default()
        };
        rec.props
            .entry("accountEnabled")
            .or_insert(Value::Bool(true));
        rec.props
            .entry("createdDateTime")
            .or_insert_with(|| Value::String(iso(Utc::now())));
        rec.prop_seq = rec.props.keys().map(|k| (k.clone(), seq)).collect();
        let live = rec.deleted.is_none();
        self.users.insert(id.clone(), rec);
        if live {
            self.upn_index.insert(upn.to_lowercase(), id.clone());
        }
        Ok(id)
    }

    /// Sets the properties in `patch`; a JSON `null` clears one.
    pub fn update_user(&mut self, id: &str, patch: Value) -> ModelResult<()> {
        let Value::Object(obj) = patch else {
            return Err("a user patch must be a JSON object".into());
        };
        if obj.contains_key("id") {
            return Err("a user's id cannot be changed".into());
        }
        let props = canonical_props(obj)?;
        if let Some(upn) = props.get("userPrincipalName") {
            let upn = upn.as_str().ok_or("userPrincipalName cannot be cleared")?;
            self.check_upn_free(upn, Some(id))?;
            let live = self.user_mut(id)?.deleted.is_none();
            if live {
                self.upn_index.retain(|_, owner| owner != id);
                self.upn_index.insert(upn.to_lowercase(), id.to_string());
            }
        }
        self.user_mut(id)?;
        let seq = self.bump();
        let rec = self.user_mut(id)?;
        for (k, v) in props {
            if v.is_null() && !rec.props.contains_key(&k) {
                continue; // clearing a never-set property changes nothing
            }
            if rec.props.get(&k) == Some(&v) {
                continue;
            }
            rec.prop_seq.insert(k.clone(), seq);
            rec.props.insert(k, v);
        }
        rec.seq = seq;
        Ok(())
    }

    pub fn set_manager(&mut self, id: &str, manager: Option<&str>) -> ModelResult<()> {
        if let Some(m) = manager
            && !self.users.contains_key(m)
        {
            return Err(format!("no user with id '{m}' to be a manager"));
        }
        self.user_mut(id)?;
        let seq = self.bump();
        let rec = self.user_mut(id)?;
        if rec.manager.as_deref() != manager {
            rec.manager_prev = rec.manager.take();
            rec.manager = manager.map(str::to_string);
            rec.manager_seq = seq;
            rec.seq = seq;
        }
        Ok(())
    }

    pub fn soft_delete_user(&mut self, id: &str) -> ModelResult<()> {
        if self.user_mut(id)?.deleted.is_some() {
            return Err(format!("user '{id}' is already soft-deleted"));
        }
        let seq = self.bump();
        let rec = self.user_mut(id)?;
        rec.deleted = Some(Utc::now());
        rec.state_seq = seq;
        rec.seq = seq;
        let upn = rec.upn().to_lowercase();
        self.upn_index.remove(&upn);
        Ok(())
    }

    /// Restores a soft-deleted user with its id, memberships and assignments.
    pub fn restore_user(&mut self, id: &str) -> ModelResult<()> {
        let rec = self.user_mut(id)?;
        if rec.deleted.is_none() {
            return Err(format!("user '{id}' is not soft-deleted"));
        }
        let upn = rec.upn().to_string();
        self.check_upn_free(&upn, Some(id))?;
        let seq = self.bump();
        let rec = self.user_mut(id)?;
        rec.deleted = None;
        rec.state_seq = seq;
        rec.seq = seq;
        self.upn_index.insert(upn.to_lowercase(), id.to_string());
        Ok(())
    }

    /// Removes a user everywhere (memberships, assignments, manager links) and leaves a tombstone.
    pub fn hard_delete_user(&mut self, id: &str) -> ModelResult<()> {
        self.user_mut(id)?;
        let seq = self.bump();
        if let Some(rec) = self.users.remove(id)
            && rec.deleted.is_none()
        {
            self.upn_index.remove(&rec.upn().to_lowercase());
        }
        self.user_tombstones.insert(id.to_string(), seq);
        self.drop_references(id, seq);
        Ok(())
    }

    fn drop_references(&mut self, id: &str, seq: u64) {
        let kind = self.odata_type(id);
        for g in self.groups.values_mut() {
            if let Some(pos) = g.members.iter().position(|m| m == id) {
                g.members.remove(pos);
                g.member_seq.remove(id);
                g.removed_members.insert(id.to_string(), (seq, kind));
                g.seq = seq;
            }
        }
        self.assignments.retain(|_, a| a.principal_id != id);
        for u in self.users.values_mut() {
            if u.manager.as_deref() == Some(id) {
                u.manager_prev = u.manager.take();
                u.manager_seq = seq;
                u.seq = seq;
            }
        }
    }

    // ---- groups --------------------------------------------------------------------------

    /// Adds a group from a Graph-shaped object (`displayName` required; `members` may list ids).
    /// Security-group defaults are filled in for the flags that are absent.
    pub fn add_group(&mut self, group: Value) -> ModelResult<String> {
        let Value::Object(mut obj) = group else {
            return Err("a group must be a JSON object".into());
        };
        let id = match obj.shift_remove("id") {
            Some(Value::String(s)) if !s.is_empty() => s,
            None | Some(Value::Null) => new_guid(),
            Some(other) => return Err(format!("group id must be a string, got {other}")),
        };
        if self.users.contains_key(&id) || self.groups.contains_key(&id) {
            return Err(format!("an object with id '{id}' already exists"));
        }
        let members: Vec<String> = match obj.shift_remove("members") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    other => Err(format!("group members must be id strings, got {other}")),
                })
                .collect::<ModelResult<_>>()?,
            Some(other) => return Err(format!("group members must be an array, got {other}")),
        };
        let mut props = canonical_group_props(obj)?;
        if !props.get("displayName").is_some_and(Value::is_string) {
            return Err("a group needs a string displayName".into());
        }
        props.entry("securityEnabled").or_insert(Value::Bool(true));
        props.entry("mailEnabled").or_insert(Value::Bool(false));
        props
            .entry("groupTypes")
            .or_insert(Value::Array(Vec::new()));
        props
            .entry("createdDateTime")
            .or_insert_with(|| Value::String(iso(Utc::now())));
        let seq = self.bump();
        let prop_seq = props.keys().map(|k| (k.clone(), seq)).collect();
        self.groups.insert(
            id.clone(),
            GroupRec {
                props,
                prop_seq,
                seq,
                created_seq: seq,
                ..GroupRec::default()
            },
        );
        for m in members {
            self.add_member(&id, &m)?;
        }
        Ok(id)
    }

    pub fn update_group(&mut self, id: &str, patch: Value) -> ModelResult<()> {
        let Value::Object(obj) = patch else {
            return Err("a group patch must be a JSON object".into());
        };
        let props = canonical_group_props(obj)?;
        if !self.groups.contains_key(id) {
            return Err(format!("no group with id '{id}'"));
        }
        let seq = self.bump();
        if let Some(g) = self.groups.get_mut(id) {
            for (k, v) in props {
                if g.props.get(&k) == Some(&v) {
                    continue;
                }
                g.prop_seq.insert(k.clone(), seq);
                g.props.insert(k, v);
            }
            g.seq = seq;
        }
        Ok(())
    }

    /// Security groups are never soft-deleted: this removes the group at once, with its
    /// memberships and assignments.
    pub fn delete_group(&mut self, id: &str) -> ModelResult<()> {
        if !self.groups.contains_key(id) {
            return Err(format!("no group with id '{id}'"));
        }
        let seq = self.bump();
        // Removed from the groups it belonged to first, while its type is still known.
        self.drop_references(id, seq);
        self.groups.remove(id);
        self.group_tombstones.insert(id.to_string(), seq);
        Ok(())
    }

    /// `#microsoft.graph.user` or `#microsoft.graph.group` for a member id.
    pub fn odata_type(&self, id: &str) -> &'static str {
        if self.groups.contains_key(id) {
            "#microsoft.graph.group"
        } else {
            "#microsoft.graph.user"
        }
    }

    pub fn add_member(&mut self, group: &str, member: &str) -> ModelResult<()> {
        if group == member {
            return Err("a group cannot be a member of itself".into());
        }
        let is_user = self.users.contains_key(member);
        if !is_user && !self.groups.contains_key(member) {
            return Err(format!("no user or group with id '{member}'"));
        }
        let g = self
            .groups
            .get(group)
            .ok_or_else(|| format!("no group with id '{group}'"))?;
        if g.members.iter().any(|m| m == member) {
            return Ok(());
        }
        let seq = self.bump();
        if let Some(g) = self.groups.get_mut(group) {
            g.members.push(member.to_string());
            g.member_seq.insert(member.to_string(), seq);
            g.removed_members.remove(member);
            g.seq = seq;
        }
        if let Some(u) = self.users.get_mut(member) {
            u.seq = seq;
        }
        Ok(())
    }

    pub fn remove_member(&mut self, group: &str, member: &str) -> ModelResult<()> {
        let g = self
            .groups
            .get(group)
            .ok_or_else(|| format!("no group with id '{group}'"))?;
        let Some(pos) = g.members.iter().position(|m| m == member) else {
            return Err(format!("'{member}' is not a member of group '{group}'"));
        };
        let seq = self.bump();
        let kind = self.odata_type(member);
        if let Some(g) = self.groups.get_mut(group) {
            g.members.remove(pos);
            g.member_seq.remove(member);
            g.removed_members.insert(member.to_string(), (seq, kind));
            g.seq = seq;
        }
        if let Some(u) = self.users.get_mut(member) {
            u.seq = seq;
        }
        Ok(())
    }

    // ---- app role assignments ------------------------------------------------------------

    /// Assigns a user or group to the app. `app_role_id` `None` = Default Access (all zeros).
    /// Assigning the same principal the same role twice is a no-op; returns the assignment id.
    pub fn assign(&mut self, principal: &str, app_role_id: Option<&str>) -> ModelResult<String> {
        self.assign_with(
            principal,
            app_role_id,
            random_assignment_id(),
            iso7(Utc::now()),
        )
    }

    pub fn assign_with(
        &mut self,
        principal: &str,
        app_role_id: Option<&str>,
        id: String,
        created: String,
    ) -> ModelResult<String> {
        let principal_type = if self.users.contains_key(principal) {
            PrincipalType::User
        } else if self.groups.contains_key(principal) {
            PrincipalType::Group
        } else {
            return Err(format!("no user or group with id '{principal}'"));
        };
        let role = app_role_id.unwrap_or(DEFAULT_ACCESS_ROLE).to_string();
        if role != DEFAULT_ACCESS_ROLE
            && !self
                .app
                .app_roles
                .iter()
                .any(|r| r.get("id").and_then(Value::as_str) == Some(&role))
        {
            return Err(format!("the app declares no app role with id '{role}'"));
        }
        if let Some(a) = self
            .assignments
            .values()
            .find(|a| a.principal_id == principal && a.app_role_id == role)
        {
            return Ok(a.id.clone());
        }
        if self.assignments.contains_key(&id) {
            return Err(format!("an assignment with id '{id}' already exists"));
        }
        let seq = self.bump();
        self.touch(principal, seq);
        self.assignments.insert(
            id.clone(),
            AssignmentRec {
                id: id.clone(),
                principal_id: principal.to_string(),
                principal_type,
                app_role_id: role,
                created,
            },
        );
        Ok(id)
    }

    /// Removes every assignment of `principal` to the app.
    pub fn unassign(&mut self, principal: &str) -> ModelResult<()> {
        let before = self.assignments.len();
        self.assignments.retain(|_, a| a.principal_id != principal);
        if before == self.assignments.len() {
            return Err(format!("'{principal}' is not assigned to the app"));
        }
        let seq = self.bump();
        self.touch(principal, seq);
        Ok(())
    }

    fn touch(&mut self, id: &str, seq: u64) {
        if let Some(u) = self.users.get_mut(id) {
            u.seq = seq;
        } else if let Some(g) = self.groups.get_mut(id) {
            g.seq = seq;
        }
    }

    /// Display name of an assignment's principal.
    pub fn principal_display_name(&self, a: &AssignmentRec) -> Value {
        let name = match a.principal_type {
            PrincipalType::User => self
                .users
                .get(&a.principal_id)
                .and_then(|u| u.display_name()),
            PrincipalType::Group => self
                .groups
                .get(&a.principal_id)
                .and_then(|g| g.props.get("displayName"))
                .and_then(Value::as_str),
        };
        name.map_or(Value::Null, |n| Value::String(n.to_string()))
    }

    /// Whether an assignment's principal is visible (soft-deleted users' rows are hidden).
    pub fn assignment_visible(&self, a: &AssignmentRec) -> bool {
        match a.principal_type {
            PrincipalType::User => self
                .users
                .get(&a.principal_id)
                .is_some_and(|u| u.deleted.is_none()),
            PrincipalType::Group => self.groups.contains_key(&a.principal_id),
        }
    }
}

/// Canonicalises user property names; unknown names are rejected so typos fail loudly.
fn canonical_props(obj: Map<String, Value>) -> ModelResult<Map<String, Value>> {
    canonical_with(obj, &USER)
}

fn canonical_group_props(obj: Map<String, Value>) -> ModelResult<Map<String, Value>> {
    canonical_with(obj, &GROUP)
}

fn canonical_with(
    obj: Map<String, Value>,
    schema: &schema::Schema,
) -> ModelResult<Map<String, Value>> {
    let mut out = Map::new();
    for (k, v) in obj {
        let canon = schema
            .canonical(&k)
            .filter(|c| c != "id" && c != "deletedDateTime")
            .ok_or_else(|| format!("'{k}' is not a settable property of {}", schema.type_name))?;
        if schema.kind(&canon) == schema::Kind::Collection && !(v.is_array() || v.is_null()) {
            return Err(format!("'{canon}' must be an array"));
        }
        if canon == "accountEnabled" && !v.is_boolean() {
            return Err("accountEnabled must be a boolean".into());
        }
        if schema::is_extension_name(&canon) && !is_extension_value(&v) {
            return Err(format!(
                "'{canon}' is a directory extension: its value must be a string, number, boolean, \
                 string array or null"
            ));
        }
        out.insert(canon, v);
    }
    Ok(out)
}

/// The values a directory extension's `dataType` allows (String, Integer, Boolean, a String
/// collection; Binary and DateTime travel as strings), or `null` (cleared).
fn is_extension_value(v: &Value) -> bool {
    match v {
        Value::Null | Value::String(_) | Value::Number(_) | Value::Bool(_) => true,
        Value::Array(a) => a.iter().all(Value::is_string),
        Value::Object(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dir() -> Directory {
        Directory::new(
            "contoso.onmicrosoft.com",
            new_guid(),
            App {
                display_name: "app".into(),
                app_id: new_guid(),
                client_secret: "s".into(),
                service_principal_id: new_guid(),
                app_roles: vec![],
                certificates: vec![],
            },
        )
    }

    #[test]
    fn soft_delete_keeps_memberships_and_frees_upn() {
        let mut d = dir();
        let u = d.add_user(json!({"userPrincipalName": "a@x.com"})).unwrap();
        let g = d
            .add_group(json!({"displayName": "g", "members": [u]}))
            .unwrap();
        d.assign(&u, None).unwrap();
        d.soft_delete_user(&u).unwrap();
        assert!(d.live_user("a@x.com").is_none());
        assert_eq!(d.groups[&g].members, vec![u.clone()]);
        let other = d.add_user(json!({"userPrincipalName": "A@x.com"})).unwrap();
        assert!(d.restore_user(&u).is_err(), "UPN now taken");
        d.hard_delete_user(&other).unwrap();
        d.restore_user(&u).unwrap();
        assert!(d.live_user(&u).is_some());
        d.hard_delete_user(&u).unwrap();
        assert!(d.groups[&g].members.is_empty());
        assert!(d.assignments.is_empty());
    }

    #[test]
    fn sequence_numbers_increase_per_property() {
        let mut d = dir();
        let u = d
            .add_user(json!({"userPrincipalName": "a@x.com", "mobilePhone": "1"}))
            .unwrap();
        let s0 = d.users[&u].seq;
        d.update_user(&u, json!({"mobilePhone": null})).unwrap();
        let rec = &d.users[&u];
        assert!(rec.seq > s0);
        assert_eq!(rec.prop_seq["mobilePhone"], rec.seq);
        assert_eq!(rec.props["mobilePhone"], Value::Null);
        assert!(d.update_user(&u, json!({"bogus": 1})).is_err());
    }

    #[test]
    fn directory_extensions_are_stored_by_their_exact_name_with_their_data_type() {
        let mut d = dir();
        let ext = |n: &str| format!("extension_b7d8e648520f41d3b9c0fdeb91768a0a_{n}");
        let id = d
            .add_user(json!({
                "userPrincipalName": "a@contoso.com",
                ext("s"): "E4", ext("n"): 7, ext("b"): true, ext("list"): ["x", "y"],
            }))
            .unwrap();
        let props = &d.users[&id].props;
        assert_eq!(props[&ext("s")], json!("E4"));
        assert_eq!(props[&ext("n")], json!(7));
        assert_eq!(props[&ext("b")], json!(true));
        assert_eq!(props[&ext("list")], json!(["x", "y"]));
        d.update_user(&id, json!({ext("s"): null})).unwrap();
        assert_eq!(d.users[&id].props[&ext("s")], Value::Null);
        for bad in [json!({"a": 1}), json!([1, 2])] {
            let err = d.update_user(&id, json!({ext("s"): bad})).unwrap_err();
            assert!(err.contains("directory extension"), "{err}");
        }
        assert!(d.update_user(&id, json!({"extension_x": "v"})).is_err());
    }
}
