//! The job runner: one tokio task per job, each on its own schedule, so a slow or failing
//! target never delays another job. Admins steer jobs through a [`ServiceHandle`] (an mpsc
//! command channel per job, each command answered on a oneshot).
//!
//! Job states: **Off** (stopped: no cycles; `start` runs one at once), **Paused** (no cycles;
//! `start` resumes at the next regular slot), **Idle**, **Running**, **Quarantined** (cycles
//! back off to once a day), **WaitingForApproval** (the last cycle held its disables and
//! deletes: quarantined for `TooManyDeletes` until `approve-deletions` approves the held set),
//! **Disabled** (quarantined longer than `disable_after`; `start` or `restart` revives it).
//! Off and Paused survive a restart of the service (stored in the job's state).
//!
//! While a cycle runs, `stop`/`pause`/`start` take effect at once (the cycle finishes, as
//! Entra's Stop does); `restart`, `approve-deletions`, provision on demand and preview wait
//! for the cycle to end, because they write the same state the cycle writes (two writers
//! could create the same user twice).
//!
//! Shutdown (SIGTERM/SIGINT → [`Service::shutdown`]): scheduling stops; a running cycle gets
//! a grace period to finish, then is dropped at its next await point. That is safe because
//! the engine commits each object only after the target confirmed it and matches before
//! every create: an object whose request was in flight is matched and linked by the next
//! cycle, never created twice. Stores are flushed before the task ends.

use crate::forward::{self, Action, Forwarding, decode};
use crate::notify::{Notification, NotificationEvent, Notifier};
use crate::quarantine::{self, Change, EscrowCounts, QuarantineReason, QuarantineState};
use crate::schedule::{self, Plan};
use crate::time::Sleeper;
use chrono::{DateTime, Utc};
use scimsync_config::{JobConfig, Quarantine, Schedule};
use scimsync_core::{Clock, ErrorCode, Source, StateStore, Target};
use scimsync_engine::JobState as StoredState;
use scimsync_engine::{
    ApproveOutcome, CycleError, CycleReport, Engine, Escrow, HeldDeletions, JobSpec, LastCycle,
    Mode, ObjectReport, Progress, ProgressSink, ResetScope, RestartSummary,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

/// Meta key: `"off"` or `"paused"` while an admin has stopped or paused the job.
pub const META_SERVICE_STATE: &str = "service_state";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum JobState {
    Off,
    Paused,
    Idle,
    Running,
    Quarantined,
    WaitingForApproval,
    Disabled,
}

/// What the admin asked for (the scheduling switch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Desired {
    On,
    Off,
    Paused,
}

/// One object to provision on demand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// Object id or user principal name.
    User(String),
    /// Group object id (with its members, up to Entra's limit).
    Group(String),
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandError {
    #[error("no job named {0:?}")]
    UnknownJob(String),
    #[error("job {0} is shutting down")]
    ShuttingDown(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{code}: {message}")]
    Failed { code: ErrorCode, message: String },
    /// Not an error: another replica runs the job and has not finished the action yet (see
    /// [`crate::forward`]).
    #[error("{}", queued_message(job, *command, replica.as_deref()))]
    Queued {
        job: String,
        command: i64,
        /// The replica that took it or holds the job's lease now; `None` when none does.
        replica: Option<String>,
    },
}

fn queued_message(job: &str, command: i64, replica: Option<&str>) -> String {
    match replica {
        Some(r) => {
            format!("queued as command {command}: replica {r} runs job {job} and carries it out")
        }
        None => format!(
            "queued as command {command}: no replica runs job {job} right now; the next one \
             to take its lease carries it out"
        ),
    }
}

impl From<CycleError> for CommandError {
    fn from(e: CycleError) -> Self {
        match e {
            CycleError::NotFound(m) => CommandError::NotFound(m),
            other => CommandError::Failed {
                code: other.code(),
                message: other.to_string(),
            },
        }
    }
}

impl From<scimsync_core::StoreError> for CommandError {
    fn from(e: scimsync_core::StoreError) -> Self {
        CommandError::Failed {
            code: e.code,
            message: e.to_string(),
        }
    }
}

/// Turns engine reports into API JSON. The CLI plugs in one that adds the exact SCIM requests.
pub trait Render: Send + Sync {
    fn object(&self, o: &ObjectReport) -> Value;
    fn preview(&self, r: &CycleReport) -> Value;
}

/// Plain serde JSON of the engine's reports.
#[derive(Debug, Default, Clone, Copy)]
pub struct PlainRender;

impl Render for PlainRender {
    fn object(&self, o: &ObjectReport) -> Value {
        serde_json::to_value(o).unwrap_or(Value::Null)
    }
    fn preview(&self, r: &CycleReport) -> Value {
        serde_json::to_value(r).unwrap_or(Value::Null)
    }
}

/// Everything one job needs.
pub struct JobDef<S, T, St> {
    pub name: String,
    pub schedule: Schedule,
    pub quarantine: Quarantine,
    pub spec: JobSpec,
    pub source: S,
    pub target: T,
    pub store: Arc<St>,
    pub notifier: Arc<dyn Notifier>,
    pub render: Arc<dyn Render>,
}

impl<S, T, St> JobDef<S, T, St> {
    /// A job from its configuration; notifications must be built by the caller (they may
    /// need secrets resolved), see [`crate::notify::from_config`].
    pub fn from_config(
        cfg: &JobConfig,
        source: S,
        target: T,
        store: Arc<St>,
        notifier: Arc<dyn Notifier>,
    ) -> Self {
        JobDef {
            name: cfg.name.clone(),
            schedule: cfg.schedule.clone(),
            quarantine: cfg.quarantine.clone(),
            spec: JobSpec::from_config(cfg),
            source,
            target,
            store,
            notifier,
            render: Arc::new(PlainRender),
        }
    }
}

/// Service-wide settings.
#[derive(Clone)]
pub struct ServiceOptions {
    pub clock: Arc<dyn Clock>,
    pub sleeper: Arc<dyn Sleeper>,
    /// How long a running cycle may go on after shutdown was requested.
    pub shutdown_grace: Duration,
}

impl ServiceOptions {
    pub fn system() -> Self {
        let clock: Arc<dyn Clock> = Arc::new(scimsync_core::SystemClock);
        ServiceOptions {
            sleeper: Arc::new(crate::time::SystemSleeper::new(Arc::clone(&clock))),
            clock,
            shutdown_grace: Duration::from_secs(20),
        }
    }
}

/// What the admin API shows for a job.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobStatus {
    pub name: String,
    pub state: JobState,
    pub schedule: String,
    pub next_run: Option<DateTime<Utc>>,
    pub running_since: Option<DateTime<Utc>>,
    pub progress: Option<Progress>,
    /// The engine's summary of the last completed apply cycle.
    pub last_cycle: Option<LastCycle>,
    /// The last cycle that failed as a whole (source, store), if the latest did.
    pub last_error: Option<String>,
    pub cycles_run: u64,
    /// Slots that passed while a cycle was still running (the job cannot keep up).
    pub skipped_slots: u64,
    /// Objects processed at once now (lowered after throttling).
    pub concurrency: usize,
    pub escrow_count: usize,
    pub escrows: Vec<Escrow>,
    pub quarantine: Option<QuarantineState>,
    /// Disables and deletes wait for `approve-deletions` (the last cycle held them).
    pub deletions_held: bool,
    /// What is held and why, when something is.
    pub held: Option<HeldSummary>,
    /// A part of the job's state that could not be read (a damaged store): what status shows
    /// without it is incomplete.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_error: Option<String>,
    /// Which replica holds the job's lease (state on PostgreSQL only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease: Option<LeaseStatus>,
}

