//! Users: decide one user from its source record and the state the target last confirmed,
//! act, and commit state with its log entry.

use crate::cycle::{Ctx, Engine, Processed, Trail, UserItem};
use crate::escrow::{ESCROW, Escrow};
use crate::report::{Action, CycleKind, Mode, ObjectReport, ObjectType};
use scimsync_core::{
    Attrs, Change, ErrorCode, LogEntry, LogStatus, ModifiedProperty, ObjectState, Outcome, Source,
    SourceUser, StateChange, StateStore, StoreError, Target, TargetError, TargetUser,
};
use scimsync_mapping::{
    ScopeDecision, evaluate_scope, hash_attrs, map_user, matching_keys, unique_candidates,
};
use serde_json::Value;

impl<S: Source, T: Target, St: StateStore> Engine<'_, S, T, St> {
    /// The representation kept up to date on every cycle (create-only mappings and defaults
    /// excluded), with `active` when the engine owns it.
    fn desired(&self, user: &SourceUser, on_create: bool) -> Result<Attrs, (ErrorCode, String)> {
        let mut attrs = map_user(user, &self.job.mappings, on_create, self.clock.now())
            .map_err(|e| (e.code, e.message))?;
        if !self.job.maps_active() {
            attrs.insert("active".into(), Value::Bool(true));
        }
        Ok(attrs)
    }

    pub(crate) async fn process_user(
        &self,
        ctx: &Ctx,
        item: UserItem<'_>,
    ) -> Result<Processed, StoreError> {
        let source_id = item.source_id().to_string();
        let escrow = ctx.escrows.get(&source_id);
        if let Some(e) = escrow
            && e.next_retry > ctx.now
        {
            return Ok(Processed::Escrowed);
        }
        let result = match item {
            UserItem::Present(user, state) => self.process_present(ctx, user, state).await?,
            UserItem::Gone(state, soft) => self.process_gone(ctx, state, soft).await?,
        };
        if ctx.mode == Mode::Apply {
            self.settle_escrow(&source_id, escrow, &result)?;
        }
        Ok(result)
    }

    /// Failed with a retryable error → into escrow (or one attempt more); succeeded → out.
    fn settle_escrow(
        &self,
        source_id: &str,
        escrow: Option<&Escrow>,
        result: &Processed,
    ) -> Result<(), StoreError> {
        let job = &self.job.name;
        match result {
            Processed::Reported(r) if r.status == LogStatus::Failure => {
                let code = r.error_code.unwrap_or(ErrorCode::InternalServerError);
                if !code.is_retryable() {
                    return Ok(());
                }
                let error = r.error.clone().unwrap_or_default();
                match self.job.escrow.record(
                    escrow,
                    source_id,
                    &r.display_name,
                    code,
                    &error,
                    self.clock.now(),
                ) {
                    Some(e) => {
                        let v = serde_json::to_string(&e)
                            .map_err(|e| StoreError::new(e.to_string()))?;
                        self.store.put_record(job, ESCROW, source_id, &v)
                    }
                    None => {
                        tracing::warn!(job = %job, object = %r.display_name, "escrow expired after repeated failures; giving up");
                        self.store.remove_record(job, ESCROW, source_id)
                    }
                }
            }
            _ if escrow.is_some() => self.store.remove_record(job, ESCROW, source_id),
            _ => Ok(()),
        }
    }

    async fn process_present(
        &self,
        ctx: &Ctx,
        user: &SourceUser,
        state: Option<&ObjectState>,
    ) -> Result<Processed, StoreError> {
        let user = &self.with_derived_attributes(ctx, user);
        let mut trail = Trail::new(&user.id, user.display());
        trail.step(
            "Import",
            "import",
            LogStatus::Success,
            format!("Retrieved {} from the source", user.display()),
        );
        let scope = evaluate_scope(
            user,
            ctx.assigned.as_ref().map(|a| a.contains_key(&user.id)),
            &self.job.scoping,
        );
        let decision = scope.decision;
        trail.scope = scope.reason.clone();
        let scope_status = if decision == ScopeDecision::InScope {
            LogStatus::Success
        } else {
            LogStatus::Skipped
        };
        trail.step("Scope", "scoping", scope_status, scope.reason);

        match (decision, state) {
            (ScopeDecision::InScope, Some(st)) => self.update_linked(ctx, trail, user, st).await,
            (ScopeDecision::InScope, None) => self.match_and_create(ctx, trail, user).await,
            (out, Some(st)) => self.leave_scope(ctx, trail, st, out).await,
            (out, None) => {
                if ctx.kind == CycleKind::Incremental {
                    return Ok(Processed::SilentSkip);
                }
                let reason = match out {
                    ScopeDecision::DisabledAtSource => {
                        "disabled in the source: a disabled user is never created"
                    }
                    _ => "not in scope: nothing to provision",
                };
                self.finish(
                    ctx,
                    trail,
                    Action::Skip {
                        reason: reason.into(),
                    },
                    StateChange::None,
                    None,
                    None,
                )
            }
        }
    }

    async fn update_linked(
        &self,
        ctx: &Ctx,
        mut trail: Trail,
        user: &SourceUser,
        st: &ObjectState,
    ) -> Result<Processed, StoreError> {
        let desired = match self.desired(user, false) {
            Ok(d) => d,
            Err(e) => return self.fail(ctx, trail, e, Some(&st.target_id)),
        };
        let hash = hash_attrs(&desired);
        if st.active && st.hash == hash {
            return Ok(Processed::Unchanged);
        }
        let changes = self.job.user_diff(&st.confirmed, &desired);
        if changes.is_empty() {
            return Ok(Processed::Unchanged);
        }
        if !self.job.actions.update {
            let action = Action::Skip {
                reason: "the Update target action is off".into(),
            };
            return self.finish(
                ctx,
                trail,
                action,
                StateChange::None,
                None,
                Some(&st.target_id),
            );
        }
        trail.step(
            "Match",
            "matching",
            LogStatus::Success,
            format!("linked to target object {}", st.target_id),
        );
        let outcome = if st.active {
            Outcome::Updated
        } else {
            Outcome::Enabled
        };
        self.send_update(
            ctx,
            trail,
            st.target_id.clone(),
            st.confirmed.clone(),
            changes,
            hash,
            outcome,
        )
        .await
    }

    async fn match_and_create(
        &self,
        ctx: &Ctx,
        mut trail: Trail,
        user: &SourceUser,
    ) -> Result<Processed, StoreError> {
        let create_attrs = match self.desired(user, true) {
            Ok(d) => d,
            Err(e) => return self.fail(ctx, trail, e, None),
        };
        let keys = matching_keys(&self.job.mappings, &create_attrs);
        if keys.is_empty() {
            let e = (
                ErrorCode::ImportSkipped,
                "no matching attribute has a value for this user".to_string(),
            );
            return self.fail(ctx, trail, e, None);
        }
        let found = match self.find(&keys, &mut trail).await {
            Err(e) => return self.fail(ctx, trail, e, None),
            Ok(found) => found,
        };
        if let Some(found) = found {
            return self.link(ctx, trail, user, found).await;
        }
        if !self.job.actions.create {
            let action = Action::Skip {
                reason: "no match and the Create target action is off".into(),
            };
            return self.finish(ctx, trail, action, StateChange::None, None, None);
        }
        let mut create_attrs = create_attrs;
        if let Err(e) = self
            .resolve_unique(user, &mut create_attrs, &mut trail)
            .await
        {
            return self.fail(ctx, trail, e, None);
        }
        if ctx.mode == Mode::Preview {
            let action = Action::Create {
                attrs: create_attrs,
            };
            return self.finish(ctx, trail, action, StateChange::None, None, None);
        }
        {
            match self.target.create_user(&create_attrs).await {
                Ok(created) => {
                    let hash = match self.desired(user, false) {
                        Ok(d) => hash_attrs(&d),
                        Err(e) => return self.fail(ctx, trail, e, Some(&created.id)),
                    };
                    let st = ObjectState {
                        source_id: user.id.clone(),
                        target_id: created.id.clone(),
                        hash,
                        confirmed: create_attrs.clone(),
                        active: true,
                        outcome: Outcome::Created,
                        updated_at: self.clock.now(),
                    };
                    let target_id = created.id.clone();
                    let action = Action::Create {
                        attrs: create_attrs,
                    };
                    self.finish(
                        ctx,
                        trail,
                        action,
                        StateChange::Put(st),
                        None,
                        Some(&target_id),
                    )
                }
                Err(e) if e.is_conflict() => {
                    // The object exists after all (created meanwhile, or our state was lost
                    // after a create): match again and update instead of failing.
                    trail.step(
                        "Create",
                        "export",
                        LogStatus::Warning,
                        "409 Conflict: matching again",
                    );
                    match self.find(&keys, &mut trail).await {
                        Ok(Some(found)) => self.link(ctx, trail, user, found).await,
                        Ok(None) => {
                            self.fail(ctx, trail, (ErrorCode::EntryConflict, e.detail), None)
                        }
                        Err(e) => self.fail(ctx, trail, e, None),
                    }
                }
                Err(e) => self.fail(ctx, trail, (e.code, e.detail), None),
            }
        }
    }

    /// `SelectUniqueValue`: try each candidate against the target (a filter query) and keep
    /// the first no object holds yet.
    async fn resolve_unique(
        &self,
        user: &SourceUser,
        attrs: &mut Attrs,
        trail: &mut Trail,
    ) -> Result<(), (ErrorCode, String)> {
        for (path, candidates) in unique_candidates(user, &self.job.mappings, self.clock.now()) {
            let mut chosen = None;
            for c in &candidates {
                let text = match c {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let hits = self
                    .target
                    .find_users(&path, &text)
                    .await
                    .map_err(|e| (e.code, e.detail))?;
                if hits.is_empty() {
                    chosen = Some(c.clone());
                    break;
                }
            }
            match chosen {
                Some(v) => {
                    trail.step(
                        "Unique value",
                        "processing",
                        LogStatus::Success,
                        format!("{path}: {v} is free in the target"),
                    );
                    attrs.insert(path, v);
                }
                None => {
                    return Err((
                        ErrorCode::EntryConflict,
                        format!(
                            "SelectUniqueValue for {path}: every candidate is taken in the target"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Query each matching attribute in precedence order until one finds the object.
    async fn find(
        &self,
        keys: &[(String, String)],
        trail: &mut Trail,
    ) -> Result<Option<TargetUser>, (ErrorCode, String)> {
        for (path, value) in keys {
            let query = format!("{path} eq \"{value}\"");
            let hits = self
                .target
                .find_users(path, value)
                .await
                .map_err(|e: TargetError| (e.code, e.detail))?;
            match hits.len() {
                0 => trail.step(
                    "Match",
                    "matching",
                    LogStatus::Success,
                    format!("{query}: no match"),
                ),
                1 => {
                    trail.step(
                        "Match",
                        "matching",
                        LogStatus::Success,
                        format!("{query}: matched {}", hits[0].id),
                    );
                    trail.matched_by = Some(query);
                    return Ok(hits.into_iter().next());
                }
                n => {
                    let msg = format!("{query} matched {n} target objects");
                    trail.step("Match", "matching", LogStatus::Failure, msg.clone());
                    return Err((ErrorCode::DuplicateTargetEntries, msg));
                }
            }
        }
        Ok(None)
    }

    async fn link(
        &self,
        ctx: &Ctx,
        trail: Trail,
        user: &SourceUser,
        found: TargetUser,
    ) -> Result<Processed, StoreError> {
        let desired = match self.desired(user, false) {
            Ok(d) => d,
            Err(e) => return self.fail(ctx, trail, e, Some(&found.id)),
        };
        let hash = hash_attrs(&desired);
        let changes = self.job.user_diff(&found.attrs, &desired);
        if changes.is_empty() || !self.job.actions.update {
            let st = ObjectState {
                source_id: user.id.clone(),
                target_id: found.id.clone(),
                hash,
                active: found.attrs.get("active") != Some(&Value::Bool(false)),
                confirmed: found.attrs,
                outcome: Outcome::Matched,
                updated_at: self.clock.now(),
            };
            let change = if ctx.mode == Mode::Apply {
                StateChange::Put(st)
            } else {
                StateChange::None
            };
            return self.finish(
                ctx,
                trail,
                Action::Link {
                    target_id: found.id.clone(),
                },
                change,
                None,
                Some(&found.id),
            );
        }
        self.send_update(
            ctx,
            trail,
            found.id,
            found.attrs,
            changes,
            hash,
            Outcome::Matched,
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn send_update(
        &self,
        ctx: &Ctx,
        trail: Trail,
        target_id: String,
        confirmed: Attrs,
        changes: Vec<Change>,
        hash: String,
        outcome: Outcome,
    ) -> Result<Processed, StoreError> {
        let action = Action::Update {
            target_id: target_id.clone(),
            changes: changes.clone(),
        };
        if ctx.mode == Mode::Preview {
            return self.finish(
                ctx,
                trail,
                action,
                StateChange::None,
                Some(&confirmed),
                Some(&target_id),
            );
        }
        if let Err(e) = self.target.update_user(&target_id, &changes).await {
            return self.fail(ctx, trail, (e.code, e.detail), Some(&target_id));
        }
        let mut now_confirmed = confirmed.clone();
        for c in &changes {
            match c.op {
                scimsync_core::ChangeOp::Remove => now_confirmed.remove(&c.path),
                _ => now_confirmed.insert(c.path.clone(), c.value.clone()),
            };
        }
        let st = ObjectState {
            source_id: trail.source_id.clone(),
            target_id: target_id.clone(),
            hash,
            active: now_confirmed.get("active") != Some(&Value::Bool(false)),
            confirmed: now_confirmed,
            outcome,
            updated_at: self.clock.now(),
        };
        self.finish(
            ctx,
            trail,
            action,
            StateChange::Put(st),
            Some(&confirmed),
            Some(&target_id),
        )
    }

    async fn leave_scope(
        &self,
        ctx: &Ctx,
        trail: Trail,
        st: &ObjectState,
        decision: ScopeDecision,
    ) -> Result<Processed, StoreError> {
        if !st.active {
            return Ok(Processed::Unchanged);
        }
        if decision.is_scope_loss() && self.job.skip_out_of_scope_deletions {
            let action = Action::Skip {
                reason: "left scope; SkipOutOfScopeDeletions is set, so it stays active".into(),
            };
            return self.finish(
                ctx,
                trail,
                action,
                StateChange::None,
                None,
                Some(&st.target_id),
            );
        }
        if ctx.held.contains(&st.source_id) {
            return self.stage(ctx, trail, st, "disable");
        }
        if decision.is_scope_loss() && self.job.deprovision_delete {
            return self.delete(ctx, trail, st).await;
        }
        let outcome = if decision.is_scope_loss() {
            Outcome::OutOfScope
        } else {
            Outcome::Disabled
        };
        self.disable(ctx, trail, st, outcome).await
    }

    /// Hold a disable or delete back: log it as Entra's `StagedDelete`, send nothing.
    fn stage(
        &self,
        ctx: &Ctx,
        trail: Trail,
        st: &ObjectState,
        held: &str,
    ) -> Result<Processed, StoreError> {
        let action = Action::StagedDelete {
            target_id: st.target_id.clone(),
            held: held.to_string(),
        };
        self.record(
            ctx,
            trail,
            action,
            LogStatus::Skipped,
            None,
            StateChange::None,
            None,
            Some(&st.target_id),
        )
    }

    async fn disable(
        &self,
        ctx: &Ctx,
        trail: Trail,
        st: &ObjectState,
        outcome: Outcome,
    ) -> Result<Processed, StoreError> {
        let action = Action::Disable {
            target_id: st.target_id.clone(),
        };
        if ctx.mode == Mode::Preview {
            return self.finish(
                ctx,
                trail,
                action,
                StateChange::None,
                Some(&st.confirmed),
                Some(&st.target_id),
            );
        }
        if let Err(e) = self
            .target
            .update_user(&st.target_id, &action.changes())
            .await
        {
            return self.fail(ctx, trail, (e.code, e.detail), Some(&st.target_id));
        }
        let mut next = st.clone();
        next.active = false;
        next.confirmed.insert("active".into(), Value::Bool(false));
        next.outcome = outcome;
        next.updated_at = self.clock.now();
        self.finish(
            ctx,
            trail,
            action,
            StateChange::Put(next),
            Some(&st.confirmed),
            Some(&st.target_id),
        )
    }

    /// A linked object that is no longer among the source's users: soft- or hard-deleted.
    async fn process_gone(
        &self,
        ctx: &Ctx,
        st: &ObjectState,
        soft_deleted: bool,
    ) -> Result<Processed, StoreError> {
        let display = st
            .confirmed
            .get("userName")
            .and_then(Value::as_str)
            .unwrap_or(&st.source_id)
            .to_string();
        let mut trail = Trail::new(&st.source_id, &display);
        if soft_deleted {
            trail.scope = "soft-deleted in the source".into();
            trail.step(
                "Import",
                "import",
                LogStatus::Success,
                "the user is in the source's deleted items",
            );
            if !st.active {
                return Ok(Processed::Unchanged);
            }
            if ctx.held.contains(&st.source_id) {
                return self.stage(ctx, trail, st, "disable");
            }
            return self.disable(ctx, trail, st, Outcome::Disabled).await;
        }
        trail.scope = "hard-deleted in the source".into();
        trail.step(
            "Import",
            "import",
            LogStatus::Success,
            "the user no longer exists in the source",
        );
        let remove = StateChange::Remove {
            source_id: st.source_id.clone(),
        };
        if st.outcome == Outcome::OutOfScope {
            let action = Action::Skip {
                reason: "left management when it left scope; no DELETE is sent (as Entra)".into(),
            };
            let change = if ctx.mode == Mode::Apply {
                remove
            } else {
                StateChange::None
            };
            return self.finish(ctx, trail, action, change, None, Some(&st.target_id));
        }
        if !self.job.actions.delete {
            let action = Action::Skip {
                reason: "the Delete target action is off".into(),
            };
            let change = if ctx.mode == Mode::Apply {
                remove
            } else {
                StateChange::None
            };
            return self.finish(ctx, trail, action, change, None, Some(&st.target_id));
        }
        if ctx.held.contains(&st.source_id) {
            return self.stage(ctx, trail, st, "delete");
        }
        self.delete(ctx, trail, st).await
    }

    async fn delete(
        &self,
        ctx: &Ctx,
        trail: Trail,
        st: &ObjectState,
    ) -> Result<Processed, StoreError> {
        let remove = StateChange::Remove {
            source_id: st.source_id.clone(),
        };
        let action = Action::Delete {
            target_id: st.target_id.clone(),
        };
        if ctx.mode == Mode::Preview {
            return self.finish(
                ctx,
                trail,
                action,
                StateChange::None,
                None,
                Some(&st.target_id),
            );
        }
        match self.target.delete_user(&st.target_id).await {
            // Already gone from the target: the delete's goal holds.
            Ok(())
            | Err(TargetError {
                code: ErrorCode::InvalidAnchor,
                ..
            }) => self.finish(ctx, trail, action, remove, None, Some(&st.target_id)),
            Err(e) => self.fail(ctx, trail, (e.code, e.detail), Some(&st.target_id)),
        }
    }

    fn fail(
        &self,
        ctx: &Ctx,
        trail: Trail,
        (code, message): (ErrorCode, String),
        target_id: Option<&str>,
    ) -> Result<Processed, StoreError> {
        tracing::warn!(job = %self.job.name, object = %trail.display, code = %code, "{message}");
        self.record(
            ctx,
            trail,
            Action::NoChange,
            LogStatus::Failure,
            Some((code, message)),
            StateChange::None,
            None,
            target_id,
        )
    }

    fn finish(
        &self,
        ctx: &Ctx,
        trail: Trail,
        action: Action,
        change: StateChange,
        old: Option<&Attrs>,
        target_id: Option<&str>,
    ) -> Result<Processed, StoreError> {
        let status = if matches!(action, Action::Skip { .. }) {
            LogStatus::Skipped
        } else {
            LogStatus::Success
        };
        self.record(ctx, trail, action, status, None, change, old, target_id)
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        ctx: &Ctx,
        mut trail: Trail,
        action: Action,
        status: LogStatus,
        error: Option<(ErrorCode, String)>,
        change: StateChange,
        old: Option<&Attrs>,
        target_id: Option<&str>,
    ) -> Result<Processed, StoreError> {
        let description = match (&action, &error) {
            (_, Some((code, msg))) => format!("{code}: {msg}"),
            (Action::Create { .. }, _) => "POST /Users".to_string(),
            (Action::Update { .. } | Action::Disable { .. }, _) => "PATCH /Users/{id}".to_string(),
            (Action::Delete { .. }, _) => "DELETE /Users/{id}".to_string(),
            (Action::Skip { reason }, _) => reason.clone(),
            (Action::Link { .. }, _) => "linked; target already up to date".to_string(),
            (Action::StagedDelete { held, .. }, _) => {
                format!(
                    "{held} held back: the cycle exceeds the deletion threshold; waiting for approve-deletions"
                )
            }
            (Action::NoChange, _) => "no change".to_string(),
        };
        let verb = if ctx.mode == Mode::Preview {
            "Would provision"
        } else {
            "Provision"
        };
        trail.step(verb, "export", status, description);

        let modified = modified_properties(&action, old);
        let report = ObjectReport {
            object_type: ObjectType::User,
            source_id: trail.source_id.clone(),
            display_name: trail.display.clone(),
            scope: trail.scope.clone(),
            matched_by: trail.matched_by.clone(),
            action: action.clone(),
            status,
            error_code: error.as_ref().map(|e| e.0),
            error: error.as_ref().map(|e| e.1.clone()),
            members_added: Vec::new(),
            members_removed: Vec::new(),
            members_left_out: Vec::new(),
            steps: trail.steps.clone(),
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
                source_id: trail.source_id,
                source_display_name: trail.display,
                target_id: target_id.map(str::to_string),
                provisioning_steps: trail.steps,
                modified_properties: modified,
                duration_in_milliseconds: trail.started.elapsed().as_millis() as u64,
            };
            self.store.commit(&self.job.name, &change, &entry)?;
        }
        Ok(Processed::Reported(report))
    }

    /// Attributes Entra computes rather than reads: `IsSoftDeleted` (false for a user being
    /// provisioned) and `appRoleAssignments` (from the assignments read this cycle).
    fn with_derived_attributes(&self, ctx: &Ctx, user: &SourceUser) -> SourceUser {
        let mut u = user.clone();
        u.attrs
            .entry("IsSoftDeleted".into())
            .or_insert(Value::Bool(false));
        if let Some(roles) = ctx.assigned.as_ref().and_then(|a| a.get(&user.id)) {
            u.attrs.insert(
                "appRoleAssignments".into(),
                serde_json::to_value(roles).unwrap_or(Value::Null),
            );
        }
        u
    }
}

pub(crate) fn modified_properties(action: &Action, old: Option<&Attrs>) -> Vec<ModifiedProperty> {
    let show = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let pairs: Vec<(String, Value)> = match action {
        Action::Create { attrs } => attrs.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        Action::Update { .. } | Action::Disable { .. } => action
            .changes()
            .into_iter()
            .map(|c| (c.path, c.value))
            .collect(),
        _ => Vec::new(),
    };
    pairs
        .into_iter()
        .map(|(path, new)| ModifiedProperty {
            old_value: old.and_then(|o| o.get(&path)).map(show),
            new_value: Some(show(&new)),
            display_name: path,
        })
        .collect()
}
