//! Groups: after the users, each group in scope is matched or created (empty), its
//! attributes kept up to date, and its membership brought to exactly the provisioned, active
//! users among its direct members — by PATCH add/remove of the difference, in batches, never
//! a full replace. The set of member ids the target confirmed is kept per group (one record
//! per member), written after each confirmed batch, so a crash half way resumes without
//! re-adding or losing members.
//!
//! Better than Entra: membership is recomputed from the group mirror and the user state every
//! cycle (no I/O unless something differs), so a member who enters scope after the group was
//! provisioned is added, and a re-enabled user gets its memberships back.

use crate::cycle::{Ctx, Engine, GROUP_PREFIX, Processed, Trail};
use crate::diff::diff;
use crate::read::GroupView;
use crate::report::{Action, Mode, ObjectReport, ObjectType};
use crate::users::modified_properties;
use futures::stream::{self, StreamExt};
use scimsync_core::{
    Attrs, ErrorCode, LogEntry, LogStatus, ObjectState, Outcome, Source, SourceUser, StateChange,
    StateStore, StoreError, Target, TargetError, TargetGroup,
};
use scimsync_mapping::{hash_attrs, map_user, matching_keys};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};

/// What the cycle will decide for groups, computed before anything is sent.
pub(crate) struct GroupPlan {
    items: Vec<GroupItem>,
    delete_out_of_scope: bool,
}

enum GroupItem {
    InScope {
        id: String,
        state: Option<ObjectState>,
    },
    /// Known to the job and out of scope (unassigned) or deleted at the source.
    Out { state: ObjectState, deleted: bool },
}

impl GroupPlan {
    /// Source ids of groups this cycle would delete (for the deletion threshold).
    pub(crate) fn deprovision_candidates(&self) -> Vec<String> {
        self.items
            .iter()
            .filter_map(|i| match i {
                GroupItem::Out { state, deleted } if *deleted || self.delete_out_of_scope => {
                    Some(state.source_id.clone())
                }
                _ => None,
            })
            .collect()
    }
}

fn members_kind(group_source_id: &str) -> String {
    format!("members/{group_source_id}")
}