/// The job's lease as status shows it: the replica running it (when `live`), or the last one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaseStatus {
    pub owner: String,
    pub epoch: i64,
    pub expires_at: DateTime<Utc>,
    pub live: bool,
}

/// Looks up a job's lease for status (the service knows nothing of databases).
pub type LeaseView = Arc<dyn Fn(&str) -> Option<LeaseStatus> + Send + Sync>;

/// The held set as status shows it: how many, why, and the fingerprint an approval names
/// (`approve-deletions` lists every object).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeldSummary {
    /// Disables and deletes held.
    pub count: usize,
    pub disables: usize,
    pub deletes: usize,
    pub reasons: Vec<String>,
    /// What `approve-deletions --fingerprint` names.
    pub fingerprint: String,
    /// The cycle that held them, and when.
    pub cycle_id: String,
    pub at: DateTime<Utc>,
}

impl From<&HeldDeletions> for HeldSummary {
    fn from(h: &HeldDeletions) -> Self {
        let deletes = h.ops.iter().filter(|o| o.action == "delete").count();
        HeldSummary {
            count: h.ops.len(),
            disables: h.ops.len() - deletes,
            deletes,
            reasons: h.reasons.clone(),
            fingerprint: h.fingerprint.clone(),
            cycle_id: h.cycle_id.clone(),
            at: h.at,
        }
    }
}

#[derive(Debug, Clone)]
struct Live {
    desired: Desired,
    running_since: Option<DateTime<Utc>>,
    progress: Option<Progress>,
    next_run: Option<DateTime<Utc>>,
    last_error: Option<String>,
    cycles_run: u64,
    skipped_slots: u64,
    concurrency: usize,
}

struct Shared {
    name: String,
    schedule: String,
    store: Arc<dyn StateStore>,
    live: Mutex<Live>,
    /// Whether this replica holds the job's lease; `None` when the job needs none (sled).
    lease: Option<watch::Receiver<bool>>,
}

/// A value read from the job's state, or `None` with the error kept for the admin.
fn keep<T>(errors: &mut Vec<String>, r: Result<T, scimsync_core::StoreError>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            errors.push(e.message);
            None
        }
    }
}

impl Shared {
    fn live(&self) -> std::sync::MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn status(&self) -> JobStatus {
        let job = &self.name;
        // The live part first: a cycle records its consequences in the store before it
        // publishes its end here, so a finished cycle is never shown with the state before it.
        let l = self.live().clone();
        let js = StoredState::new(&*self.store, job);
        let mut errors = Vec::new();
        let quarantine: Option<QuarantineState> = keep(&mut errors, js.quarantine()).flatten();
        let last_cycle = keep(&mut errors, js.last_cycle()).flatten();
        let escrows: Vec<Escrow> = keep(&mut errors, js.escrows())
            .map(|m| m.into_values().collect())
            .unwrap_or_default();
        let held = keep(&mut errors, js.held())
            .flatten()
            .filter(|h| !h.ops.is_empty());
        // Another replica runs the job: the switch it acts on is the stored one (an action
        // forwarded here may have changed it since this replica last ran the job).
        let desired = if self.lease.as_ref().is_some_and(|l| !*l.borrow()) {
            read_desired(&*self.store, job)
        } else {
            l.desired
        };
        let state = match (&quarantine, desired, l.running_since) {
            (_, _, Some(_)) => JobState::Running,
            (Some(q), _, _) if q.disabled => JobState::Disabled,
            (_, Desired::Off, _) => JobState::Off,
            (_, Desired::Paused, _) => JobState::Paused,
            (Some(q), _, _) if q.reason == QuarantineReason::TooManyDeletes => {
                JobState::WaitingForApproval
            }
            (Some(_), _, _) => JobState::Quarantined,
            (None, Desired::On, None) if held.is_some() => JobState::WaitingForApproval,
            (None, Desired::On, None) => JobState::Idle,
        };
        JobStatus {
            name: job.clone(),
            state,
            schedule: self.schedule.clone(),
            next_run: l.next_run,
            running_since: l.running_since,
            progress: l.progress,
            last_cycle,
            last_error: l.last_error,
            cycles_run: l.cycles_run,
            skipped_slots: l.skipped_slots,
            concurrency: l.concurrency,
            escrow_count: escrows.len(),
            escrows,
            quarantine,
            deletions_held: held.is_some(),
            held: held.as_ref().map(HeldSummary::from),
            state_error: (!errors.is_empty()).then(|| errors.join("; ")),
            lease: None,
        }
    }
}

