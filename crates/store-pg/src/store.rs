//! [`PgStore`]: [`StateStore`] and [`StoreAdmin`] in SQL.

use crate::connect::{self, Target};
use crate::fail::{Fail, POOL_TIMEOUT};
use crate::lease::{self, Fence};
use crate::rows::{
    OBJECT_COLUMNS, apply_change, insert_log, object_from, split_time, upsert_object,
};
use crate::tls::MakeRustls;
use crate::worker::{Worker, WorkerGone};
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use scimsync_core::{
    LogEntry, ObjectState, ObjectTarget, Secret, StateChange, StateStore, StoreError,
};
use scimsync_store::{StoreAdmin, check_job};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// Connections per store: enough for the service's jobs committing at once, few enough that
/// several replicas stay far below PostgreSQL's default `max_connections` (100).
const POOL_SIZE: usize = 8;

/// What a fenced write does inside its transaction (see [`PgStore::fenced_write`]).
type TxWork<'t, T> = Pin<Box<dyn Future<Output = Result<T, Fail>> + Send + 't>>;

/// A [`StateStore`] in a PostgreSQL database. Cheap to share behind an `Arc`; every call may
/// come from any thread, inside a tokio runtime or not.
pub struct PgStore {
    worker: Arc<Worker>,
    shown: String,
    url_password: Option<String>,
    /// Set on a handle from [`PgStore::fenced`]: writes for that job check its lease epoch.
    fence: Option<Fence>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("database", &self.shown)
            .finish()
    }
}

impl PgStore {
    /// Connect to the database `url` (`postgres://user[:password]@host[:port]/dbname`,
    /// `sslmode` and other libpq-style parameters allowed) and bring its schema up to date.
    /// `password`, when given, replaces one in the URL.
    pub fn open(url: &str, password: Option<&Secret>) -> Result<PgStore, StoreError> {
        let Target {
            config,
            shown,
            url_password,
        } = connect::parse(url, password)?;
        let tls = MakeRustls::new()?;
        let manager = Manager::from_config(
            config,
            tls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_TIMEOUT))
            .create_timeout(Some(POOL_TIMEOUT))
            .build()
            .map_err(|e| StoreError::new(format!("state store {shown}: {e}")))?;
        let store = PgStore {
            worker: Arc::new(Worker::start(pool, &shown)?),
            shown,
            url_password,
            fence: None,
        };
        let applied = store.run(
            || "connecting and bringing the schema up to date".into(),
            |pool| async move {
                let mut client = pool.get().await?;
                crate::migrate::apply(&mut client).await
            },
        )?;
        if !applied.is_empty() {
            tracing::info!(database = %store.shown, versions = ?applied, "state store schema migrated");
        }
        Ok(store)
    }

    /// Load one job's whole state in one transaction (`scimsync state migrate`). Refused when
    /// the job already has an object, a meta value or a log entry here: appending a second copy
    /// of its log, or mixing two histories, is never what a migration means.
    pub fn import_job(
        &self,
        job: &str,
        meta: &[(String, String)],
        objects: &[ObjectState],
        logs: &[LogEntry],
    ) -> Result<(), StoreError> {
        check_job(job)?;
        let j = job.to_owned();
        let (meta, objects, logs) = (meta.to_vec(), objects.to_vec(), logs.to_vec());
        self.run(
            || format!("importing job {job}"),
            |pool| async move {
                let mut c = pool.get().await?;
                let tx = c.transaction().await?;
                // Two imports of one job at once: the second waits, then finds the first's rows.
                tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&j])
                    .await?;
                let row = tx
                    .query_one(
                        "SELECT EXISTS (SELECT 1 FROM scimsync_objects WHERE job = $1)                          OR EXISTS (SELECT 1 FROM scimsync_meta WHERE job = $1)                          OR EXISTS (SELECT 1 FROM scimsync_logs WHERE job = $1)",
                        &[&j],
                    )
                    .await?;
                if row.try_get::<_, bool>(0)? {
                    return Err(Fail(
                        "the job already has state in this database; nothing was copied \
                         (import into a database without this job)"
                            .into(),
                    ));
                }
                for (key, value) in &meta {
                    tx.execute(
                        "INSERT INTO scimsync_meta (job, key, value) VALUES ($1, $2, $3)",
                        &[&j, key, value],
                    )
                    .await
                    .map_err(|e| Fail::from(e).context(&format!("meta {key:?}")))?;
                }
                for o in &objects {
                    upsert_object(&tx, &j, o)
                        .await
                        .map_err(|e| e.context(&format!("object {:?}", o.source_id)))?;
                }
                for e in &logs {
                    insert_log(&tx, &j, e).await?;
                }
                tx.commit().await?;
                Ok(())
            },
        )
    }

    /// `postgres://user@host:port/dbname`: the database, without the password.
    pub fn database(&self) -> &str {
        &self.shown
    }

    /// The same database and connections, writing under `fence`.
    pub(crate) fn with_fence(&self, fence: Fence) -> PgStore {
        PgStore {
            worker: self.worker.clone(),
            shown: self.shown.clone(),
            url_password: self.url_password.clone(),
            fence: Some(fence),
        }
    }

    pub(crate) fn fence(&self) -> Option<&Fence> {
        self.fence.as_ref()
    }

    /// Run `f` on the worker; a failure becomes a [`StoreError`] saying what was being done.
    pub(crate) fn run<T, F, Fut>(
        &self,
        doing: impl FnOnce() -> String,
        f: F,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(Pool) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, Fail>> + Send + 'static,
    {
        let fail = |why: String| {
            let message = format!("state store {}: {}: {why}", self.shown, doing());
            StoreError::new(connect::scrub(&message, self.url_password.as_deref()))
        };
        match self.worker.call(f) {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(Fail(why))) => Err(fail(why)),
            Err(WorkerGone) => Err(fail(
                "the call was lost (the database thread stopped, or the call panicked)".into(),
            )),
        }
    }
}

