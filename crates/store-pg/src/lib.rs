//! The PostgreSQL [`StateStore`](scimsync_core::StateStore): the same objects, meta values,
//! records and provisioning logs as the sled store, in a database several machines can reach.
//!
//! **Client: `tokio-postgres` with a `deadpool-postgres` pool, TLS through rustls.**
//! `tokio-postgres` is the plain protocol client the async ecosystem builds on; with
//! `default-features = false` it brings no TLS stack of its own, and `tls.rs` hands it the rustls
//! (aws-lc-rs) stack and platform trust store the HTTP clients already use, so there is no
//! OpenSSL, native-tls or second crypto provider in the tree. `sqlx` would also do, but pulls a
//! query macro layer, its own pool and a migration runner we do not need for a dozen queries.
//!
//! **Sync trait, async client.** `StateStore` is synchronous and called from inside the
//! service's tokio runtime, where `block_on` panics. So a [`PgStore`] owns one thread with a
//! current-thread runtime and the pool (`worker.rs`); each call sends a closure there and waits
//! on a plain channel, like a blocking disk read. Calls from many threads run concurrently on
//! the pool's connections.
//!
//! **Transactions.** Every `StateStore::commit` is one SQL transaction: the object's upsert
//! or delete and its log row commit together or not at all. `StateStore::flush` does
//! nothing: a statement returns only after PostgreSQL committed it (durability is the
//! server's `synchronous_commit`), and nothing is buffered here.
//!
//! **Schema.** Versioned migrations (`migrations/*.sql`, embedded) are applied at open, each in
//! one transaction under an advisory lock, so two processes opening a new database at once are
//! safe (`migrate.rs`). Tables are prefixed `scimsync_`; every one is keyed by `job` first.
//!
//! **Leases and fencing** (`lease.rs`): `scimsync_job_leases(job, owner, epoch, expires_at)`
//! says which replica runs a job. A handle from [`PgStore::fenced`] checks, inside every
//! write's transaction, that the job's epoch is still its own, so a replica that lost its
//! lease (paused, partitioned) cannot write after another took over.
//!
//! **Forwarded actions** (`command.rs`): `scimsync_job_commands` queues an admin action taken
//! by a replica that does not run the job; the lease holder claims it, carries it out and
//! stores the outcome.
//!
//! **Secrets.** The password (in the URL or given apart) is never in an error, a log line or
//! `Debug`: the store describes its database as `postgres://user@host:port/dbname`.

mod command;
mod connect;
mod fail;
mod lease;
mod migrate;
mod rows;
mod store;
pub mod testing;
mod tls;
mod worker;

pub use command::{Claimed, CommandState};
pub use lease::{Lease, LeaseRow, refused_writes};
pub use migrate::SCHEMA_VERSION;
pub use store::PgStore;

/// Whether `value` names a PostgreSQL database (`postgres://` or `postgresql://`) rather than a
/// sled directory.
pub fn is_postgres_url(value: &str) -> bool {
    let lower = value.trim_start().to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}
