//! Why a database call failed, as text the store prefixes with what it was doing.

use deadpool_postgres::PoolError;
use std::error::Error as _;

/// How long a call waits for a free connection, or for a new one, before it fails.
pub(crate) const POOL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Why a database call failed, before the store adds what it was doing.
#[derive(Debug)]
pub(crate) struct Fail(pub String);

impl Fail {
    pub fn context(self, what: &str) -> Fail {
        Fail(format!("{what}: {}", self.0))
    }
}

impl From<tokio_postgres::Error> for Fail {
    fn from(e: tokio_postgres::Error) -> Fail {
        Fail(describe(&e))
    }
}

impl From<PoolError> for Fail {
    fn from(e: PoolError) -> Fail {
        match e {
            PoolError::Backend(e) => Fail(describe(&e)),
            PoolError::Timeout(_) => Fail(format!(
                "no database connection within {} s (is PostgreSQL up and reachable?)",
                POOL_TIMEOUT.as_secs()
            )),
            other => Fail(other.to_string()),
        }
    }
}

impl From<serde_json::Error> for Fail {
    fn from(e: serde_json::Error) -> Fail {
        Fail(e.to_string())
    }
}

/// A `tokio_postgres` error with its cause: the server's code and message, or the I/O error.
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = format!("{} {}: {}", db.severity(), db.code().code(), db.message());
        if let Some(detail) = db.detail() {
            s.push_str(&format!(" ({detail})"));
        }
        return s;
    }
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(&format!(": {c}"));
        cause = c.source();
    }
    s
}
