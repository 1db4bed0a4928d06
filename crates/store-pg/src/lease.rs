//! Job leases with fencing: which replica runs which job, and a store handle that can only
//! write while its lease epoch is still the current one.
//!
//! A lease row is never deleted, so epochs only grow: acquiring bumps the epoch (a new holder,
//! or the same owner starting over), renewing and releasing do not. A fenced store checks the
//! epoch with `FOR SHARE` inside each write's transaction; a takeover's update of the row waits
//! for those writes, and every write after it sees the new epoch and is refused.

use crate::fail::Fail;
use crate::store::PgStore;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use scimsync_core::StoreError;
use scimsync_store::check_job;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// A lease one owner holds on one job, at one epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub job: String,
    pub owner: String,
    pub epoch: i64,
    pub expires_at: DateTime<Utc>,
}

/// A row of the lease table as `list` shows it, with whether it is live by the database clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRow {
    pub lease: Lease,
    pub live: bool,
}

/// The epoch a fenced store writes under; 0 (no epoch is 0) while it holds no lease. Shared,
/// so the lease keeper can move one handle to the epoch it acquired next.
#[derive(Debug, Clone)]
pub(crate) struct Fence {
    pub job: String,
    pub epoch: Arc<AtomicI64>,
}

/// Refuse the write when `fence` guards `job` and the lease epoch moved on. Runs inside the
/// write's transaction; `FOR SHARE` holds off a takeover until that transaction ends.
pub(crate) async fn check(
    c: &impl GenericClient,
    fence: Option<&Fence>,
    job: &str,
) -> Result<(), Fail> {
    let Some(fence) = fence.filter(|f| f.job == job) else {
        return Ok(());
    };
    let statement = c
        .prepare_cached("SELECT epoch FROM scimsync_job_leases WHERE job = $1 FOR SHARE")
        .await?;
    let now: Option<i64> = match c.query_opt(&statement, &[&job]).await? {
        Some(row) => Some(row.try_get(0)?),
        None => None,
    };
    let mine = fence.epoch.load(Ordering::SeqCst);
    if now == Some(mine) {
        return Ok(());
    }
    let total = REFUSED.fetch_add(1, Ordering::SeqCst) + 1;
    // Loud on purpose: a replica that writes after losing its lease was paused or partitioned,
    // and the admin should see that fencing stopped it.
    tracing::warn!(target: "scimsync::serve", job = %job, lease_epoch = ?now, this_epoch = mine, refused_so_far = total, "state write refused by the lease fence: another replica runs the job");
    let now = now.map_or_else(|| "none".to_owned(), |e| e.to_string());
    if mine == 0 {
        return Err(Fail(format!(
            "job {job}: write refused, this replica holds no lease on the job (lease epoch {now})"
        )));
    }
    Err(Fail(format!(
        "job {job}: write refused, the lease epoch is now {now} but this replica holds epoch \
         {mine} (another replica took the job over)"
    )))
}

/// State writes the fence refused in this process.
static REFUSED: AtomicU64 = AtomicU64::new(0);

/// How many state writes the lease fence refused in this process (for tests and metrics).
pub fn refused_writes() -> u64 {
    REFUSED.load(Ordering::SeqCst)
}

fn secs(ttl: Duration) -> f64 {
    ttl.as_secs_f64()
}

fn lease_from(row: &tokio_postgres::Row) -> Result<Lease, Fail> {
    Ok(Lease {
        job: row.try_get(0)?,
        owner: row.try_get(1)?,
        epoch: row.try_get(2)?,
        expires_at: row.try_get(3)?,
    })
}

