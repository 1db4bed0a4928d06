//! What the identity source (Microsoft Graph) gives the engine.

use crate::ErrorCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;

/// One user as read from the source, with attributes keyed by **Entra's source attribute
/// names** (`userPrincipalName`, `mailNickname`, `surname`, `objectId`, `accountEnabled`, …),
/// not Graph's property names. Attributes the source had no value for are absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceUser {
    /// The Graph object id: the source anchor.
    pub id: String,
    pub attrs: BTreeMap<String, Value>,
}

impl SourceUser {
    /// The attribute as a string, if it is one.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.attrs.get(name).and_then(Value::as_str)
    }

    /// `accountEnabled`, treating an absent value as enabled (Graph omits it unless selected).
    pub fn account_enabled(&self) -> bool {
        self.attrs
            .get("accountEnabled")
            .and_then(Value::as_bool)
            .unwrap_or(true)
    }

    /// A name for logs: UPN, else display name, else the id.
    pub fn display(&self) -> &str {
        self.str("userPrincipalName")
            .or_else(|| self.str("displayName"))
            .unwrap_or(&self.id)
    }

    /// Only what deciding an unassigned, never-provisioned user reads (its id, how it is
    /// shown, whether it is enabled): the form [`UserQuery::keep`] asks for.
    pub fn slim(self) -> SourceUser {
        // A new map rather than `retain`: the big map's allocation goes with it.
        let attrs = self
            .attrs
            .into_iter()
            .filter(|(k, _)| SLIM_ATTRIBUTES.contains(&k.as_str()))
            .collect();
        SourceUser { id: self.id, attrs }
    }
}

/// Which users the job is about (Entra's "Scope" setting).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserScope {
    /// "Sync all users and groups".
    All,
    /// "Sync only assigned users and groups" for this enterprise app (service principal object id).
    Assigned { service_principal_id: String },
}

/// What [`SourceUser::slim`] keeps.
pub const SLIM_ATTRIBUTES: [&str; 4] = [
    "objectId",
    "userPrincipalName",
    "displayName",
    "accountEnabled",
];

/// What the engine asks the source for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserQuery {
    /// Entra source attribute names the mappings read. The source always adds the ones the
    /// engine itself needs (`objectId`, `userPrincipalName`, `accountEnabled`).
    pub attributes: Vec<String>,
    pub scope: UserScope,
    /// Full reads only: the users the engine may provision (assigned, known, or in escrow).
    /// The others are read [`SourceUser::slim`]: a 100,000-user tenant with 40,000 assigned
    /// is never held whole, yet every user is still decided (and logged) as out of scope.
    /// `None` keeps every user whole. A source may ignore it: the decisions are the same.
    pub keep: Option<std::sync::Arc<BTreeSet<String>>>,
}

impl UserQuery {
    /// Whether a full read keeps this user whole.
    pub fn keeps(&self, id: &str) -> bool {
        self.keep.as_ref().is_none_or(|k| k.contains(id))
    }
}

/// One complete read of the source's users.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceSnapshot {
    /// Users in the directory (not soft-deleted), assigned or not.
    pub users: Vec<SourceUser>,
    /// With [`UserScope::Assigned`]: ids of the users effectively assigned to the app (directly
    /// or as direct members of an assigned group). `None` with [`UserScope::All`].
    pub assigned: Option<BTreeSet<String>>,
    /// Ids of users in the directory's deleted items (soft-deleted, restorable). A user known to
    /// the job that is in neither `users` nor here was hard-deleted.
    pub soft_deleted: BTreeSet<String>,
}

/// A failed source read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct SourceError {
    pub code: ErrorCode,
    pub message: String,
    /// Graph's `request-id` of the failed request, for a support ticket.
    pub request_id: Option<String>,
}

/// One app role assignment of a principal to the job's enterprise app.
///
/// Shared strings: a tenant has few roles and two principal types, and expanding an assigned
/// group copies its roles to every member; a copy is then a count, not an allocation.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppRoleAssignment {
    /// The app role's id; the all-zero GUID is the "Default Access" role.
    pub app_role_id: Arc<str>,
    /// `User` or `Group`: how the user got it (directly or through a group).
    pub principal_type: Arc<str>,
    /// The assigned principal (the user, or the group it came through).
    pub principal_id: Arc<str>,
}

/// The app's assignments (`servicePrincipals/{id}/appRoleAssignedTo`), not expanded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignments {
    /// Users assigned directly, with their roles.
    pub users: BTreeMap<String, Vec<AppRoleAssignment>>,
    /// Groups assigned, with their roles (their direct user members are in scope).
    pub groups: BTreeMap<String, Vec<AppRoleAssignment>>,
}

/// A group as read from the source, attributes keyed by Entra's names (`displayName`,
/// `objectId`, `mailNickname`, `description`, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceGroup {
    pub id: String,
    pub attrs: BTreeMap<String, Value>,
}

