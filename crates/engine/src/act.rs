//! Act and commit: what users and groups share when a decision is carried out — the cycle's
//! context, the record of one object (its steps, its report, its log entry), in-cycle retries,
//! the claims that keep one source object ↔ one target object, and escrow.

use crate::batch::MemberBatch;
use crate::cycle::Engine;
use crate::escrow::Escrow;
use crate::job::RetryPolicy;
use crate::jobstate::JobState;
use crate::plan::GROUP_PREFIX;
use crate::report::{Action, LISTED_OBJECTS, Mode, ObjectReport, ObjectType, Unlisted};
use chrono::{DateTime, Utc};
use scimsync_core::{
    Attrs, ErrorCode, LogEntry, LogStatus, LogStep, ModifiedProperty, Source, StateChange,
    StateStore, StoreError, Target, TargetError,
};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// What one object's processing produced.
#[allow(clippy::large_enum_variant)] // one per object, moved once
pub(crate) enum Processed {
    Reported(ObjectReport),
    Unchanged,
    /// Out of scope and never provisioned: counted, logged only in the initial cycle.
    SilentSkip,
    /// Waiting in escrow for its next retry.
    Escrowed,
    /// A success the report only counts (past [`LISTED_OBJECTS`] in a run): its log entry
    /// is written like any other; no report is built for it.
    Counted,
}

/// The cycle as the act step sees it.
pub(crate) struct Cycle {
    pub cycle_id: String,
    pub mode: Mode,
    pub now: DateTime<Utc>,
    pub claims: Claims,
    pub ids: Ids,
    /// Read each group's members back from the target this cycle and repair drift.
    pub reconcile: bool,
    /// Members per PATCH, learned this cycle from the target's answers (`batch.rs`).
    pub member_batch: MemberBatch,
    /// Objects listed in the report so far, and those only counted.
    listing: Mutex<(usize, Unlisted)>,
    /// Confirmed changes and their log entries not yet written (a run): written together,
    /// see [`COMMIT_BATCH`].
    pending: Mutex<Pending>,
    /// Every escrow record of the job, when the cycle knows them (read at its start, kept up
    /// to date by [`Engine::settle_escrow`]): settling then asks the store nothing, which was a
    /// round trip per object on PostgreSQL. `None` (provision on demand): ask the store.
    /// Writers of escrows wait for a running cycle (see the service's command loop), so the
    /// copy cannot miss one; if it ever did, the stale escrow only costs a retry next cycle.
    escrows: Option<Mutex<BTreeMap<String, Escrow>>>,
}

/// A run writes confirmed changes in batches of at most this many objects, or as soon as the
/// oldest waited [`COMMIT_WAIT`]: a store transaction per object was the largest share of a
/// cycle's CPU (sled writes its log buffer out twice per transaction). A crash loses at most a
/// batch of state — as it loses what sled had not flushed — and losing state costs a match at
/// the next cycle, never a duplicate. Reads that need this cycle's writes come after a phase
/// flushed them.
pub(crate) const COMMIT_BATCH: usize = 64;
pub(crate) const COMMIT_WAIT: chrono::TimeDelta = chrono::TimeDelta::seconds(1);

#[derive(Default)]
struct Pending {
    since: Option<DateTime<Utc>>,
    items: Vec<(StateChange, LogEntry)>,
}

impl Cycle {
    pub fn new(cycle_id: String, mode: Mode, now: DateTime<Utc>, claims: Claims) -> Self {
        Cycle {
            ids: Ids::new(&cycle_id),
            cycle_id,
            mode,
            now,
            claims,
            reconcile: false,
            member_batch: MemberBatch::default(),
            listing: Default::default(),
            pending: Default::default(),
            escrows: None,
        }
    }

    /// The job's escrow records as the cycle read them: see [`Cycle::escrows`].
    pub fn knowing_escrows(mut self, escrows: BTreeMap<String, Escrow>) -> Self {
        self.escrows = Some(Mutex::new(escrows));
        self
    }