impl<S: Source, T: Target, St: StateStore> Engine<'_, S, T, St> {
    pub(crate) fn plan_groups(
        &self,
        _ctx: &Ctx,
        view: &GroupView,
        assigned: Option<&BTreeSet<String>>,
        group_states: &[ObjectState],
    ) -> GroupPlan {
        let Some(spec) = &self.job.groups else {
            return GroupPlan {
                items: Vec::new(),
                delete_out_of_scope: false,
            };
        };
        let states: HashMap<&str, &ObjectState> = group_states
            .iter()
            .filter_map(|s| s.source_id.strip_prefix(GROUP_PREFIX).map(|id| (id, s)))
            .collect();
        let mut items = Vec::new();
        for (id, g) in &view.groups {
            let in_scope = assigned.is_none_or(|a| a.contains(id))
                && scimsync_mapping::evaluate_filters(&g.attrs, &spec.scoping).in_scope;
            let state = states.get(id.as_str()).map(|s| (*s).clone());
            if in_scope {
                items.push(GroupItem::InScope {
                    id: id.clone(),
                    state,
                });
            } else if let Some(state) = state
                && (spec.delete_out_of_scope || state.outcome != Outcome::OutOfScope)
            {
                items.push(GroupItem::Out {
                    state,
                    deleted: false,
                });
            }
        }
        for (id, st) in &states {
            if !view.groups.contains_key(*id) {
                items.push(GroupItem::Out {
                    state: (*st).clone(),
                    deleted: true,
                });
            }
        }
        GroupPlan {
            items,
            delete_out_of_scope: spec.delete_out_of_scope && self.job.actions.delete,
        }
    }

    pub(crate) async fn sync_groups(
        &self,
        ctx: &Ctx,
        view: &GroupView,
        plan: GroupPlan,
        user_reports: &[ObjectReport],
    ) -> Result<Vec<Processed>, StoreError> {
        // Member references are target ids of users as they stand after the user phase.
        let mut users: HashMap<String, ObjectState> = self
            .store
            .list(&self.job.name)?
            .into_iter()
            .filter(|s| !s.source_id.starts_with(GROUP_PREFIX))
            .map(|s| (s.source_id.clone(), s))
            .collect();
        if ctx.mode == Mode::Preview {
            // Nothing was written: show membership as the user phase would have left it.
            for r in user_reports
                .iter()
                .filter(|r| r.object_type == ObjectType::User && r.error.is_none())
            {
                match &r.action {
                    Action::Disable { .. } | Action::Delete { .. } => {
                        if let Some(st) = users.get_mut(&r.source_id) {
                            st.active = false;
                        }
                    }
                    Action::Create { .. } => {
                        users.insert(
                            r.source_id.clone(),
                            ObjectState {
                                source_id: r.source_id.clone(),
                                target_id: format!("(new user {})", r.display_name),
                                hash: String::new(),
                                confirmed: Attrs::new(),
                                active: true,
                                outcome: Outcome::Created,
                                updated_at: ctx.now,
                            },
                        );
                    }
                    Action::Update { target_id, .. } if changes_activate(&r.action) => {
                        if let Some(st) = users.get_mut(&r.source_id) {
                            st.active = true;
                            st.target_id = target_id.clone();
                        }
                    }
                    _ => {}
                }
            }
        }
        let group_targets: HashMap<String, String> = plan
            .items
            .iter()
            .filter_map(|i| match i {
                GroupItem::InScope {
                    id,
                    state: Some(st),
                } => Some((id.clone(), st.target_id.clone())),
                _ => None,
            })
            .collect();
        let results: Vec<Result<Processed, StoreError>> = stream::iter(plan.items)
            .map(|item| self.process_group(ctx, view, item, &users, &group_targets))
            .buffer_unordered(self.job.concurrency)
            .collect()
            .await;
        results.into_iter().collect()
    }

    async fn process_group(
        &self,
        ctx: &Ctx,
        view: &GroupView,
        item: GroupItem,
        users: &HashMap<String, ObjectState>,
        group_targets: &HashMap<String, String>,
    ) -> Result<Processed, StoreError> {
        match item {
            GroupItem::Out { state, deleted } => self.group_leaves(ctx, state, deleted).await,
            GroupItem::InScope { id, state } => {
                let Some(mirror) = view.groups.get(&id) else {
                    return Ok(Processed::Unchanged);
                };
                let mut attrs = mirror.attrs.clone();
                attrs
                    .entry("objectId".into())
                    .or_insert_with(|| Value::String(id.clone()));
                let source = SourceUser {
                    id: id.clone(),
                    attrs,
                };
                let display = source.str("displayName").unwrap_or(&id).to_string();
                let mut g = GroupRun::new(&id, &display);
                g.trail.step(
                    "Import",
                    "import",
                    LogStatus::Success,
                    format!("Retrieved group {display} from the source"),
                );
                g.trail.scope = "in scope: assigned to the application".into();
                g.trail.step(
                    "Scope",
                    "scoping",
                    LogStatus::Success,
                    g.trail.scope.clone(),
                );

                // The group object itself.
                let target_id = match self
                    .group_object(ctx, &mut g, &source, state.as_ref())
                    .await
                {
                    Ok(Some(tid)) => tid,
                    Ok(None) => {
                        return self.group_record(
                            ctx,
                            g,
                            state.as_ref().map(|s| s.target_id.as_str()),
                        );
                    }
                    Err((code, msg)) => {
                        g.error = Some((code, msg));
                        return self.group_record(
                            ctx,
                            g,
                            state.as_ref().map(|s| s.target_id.as_str()),
                        );
                    }
                };

                // Its members: provisioned, active users among the direct members (and
                // provisioned nested groups when the job includes them).
                let mut desired = BTreeSet::new();
                for u in &mirror.users {
                    match users.get(u) {
                        Some(st) if st.active => {
                            desired.insert(st.target_id.clone());
                        }
                        _ => g.left_out.push(u.clone()),
                    }
                }
                if self.job.groups.as_ref().is_some_and(|s| s.include_nested) {
                    for n in &mirror.groups {
                        match group_targets.get(n) {
                            Some(t) => {
                                desired.insert(t.clone());
                            }
                            None => g.left_out.push(n.clone()),
                        }
                    }
                }
                if let Err(e) = self
                    .sync_members(ctx, &mut g, &id, &target_id, &desired)
                    .await
                {
                    g.error = Some(e);
                }
                self.group_record(ctx, g, Some(&target_id))
            }
        }
    }

    /// Match or create the group, and bring its attributes up to date. Returns its target id
    /// (`None` in a preview of a create: there is no id yet).
    async fn group_object(
        &self,
        ctx: &Ctx,
        g: &mut GroupRun,
        source: &SourceUser,
        state: Option<&ObjectState>,
    ) -> Result<Option<String>, (ErrorCode, String)> {
        let spec = self.job.groups.as_ref().ok_or((
            ErrorCode::ConfigInvalid,
            "groups are not enabled".to_string(),
        ))?;
        let state_id = format!("{GROUP_PREFIX}{}", source.id);
        let desired = map_user(source, &spec.mappings, false, self.clock.now())
            .map_err(|e| (e.code, e.message))?;
        let hash = hash_attrs(&desired);
        if let Some(st) = state {
            if st.hash == hash {
                return Ok(Some(st.target_id.clone()));
            }
            let changes = diff(&st.confirmed, &desired);
            if changes.is_empty() {
                return Ok(Some(st.target_id.clone()));
            }
            g.old = Some(st.confirmed.clone());
            g.action = Action::Update {
                target_id: st.target_id.clone(),
                changes: changes.clone(),
            };
            if ctx.mode == Mode::Apply {
                self.target
                    .update_group(&st.target_id, &changes)
                    .await
                    .map_err(te)?;
                let mut confirmed = st.confirmed.clone();
                for c in &changes {
                    confirmed.insert(c.path.clone(), c.value.clone());
                }
                g.state = StateChange::Put(self.group_state(
                    &state_id,
                    &st.target_id,
                    hash,
                    confirmed,
                    Outcome::Updated,
                ));
            }
            return Ok(Some(st.target_id.clone()));
        }

        let create_attrs = map_user(source, &spec.mappings, true, self.clock.now())
            .map_err(|e| (e.code, e.message))?;
        let keys = matching_keys(&spec.mappings, &create_attrs);
        if keys.is_empty() {
            return Err((
                ErrorCode::ImportSkipped,
                "the group has no value for its matching attribute".into(),
            ));
        }
        let mut found: Option<TargetGroup> = None;
        for (path, value) in &keys {
            let query = format!("{path} eq \"{value}\"");
            let hits = self.target.find_groups(path, value).await.map_err(te)?;
            match hits.len() {
                0 => g.trail.step(
                    "Match",
                    "matching",
                    LogStatus::Success,
                    format!("{query}: no match"),
                ),
                1 => {
                    g.trail.step(
                        "Match",
                        "matching",
                        LogStatus::Success,
                        format!("{query}: matched {}", hits[0].id),
                    );
                    g.trail.matched_by = Some(query);
                    found = hits.into_iter().next();
                    break;
                }
                n => {
                    return Err((
                        ErrorCode::DuplicateTargetEntries,
                        format!("{query} matched {n} target groups"),
                    ));
                }
            }
        }
        match found {
            Some(tg) => {
                let changes = diff(&tg.attrs, &desired);
                let mut confirmed = tg.attrs.clone();
                if changes.is_empty() {
                    g.action = Action::Link {
                        target_id: tg.id.clone(),
                    };
                } else {
                    g.old = Some(tg.attrs.clone());
                    g.action = Action::Update {
                        target_id: tg.id.clone(),
                        changes: changes.clone(),
                    };
                    if ctx.mode == Mode::Apply {
                        self.target
                            .update_group(&tg.id, &changes)
                            .await
                            .map_err(te)?;
                    }
                    for c in &changes {
                        confirmed.insert(c.path.clone(), c.value.clone());
                    }
                }
                if ctx.mode == Mode::Apply {
                    g.state = StateChange::Put(self.group_state(
                        &state_id,
                        &tg.id,
                        hash,
                        confirmed,
                        Outcome::Matched,
                    ));
                }
                Ok(Some(tg.id))
            }
            None if !self.job.actions.create => {
                g.action = Action::Skip {
                    reason: "no match and the Create target action is off".into(),
                };
                Ok(None)
            }
            None => {
                g.action = Action::Create {
                    attrs: create_attrs.clone(),
                };
                if ctx.mode == Mode::Preview {
                    return Ok(None);
                }
                let created = self.target.create_group(&create_attrs).await.map_err(te)?;
                // Committed with the group's log entry; a crash before that is healed by the
                // next cycle's matching query, which finds the group by its matching attribute.
                g.state = StateChange::Put(self.group_state(
                    &state_id,
                    &created.id,
                    hash,
                    create_attrs,
                    Outcome::Created,
                ));
                Ok(Some(created.id))
            }
        }
    }

    fn group_state(
        &self,
        state_id: &str,
        target_id: &str,
        hash: String,
        confirmed: Attrs,
        outcome: Outcome,
    ) -> ObjectState {
        ObjectState {
            source_id: state_id.to_string(),
            target_id: target_id.to_string(),
            hash,
            confirmed,
            active: true,
            outcome,
            updated_at: self.clock.now(),
        }
    }

    /// Bring the target's member list to `desired` by adding and removing the difference in
    /// batches; the confirmed set is written after every batch the target accepted.
    async fn sync_members(
        &self,
        ctx: &Ctx,
        g: &mut GroupRun,
        group_id: &str,
        target_id: &str,
        desired: &BTreeSet<String>,
    ) -> Result<(), (ErrorCode, String)> {
        let job = &self.job.name;
        let kind = members_kind(group_id);
        let recorded: BTreeSet<String> = self
            .store
            .list_records(job, &kind)
            .map_err(se)?
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        // Reconcile (beyond Entra, which never reads membership back): the target's actual
        // members replace what we recorded, so drift made in the app is repaired below.
        let confirmed = if ctx.reconcile {
            let actual: BTreeSet<String> = self
                .target
                .group_members(target_id)
                .await
                .map_err(te)?
                .into_iter()
                .collect();
            let extra = actual.difference(&recorded).count();
            let missing = recorded.difference(&actual).count();
            g.trail.step(
                "Reconcile",
                "matching",
                LogStatus::Success,
                format!("read {} member(s) from the target: {extra} added and {missing} removed in the app", actual.len()),
            );
            if ctx.mode == Mode::Apply {
                for id in actual.difference(&recorded) {
                    self.store.put_record(job, &kind, id, "").map_err(se)?;
                }
                for id in recorded.difference(&actual) {
                    self.store.remove_record(job, &kind, id).map_err(se)?;
                }
            }
            actual
        } else {
            recorded
        };
        let add: Vec<String> = desired.difference(&confirmed).cloned().collect();
        let remove: Vec<String> = confirmed.difference(desired).cloned().collect();
        if !g.left_out.is_empty() {
            let sample: Vec<&str> = g.left_out.iter().take(5).map(String::as_str).collect();
            g.trail.step(
                "Members",
                "referenceResolution",
                LogStatus::Warning,
                format!(
                    "{} member(s) left out: their user is not provisioned or not active (e.g. {})",
                    g.left_out.len(),
                    sample.join(", ")
                ),
            );
        }
        let batch = self
            .job
            .groups
            .as_ref()
            .map(|s| s.batch_size)
            .unwrap_or(100)
            .max(1);
        if ctx.mode == Mode::Preview {
            g.added = add;
            g.removed = remove;
            return Ok(());
        }
        for chunk in add.chunks(batch) {
            self.target
                .add_members(target_id, chunk)
                .await
                .map_err(te)?;
            for id in chunk {
                self.store.put_record(job, &kind, id, "").map_err(se)?;
            }
            g.added.extend(chunk.iter().cloned());
        }
        for chunk in remove.chunks(batch) {
            self.target
                .remove_members(target_id, chunk)
                .await
                .map_err(te)?;
            for id in chunk {
                self.store.remove_record(job, &kind, id).map_err(se)?;
            }
            g.removed.extend(chunk.iter().cloned());
        }
        Ok(())
    }

    /// A group that left scope or was deleted at the source.
    async fn group_leaves(
        &self,
        ctx: &Ctx,
        st: ObjectState,
        deleted: bool,
    ) -> Result<Processed, StoreError> {
        let group_id = st
            .source_id
            .strip_prefix(GROUP_PREFIX)
            .unwrap_or(&st.source_id)
            .to_string();
        let display = st
            .confirmed
            .get("displayName")
            .and_then(Value::as_str)
            .unwrap_or(&group_id)
            .to_string();
        let mut g = GroupRun::new(&group_id, &display);
        g.trail.scope = if deleted {
            "deleted in the source".into()
        } else {
            "out of scope: not assigned".into()
        };
        g.trail.step(
            "Scope",
            "scoping",
            LogStatus::Skipped,
            g.trail.scope.clone(),
        );
        let delete = deleted
            || self
                .job
                .groups
                .as_ref()
                .is_some_and(|s| s.delete_out_of_scope);
        if !delete || !self.job.actions.delete {
            if st.outcome == Outcome::OutOfScope {
                return Ok(Processed::Unchanged);
            }
            g.action = Action::Skip {
                reason: "left scope; the job keeps groups that leave scope".into(),
            };
            if ctx.mode == Mode::Apply {
                let mut next = st.clone();
                next.outcome = Outcome::OutOfScope;
                g.state = StateChange::Put(next);
            }
            return self.group_record(ctx, g, Some(&st.target_id));
        }
        if ctx.held.contains(&st.source_id) {
            g.action = Action::StagedDelete {
                target_id: st.target_id.clone(),
                held: "delete".into(),
            };
            return self.group_record(ctx, g, Some(&st.target_id));
        }
        g.action = Action::Delete {
            target_id: st.target_id.clone(),
        };
        if ctx.mode == Mode::Apply {
            match self.target.delete_group(&st.target_id).await {
                Ok(())
                | Err(TargetError {
                    code: ErrorCode::InvalidAnchor,
                    ..
                }) => {
                    let kind = members_kind(&group_id);
                    for (id, _) in self.store.list_records(&self.job.name, &kind)? {
                        self.store.remove_record(&self.job.name, &kind, &id)?;
                    }
                    g.state = StateChange::Remove {
                        source_id: st.source_id.clone(),
                    };
                }
                Err(e) => g.error = Some((e.code, e.detail)),
            }
        }
        self.group_record(ctx, g, Some(&st.target_id))
    }

    /// One report and one log entry for the group, whatever happened to it this cycle.
    fn group_record(
        &self,
        ctx: &Ctx,
        mut g: GroupRun,
        target_id: Option<&str>,
    ) -> Result<Processed, StoreError> {
        let quiet = matches!(g.action, Action::NoChange)
            && g.added.is_empty()
            && g.removed.is_empty()
            && g.error.is_none();
        if quiet {
            return Ok(Processed::Unchanged);
        }
        let status = match (&g.error, &g.action) {
            (Some(_), _) => LogStatus::Failure,
            (None, Action::Skip { .. } | Action::StagedDelete { .. }) => LogStatus::Skipped,
            _ => LogStatus::Success,
        };
        let description = match (&g.error, &g.action) {
            (Some((code, msg)), _) => format!("{code}: {msg}"),
            (None, _) => format!(
                "{}; {} member(s) added, {} removed",
                describe(&g.action),
                g.added.len(),
                g.removed.len()
            ),
        };
        let verb = if ctx.mode == Mode::Preview {
            "Would provision"
        } else {
            "Provision"
        };
        g.trail.step(verb, "export", status, description);
        let mut modified = modified_properties(&g.action, g.old.as_ref());
        if !g.added.is_empty() {
            modified.push(scimsync_core::ModifiedProperty {
                display_name: "members (added)".into(),
                old_value: None,
                new_value: Some(g.added.join(",")),
            });
        }
        if !g.removed.is_empty() {
            modified.push(scimsync_core::ModifiedProperty {
                display_name: "members (removed)".into(),
                old_value: Some(g.removed.join(",")),
                new_value: None,
            });
        }
        let action = if matches!(g.action, Action::NoChange)
            && (!g.added.is_empty() || !g.removed.is_empty())
        {
            Action::Update {
                target_id: target_id.unwrap_or_default().to_string(),
                changes: Vec::new(),
            }
        } else {
            g.action.clone()
        };
        let report = ObjectReport {
            object_type: ObjectType::Group,
            source_id: g.trail.source_id.clone(),
            display_name: g.trail.display.clone(),
            scope: g.trail.scope.clone(),
            matched_by: g.trail.matched_by.clone(),
            action: action.clone(),
            status,
            error_code: g.error.as_ref().map(|e| e.0),
            error: g.error.as_ref().map(|e| e.1.clone()),
            members_added: g.added.clone(),
            members_removed: g.removed.clone(),
            members_left_out: g.left_out.clone(),
            steps: g.trail.steps.clone(),
        };
        if ctx.mode == Mode::Apply {
            let entry = LogEntry {
                id: uuid::Uuid::now_v7().to_string(),
                activity_date_time: self.clock.now(),
                job_id: self.job.name.clone(),
                cycle_id: ctx.cycle_id.clone(),
                change_id: uuid::Uuid::new_v4().to_string(),
                provisioning_action: action.log_action(),
                status,
                error_code: report.error_code,
                reason: report.error.clone(),
                source_id: g.trail.source_id,
                source_display_name: g.trail.display,
                target_id: target_id.map(str::to_string),
                provisioning_steps: g.trail.steps,
                modified_properties: modified,
                duration_in_milliseconds: g.trail.started.elapsed().as_millis() as u64,
            };
            self.store.commit(&self.job.name, &g.state, &entry)?;
        }
        Ok(Processed::Reported(report))
    }
}

