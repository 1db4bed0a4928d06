//! What the engine needs to know about a job, independent of the file it came from.

use crate::escrow::EscrowPolicy;
pub use scimsync_config::Reconcile;
use scimsync_config::{
    Deprovision, GroupOutOfScope, JobConfig, Mapping, Nested, ScopeSetting, ScopingFilter,
    TargetActions,
};
use scimsync_core::{Backoff, UserScope};
use std::time::Duration;

/// In-cycle retries of one object's write after a transient failure (5xx, timeout, reset,
/// an unreadable answer): `attempts` in all, paused by `backoff`. What still fails is escrowed
/// and retried at the next cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub backoff: Backoff,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            backoff: Backoff::exponential(Duration::from_millis(200), Duration::from_secs(5)),
        }
    }
}

/// Group provisioning settings.
#[derive(Debug, Clone)]
pub struct GroupSpec {
    pub mappings: Vec<Mapping>,
    pub scoping: Vec<ScopingFilter>,
    /// Send nested groups as members (and provision them); Entra only sends direct user members.
    pub include_nested: bool,
    /// Delete a group that leaves scope (Entra's default); otherwise leave it alone.
    pub delete_out_of_scope: bool,
    /// The most members per PATCH; the cycle starts at 100 (or this, if less) and adapts
    /// (`batch.rs`).
    pub batch_size: usize,
}

#[derive(Debug, Clone)]
pub struct JobSpec {
    pub name: String,
    pub scope: UserScope,
    pub mappings: Vec<Mapping>,
    /// Entra scoping filters: OR of filters, AND of clauses.
    pub scoping: Vec<ScopingFilter>,
    pub skip_out_of_scope_deletions: bool,
    /// Users that leave scope are deleted instead of disabled (some gallery apps).
    pub deprovision_delete: bool,
    pub actions: TargetActions,
    /// Objects processed at once; the SCIM client bounds requests separately.
    pub concurrency: usize,
    /// Skip assignments to the Default Access role (an app that requires a real role).
    pub exclude_default_access: bool,
    /// More disables and deletes than this in one cycle are held for approval; 0 = no limit.
    pub deletion_threshold: usize,
    /// A cycle that would disable or delete more than this share (percent) of the provisioned,
    /// active objects is held, however small the job; 0 = off.
    pub deletion_max_share: u32,
    /// In-cycle retries of writes.
    pub retry: RetryPolicy,
    /// Log entries older than this many days are pruned after a cycle (at most hourly); 0 keeps all.
    pub log_retention_days: u32,
    pub escrow: EscrowPolicy,
    pub groups: Option<GroupSpec>,
    /// Changes when mappings or scope change; a new value forces a full re-evaluation.
    pub fingerprint: String,
    /// Opt-in beyond Entra: clear a target value when its source value is cleared.
    pub clear_on_null: bool,
    /// Read group members back from the target and repair drift (Entra never does).
    pub reconcile: Reconcile,
}

impl JobSpec {
    pub fn from_config(cfg: &JobConfig) -> Self {
        let scope = match cfg.source.scope {
            ScopeSetting::All => UserScope::All,
            ScopeSetting::Assigned => UserScope::Assigned {
                service_principal_id: cfg.source.service_principal_id.clone().unwrap_or_default(),
            },
        };
        let groups = cfg.groups.enabled.then(|| GroupSpec {
            mappings: cfg.groups.mappings.clone(),
            scoping: cfg.groups.scoping.clone(),
            include_nested: cfg.groups.nested == Nested::Include,
            delete_out_of_scope: cfg.groups.out_of_scope == GroupOutOfScope::Delete,
            batch_size: cfg.target.membership_batch_size.max(1),
        });
        JobSpec {
            name: cfg.name.clone(),
            scope,
            mappings: cfg.users.mappings.clone(),
            scoping: cfg.users.scoping.clone(),
            skip_out_of_scope_deletions: cfg.skip_out_of_scope_deletions,
            deprovision_delete: cfg.users.deprovision == Deprovision::Delete,
            actions: cfg.target.actions.clone(),
            concurrency: cfg.target.max_concurrency.max(1),
            exclude_default_access: cfg.source.exclude_default_access,
            deletion_threshold: cfg.deletion_threshold as usize,
            deletion_max_share: cfg.deletion_max_share,
            retry: RetryPolicy::default(),
            log_retention_days: cfg.log_retention_days,
            escrow: EscrowPolicy::from(&cfg.escrow),
            groups,
            fingerprint: cfg.fingerprint(),
            clear_on_null: cfg.target.clear_on_null,
            reconcile: cfg.groups.reconcile,
        }
    }

