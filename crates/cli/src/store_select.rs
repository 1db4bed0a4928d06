//! Which state store a command opens, and `scimsync state migrate`.
//!
//! By default each job's state is a sled database in `<--state>/<job>`. `--store URL` (or
//! `SCIMSYNC_STORE`, or `[store] url` in the service file of the command's `--config-dir`)
//! selects one PostgreSQL database for every job instead; its password comes from the URL,
//! `--store-password env:NAME|file:PATH`, or `[store] password`. The choice is made once per
//! process, before the command runs, so the commands keep calling [`open`] with the state
//! directory as before.

use anyhow::{Context, Result, anyhow, bail};
use chrono::{DateTime, Utc};
use scimsync_config::{SERVICE_FILE, SecretRef};
use scimsync_core::{
    LogEntry, ObjectState, ObjectTarget, Secret, StateChange, StateStore, StoreError,
};
use scimsync_store::{SledStore, StoreAdmin};
use scimsync_store_pg::PgStore;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// The store one job's state is read from and written to.
pub enum Store {
    Sled(SledStore),
    /// Shared by every job of the process: one connection pool.
    Postgres(Arc<PgStore>),
}

impl Store {
    /// The sled directory, for the size-on-disk metric; `None` on PostgreSQL.
    pub fn dir(&self) -> Option<PathBuf> {
        match self {
            Store::Sled(s) => Some(s.dir().to_path_buf()),
            Store::Postgres(_) => None,
        }
    }
}

/// Where the state lives: the PostgreSQL database, when one was selected.
struct Postgres {
    url: Secret,
    password: Option<Secret>,
    /// `[store] lease_ttl` (the default with `--store`): how long `serve`'s job leases last.
    lease_ttl: std::time::Duration,
    /// Opened on first use, then shared.
    open: Mutex<Option<Arc<PgStore>>>,
}

static SELECTED: OnceLock<Option<Postgres>> = OnceLock::new();

/// Decide the store for this process from `--store` / `--store-password` or the service file
/// of the command's config directory. Call once, before the command.
pub(crate) fn select(cli: &crate::Cli) -> Result<()> {
    let chosen = match &cli.store {
        // The demo keeps its throw-away state in a temp dir, whatever is selected.
        _ if is_demo(&cli.command) => None,
        Some(value) => Some(postgres_from_flags(value, cli.store_password.as_deref())?),
        None => match config_dir(&cli.command).map(|d| d.join(SERVICE_FILE)) {
            Some(file) if file.is_file() => from_service_file(&file)?,
            _ => None,
        },
    };
    SELECTED
        .set(chosen)
        .map_err(|_| anyhow!("the state store was already selected"))
}

#[cfg(feature = "demo")]
fn is_demo(command: &crate::Command) -> bool {
    matches!(command, crate::Command::Demo { .. })
}

#[cfg(not(feature = "demo"))]
fn is_demo(_: &crate::Command) -> bool {
    false
}

fn config_dir(command: &crate::Command) -> Option<&Path> {
    use crate::Command as C;
    match command {
        C::Serve { config_dir, .. } => Some(config_dir),
        C::Run { job, .. }
        | C::Preview { job, .. }
        | C::Restart { job, .. }
        | C::ApproveDeletions { job, .. }
        | C::Provision { job, .. } => job.config_dir.as_deref(),
        C::Status(args) => args.config_dir.as_deref(),
        C::Logs(args) => args.job.config_dir.as_deref(),
        _ => None,
    }
}

fn postgres_from_flags(value: &str, password: Option<&str>) -> Result<Postgres> {
    let url = resolve_url(value).context("--store")?;
    let password = match password {
        Some(p) => Some(resolve_ref(p, "--store-password", false)?),
        None => None,
    };
    Ok(Postgres {
        url,
        password,
        lease_ttl: scimsync_config::DEFAULT_LEASE_TTL,
        open: Mutex::new(None),
    })
}

/// `--store`'s value: a `postgres://` URL, or `env:NAME` / `file:PATH` holding one.
fn resolve_url(value: &str) -> Result<Secret> {
    let url = resolve_ref(value, "the store URL", true)?;
    if !scimsync_store_pg::is_postgres_url(url.expose()) {
        bail!(
            "expected a postgres:// URL (sled state is the default and needs no --store; \
             its directory is --state)"
        );
    }
    Ok(url)
}

