//! Reading the URL: a `tokio_postgres::Config`, and a description of the database that is
//! safe to print (never the password).

use scimsync_core::{Secret, StoreError};
use std::str::FromStr;
use std::time::Duration;
use tokio_postgres::config::Host;

/// How long opening a connection may take before the call fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct Target {
    pub config: tokio_postgres::Config,
    /// `postgres://user@host:port/dbname`: for messages and `Debug`.
    pub shown: String,
    /// The password as written in the URL, to scrub it from any message a library makes.
    pub url_password: Option<String>,
}

/// Parse `url`; `password`, when given, replaces one in the URL.
pub(crate) fn parse(url: &str, password: Option<&Secret>) -> Result<Target, StoreError> {
    let url_password = password_in(url).map(str::to_owned);
    let mut config = tokio_postgres::Config::from_str(url).map_err(|e| {
        StoreError::new(scrub(
            &format!(
                "state store: the PostgreSQL URL {} is invalid: {}",
                redact_url(url),
                crate::fail::describe(&e)
            ),
            url_password.as_deref(),
        ))
    })?;
    if let Some(p) = password {
        config.password(p.expose());
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name("scimsync");
    }
    let shown = show(&config);
    Ok(Target {
        config,
        shown,
        url_password,
    })
}

fn show(config: &tokio_postgres::Config) -> String {
    let user = config
        .get_user()
        .map(|u| format!("{u}@"))
        .unwrap_or_default();
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = match h {
                Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                Host::Unix(path) => path.display().to_string(),
            };
            match ports.get(i).or(ports.first()) {
                Some(p) => format!("{host}:{p}"),
                None => host,
            }
        })
        .collect();
    let db = config.get_dbname().unwrap_or("");
    format!("postgres://{user}{}/{db}", hosts.join(","))
}

/// The password of a `postgres://user:password@host/...` URL, if it has one.
fn password_in(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let userinfo = authority.rsplit_once('@')?.0;
    let (_, pass) = userinfo.split_once(':')?;
    (!pass.is_empty()).then_some(pass)
}

/// `url` with the password of its user info replaced by `***`.
pub(crate) fn redact_url(url: &str) -> String {
    match password_in(url) {
        Some(p) => url.replacen(&format!(":{p}@"), ":***@", 1),
        None => url.to_owned(),
    }
}

/// `message` with every occurrence of `password` replaced (belt and braces: no library message
/// we know quotes it, but a new version might).
pub(crate) fn scrub(message: &str, password: Option<&str>) -> String {
    match password {
        Some(p) if p.len() >= 2 => message.replace(p, "***"),
        _ => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shown_url_has_no_password() {
        let t = parse("postgres://app:s3cr3t-pw@db.example:5433/state", None).unwrap();
        assert_eq!(t.shown, "postgres://app@db.example:5433/state");
        assert_eq!(t.url_password.as_deref(), Some("s3cr3t-pw"));
        assert_eq!(
            redact_url("postgresql://app:s3cr3t-pw@db/x?sslmode=require"),
            "postgresql://app:***@db/x?sslmode=require"
        );
        assert_eq!(password_in("postgres://app@db/x"), None);
        assert_eq!(password_in("postgres://db/x"), None);
    }

    #[test]
    fn an_invalid_url_is_reported_without_its_password() {
        let err = parse("postgres://app:hunter2-secret@db:notaport/x", None)
            .err()
            .expect("invalid port");
        assert!(!err.message.contains("hunter2-secret"), "{}", err.message);
        assert!(err.message.contains("invalid"), "{}", err.message);
    }
}