/// A change of one group's direct membership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MemberKind {
    User,
    Group,
}

/// What one read of users returned: everything, or only what changed since a watermark.
#[derive(Debug, Clone, PartialEq)]
pub enum UserRead {
    /// Every user in the directory (initial round, or the watermark was rejected). A known user
    /// absent here and absent from `soft_deleted` was hard-deleted.
    Full {
        users: Vec<SourceUser>,
        soft_deleted: BTreeSet<String>,
        /// Why a full read happened although a watermark was given (e.g. expired delta token).
        fallback_reason: Option<String>,
        /// The watermark to resume from (Graph's `@odata.deltaLink`), when the source has one.
        watermark: Option<String>,
    },
    /// Only changes since the watermark. A user may appear more than once; the last wins.
    Changes {
        upserts: Vec<SourceUser>,
        /// `@removed` with reason `changed`: soft-deleted (restorable).
        soft_deleted: Vec<String>,
        /// `@removed` with reason `deleted`: gone for good.
        hard_deleted: Vec<String>,
        watermark: String,
    },
}

/// What one read of groups returned.
#[derive(Debug, Clone, PartialEq)]
pub enum GroupRead {
    /// Every group with its complete direct membership.
    Full {
        groups: Vec<SourceGroup>,
        /// Direct members per group id: (member id, kind).
        members: BTreeMap<String, Vec<(String, MemberKind)>>,
        fallback_reason: Option<String>,
        watermark: Option<String>,
    },
    /// Changes since the watermark: groups whose properties changed (or that are new), groups
    /// deleted, and membership added/removed (`members@delta`).
    Changes {
        upserts: Vec<SourceGroup>,
        deleted: Vec<String>,
        members_added: BTreeMap<String, Vec<(String, MemberKind)>>,
        members_removed: BTreeMap<String, Vec<(String, MemberKind)>>,
        watermark: String,
    },
}

impl GroupRead {
    /// A delta that names no group: the groups are as the watermark left them.
    pub fn changes_nothing(&self) -> bool {
        matches!(self, GroupRead::Changes { upserts, deleted, members_added, members_removed, .. }
            if upserts.is_empty()
                && deleted.is_empty()
                && members_added.is_empty()
                && members_removed.is_empty())
    }
}

/// What the engine asks for when it reads groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupQuery {
    /// Entra source attribute names the group mappings read.
    pub attributes: Vec<String>,
}

/// The identity source. Implemented by the graph crate and by test doubles.
pub trait Source: Send + Sync {
    /// A complete read of users with the scope information (used by preview, provision on
    /// demand and sources without change tracking).
    fn read_users(
        &self,
        query: &UserQuery,
    ) -> impl Future<Output = Result<SourceSnapshot, SourceError>> + Send;

    /// Users changed since `watermark` (Graph delta query); `None` starts a new round, which
    /// returns every user. An expired or rejected watermark falls back to a full read and says
    /// why in `fallback_reason`. The default, for sources without change tracking, is a full
    /// read every time.
    fn read_user_changes(
        &self,
        query: &UserQuery,
        _watermark: Option<&str>,
    ) -> impl Future<Output = Result<UserRead, SourceError>> + Send {
        async move {
            let s = self.read_users(query).await?;
            Ok(UserRead::Full {
                users: s.users,
                soft_deleted: s.soft_deleted,
                fallback_reason: None,
                watermark: None,
            })
        }
    }

    /// Specific users by id (for users that became assigned without changing themselves).
    /// Ids that do not exist are left out.
    fn read_users_by_id(
        &self,
        ids: &[String],
        query: &UserQuery,
    ) -> impl Future<Output = Result<Vec<SourceUser>, SourceError>> + Send {
        async move {
            let wanted: BTreeSet<&String> = ids.iter().collect();
            let s = self.read_users(query).await?;
            Ok(s.users
                .into_iter()
                .filter(|u| wanted.contains(&u.id))
                .collect())
        }
    }

    /// The app's assignments (read every cycle: they have no delta query).
    fn read_assignments(
        &self,
        service_principal_id: &str,
    ) -> impl Future<Output = Result<Assignments, SourceError>> + Send {
        let _ = service_principal_id;
        async move {
            Err(SourceError {
                code: crate::ErrorCode::GraphRequestFailed,
                message: "this source cannot read app role assignments".into(),
                request_id: None,
            })
        }
    }

    /// Groups and their direct memberships, complete (`watermark` `None`) or changed since it.
    /// The default is a source without groups.
    fn read_groups(
        &self,
        _query: &GroupQuery,
        _watermark: Option<&str>,
    ) -> impl Future<Output = Result<GroupRead, SourceError>> + Send {
        async move {
            Ok(GroupRead::Full {
                groups: Vec::new(),
                members: BTreeMap::new(),
                fallback_reason: None,
                watermark: None,
            })
        }
    }
}
