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
}
