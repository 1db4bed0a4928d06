//! For tests that need PostgreSQL: the server comes from `SCIMSYNC_TEST_POSTGRES_URL`, and each
//! test gets its own fresh database, so tests run in parallel and leave nothing behind.
//!
//! Without the variable a test is skipped loudly, or fails when `SCIMSYNC_REQUIRE_POSTGRES=1`
//! (CI sets it), so a missing server never passes silently. `scripts/pg-test-cluster.sh`
//! starts a throw-away server.

use std::sync::atomic::{AtomicU32, Ordering};

pub const URL_VAR: &str = "SCIMSYNC_TEST_POSTGRES_URL";
pub const REQUIRE_VAR: &str = "SCIMSYNC_REQUIRE_POSTGRES";

/// The server URL, or `None` after printing why the test is skipped. Panics when
/// `SCIMSYNC_REQUIRE_POSTGRES=1` and the URL is missing.
pub fn server_url() -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            if std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1") {
                panic!(
                    "{REQUIRE_VAR}=1 but {URL_VAR} is not set: this test needs PostgreSQL \
                     (start one with `eval \"$(scripts/pg-test-cluster.sh start)\"`)"
                );
            }
            eprintln!(
                "SKIPPED: no PostgreSQL (set {URL_VAR}; scripts/pg-test-cluster.sh starts one)"
            );
            None
        }
    }
}

/// A fresh database on the test server, dropped (with its connections) when this is.
pub struct TestDb {
    server: String,
    name: String,
    /// The URL of the fresh database.
    pub url: String,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl TestDb {
    /// A new empty database, or `None` when the test is skipped (see [`server_url`]).
    pub fn create() -> Option<TestDb> {
        let server = server_url()?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "scimsync_test_{}_{}_{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        admin_sql(&server, &format!("CREATE DATABASE {name}"));
        let url = with_dbname(&server, &name);
        Some(TestDb { server, name, url })
    }

    /// Run SQL on the fresh database from a connection of its own (e.g. to break things).
    pub fn sql(&self, sql: &str) {
        admin_sql(&self.url, sql);
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        admin_sql(
            &self.server,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

/// `url` with its database name replaced by `name` (`…/old?x` → `…/name?x`).
pub fn with_dbname(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_end = base
        .split_once("://")
        .map(|(scheme, rest)| scheme.len() + 3 + rest.find('/').unwrap_or(rest.len()))
        .unwrap_or(0);
    let mut out = format!("{}/{name}", &base[..authority_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// Run `sql` on `url` from a thread of its own (the caller may be inside a runtime).
fn admin_sql(url: &str, sql: &str) {
    let (url, batch) = (url.to_owned(), sql.to_owned());
    let outcome = std::thread::spawn(move || -> Result<(), String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(async {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .map_err(|e| crate::fail::describe(&e))?;
            let driver = tokio::spawn(connection);
            let done = client
                .batch_execute(&batch)
                .await
                .map_err(|e| crate::fail::describe(&e));
            drop(client);
            let _ = driver.await;
            done
        })
    })
    .join();
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("test database: {sql:?} failed: {e}"),
        Err(_) => panic!("test database: the thread running {sql:?} panicked"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn with_dbname_replaces_only_the_name() {
        use super::with_dbname;
        assert_eq!(
            with_dbname("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            with_dbname("postgres://u:p@h/db?sslmode=disable", "t2"),
            "postgres://u:p@h/t2?sslmode=disable"
        );
        assert_eq!(with_dbname("postgres://h", "t3"), "postgres://h/t3");
    }
}