fn quoted(s: &str) -> String {
    format!("{s:?}")
}

impl PgStore {
    /// Run `work` for `job` in one transaction behind the lease check, then commit. Every
    /// write of the store goes through here: a replica whose lease was taken over writes
    /// nothing, and a write cut short leaves nothing half done.
    fn fenced_write<T, W>(
        &self,
        job: &str,
        doing: impl FnOnce() -> String,
        work: W,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        W: for<'t> FnOnce(&'t deadpool_postgres::Transaction<'t>, &'t str) -> TxWork<'t, T>
            + Send
            + 'static,
    {
        check_job(job)?;
        let (j, fence) = (job.to_owned(), self.fence.clone());
        self.run(doing, move |pool| async move {
            let mut c = pool.get().await?;
            let tx = c.transaction().await?;
            lease::check(&tx, fence.as_ref(), &j).await?;
            let out = work(&tx, &j).await?;
            tx.commit().await?;
            Ok(out)
        })
    }

    /// One statement (`$1` the job, `$2` the keys) over many records of a kind, in one
    /// transaction behind the lease check: a round trip for the batch, not one per record.
    fn on_records(
        &self,
        job: &str,
        kind: &str,
        ids: &[String],
        verb: &'static str,
        sql: &'static str,
    ) -> Result<(), StoreError> {
        check_job(job)?;
        if ids.is_empty() {
            return Ok(());
        }
        // Each key once: a key twice in one INSERT would make ON CONFLICT refuse it.
        let keys: Vec<String> = ids
            .iter()
            .map(|id| scimsync_core::record_key(kind, id))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let n = keys.len();
        self.fenced_write(
            job,
            || format!("{verb} {n} {kind} records of job {job}"),
            move |tx, j| {
                Box::pin(async move {
                    tx.execute(sql, &[&j, &keys]).await?;
                    Ok(())
                })
            },
        )
    }
}

impl StateStore for PgStore {
    fn get(&self, job: &str, source_id: &str) -> Result<Option<ObjectState>, StoreError> {
        check_job(job)?;
        let (j, id) = (job.to_owned(), source_id.to_owned());
        self.run(
            || format!("reading object {} of job {job}", quoted(source_id)),
            |pool| async move {
                let c = pool.get().await?;
                let sql = format!(
                    "SELECT {OBJECT_COLUMNS} FROM scimsync_objects WHERE job = $1 AND source_id = $2"
                );
                let statement = c.prepare_cached(&sql).await?;
                match c.query_opt(&statement, &[&j, &id]).await? {
                    Some(row) => Ok(Some(object_from(&row)?)),
                    None => Ok(None),
                }
            },
        )
    }