fn resolve_ref(value: &str, what: &str, literal_ok: bool) -> Result<Secret> {
    let r = SecretRef::parse(value).map_err(|e| anyhow!("{what}: {e}"))?;
    if r.is_literal() && !literal_ok {
        bail!("{what}: give env:NAME or file:PATH, not the password itself");
    }
    r.resolve().map_err(|e| anyhow!("{what}: {e}"))
}

fn from_service_file(file: &Path) -> Result<Option<Postgres>> {
    let service = scimsync_config::load_service(file).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        anyhow!("{}", lines.join("\n"))
    })?;
    let Some(store) = service.store else {
        return Ok(None);
    };
    let url = store
        .url
        .resolve()
        .map_err(|e| anyhow!("{}: store.url: {e}", file.display()))?;
    if !scimsync_store_pg::is_postgres_url(url.expose()) {
        bail!("{}: store.url: expected a postgres:// URL", file.display());
    }
    let password = match &store.password {
        Some(p) => Some(
            p.resolve()
                .map_err(|e| anyhow!("{}: store.password: {e}", file.display()))?,
        ),
        None => None,
    };
    Ok(Some(Postgres {
        url,
        password,
        lease_ttl: store.lease_ttl,
        open: Mutex::new(None),
    }))
}

impl Postgres {
    fn store(&self) -> Result<Arc<PgStore>, StoreError> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = open.as_ref() {
            return Ok(s.clone());
        }
        let store = Arc::new(PgStore::open(self.url.expose(), self.password.as_ref())?);
        *open = Some(store.clone());
        Ok(store)
    }
}

fn selected() -> Option<&'static Postgres> {
    SELECTED.get().and_then(Option::as_ref)
}

/// The job's lease (which replica runs it) when the state is on PostgreSQL.
pub fn lease_status(job: &str) -> Option<scimsync_service::LeaseStatus> {
    let store = selected()?.store().ok()?;
    crate::leases::lease_status(&store, job)
}

/// The job lease TTL when the state is on PostgreSQL (`serve` then shares jobs by lease).
pub fn lease_ttl() -> Option<std::time::Duration> {
    selected().map(|pg| pg.lease_ttl)
}

/// Open (create) the job's store: its sled directory under `state_dir`, or the selected
/// PostgreSQL database.
pub fn open(state_dir: &Path, job: &str) -> Result<Store> {
    if let Some(pg) = selected() {
        return Ok(Store::Postgres(pg.store().map_err(|e| anyhow!("{e}"))?));
    }
    let dir = state_dir.join(job);
    std::fs::create_dir_all(state_dir)
        .with_context(|| format!("cannot create state directory {}", state_dir.display()))?;
    let (store, report) = SledStore::open(&dir).map_err(|e| anyhow!("{e}"))?;
    if let Some(moved) = report.moved_aside {
        eprintln!(
            "warning: the state of job {job} was damaged ({}) and was moved to {}; \
             the next cycle re-matches every object (no duplicates are created)",
            report.reason.as_deref().unwrap_or("unreadable"),
            moved.display()
        );
    }
    Ok(Store::Sled(store))
}

/// Whether the job has state to read (a preview of a job that never ran writes nothing).
pub fn has_state(state_dir: &Path, job: &str) -> bool {
    match selected() {
        // The database is shared; opening it creates no per-job state.
        Some(_) => true,
        None => state_dir.join(job).exists(),
    }
}

/// Open the job's existing sled store without creating one; a store held by a running
/// `serve` is `Ok(None)`. On PostgreSQL there is no lock: the store is always opened.
pub fn open_existing(state_dir: &Path, job: &str) -> Result<Option<Store>, String> {
    if let Some(pg) = selected() {
        return pg
            .store()
            .map(|s| Some(Store::Postgres(s)))
            .map_err(|e| e.to_string());
    }
    let dir = state_dir.join(job);
    if !dir.is_dir() {
        return Err(format!(
            "no state for job {job:?} in {} (has it run? give --state, or --store for PostgreSQL)",
            state_dir.display()
        ));
    }
    match SledStore::open(&dir) {
        Ok((s, _)) => Ok(Some(Store::Sled(s))),
        Err(e) if e.message.contains("locked") => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

macro_rules! each {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            Store::Sled($s) => $e,
            Store::Postgres($s) => $e,
        }
    };
}

