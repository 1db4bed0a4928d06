//! What the engine needs to know about a job, independent of the file it came from.

use scimsync_config::{JobConfig, Mapping, ScopeSetting, TargetActions};
use scimsync_core::UserScope;

#[derive(Debug, Clone)]
pub struct JobSpec {
    pub name: String,
    pub scope: UserScope,
    pub mappings: Vec<Mapping>,
    pub skip_out_of_scope_deletions: bool,
    pub actions: TargetActions,
    /// Objects processed at once; the SCIM client bounds requests separately.
    pub concurrency: usize,
}

impl JobSpec {
    pub fn from_config(cfg: &JobConfig) -> Self {
        let scope = match cfg.source.scope {
            ScopeSetting::All => UserScope::All,
            ScopeSetting::Assigned => UserScope::Assigned {
                service_principal_id: cfg.source.service_principal_id.clone().unwrap_or_default(),
            },
        };
        JobSpec {
            name: cfg.name.clone(),
            scope,
            mappings: cfg.users.mappings.clone(),
            skip_out_of_scope_deletions: cfg.skip_out_of_scope_deletions,
            actions: cfg.target.actions.clone(),
            concurrency: cfg.target.max_concurrency.max(1),
        }
    }

    /// Whether a mapping sets `active` itself; otherwise the engine owns it.
    pub fn maps_active(&self) -> bool {
        self.mappings.iter().any(|m| m.target == "active")
    }
}
