//! Versioned schema migrations, applied at open.
//!
//! Each migration runs in its own transaction that first takes a transaction-scoped advisory
//! lock, so two processes opening the same new database wait for each other instead of both
//! creating the tables; the second finds the version recorded and skips it. A database whose
//! schema is newer than this build knows is refused rather than written with old assumptions.

use crate::fail::Fail;
use tokio_postgres::Client;

struct Migration {
    version: i32,
    name: &'static str,
    sql: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("../migrations/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "job_leases",
        sql: include_str!("../migrations/0002_job_leases.sql"),
    },
    Migration {
        version: 3,
        name: "job_commands",
        sql: include_str!("../migrations/0003_job_commands.sql"),
    },
];

/// The schema version this build writes (the newest migration).
pub const SCHEMA_VERSION: i32 = 3;

/// "scimsync" in ASCII: the advisory lock key migrations serialise on.
const LOCK_KEY: i64 = 0x7363_696d_7379_6e63;

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS scimsync_schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)";

/// Apply the migrations the database lacks; returns the versions applied now.
pub(crate) async fn apply(client: &mut Client) -> Result<Vec<i32>, Fail> {
    let mut applied_now = Vec::new();
    for m in MIGRATIONS {
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
            .await?;
        tx.batch_execute(CREATE_TABLE).await?;
        let rows = tx
            .query(
                "SELECT version, name FROM scimsync_schema_migrations ORDER BY version",
                &[],
            )
            .await?;
        let mut known = Vec::with_capacity(rows.len());
        for row in &rows {
            let version: i32 = row.try_get(0)?;
            let name: String = row.try_get(1)?;
            known.push((version, name));
        }
        if let Some((newest, _)) = known.iter().max_by_key(|(v, _)| *v)
            && *newest > SCHEMA_VERSION
        {
            return Err(Fail(format!(
                "the database has schema version {newest}, newer than this scimsync knows \
                 ({SCHEMA_VERSION}); upgrade scimsync"
            )));
        }
        match known.iter().find(|(v, _)| *v == m.version) {
            Some((_, name)) if name == m.name => {}
            Some((_, name)) => {
                return Err(Fail(format!(
                    "schema version {} is recorded as {name:?}, this build calls it {:?}: \
                     the database was migrated by another program",
                    m.version, m.name
                )));
            }
            None => {
                tx.batch_execute(m.sql)
                    .await
                    .map_err(|e| Fail::from(e).context(&format!("migration {}", m.version)))?;
                tx.execute(
                    "INSERT INTO scimsync_schema_migrations (version, name) VALUES ($1, $2)",
                    &[&m.version, &m.name],
                )
                .await?;
                applied_now.push(m.version);
            }
        }
        tx.commit().await?;
    }
    Ok(applied_now)
}