    /// Queue a commit made at `now`; the batch to write now, if this one filled it or the
    /// oldest has waited long enough.
    fn stage(
        &self,
        change: StateChange,
        log: LogEntry,
        now: DateTime<Utc>,
    ) -> Option<Vec<(StateChange, LogEntry)>> {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let since = *p.since.get_or_insert(now);
        p.items.push((change, log));
        (p.items.len() >= COMMIT_BATCH || now - since >= COMMIT_WAIT).then(|| {
            p.since = None;
            std::mem::take(&mut p.items)
        })
    }

    /// Every queued commit, to write now.
    fn take_pending(&self) -> Vec<(StateChange, LogEntry)> {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.since = None;
        std::mem::take(&mut p.items)
    }

    /// Whether the report lists an object (else it only counts it; its log entry is written
    /// either way): a run lists every failure and the first [`LISTED_OBJECTS`] others, a
    /// preview everything. Asked before the report is built, so a large cycle builds none
    /// for the objects it only counts.
    fn lists(&self, status: LogStatus, error: bool) -> bool {
        if self.mode == Mode::Preview || status == LogStatus::Failure || error {
            return true;
        }
        let mut g = self.listing.lock().unwrap_or_else(|e| e.into_inner());
        let listed = g.0 < LISTED_OBJECTS;
        g.0 += usize::from(listed);
        listed
    }

    /// Count an object the report does not list (see [`Cycle::lists`]).
    fn count_unlisted(&self, action: &Action, status: LogStatus, members: (usize, usize)) {
        let mut g = self.listing.lock().unwrap_or_else(|e| e.into_inner());
        g.1.add(action, status, members);
    }

    /// What of a processed object the report keeps: counted ones were tallied already.
    pub fn list(&self, p: Processed) -> Option<Processed> {
        match p {
            Processed::Counted => None,
            p => Some(p),
        }
    }

    /// The objects counted but not listed, once the cycle has acted.
    pub fn unlisted(&self) -> Unlisted {
        std::mem::take(&mut self.listing.lock().unwrap_or_else(|e| e.into_inner()).1)
    }
}

impl Drop for Cycle {
    /// Every phase flushes what it staged; anything left means a phase ended without it (an
    /// error on the way out). Said, so it is not lost silently.
    fn drop(&mut self) {
        let left = self.take_pending();
        if !left.is_empty() {
            tracing::error!(
                cycle = %self.cycle_id,
                objects = left.len(),
                "changes the target confirmed were not committed to the state store; the next cycle matches these objects again"
            );
        }
    }
}

/// Log entry ids derived from the cycle (no random source): a v7 layout with the entry's
/// time, the cycle's digest and a counter.
pub(crate) struct Ids {
    seed: u64,
    next: AtomicU64,
}

impl Ids {
    pub fn new(seed_text: &str) -> Self {
        Ids {
            seed: digest(seed_text),
            next: AtomicU64::new(0),
        }
    }

    pub fn next(&self, at: DateTime<Utc>) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        v7_like(at, self.seed, n)
    }
}

