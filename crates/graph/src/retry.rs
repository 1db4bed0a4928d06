//! How long to wait before trying a throttled or failed request again.

use reqwest::header::{HeaderMap, RETRY_AFTER};
use scimsync_core::Backoff;
use std::time::Duration;

/// Longest wait we honour from `Retry-After`, so a bogus value cannot stall a cycle for hours.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);
/// Longest computed backoff step.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// `Retry-After` in (possibly fractional, e.g. `2.128`) seconds, as Graph sends it.
/// An HTTP-date or garbage yields `None`, and the caller backs off on its own.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    retry_after_text(headers.get(RETRY_AFTER)?.to_str().ok()?)
}

/// A `Retry-After` value as text (also how `$batch` items carry it in their inner headers).
pub(crate) fn retry_after_text(text: &str) -> Option<Duration> {
    let secs: f64 = text.trim().parse().ok()?;
    if !secs.is_finite() || secs < 0.0 {
        return None;
    }
    // Capped before the conversion: `from_secs_f64` panics past u64::MAX seconds (`1e20`).
    Some(Duration::from_secs_f64(
        secs.min(MAX_RETRY_AFTER.as_secs_f64()),
    ))
}

/// Whether Graph (or its token endpoint) may answer differently if asked again: 429 and every
/// 5xx but 501 Not Implemented. Transport errors (timeouts, resets) are retried as well; every
/// request the client sends is a read (`$batch` only carries GETs), so resending is safe.
pub(crate) fn retryable_status(status: u16) -> bool {
    status == 429 || ((500..=599).contains(&status) && status != 501)
}

/// The product's back-off ([`Backoff`]): `base · 2^attempt`, capped at a minute, with jitter
/// (50–100 % of the step) so that parallel readers do not retry in lockstep.
pub(crate) fn backoff_delay(base: Duration, attempt: u32) -> Duration {
    Backoff::exponential(base, MAX_BACKOFF).delay(attempt, rand::random::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn retry_after_accepts_fractional_seconds() {
        assert_eq!(
            retry_after(&headers("2.128")),
            Some(Duration::from_millis(2128))
        );
        assert_eq!(retry_after(&headers("10")), Some(Duration::from_secs(10)));
        assert_eq!(retry_after(&headers("86400")), Some(MAX_RETRY_AFTER));
        assert_eq!(retry_after(&headers("Wed, 21 Oct 2015 07:28:00 GMT")), None);
        assert_eq!(retry_after(&headers("-1")), None);
        // Found by the `graph_answer` fuzz target: past u64::MAX seconds the conversion panicked.
        assert_eq!(retry_after(&headers("1e20")), Some(MAX_RETRY_AFTER));
        assert_eq!(retry_after_text("1111e300"), Some(MAX_RETRY_AFTER));
        assert_eq!(retry_after_text("inf"), None);
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let base = Duration::from_secs(1);
        let d0 = backoff_delay(base, 0);
        assert!(d0 >= Duration::from_millis(500) && d0 <= base);
        let d3 = backoff_delay(base, 3);
        assert!(d3 >= Duration::from_secs(4) && d3 <= Duration::from_secs(8));
        assert!(backoff_delay(base, 40) <= MAX_BACKOFF);
        assert!(backoff_delay(base, 40) >= MAX_BACKOFF / 2);
    }

    #[test]
    fn throttling_and_server_errors_are_retryable_but_not_501() {
        for s in [429, 500, 502, 503, 504, 599] {
            assert!(retryable_status(s), "{s}");
        }
        for s in [200, 400, 401, 403, 404, 409, 501] {
            assert!(!retryable_status(s), "{s}");
        }
    }
}
