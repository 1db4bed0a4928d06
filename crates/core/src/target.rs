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

    /// Whether the target may have carried the request out although we got no usable answer,
    /// so a write must not simply be sent again (the engine matches first): a 2xx whose body
    /// could not be read, any 5xx, a timeout, or a transport error (no status: the connection
    /// failed or was reset, perhaps after the request reached the target).
    pub fn target_may_have_acted(&self) -> bool {
        match self.status {
            Some(200..=299 | 500..=599) => true,
            Some(_) => self.code == ErrorCode::Timeout,
            None => matches!(
                self.code,
                ErrorCode::Timeout | ErrorCode::WebExceptionProtocolError
            ),
        }
    }

    /// Whether the same request may succeed later without anyone changing anything: 429, a 5xx
    /// other than 501 Not Implemented, a timeout (including 408), a transport error (no
    /// status), or a 2xx whose body could not be read. Whether a write may simply be resent is
    /// another question: see [`TargetError::target_may_have_acted`].
    pub fn is_transient(&self) -> bool {
        match self.status {
            Some(429 | 200..=299) => true,
            Some(501) => false,
            Some(500..=599) => true,
            Some(_) => self.code == ErrorCode::Timeout,
            None => matches!(
                self.code,
                ErrorCode::Timeout | ErrorCode::WebExceptionProtocolError
            ),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn err(code: ErrorCode, status: Option<u16>) -> TargetError {
        TargetError {
            status,
            ..TargetError::new(code, "x")
        }
    }

    const INCOMPATIBLE: ErrorCode =
        ErrorCode::SystemForCrossDomainIdentityManagementServiceIncompatible;

    #[test]
    fn what_may_have_acted_and_what_is_transient() {
        use ErrorCode as C;
        // (error, may have acted, transient)
        let cases = [
            // An unreadable 2xx: the target acted, and asking again (after matching) can work.
            (err(INCOMPATIBLE, Some(201)), true, true),
            (err(C::WebExceptionProtocolError, Some(200)), true, true),
            (err(C::InternalServerError, Some(500)), true, true),
            (err(C::InternalServerError, Some(502)), true, true),
            (err(C::InternalServerError, Some(503)), true, true),
            (err(C::InternalServerError, Some(504)), true, true),
            (err(C::NotImplemented, Some(501)), true, false),
            (err(C::Timeout, None), true, true),
            (err(C::Timeout, Some(408)), true, true),
            (err(C::WebExceptionProtocolError, None), true, true),
            // The target refused: it did not act, and 429 says "later".
            (err(C::TooManyRequests, Some(429)), false, true),
            (err(C::EntryConflict, Some(409)), false, false),
            (err(C::SchemaViolation, Some(400)), false, false),
            (err(C::Unauthorized, Some(401)), false, false),
            (err(C::InvalidAnchor, Some(404)), false, false),
            // A redirect is answered before anything happens, and is a configuration problem.
            (err(C::WebExceptionProtocolError, Some(302)), false, false),
            // Errors raised before anything was sent.
            (err(C::ConfigInvalid, None), false, false),
            (err(INCOMPATIBLE, None), false, false),
        ];
        for (e, acted, transient) in cases {
            assert_eq!(e.target_may_have_acted(), acted, "acted: {e:?}");
            assert_eq!(e.is_transient(), transient, "transient: {e:?}");
        }
    }
}