/// FNV-1a: stable across runs, which `DefaultHasher` does not promise.
pub(crate) fn digest(text: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A UUID in version 7's layout: 48 bits of milliseconds, then bits from `seed` and `n`.
pub(crate) fn v7_like(at: DateTime<Utc>, seed: u64, n: u64) -> String {
    let ms = u128::from(u64::try_from(at.timestamp_millis()).unwrap_or(0)) & 0xFFFF_FFFF_FFFF;
    let mixed = seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let rand_a = u128::from((n >> 8) as u16 & 0x0FFF);
    let rand_b = u128::from(mixed & 0x3FFF_FFFF_FFFF_FFFF) ^ (u128::from(n & 0xFF) << 54);
    let v = (ms << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | (rand_b & ((1 << 62) - 1));
    uuid::Uuid::from_u128(v).to_string()
}

/// Which source object each target object is linked to: matching never links an object
/// another source object of the job holds. Groups are known from the start (their states are
/// loaded each cycle); users from the cycle's states on a full read, else from the store once a
/// match needs them (a quiet cycle loads none). Links made in this cycle are always recorded.
pub(crate) struct Claims {
    users: Mutex<UserClaims>,
    groups: Mutex<HashMap<String, (String, String)>>,
}

#[derive(Default)]
struct UserClaims {
    loaded: bool,
    /// Target id → source id.
    by_target: HashMap<String, String>,
}

pub(crate) enum Claim {
    Free,
    Other { source_id: String, display: String },
}

fn display_of(attrs: &Attrs, key: &str, fallback: &str) -> String {
    attrs
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or(fallback)
        .to_string()
}

impl Claims {
    pub fn new(group_states: &[scimsync_core::ObjectState]) -> Self {
        let groups = group_states
            .iter()
            .map(|s| {
                let id = s
                    .source_id
                    .strip_prefix(GROUP_PREFIX)
                    .unwrap_or(&s.source_id);
                (
                    s.target_id.clone(),
                    (
                        s.source_id.clone(),
                        display_of(&s.confirmed, "displayName", id),
                    ),
                )
            })
            .collect();
        Claims {
            users: Mutex::new(UserClaims::default()),
            groups: Mutex::new(groups),
        }
    }

    /// Every user link the job has (a full read holds them already).
    pub fn with_users<'s>(
        self,
        states: impl Iterator<Item = &'s scimsync_core::ObjectState>,
    ) -> Self {
        {
            let mut u = Self::lock(&self.users);
            u.loaded = true;
            u.by_target = states
                .map(|s| (s.target_id.clone(), s.source_id.clone()))
                .collect();
        }
        self
    }

    fn lock<X>(m: &Mutex<X>) -> std::sync::MutexGuard<'_, X> {
        m.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn user_claim(
        &self,
        store: &dyn StateStore,
        job: &str,
        target_id: &str,
        source_id: &str,
    ) -> Result<Claim, (ErrorCode, String)> {
        let holder = {
            let mut users = Self::lock(&self.users);
            if !users.loaded {
                let all = store.list(job).map_err(|e| (e.code, e.message))?;
                for s in all {
                    if !s.source_id.starts_with(GROUP_PREFIX) {
                        // Links made in this cycle win over what the store said before.
                        users.by_target.entry(s.target_id).or_insert(s.source_id);
                    }
                }
                users.loaded = true;
            }
            users.by_target.get(target_id).cloned()
        };
        Ok(match holder {
            Some(sid) if sid != source_id => {
                let display = store
                    .get(job, &sid)
                    .ok()
                    .flatten()
                    .map(|s| display_of(&s.confirmed, "userName", &sid))
                    .unwrap_or_else(|| sid.clone());
                Claim::Other {
                    source_id: sid,
                    display,
                }
            }
            _ => Claim::Free,
        })
    }

    pub fn claim_user(&self, target_id: &str, source_id: &str) {
        Self::lock(&self.users)
            .by_target
            .insert(target_id.into(), source_id.into());
    }

    pub fn group_claim(&self, target_id: &str, state_id: &str) -> Claim {
        match Self::lock(&self.groups).get(target_id) {
            Some((sid, display)) if sid != state_id => Claim::Other {
                source_id: sid.strip_prefix(GROUP_PREFIX).unwrap_or(sid).to_string(),
                display: display.clone(),
            },
            _ => Claim::Free,
        }
    }

    pub fn claim_group(&self, target_id: &str, state_id: &str, display: &str) {
        Self::lock(&self.groups).insert(target_id.into(), (state_id.into(), display.into()));
    }
}

/// In-cycle retries of one object's write: a bounded number of attempts with a growing,
/// per-object pause (derived from the object, so parallel workers spread out without a
/// random source).
pub(crate) struct Attempt<'a> {
    policy: &'a RetryPolicy,
    n: u32,
    spread: f64,
}