// Every method is forwarded, the provided ones too: a default left in place here would
// bypass the backend's batched override (one PostgreSQL round trip per id).
impl StateStore for Store {
    fn get(&self, job: &str, source_id: &str) -> Result<Option<ObjectState>, StoreError> {
        each!(self, s => s.get(job, source_id))
    }
    fn get_many(&self, job: &str, ids: &[String]) -> Result<Vec<ObjectState>, StoreError> {
        each!(self, s => s.get_many(job, ids))
    }
    fn targets_many(&self, job: &str, ids: &[String]) -> Result<Vec<ObjectTarget>, StoreError> {
        each!(self, s => s.targets_many(job, ids))
    }
    fn list(&self, job: &str) -> Result<Vec<ObjectState>, StoreError> {
        each!(self, s => s.list(job))
    }
    fn list_prefix(&self, job: &str, prefix: &str) -> Result<Vec<ObjectState>, StoreError> {
        each!(self, s => s.list_prefix(job, prefix))
    }
    fn commit(&self, job: &str, change: &StateChange, log: &LogEntry) -> Result<(), StoreError> {
        each!(self, s => s.commit(job, change, log))
    }
    fn commit_batch(&self, job: &str, batch: &[(StateChange, LogEntry)]) -> Result<(), StoreError> {
        each!(self, s => s.commit_batch(job, batch))
    }
    fn logs(&self, job: &str, cycle_id: Option<&str>) -> Result<Vec<LogEntry>, StoreError> {
        each!(self, s => s.logs(job, cycle_id))
    }
    fn get_meta(&self, job: &str, key: &str) -> Result<Option<String>, StoreError> {
        each!(self, s => s.get_meta(job, key))
    }
    fn put_meta(&self, job: &str, key: &str, value: &str) -> Result<(), StoreError> {
        each!(self, s => s.put_meta(job, key, value))
    }
    fn flush(&self) -> Result<(), StoreError> {
        each!(self, s => s.flush())
    }
    fn prune_logs_before(&self, job: &str, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        each!(self, s => s.prune_logs_before(job, cutoff))
    }
    fn remove_objects(&self, job: &str) -> Result<u64, StoreError> {
        each!(self, s => s.remove_objects(job))
    }
    fn scan_meta(&self, job: &str, prefix: &str) -> Result<Vec<(String, String)>, StoreError> {
        each!(self, s => s.scan_meta(job, prefix))
    }
    fn remove_meta(&self, job: &str, key: &str) -> Result<(), StoreError> {
        each!(self, s => s.remove_meta(job, key))
    }
    fn get_record(&self, job: &str, kind: &str, id: &str) -> Result<Option<String>, StoreError> {
        each!(self, s => s.get_record(job, kind, id))
    }
    fn put_record(&self, job: &str, kind: &str, id: &str, value: &str) -> Result<(), StoreError> {
        each!(self, s => s.put_record(job, kind, id, value))
    }
    fn remove_record(&self, job: &str, kind: &str, id: &str) -> Result<(), StoreError> {
        each!(self, s => s.remove_record(job, kind, id))
    }
    fn list_records(&self, job: &str, kind: &str) -> Result<Vec<(String, String)>, StoreError> {
        each!(self, s => s.list_records(job, kind))
    }
    fn mark_records(&self, job: &str, kind: &str, ids: &[String]) -> Result<(), StoreError> {
        each!(self, s => s.mark_records(job, kind, ids))
    }
    fn put_records(
        &self,
        job: &str,
        kind: &str,
        records: &[(String, String)],
    ) -> Result<(), StoreError> {
        each!(self, s => s.put_records(job, kind, records))
    }
    fn remove_records(&self, job: &str, kind: &str, ids: &[String]) -> Result<(), StoreError> {
        each!(self, s => s.remove_records(job, kind, ids))
    }
}

impl StoreAdmin for Store {
    fn jobs(&self) -> Result<Vec<String>, StoreError> {
        each!(self, s => s.jobs())
    }
    fn meta_entries(&self, job: &str) -> Result<Vec<(String, String)>, StoreError> {
        each!(self, s => s.meta_entries(job))
    }
    fn put_object(&self, job: &str, object: &ObjectState) -> Result<(), StoreError> {
        each!(self, s => s.put_object(job, object))
    }
    fn append_log(&self, job: &str, entry: &LogEntry) -> Result<(), StoreError> {
        each!(self, s => s.append_log(job, entry))
    }
    fn prune_logs(&self, job: &str, older_than: DateTime<Utc>) -> Result<u64, StoreError> {
        each!(self, s => s.prune_logs(job, older_than))
    }
}

