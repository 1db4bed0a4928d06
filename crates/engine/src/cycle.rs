//! The cycle: read the source once, decide every object that needs a decision, act, and
//! commit state with each object's log entry after the target confirmed. Users first, then
//! groups (their members are target ids of users).

use crate::escrow::{ESCROW, Escrow};
use crate::job::Reconcile;
use crate::read::{
    ASSIGNED, GroupView, META_FINGERPRINT, META_GROUPS_WATERMARK, META_USERS_WATERMARK, UserWork,
    assigned_groups, assignment_changes, effective_assignments, roles_key,
};
use crate::report::{CycleKind, CycleReport, Mode, ObjectReport};
use futures::stream::{self, StreamExt};
use scimsync_core::{
    AppRoleAssignment, Clock, ErrorCode, GroupQuery, LogStatus, LogStep, ObjectState, Source,
    SourceError, SourceUser, StateStore, StoreError, Target, UserQuery, UserScope,
};
use scimsync_mapping::{ScopeDecision, evaluate_scope, source_attributes};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

/// Meta key: how many apply cycles completed. Zero (or absent) means the next one is initial.
pub const META_CYCLES: &str = "cycles_completed";
/// Meta key: the JSON summary of the last completed cycle.
pub const META_LAST_CYCLE: &str = "last_cycle";
/// Meta key: set by `approve-deletions`; the next cycle sends the held disables and deletes.
pub const META_DELETIONS_APPROVED: &str = "deletions_approved";
/// Meta key: when the last reconcile cycle read the target's group members.
pub const META_LAST_RECONCILE: &str = "last_reconcile";
/// State ids of groups are prefixed, so users and groups share one object tree.
pub const GROUP_PREFIX: &str = "group:";

#[derive(Debug, thiserror::Error)]
pub enum CycleError {
    #[error("reading the source failed: {0}")]
    Source(#[from] SourceError),
    #[error("the state store failed: {0}")]
    Store(#[from] StoreError),
    /// The source answered with something that would deprovision everyone; we refuse.
    #[error("{0}")]
    SourceSuspicious(String),
    /// Provision on demand: the object is not in the source (or not eligible).
    #[error("{0}")]
    NotFound(String),
}

impl CycleError {
    pub fn code(&self) -> ErrorCode {
        match self {
            CycleError::Source(e) => e.code,
            CycleError::Store(e) => e.code,
            CycleError::SourceSuspicious(_) => ErrorCode::GraphRequestFailed,
            CycleError::NotFound(_) => ErrorCode::ImportSkipped,
        }
    }
}

/// Runs cycles of one job against a source, a target and a store.
pub struct Engine<'a, S, T, St> {
    pub(crate) job: &'a crate::JobSpec,
    pub(crate) source: &'a S,
    pub(crate) target: &'a T,
    pub(crate) store: &'a St,
    pub(crate) clock: &'a dyn Clock,
    pub(crate) progress: Option<&'a dyn ProgressSink>,
}

/// Where a cycle stands, for progress bars and the admin API (Entra counts pages; we count
/// objects, which is finer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// `"users"` or `"groups"`.
    pub phase: &'static str,
    pub done: usize,
    pub total: usize,
}

/// Receives progress while a cycle runs. Called from the cycle's tasks: keep it cheap.
pub trait ProgressSink: Send + Sync {
    fn progress(&self, p: Progress);
}

/// What one object's processing produced.
#[allow(clippy::large_enum_variant)] // one per object, moved once
pub(crate) enum Processed {
    Reported(ObjectReport),
    Unchanged,
    /// Out of scope and never provisioned: counted, logged only in the initial cycle.
    SilentSkip,
    /// Waiting in escrow for its next retry.
    Escrowed,
}

/// One user to decide.
pub(crate) enum UserItem<'a> {
    Present(&'a SourceUser, Option<&'a ObjectState>),
    /// Known to the job, no longer among the source's users; `true` when soft-deleted.
    Gone(&'a ObjectState, bool),
}

