//! What every admin API answer carries, and the limit on failed authentication.
//!
//! Security headers, on every response (API, dashboard, errors), unless the handler set its
//! own (the dashboard page sets a CSP that lets its inline script and style run):
//!
//! | header | value |
//! |---|---|
//! | `X-Content-Type-Options` | `nosniff` |
//! | `Referrer-Policy` | `no-referrer` |
//! | `X-Frame-Options` | `DENY` |
//! | `Content-Security-Policy` | `default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'` |
//! | `Cache-Control` | `no-store` |
//! | `Cross-Origin-Opener-Policy`, `Cross-Origin-Resource-Policy` | `same-origin` |
//! | `Strict-Transport-Security` | `max-age=31536000` (only when the API speaks TLS) |
//!
//! Failed authentication is limited per client address: after
//! [`AuthLimit::max_failures`] failures (401s) within [`AuthLimit::window`] of the first, every
//! request from that address — with a good token or not — is answered 429 `TooManyRequests`
//! with `Retry-After` for one window. A request with a good token does not count and does not
//! reset the count. IPv6 clients are counted per /64 (one host usually has the whole prefix).
//! The table is capped at [`AuthLimit::max_clients`] addresses: when it is full of live entries,
//! new addresses share one overflow entry, so many addresses together are limited like one.

use axum::extract::{Request, State};
use axum::http::header::{self, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The transport-related options of [`crate::router_with`].
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The API is served over TLS: add `Strict-Transport-Security`.
    pub tls: bool,
    pub auth_limit: AuthLimit,
}

/// How failed authentication is limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthLimit {
    /// Failures from one address within `window` before it is refused (default 10).
    pub max_failures: u32,
    /// Counted from an address's first failure; also how long it is refused (default 60 s).
    pub window: Duration,
    /// Addresses tracked at most (default 4096).
    pub max_clients: usize,
}

impl Default for AuthLimit {
    fn default() -> Self {
        AuthLimit {
            max_failures: 10,
            window: Duration::from_secs(60),
            max_clients: 4096,
        }
    }
}

/// Who failures are counted for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Client {
    V4([u8; 4]),
    /// The /64 prefix.
    V6([u8; 8]),
    /// No address known (a router called without `ConnectInfo`, as in tests).
    Unknown,
    /// The shared entry once the table is full.
    Overflow,
}

