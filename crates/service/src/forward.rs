//! Admin actions on a job another replica runs, forwarded through the database.
//!
//! With several `serve` replicas, only the lease holder may write a job's state (fencing). An
//! action sent to another replica's API (start, stop, pause, run now, restart, approve
//! deletions, provision on demand) is queued through [`Forward`] instead; the holder claims it
//! at its next poll ([`serve_forwarded`]), carries it out exactly as if it had been asked
//! directly, and stores the outcome. The asking replica waits up to [`ServiceHandle`]'s
//! forward wait for that outcome and answers with it; past that it answers
//! [`CommandError::Queued`] (which replica will act, and the command's id to ask again).
//! Reads (status, logs, held set, preview, provision dry runs) never need forwarding: they
//! come from the shared database or do not write.

use crate::runner::{CommandError, ServiceHandle, Subject};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// `serve`'s own messages, shown at every verbosity (as the lease keeper's).
const TARGET: &str = "scimsync::serve";

/// An action that writes the job's state, as it travels between replicas.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "camelCase")]
pub enum Action {
    Start,
    Stop,
    Pause,
    RunNow,
    /// Reset scopes by name (`watermark`, `escrows`, `quarantine`, `full`); empty = default.
    Restart {
        scopes: Vec<String>,
    },
    ApproveDeletions {
        fingerprint: Option<String>,
    },
    /// Provision on demand (never a dry run: that writes nothing and runs anywhere).
    Provision {
        user: Option<String>,
        group: Option<String>,
    },
}

impl Action {
    pub(crate) fn provision(subject: &Subject) -> Action {
        match subject {
            Subject::User(u) => Action::Provision {
                user: Some(u.clone()),
                group: None,
            },
            Subject::Group(g) => Action::Provision {
                user: None,
                group: Some(g.clone()),
            },
        }
    }
}

/// Where a forwarded action is.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    Queued,
    Taken { by: String },
    Done(Result<Value, CommandError>),
}

/// The database side of forwarding (PostgreSQL in `serve`; the service knows no database).
pub trait Forward: Send + Sync {
    /// This replica's name.
    fn replica(&self) -> &str;
    /// Queue `action` for `job`'s lease holder; the command's id.
    fn submit(&self, job: &str, action: &Action) -> Result<i64, CommandError>;
    /// Where command `id` of `job` is; `None` when unknown.
    fn progress(&self, job: &str, id: i64) -> Result<Option<Progress>, CommandError>;
    /// Claim the queued actions of `jobs` (the ones this replica runs now), oldest first.
    fn claim(&self, jobs: &[String]) -> Result<Vec<(i64, String, Action)>, CommandError>;
    /// Store the outcome of a claimed action.
    fn finish(&self, id: i64, outcome: &Result<Value, CommandError>) -> Result<(), CommandError>;
    /// The replica holding `job`'s live lease, if any.
    fn holder(&self, job: &str) -> Option<String>;
}

/// How forwarding is set up on a [`ServiceHandle`].
#[derive(Clone)]
pub struct Forwarding {
    pub forward: Arc<dyn Forward>,
    /// How long an API call waits for the holder's outcome before answering "queued".
    pub wait: Duration,
}

/// Decode a forwarded outcome into the caller's type.
pub(crate) fn decode<T: for<'de> Deserialize<'de>>(v: Value) -> Result<T, CommandError> {
    serde_json::from_value(v).map_err(|e| CommandError::Failed {
        code: scimsync_core::ErrorCode::StateStoreFailed,
        message: format!("the outcome of a forwarded action cannot be read: {e}"),
    })
}

/// How often a waiting caller looks for the outcome.
const OUTCOME_POLL: Duration = Duration::from_millis(100);

/// Queue `action` and wait (up to `f.wait`) for its outcome.
pub(crate) async fn forward(
    f: &Forwarding,
    job: &str,
    action: Action,
) -> Result<Value, CommandError> {
    let fw = f.forward.clone();
    let (j, a) = (job.to_owned(), action.clone());
    let id = blocking(move || fw.submit(&j, &a)).await?;
    tracing::info!(target: TARGET, job = %job, command = id, action = ?action, "action queued for the replica running the job");
    let deadline = tokio::time::Instant::now() + f.wait;
    let mut taken_by = None;
    loop {
        let fw = f.forward.clone();
        let j = job.to_owned();
        match blocking(move || fw.progress(&j, id)).await? {
            Some(Progress::Done(outcome)) => return outcome,
            Some(Progress::Taken { by }) => taken_by = Some(by),
            Some(Progress::Queued) | None => {}
        }
        if tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(OUTCOME_POLL).await;
    }
    let replica = match taken_by {
        Some(by) => Some(by),
        None => {
            let fw = f.forward.clone();
            let j = job.to_owned();
            blocking(move || Ok(fw.holder(&j))).await?
        }
    };
    Err(CommandError::Queued {
        job: job.to_owned(),
        command: id,
        replica,
    })
}

/// The database calls block (a sync store); keep them off the API's async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, CommandError> + Send + 'static,
) -> Result<T, CommandError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| CommandError::Failed {
            code: scimsync_core::ErrorCode::StateStoreFailed,
            message: format!("forwarding the action failed: {e}"),
        })?
}

/// On the lease holder: every `every`, claim the actions queued for the jobs this replica runs
/// and carry them out through `handle`, one job's actions in order; until `cancel`.
pub async fn serve_forwarded(
    handle: ServiceHandle,
    forward: Arc<dyn Forward>,
    every: Duration,
    cancel: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let held = handle.held_jobs();
        if held.is_empty() {
            continue;
        }
        let fw = forward.clone();
        let claimed = match blocking(move || fw.claim(&held)).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(target: TARGET, error = %e, "cannot read actions forwarded by other replicas");
                continue;
            }
        };
        let mut by_job: std::collections::BTreeMap<String, Vec<(i64, Action)>> = Default::default();
        for (id, job, action) in claimed {
            by_job.entry(job).or_default().push((id, action));
        }
        for (job, actions) in by_job {
            let (handle, fw) = (handle.clone(), forward.clone());
            tokio::spawn(async move {
                for (id, action) in actions {
                    tracing::info!(target: TARGET, job = %job, command = id, action = ?action, "carrying out an action forwarded by another replica");
                    let outcome = handle.act_locally(&job, action).await;
                    let fw = fw.clone();
                    if let Err(e) = blocking(move || fw.finish(id, &outcome)).await {
                        tracing::warn!(target: TARGET, job = %job, command = id, error = %e, "cannot store the outcome of a forwarded action");
                    }
                }
            });
        }
    }
}