impl UserItem<'_> {
    pub(crate) fn source_id(&self) -> &str {
        match self {
            UserItem::Present(u, _) => &u.id,
            UserItem::Gone(s, _) => &s.source_id,
        }
    }
}

pub(crate) struct Ctx {
    pub(crate) cycle_id: String,
    pub(crate) mode: Mode,
    pub(crate) kind: CycleKind,
    pub(crate) now: chrono::DateTime<chrono::Utc>,
    /// Effective assignments per user under "Sync only assigned"; `None` under "Sync all".
    pub(crate) assigned: Option<BTreeMap<String, Vec<AppRoleAssignment>>>,
    /// Objects whose disable or delete is held back by the deletion threshold.
    pub(crate) held: BTreeSet<String>,
    pub(crate) escrows: BTreeMap<String, Escrow>,
    /// Read each group's members back from the target this cycle and repair drift.
    pub(crate) reconcile: bool,
}

/// Everything known about one object while it is processed, for its report and log entry.
pub(crate) struct Trail {
    pub(crate) started: Instant,
    pub(crate) source_id: String,
    pub(crate) display: String,
    pub(crate) scope: String,
    pub(crate) steps: Vec<LogStep>,
    pub(crate) matched_by: Option<String>,
}

impl Trail {
    pub(crate) fn new(source_id: &str, display: &str) -> Self {
        Trail {
            started: Instant::now(),
            source_id: source_id.to_string(),
            display: display.to_string(),
            scope: String::new(),
            steps: Vec::new(),
            matched_by: None,
        }
    }

    pub(crate) fn step(
        &mut self,
        name: &str,
        kind: &str,
        status: LogStatus,
        description: impl Into<String>,
    ) {
        self.steps.push(LogStep {
            name: name.into(),
            provisioning_step_type: kind.into(),
            status,
            description: description.into(),
        });
    }
}

impl<'a, S: Source, T: Target, St: StateStore> Engine<'a, S, T, St> {
    pub fn new(
        job: &'a crate::JobSpec,
        source: &'a S,
        target: &'a T,
        store: &'a St,
        clock: &'a dyn Clock,
    ) -> Self {
        Engine {
            job,
            source,
            target,
            store,
            clock,
            progress: None,
        }
    }

    /// Report progress to `sink` while cycles run.
    pub fn with_progress(mut self, sink: &'a dyn ProgressSink) -> Self {
        self.progress = Some(sink);
        self
    }

    fn report_progress(&self, phase: &'static str, done: usize, total: usize) {
        if let Some(p) = self.progress {
            p.progress(Progress { phase, done, total });
        }
    }

