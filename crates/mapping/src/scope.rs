//! Scope: which source users the job provisions, and why the others are out.

use crate::filter::{CompiledFilters, FilterVerdict, evaluate_filters};
use scimsync_config::ScopingFilter;
use scimsync_core::SourceUser;

/// Why a user is, or is not, provisioned. The variants follow Entra's deprovisioning matrix
/// (reference §2.8): the reason decides between "disable", "do nothing" and "never create".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeDecision {
    InScope,
    /// Not assigned to the app (directly or through a group) under "Sync only assigned".
    NotAssigned,
    /// A scoping filter leaves the user out.
    FilteredOut,
    /// `accountEnabled = false` at the source.
    DisabledAtSource,
}

impl ScopeDecision {
    /// Leaving scope by unassignment or by a scoping filter obeys
    /// `skip_out_of_scope_deletions`; a disabled account is always disabled in the target.
    pub fn is_scope_loss(self) -> bool {
        matches!(
            self,
            ScopeDecision::NotAssigned | ScopeDecision::FilteredOut
        )
    }
}

/// The decision with Entra's wording of why, for the log's scoping step and `preview`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub decision: ScopeDecision,
    pub reason: String,
}

/// Decide scope for one user: assignment first (`assigned` is `None` under "Sync all users
/// and groups"), then the account's state, then the scoping filters. Compiles the filters'
/// regexes on every call; to decide many users, use [`CompiledFilters::scope`].
pub fn evaluate_scope(
    user: &SourceUser,
    assigned: Option<bool>,
    filters: &[ScopingFilter],
) -> Scope {
    scope_with(user, assigned, |attrs| evaluate_filters(attrs, filters))
}

impl CompiledFilters {
    /// [`evaluate_scope`] with the filters compiled once.
    pub fn scope(&self, user: &SourceUser, assigned: Option<bool>) -> Scope {
        scope_with(user, assigned, |attrs| self.evaluate(attrs))
    }
}

fn scope_with(
    user: &SourceUser,
    assigned: Option<bool>,
    filters: impl FnOnce(&scimsync_core::Attrs) -> FilterVerdict,
) -> Scope {
    let scope = |decision, reason: &str| Scope {
        decision,
        reason: reason.to_string(),
    };
    if assigned == Some(false) {
        return scope(
            ScopeDecision::NotAssigned,
            "out of scope: not assigned to the application",
        );
    }
    if !user.account_enabled() {
        return scope(
            ScopeDecision::DisabledAtSource,
            "out of scope: not active in source system (accountEnabled is false)",
        );
    }
    let verdict = filters(&user.attrs);
    if !verdict.in_scope {
        return Scope {
            decision: ScopeDecision::FilteredOut,
            reason: format!("out of scope: {}", verdict.reason),
        };
    }
    let entitled = if assigned.is_some() {
        "assigned to the application"
    } else {
        "sync all users"
    };
    Scope {
        decision: ScopeDecision::InScope,
        reason: format!(
            "in scope: active in source system, {entitled}; {}",
            verdict.reason
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scimsync_config::{Clause, Operator};
    use serde_json::json;

    fn user(id: &str, enabled: bool) -> SourceUser {
        let mut u = SourceUser {
            id: id.into(),
            attrs: Default::default(),
        };
        u.attrs.insert("accountEnabled".into(), json!(enabled));
        u.attrs.insert("department".into(), json!("Sales"));
        u
    }

    #[test]
    fn sync_all_takes_every_enabled_user() {
        assert_eq!(
            evaluate_scope(&user("a", true), None, &[]).decision,
            ScopeDecision::InScope
        );
        assert_eq!(
            evaluate_scope(&user("a", false), None, &[]).decision,
            ScopeDecision::DisabledAtSource
        );
    }

    #[test]
    fn assigned_scope_leaves_out_unassigned_users_first() {
        assert_eq!(
            evaluate_scope(&user("a", true), Some(true), &[]).decision,
            ScopeDecision::InScope
        );
        assert_eq!(
            evaluate_scope(&user("b", true), Some(false), &[]).decision,
            ScopeDecision::NotAssigned
        );
        assert_eq!(
            evaluate_scope(&user("b", false), Some(false), &[]).decision,
            ScopeDecision::NotAssigned
        );
        assert_eq!(
            evaluate_scope(&user("a", false), Some(true), &[]).decision,
            ScopeDecision::DisabledAtSource
        );
    }

    #[test]
    fn a_scoping_filter_can_leave_an_assigned_user_out_and_says_why() {
        let f = ScopingFilter {
            name: Some("Engineering".into()),
            clauses: vec![Clause {
                attribute: "department".into(),
                operator: Operator::parse("EQUALS").unwrap(),
                value: Some("Engineering".into()),
                line: 1,
            }],
            line: 1,
        };
        let s = evaluate_scope(&user("a", true), Some(true), std::slice::from_ref(&f));
        assert_eq!(s.decision, ScopeDecision::FilteredOut);
        assert!(s.reason.contains("department"), "{}", s.reason);
        assert!(s.decision.is_scope_loss());
    }

    #[test]
    fn compiled_filters_scope_like_evaluate_scope() {
        let f = ScopingFilter {
            name: None,
            clauses: vec![Clause {
                attribute: "department".into(),
                operator: Operator::parse("REGEX MATCH").unwrap(),
                value: Some("^Eng".into()),
                line: 1,
            }],
            line: 1,
        };
        let compiled = CompiledFilters::new(std::slice::from_ref(&f));
        for (u, assigned) in [
            (user("a", true), Some(true)),
            (user("a", true), None),
            (user("b", false), None),
            (user("c", true), Some(false)),
        ] {
            assert_eq!(
                compiled.scope(&u, assigned),
                evaluate_scope(&u, assigned, std::slice::from_ref(&f))
            );
        }
        assert_eq!(
            compiled.scope(&user("a", true), None).decision,
            ScopeDecision::FilteredOut
        );
    }
}