    /// A job with Entra's defaults, for tests and embedding.
    pub fn new(name: &str, scope: UserScope, mappings: Vec<Mapping>) -> Self {
        JobSpec {
            name: name.to_string(),
            scope,
            mappings,
            scoping: Vec::new(),
            skip_out_of_scope_deletions: false,
            deprovision_delete: false,
            actions: TargetActions::default(),
            concurrency: scimsync_config::DEFAULT_MAX_CONCURRENCY,
            exclude_default_access: false,
            deletion_threshold: scimsync_config::DEFAULT_DELETION_THRESHOLD as usize,
            deletion_max_share: scimsync_config::DEFAULT_DELETION_MAX_SHARE,
            retry: RetryPolicy::default(),
            log_retention_days: 0,
            escrow: EscrowPolicy::default(),
            groups: None,
            fingerprint: String::new(),
            clear_on_null: false,
            reconcile: Reconcile::Off,
        }
    }

    /// The changes for a user: Entra's diff, plus clearing with the `clear_on_null` opt-in
    /// (only attributes an "Always" mapping owns; `active` is never cleared).
    pub(crate) fn user_diff(
        &self,
        confirmed: &scimsync_core::Attrs,
        desired: &scimsync_core::Attrs,
    ) -> Vec<scimsync_core::Change> {
        if !self.clear_on_null {
            return crate::diff::diff(confirmed, desired);
        }
        let clearable = |path: &str| {
            path != "active"
                && self
                    .mappings
                    .iter()
                    .any(|m| m.target == path && m.apply == scimsync_config::Apply::Always)
        };
        crate::diff::diff_clearing(confirmed, desired, &clearable)
    }

    /// The source attributes a user decision reads: the mappings' and the scoping filters'
    /// (an attribute only a scoping clause names must still be selected, or every user would
    /// read as not matching it).
    pub fn user_source_attributes(&self) -> Vec<String> {
        with_scoping(
            scimsync_mapping::source_attributes(&self.mappings),
            &self.scoping,
        )
    }

    /// The same for groups.
    pub fn group_source_attributes(&self) -> Vec<String> {
        match &self.groups {
            Some(g) => with_scoping(scimsync_mapping::source_attributes(&g.mappings), &g.scoping),
            None => Vec::new(),
        }
    }

    /// Target paths written from a reference source attribute (`manager`, mapped directly):
    /// they hold a source object id that only the reference pass can turn into a target id,
    /// so they are left out of creates and diffs (Entra's `referenceResolution` step).
    pub fn reference_paths(&self) -> Vec<String> {
        self.mappings
            .iter()
            .filter(|m| {
                matches!(&m.value, scimsync_config::MappingValue::Direct { source }
                    if source.eq_ignore_ascii_case(REFERENCE_SOURCE))
            })
            .map(|m| m.target.clone())
            .collect()
    }

    /// Whether a mapping sets `active` itself; otherwise the engine owns it.
    pub fn maps_active(&self) -> bool {
        self.mappings.iter().any(|m| m.target == "active")
    }
}

/// The one reference source attribute Entra's user mappings offer.
pub const REFERENCE_SOURCE: &str = "manager";

fn with_scoping(mut names: Vec<String>, scoping: &[ScopingFilter]) -> Vec<String> {
    names.extend(
        scoping
            .iter()
            .flat_map(|f| f.clauses.iter().map(|c| c.attribute.clone())),
    );
    names.sort();
    names.dedup();
    names
}
