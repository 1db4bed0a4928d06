//! The rule shared by validation and the SMTP notifier: credentials never travel in cleartext,
//! except to a loopback host (a relay on the same machine), as the webhook allows plain http
//! only to loopback.

use crate::{Smtp, SmtpTls};
use std::net::IpAddr;

impl Smtp {
    /// Whether `host` is loopback: `localhost`, 127.0.0.0/8 or `::1` (with or without
    /// brackets). Other names are not resolved: a name is judged as written.
    pub fn host_is_loopback(&self) -> bool {
        is_loopback_host(&self.host)
    }

    /// Whether a username or password is set.
    pub fn has_credentials(&self) -> bool {
        self.username.is_some() || self.password.is_some()
    }

    /// Whether these settings would send credentials over plain TCP to a host that is not
    /// loopback: refused by validation and by the notifier.
    pub fn credentials_in_cleartext(&self) -> bool {
        self.tls == SmtpTls::None && self.has_credentials() && !self.host_is_loopback()
    }
}

pub(crate) fn is_loopback_host(host: &str) -> bool {
    let host = host.trim().trim_end_matches('.');
    let unbracketed = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    match unbracketed.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_judged_as_written() {
        for h in [
            "localhost",
            "LocalHost",
            "localhost.",
            "127.0.0.1",
            "127.8.9.10",
            "::1",
            "[::1]",
        ] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in [
            "smtp.example.com",
            "localhost.example.com",
            "128.0.0.1",
            "10.0.0.1",
            "::2",
            "0.0.0.0",
            "mylocalhost",
        ] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }
}