/// The job's quarantine; a damaged record is logged and read as none (the next cycle writes
/// a fresh one), so a job is never stuck on it.
fn read_quarantine(store: &dyn StateStore, job: &str) -> Option<QuarantineState> {
    StoredState::new(store, job)
        .quarantine()
        .unwrap_or_else(|e| {
            tracing::error!(job = %job, error = %e, "the quarantine record cannot be read");
            None
        })
}

/// Whether the job is on, off or paused, as stored (an admin's last start/stop/pause).
fn read_desired(store: &dyn StateStore, job: &str) -> Desired {
    match store
        .get_meta(job, META_SERVICE_STATE)
        .ok()
        .flatten()
        .as_deref()
    {
        Some("off") => Desired::Off,
        Some("paused") => Desired::Paused,
        _ => Desired::On,
    }
}

type Reply<T> = oneshot::Sender<Result<T, CommandError>>;

enum Cmd {
    Start(Reply<()>),
    Stop(Reply<()>),
    Pause(Reply<()>),
    RunNow(Reply<()>),
    Restart(Vec<ResetScope>, Reply<RestartSummary>),
    Approve(Option<String>, Reply<ApproveOutcome>),
    Provision(Subject, bool, Reply<Vec<Value>>),
    Preview(Reply<Value>),
}

#[derive(Clone)]
struct JobHandle {
    tx: mpsc::Sender<Cmd>,
    shared: Arc<Shared>,
    /// Whether this replica holds the job's lease; `None` when the job needs none (sled).
    lease: Option<watch::Receiver<bool>>,
}

/// Steers the running jobs; cheap to clone (the admin API holds one).
#[derive(Clone, Default)]
pub struct ServiceHandle {
    jobs: Arc<RwLock<BTreeMap<String, JobHandle>>>,
    lease_view: Option<LeaseView>,
    forwarding: Option<Forwarding>,
}

impl ServiceHandle {
    fn job(&self, name: &str) -> Result<JobHandle, CommandError> {
        self.jobs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
            .ok_or_else(|| CommandError::UnknownJob(name.to_string()))
    }

    pub fn job_names(&self) -> Vec<String> {
        self.jobs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    pub fn jobs(&self) -> Vec<JobStatus> {
        let jobs: Vec<JobHandle> = self
            .jobs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        jobs.iter()
            .map(|j| self.with_lease(j.shared.status()))
            .collect()
    }

    pub fn status(&self, name: &str) -> Result<JobStatus, CommandError> {
        Ok(self.with_lease(self.job(name)?.shared.status()))
    }

    fn with_lease(&self, mut s: JobStatus) -> JobStatus {
        if let Some(view) = &self.lease_view {
            s.lease = view(&s.name);
        }
        s
    }

    pub fn escrows(&self, name: &str) -> Result<Vec<Escrow>, CommandError> {
        let j = self.job(name)?;
        Ok(StoredState::new(&*j.shared.store, name)
            .escrows()?
            .into_values()
            .collect())
    }

    /// The disables and deletes the last cycle held, every one of them (`None` when nothing
    /// is held).
    pub fn held(&self, name: &str) -> Result<Option<HeldDeletions>, CommandError> {
        let j = self.job(name)?;
        Ok(StoredState::new(&*j.shared.store, name)
            .held()?
            .filter(|h| !h.ops.is_empty()))
    }

    /// The jobs whose lease this replica holds now.
    pub fn held_jobs(&self) -> Vec<String> {
        self.jobs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, j)| j.lease.as_ref().is_some_and(|l| *l.borrow()))
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// The forwarding to use for an action on `name`: set when the job runs on another
    /// replica (its lease is not ours) and forwarding is configured.
    fn forwarding(&self, name: &str) -> Result<Option<&Forwarding>, CommandError> {
        let j = self.job(name)?;
        let elsewhere = j.lease.as_ref().is_some_and(|l| !*l.borrow());
        Ok(self.forwarding.as_ref().filter(|_| elsewhere))
    }

    /// Carry out `action` on `name` here, whoever asked (the lease holder's side of forwarding).
    pub async fn act_locally(&self, name: &str, action: Action) -> Result<Value, CommandError> {
        fn json<T: Serialize>(r: Result<T, CommandError>) -> Result<Value, CommandError> {
            r.map(|v| serde_json::to_value(v).unwrap_or(Value::Null))
        }
        match action {
            Action::Start => json(self.ask(name, Cmd::Start).await),
            Action::Stop => json(self.ask(name, Cmd::Stop).await),
            Action::Pause => json(self.ask(name, Cmd::Pause).await),
            Action::RunNow => json(self.ask(name, Cmd::RunNow).await),
            Action::Restart { scopes } => {
                let scopes = scopes.iter().filter_map(|s| ResetScope::parse(s)).collect();
                json(self.ask(name, |r| Cmd::Restart(scopes, r)).await)
            }
            Action::ApproveDeletions { fingerprint } => {
                json(self.ask(name, |r| Cmd::Approve(fingerprint, r)).await)
            }
            Action::Provision { user, group } => {
                let subject = match (user, group) {
                    (Some(u), _) => Subject::User(u),
                    (None, Some(g)) => Subject::Group(g),
                    (None, None) => {
                        return Err(CommandError::NotFound(
                            "a forwarded provision names no object".into(),
                        ));
                    }
                };
                json(self.ask(name, |r| Cmd::Provision(subject, false, r)).await)
            }
        }
    }