impl<'a> Attempt<'a> {
    pub fn new(policy: &'a RetryPolicy, object: &str) -> Self {
        Attempt {
            policy,
            n: 0,
            spread: (digest(object) % 1000) as f64 / 1000.0,
        }
    }

    /// Whether another attempt is allowed (and counts it).
    pub fn again(&mut self) -> bool {
        self.n += 1;
        self.n < self.policy.attempts
    }

    pub async fn pause(&self) {
        let d = self.policy.backoff.delay(self.n - 1, self.spread);
        if !d.is_zero() {
            tokio::time::sleep(d).await;
        }
    }
}

/// Send an idempotent write (a PATCH that sets values, a DELETE, a membership change) again
/// after a transient failure, up to the policy's attempts. A DELETE answered 404 on a later
/// attempt is the earlier attempt's success; callers treat `InvalidAnchor` so.
pub(crate) async fn retrying<X, F, Fut>(
    policy: &RetryPolicy,
    object: &str,
    mut op: F,
) -> Result<X, TargetError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<X, TargetError>>,
{
    let mut attempt = Attempt::new(policy, object);
    loop {
        match op().await {
            Err(e) if e.is_transient() && attempt.again() => attempt.pause().await,
            r => return r,
        }
    }
}

/// `Ok` when the object is gone: deleted now, or already (404).
pub(crate) fn gone_ok(r: Result<(), TargetError>) -> Result<(), TargetError> {
    match r {
        Err(e) if e.code == ErrorCode::InvalidAnchor => Ok(()),
        r => r,
    }
}

pub(crate) fn te(e: TargetError) -> (ErrorCode, String) {
    (e.code, e.detail)
}

pub(crate) fn se(e: StoreError) -> (ErrorCode, String) {
    (e.code, e.message)
}

/// Everything known about one object while it is carried out, for its report and log entry.
pub(crate) struct Rec {
    pub object_type: ObjectType,
    pub started: DateTime<Utc>,
    /// State id (`group:` prefix for groups).
    pub source_id: String,
    pub display: String,
    pub scope: String,
    pub steps: Vec<LogStep>,
    pub matched_by: Option<String>,
    pub target_id: Option<String>,
    pub members_added: Vec<String>,
    pub members_removed: Vec<String>,
    pub members_left_out: Vec<String>,
}

impl Rec {
    pub fn user(
        source_id: &str,
        display: &str,
        scope: &str,
        steps: Vec<LogStep>,
        now: DateTime<Utc>,
    ) -> Self {
        Rec {
            object_type: ObjectType::User,
            started: now,
            source_id: source_id.into(),
            display: display.into(),
            scope: scope.into(),
            steps,
            matched_by: None,
            target_id: None,
            members_added: Vec::new(),
            members_removed: Vec::new(),
            members_left_out: Vec::new(),
        }
    }

