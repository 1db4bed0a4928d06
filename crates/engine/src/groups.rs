//! Act on groups: after the users, each group's decision is carried out — matched or created
//! (empty), its attributes kept up to date, and its membership brought to exactly the
//! provisioned, active users among its direct members by PATCH add/remove of the difference,
//! in batches, never a full replace. The member ids the target confirmed are kept per group
//! (one record per member), written after each confirmed batch, so a crash half way resumes
//! without re-adding or losing members.
//!
//! Better than Entra: membership is recomputed from the group mirror and the user state every
//! cycle (no I/O unless something differs), so a member who enters scope after the group was
//! provisioned is added, and a re-enabled user gets its memberships back.

use crate::act::{Attempt, Claim, Cycle, Processed, Rec, gone_ok, retrying, se, te};
use crate::cycle::Engine;
use crate::plan::{GROUP_PREFIX, GroupDecision, GroupOp, MemberPlan, plan_members};
use crate::report::{Action, Mode, ObjectType};
use scimsync_core::{
    Attrs, ErrorCode, LogStatus, ObjectState, Outcome, Source, StateChange, StateStore, StoreError,
    Target, TargetError, TargetGroup,
};
use std::collections::{BTreeSet, HashMap};

pub(crate) fn members_kind(group_source_id: &str) -> String {
    format!("members/{group_source_id}")
}

/// Where each member user stands after the user phase: its target id when it is provisioned
/// and active.
pub(crate) type UserTargets = HashMap<String, Option<String>>;

/// What one group's object step left: its target id (`None` in a preview of a create) and
/// the state to commit.
struct ObjectStep {
    target_id: Option<String>,
    action: Action,
    old: Option<Attrs>,
    state: StateChange,
}

