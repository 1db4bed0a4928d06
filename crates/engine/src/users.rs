//! Act on users: carry out one [`UserDecision`] through the target (read-only in preview),
//! with in-cycle retries, and commit its state with its log entry.

use crate::act::{Attempt, Claim, Cycle, Processed, Rec, gone_ok, retrying, te};
use crate::cycle::Engine;
use crate::plan::{Deprovision, UserDecision, UserOp};
use crate::report::{Action, Mode};
use scimsync_core::{
    Attrs, Change, ChangeOp, ErrorCode, LogStatus, ObjectState, Outcome, Source, StateChange,
    StateStore, StoreError, Target, TargetUser,
};
use serde_json::Value;

impl<S: Source, T: Target, St: StateStore> Engine<'_, S, T, St> {
    /// Carry out one user's decision and settle its escrow.
    pub(crate) async fn act_user(
        &self,
        cx: &Cycle,
        d: UserDecision<'_>,
    ) -> Result<Processed, StoreError> {
        let mut rec = Rec::user(
            &d.source_id,
            &d.display,
            &d.scope,
            d.steps.clone(),
            self.clock.now(),
        );
        let target_id = d.state.map(|s| s.target_id.clone());
        let out = match d.op {
            UserOp::Unchanged => Ok(Processed::Unchanged),
            UserOp::SilentSkip => Ok(Processed::SilentSkip),
            UserOp::Escrowed => Ok(Processed::Escrowed),
            UserOp::Skip {
                reason,
                forget,
                target_id,
            } => {
                let change = match (forget, d.state) {
                    (true, Some(st)) => StateChange::Remove {
                        source_id: st.source_id.clone(),
                    },
                    _ => StateChange::None,
                };
                rec.target_id = target_id;
                self.finish(cx, rec, Action::Skip { reason }, change, None)
            }
            UserOp::Fail {
                code,
                message,
                target_id,
            } => {
                rec.target_id = target_id;
                self.fail(cx, rec, (code, message))
            }
            UserOp::Held { how, target_id } => {
                rec.target_id = Some(target_id.clone());
                let action = Action::StagedDelete {
                    target_id,
                    held: how.as_str().into(),
                };
                self.record(
                    cx,
                    rec,
                    action,
                    LogStatus::Skipped,
                    None,
                    StateChange::None,
                    None,
                )
            }
            UserOp::Update {
                target_id,
                confirmed,
                changes,
                hash,
                outcome,
            } => {
                rec.target_id = Some(target_id.clone());
                self.send_update(cx, rec, target_id, confirmed, changes, hash, outcome)
                    .await
            }
            UserOp::Deprovision {
                how: Deprovision::Disable,
                target_id,
                confirmed,
                outcome,
            } => {
                let st = d.state.cloned();
                rec.target_id = Some(target_id.clone());
                self.disable(cx, rec, st, target_id, confirmed, outcome)
                    .await
            }
            UserOp::Deprovision {
                how: Deprovision::Delete,
                target_id,
                ..
            } => {
                rec.target_id = Some(target_id.clone());
                self.delete(cx, rec, target_id).await
            }
            UserOp::Provision {
                create,
                desired,
                hash,
                keys,
                unique,
            } => {
                let _ = target_id;
                let desired = desired.unwrap_or_else(|| create.clone());
                self.provision(cx, rec, create, desired, hash, keys, unique)
                    .await
            }
        }?;
        if cx.mode == Mode::Apply {
            self.settle_escrow(cx, &d.source_id, d.gone, &out)?;
        }
        Ok(out)
    }

    /// Match by the keys (never linking an object another source object holds), link what
    /// is found, else create; a failed create is retried after matching again, so a create
    /// the target carried out but did not confirm is linked, never sent twice.
    #[allow(clippy::too_many_arguments)]
    async fn provision(
        &self,
        cx: &Cycle,
        mut rec: Rec,
        create: Attrs,
        desired: Attrs,
        hash: String,
        keys: Vec<(String, String)>,
        unique: Vec<(String, Vec<Value>)>,
    ) -> Result<Processed, StoreError> {
        let mut attempt = Attempt::new(&self.job.retry, &rec.source_id);
        let mut create = create;
        let mut unique_done = false;
        loop {
            let found = match self.find_user(cx, &mut rec, &keys).await {
                Ok(f) => f,
                Err(e) => return self.fail(cx, rec, e),
            };
            if let Some(found) = found {
                return self.link(cx, rec, found, desired, hash).await;
            }
            if !self.job.actions.create {
                let action = Action::Skip {
                    reason: "no match and the Create target action is off".into(),
                };
                return self.finish(cx, rec, action, StateChange::None, None);
            }
            if !unique_done {
                if let Err(e) = self.resolve_unique(&mut rec, &mut create, &unique).await {
                    return self.fail(cx, rec, e);
                }
                unique_done = true;
            }
            if cx.mode == Mode::Preview {
                let action = Action::Create { attrs: create };
                return self.finish(cx, rec, action, StateChange::None, None);
            }
            match self.target.create_user(&create).await {
                Ok(created) => {
                    cx.claims.claim_user(&created.id, &rec.source_id);
                    rec.target_id = Some(created.id.clone());
                    let st = ObjectState {
                        source_id: rec.source_id.clone(),
                        target_id: created.id,
                        hash,
                        confirmed: create.clone(),
                        active: true,
                        outcome: Outcome::Created,
                        updated_at: self.clock.now(),
                    };
                    let action = Action::Create { attrs: create };
                    return self.finish(cx, rec, action, StateChange::Put(st), None);
                }
                Err(e) if e.is_conflict() => {
                    // The object exists after all (created meanwhile, or state was lost):
                    // match again; what is found is linked, unless another object holds it.
                    rec.step(
                        "Create",
                        "export",
                        LogStatus::Warning,
                        "409 Conflict: matching again",
                    );
                    return match self.find_user(cx, &mut rec, &keys).await {
                        Ok(Some(found)) => self.link(cx, rec, found, desired, hash).await,
                        Ok(None) => self.fail(cx, rec, (ErrorCode::EntryConflict, e.detail)),
                        Err(e) => self.fail(cx, rec, e),
                    };
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
                Err(e) => return self.fail(cx, rec, te(e)),
            }
        }
    }

    /// `SelectUniqueValue`: try each candidate against the target (a filter query) and keep
    /// the first no object holds yet.
    async fn resolve_unique(
        &self,
        rec: &mut Rec,
        attrs: &mut Attrs,
        unique: &[(String, Vec<Value>)],
    ) -> Result<(), (ErrorCode, String)> {
        for (path, candidates) in unique {
            let mut chosen = None;
            for c in candidates {
                let text = match c {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let hits = self.target.find_users(path, &text).await.map_err(te)?;
                if hits.is_empty() {
                    chosen = Some(c.clone());
                    break;
                }
            }
            let Some(v) = chosen else {
                return Err((
                    ErrorCode::EntryConflict,
                    format!("SelectUniqueValue for {path}: every candidate is taken in the target"),
                ));
            };
            rec.step(
                "Unique value",
                "processing",
                LogStatus::Success,
                format!("{path}: {v} is free in the target"),
            );
            attrs.insert(path.clone(), v);
        }
        Ok(())
    }

    /// Query each matching attribute in precedence order until one finds the object. An
    /// object another source object of the job is linked to is never returned: that is a
    /// conflict naming both.
    async fn find_user(
        &self,
        cx: &Cycle,
        rec: &mut Rec,
        keys: &[(String, String)],
    ) -> Result<Option<TargetUser>, (ErrorCode, String)> {
        for (path, value) in keys {
            let query = format!("{path} eq \"{value}\"");
            let hits = self.target.find_users(path, value).await.map_err(te)?;
            let n = hits.len();
            let mut hits = hits.into_iter();
            match (hits.next(), n) {
                (None, _) => rec.step(
                    "Match",
                    "matching",
                    LogStatus::Success,
                    format!("{query}: no match"),
                ),
                (Some(hit), 1) => {
                    match cx.claims.user_claim(
                        self.store,
                        &self.job.name,
                        &hit.id,
                        &rec.source_id,
                    )? {
                        Claim::Free => {}
                        Claim::Other { source_id, display } => {
                            let msg = format!(
                                "{query} matched target object {}, which is linked to source object \
                                 {source_id} ({display}); {} ({}) is not linked to it",
                                hit.id, rec.source_id, rec.display
                            );
                            rec.step("Match", "matching", LogStatus::Failure, msg.clone());
                            return Err((ErrorCode::EntryConflict, msg));
                        }
                    }
                    rec.step(
                        "Match",
                        "matching",
                        LogStatus::Success,
                        format!("{query}: matched {}", hit.id),
                    );
                    rec.matched_by = Some(query);
                    return Ok(Some(hit));
                }
                (Some(_), n) => {
                    let msg = format!("{query} matched {n} target objects");
                    rec.step("Match", "matching", LogStatus::Failure, msg.clone());
                    return Err((ErrorCode::DuplicateTargetEntries, msg));
                }
            }
        }
        Ok(None)
    }

    async fn link(
        &self,
        cx: &Cycle,
        mut rec: Rec,
        found: TargetUser,
        desired: Attrs,
        hash: String,
    ) -> Result<Processed, StoreError> {
        rec.target_id = Some(found.id.clone());
        let changes = self.job.user_diff(&found.attrs, &desired);
        if cx.mode == Mode::Apply {
            cx.claims.claim_user(&found.id, &rec.source_id);
        }
        if changes.is_empty() || !self.job.actions.update {
            let st = ObjectState {
                source_id: rec.source_id.clone(),
                target_id: found.id.clone(),
                hash,
                active: found.attrs.get("active") != Some(&Value::Bool(false)),
                confirmed: found.attrs,
                outcome: Outcome::Matched,
                updated_at: self.clock.now(),
            };
            let change = if cx.mode == Mode::Apply {
                StateChange::Put(st)
            } else {
                StateChange::None
            };
            let action = Action::Link {
                target_id: found.id,
            };
            return self.finish(cx, rec, action, change, None);
        }
        self.send_update(
            cx,
            rec,
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
        cx: &Cycle,
        rec: Rec,
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
        if cx.mode == Mode::Preview {
            return self.finish(cx, rec, action, StateChange::None, Some(&confirmed));
        }
        // A PATCH sets values: sending it again after a reset is harmless.
        let sent = retrying(&self.job.retry, &rec.source_id, || {
            self.target.update_user(&target_id, &changes)
        })
        .await;
        if let Err(e) = sent {
            return self.fail(cx, rec, te(e));
        }
        let mut now_confirmed = confirmed.clone();
        for c in &changes {
            match c.op {
                ChangeOp::Remove => now_confirmed.remove(&c.path),
                _ => now_confirmed.insert(c.path.clone(), c.value.clone()),
            };
        }
        let st = ObjectState {
            source_id: rec.source_id.clone(),
            target_id,
            hash,
            active: now_confirmed.get("active") != Some(&Value::Bool(false)),
            confirmed: now_confirmed,
            outcome,
            updated_at: self.clock.now(),
        };
        self.finish(cx, rec, action, StateChange::Put(st), Some(&confirmed))
    }

    async fn disable(
        &self,
        cx: &Cycle,
        rec: Rec,
        state: Option<ObjectState>,
        target_id: String,
        confirmed: Attrs,
        outcome: Outcome,
    ) -> Result<Processed, StoreError> {
        let action = Action::Disable {
            target_id: target_id.clone(),
        };
        if cx.mode == Mode::Preview {
            return self.finish(cx, rec, action, StateChange::None, Some(&confirmed));
        }
        let changes = action.changes();
        let sent = retrying(&self.job.retry, &rec.source_id, || {
            self.target.update_user(&target_id, &changes)
        })
        .await;
        if let Err(e) = sent {
            return self.fail(cx, rec, te(e));
        }
        let Some(mut next) = state else {
            return self.finish(cx, rec, action, StateChange::None, Some(&confirmed));
        };
        next.active = false;
        next.confirmed.insert("active".into(), Value::Bool(false));
        next.outcome = outcome;
        next.updated_at = self.clock.now();
        self.finish(cx, rec, action, StateChange::Put(next), Some(&confirmed))
    }

    async fn delete(
        &self,
        cx: &Cycle,
        rec: Rec,
        target_id: String,
    ) -> Result<Processed, StoreError> {
        let remove = StateChange::Remove {
            source_id: rec.source_id.clone(),
        };
        let action = Action::Delete {
            target_id: target_id.clone(),
        };
        if cx.mode == Mode::Preview {
            return self.finish(cx, rec, action, StateChange::None, None);
        }
        // Already gone from the target (perhaps by our own unanswered attempt): the delete's
        // goal holds.
        let deleted = retrying(&self.job.retry, &rec.source_id, || async {
            gone_ok(self.target.delete_user(&target_id).await)
        })
        .await;
        match deleted {
            Ok(()) => self.finish(cx, rec, action, remove, None),
            Err(e) => self.fail(cx, rec, te(e)),
        }
    }
}