impl PgStore {
    /// Take the job's lease for `owner` when it is free, expired or already `owner`'s; the
    /// epoch goes up by one. `None` when another owner holds a live lease.
    pub fn try_acquire(
        &self,
        job: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, StoreError> {
        check_job(job)?;
        let (j, o, t) = (job.to_owned(), owner.to_owned(), secs(ttl));
        self.run(
            || format!("acquiring the lease of job {job}"),
            move |pool| async move {
                let c = pool.get().await?;
                // One statement: concurrent acquirers serialise on the row, exactly one wins.
                let row = c
                    .query_opt(
                        "INSERT INTO scimsync_job_leases AS l (job, owner, epoch, expires_at) \
                         VALUES ($1, $2, 1, now() + make_interval(secs => $3)) \
                         ON CONFLICT (job) DO UPDATE SET owner = EXCLUDED.owner, \
                           epoch = l.epoch + 1, expires_at = EXCLUDED.expires_at \
                         WHERE l.expires_at < now() OR l.owner = EXCLUDED.owner \
                         RETURNING job, owner, epoch, expires_at",
                        &[&j, &o, &t],
                    )
                    .await?;
                row.as_ref().map(lease_from).transpose()
            },
        )
    }

    /// Extend `lease` by `ttl` from now; `None` when it is no longer this owner's at this
    /// epoch (taken over). An expired lease nobody took yet is still renewed.
    pub fn renew(&self, lease: &Lease, ttl: Duration) -> Result<Option<Lease>, StoreError> {
        let l = lease.clone();
        let t = secs(ttl);
        self.run(
            || format!("renewing the lease of job {}", lease.job),
            move |pool| async move {
                let c = pool.get().await?;
                let row = c
                    .query_opt(
                        "UPDATE scimsync_job_leases \
                         SET expires_at = now() + make_interval(secs => $4) \
                         WHERE job = $1 AND owner = $2 AND epoch = $3 \
                         RETURNING job, owner, epoch, expires_at",
                        &[&l.job, &l.owner, &l.epoch, &t],
                    )
                    .await?;
                row.as_ref().map(lease_from).transpose()
            },
        )
    }

    /// Give `lease` up (expire it now) so another replica can take the job at once. The row
    /// stays, so the next holder's epoch is higher. Does nothing when it was taken over.
    pub fn release(&self, lease: &Lease) -> Result<(), StoreError> {
        let l = lease.clone();
        self.run(
            || format!("releasing the lease of job {}", lease.job),
            move |pool| async move {
                let c = pool.get().await?;
                c.execute(
                    "UPDATE scimsync_job_leases SET expires_at = to_timestamp(0) \
                     WHERE job = $1 AND owner = $2 AND epoch = $3",
                    &[&l.job, &l.owner, &l.epoch],
                )
                .await?;
                Ok(())
            },
        )
    }

    /// Every lease row, by job, with whether it is live by the database's clock.
    pub fn leases(&self) -> Result<Vec<LeaseRow>, StoreError> {
        self.run(
            || "listing job leases".into(),
            |pool| async move {
                let c = pool.get().await?;
                let rows = c
                    .query(
                        "SELECT job, owner, epoch, expires_at, expires_at > now() \
                         FROM scimsync_job_leases ORDER BY job",
                        &[],
                    )
                    .await?;
                rows.iter()
                    .map(|r| {
                        Ok(LeaseRow {
                            lease: lease_from(r)?,
                            live: r.try_get(4)?,
                        })
                    })
                    .collect()
            },
        )
    }

    /// A handle on the same database whose writes for `job` are refused unless the job's lease
    /// epoch is still `epoch`. Writes for other jobs are not checked.
    /// Epoch 0 refuses every write for `job` until [`PgStore::set_fence_epoch`].
    pub fn fenced(&self, job: &str, epoch: i64) -> PgStore {
        self.with_fence(Fence {
            job: job.to_owned(),
            epoch: Arc::new(AtomicI64::new(epoch)),
        })
    }

    /// Move a fenced handle to `epoch` (a lease just acquired) or to 0 (lease lost: refuse
    /// every write). Does nothing on a handle that is not fenced.
    pub fn set_fence_epoch(&self, epoch: i64) {
        if let Some(f) = self.fence() {
            f.epoch.store(epoch, Ordering::SeqCst);
        }
    }
}