    /// One query for the lot: a quiet cycle asks for many objects, and each query is a round
    /// trip.
    fn get_many(&self, job: &str, ids: &[String]) -> Result<Vec<ObjectState>, StoreError> {
        check_job(job)?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let (j, wanted) = (job.to_owned(), ids.to_vec());
        self.run(
            || format!("reading {} objects of job {job}", ids.len()),
            |pool| async move {
                let c = pool.get().await?;
                let sql = format!(
                    "SELECT {OBJECT_COLUMNS} FROM scimsync_objects \
                     WHERE job = $1 AND source_id = ANY($2) ORDER BY source_id"
                );
                let statement = c.prepare_cached(&sql).await?;
                let rows = c.query(&statement, &[&j, &wanted]).await?;
                rows.iter().map(object_from).collect()
            },
        )
    }

    fn targets_many(&self, job: &str, ids: &[String]) -> Result<Vec<ObjectTarget>, StoreError> {
        check_job(job)?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let (j, wanted) = (job.to_owned(), ids.to_vec());
        self.run(
            || format!("reading where {} objects of job {job} stand", ids.len()),
            |pool| async move {
                let c = pool.get().await?;
                let statement = c
                    .prepare_cached(
                        "SELECT source_id, target_id, active FROM scimsync_objects \
                         WHERE job = $1 AND source_id = ANY($2) ORDER BY source_id",
                    )
                    .await?;
                let rows = c.query(&statement, &[&j, &wanted]).await?;
                rows.iter()
                    .map(|r| {
                        Ok(ObjectTarget {
                            source_id: r.try_get(0)?,
                            target_id: r.try_get(1)?,
                            active: r.try_get(2)?,
                        })
                    })
                    .collect()
            },
        )
    }

    fn list(&self, job: &str) -> Result<Vec<ObjectState>, StoreError> {
        self.list_prefix(job, "")
    }

    fn list_prefix(&self, job: &str, prefix: &str) -> Result<Vec<ObjectState>, StoreError> {
        check_job(job)?;
        let (j, p) = (job.to_owned(), prefix.to_owned());
        self.run(
            || format!("listing objects of job {job}"),
            |pool| async move {
                let c = pool.get().await?;
                let sql = format!(
                    "SELECT {OBJECT_COLUMNS} FROM scimsync_objects \
                     WHERE job = $1 AND starts_with(source_id, $2) ORDER BY source_id"
                );
                let statement = c.prepare_cached(&sql).await?;
                let rows = c.query(&statement, &[&j, &p]).await?;
                rows.iter().map(object_from).collect()
            },
        )
    }

    fn commit(&self, job: &str, change: &StateChange, log: &LogEntry) -> Result<(), StoreError> {
        let (change_owned, entry) = (change.clone(), log.clone());
        let what = match change {
            StateChange::Put(o) => format!("object {}", quoted(&o.source_id)),
            StateChange::Remove { source_id } => format!("removal of {}", quoted(source_id)),
            StateChange::None => format!("log entry for {}", quoted(&log.source_id)),
        };
        self.fenced_write(
            job,
            || format!("committing {what} of job {job}"),
            move |tx, j| {
                Box::pin(async move {
                    apply_change(tx, j, &change_owned).await?;
                    insert_log(tx, j, &entry).await
                })
            },
        )
    }

    /// One transaction and one fence check for the whole batch (a round trip per object is
    /// what made a large initial cycle slow on PostgreSQL).
    fn commit_batch(&self, job: &str, batch: &[(StateChange, LogEntry)]) -> Result<(), StoreError> {
        check_job(job)?;
        if batch.is_empty() {
            return Ok(());
        }
        let owned = batch.to_vec();
        self.fenced_write(
            job,
            || format!("committing {} object change(s) of job {job}", batch.len()),
            move |tx, j| {
                Box::pin(async move {
                    for (change, entry) in &owned {
                        apply_change(tx, j, change).await?;
                        insert_log(tx, j, entry).await?;
                    }
                    Ok(())
                })
            },
        )
    }