impl<S: Source, T: Target, St: StateStore> Engine<'_, S, T, St> {
    /// Carry out one group's decision and settle its escrow.
    pub(crate) async fn act_group(
        &self,
        cx: &Cycle,
        mut d: GroupDecision<'_>,
        users: &UserTargets,
        group_targets: &HashMap<String, String>,
    ) -> Result<Processed, StoreError> {
        let state_id = d.state_id();
        let op = std::mem::replace(&mut d.op, GroupOp::Quiet);
        let mut rec = Rec::user(
            &state_id,
            &d.display,
            &d.scope,
            d.steps.clone(),
            self.clock.now(),
        );
        rec.object_type = ObjectType::Group;
        rec.target_id = d.state.map(|s| s.target_id.clone());
        let out = match op {
            GroupOp::Quiet => Ok(Processed::Unchanged),
            GroupOp::Escrowed => Ok(Processed::Escrowed),
            GroupOp::Fail { code, message } => self.fail(cx, rec, (code, message)),
            GroupOp::Keep => {
                let action = Action::Skip {
                    reason: "left scope; the job keeps groups that leave scope".into(),
                };
                let change = match (cx.mode, d.state) {
                    (Mode::Apply, Some(st)) => {
                        let mut next = st.clone();
                        next.outcome = Outcome::OutOfScope;
                        StateChange::Put(next)
                    }
                    _ => StateChange::None,
                };
                self.finish(cx, rec, action, change, None)
            }
            GroupOp::Held { target_id } => {
                let action = Action::StagedDelete {
                    target_id,
                    held: "delete".into(),
                };
                self.finish(cx, rec, action, StateChange::None, None)
            }
            GroupOp::Delete { target_id } => self.delete_group(cx, rec, &d.id, target_id).await,
            op @ (GroupOp::Unchanged { .. }
            | GroupOp::Update { .. }
            | GroupOp::Provision { .. }) => {
                self.sync_group(cx, rec, &d, op, users, group_targets).await
            }
        }?;
        if cx.mode == Mode::Apply {
            self.settle_escrow(cx, &state_id, None, &out)?;
        }
        Ok(out)
    }

    async fn sync_group(
        &self,
        cx: &Cycle,
        mut rec: Rec,
        d: &GroupDecision<'_>,
        op: GroupOp,
        users: &UserTargets,
        group_targets: &HashMap<String, String>,
    ) -> Result<Processed, StoreError> {
        let object = match self.group_object(cx, &mut rec, op).await {
            Ok(o) => o,
            Err(e) => return self.fail(cx, rec, e),
        };
        if let Some(t) = &object.target_id {
            rec.target_id = Some(t.clone());
        }
        if matches!(object.action, Action::Skip { .. }) {
            return self.finish(cx, rec, object.action, object.state, None);
        }
        let include_nested = self.job.groups.as_ref().is_some_and(|s| s.include_nested);
        let user_target = |u: &str| users.get(u).cloned().flatten();
        let group_target = |g: &str| group_targets.get(g).cloned();
        let mirror = d.members.cloned().unwrap_or_default();
        let result = match &object.target_id {
            Some(target_id) => {
                self.sync_members(
                    cx,
                    &mut rec,
                    &d.id,
                    target_id,
                    &mirror,
                    include_nested,
                    &user_target,
                    &group_target,
                )
                .await
            }
            // Preview of a create: the group would start empty.
            None => {
                let p = plan_members(
                    &mirror,
                    include_nested,
                    &user_target,
                    &group_target,
                    &BTreeSet::new(),
                );
                rec.members_added = p.add;
                rec.members_left_out = p.left_out;
                Ok(())
            }
        };
        note_left_out(&mut rec);
        let quiet = matches!(object.action, Action::NoChange)
            && rec.members_added.is_empty()
            && rec.members_removed.is_empty();
        if let Err(e) = result {
            // Whatever the object step confirmed is kept; the membership is escrowed.
            return self.record(
                cx,
                rec,
                Action::NoChange,
                LogStatus::Failure,
                Some(e),
                object.state,
                None,
            );
        }
        if quiet && matches!(object.state, StateChange::None) {
            return Ok(Processed::Unchanged);
        }
        let action = if matches!(object.action, Action::NoChange) {
            Action::Update {
                target_id: rec.target_id.clone().unwrap_or_default(),
                changes: Vec::new(),
            }
        } else {
            object.action
        };
        self.finish(cx, rec, action, object.state, object.old.as_ref())
    }

    /// Bring the group object itself to its decision: keep, update, or match/create.
    async fn group_object(
        &self,
        cx: &Cycle,
        rec: &mut Rec,
        op: GroupOp,
    ) -> Result<ObjectStep, (ErrorCode, String)> {
        let state_id = rec.source_id.clone();
        match op {
            GroupOp::Unchanged { target_id } => Ok(ObjectStep {
                target_id: Some(target_id),
                action: Action::NoChange,
                old: None,
                state: StateChange::None,
            }),
            GroupOp::Update {
                target_id,
                confirmed,
                changes,
                hash,
            } => {
                if cx.mode == Mode::Apply {
                    retrying(&self.job.retry, &state_id, || {
                        self.target.update_group(&target_id, &changes)
                    })
                    .await
                    .map_err(te)?;
                }
                let mut next = confirmed.clone();
                for c in &changes {
                    next.insert(c.path.clone(), c.value.clone());
                }
                Ok(ObjectStep {
                    state: self.group_state(
                        cx,
                        &state_id,
                        &target_id,
                        hash,
                        next,
                        Outcome::Updated,
                    ),
                    action: Action::Update {
                        target_id: target_id.clone(),
                        changes,
                    },
                    target_id: Some(target_id),
                    old: Some(confirmed),
                })
            }
            GroupOp::Provision {
                create,
                desired,
                hash,
                keys,
            } => {
                self.match_or_create_group(cx, rec, create, desired, hash, keys)
                    .await
            }
            _ => Err((
                ErrorCode::ConfigInvalid,
                "not a group object operation".into(),
            )),
        }
    }

    fn group_state(
        &self,
        cx: &Cycle,
        state_id: &str,
        target_id: &str,
        hash: String,
        confirmed: Attrs,
        outcome: Outcome,
    ) -> StateChange {
        if cx.mode == Mode::Preview {
            return StateChange::None;
        }
        StateChange::Put(ObjectState {
            source_id: state_id.to_string(),
            target_id: target_id.to_string(),
            hash,
            confirmed,
            active: true,
            outcome,
            updated_at: self.clock.now(),
        })
    }

    /// Match (never an object another source group holds), else create; a create that failed
    /// in a way the target may have acted on is retried after matching again.
    async fn match_or_create_group(
        &self,
        cx: &Cycle,
        rec: &mut Rec,
        create: Attrs,
        desired: Attrs,
        hash: String,
        keys: Vec<(String, String)>,
    ) -> Result<ObjectStep, (ErrorCode, String)> {
        let state_id = rec.source_id.clone();
        let mut attempt = Attempt::new(&self.job.retry, &state_id);
        loop {
            let (found, claimed) = self.find_group(cx, rec, &keys).await?;
            if let Some(tg) = found {
                return self.link_group(cx, rec, tg, desired, hash).await;
            }
            if !self.job.actions.create {
                return Ok(ObjectStep {
                    target_id: None,
                    action: Action::Skip {
                        reason: "no match and the Create target action is off".into(),
                    },
                    old: None,
                    state: StateChange::None,
                });
            }
            if cx.mode == Mode::Preview {
                return Ok(ObjectStep {
                    target_id: None,
                    action: Action::Create { attrs: create },
                    old: None,
                    state: StateChange::None,
                });
            }
            match self.target.create_group(&create).await {
                Ok(created) => {
                    cx.claims.claim_group(&created.id, &state_id, &rec.display);
                    // Committed with the group's log entry; a crash before that is healed by
                    // the next cycle's matching query.
                    return Ok(ObjectStep {
                        state: self.group_state(
                            cx,
                            &state_id,
                            &created.id,
                            hash,
                            create.clone(),
                            Outcome::Created,
                        ),
                        target_id: Some(created.id),
                        action: Action::Create { attrs: create },
                        old: None,
                    });
                }
                Err(e) if e.is_conflict() => {
                    rec.step(
                        "Create",
                        "export",
                        LogStatus::Warning,
                        "409 Conflict: matching again",
                    );
                    let (found, claimed_now) = self.find_group(cx, rec, &keys).await?;
                    if let Some(tg) = found {
                        return self.link_group(cx, rec, tg, desired, hash).await;
                    }
                    let holder = claimed_now.or(claimed);
                    return Err(match holder {
                        Some((tid, sid, display)) => (
                            ErrorCode::EntryConflict,
                            format!(
                                "the target refuses a second group with this name (409): its group {tid} \
                                 is linked to source group {sid} ({display}); source group {} ({}) \
                                 cannot be provisioned until one of them is renamed",
                                state_id.strip_prefix(GROUP_PREFIX).unwrap_or(&state_id),
                                rec.display
                            ),
                        ),
                        None => (ErrorCode::EntryConflict, e.detail),
                    });
                }
                Err(e) if e.is_transient() && attempt.again() => {
                    rec.step(
                        "Create",
                        "export",
                        LogStatus::Warning,
                        format!("{}: {}; matching again before retrying", e.code, e.detail),
                    );
                    attempt.pause().await;
                }
                Err(e) => return Err(te(e)),
            }
        }
    }

    /// Query each matching attribute in precedence order. Groups another source group of the
    /// job is linked to are passed over (returned as the holder, for the error a refusal
    /// needs): two source groups with one name become two target groups.
    #[allow(clippy::type_complexity)]
    async fn find_group(
        &self,
        cx: &Cycle,
        rec: &mut Rec,
        keys: &[(String, String)],
    ) -> Result<(Option<TargetGroup>, Option<(String, String, String)>), (ErrorCode, String)> {
        let mut holder = None;
        for (path, value) in keys {
            let query = format!("{path} eq \"{value}\"");
            let hits = self.target.find_groups(path, value).await.map_err(te)?;
            let mut free = Vec::new();
            for h in hits {
                match cx.claims.group_claim(&h.id, &rec.source_id) {
                    Claim::Free => free.push(h),
                    Claim::Other { source_id, display } => {
                        rec.step(
                            "Match",
                            "matching",
                            LogStatus::Success,
                            format!("{query}: {} is linked to source group {source_id} ({display}); not this one", h.id),
                        );
                        holder = Some((h.id, source_id, display));
                    }
                }
            }
            let n = free.len();
            let mut free = free.into_iter();
            match (free.next(), n) {
                (None, _) => rec.step(
                    "Match",
                    "matching",
                    LogStatus::Success,
                    format!("{query}: no match"),
                ),
                (Some(hit), 1) => {
                    rec.step(
                        "Match",
                        "matching",
                        LogStatus::Success,
                        format!("{query}: matched {}", hit.id),
                    );
                    rec.matched_by = Some(query);
                    return Ok((Some(hit), holder));
                }
                (Some(_), n) => {
                    let msg = format!("{query} matched {n} target groups");
                    rec.step("Match", "matching", LogStatus::Failure, msg.clone());
                    return Err((ErrorCode::DuplicateTargetEntries, msg));
                }
            }
        }
        Ok((None, holder))
    }

    async fn link_group(
        &self,
        cx: &Cycle,
        rec: &mut Rec,
        tg: TargetGroup,
        desired: Attrs,
        hash: String,
    ) -> Result<ObjectStep, (ErrorCode, String)> {
        let state_id = rec.source_id.clone();
        if cx.mode == Mode::Apply {
            cx.claims.claim_group(&tg.id, &state_id, &rec.display);
        }
        let changes = crate::diff::diff(&tg.attrs, &desired);
        let mut confirmed = tg.attrs.clone();
        if changes.is_empty() || !self.job.actions.update {
            return Ok(ObjectStep {
                state: self.group_state(cx, &state_id, &tg.id, hash, confirmed, Outcome::Matched),
                action: Action::Link {
                    target_id: tg.id.clone(),
                },
                target_id: Some(tg.id),
                old: None,
            });
        }
        if cx.mode == Mode::Apply {
            retrying(&self.job.retry, &state_id, || {
                self.target.update_group(&tg.id, &changes)
            })
            .await
            .map_err(te)?;
        }
        for c in &changes {
            confirmed.insert(c.path.clone(), c.value.clone());
        }
        Ok(ObjectStep {
            state: self.group_state(cx, &state_id, &tg.id, hash, confirmed, Outcome::Matched),
            action: Action::Update {
                target_id: tg.id.clone(),
                changes,
            },
            target_id: Some(tg.id),
            old: Some(tg.attrs),
        })
    }

    /// Bring the target's member list to the plan by adding and removing the difference in
    /// batches; the confirmed set is written after every batch the target accepted.
    #[allow(clippy::too_many_arguments)]
    async fn sync_members(
        &self,
        cx: &Cycle,
        rec: &mut Rec,
        group_id: &str,
        target_id: &str,
        mirror: &crate::read::MirroredGroup,
        include_nested: bool,
        user_target: &dyn Fn(&str) -> Option<String>,
        group_target: &dyn Fn(&str) -> Option<String>,
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
        let confirmed = if cx.reconcile {
            let actual: BTreeSet<String> = self
                .target
                .group_members(target_id)
                .await
                .map_err(te)?
                .into_iter()
                .collect();
            let extra = actual.difference(&recorded).count();
            let missing = recorded.difference(&actual).count();
            rec.step(
                "Reconcile",
                "matching",
                LogStatus::Success,
                format!("read {} member(s) from the target: {extra} added and {missing} removed in the app", actual.len()),
            );
            if cx.mode == Mode::Apply {
                let extra: Vec<String> = actual.difference(&recorded).cloned().collect();
                let gone: Vec<String> = recorded.difference(&actual).cloned().collect();
                self.store.mark_records(job, &kind, &extra).map_err(se)?;
                self.store.remove_records(job, &kind, &gone).map_err(se)?;
            }
            actual
        } else {
            recorded
        };
        let MemberPlan {
            add,
            remove,
            left_out,
        } = plan_members(
            mirror,
            include_nested,
            user_target,
            group_target,
            &confirmed,
        );
        rec.members_left_out = left_out;
        if cx.mode == Mode::Preview {
            rec.members_added = add;
            rec.members_removed = remove;
            return Ok(());
        }
        let max = self
            .job
            .groups
            .as_ref()
            .map(|s| s.batch_size)
            .unwrap_or(crate::batch::START)
            .max(1);
        let added = self
            .member_batches(cx, rec, target_id, &add, true, max, &kind)
            .await?;
        rec.members_added.extend(added);
        let removed = self
            .member_batches(cx, rec, target_id, &remove, false, max, &kind)
            .await?;
        rec.members_removed.extend(removed);
        Ok(())
    }

    /// Send `ids` in PATCHes of the cycle's learned batch size (`batch.rs`: grows while the
    /// target answers as fast as before, never above the job's maximum). A target that
    /// refuses a PATCH as too large (413, or a 400 saying so) gets the same members in halves,
    /// and no later batch of the cycle is that large, so one refusal, not one per group. Each
    /// accepted batch is recorded at once, so a failure later loses nothing the target
    /// confirmed. Returns the members sent.
    #[allow(clippy::too_many_arguments)]
    async fn member_batches(
        &self,
        cx: &Cycle,
        rec: &Rec,
        target_id: &str,
        ids: &[String],
        add: bool,
        max: usize,
        kind: &str,
    ) -> Result<Vec<String>, (ErrorCode, String)> {
        let job = &self.job.name;
        let mut done = Vec::new();
        let mut rest = ids;
        while !rest.is_empty() {
            let n = cx.member_batch.size(max).min(rest.len());
            let chunk = &rest[..n];
            let sent_at = self.clock.now();
            match self.member_patch(rec, target_id, chunk, add).await {
                Ok(()) => {
                    let took = (self.clock.now() - sent_at).to_std().unwrap_or_default();
                    cx.member_batch.accepted(n, took, max);
                    if add {
                        self.store.mark_records(job, kind, chunk).map_err(se)?;
                    } else {
                        self.store.remove_records(job, kind, chunk).map_err(se)?;
                    }
                    done.extend(chunk.iter().cloned());
                    rest = &rest[n..];
                }
                Err(e) if n > 1 && too_large(&e) => {
                    cx.member_batch.refused(n);
                    tracing::info!(
                        job = %self.job.name, group = %rec.display, refused = n,
                        now = cx.member_batch.size(max),
                        "the target refused a membership PATCH as too large; sending smaller batches"
                    );
                }
                Err(e) => return Err(te(e)),
            }
        }
        Ok(done)
    }

    /// One membership PATCH, retried in the cycle on transient failures (adding or removing
    /// the same members again is harmless).
    async fn member_patch(
        &self,
        rec: &Rec,
        target_id: &str,
        ids: &[String],
        add: bool,
    ) -> Result<(), TargetError> {
        retrying(&self.job.retry, &rec.source_id, || async move {
            if add {
                self.target.add_members(target_id, ids).await
            } else {
                self.target.remove_members(target_id, ids).await
            }
        })
        .await
    }

    async fn delete_group(
        &self,
        cx: &Cycle,
        rec: Rec,
        group_id: &str,
        target_id: String,
    ) -> Result<Processed, StoreError> {
        let action = Action::Delete {
            target_id: target_id.clone(),
        };
        if cx.mode == Mode::Preview {
            return self.finish(cx, rec, action, StateChange::None, None);
        }
        let deleted = retrying(&self.job.retry, &rec.source_id, || async {
            gone_ok(self.target.delete_group(&target_id).await)
        })
        .await;
        if let Err(e) = deleted {
            return self.fail(cx, rec, te(e));
        }
        let kind = members_kind(group_id);
        for (id, _) in self.store.list_records(&self.job.name, &kind)? {
            self.store.remove_record(&self.job.name, &kind, &id)?;
        }
        let remove = StateChange::Remove {
            source_id: rec.source_id.clone(),
        };
        self.finish(cx, rec, action, remove, None)
    }
}

fn note_left_out(rec: &mut Rec) {
    if rec.members_left_out.is_empty() {
        return;
    }
    let sample: Vec<&str> = rec
        .members_left_out
        .iter()
        .take(5)
        .map(String::as_str)
        .collect();
    let text = format!(
        "{} member(s) left out: their user is not provisioned or not active (e.g. {})",
        rec.members_left_out.len(),
        sample.join(", ")
    );
    rec.step("Members", "referenceResolution", LogStatus::Warning, text);
}

/// Whether the target refused a PATCH for its size: 413, or a 400 that says so (servers word
/// it differently: "too many operations", maxOperations, payload too large).
fn too_large(e: &TargetError) -> bool {
    match e.status {
        Some(413) => true,
        Some(400) => {
            let d = e.detail.to_ascii_lowercase();
            e.scim_type.as_deref() == Some("tooMany")
                || ["too many", "maxoperations", "too large", "payload"]
                    .iter()
                    .any(|w| d.contains(w))
        }
        _ => false,
    }
}
