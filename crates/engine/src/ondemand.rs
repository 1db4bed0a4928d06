//! Provision on demand (Entra's "Provision on demand"): the whole pipeline for one user, or
//! one group with at most five members, now, whatever the schedule — with the steps Entra
//! shows (import, scope, match, action). With [`Mode::Preview`] it shows them and writes
//! nothing. The deletion threshold does not apply to a single object; escrow timing is
//! ignored (the admin asked for it now).

use crate::act::{Claims, Cycle, Processed, digest, v7_like};
use crate::cycle::{CycleError, Engine};
use crate::groups::UserTargets;
use crate::plan::{Compiled, GROUP_PREFIX, PlanCtx, UserItem, UserOp, decide_groups, decide_user};
use crate::read::{GroupView, effective_assignments};
use crate::references::UserRefWork;
use crate::report::{Action, CycleKind, Mode, ObjectReport, ObjectType};
use scimsync_core::{
    AppRoleAssignment, LogStatus, LogStep, Source, StateStore, Target, UserQuery, UserScope,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};

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
            attributes: self.job.user_source_attributes(),
            scope: self.job.scope.clone(),
            keep: None,
        };
        let user = self
            .source
            .read_users_by_id(&[id_or_upn.to_string()], &query)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| CycleError::NotFound(format!("no user {id_or_upn} in the source")))?;
        let assigned = self.on_demand_assignments().await?;
        let state = self.store.get(job, &user.id)?;
        let escrows = self.state().escrows()?;
        let now = self.clock.now();
        let compiled = Compiled::new(self.job);
        let pctx = PlanCtx {
            job: self.job,
            compiled: &compiled,
            // Report out-of-scope users too: the admin asked about this one.
            kind: CycleKind::Initial,
            now,
            assigned: assigned.as_ref(),
            escrows: &escrows,
            ignore_escrow: true,
        };
        let decision = decide_user(&pctx, UserItem::Present(&user, state.as_ref()));
        if mode == Mode::Apply {
            // This user and its groups' members may change outside a cycle.
            self.new_membership_epoch(&user.id, "before")?;
        }
        let cx = Cycle::new(on_demand_id(now, &user.id), mode, now, Claims::new(&[]));
        let work = vec![UserRefWork {
            source_id: decision.source_id.clone(),
            display: decision.display.clone(),
            wants: decision.refs.clone(),
        }];
        let planned: BTreeSet<String> = match decision.op {
            UserOp::Provision { .. } => BTreeSet::from([decision.source_id.clone()]),
            _ => BTreeSet::new(),
        };
        let processed = self.act_user(&cx, decision).await;
        self.flush_commits(&cx)?;
        let processed = processed?;
        // Entra's on-demand steps end with the reference step when the user has a manager.
        let references = if work[0].wants.is_empty() {
            Vec::new()
        } else {
            self.act_references(&cx, work, &planned).await?
        };
        let mut report = match processed {
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
        };
        for p in references {
            if let Processed::Reported(r) = p {
                report.steps.extend(r.steps.into_iter().filter(|s| {
                    s.provisioning_step_type == "referenceResolution"
                        || s.provisioning_step_type == "export"
                }));
                if report.action == Action::NoChange {
                    report.action = r.action;
                    report.status = r.status;
                    report.error_code = r.error_code;
                    report.error = r.error;
                }
            }
        }
        if mode == Mode::Apply {
            // Again after the writes: a cycle that read the epoch meanwhile leaves no marker
            // the next cycle would trust.
            self.new_membership_epoch(&user.id, "after")?;
        }
        Ok(report)
    }

    /// Provision one group: its members first (at most five, as Entra), then the group.
    pub async fn provision_group(
        &self,
        group_id: &str,
        mode: Mode,
    ) -> Result<Vec<ObjectReport>, CycleError> {
        if self.job.groups.is_none() {
            return Err(CycleError::NotFound(
                "this job does not provision groups".into(),
            ));
        }
        let query = scimsync_core::GroupQuery {
            attributes: self.job.group_source_attributes(),
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
        if mode == Mode::Apply {
            self.new_membership_epoch(group_id, "before")?;
        }
        let mut out = Vec::new();
        for member in group.users.clone() {
            out.push(self.provision_user(&member, mode).await?);
        }
        let assigned_groups = match &self.job.scope {
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
        let state_id = format!("{GROUP_PREFIX}{group_id}");
        let states: Vec<_> = self
            .store
            .get(&self.job.name, &state_id)?
            .into_iter()
            .collect();
        let mut only = BTreeMap::new();
        only.insert(group_id.to_string(), group.clone());
        let escrows = self.state().escrows()?;
        let now = self.clock.now();
        let compiled = Compiled::new(self.job);
        let pctx = PlanCtx {
            job: self.job,
            compiled: &compiled,
            kind: CycleKind::Initial,
            now,
            assigned: None,
            escrows: &escrows,
            ignore_escrow: true,
        };
        let decisions = decide_groups(&pctx, &only, assigned_groups.as_ref(), &states);
        // Members as they stand now (a preview lays the members' own reports over them).
        let mut targets = UserTargets::new();
        for u in &group.users {
            let st = self.store.get(&self.job.name, u)?;
            targets.insert(u.clone(), st.filter(|s| s.active).map(|s| s.target_id));
        }
        if mode == Mode::Preview {
            for r in &out {
                if r.error.is_none()
                    && let Action::Create { .. } = r.action
                {
                    targets.insert(
                        r.source_id.clone(),
                        Some(format!("(new user {})", r.display_name)),
                    );
                }
            }
        }
        let all_groups = self.store.list_prefix(&self.job.name, GROUP_PREFIX)?;
        let cx = Cycle::new(
            on_demand_id(now, &state_id),
            mode,
            now,
            Claims::new(&all_groups),
        );
        let nested = HashMap::new();
        for d in decisions {
            let acted = self.act_group(&cx, d, &targets, &nested).await;
            self.flush_commits(&cx)?;
            if let Processed::Reported(r) = acted? {
                out.push(r);
            }
        }
        if mode == Mode::Apply {
            self.new_membership_epoch(group_id, "after")?;
        }
        Ok(out)
    }

    /// A membership epoch no earlier one equals: it chains the previous epoch with the engine's
    /// clock, the object and the moment (see `jobstate::MEMBERSHIP_EPOCH`).
    fn new_membership_epoch(
        &self,
        object: &str,
        moment: &str,
    ) -> Result<(), scimsync_core::StoreError> {
        let js = self.state();
        let previous = js
            .meta(crate::jobstate::MEMBERSHIP_EPOCH)?
            .unwrap_or_default();
        let at = self
            .clock
            .now()
            .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let chained = digest(&format!("{previous}\n{at}\n{object}\n{moment}"));
        js.new_membership_epoch(&format!("{at}/{chained:016x}"))
    }

    /// Effective assignments for a decision on demand (group expansion uses the group mirror
    /// of the last cycle).
    async fn on_demand_assignments(
        &self,
    ) -> Result<Option<BTreeMap<String, Vec<AppRoleAssignment>>>, CycleError> {
        Ok(match &self.job.scope {
            UserScope::All => None,
            UserScope::Assigned {
                service_principal_id,
            } => {
                let a = self.source.read_assignments(service_principal_id).await?;
                let groups = GroupView::load(self.store, &self.job.name)?;
                Some(effective_assignments(
                    a,
                    &groups,
                    self.job.exclude_default_access,
                ))
            }
        })
    }
}

fn on_demand_id(now: chrono::DateTime<chrono::Utc>, object: &str) -> String {
    format!("ondemand-{}", v7_like(now, digest(object), 0))
}