impl Client {
    pub(crate) fn of(ip: Option<IpAddr>) -> Client {
        match ip.map(|ip| ip.to_canonical()) {
            Some(IpAddr::V4(v4)) => Client::V4(v4.octets()),
            Some(IpAddr::V6(v6)) => {
                let mut prefix = [0; 8];
                prefix.copy_from_slice(&v6.octets()[..8]);
                Client::V6(prefix)
            }
            None => Client::Unknown,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    first: Instant,
    failures: u32,
    refused_until: Option<Instant>,
}

impl Entry {
    /// Neither refusing nor counting any more.
    fn expired(&self, now: Instant, window: Duration) -> bool {
        match self.refused_until {
            Some(until) => now >= until,
            None => now.saturating_duration_since(self.first) >= window,
        }
    }
}

/// Failed authentication per client. Time is given to every call, so tests control it.
#[derive(Debug)]
pub(crate) struct Limiter {
    limit: AuthLimit,
    entries: HashMap<Client, Entry>,
}

impl Limiter {
    pub(crate) fn new(limit: AuthLimit) -> Limiter {
        Limiter {
            limit,
            entries: HashMap::new(),
        }
    }

    /// `Some(retry after)` while `client` is refused.
    pub(crate) fn refused(&mut self, client: Client, now: Instant) -> Option<Duration> {
        let key = self.key(client);
        let e = self.entries.get(&key)?;
        if e.expired(now, self.limit.window) {
            self.entries.remove(&key);
            return None;
        }
        e.refused_until.map(|until| until - now)
    }

    /// Count a failed authentication: true when this one starts a refusal.
    pub(crate) fn failed(&mut self, client: Client, now: Instant) -> bool {
        let window = self.limit.window;
        if !self.entries.contains_key(&client) && self.entries.len() >= self.limit.max_clients {
            self.entries.retain(|_, e| !e.expired(now, window));
        }
        let key = self.key(client);
        let fresh = Entry {
            first: now,
            failures: 0,
            refused_until: None,
        };
        let e = self.entries.entry(key).or_insert(fresh);
        if e.expired(now, window) {
            *e = fresh;
        }
        e.failures = e.failures.saturating_add(1);
        if e.failures >= self.limit.max_failures && e.refused_until.is_none() {
            e.refused_until = Some(now + window);
            return true;
        }
        false
    }

    /// The entry `client` is counted in: its own, or the shared one when the table is full.
    fn key(&self, client: Client) -> Client {
        if self.entries.contains_key(&client) || self.entries.len() < self.limit.max_clients {
            client
        } else {
            Client::Overflow
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

/// `Retry-After` in whole seconds, rounded up (at least 1).
pub(crate) fn retry_after_secs(d: Duration) -> u64 {
    (d.as_millis().div_ceil(1000) as u64).max(1)
}

const CSP: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// Adds the security headers a handler did not set.
pub(crate) async fn security_headers(
    State(tls): State<bool>,
    req: Request,
    next: Next,
) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    let defaults: [(HeaderName, &'static str); 7] = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::CACHE_CONTROL, "no-store"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
        (
            HeaderName::from_static("cross-origin-resource-policy"),
            "same-origin",
        ),
    ];
    for (name, value) in defaults {
        h.entry(name)
            .or_insert_with(|| HeaderValue::from_static(value));
    }
    if tls {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(max_clients: usize) -> AuthLimit {
        AuthLimit {
            max_failures: 3,
            window: Duration::from_secs(60),
            max_clients,
        }
    }

    fn ip(s: &str) -> Client {
        Client::of(Some(s.parse().unwrap()))
    }

    #[test]
    fn refused_after_max_failures_for_one_window_then_forgotten() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut l = Limiter::new(limit(16));
        let a = ip("192.0.2.1");
        for i in 0..3 {
            assert_eq!(l.refused(a, t0 + s(i)), None);
            l.failed(a, t0 + s(i));
        }
        // The third failure (at 2 s) starts a refusal of one window.
        assert_eq!(l.refused(a, t0 + s(2)), Some(s(60)));
        assert_eq!(l.refused(a, t0 + s(50)), Some(s(12)));
        // Another address is not affected.
        assert_eq!(l.refused(ip("192.0.2.2"), t0 + s(50)), None);
        // Failures while refused do not extend it.
        l.failed(a, t0 + s(50));
        assert_eq!(l.refused(a, t0 + s(61)), Some(s(1)));
        assert_eq!(l.refused(a, t0 + s(62)), None);
        assert_eq!(l.len(), 0);
        // Counting starts again.
        l.failed(a, t0 + s(63));
        assert_eq!(l.refused(a, t0 + s(63)), None);
    }

    #[test]
    fn failures_spread_beyond_the_window_are_not_refused() {
        let t0 = Instant::now();
        let mut l = Limiter::new(limit(16));
        let a = ip("192.0.2.1");
        for i in 0..10 {
            l.failed(a, t0 + Duration::from_secs(31 * i));
            assert_eq!(l.refused(a, t0 + Duration::from_secs(31 * i)), None, "{i}");
        }
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_v4_as_v4() {
        assert_eq!(ip("2001:db8:1:2::1"), ip("2001:db8:1:2:ffff::9"));
        assert_ne!(ip("2001:db8:1:2::1"), ip("2001:db8:1:3::1"));
        assert_eq!(ip("::ffff:192.0.2.1"), ip("192.0.2.1"));
        assert_eq!(Client::of(None), Client::Unknown);
    }

    #[test]
    fn the_table_is_capped_and_a_full_one_shares_an_overflow_entry() {
        let t0 = Instant::now();
        let mut l = Limiter::new(limit(4));
        for i in 0..4 {
            l.failed(ip(&format!("192.0.2.{i}")), t0);
        }
        assert_eq!(l.len(), 4);
        // New addresses beyond the cap are counted together: three of them are refused together.
        for i in 10..13 {
            l.failed(ip(&format!("192.0.2.{i}")), t0);
        }
        assert_eq!(l.len(), 5);
        assert!(l.refused(ip("192.0.2.99"), t0).is_some());
        // Tracked addresses keep their own count.
        assert_eq!(l.refused(ip("192.0.2.0"), t0), None);
        // Once the entries expire, a new address gets its own again.
        let later = t0 + Duration::from_secs(61);
        l.failed(ip("192.0.2.50"), later);
        assert!(l.len() <= 2, "{}", l.len());
        assert_eq!(l.refused(ip("192.0.2.50"), later), None);
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(59_001)), 60);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }
}