/// `scimsync state …`.
#[derive(Debug, clap::Subcommand)]
pub enum StateCommand {
    /// Copy every job's state (objects, meta and records, logs) from sled directories into a
    /// PostgreSQL database, so the jobs continue there without matching again. Stop `serve`
    /// first. A job that already has state in the database is refused, never mixed.
    Migrate {
        /// The sled state directory (`--state`, one database per job), or one job's database.
        #[arg(long)]
        from: PathBuf,
        /// The database: a postgres:// URL, or env:NAME / file:PATH holding one.
        #[arg(long)]
        to: String,
        /// env:NAME or file:PATH holding the database password (replaces one in the URL).
        #[arg(long)]
        to_password: Option<String>,
        /// Only this job.
        #[arg(long)]
        job: Option<String>,
    },
}

pub fn state_command(command: &StateCommand) -> u8 {
    match command {
        StateCommand::Migrate {
            from,
            to,
            to_password,
            job,
        } => {
            let done = postgres_from_flags(to, to_password.as_deref())
                .and_then(|pg| pg.store().map_err(|e| anyhow!("{e}")))
                .and_then(|dst| migrate(from, &dst, job.as_deref()));
            match done {
                Ok(jobs) if jobs.is_empty() => {
                    eprintln!("error: no job state found in {}", from.display());
                    crate::EXIT_FAILED
                }
                Ok(jobs) => {
                    for m in &jobs {
                        println!(
                            "job {}: {} objects, {} meta values and records, {} log entries copied",
                            m.job, m.objects, m.meta, m.logs
                        );
                    }
                    0
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    crate::EXIT_FAILED
                }
            }
        }
    }
}

/// What [`migrate`] copied for one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    pub job: String,
    pub objects: usize,
    pub meta: usize,
    pub logs: usize,
}

/// Copy the sled stores under `from` (or `from` itself, when it is one job's store) into
/// `to`, each job in one transaction, and check the copy reads back equal.
pub fn migrate(from: &Path, to: &PgStore, only: Option<&str>) -> Result<Vec<Migrated>> {
    let mut dirs: Vec<PathBuf> = if is_sled_dir(from) {
        vec![from.to_path_buf()]
    } else {
        let entries = std::fs::read_dir(from)
            .with_context(|| format!("cannot read the state directory {}", from.display()))?;
        let mut dirs = Vec::new();
        for entry in entries {
            let path = entry
                .with_context(|| format!("cannot read the state directory {}", from.display()))?
                .path();
            if is_sled_dir(&path) {
                dirs.push(path);
            }
        }
        dirs
    };
    dirs.sort();
    let mut done = Vec::new();
    for dir in dirs {
        let (src, _) = SledStore::open(&dir)
            .map_err(|e| anyhow!("{e} (is `scimsync serve` running? stop it before migrating)"))?;
        for job in src.jobs().map_err(|e| anyhow!("{e}"))? {
            if only.is_some_and(|o| o != job) {
                continue;
            }
            done.push(copy_job(&src, to, &job)?);
        }
    }
    Ok(done)
}

/// A sled database directory (not the state directory holding several).
fn is_sled_dir(path: &Path) -> bool {
    path.join("conf").is_file() && path.join("db").is_file()
}

