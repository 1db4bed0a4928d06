//! The cycle: **read** the source and the state the cycle needs, **plan** every decision once
//! (pure: [`crate::plan`]), let the deletion guards read the plan, **act** on it through the
//! target (users first, then groups, whose members are target ids of users), and **commit**
//! state with each object's log entry, then the cycle's bookkeeping. Preview runs the same
//! plan and the same act step with writes turned off.

use crate::act::{Claims, Cycle, Processed, digest, v7_like};
use crate::escrow::Escrow;
use crate::groups::UserTargets;
use crate::job::Reconcile;
use crate::jobstate::{
    ASSIGNED, ASSIGNMENTS_DIGEST, FINGERPRINT, GROUPS_WATERMARK, HeldDeletions, HeldOp, JobState,
    LastCycle, MEMBERSHIP_EPOCH, MEMBERSHIP_SETTLED, USERS_WATERMARK,
};
use crate::plan::{
    Compiled, Deprovision, GROUP_PREFIX, GroupDecision, GroupOp, GuardInput, PlanCtx, UserDecision,
    UserItem, UserOp, decide_groups, decide_user, guard, sequences,
};
use crate::read::{
    GroupView, MirroredGroup, StoredDigests, UserWork, assigned_groups, assignment_changes,
    assignments_digest, effective_assignments, raw_assignments_digest, roles_key,
};
use crate::references::{UserRefWork, ref_work};
use crate::report::{Action, CycleKind, CycleReport, Mode, ObjectReport, ObjectType};
use futures::stream::{self, StreamExt};
use scimsync_core::{
    AppRoleAssignment, Assignments, Clock, ErrorCode, GroupQuery, LogStatus, ObjectState,
    ObjectTarget, Source, SourceError, SourceUser, StateStore, StoreError, Target, UserQuery,
    UserScope,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

#[derive(Debug, thiserror::Error)]
pub enum CycleError {
    #[error("reading the source failed: {0}")]
    Source(#[from] SourceError),
    #[error("the state store failed: {0}")]
    Store(#[from] StoreError),
    /// Provision on demand: the object is not in the source (or not eligible).
    #[error("{0}")]
    NotFound(String),
}

impl CycleError {
    pub fn code(&self) -> ErrorCode {
        match self {
            CycleError::Source(e) => e.code,
            CycleError::Store(e) => e.code,
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

/// Where the cycle's group read started: the assignment digest is tied to it.
struct GroupsReadFrom<'w> {
    /// The groups were read in full (no delta).
    full: bool,
    /// The groups watermark the read started from.
    watermark: Option<&'w str>,
}

/// What [`Engine::read_users_to_decide`] decides from.
struct UsersToDecide<'a> {
    escrows: &'a BTreeMap<String, Escrow>,
    assignment_changed: &'a BTreeSet<String>,
    assigned: Option<&'a BTreeMap<String, Vec<AppRoleAssignment>>>,
    query: &'a UserQuery,
    now: chrono::DateTime<chrono::Utc>,
}

/// The group step's outcome (see [`Engine::read_groups`]).
struct GroupsRead {
    /// The job's copy of the groups with this read applied.
    view: GroupView,
    /// The groups were read in full (no delta).
    full: bool,
    /// The copy was not loaded (a job that does not provision groups, after a delta that
    /// changed nothing): loaded later only if the assignments are expanded.
    mirror_deferred: bool,
    /// The groups watermark the read started from.
    read_from: Option<String>,
}

/// The assignment step's outcome (see [`Engine::read_assignments`]).
struct AssignmentsRead {
    /// Effective assignments by user, when expanded; `None` for a job that provisions all users
    /// or when the expansion was left to the caller.
    assigned: Option<BTreeMap<String, Vec<AppRoleAssignment>>>,
    /// Groups assigned to the application (what a group-provisioning job may provision).
    groups_assigned: Option<BTreeSet<String>>,
    /// Users whose effective assignment changed since the last cycle.
    changed: BTreeSet<String>,
    /// The last cycle's per-user snapshot, when it was loaded to compare.
    previous: BTreeMap<String, String>,
    digest_now: Option<String>,
    /// The list as read, when the last cycle's expansion stands: built only if a user needs it.
    unexpanded: Option<Assignments>,
}

/// What the read step gathered: everything the plan decides from.
struct Snapshot {
    kind: CycleKind,
    completed: u64,
    notes: Vec<String>,
    needs_groups: bool,
    group_states: Vec<ObjectState>,
    groups: GroupView,
    assigned: Option<BTreeMap<String, Vec<AppRoleAssignment>>>,
    groups_assigned: Option<BTreeSet<String>>,
    assignment_changed: BTreeSet<String>,
    previous_assigned: BTreeMap<String, String>,
    /// The digest of this cycle's effective assignments, stored at commit.
    assignments_digest: Option<String>,
    work: UserWork,
    states: HashMap<String, ObjectState>,
    /// Users in escrow that the source no longer returns, with what they were.
    gone_escrowed: Vec<(String, bool)>,
    escrows: BTreeMap<String, Escrow>,
    reconcile: bool,
    /// Source reads that came back empty while the job has objects provisioned.
    suspicious: Vec<String>,
    /// The membership epoch when the cycle started (see `jobstate::MEMBERSHIP_EPOCH`).
    membership_epoch: String,
    /// The last cycle left membership settled and no group changed since: unless a user is
    /// acted on or a group object changes, this cycle need not compare membership at all.
    membership_settled: bool,
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

    pub(crate) fn report_progress(&self, phase: &'static str, done: usize, total: usize) {
        if let Some(p) = self.progress {
            p.progress(Progress { phase, done, total });
        }
    }

    pub(crate) fn state(&self) -> JobState<'_> {
        JobState::new(self.store, &self.job.name)
    }

    /// Run one cycle. In [`Mode::Preview`] nothing is written to the target or the store.
    pub async fn run(&self, mode: Mode) -> Result<CycleReport, CycleError> {
        let started = self.clock.now();
        let mut snap = self.read().await?;
        // The users read are needed only to plan: each is dropped once decided, so a full
        // cycle never holds the tenant and its plan at once.
        let source_users = std::mem::take(&mut snap.work.users);
        let snap = snap;
        let now = self.clock.now();
        let cycle_id = v7_like(
            started,
            digest(&format!("{}/{}/{:?}", self.job.name, snap.completed, mode)),
            0,
        );

        // Plan: every decision once, then the guards over the whole plan.
        let compiled = Compiled::new(self.job);
        let pctx = PlanCtx {
            job: self.job,
            compiled: &compiled,
            kind: snap.kind,
            now,
            assigned: snap.assigned.as_ref(),
            escrows: &snap.escrows,
            ignore_escrow: false,
        };
        let source_user_count = source_users.len();
        let mut users = self.plan_users(&pctx, &snap, source_users);
        let mut groups = decide_groups(
            &pctx,
            &snap.groups.groups,
            snap.groups_assigned.as_ref(),
            &snap.group_states,
        );
        let deprovisions = deprovisions(&users, &groups);
        let approval = self.state().approval()?;
        let input = GuardInput {
            threshold: self.job.deletion_threshold,
            max_share_percent: self.job.deletion_max_share,
            active_provisioned: if deprovisions.len() >= 2 {
                self.active_provisioned(&snap)?
            } else {
                0
            },
            suspicious_reads: snap.suspicious.clone(),
            approved: approval.map(|a| a.ids.into_iter().collect()),
        };
        let hold = guard(&deprovisions, &input);
        if !hold.reasons.is_empty() {
            hold_all(&mut users, &mut groups);
        }

        // Act.
        let mut claims = Claims::new(&snap.group_states);
        if snap.work.full {
            claims = claims.with_users(snap.states.values());
        }
        let mut cx =
            Cycle::new(cycle_id.clone(), mode, now, claims).knowing_escrows(snap.escrows.clone());
        cx.reconcile = snap.reconcile;
        let ref_wants: Vec<UserRefWork> = users
            .iter()
            .filter(|d| !d.refs.is_empty())
            .map(|d| UserRefWork {
                source_id: d.source_id.clone(),
                display: d.display.clone(),
                wants: d.refs.clone(),
            })
            .collect();
        let planned: BTreeSet<String> = users
            .iter()
            .filter(|d| matches!(d.op, UserOp::Provision { .. }))
            .map(|d| d.source_id.clone())
            .collect();
        let ms = |from: chrono::DateTime<chrono::Utc>| {
            u64::try_from((self.clock.now() - from).num_milliseconds()).unwrap_or(0)
        };
        let mut phases = crate::Phases {
            read_ms: ms(started),
            ..Default::default()
        };
        let t = self.clock.now();
        let mut processed = self.act_users(&cx, users).await?;
        phases.users_ms = ms(t);
        let t = self.clock.now();
        // References after every user of the cycle, so a manager created later in the same
        // cycle is found; pending ones from earlier cycles are tried again.
        let ref_work = ref_work(ref_wants, self.state().all_pending_refs()?);
        let reference_results = self.act_references(&cx, ref_work, &planned).await?;
        phases.references_ms = ms(t);
        let t = self.clock.now();
        let user_reports: Vec<&ObjectReport> = processed
            .iter()
            .filter_map(|p| match p {
                Processed::Reported(r) => Some(r),
                _ => None,
            })
            .collect();
        // Nothing membership depends on changed since a cycle found it settled: no user acted
        // on, no group in the delta or changed itself, no escrow (see MEMBERSHIP_SETTLED).
        let skip_members = mode == Mode::Apply
            && snap.membership_settled
            && user_reports.is_empty()
            && groups
                .iter()
                .all(|g| matches!(g.op, GroupOp::Unchanged { .. } | GroupOp::Quiet));
        let membership_unsettled = AtomicBool::new(false);
        let group_results = if skip_members {
            groups.iter().map(|_| Processed::Unchanged).collect()
        } else {
            if mode == Mode::Apply {
                self.state().unsettle_membership()?;
            }
            let targets = self.user_targets(&cx, &snap, &groups, &user_reports)?;
            self.act_groups(&cx, groups, &targets, &membership_unsettled)
                .await?
        };
        let membership_settled = !membership_unsettled.load(Ordering::Relaxed);
        phases.groups_ms = ms(t);
        processed.extend(group_results);
        processed.extend(reference_results);

        let mut report = CycleReport {
            job: self.job.name.clone(),
            cycle_id,
            kind: snap.kind,
            mode,
            started,
            finished: started,
            source_users: source_user_count,
            full_read: snap.work.full,
            notes: snap.notes.clone(),
            deletions_held: !hold.reasons.is_empty(),
            hold_reasons: hold.reasons.clone(),
            out_of_scope_unlogged: 0,
            tally: Default::default(),
            phases,
            objects: Vec::new(),
            objects_not_listed: 0,
            unlisted: cx.unlisted(),
        };
        for r in &hold.reasons {
            report.notes.push(format!(
                "held: {r}; none was sent — review with `scimsync approve-deletions` (it shows the held set) to send them"
            ));
        }
        let (mut unchanged, mut escrowed) = (0, 0);
        for p in processed {
            match p {
                Processed::Reported(o) => report.objects.push(o),
                Processed::Unchanged => unchanged += 1,
                Processed::SilentSkip => report.out_of_scope_unlogged += 1,
                Processed::Escrowed => escrowed += 1,
                // Tallied when it was counted (`Cycle::lists`); `list` drops it.
                Processed::Counted => {}
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
            tracing::warn!(job = %self.job.name, cycle = %report.cycle_id, "{note}");
        }
        if mode == Mode::Apply {
            self.commit_cycle(
                &snap,
                &report,
                &deprovisions,
                hold.approval_used,
                membership_settled,
            )?;
        }
        Ok(report)
    }

    /// Read: the source (deltas where a watermark allows) and the state the plan needs.
    async fn read(&self) -> Result<Snapshot, CycleError> {
        let job = &self.job.name;
        let js = self.state();
        // Before anything is read: a write on demand from now on voids this cycle's marker.
        let membership_epoch = js.meta(MEMBERSHIP_EPOCH)?.unwrap_or_default();
        let completed = js.cycles_completed()?;
        let kind = if completed == 0 {
            CycleKind::Initial
        } else {
            CycleKind::Incremental
        };
        let mut notes = Vec::new();
        let fingerprint_changed = completed > 0
            && !self.job.fingerprint.is_empty()
            && js.meta(FINGERPRINT)?.as_deref() != Some(self.job.fingerprint.as_str());
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
        let mut suspicious = Vec::new();

        // Groups: needed to expand assigned groups, and to provision groups.
        let needs_groups =
            self.job.groups.is_some() || matches!(self.job.scope, UserScope::Assigned { .. });
        let GroupsRead {
            view: groups,
            full: groups_full,
            mirror_deferred,
            read_from: groups_read_from,
        } = if needs_groups {
            self.read_groups(use_watermarks, &group_states, &mut notes, &mut suspicious)
                .await?
        } else {
            GroupsRead {
                view: GroupView::default(),
                full: true,
                mirror_deferred: false,
                read_from: None,
            }
        };
        // The groups the expansion of assigned groups reads.
        let mirror =
            || -> Result<std::borrow::Cow<'_, BTreeMap<String, MirroredGroup>>, StoreError> {
                Ok(if mirror_deferred {
                    std::borrow::Cow::Owned(GroupView::load(self.store, job)?)
                } else {
                    std::borrow::Cow::Borrowed(&groups.groups)
                })
            };

        let AssignmentsRead {
            mut assigned,
            groups_assigned,
            changed: assignment_changed,
            previous: previous_assigned,
            digest_now: assignments_digest_now,
            mut unexpanded,
        } = self
            .read_assignments(
                use_watermarks,
                &groups,
                GroupsReadFrom {
                    full: groups_full,
                    watermark: groups_read_from.as_deref(),
                },
                &mirror,
                &mut suspicious,
            )
            .await?;
        let exclude_default_access = self.job.exclude_default_access;
        let expand = |unexpanded: &mut Option<Assignments>| -> Result<_, StoreError> {
            Ok(match unexpanded.take() {
                Some(a) => Some(effective_assignments(
                    a,
                    &*mirror()?,
                    exclude_default_access,
                )),
                None => None,
            })
        };

        // Users.
        let mut query = UserQuery {
            attributes: self.job.user_source_attributes(),
            scope: self.job.scope.clone(),
            keep: None,
        };
        let watermark = if use_watermarks {
            js.meta(USERS_WATERMARK)?
        } else {
            None
        };
        let escrows = js.escrows()?;
        // A full read decides every known object; an incremental one only those it names, so
        // a quiet cycle over 100,000 users loads (almost) no state at all. Known objects are
        // loaded before a full read, so that the read holds whole only the users this cycle
        // may provision (assigned, known, in escrow) and the rest slim.
        let load_states = || -> Result<HashMap<String, ObjectState>, StoreError> {
            Ok(self
                .store
                .list(job)?
                .into_iter()
                .filter(|s| !s.source_id.starts_with(GROUP_PREFIX))
                .map(|s| (s.source_id.clone(), s))
                .collect())
        };
        let mut states: HashMap<String, ObjectState> = if watermark.is_none() {
            load_states()?
        } else {
            HashMap::new()
        };
        if watermark.is_none()
            && let Some(e) = expand(&mut unexpanded)?
        {
            assigned = Some(e);
        }
        if watermark.is_none()
            && let Some(assigned) = &assigned
        {
            let keep: BTreeSet<String> = assigned
                .keys()
                .chain(states.keys())
                .chain(escrows.values().map(|e| &e.source_id))
                .cloned()
                .collect();
            query.keep = Some(std::sync::Arc::new(keep));
        }
        let mut work: UserWork = self
            .source
            .read_user_changes(&query, watermark.as_deref())
            .await?
            .into();
        query.keep = None;
        if let Some(n) = &work.note {
            notes.push(format!("users read in full: {n}"));
        }
        if work.full && watermark.is_some() {
            // The watermark was refused: a full read after all.
            states = load_states()?;
        }
        // Only a cycle with users to decide looks an assignment up: a quiet one never expands.
        if (work.full
            || !work.users.is_empty()
            || !work.soft_deleted.is_empty()
            || !work.hard_deleted.is_empty()
            || !escrows.is_empty())
            && let Some(e) = expand(&mut unexpanded)?
        {
            assigned = Some(e);
        }
        if unexpanded.take().is_some() {
            // No user to decide: nothing looks an assignment up, so an empty map stands in.
            assigned = Some(BTreeMap::new());
        }
        let active_known = states.values().filter(|s| s.active).count();
        if work.full && work.users.is_empty() && active_known > 0 {
            suspicious.push(format!(
                "the source returned no users while {active_known} are provisioned and active"
            ));
        }
        let now = self.clock.now();
        let gone_escrowed = if work.full {
            Vec::new()
        } else {
            self.read_users_to_decide(
                &mut work,
                &mut states,
                UsersToDecide {
                    escrows: &escrows,
                    assignment_changed: &assignment_changed,
                    assigned: assigned.as_ref(),
                    query: &query,
                    now,
                },
            )
            .await?
        };

        if !work.full {
            let named = work
                .users
                .iter()
                .map(|u| &u.id)
                .chain(work.soft_deleted.iter())
                .chain(work.hard_deleted.iter());
            // One batched read: on a database each read is a round trip.
            let missing: Vec<String> = named
                .filter(|id| !states.contains_key(*id))
                .cloned()
                .collect();
            for st in self.store.get_many(job, &missing)? {
                states.insert(st.source_id.clone(), st);
            }
        }

        let reconcile = self.job.groups.is_some()
            && match self.job.reconcile {
                Reconcile::Off => false,
                Reconcile::EveryCycle => true,
                Reconcile::Daily => js
                    .last_reconcile()?
                    .is_none_or(|t| now - t >= chrono::Duration::hours(24)),
            };
        let membership_settled = needs_groups
            && !reconcile
            && escrows.is_empty()
            && groups.changed.is_empty()
            && groups.deleted.is_empty()
            && js.meta(MEMBERSHIP_SETTLED)?
                == Some(JobState::settled_marker(
                    &self.job.fingerprint,
                    &membership_epoch,
                ));
        Ok(Snapshot {
            kind,
            completed,
            notes,
            needs_groups,
            group_states,
            groups,
            assigned,
            groups_assigned,
            assignment_changed,
            previous_assigned,
            assignments_digest: assignments_digest_now,
            work,
            states,
            gone_escrowed,
            escrows,
            reconcile,
            suspicious,
            membership_epoch,
            membership_settled,
        })
    }

    /// Read the users an incremental read did not name but this cycle must decide: those whose
    /// effective assignment changed, or whose escrow is due. Returns the escrowed users the
    /// source no longer returns (with whether to decide them as soft-deleted).
    async fn read_users_to_decide(
        &self,
        work: &mut UserWork,
        states: &mut HashMap<String, ObjectState>,
        c: UsersToDecide<'_>,
    ) -> Result<Vec<(String, bool)>, CycleError> {
        let UsersToDecide {
            escrows,
            assignment_changed,
            assigned,
            query,
            now,
        } = c;
        let job = &self.job.name;
        let mut gone_escrowed = Vec::new();
        let present: BTreeSet<String> = work.users.iter().map(|u| u.id.clone()).collect();
        let due: BTreeSet<&String> = escrows
            .values()
            .filter(|e| e.next_retry <= now && !e.source_id.starts_with(GROUP_PREFIX))
            .map(|e| &e.source_id)
            .collect();
        let extra: BTreeSet<String> = assignment_changed
            .iter()
            .chain(due.iter().copied())
            .filter(|id| {
                !present.contains(*id)
                    && !work.soft_deleted.contains(*id)
                    && !work.hard_deleted.contains(*id)
            })
            .cloned()
            .collect();
        // Only users the job knows, or that are (now) assigned, need a record.
        let mut needed = Vec::new();
        let wanted: Vec<String> = extra.iter().cloned().collect();
        let mut known_states: BTreeMap<String, ObjectState> = self
            .store
            .get_many(job, &wanted)?
            .into_iter()
            .map(|s| (s.source_id.clone(), s))
            .collect();
        for id in extra {
            let st = known_states.remove(&id);
            let known = st.is_some();
            if let Some(st) = st {
                states.insert(id.clone(), st);
            }
            if known || assigned.is_none_or(|a| a.contains_key(&id)) {
                needed.push(id);
            }
        }
        if !needed.is_empty() {
            let found = self.source.read_users_by_id(&needed, query).await?;
            let returned: BTreeSet<&str> = found.iter().map(|u| u.id.as_str()).collect();
            for id in &needed {
                // An escrowed user the source no longer returns: decide it as gone, as
                // what it was when it failed (soft-deleted unless known otherwise: a
                // disable can be undone, a delete cannot).
                if !returned.contains(id.as_str()) && due.contains(id) && states.contains_key(id) {
                    let soft = escrows.get(id).and_then(|e| e.gone).unwrap_or(true);
                    gone_escrowed.push((id.clone(), soft));
                }
            }
            work.users.extend(found);
        }
        Ok(gone_escrowed)
    }

    /// Read the groups (a delta from the groups watermark where `use_watermarks` allows) onto
    /// the job's copy of them; an empty full read while groups are provisioned is suspicious.
    async fn read_groups(
        &self,
        use_watermarks: bool,
        group_states: &[ObjectState],
        notes: &mut Vec<String>,
        suspicious: &mut Vec<String>,
    ) -> Result<GroupsRead, CycleError> {
        let watermark = if use_watermarks {
            self.state().meta(GROUPS_WATERMARK)?
        } else {
            None
        };
        let query = GroupQuery {
            attributes: self.job.group_source_attributes(),
        };
        let read = self
            .source
            .read_groups(&query, watermark.as_deref())
            .await?;
        let full = matches!(read, scimsync_core::GroupRead::Full { .. });
        // A job that does not provision groups needs the mirror only to expand assigned
        // groups: after a delta that changed nothing it is loaded only if that runs.
        let mirror_deferred = self.job.groups.is_none() && read.changes_nothing();
        let mirror = if mirror_deferred {
            BTreeMap::new()
        } else {
            GroupView::load(self.store, &self.job.name)?
        };
        let view = GroupView::apply(mirror, read);
        if let Some(n) = &view.note {
            notes.push(format!("groups read in full: {n}"));
        }
        let provisioned = group_states.iter().filter(|s| s.active).count();
        if full && view.groups.is_empty() && provisioned > 0 {
            suspicious.push(format!(
                "the source returned no groups while {provisioned} are provisioned"
            ));
        }
        Ok(GroupsRead {
            view,
            full,
            mirror_deferred,
            read_from: watermark,
        })
    }

    /// Read the assignment list (Graph has no delta for it, so every cycle reads it whole) and
    /// compare it with the last cycle's. When neither the list nor anything its expansion
    /// depends on changed, the expansion is left to the caller (`unexpanded`): a quiet cycle
    /// with no user to decide never builds it.
    async fn read_assignments<'m>(
        &self,
        use_watermarks: bool,
        groups: &GroupView,
        groups_from: GroupsReadFrom<'_>,
        mirror: &dyn Fn() -> Result<
            std::borrow::Cow<'m, BTreeMap<String, MirroredGroup>>,
            StoreError,
        >,
        suspicious: &mut Vec<String>,
    ) -> Result<AssignmentsRead, CycleError> {
        let job = &self.job.name;
        let js = self.state();
        let mut digest_now = None;
        let mut unexpanded: Option<Assignments> = None;
        let (assigned, groups_assigned, changed, previous) = match &self.job.scope {
            UserScope::All => (None, None, BTreeSet::new(), BTreeMap::new()),
            UserScope::Assigned {
                service_principal_id,
            } => {
                let a = self.source.read_assignments(service_principal_id).await?;
                let none_read = a.users.is_empty() && a.groups.is_empty();
                let groups_assigned = assigned_groups(&a, self.job.exclude_default_access);
                let raw = raw_assignments_digest(&a, self.job.exclude_default_access);
                let raw_then = StoredDigests::raw_part(&raw, groups_from.watermark);
                let raw_now = StoredDigests::raw_part(&raw, groups.watermark.as_deref());
                let last = if use_watermarks {
                    js.meta(ASSIGNMENTS_DIGEST)?
                        .map(|d| StoredDigests::parse(&d))
                } else {
                    None
                };
                if let Some(last) = last.as_ref().filter(|l| {
                    !groups_from.full
                        && groups.changed.is_empty()
                        && groups.deleted.is_empty()
                        && raw_then.is_some()
                        && l.raw == raw_then
                }) {
                    // Nothing the expansion depends on changed, so no user's effective
                    // assignment did: the digest and the snapshot stand as they are.
                    digest_now = Some(StoredDigests::join(&last.effective, raw_now.as_deref()));
                    unexpanded = Some(a);
                    (
                        None,
                        Some(groups_assigned),
                        BTreeSet::new(),
                        BTreeMap::new(),
                    )
                } else {
                    let effective =
                        effective_assignments(a, &*mirror()?, self.job.exclude_default_access);
                    let digest = assignments_digest(&effective);
                    let unchanged = last.as_ref().is_some_and(|l| l.effective == digest);
                    digest_now = Some(StoredDigests::join(&digest, raw_now.as_deref()));
                    // Unchanged: no user's assignment changed, so the snapshot need not be loaded.
                    let previous: BTreeMap<String, String> = if unchanged {
                        BTreeMap::new()
                    } else {
                        self.store
                            .list_records(job, ASSIGNED)?
                            .into_iter()
                            .collect()
                    };
                    if none_read && !previous.is_empty() {
                        suspicious.push(format!(
                            "the source returned no assignments while {} users were assigned in the last cycle",
                            previous.len()
                        ));
                    }
                    let changed = if unchanged {
                        BTreeSet::new()
                    } else {
                        assignment_changes(&previous, &effective)
                    };
                    (Some(effective), Some(groups_assigned), changed, previous)
                }
            }
        };
        Ok(AssignmentsRead {
            assigned,
            groups_assigned,
            changed,
            previous,
            digest_now,
            unexpanded,
        })
    }

    /// Plan: decide every user the read named (present, or gone from the source).
    fn plan_users<'s>(
        &self,
        pctx: &PlanCtx<'s>,
        snap: &'s Snapshot,
        users: Vec<SourceUser>,
    ) -> Vec<UserDecision<'s>> {
        let work = &snap.work;
        let states = &snap.states;
        // Known objects the read did not return (a full read's "gone"): start from every known
        // one and strike those read, rather than keep every id read.
        let mut unseen: BTreeMap<&str, &ObjectState> = if work.full {
            states.iter().map(|(id, s)| (id.as_str(), s)).collect()
        } else {
            BTreeMap::new()
        };
        let mut decided: Vec<UserDecision<'s>> = Vec::with_capacity(users.len());
        for u in users {
            decided.push(decide_user(pctx, UserItem::Present(&u, states.get(&u.id))));
            unseen.remove(u.id.as_str());
        }
        let mut gone: Vec<(&ObjectState, bool)> = if work.full {
            unseen
                .into_values()
                .map(|s| (s, work.soft_deleted.contains(&s.source_id)))
                .collect()
        } else {
            work.soft_deleted
                .iter()
                .map(|id| (id, true))
                .chain(work.hard_deleted.iter().map(|id| (id, false)))
                .chain(snap.gone_escrowed.iter().map(|(id, soft)| (id, *soft)))
                .filter_map(|(id, soft)| states.get(id).map(|s| (s, soft)))
                .collect()
        };
        gone.sort_by(|a, b| a.0.source_id.cmp(&b.0.source_id));
        gone.dedup_by(|a, b| a.0.source_id == b.0.source_id);
        decided.extend(
            gone.into_iter()
                .map(|(s, soft)| decide_user(pctx, UserItem::Gone(s, soft))),
        );
        decided
    }

    /// Provisioned, active objects before this cycle (the guards' denominator). Read only
    /// when a cycle would deprovision more than one object.
    fn active_provisioned(&self, snap: &Snapshot) -> Result<usize, StoreError> {
        let groups = snap.group_states.iter().filter(|s| s.active).count();
        let users = if snap.work.full {
            snap.states.values().filter(|s| s.active).count()
        } else {
            self.store
                .list(&self.job.name)?
                .iter()
                .filter(|s| s.active && !s.source_id.starts_with(GROUP_PREFIX))
                .count()
        };
        Ok(users + groups)
    }

    /// Act on users: objects whose matching values collide run in one sequence (in source id
    /// order), so concurrency never decides which of them links.
    async fn act_users(
        &self,
        cx: &Cycle,
        users: Vec<UserDecision<'_>>,
    ) -> Result<Vec<Processed>, StoreError> {
        let keys = |d: &UserDecision<'_>| match &d.op {
            UserOp::Provision { keys, .. } => Some(keys.clone()),
            _ => None,
        };
        self.in_sequences(cx, "users", users, keys, |d| self.act_user(cx, d))
            .await
    }

    /// Carry out `items` with the job's concurrency; items sharing a matching value run one
    /// after the other, in the plan's order.
    async fn in_sequences<D, F, Fut>(
        &self,
        cx: &Cycle,
        phase: &'static str,
        items: Vec<D>,
        keys: impl Fn(&D) -> Option<Vec<(String, String)>>,
        act: F,
    ) -> Result<Vec<Processed>, StoreError>
    where
        F: Fn(D) -> Fut,
        Fut: std::future::Future<Output = Result<Processed, StoreError>>,
    {
        let order = {
            let k: Vec<Option<Vec<(String, String)>>> = items.iter().map(&keys).collect();
            let refs: Vec<Option<&[(String, String)]>> = k.iter().map(|o| o.as_deref()).collect();
            sequences(&refs)
        };
        let total = items.len();
        // Items stay in one list and are taken when their turn comes: grouping them by
        // sequence up front would hold a second copy of the plan.
        let slots: std::sync::Mutex<Vec<Option<D>>> =
            std::sync::Mutex::new(items.into_iter().map(Some).collect());
        let take = |i: usize| slots.lock().unwrap_or_else(|e| e.into_inner())[i].take();
        let done = AtomicUsize::new(0);
        self.report_progress(phase, 0, total);
        let (act, done, take) = (&act, &done, &take);
        // One list for what every sequence produced (a list per sequence would cost an
        // allocation per object).
        let out: std::sync::Mutex<Vec<Processed>> = std::sync::Mutex::new(Vec::new());
        let push = |p: Processed| out.lock().unwrap_or_else(|e| e.into_inner()).push(p);
        let push = &push;
        // Every sequence runs; the first store error is returned (folded, not collected: a
        // result per sequence is one per object).
        let result: Result<(), StoreError> = stream::iter(order)
            .map(|seq| async move {
                for d in seq.into_iter().filter_map(take) {
                    // Listed or only counted as soon as done, so a large cycle does not
                    // hold every object's report.
                    if let Some(p) = cx.list(act(d).await?) {
                        push(p);
                    }
                    let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                    self.report_progress(phase, n, total);
                }
                Ok(())
            })
            .buffer_unordered(self.job.concurrency)
            .fold(Ok(()), |acc, r| async move { acc.and(r) })
            .await;
        // What was confirmed is written even when the phase stops on an error.
        let flushed = self.flush_commits(cx);
        result?;
        flushed?;
        Ok(out.into_inner().unwrap_or_else(|e| e.into_inner()))
    }

    /// Where each member user of an in-scope group stands after the user phase. In a preview
    /// nothing was written, so the user phase's reports are laid over the state: membership
    /// shows as the run would leave it.
    fn user_targets(
        &self,
        cx: &Cycle,
        snap: &Snapshot,
        groups: &[GroupDecision<'_>],
        user_reports: &[&ObjectReport],
    ) -> Result<UserTargets, StoreError> {
        let mut out = UserTargets::new();
        let referenced: BTreeSet<&String> = groups
            .iter()
            .filter_map(|g| g.members)
            .flat_map(|m| m.users.iter())
            .collect();
        if referenced.is_empty() {
            return Ok(out);
        }
        // Fresh after the user phase in a run; the cycle's snapshot suffices in a preview.
        let fresh = cx.mode == Mode::Apply;
        // Read in one batch what the snapshot cannot answer (a round trip per read on a
        // database; a quiet cycle with large groups would otherwise read every member).
        let to_read: Vec<String> = referenced
            .iter()
            .filter(|id| fresh || !snap.states.contains_key(id.as_str()))
            .map(|id| (*id).clone())
            .collect();
        let mut read: HashMap<String, ObjectTarget> = self
            .store
            .targets_many(&self.job.name, &to_read)?
            .into_iter()
            .map(|s| (s.source_id.clone(), s))
            .collect();
        for id in referenced {
            let st = match (fresh, snap.states.get(id.as_str())) {
                (false, Some(st)) => Some(ObjectTarget::from(st)),
                _ => read.remove(id.as_str()),
            };
            out.insert(id.clone(), st.filter(|s| s.active).map(|s| s.target_id));
        }
        if cx.mode == Mode::Preview {
            for r in user_reports
                .iter()
                .filter(|r| r.object_type == ObjectType::User && r.error.is_none())
            {
                if !out.contains_key(&r.source_id) {
                    continue;
                }
                let next = match &r.action {
                    Action::Disable { .. } | Action::Delete { .. } => None,
                    Action::Create { .. } => Some(format!("(new user {})", r.display_name)),
                    Action::Link { target_id } => Some(target_id.clone()),
                    Action::Update { target_id, .. } if activates(&r.action) => {
                        Some(target_id.clone())
                    }
                    _ => continue,
                };
                out.insert(r.source_id.clone(), next);
            }
        }
        Ok(out)
    }

    /// Act on groups, with colliding names sequenced like users.
    async fn act_groups(
        &self,
        cx: &Cycle,
        groups: Vec<GroupDecision<'_>>,
        users: &UserTargets,
        unsettled: &AtomicBool,
    ) -> Result<Vec<Processed>, StoreError> {
        if groups.is_empty() {
            return Ok(Vec::new());
        }
        let group_targets: HashMap<String, String> = groups
            .iter()
            .filter(|g| g.members.is_some())
            .filter_map(|g| g.state.map(|s| (g.id.clone(), s.target_id.clone())))
            .collect();
        let keys = |d: &GroupDecision<'_>| match &d.op {
            GroupOp::Provision { keys, .. } => Some(keys.clone()),
            _ => None,
        };
        let group_targets = &group_targets;
        self.in_sequences(cx, "groups", groups, keys, |d| async move {
            let p = self.act_group(cx, d, users, group_targets).await?;
            // Before the report drops it from the list: a group that failed or waits in
            // escrow leaves its membership unsettled (what was sent is confirmed and recorded).
            let failed = match &p {
                Processed::Escrowed => true,
                Processed::Reported(o) => o.status == LogStatus::Failure || o.error_code.is_some(),
                _ => false,
            };
            if failed {
                unsettled.store(true, Ordering::Relaxed);
            }
            Ok(p)
        })
        .await
    }

    /// Commit the cycle: watermarks and snapshots (kept back while deletions are held, so the
    /// held changes come back), the held set, the approval used, the cycle count, the last
    /// cycle, history and log retention — here, so `run` and `serve` record cycles alike.
    fn commit_cycle(
        &self,
        snap: &Snapshot,
        report: &CycleReport,
        deprovisions: &[HeldOp],
        approval_used: bool,
        membership_settled: bool,
    ) -> Result<(), StoreError> {
        let job = &self.job.name;
        let js = self.state();
        if !report.deletions_held {
            if let Some(w) = &snap.work.watermark {
                js.set_meta(USERS_WATERMARK, w)?;
            }
            if snap.needs_groups {
                snap.groups.save(self.store, job)?;
                if let Some(w) = &snap.groups.watermark {
                    js.set_meta(GROUPS_WATERMARK, w)?;
                }
                if membership_settled {
                    let marker =
                        JobState::settled_marker(&self.job.fingerprint, &snap.membership_epoch);
                    js.set_meta(MEMBERSHIP_SETTLED, &marker)?;
                }
            }
            if let Some(effective) = &snap.assigned {
                // Two batched writes, not one per user: an initial cycle changes every
                // assigned user's record (37,683 at 100k, a transaction each on PostgreSQL).
                let (mut put, mut gone) = (Vec::new(), Vec::new());
                for id in &snap.assignment_changed {
                    match effective.get(id) {
                        Some(roles) => put.push((id.clone(), roles_key(roles))),
                        None if snap.previous_assigned.contains_key(id) => gone.push(id.clone()),
                        None => {}
                    }
                }
                if !put.is_empty() {
                    self.store.put_records(job, ASSIGNED, &put)?;
                }
                if !gone.is_empty() {
                    self.store.remove_records(job, ASSIGNED, &gone)?;
                }
                // After the snapshot records, so a crash in between reads as "changed".
                if let Some(d) = &snap.assignments_digest {
                    js.set_meta(ASSIGNMENTS_DIGEST, d)?;
                }
            }
            js.set_meta(FINGERPRINT, &self.job.fingerprint)?;
            js.set_held(None)?;
        } else {
            let held = HeldDeletions::new(
                &report.cycle_id,
                report.finished,
                report.hold_reasons.clone(),
                deprovisions.to_vec(),
            );
            js.set_held(Some(&held))?;
        }
        if approval_used || (!report.deletions_held && js.approval()?.is_some()) {
            // Used, or outdated: an approval covers one held set, once.
            js.clear_approval()?;
        }
        if snap.reconcile {
            js.set_last_reconcile(report.started)?;
        }
        js.set_cycles_completed(snap.completed + 1)?;
        js.set_last_cycle(&LastCycle {
            cycle_id: report.cycle_id.clone(),
            kind: report.kind,
            started: report.started,
            finished: report.finished,
            tally: report.tally.clone(),
            source_users: report.source_users,
            full_read: report.full_read,
            held: report.tally.staged_deletes,
            deletions_held: report.deletions_held,
            notes: report.notes.clone(),
        })?;
        crate::history::record_cycle_history(self.store, job, report)?;
        // Retention is in days and a prune reads every entry of the job: at most hourly, so
        // a quiet cycle of a 100,000-user job does not walk its whole log.
        if let Some(cutoff) =
            crate::history::log_retention_cutoff(report.finished, self.job.log_retention_days)
            && js
                .logs_pruned()?
                .is_none_or(|t| report.finished - t >= chrono::Duration::hours(1))
        {
            self.store.prune_logs_before(job, cutoff)?;
            js.set_logs_pruned(report.finished)?;
        }
        self.store.flush()
    }
}

