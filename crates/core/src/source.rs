//! What the identity source (Microsoft Graph) gives the engine.

use crate::ErrorCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

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

/// What the engine asks the source for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserQuery {
    /// Entra source attribute names the mappings read. The source always adds the ones the
    /// engine itself needs (`objectId`, `userPrincipalName`, `accountEnabled`).
    pub attributes: Vec<String>,
    pub scope: UserScope,
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

/// The identity source. Implemented by the graph crate and by test doubles.
pub trait Source: Send + Sync {
    fn read_users(
        &self,
        query: &UserQuery,
    ) -> impl Future<Output = Result<SourceSnapshot, SourceError>> + Send;
}
