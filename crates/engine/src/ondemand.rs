//! Provision on demand (Entra's "Provision on demand"): the whole pipeline for one user, or
//! one group with at most five members, now, whatever the schedule — with the steps Entra
//! shows (import, scope, match, action). With [`Mode::Preview`] it shows them and writes
//! nothing. The deletion threshold does not apply to a single object; escrow timing is
//! ignored (the admin asked for it now).

use crate::cycle::{Ctx, CycleError, Engine, Processed, UserItem};
use crate::read::{GroupView, effective_assignments};
use crate::report::{Action, CycleKind, Mode, ObjectReport, ObjectType};
use scimsync_core::{LogStatus, LogStep, Source, StateStore, Target, UserQuery, UserScope};
use scimsync_mapping::source_attributes;

/// Entra's limit for a group provisioned on demand.
pub const ON_DEMAND_MAX_MEMBERS: usize = 5;

impl<S: Source, T: Target, St: StateStore> Engine<'_, S, T, St> {
    /// Provision one user, found by object id or user principal name.
    pub async fn provision_user(
        &self,
        id_or_upn: &str,
        mode: Mode,
    ) -> Result<ObjectReport, CycleError> {
        let job = &self.job.name;
        let query = UserQuery {
            attributes: source_attributes(&self.job.mappings),
            scope: self.job.scope.clone(),
        };
        let user = self
            .source
            .read_users_by_id(&[id_or_upn.to_string()], &query)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| CycleError::NotFound(format!("no user {id_or_upn} in the source")))?;
        let ctx = self.on_demand_ctx(mode).await?;
        let state = self.store.get(job, &user.id)?;
        let processed = self
            .process_user(&ctx, UserItem::Present(&user, state.as_ref()))
            .await?;
        Ok(match processed {
            Processed::Reported(r) => r,
            _ => ObjectReport {
                object_type: ObjectType::User,
                source_id: user.id.clone(),
                display_name: user.display().to_string(),
                scope: "in scope".into(),
                matched_by: None,
                action: Action::NoChange,
                status: LogStatus::Skipped,
                error_code: None,
                error: None,
                members_added: Vec::new(),
                members_removed: Vec::new(),
                members_left_out: Vec::new(),
                steps: vec![LogStep {
                    name: "Provision".into(),
                    provisioning_step_type: "export".into(),
                    status: LogStatus::Skipped,
                    description:
                        "the target already holds exactly what the mappings give: nothing to send"
                            .into(),
                }],
            },
        })
    }

    /// Provision one group: its members first (at most five, as Entra), then the group.
    pub async fn provision_group(
        &self,
        group_id: &str,
        mode: Mode,
    ) -> Result<Vec<ObjectReport>, CycleError> {
        let Some(_) = &self.job.groups else {
            return Err(CycleError::NotFound(
                "this job does not provision groups".into(),
            ));
        };
        let query = scimsync_core::GroupQuery {
            attributes: self
                .job
                .groups
                .as_ref()
                .map(|g| source_attributes(&g.mappings))
                .unwrap_or_default(),
        };
        let view = GroupView::apply(
            GroupView::load(self.store, &self.job.name)?,
            self.source.read_groups(&query, None).await?,
        );
        let group = view
            .groups
            .get(group_id)
            .ok_or_else(|| CycleError::NotFound(format!("no group {group_id} in the source")))?;
        if group.users.len() > ON_DEMAND_MAX_MEMBERS {
            return Err(CycleError::NotFound(format!(
                "the group has {} members; provision on demand takes groups of at most {ON_DEMAND_MAX_MEMBERS} (run a cycle instead)",
                group.users.len()
            )));
        }
        let mut out = Vec::new();
        for member in group.users.clone() {
            out.push(self.provision_user(&member, mode).await?);
        }
        let ctx = self.on_demand_ctx(mode).await?;
        let assigned = match &self.job.scope {
            UserScope::All => None,
            UserScope::Assigned {
                service_principal_id,
            } => {
                let a = self.source.read_assignments(service_principal_id).await?;
                Some(crate::read::assigned_groups(
                    &a,
                    self.job.exclude_default_access,
                ))
            }
        };
        let states: Vec<_> = self
            .store
            .list(&self.job.name)?
            .into_iter()
            .filter(|s| s.source_id == format!("{}{group_id}", crate::cycle::GROUP_PREFIX))
            .collect();
        let mut only = GroupView::default();
        only.groups.insert(group_id.to_string(), group.clone());
        let plan = self.plan_groups(&ctx, &only, assigned.as_ref(), &states);
        for r in self.sync_groups(&ctx, &only, plan, &out).await? {
            if let Processed::Reported(r) = r {
                out.push(r);
            }
        }
        Ok(out)
    }

    async fn on_demand_ctx(&self, mode: Mode) -> Result<Ctx, CycleError> {
        let assigned = match &self.job.scope {
            UserScope::All => None,
            UserScope::Assigned {
                service_principal_id,
            } => {
                let a = self.source.read_assignments(service_principal_id).await?;
                // Group expansion uses the group mirror of the last cycle.
                let groups = GroupView::load(self.store, &self.job.name)?;
                Some(effective_assignments(
                    &a,
                    &groups,
                    self.job.exclude_default_access,
                ))
            }
        };
        Ok(Ctx {
            cycle_id: format!("ondemand-{}", uuid::Uuid::now_v7()),
            mode,
            // Report out-of-scope users too: the admin asked about this one.
            kind: CycleKind::Initial,
            now: self.clock.now(),
            assigned,
            held: Default::default(),
            escrows: Default::default(),
            reconcile: false,
        })
    }
}