    /// Run one cycle. In [`Mode::Preview`] nothing is written to the target or the store.
    pub async fn run(&self, mode: Mode) -> Result<CycleReport, CycleError> {
        let job = &self.job.name;
        let started = self.clock.now();
        let cycle_id = uuid::Uuid::now_v7().to_string();
        let completed: u64 = self
            .store
            .get_meta(job, META_CYCLES)?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let kind = if completed == 0 {
            CycleKind::Initial
        } else {
            CycleKind::Incremental
        };
        let mut notes = Vec::new();
        let fingerprint_changed = completed > 0
            && !self.job.fingerprint.is_empty()
            && self.store.get_meta(job, META_FINGERPRINT)?.as_deref()
                != Some(self.job.fingerprint.as_str());
        if fingerprint_changed {
            notes
                .push("the mappings or scope changed: every object is evaluated again".to_string());
        }
        let use_watermarks = kind == CycleKind::Incremental && !fingerprint_changed;

        let group_states: Vec<ObjectState> = if self.job.groups.is_some() {
            self.store.list_prefix(job, GROUP_PREFIX)?
        } else {
            Vec::new()
        };

        // Groups: needed to expand assigned groups, and to provision groups.
        let needs_groups =
            self.job.groups.is_some() || matches!(self.job.scope, UserScope::Assigned { .. });
        let groups = if needs_groups {
            let watermark = if use_watermarks {
                self.store.get_meta(job, META_GROUPS_WATERMARK)?
            } else {
                None
            };
            let query = GroupQuery {
                attributes: self
                    .job
                    .groups
                    .as_ref()
                    .map(|g| source_attributes(&g.mappings))
                    .unwrap_or_default(),
            };
            let read = self
                .source
                .read_groups(&query, watermark.as_deref())
                .await?;
            let view = GroupView::apply(GroupView::load(self.store, job)?, read);
            if let Some(n) = &view.note {
                notes.push(format!("groups read in full: {n}"));
            }
            view
        } else {
            GroupView::default()
        };

        // Assignments: no delta query, so read them each cycle and compare with the last.
        let (assigned, groups_assigned, assignment_changed, previous_assigned) =
            match &self.job.scope {
                UserScope::All => (None, None, BTreeSet::new(), BTreeMap::new()),
                UserScope::Assigned {
                    service_principal_id,
                } => {
                    let a = self.source.read_assignments(service_principal_id).await?;
                    let effective =
                        effective_assignments(&a, &groups.groups, self.job.exclude_default_access);
                    let previous: BTreeMap<String, String> = self
                        .store
                        .list_records(job, ASSIGNED)?
                        .into_iter()
                        .collect();
                    let changed = assignment_changes(&previous, &effective);
                    (
                        Some(effective),
                        Some(assigned_groups(&a, self.job.exclude_default_access)),
                        changed,
                        previous,
                    )
                }
            };

        // Users.
        let query = UserQuery {
            attributes: source_attributes(&self.job.mappings),
            scope: self.job.scope.clone(),
        };
        let watermark = if use_watermarks {
            self.store.get_meta(job, META_USERS_WATERMARK)?
        } else {
            None
        };
        let mut work: UserWork = self
            .source
            .read_user_changes(&query, watermark.as_deref())
            .await?
            .into();
        if let Some(n) = &work.note {
            notes.push(format!("users read in full: {n}"));
        }
        // A full read decides every known object; an incremental one only those it names, so
        // a quiet cycle over 100,000 users loads (almost) no state at all.
        let mut states: HashMap<String, ObjectState> = if work.full {
            self.store
                .list(job)?
                .into_iter()
                .filter(|s| !s.source_id.starts_with(GROUP_PREFIX))
                .map(|s| (s.source_id.clone(), s))
                .collect()
        } else {
            HashMap::new()
        };
        let active_known = states.values().filter(|s| s.active).count();
        if work.full && work.users.is_empty() && active_known > 0 {
            return Err(CycleError::SourceSuspicious(format!(
                "the source returned no users while {active_known} are provisioned and active; \
                 refusing to deprovision them (check the source permissions and scope)"
            )));
        }
        let escrows: BTreeMap<String, Escrow> = self
            .store
            .list_records(job, ESCROW)?
            .into_iter()
            .filter_map(|(id, v)| serde_json::from_str(&v).ok().map(|e| (id, e)))
            .collect();
        let now = self.clock.now();
        if !work.full {
            // Users that did not change themselves but need a decision: their assignment
            // changed, or their escrow is due.
            let present: BTreeSet<String> = work.users.iter().map(|u| u.id.clone()).collect();
            let extra: Vec<String> = assignment_changed
                .iter()
                .chain(
                    escrows
                        .values()
                        .filter(|e| e.next_retry <= now)
                        .map(|e| &e.source_id),
                )
                .filter(|id| {
                    !present.contains(*id)
                        && !work.soft_deleted.contains(*id)
                        && !work.hard_deleted.contains(*id)
                })
                .cloned()
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            // Only users the job knows, or that are (now) assigned, need a record.
            let mut extra_needed = Vec::new();
            for id in extra {
                let known = self.store.get(job, &id)?.is_some();
                if known || assigned.as_ref().is_none_or(|a| a.contains_key(&id)) {
                    extra_needed.push(id);
                }
            }
            let extra = extra_needed;
            if !extra.is_empty() {
                work.users
                    .extend(self.source.read_users_by_id(&extra, &query).await?);
            }
        }

        if !work.full {
            let named = work
                .users
                .iter()
                .map(|u| &u.id)
                .chain(work.soft_deleted.iter())
                .chain(work.hard_deleted.iter());
            for id in named {
                if !states.contains_key(id)
                    && let Some(st) = self.store.get(job, id)?
                {
                    states.insert(id.clone(), st);
                }
            }
        }
        let present: BTreeSet<&str> = work.users.iter().map(|u| u.id.as_str()).collect();
        let mut items: Vec<UserItem<'_>> = work
            .users
            .iter()
            .map(|u| UserItem::Present(u, states.get(&u.id)))
            .collect();
        let mut gone: Vec<&ObjectState> = if work.full {
            states
                .values()
                .filter(|s| !present.contains(s.source_id.as_str()))
                .collect()
        } else {
            work.soft_deleted
                .iter()
                .chain(work.hard_deleted.iter())
                .filter_map(|id| states.get(id))
                .collect()
        };
        gone.sort_by(|a, b| a.source_id.cmp(&b.source_id));
        items.extend(
            gone.into_iter()
                .map(|s| UserItem::Gone(s, work.soft_deleted.contains(&s.source_id))),
        );

        let last_reconcile = self
            .store
            .get_meta(job, META_LAST_RECONCILE)?
            .and_then(|v| chrono::DateTime::parse_from_rfc3339(&v).ok())
            .map(|t| t.with_timezone(&chrono::Utc));
        let reconcile = self.job.groups.is_some()
            && match self.job.reconcile {
                Reconcile::Off => false,
                Reconcile::EveryCycle => true,
                Reconcile::Daily => {
                    last_reconcile.is_none_or(|t| now - t >= chrono::Duration::hours(24))
                }
            };
        let mut ctx = Ctx {
            cycle_id: cycle_id.clone(),
            mode,
            kind,
            now,
            assigned,
            held: BTreeSet::new(),
            escrows,
            reconcile,
        };

        // Deletion threshold: count what this cycle would disable or delete before sending any.
        let approved = self
            .store
            .get_meta(job, META_DELETIONS_APPROVED)?
            .as_deref()
            == Some("true");
        let mut candidates: Vec<String> = items
            .iter()
            .filter(|i| self.would_deprovision(&ctx, i))
            .map(|i| i.source_id().to_string())
            .collect();
        let group_plan = self
            .job
            .groups
            .as_ref()
            .map(|_| self.plan_groups(&ctx, &groups, groups_assigned.as_ref(), &group_states));
        if let Some(plan) = &group_plan {
            candidates.extend(plan.deprovision_candidates());
        }
        let threshold = self.job.deletion_threshold;
        let deletions_held = threshold > 0 && candidates.len() > threshold && !approved;
        if deletions_held {
            notes.push(format!(
                "{} disables and deletes exceed the deletion threshold of {threshold}: none was sent; \
                 run `scimsync approve-deletions` to send them",
                candidates.len()
            ));
            ctx.held = candidates.into_iter().collect();
        }

        let total = items.len();
        let done = std::sync::atomic::AtomicUsize::new(0);
        self.report_progress("users", 0, total);
        let results: Vec<Result<Processed, StoreError>> = stream::iter(items)
            .map(|item| async {
                let r = self.process_user(&ctx, item).await;
                let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                self.report_progress("users", n, total);
                r
            })
            .buffer_unordered(self.job.concurrency)
            .collect()
            .await;

        let mut report = CycleReport {
            job: job.clone(),
            cycle_id,
            kind,
            mode,
            started,
            finished: started,
            source_users: work.users.len(),
            full_read: work.full,
            notes,
            deletions_held,
            out_of_scope_unlogged: 0,
            tally: Default::default(),
            objects: Vec::new(),
        };
        let (mut unchanged, mut escrowed) = (0, 0);
        for r in results {
            match r? {
                Processed::Reported(o) => report.objects.push(o),
                Processed::Unchanged => unchanged += 1,
                Processed::SilentSkip => report.out_of_scope_unlogged += 1,
                Processed::Escrowed => escrowed += 1,
            }
        }

        if let Some(plan) = group_plan {
            let group_results = self
                .sync_groups(&ctx, &groups, plan, &report.objects)
                .await?;
            for r in group_results {
                match r {
                    Processed::Reported(o) => report.objects.push(o),
                    Processed::Unchanged => unchanged += 1,
                    Processed::SilentSkip => report.out_of_scope_unlogged += 1,
                    Processed::Escrowed => escrowed += 1,
                }
            }
        }

        report.objects.sort_by(|a, b| {
            a.display_name
                .cmp(&b.display_name)
                .then(a.source_id.cmp(&b.source_id))
        });
        report.count();
        report.tally.unchanged += unchanged;
        report.tally.escrowed += escrowed;
        report.finished = self.clock.now();
        for note in &report.notes {
            tracing::warn!(job = %job, cycle = %report.cycle_id, "{note}");
        }

        if mode == Mode::Apply {
            // Held deletions keep the old watermarks, so the changes behind them come back in
            // the next cycle; everything else they carried is already in state and is a no-op.
            if !deletions_held {
                if let Some(w) = &work.watermark {
                    self.store.put_meta(job, META_USERS_WATERMARK, w)?;
                }
                if needs_groups {
                    groups.save(self.store, job)?;
                    if let Some(w) = &groups.watermark {
                        self.store.put_meta(job, META_GROUPS_WATERMARK, w)?;
                    }
                }
                if let Some(effective) = &ctx.assigned {
                    for id in &assignment_changed {
                        match effective.get(id) {
                            Some(roles) => {
                                self.store
                                    .put_record(job, ASSIGNED, id, &roles_key(roles))?
                            }
                            None if previous_assigned.contains_key(id) => {
                                self.store.remove_record(job, ASSIGNED, id)?
                            }
                            None => {}
                        }
                    }
                }
                self.store
                    .put_meta(job, META_FINGERPRINT, &self.job.fingerprint)?;
            }
            if approved {
                self.store.remove_meta(job, META_DELETIONS_APPROVED)?;
            }
            if reconcile {
                self.store
                    .put_meta(job, META_LAST_RECONCILE, &now.to_rfc3339())?;
            }
            self.store
                .put_meta(job, META_CYCLES, &(completed + 1).to_string())?;
            let summary = json!({
                "cycleId": report.cycle_id, "kind": report.kind, "started": report.started,
                "finished": report.finished, "tally": report.tally, "sourceUsers": report.source_users,
                "fullRead": report.full_read, "deletionsHeld": report.deletions_held, "notes": report.notes,
            });
            self.store
                .put_meta(job, META_LAST_CYCLE, &summary.to_string())?;
            self.store.flush()?;
        }
        Ok(report)
    }

    /// Whether deciding this user would disable or delete it (for the deletion threshold).
    /// Mirrors the decisions of the user processing, without I/O.
    fn would_deprovision(&self, ctx: &Ctx, item: &UserItem<'_>) -> bool {
        match item {
            UserItem::Present(user, Some(st)) => {
                let decision = evaluate_scope(
                    user,
                    ctx.assigned.as_ref().map(|a| a.contains_key(&user.id)),
                    &self.job.scoping,
                )
                .decision;
                st.active
                    && decision != ScopeDecision::InScope
                    && !(decision.is_scope_loss() && self.job.skip_out_of_scope_deletions)
            }
            UserItem::Present(_, None) => false,
            UserItem::Gone(st, true) => st.active,
            UserItem::Gone(st, false) => {
                st.outcome != scimsync_core::Outcome::OutOfScope && self.job.actions.delete
            }
        }
    }
}
