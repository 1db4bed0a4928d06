//! Admin actions forwarded between `serve` replicas through PostgreSQL
//! (`scimsync_job_commands`; see `scimsync_service::forward`).

use scimsync_core::ErrorCode;
use scimsync_service::CommandError;
use scimsync_service::forward::{Action, Forward, Progress};
use scimsync_store_pg::{CommandState, PgStore};
use serde_json::Value;
use std::sync::Arc;

/// How often the lease holder looks for actions other replicas queued.
pub const POLL: std::time::Duration = std::time::Duration::from_secs(1);
/// How long an API call on a job another replica runs waits for its outcome.
pub const WAIT: std::time::Duration = std::time::Duration::from_secs(10);

pub struct PgForward {
    pub store: Arc<PgStore>,
    pub owner: String,
}

fn failed(e: impl std::fmt::Display) -> CommandError {
    CommandError::Failed {
        code: ErrorCode::StateStoreFailed,
        message: e.to_string(),
    }
}

impl Forward for PgForward {
    fn replica(&self) -> &str {
        &self.owner
    }

    fn submit(&self, job: &str, action: &Action) -> Result<i64, CommandError> {
        let json = serde_json::to_string(action).map_err(failed)?;
        self.store
            .submit_command(job, &json, &self.owner)
            .map_err(failed)
    }

    fn progress(&self, job: &str, id: i64) -> Result<Option<Progress>, CommandError> {
        Ok(match self.store.command_state(job, id).map_err(failed)? {
            None => None,
            Some(CommandState::Queued) => Some(Progress::Queued),
            Some(CommandState::Taken { by }) => Some(Progress::Taken { by }),
            Some(CommandState::Done { outcome, .. }) => Some(Progress::Done(
                serde_json::from_str::<Result<Value, CommandError>>(&outcome).map_err(failed)?,
            )),
        })
    }

    fn claim(&self, jobs: &[String]) -> Result<Vec<(i64, String, Action)>, CommandError> {
        let claimed = self
            .store
            .claim_commands(jobs, &self.owner)
            .map_err(failed)?;
        let mut out = Vec::with_capacity(claimed.len());
        for c in claimed {
            match serde_json::from_str::<Action>(&c.action) {
                Ok(a) => out.push((c.id, c.job, a)),
                Err(e) => {
                    // Written by a newer scimsync: answer instead of leaving the caller waiting.
                    let outcome: Result<Value, CommandError> = Err(CommandError::Failed {
                        code: ErrorCode::ConfigInvalid,
                        message: format!("this replica cannot read the action: {e}"),
                    });
                    let _ = self.finish(c.id, &outcome);
                }
            }
        }
        Ok(out)
    }

    fn finish(&self, id: i64, outcome: &Result<Value, CommandError>) -> Result<(), CommandError> {
        let json = serde_json::to_string(outcome).map_err(failed)?;
        self.store.finish_command(id, &json).map_err(failed)
    }

    fn holder(&self, job: &str) -> Option<String> {
        crate::leases::lease_status(&self.store, job)
            .filter(|l| l.live)
            .map(|l| l.owner)
    }
}
