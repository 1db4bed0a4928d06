//! Admin actions forwarded between replicas (`scimsync_job_commands`).
//!
//! The table is a plain queue: the replica that took the admin's request inserts a row, the
//! replica holding the job's lease claims queued rows for its jobs (`FOR UPDATE SKIP LOCKED`, so
//! two claimers never take one row), carries them out and writes the outcome. The store keeps
//! the action and outcome as opaque JSON text: what they mean is the service's business.
//! Rows are not fenced: the action's own writes are.

use crate::fail::Fail;
use crate::store::PgStore;
use scimsync_core::StoreError;
use scimsync_store::check_job;

/// Done rows older than this are deleted when another command of the job finishes.
const KEEP_DONE: &str = "7 days";

/// A queued action a replica claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub id: i64,
    pub job: String,
    pub action: String,
}

/// Where a forwarded action is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandState {
    /// Nobody took it yet.
    Queued,
    /// `by` is carrying it out.
    Taken { by: String },
    /// Finished, with the outcome JSON the claimer stored.
    Done { by: String, outcome: String },
}

impl PgStore {
    /// Queue `action` (JSON) for the replica running `job`; returns the command's id.
    pub fn submit_command(
        &self,
        job: &str,
        action: &str,
        submitted_by: &str,
    ) -> Result<i64, StoreError> {
        check_job(job)?;
        let (j, a, s) = (job.to_owned(), action.to_owned(), submitted_by.to_owned());
        self.run(
            || format!("queueing an action for job {job}"),
            move |pool| async move {
                let c = pool.get().await?;
                let row = c
                    .query_one(
                        "INSERT INTO scimsync_job_commands (job, action, submitted_by) \
                         VALUES ($1, $2, $3) RETURNING id",
                        &[&j, &a, &s],
                    )
                    .await?;
                Ok(row.try_get(0)?)
            },
        )
    }

    /// Claim every queued command of `jobs` for `owner`, oldest first, and every unfinished one
    /// taken by a replica that lost the job's lease to `owner` since (it died or was fenced
    /// mid-action): an admin action is carried out by whoever holds the job, never left `taken`.
    /// Carrying one out twice is safe: each action is idempotent or checked (approval by
    /// fingerprint, provision matches before it creates).
    pub fn claim_commands(&self, jobs: &[String], owner: &str) -> Result<Vec<Claimed>, StoreError> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let (j, o) = (jobs.to_vec(), owner.to_owned());
        self.run(
            || "claiming forwarded actions".into(),
            move |pool| async move {
                let c = pool.get().await?;
                let rows = c
                    .query(
                        "UPDATE scimsync_job_commands SET taken_by = $2, taken_at = now() \
                         WHERE id IN (SELECT id FROM scimsync_job_commands c \
                           WHERE job = ANY($1) AND outcome IS NULL AND (taken_by IS NULL \
                             OR (taken_by <> $2 AND EXISTS (SELECT 1 FROM scimsync_job_leases l \
                                 WHERE l.job = c.job AND l.owner = $2))) \
                           ORDER BY id FOR UPDATE SKIP LOCKED) \
                         RETURNING id, job, action",
                        &[&j, &o],
                    )
                    .await?;
                let mut claimed = rows
                    .iter()
                    .map(|r| {
                        Ok(Claimed {
                            id: r.try_get(0)?,
                            job: r.try_get(1)?,
                            action: r.try_get(2)?,
                        })
                    })
                    .collect::<Result<Vec<_>, Fail>>()?;
                claimed.sort_by_key(|c| c.id);
                Ok(claimed)
            },
        )
    }

    /// Store the outcome (JSON) of a command this replica claimed; forget the job's old ones.
    pub fn finish_command(&self, id: i64, outcome: &str) -> Result<(), StoreError> {
        let o = outcome.to_owned();
        self.run(
            || format!("storing the outcome of forwarded action {id}"),
            move |pool| async move {
                let c = pool.get().await?;
                let row = c
                    .query_opt(
                        "UPDATE scimsync_job_commands SET outcome = $2, done_at = now() \
                         WHERE id = $1 RETURNING job",
                        &[&id, &o],
                    )
                    .await?;
                if let Some(row) = row {
                    let job: String = row.try_get(0)?;
                    c.execute(
                        &format!(
                            "DELETE FROM scimsync_job_commands WHERE job = $1 \
                             AND done_at < now() - interval '{KEEP_DONE}'"
                        ),
                        &[&job],
                    )
                    .await?;
                }
                Ok(())
            },
        )
    }

    /// Where command `id` of `job` is; `None` when there is no such command.
    pub fn command_state(&self, job: &str, id: i64) -> Result<Option<CommandState>, StoreError> {
        let j = job.to_owned();
        self.run(
            || format!("reading forwarded action {id}"),
            move |pool| async move {
                let c = pool.get().await?;
                let row = c
                    .query_opt(
                        "SELECT taken_by, outcome FROM scimsync_job_commands \
                         WHERE id = $1 AND job = $2",
                        &[&id, &j],
                    )
                    .await?;
                let Some(row) = row else { return Ok(None) };
                let by: Option<String> = row.try_get(0)?;
                let outcome: Option<String> = row.try_get(1)?;
                Ok(Some(match (by, outcome) {
                    (Some(by), Some(outcome)) => CommandState::Done { by, outcome },
                    (Some(by), None) => CommandState::Taken { by },
                    (None, _) => CommandState::Queued,
                }))
            },
        )
    }
}