    /// Here, or forwarded to the replica running the job (see [`crate::forward`]).
    async fn act<R: for<'de> Deserialize<'de>>(
        &self,
        name: &str,
        action: Action,
        local: impl FnOnce(Reply<R>) -> Cmd,
    ) -> Result<R, CommandError> {
        match self.forwarding(name)? {
            Some(f) => decode(forward::forward(f, name, action).await?),
            None => self.ask(name, local).await,
        }
    }

    /// Where a forwarded action is: `None` when `id` is no command of `name`'s.
    pub async fn command(
        &self,
        name: &str,
        id: i64,
    ) -> Result<Option<forward::Progress>, CommandError> {
        self.job(name)?;
        let Some(f) = &self.forwarding else {
            return Ok(None);
        };
        let (fw, j) = (f.forward.clone(), name.to_owned());
        tokio::task::spawn_blocking(move || fw.progress(&j, id))
            .await
            .map_err(|e| CommandError::Failed {
                code: ErrorCode::StateStoreFailed,
                message: format!("reading command {id} failed: {e}"),
            })?
    }

    async fn ask<R>(
        &self,
        name: &str,
        make: impl FnOnce(Reply<R>) -> Cmd,
    ) -> Result<R, CommandError> {
        let j = self.job(name)?;
        let (tx, rx) = oneshot::channel();
        j.tx.send(make(tx))
            .await
            .map_err(|_| CommandError::ShuttingDown(name.to_string()))?;
        rx.await
            .map_err(|_| CommandError::ShuttingDown(name.to_string()))?
    }

    /// Provisioning On; a stopped or disabled job runs a cycle at once.
    pub async fn start(&self, name: &str) -> Result<(), CommandError> {
        self.act(name, Action::Start, Cmd::Start).await
    }
    /// Provisioning Off; a running cycle finishes.
    pub async fn stop(&self, name: &str) -> Result<(), CommandError> {
        self.act(name, Action::Stop, Cmd::Stop).await
    }
    pub async fn pause(&self, name: &str) -> Result<(), CommandError> {
        self.act(name, Action::Pause, Cmd::Pause).await
    }
    /// Run a cycle now (also while quarantined), whatever the schedule.
    pub async fn run_now(&self, name: &str) -> Result<(), CommandError> {
        self.act(name, Action::RunNow, Cmd::RunNow).await
    }
    /// Entra's restart with reset scopes (empty = the default), then a cycle at once.
    pub async fn restart(
        &self,
        name: &str,
        scopes: Vec<ResetScope>,
    ) -> Result<RestartSummary, CommandError> {
        let names = scopes
            .iter()
            .filter_map(|s| serde_json::to_value(s).ok())
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        self.act(name, Action::Restart { scopes: names }, |r| {
            Cmd::Restart(scopes, r)
        })
        .await
    }
    /// Entra's "Allow deletes", for exactly the set the last cycle held: with `fingerprint`,
    /// only if the held set still has it. When approved, a `TooManyDeletes` quarantine is
    /// lifted and a cycle runs at once to send them; nothing held or a stale fingerprint
    /// approves nothing (see [`ApproveOutcome`]).
    pub async fn approve_deletions(
        &self,
        name: &str,
        fingerprint: Option<String>,
    ) -> Result<ApproveOutcome, CommandError> {
        let action = Action::ApproveDeletions {
            fingerprint: fingerprint.clone(),
        };
        self.act(name, action, |r| Cmd::Approve(fingerprint, r))
            .await
    }
    /// Provision one object now; `dry_run` shows the steps without writing.
    pub async fn provision(
        &self,
        name: &str,
        subject: Subject,
        dry_run: bool,
    ) -> Result<Vec<Value>, CommandError> {
        if dry_run {
            // Writes nothing: runs here, whoever holds the lease.
            return self
                .ask(name, |r| Cmd::Provision(subject, dry_run, r))
                .await;
        }
        let action = Action::provision(&subject);
        self.act(name, action, |r| Cmd::Provision(subject, dry_run, r))
            .await
    }
    /// The next cycle as a dry run.
    pub async fn preview(&self, name: &str) -> Result<Value, CommandError> {
        self.ask(name, Cmd::Preview).await
    }
}

/// The running jobs.
pub struct Service {
    opts: ServiceOptions,
    handle: ServiceHandle,
    cancel: CancellationToken,
    tasks: Vec<oneshot::Receiver<()>>,
}

impl Service {
    pub fn new(opts: ServiceOptions) -> Self {
        Service {
            opts,
            handle: ServiceHandle::default(),
            cancel: CancellationToken::new(),
            tasks: Vec::new(),
        }
    }

    pub fn handle(&self) -> ServiceHandle {
        self.handle.clone()
    }

    /// Show each job's lease holder in status (handles taken after this call).
    pub fn set_lease_view(&mut self, view: LeaseView) {
        self.handle.lease_view = Some(view);
    }

    /// Forward actions on jobs another replica runs through `forwarding` (handles taken after
    /// this call).
    pub fn set_forwarding(&mut self, forwarding: Forwarding) {
        self.handle.forwarding = Some(forwarding);
    }

    /// Cancelling it is the same as [`Service::shutdown`] without waiting.
    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Start a job's task. Fails if a job of that name already runs or its schedule is invalid.
    pub fn add_job<S, T, St>(&mut self, def: JobDef<S, T, St>) -> Result<(), String>
    where
        S: Source + 'static,
        T: Target + 'static,
        St: StateStore + 'static,
    {
        self.add_job_leased(def, None)
    }