    fn logs(&self, job: &str, cycle_id: Option<&str>) -> Result<Vec<LogEntry>, StoreError> {
        check_job(job)?;
        let (j, cycle) = (job.to_owned(), cycle_id.map(str::to_owned));
        self.run(
            || format!("reading the log of job {job}"),
            |pool| async move {
                let c = pool.get().await?;
                let rows = match &cycle {
                    Some(cycle) => {
                        c.query(
                            "SELECT seq, entry::text FROM scimsync_logs \
                             WHERE job = $1 AND cycle_id = $2 ORDER BY seq",
                            &[&j, cycle],
                        )
                        .await?
                    }
                    None => {
                        c.query(
                            "SELECT seq, entry::text FROM scimsync_logs WHERE job = $1 ORDER BY seq",
                            &[&j],
                        )
                        .await?
                    }
                };
                rows.iter()
                    .map(|row| {
                        let seq: i64 = row.try_get(0)?;
                        let text: String = row.try_get(1)?;
                        serde_json::from_str(&text).map_err(|e| {
                            Fail(format!("log entry {seq} does not decode: {e}"))
                        })
                    })
                    .collect()
            },
        )
    }

    fn get_meta(&self, job: &str, key: &str) -> Result<Option<String>, StoreError> {
        check_job(job)?;
        let (j, k) = (job.to_owned(), key.to_owned());
        self.run(
            || format!("reading meta {} of job {job}", quoted(key)),
            |pool| async move {
                let c = pool.get().await?;
                let statement = c
                    .prepare_cached("SELECT value FROM scimsync_meta WHERE job = $1 AND key = $2")
                    .await?;
                let row = c.query_opt(&statement, &[&j, &k]).await?;
                Ok(match row {
                    Some(r) => Some(r.try_get(0)?),
                    None => None,
                })
            },
        )
    }

    fn put_meta(&self, job: &str, key: &str, value: &str) -> Result<(), StoreError> {
        let (k, v) = (key.to_owned(), value.to_owned());
        self.fenced_write(
            job,
            || format!("writing meta {} of job {job}", quoted(key)),
            move |tx, j| {
                Box::pin(async move {
                    let statement = tx
                        .prepare_cached(
                            "INSERT INTO scimsync_meta (job, key, value) VALUES ($1, $2, $3) \
                             ON CONFLICT (job, key) DO UPDATE SET value = EXCLUDED.value",
                        )
                        .await?;
                    tx.execute(&statement, &[&j, &k, &v]).await?;
                    Ok(())
                })
            },
        )
    }

    /// Nothing to do: every call above returned only after PostgreSQL committed it.
    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn prune_logs_before(&self, job: &str, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        StoreAdmin::prune_logs(self, job, cutoff)
    }

    fn remove_objects(&self, job: &str) -> Result<u64, StoreError> {
        self.fenced_write(
            job,
            || format!("removing the objects of job {job}"),
            |tx, j| {
                Box::pin(async move {
                    let sql = "DELETE FROM scimsync_objects WHERE job = $1";
                    Ok(tx.execute(sql, &[&j]).await?)
                })
            },
        )
    }

    fn scan_meta(&self, job: &str, prefix: &str) -> Result<Vec<(String, String)>, StoreError> {
        check_job(job)?;
        let (j, p) = (job.to_owned(), prefix.to_owned());
        self.run(
            || format!("reading meta {}* of job {job}", quoted(prefix)),
            |pool| async move {
                let c = pool.get().await?;
                let rows = c
                    .query(
                        "SELECT key, value FROM scimsync_meta \
                         WHERE job = $1 AND starts_with(key, $2) ORDER BY key",
                        &[&j, &p],
                    )
                    .await?;
                rows.iter()
                    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                    .collect()
            },
        )
    }

