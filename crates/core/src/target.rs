//! What the engine needs from the target app (a SCIM 2.0 service provider).

use crate::{Attrs, Change, ErrorCode};
use std::future::Future;
use std::time::Duration;

/// A user as the target holds it, flattened to the same paths mappings use.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetUser {
    pub id: String,
    pub attrs: Attrs,
}

/// A group as the target holds it (members excluded: reads never carry them).
#[derive(Debug, Clone, PartialEq)]
pub struct TargetGroup {
    pub id: String,
    pub attrs: Attrs,
}

/// A failed target request, classified.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code}: {detail}")]
pub struct TargetError {
    pub code: ErrorCode,
    /// HTTP status, when the target answered.
    pub status: Option<u16>,
    /// SCIM `scimType` (`uniqueness`, `invalidValue`, …) when the error body had one.
    pub scim_type: Option<String>,
    pub detail: String,
    /// `Retry-After`, when the target gave one.
    pub retry_after: Option<Duration>,
}

impl TargetError {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        TargetError {
            code,
            status: None,
            scim_type: None,
            detail: detail.into(),
            retry_after: None,
        }
    }

    /// A 409 on create: the object exists, so the engine matches again and updates.
    pub fn is_conflict(&self) -> bool {
        self.status == Some(409)
    }
}

/// The target app. Implemented by the scim crate (over HTTP) and by test doubles.
///
/// `path` in [`Target::find_users`] is a mapping target path (`userName`, `externalId`,
/// `emails[type eq "work"].value`); the implementation turns it into a filter.
pub trait Target: Send + Sync {
    fn find_users(
        &self,
        path: &str,
        value: &str,
    ) -> impl Future<Output = Result<Vec<TargetUser>, TargetError>> + Send;
    fn create_user(
        &self,
        attrs: &Attrs,
    ) -> impl Future<Output = Result<TargetUser, TargetError>> + Send;
    fn update_user(
        &self,
        id: &str,
        changes: &[Change],
    ) -> impl Future<Output = Result<(), TargetError>> + Send;
    fn delete_user(&self, id: &str) -> impl Future<Output = Result<(), TargetError>> + Send;

    /// Groups whose `path` equals `value` (`GET /Groups?filter=…&excludedAttributes=members`).
    fn find_groups(
        &self,
        path: &str,
        value: &str,
    ) -> impl Future<Output = Result<Vec<TargetGroup>, TargetError>> + Send {
        let _ = (path, value);
        async { Err(groups_unsupported()) }
    }

    /// Create a group, empty: members follow with [`Target::add_members`].
    fn create_group(
        &self,
        attrs: &Attrs,
    ) -> impl Future<Output = Result<TargetGroup, TargetError>> + Send {
        let _ = attrs;
        async { Err(groups_unsupported()) }
    }

    /// Change a group's attributes (not its members).
    fn update_group(
        &self,
        id: &str,
        changes: &[Change],
    ) -> impl Future<Output = Result<(), TargetError>> + Send {
        let _ = (id, changes);
        async { Err(groups_unsupported()) }
    }

    /// Add these members (target user or group ids) in one PATCH.
    fn add_members(
        &self,
        group_id: &str,
        member_ids: &[String],
    ) -> impl Future<Output = Result<(), TargetError>> + Send {
        let _ = (group_id, member_ids);
        async { Err(groups_unsupported()) }
    }

    /// Remove these members in one PATCH (shape per dialect).
    fn remove_members(
        &self,
        group_id: &str,
        member_ids: &[String],
    ) -> impl Future<Output = Result<(), TargetError>> + Send {
        let _ = (group_id, member_ids);
        async { Err(groups_unsupported()) }
    }

    /// The group's current member ids, for the reconcile cycle (`GET /Groups/{id}?attributes=members`).
    fn group_members(
        &self,
        group_id: &str,
    ) -> impl Future<Output = Result<Vec<String>, TargetError>> + Send {
        let _ = group_id;
        async { Err(groups_unsupported()) }
    }

    fn delete_group(&self, id: &str) -> impl Future<Output = Result<(), TargetError>> + Send {
        let _ = id;
        async { Err(groups_unsupported()) }
    }
}

fn groups_unsupported() -> TargetError {
    TargetError::new(
        ErrorCode::NotImplemented,
        "this target does not provision groups",
    )
}