    /// [`Service::add_job`] for a job this replica runs only while it holds the job's lease:
    /// `lease` says whether it does now. No cycle starts without it, and a cycle in flight is
    /// dropped when it turns false (its writes are fenced anyway); the next holder resumes
    /// from the committed state.
    pub fn add_job_leased<S, T, St>(
        &mut self,
        def: JobDef<S, T, St>,
        lease: Option<watch::Receiver<bool>>,
    ) -> Result<(), String>
    where
        S: Source + 'static,
        T: Target + 'static,
        St: StateStore + 'static,
    {
        let now = self.opts.clock.now();
        let job = def.name.clone();
        if self.handle.job(&job).is_ok() {
            return Err(format!("job {job} is defined twice"));
        }
        let last_started: Option<DateTime<Utc>> = match StoredState::new(&*def.store, &job)
            .last_cycle()
        {
            Ok(c) => c.map(|c| c.started),
            Err(e) => {
                tracing::error!(job = %job, error = %e, "the last cycle cannot be read: scheduling as if none ran");
                None
            }
        };
        // Slots stay anchored at the last cycle across restarts of the service.
        let plan = Plan::from_config(&def.schedule, last_started.unwrap_or(now))
            .map_err(|e| format!("job {job}: {e}"))?;
        let first = match last_started {
            // Overdue (or never ran): one cycle now, no catch-up.
            Some(s) => plan
                .next_after(s)
                .map_err(|e| format!("job {job}: {e}"))?
                .min(now.max(s)),
            None => now,
        };
        let first = if first < now { now } else { first };
        let desired = read_desired(&*def.store, &job);
        let store_dyn: Arc<dyn StateStore> = def.store.clone();
        let shared = Arc::new(Shared {
            name: job.clone(),
            schedule: def.schedule.to_string(),
            store: store_dyn,
            live: Mutex::new(Live {
                desired,
                running_since: None,
                progress: None,
                next_run: Some(first),
                last_error: None,
                cycles_run: 0,
                skipped_slots: 0,
                concurrency: def.spec.concurrency.max(1),
            }),
            lease: lease.clone(),
        });
        let (tx, rx) = mpsc::channel(32);
        self.handle
            .jobs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                job,
                JobHandle {
                    tx,
                    shared: Arc::clone(&shared),
                    lease: lease.clone(),
                },
            );
        let runner = Runner {
            concurrency: def.spec.concurrency.max(1),
            def,
            plan,
            shared,
            rx,
            opts: self.opts.clone(),
            cancel: self.cancel.child_token(),
            next_run: first,
            run_asap: false,
            lease,
        };
        // A thread with its own single-threaded runtime per job: the engine's cycle future is
        // not `Send` in generic code (a rustc limitation with higher-ranked closures), and a
        // job that blocks (sled, a slow target) cannot hold up another job's timers this way.
        let (done_tx, done_rx) = oneshot::channel();
        let name = runner.def.name.clone();
        let job_name = name.clone();
        std::thread::Builder::new()
            .name(format!("job-{name}"))
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt.block_on(runner.run()),
                    Err(e) => {
                        tracing::error!(job = %name, error = %e, "cannot start the job's runtime")
                    }
                }
                let _ = done_tx.send(());
            })
            .map_err(|e| {
                self.handle
                    .jobs
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&job_name);
                format!("cannot start a thread for the job: {e}")
            })?;
        self.tasks.push(done_rx);
        Ok(())
    }

    /// Stop scheduling, let running cycles finish within the grace period, flush, and wait.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

struct Sink(Arc<Shared>);

impl ProgressSink for Sink {
    fn progress(&self, p: Progress) {
        self.0.live().progress = Some(p);
    }
}

struct Runner<S, T, St> {
    def: JobDef<S, T, St>,
    plan: Plan,
    shared: Arc<Shared>,
    rx: mpsc::Receiver<Cmd>,
    opts: ServiceOptions,
    cancel: CancellationToken,
    /// The next regular slot.
    next_run: DateTime<Utc>,
    /// Run as soon as possible (run-now, start, restart, approval), whatever the quarantine.
    run_asap: bool,
    /// Objects at once for the next cycle: halved after throttling, restored step by step.
    concurrency: usize,
    /// Whether this replica holds the job's lease; `None` when the job needs none (sled).
    lease: Option<watch::Receiver<bool>>,
}

/// Resolves when the lease flag changes; never without a lease.
async fn lease_changed(lease: &mut Option<watch::Receiver<bool>>) {
    if let Some(rx) = lease
        && rx.changed().await.is_ok()
    {
        return;
    }
    futures::future::pending::<()>().await
}

/// Resolves once the lease is not held; never without a lease.
async fn lease_lost(lease: &mut Option<watch::Receiver<bool>>) {
    if let Some(rx) = lease
        && rx.wait_for(|held| !*held).await.is_ok()
    {
        return;
    }
    futures::future::pending::<()>().await
}