/// Whether an update turns the user's `active` on (a re-enable or restore).
fn changes_activate(a: &Action) -> bool {
    match a {
        Action::Update { changes, .. } => changes
            .iter()
            .any(|c| c.path == "active" && c.value == Value::Bool(true)),
        _ => false,
    }
}

fn describe(a: &Action) -> &'static str {
    match a {
        Action::Create { .. } => "POST /Groups (created empty)",
        Action::Update { .. } => "PATCH /Groups/{id}",
        Action::Delete { .. } => "DELETE /Groups/{id}",
        Action::Link { .. } => "linked to an existing group",
        Action::Skip { .. } => "skipped",
        Action::StagedDelete { .. } => "delete held back by the deletion threshold",
        Action::Disable { .. } | Action::NoChange => "no change to the group's attributes",
    }
}

fn te(e: TargetError) -> (ErrorCode, String) {
    (e.code, e.detail)
}

fn se(e: StoreError) -> (ErrorCode, String) {
    (e.code, e.message)
}

/// What happened to one group this cycle, gathered for its single log entry.
struct GroupRun {
    trail: Trail,
    action: Action,
    state: StateChange,
    old: Option<Attrs>,
    added: Vec<String>,
    removed: Vec<String>,
    left_out: Vec<String>,
    error: Option<(ErrorCode, String)>,
}

impl GroupRun {
    fn new(id: &str, display: &str) -> Self {
        GroupRun {
            trail: Trail::new(&format!("{GROUP_PREFIX}{id}"), display),
            action: Action::NoChange,
            state: StateChange::None,
            old: None,
            added: Vec::new(),
            removed: Vec::new(),
            left_out: Vec::new(),
            error: None,
        }
    }
}