fn copy_job(src: &SledStore, dst: &PgStore, job: &str) -> Result<Migrated> {
    let e = |e: StoreError| anyhow!("job {job}: {e}");
    let meta = src.meta_entries(job).map_err(e)?;
    let objects = src.list(job).map_err(e)?;
    let logs = src.logs(job, None).map_err(e)?;
    dst.import_job(job, &meta, &objects, &logs).map_err(e)?;
    // Read back: the jobs must continue exactly where they were.
    let same = dst.meta_entries(job).map_err(e)? == meta
        && dst.list(job).map_err(e)? == objects
        && dst.logs(job, None).map_err(e)? == logs;
    if !same {
        bail!(
            "job {job}: the copy in {} does not read back equal",
            dst.database()
        );
    }
    Ok(Migrated {
        job: job.to_owned(),
        objects: objects.len(),
        meta: meta.len(),
        logs: logs.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use scimsync_store::conformance::{fill_two_jobs, log_entry, object};
    use scimsync_store_pg::testing::TestDb;

    #[test]
    fn migrate_copies_every_job_from_sled_and_refuses_to_mix() {
        let Some(db) = TestDb::create() else { return };
        let state = tempfile::tempdir().unwrap();
        {
            let (one, _) = SledStore::open(&state.path().join("one")).unwrap();
            fill_two_jobs(&one); // jobs a and ab in one directory, as an old layout might
            let (two, _) = SledStore::open(&state.path().join("two")).unwrap();
            two.commit(
                "two",
                &StateChange::Put(object("u1", "t1")),
                &log_entry("two", "c1", "u1"),
            )
            .unwrap();
            two.put_record("two", "escrow", "u9", "{\"due\":1}")
                .unwrap();
        }
        std::fs::create_dir(state.path().join("not-a-store")).unwrap();
        let pg = PgStore::open(&db.url, None).unwrap();
        let done = migrate(state.path(), &pg, None).unwrap();
        let jobs: Vec<&str> = done.iter().map(|m| m.job.as_str()).collect();
        assert_eq!(jobs, ["a", "ab", "two"]);
        assert_eq!(
            done[2],
            Migrated {
                job: "two".into(),
                objects: 1,
                meta: 1,
                logs: 1
            }
        );
        assert_eq!(
            pg.get_record("two", "escrow", "u9").unwrap().as_deref(),
            Some("{\"due\":1}")
        );
        let (one, _) = SledStore::open(&state.path().join("one")).unwrap();
        assert_eq!(pg.list("a").unwrap(), one.list("a").unwrap());
        assert_eq!(pg.logs("ab", None).unwrap(), one.logs("ab", None).unwrap());
        drop(one);
        // A second run would duplicate the logs: refused, and nothing changes.
        let err = migrate(&state.path().join("two"), &pg, None).unwrap_err();
        assert!(format!("{err:#}").contains("already has state"), "{err:#}");
        assert_eq!(pg.logs("two", None).unwrap().len(), 1);
    }

    #[test]
    fn migrate_of_a_held_store_says_to_stop_serve() {
        let Some(db) = TestDb::create() else { return };
        let state = tempfile::tempdir().unwrap();
        let (held, _) = SledStore::open(&state.path().join("j")).unwrap();
        held.put_meta("j", "k", "v").unwrap();
        held.flush().unwrap();
        let pg = PgStore::open(&db.url, None).unwrap();
        let err = migrate(state.path(), &pg, None).unwrap_err();
        assert!(
            format!("{err:#}").contains("stop it before migrating"),
            "{err:#}"
        );
    }

    #[test]
    fn the_service_file_selects_postgres_with_the_password_from_a_reference() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(SERVICE_FILE);
        let pw = dir.path().join("pg-password");
        std::fs::write(&pw, "Pw-From-File\n").unwrap();
        std::fs::write(
            &file,
            format!(
                "[store]\nurl = \"postgres://app@db.internal/state\"\npassword = \"file:{}\"\n",
                pw.display()
            ),
        )
        .unwrap();
        let pg = from_service_file(&file).unwrap().expect("a store");
        assert_eq!(pg.url.expose(), "postgres://app@db.internal/state");
        assert_eq!(
            pg.password.as_ref().map(Secret::expose),
            Some("Pw-From-File")
        );
        std::fs::write(&file, "[admin]\n").unwrap();
        assert!(
            from_service_file(&file).unwrap().is_none(),
            "no [store]: sled"
        );
        std::fs::write(&file, "[store]\nurl = \"/var/lib/scimsync\"\n").unwrap();
        let err = from_service_file(&file).err().expect("not a postgres URL");
        assert!(format!("{err:#}").contains("store.url"), "{err:#}");
    }

    #[test]
    fn the_store_flag_takes_only_postgres_urls_and_password_references() {
        assert!(postgres_from_flags("/var/lib/scimsync", None).is_err());
        assert!(postgres_from_flags("postgres://u@h/d", Some("hunter2")).is_err());
        assert!(postgres_from_flags("postgres://u@h/d", Some("env:NO_SUCH_VAR_X1")).is_err());
        let pg = postgres_from_flags("postgresql://u@h/d", None).unwrap();
        assert!(pg.password.is_none());
    }
}