impl<S, T, St> Runner<S, T, St>
where
    S: Source + 'static,
    T: Target + 'static,
    St: StateStore + 'static,
{
    fn job(&self) -> &str {
        &self.def.name
    }

    fn holds_lease(&self) -> bool {
        self.lease.as_ref().is_none_or(|l| *l.borrow())
    }

    /// When the next cycle should start, or `None` when none is scheduled.
    fn wake_at(&self) -> Option<DateTime<Utc>> {
        let desired = self.shared.live().desired;
        if desired != Desired::On || !self.holds_lease() {
            return None;
        }
        let q = read_quarantine(&*self.def.store, self.job());
        if self.run_asap {
            return Some(self.opts.clock.now());
        }
        match q {
            Some(q) if q.disabled => None,
            Some(q) => Some(q.next_attempt),
            None => Some(self.next_run),
        }
    }

    fn publish_next(&self) {
        let at = self.wake_at();
        self.shared.live().next_run = at;
    }

    async fn run(mut self) {
        if self.holds_lease() {
            self.release_if_nothing_held().await;
        }
        self.publish_next();
        loop {
            let wake = self.wake_at();
            let sleep = match wake {
                Some(at) => self.opts.sleeper.sleep_until(at),
                None => Box::pin(futures::future::pending()),
            };
            tokio::select! {
                biased;
                _ = self.cancel.cancelled() => break,
                cmd = self.rx.recv() => match cmd {
                    Some(cmd) => self.handle(cmd).await,
                    None => break,
                },
                _ = lease_changed(&mut self.lease) => {
                    // Taken over from another replica: its desired state is ours now.
                    if self.holds_lease() {
                        self.shared.live().desired = read_desired(&*self.def.store, self.job());
                    }
                }
                _ = sleep => {
                    if !self.cycle().await {
                        break;
                    }
                }
            }
            self.publish_next();
        }
        if let Err(e) = self.def.store.flush() {
            tracing::error!(job = %self.def.name, error = %e, "flushing the state failed");
        }
        self.shared.live().next_run = None;
        tracing::info!(job = %self.def.name, "job stopped");
    }

    fn set_desired(&self, d: Desired) -> Result<(), CommandError> {
        let value = match d {
            Desired::On => None,
            Desired::Off => Some("off"),
            Desired::Paused => Some("paused"),
        };
        match value {
            Some(v) => self.def.store.put_meta(self.job(), META_SERVICE_STATE, v)?,
            None => self.def.store.remove_meta(self.job(), META_SERVICE_STATE)?,
        }
        self.def.store.flush()?;
        self.shared.live().desired = d;
        Ok(())
    }

    /// Commands that may run while a cycle is in progress; the others are returned.
    fn handle_now(&mut self, cmd: Cmd) -> Option<Cmd> {
        match cmd {
            Cmd::Start(r) => {
                let _ = r.send(self.start());
                None
            }
            Cmd::Stop(r) => {
                let _ = r.send(self.set_desired(Desired::Off));
                None
            }
            Cmd::Pause(r) => {
                let _ = r.send(self.set_desired(Desired::Paused));
                None
            }
            Cmd::RunNow(r) => {
                self.run_asap = true;
                let _ = r.send(Ok(()));
                None
            }
            other => Some(other),
        }
    }

    fn start(&mut self) -> Result<(), CommandError> {
        let was = self.shared.live().desired;
        if let Some(mut q) = read_quarantine(&*self.def.store, self.job())
            && q.disabled
        {
            // Starting a disabled job begins a new series: the admin looked at it.
            q.disabled = false;
            q.series_began = self.opts.clock.now();
            q.series_count = 0;
            self.write_quarantine(Some(&q))?;
            self.run_asap = true;
        }
        if was == Desired::Off {
            self.run_asap = true;
        }
        self.set_desired(Desired::On)
    }

    fn state(&self) -> StoredState<'_> {
        StoredState::new(&*self.def.store, &self.def.name)
    }

    fn write_quarantine(&self, q: Option<&QuarantineState>) -> Result<(), CommandError> {
        self.state().set_quarantine(q)?;
        self.def.store.flush()?;
        Ok(())
    }

    /// `TooManyDeletes` follows the held set: once nothing is held (sent by a `run` while the
    /// service was down, or forgotten by a restart), the job no longer waits for approval.
    async fn release_if_nothing_held(&mut self) {
        let waiting = read_quarantine(&*self.def.store, self.job())
            .is_some_and(|q| q.reason == QuarantineReason::TooManyDeletes && !q.disabled);
        if !waiting {
            return;
        }
        match self.state().held() {
            Ok(Some(h)) if !h.ops.is_empty() => {}
            Ok(_) => {
                tracing::info!(job = %self.def.name, "nothing is held any more: the job leaves quarantine");
                if let Err(e) = self.lift_too_many_deletes().await {
                    tracing::error!(job = %self.def.name, error = %e, "could not lift the quarantine");
                }
            }
            Err(e) => {
                tracing::error!(job = %self.def.name, error = %e, "the held deletions cannot be read")
            }
        }
    }

    /// Lift a `TooManyDeletes` quarantine (also a disabled one: the admin decided), notifying
    /// the release.
    async fn lift_too_many_deletes(&mut self) -> Result<(), CommandError> {
        let Some(q) = read_quarantine(&*self.def.store, self.job()) else {
            return Ok(());
        };
        if q.reason != QuarantineReason::TooManyDeletes {
            return Ok(());
        }
        self.write_quarantine(None)?;
        self.notify(NotificationEvent::Released, None, Some(q.reason), None)
            .await;
        Ok(())
    }

    /// `approve-deletions`: approve exactly the held set; when approved, the job stops waiting
    /// and runs a cycle at once, which sends them.
    async fn approve(&mut self, expect: Option<&str>) -> Result<ApproveOutcome, CommandError> {
        let now = self.opts.clock.now();
        let outcome = self.state().approve_deletions(expect, now)?;
        match &outcome {
            ApproveOutcome::Approved { held } => {
                tracing::info!(job = %self.def.name, held = held.ops.len(), fingerprint = %held.fingerprint, "held disables and deletes approved");
                self.lift_too_many_deletes().await?;
                self.run_asap = true;
            }
            ApproveOutcome::NothingHeld => {
                tracing::info!(job = %self.def.name, "approve-deletions: nothing is held; nothing was approved");
            }
            ApproveOutcome::Mismatch { held } => {
                tracing::warn!(job = %self.def.name, expected = expect.unwrap_or(""), held = %held.fingerprint, "approve-deletions: the held set changed; nothing was approved");
            }
        }
        Ok(outcome)
    }

    async fn handle(&mut self, cmd: Cmd) {
        let Some(cmd) = self.handle_now(cmd) else {
            return;
        };
        let spec = &self.def.spec;
        let engine = Engine::new(
            spec,
            &self.def.source,
            &self.def.target,
            &*self.def.store,
            &*self.opts.clock,
        );
        match cmd {
            Cmd::Restart(scopes, r) => {
                let scopes = if scopes.is_empty() {
                    ResetScope::DEFAULT.to_vec()
                } else {
                    scopes
                };
                let before = read_quarantine(&*self.def.store, &self.def.name);
                let result = scimsync_engine::restart(&*self.def.store, &self.def.name, &scopes)
                    .map_err(CommandError::from);
                if let (Ok(summary), Some(q)) = (&result, before)
                    && summary.quarantine_lifted
                {
                    self.notify(NotificationEvent::Released, None, Some(q.reason), None)
                        .await;
                }
                if result.is_ok() {
                    self.run_asap = true;
                }
                let _ = r.send(result);
            }
            Cmd::Approve(expect, r) => {
                let result = self.approve(expect.as_deref()).await;
                let _ = r.send(result);
            }
            Cmd::Provision(subject, dry_run, r) => {
                let mode = if dry_run { Mode::Preview } else { Mode::Apply };
                let result = match &subject {
                    Subject::User(id) => engine.provision_user(id, mode).await.map(|o| vec![o]),
                    Subject::Group(id) => engine.provision_group(id, mode).await,
                };
                let render = &self.def.render;
                let _ = r.send(
                    result
                        .map(|v| v.iter().map(|o| render.object(o)).collect())
                        .map_err(CommandError::from),
                );
            }
            Cmd::Preview(r) => {
                let result = engine.run(Mode::Preview).await;
                let _ = r.send(
                    result
                        .map(|rep| self.def.render.preview(&rep))
                        .map_err(CommandError::from),
                );
            }
            // Handled by `handle_now`.
            Cmd::Start(_) | Cmd::Stop(_) | Cmd::Pause(_) | Cmd::RunNow(_) => {}
        }
    }

    async fn notify(
        &self,
        event: NotificationEvent,
        q: Option<&QuarantineState>,
        previous: Option<QuarantineReason>,
        at: Option<DateTime<Utc>>,
    ) {
        let n = Notification {
            event,
            job: self.def.name.clone(),
            reason: q.map(|q| q.reason),
            previous_reason: previous,
            error_code: q.and_then(|q| q.error_code),
            error: q.map(|q| q.error.clone()),
            series_began: q.map(|q| q.series_began),
            next_attempt: q.filter(|q| !q.disabled).map(|q| q.next_attempt),
            at: at.unwrap_or_else(|| self.opts.clock.now()),
        };
        if let Err(e) = self.def.notifier.notify(&n).await {
            tracing::warn!(job = %self.def.name, error = %e, "notification not delivered");
        }
    }

    /// Run one cycle, serving commands meanwhile. Returns false when shutdown cut it short.
    async fn cycle(&mut self) -> bool {
        let started = self.opts.clock.now();
        self.run_asap = false;
        {
            let mut l = self.shared.live();
            l.running_since = Some(started);
            l.progress = None;
            l.concurrency = self.concurrency;
        }
        let mut spec = self.def.spec.clone();
        spec.concurrency = self.concurrency;
        let sink = Sink(Arc::clone(&self.shared));
        let mut deferred = Vec::new();
        let mut cancelled = false;
        let mut lost = false;
        let mut channel_open = true;
        let outcome = {
            let engine = Engine::new(
                &spec,
                &self.def.source,
                &self.def.target,
                &*self.def.store,
                &*self.opts.clock,
            )
            .with_progress(&sink);
            let run = engine.run(Mode::Apply);
            tokio::pin!(run);
            loop {
                tokio::select! {
                    biased;
                    r = &mut run => break Some(r),
                    _ = lease_lost(&mut self.lease), if !cancelled => {
                        lost = true;
                        tracing::warn!(job = %self.def.name, "lease lost: this replica stops the cycle; the new holder resumes from the committed state");
                        break None;
                    }
                    _ = self.cancel.cancelled(), if !cancelled => {
                        cancelled = true;
                        tracing::info!(job = %self.def.name, "shutdown requested: letting the cycle finish");
                        match tokio::time::timeout(self.opts.shutdown_grace, &mut run).await {
                            Ok(r) => break Some(r),
                            Err(_) => {
                                tracing::warn!(job = %self.def.name, "cycle interrupted by shutdown; the next cycle picks up where it stopped");
                                break None;
                            }
                        }
                    }
                    cmd = self.rx.recv(), if channel_open => {
                        let Some(cmd) = cmd else {
                            // Every handle is gone; nobody can send again.
                            channel_open = false;
                            continue;
                        };
                        // Start/stop/pause/run-now answer at once; writers wait for the cycle.
                        let store = &*self.def.store;
                        match cmd {
                            Cmd::Start(r) => {
                                let _ = r.send(start_during(&self.shared, store));
                            }
                            Cmd::Stop(r) => {
                                let _ = r.send(desired_during(&self.shared, store, Desired::Off));
                            }
                            Cmd::Pause(r) => {
                                let _ = r.send(desired_during(&self.shared, store, Desired::Paused));
                            }
                            Cmd::RunNow(r) => {
                                let _ = r.send(Ok(()));
                            }
                            other => deferred.push(other),
                        }
                    }
                }
            }
        };
        let Some(outcome) = outcome else {
            {
                let mut l = self.shared.live();
                l.running_since = None;
                l.progress = None;
            }
            for cmd in deferred {
                drop(cmd);
            }
            return lost && !cancelled;
        };
        self.after_cycle(started, outcome).await;
        // Publish the cycle's end only once its consequences (quarantine, next run) are
        // recorded, so a status read never sees a finished cycle with a stale schedule.
        self.publish_next();
        {
            let mut l = self.shared.live();
            l.running_since = None;
            l.progress = None;
            l.cycles_run += 1;
        }
        for cmd in deferred {
            self.handle(cmd).await;
        }
        !cancelled
    }

    async fn after_cycle(
        &mut self,
        started: DateTime<Utc>,
        outcome: Result<CycleReport, CycleError>,
    ) {
        let job = self.def.name.clone();
        let store = &*self.def.store;
        let finished = self.opts.clock.now();
        match &outcome {
            // The engine recorded the cycle (last cycle, history, log retention) itself.
            Ok(r) => {
                if r.deletions_held {
                    tracing::warn!(job = %job, cycle = %r.cycle_id, held = r.tally.staged_deletes, reasons = %r.hold_reasons.join("; "), "cycle held its disables and deletes: they wait for approve-deletions");
                }
                self.shared.live().last_error = None;
            }
            Err(e) => {
                self.shared.live().last_error = Some(e.to_string());
            }
        }

        // Escrow thresholds.
        let escrows = match StoredState::new(store, &job).escrow_count() {
            Ok(n) => n as u64,
            Err(e) => {
                tracing::error!(job = %job, error = %e, "the escrows cannot be read");
                0
            }
        };
        let permanent = outcome.as_ref().map_or(0, |r| {
            r.objects
                .iter()
                .filter(|o| o.error_code.is_some_and(|c| !c.is_retryable()))
                .count() as u64
        });
        let linked = store.list(&job).map(|l| l.len() as u64).unwrap_or(0);
        let counts = EscrowCounts {
            failed: escrows + permanent,
            reference_failed: 0,
            succeeded: linked.saturating_sub(escrows),
        };
        let trigger = quarantine::evaluate(&outcome, &counts, &self.def.quarantine);
        if let (Ok(r), Some(t)) = (&outcome, &trigger)
            && t.reason == QuarantineReason::EncounteredQuarantineException
            && r.tally.failed > 0
        {
            // The failed objects were not written; the engine escrowed them on its schedule
            // (hours away), and the watermark moved past them: once the target is back (the
            // next attempt), re-read everything and retry every escrowed object.
            if let Err(e) =
                scimsync_engine::restart(store, &job, &[ResetScope::Watermark, ResetScope::Escrows])
            {
                tracing::error!(job = %job, error = %e, "could not reset the watermark and escrows");
            }
        }
        let previous = read_quarantine(store, &job);
        let base = self.plan.base_period(finished);
        let (next_q, change) = quarantine::apply(
            previous.as_ref(),
            trigger,
            finished,
            base,
            &self.def.quarantine,
        );
        if let Err(e) = self.write_quarantine(next_q.as_ref()) {
            tracing::error!(job = %job, error = %e, "could not record the quarantine");
        }
        crate::events::cycle_finished(&job, started, finished, &outcome, next_q.as_ref());
        match (&change, &next_q) {
            (Some(Change::Entered), Some(q)) => {
                tracing::warn!(job = %job, reason = %q.reason, error = %q.error, "job quarantined");
                self.notify(
                    NotificationEvent::Quarantined,
                    Some(q),
                    None,
                    Some(finished),
                )
                .await;
            }
            (Some(Change::ReasonChanged { from }), Some(q)) => {
                self.notify(
                    NotificationEvent::ReasonChanged,
                    Some(q),
                    Some(*from),
                    Some(finished),
                )
                .await;
            }
            (Some(Change::Disabled), Some(q)) => {
                tracing::error!(job = %job, reason = %q.reason, "job disabled after too long in quarantine");
                self.notify(NotificationEvent::Disabled, Some(q), None, Some(finished))
                    .await;
            }
            (Some(Change::Left { was }), _) => {
                tracing::info!(job = %job, "job left quarantine");
                self.notify(
                    NotificationEvent::Released,
                    None,
                    Some(*was),
                    Some(finished),
                )
                .await;
            }
            _ => {}
        }

        // Throttling: halve the object concurrency after 429s, restore it one step per
        // clean cycle.
        if let Ok(r) = &outcome {
            let throttled = r
                .objects
                .iter()
                .any(|o| o.error_code == Some(ErrorCode::TooManyRequests));
            let max = self.def.spec.concurrency.max(1);
            if throttled {
                self.concurrency = (self.concurrency / 2).max(1);
            } else if r.tally.failed == 0 && self.concurrency < max {
                self.concurrency += 1;
            }
            self.shared.live().concurrency = self.concurrency;
        }

        match schedule::after_cycle(&self.plan, started, finished) {
            Ok((next, skipped)) => {
                self.next_run = next;
                if skipped > 0 {
                    tracing::warn!(job = %job, skipped, "slots passed while the cycle ran; skipped");
                }
                self.shared.live().skipped_slots += skipped;
            }
            Err(e) => {
                tracing::error!(job = %job, error = %e, "no next run: stopping the job");
                let _ = self.set_desired(Desired::Off);
            }
        }
    }
}

fn desired_during(shared: &Shared, store: &dyn StateStore, d: Desired) -> Result<(), CommandError> {
    let v = if d == Desired::Off { "off" } else { "paused" };
    store.put_meta(&shared.name, META_SERVICE_STATE, v)?;
    shared.live().desired = d;
    Ok(())
}

fn start_during(shared: &Shared, store: &dyn StateStore) -> Result<(), CommandError> {
    store.remove_meta(&shared.name, META_SERVICE_STATE)?;
    shared.live().desired = Desired::On;
    Ok(())
}