    pub fn step(&mut self, name: &str, kind: &str, status: LogStatus, d: impl Into<String>) {
        self.steps.push(crate::plan::step(name, kind, status, d));
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub(crate) fn modified_properties(action: &Action, old: Option<&Attrs>) -> Vec<ModifiedProperty> {
    let pairs: Vec<(String, Value)> = match action {
        Action::Create { attrs } => attrs.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        Action::Update { .. } | Action::Disable { .. } | Action::SetReference { .. } => action
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

fn describe(object_type: ObjectType, action: &Action) -> String {
    let (users, groups) = (
        object_type == ObjectType::User,
        object_type == ObjectType::Group,
    );
    match action {
        Action::Create { .. } if users => "POST /Users".into(),
        Action::Create { .. } => "POST /Groups (created empty)".into(),
        Action::Update { .. } | Action::Disable { .. } if users => "PATCH /Users/{id}".into(),
        Action::SetReference { .. } => "PATCH /Users/{id} (references)".into(),
        Action::ReferencePending { manager } => {
            format!("manager {manager} is not provisioned yet; tried again every cycle")
        }
        Action::Update { .. } | Action::Disable { .. } => "PATCH /Groups/{id}".into(),
        Action::Delete { .. } if users => "DELETE /Users/{id}".into(),
        Action::Delete { .. } => "DELETE /Groups/{id}".into(),
        Action::Skip { reason } => reason.clone(),
        Action::Link { .. } if groups => "linked to an existing group".into(),
        Action::Link { .. } => "linked; target already up to date".into(),
        Action::StagedDelete { held, .. } => {
            format!("{held} held back: the cycle's deletions wait for approve-deletions")
        }
        Action::NoChange => "no change to the object's attributes".into(),
    }
}

impl<S: Source, T: Target, St: StateStore> Engine<'_, S, T, St> {
    pub(crate) fn fail(
        &self,
        cx: &Cycle,
        rec: Rec,
        (code, message): (ErrorCode, String),
    ) -> Result<Processed, StoreError> {
        tracing::warn!(job = %self.job.name, object = %rec.display, code = %code, "{message}");
        self.record(
            cx,
            rec,
            Action::NoChange,
            LogStatus::Failure,
            Some((code, message)),
            StateChange::None,
            None,
        )
    }

    pub(crate) fn finish(
        &self,
        cx: &Cycle,
        rec: Rec,
        action: Action,
        change: StateChange,
        old: Option<&Attrs>,
    ) -> Result<Processed, StoreError> {
        let status = if matches!(action, Action::Skip { .. } | Action::StagedDelete { .. }) {
            LogStatus::Skipped
        } else {
            LogStatus::Success
        };
        self.record(cx, rec, action, status, None, change, old)
    }

    /// One report, and in a run one log entry committed with the object's state change.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn record(
        &self,
        cx: &Cycle,
        mut rec: Rec,
        action: Action,
        status: LogStatus,
        error: Option<(ErrorCode, String)>,
        change: StateChange,
        old: Option<&Attrs>,
    ) -> Result<Processed, StoreError> {
        let description = match &error {
            Some((code, msg)) => format!("{code}: {msg}"),
            None if rec.object_type == ObjectType::Group => format!(
                "{}; {} member(s) added, {} removed",
                describe(rec.object_type, &action),
                rec.members_added.len(),
                rec.members_removed.len()
            ),
            None => describe(rec.object_type, &action),
        };
        let verb = if cx.mode == Mode::Preview {
            "Would provision"
        } else {
            "Provision"
        };
        rec.step(verb, "export", status, description);
        let mut modified = modified_properties(&action, old);
        if !rec.members_added.is_empty() {
            modified.push(ModifiedProperty {
                display_name: "members (added)".into(),
                old_value: None,
                new_value: Some(rec.members_added.join(",")),
            });
        }
        if !rec.members_removed.is_empty() {
            modified.push(ModifiedProperty {
                display_name: "members (removed)".into(),
                old_value: Some(rec.members_removed.join(",")),
                new_value: None,
            });
        }
        let now = self.clock.now();
        let members = (rec.members_added.len(), rec.members_removed.len());
        let report = if cx.lists(status, error.is_some()) {
            Some(ObjectReport {
                object_type: rec.object_type,
                source_id: rec.source_id.clone(),
                display_name: rec.display.clone(),
                scope: rec.scope.clone(),
                matched_by: rec.matched_by.clone(),
                action: action.clone(),
                status,
                error_code: error.as_ref().map(|e| e.0),
                error: error.as_ref().map(|e| e.1.clone()),
                members_added: rec.members_added,
                members_removed: rec.members_removed,
                members_left_out: rec.members_left_out,
                steps: rec.steps.clone(),
            })
        } else {
            cx.count_unlisted(&action, status, members);
            None
        };
        if cx.mode == Mode::Apply {
            let (error_code, reason) = error.map_or((None, None), |(c, m)| (Some(c), Some(m)));
            let entry = LogEntry {
                id: cx.ids.next(now),
                activity_date_time: now,
                job_id: self.job.name.clone(),
                cycle_id: cx.cycle_id.clone(),
                change_id: cx.ids.next(now),
                provisioning_action: action.log_action(),
                status,
                error_code,
                reason,
                source_id: rec.source_id,
                source_display_name: rec.display,
                target_id: rec.target_id,
                provisioning_steps: rec.steps,
                modified_properties: modified,
                duration_in_milliseconds: u64::try_from((now - rec.started).num_milliseconds())
                    .unwrap_or(0),
            };
            if let Some(batch) = cx.stage(change, entry, now) {
                self.store.commit_batch(&self.job.name, &batch)?;
            }
        }
        Ok(report.map_or(Processed::Counted, Processed::Reported))
    }

    /// Write the commits the cycle still holds: at the end of every phase, before anything
    /// reads this cycle's state.
    pub(crate) fn flush_commits(&self, cx: &Cycle) -> Result<(), StoreError> {
        let batch = cx.take_pending();
        if batch.is_empty() {
            return Ok(());
        }
        self.store.commit_batch(&self.job.name, &batch)
    }

    /// A failure goes into escrow whatever its class, so a later cycle (incremental ones
    /// included) revisits it: transient ones at the next cycle, permanent ones on Entra's
    /// schedule. A success takes the object out.
    pub(crate) fn settle_escrow(
        &self,
        cx: &Cycle,
        id: &str,
        gone: Option<bool>,
        out: &Processed,
    ) -> Result<(), StoreError> {
        let js = JobState::new(self.store, &self.job.name);
        // A counted object is a success (failures are always listed).
        let failed = match out {
            Processed::Reported(r) if r.status == LogStatus::Failure => Some(r),
            Processed::Reported(_) | Processed::Counted => None,
            Processed::Unchanged | Processed::SilentSkip | Processed::Escrowed => return Ok(()),
        };
        let known = cx
            .escrows
            .as_ref()
            .map(|m| m.lock().unwrap_or_else(|e| e.into_inner()));
        let Some(r) = failed else {
            let had = match known {
                Some(mut k) => k.remove(id).is_some(),
                None => self
                    .store
                    .get_record(&self.job.name, crate::jobstate::ESCROW, id)?
                    .is_some(),
            };
            if had {
                js.remove_escrow(id)?;
            }
            return Ok(());
        };
        let code = r.error_code.unwrap_or(ErrorCode::InternalServerError);
        let previous = match &known {
            Some(k) => k.get(id).cloned(),
            None => self
                .store
                .get_record(&self.job.name, crate::jobstate::ESCROW, id)?
                .and_then(|v| serde_json::from_str::<Escrow>(&v).ok()),
        };
        let transient = code.is_retryable() || is_transient_code(code);
        match self.job.escrow.record(
            previous.as_ref(),
            id,
            &r.display_name,
            code,
            r.error.as_deref().unwrap_or_default(),
            cx.now,
            transient,
        ) {
            Some(mut e) => {
                e.gone = gone.or(previous.and_then(|p| p.gone));
                js.put_escrow(&e)?;
                if let Some(mut k) = known {
                    k.insert(id.to_owned(), e);
                }
                Ok(())
            }
            None => {
                tracing::warn!(job = %self.job.name, object = %r.display_name, "escrow expired after repeated failures; giving up");
                js.remove_escrow(id)?;
                if let Some(mut k) = known {
                    k.remove(id);
                }
                Ok(())
            }
        }
    }
}

/// Codes whose failure a retry at the next cycle can clear without an admin.
fn is_transient_code(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::TooManyRequests
            | ErrorCode::InternalServerError
            | ErrorCode::Timeout
            | ErrorCode::WebExceptionProtocolError
            | ErrorCode::SystemForCrossDomainIdentityManagementServiceIncompatible
            | ErrorCode::StateStoreFailed
    )
}