/// The disables and deletes the plan holds, as the held set would list them.
fn deprovisions(users: &[UserDecision<'_>], groups: &[GroupDecision<'_>]) -> Vec<HeldOp> {
    let mut out = Vec::new();
    for d in users {
        if let UserOp::Deprovision { how, target_id, .. } = &d.op {
            out.push(HeldOp {
                source_id: d.source_id.clone(),
                display_name: d.display.clone(),
                target_id: target_id.clone(),
                action: how.as_str().into(),
            });
        }
    }
    for g in groups {
        if let GroupOp::Delete { target_id } = &g.op {
            out.push(HeldOp {
                source_id: g.state_id(),
                display_name: g.display.clone(),
                target_id: target_id.clone(),
                action: Deprovision::Delete.as_str().into(),
            });
        }
    }
    out
}

/// Turn every disable and delete of the plan into a held one.
fn hold_all(users: &mut [UserDecision<'_>], groups: &mut [GroupDecision<'_>]) {
    for d in users {
        if let UserOp::Deprovision { how, target_id, .. } = &d.op {
            d.op = UserOp::Held {
                how: *how,
                target_id: target_id.clone(),
            };
        }
    }
    for g in groups {
        if let GroupOp::Delete { target_id } = &g.op {
            g.op = GroupOp::Held {
                target_id: target_id.clone(),
            };
        }
    }
}

/// Whether an update turns the user's `active` on (a re-enable or restore).
fn activates(a: &Action) -> bool {
    match a {
        Action::Update { changes, .. } => changes
            .iter()
            .any(|c| c.path == "active" && c.value == serde_json::Value::Bool(true)),
        _ => false,
    }
}
