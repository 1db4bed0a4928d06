//! Scope: which source users the job provisions, and why the others are out.

use scimsync_core::SourceUser;
use std::collections::BTreeSet;

/// Why a user is, or is not, provisioned. The variants follow Entra's deprovisioning matrix
/// (reference §2.8): the reason decides between "disable", "do nothing" and "never create".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeDecision {
    InScope,
    /// Not assigned to the app (directly or through a group) under "Sync only assigned".
    NotAssigned,
    /// `accountEnabled = false` at the source.
    DisabledAtSource,
}

impl ScopeDecision {
    /// Entra's wording, for the log's scoping step.
    pub fn describe(self) -> &'static str {
        match self {
            ScopeDecision::InScope => "in scope: active in source system and entitled",
            ScopeDecision::NotAssigned => "out of scope: not assigned to the application",
            ScopeDecision::DisabledAtSource => {
                "out of scope: not active in source system (accountEnabled is false)"
            }
        }
    }

    /// Leaving scope by unassignment obeys `skip_out_of_scope_deletions`; a disabled account
    /// is always disabled in the target.
    pub fn is_assignment_loss(self) -> bool {
        matches!(self, ScopeDecision::NotAssigned)
    }
}

/// Decide scope for one user. `assigned` is `None` under "Sync all users and groups".
pub fn evaluate_scope(user: &SourceUser, assigned: Option<&BTreeSet<String>>) -> ScopeDecision {
    if let Some(assigned) = assigned
        && !assigned.contains(&user.id)
    {
        return ScopeDecision::NotAssigned;
    }
    if !user.account_enabled() {
        return ScopeDecision::DisabledAtSource;
    }
    ScopeDecision::InScope
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(id: &str, enabled: bool) -> SourceUser {
        let mut u = SourceUser {
            id: id.into(),
            attrs: Default::default(),
        };
        u.attrs.insert("accountEnabled".into(), json!(enabled));
        u
    }

    #[test]
    fn sync_all_takes_every_enabled_user() {
        assert_eq!(
            evaluate_scope(&user("a", true), None),
            ScopeDecision::InScope
        );
        assert_eq!(
            evaluate_scope(&user("a", false), None),
            ScopeDecision::DisabledAtSource
        );
    }

    #[test]
    fn assigned_scope_leaves_out_unassigned_users_first() {
        let set: BTreeSet<String> = ["a".to_string()].into();
        assert_eq!(
            evaluate_scope(&user("a", true), Some(&set)),
            ScopeDecision::InScope
        );
        assert_eq!(
            evaluate_scope(&user("b", true), Some(&set)),
            ScopeDecision::NotAssigned
        );
        assert_eq!(
            evaluate_scope(&user("b", false), Some(&set)),
            ScopeDecision::NotAssigned
        );
        assert_eq!(
            evaluate_scope(&user("a", false), Some(&set)),
            ScopeDecision::DisabledAtSource
        );
    }
}