    fn mark_records(&self, job: &str, kind: &str, ids: &[String]) -> Result<(), StoreError> {
        self.on_records(
            job,
            kind,
            ids,
            "writing",
            "INSERT INTO scimsync_meta (job, key, value) SELECT $1, k, '' FROM unnest($2::text[]) AS k \
             ON CONFLICT (job, key) DO UPDATE SET value = EXCLUDED.value",
        )
    }

    fn put_records(
        &self,
        job: &str,
        kind: &str,
        records: &[(String, String)],
    ) -> Result<(), StoreError> {
        check_job(job)?;
        if records.is_empty() {
            return Ok(());
        }
        // Each key once, its last value: a key twice in one INSERT would make ON CONFLICT
        // refuse it.
        let by_key: std::collections::BTreeMap<String, &str> = records
            .iter()
            .map(|(id, v)| (scimsync_core::record_key(kind, id), v.as_str()))
            .collect();
        let values: Vec<String> = by_key.values().map(|v| (*v).to_owned()).collect();
        let keys: Vec<String> = by_key.into_keys().collect();
        let n = keys.len();
        self.fenced_write(
            job,
            || format!("writing {n} {kind} records of job {job}"),
            move |tx, j| {
                Box::pin(async move {
                    let sql = "INSERT INTO scimsync_meta (job, key, value) \
                               SELECT $1, k, v FROM unnest($2::text[], $3::text[]) AS t(k, v) \
                               ON CONFLICT (job, key) DO UPDATE SET value = EXCLUDED.value";
                    tx.execute(sql, &[&j, &keys, &values]).await?;
                    Ok(())
                })
            },
        )
    }

    fn remove_records(&self, job: &str, kind: &str, ids: &[String]) -> Result<(), StoreError> {
        let sql = "DELETE FROM scimsync_meta WHERE job = $1 AND key = ANY($2)";
        self.on_records(job, kind, ids, "removing", sql)
    }

    fn remove_meta(&self, job: &str, key: &str) -> Result<(), StoreError> {
        let k = key.to_owned();
        self.fenced_write(
            job,
            || format!("removing meta {} of job {job}", quoted(key)),
            move |tx, j| {
                Box::pin(async move {
                    let sql = "DELETE FROM scimsync_meta WHERE job = $1 AND key = $2";
                    tx.execute(sql, &[&j, &k]).await?;
                    Ok(())
                })
            },
        )
    }
}

impl StoreAdmin for PgStore {
    fn jobs(&self) -> Result<Vec<String>, StoreError> {
        self.run(
            || "listing jobs".into(),
            |pool| async move {
                let c = pool.get().await?;
                let rows = c
                    .query(
                        "SELECT job FROM scimsync_objects UNION SELECT job FROM scimsync_meta \
                         UNION SELECT job FROM scimsync_logs ORDER BY 1",
                        &[],
                    )
                    .await?;
                rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
            },
        )
    }

    fn meta_entries(&self, job: &str) -> Result<Vec<(String, String)>, StoreError> {
        self.scan_meta(job, "")
    }

    fn put_object(&self, job: &str, object: &ObjectState) -> Result<(), StoreError> {
        let o = object.clone();
        self.fenced_write(
            job,
            || format!("writing object {} of job {job}", quoted(&object.source_id)),
            move |tx, j| Box::pin(async move { upsert_object(tx, j, &o).await }),
        )
    }

    fn append_log(&self, job: &str, entry: &LogEntry) -> Result<(), StoreError> {
        let e = entry.clone();
        self.fenced_write(
            job,
            || format!("writing a log entry of job {job}"),
            move |tx, j| Box::pin(async move { insert_log(tx, j, &e).await }),
        )
    }

    fn prune_logs(&self, job: &str, older_than: DateTime<Utc>) -> Result<u64, StoreError> {
        let (at, ns) = split_time(older_than);
        self.fenced_write(
            job,
            || format!("pruning the log of job {job}"),
            move |tx, j| {
                Box::pin(async move {
                    let sql = "DELETE FROM scimsync_logs WHERE job = $1 \
                               AND (activity_at, activity_ns) < ($2, $3)";
                    Ok(tx.execute(sql, &[&j, &at, &ns]).await?)
                })
            },
        )
    }
}
