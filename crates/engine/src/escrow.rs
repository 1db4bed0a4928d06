//! Escrow: objects whose write failed with a retryable error wait here and are retried on
//! Entra's schedule (6 h, 12 h, 24 h after the first failure, then daily, dropped after 28
//! days — reference §2.3). Pure: the engine passes `now`.

use chrono::{DateTime, Duration, Utc};
use scimsync_core::ErrorCode;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscrowPolicy {
    /// Retry delays counted from the first failure.
    pub delays: Vec<Duration>,
    /// After the listed delays, retry this often.
    pub then_every: Duration,
    /// Give up this long after the first failure.
    pub give_up_after: Duration,
}

/// Entra's schedule, as a job file without `[escrow]` gets it (declared once, in config).
impl Default for EscrowPolicy {
    fn default() -> Self {
        EscrowPolicy::from(&scimsync_config::Escrow::default())
    }
}

/// The job file's `[escrow]` in the engine's clock units.
impl From<&scimsync_config::Escrow> for EscrowPolicy {
    fn from(e: &scimsync_config::Escrow) -> Self {
        let chrono = |d: std::time::Duration| Duration::from_std(d).unwrap_or(Duration::MAX);
        EscrowPolicy {
            delays: e.retry_delays.iter().map(|d| chrono(*d)).collect(),
            then_every: chrono(e.daily_after),
            give_up_after: chrono(e.give_up_after),
        }
    }
}

/// One object in escrow, visible to admins with its attempts and last error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Escrow {
    pub source_id: String,
    pub display_name: String,
    pub attempts: u32,
    pub first_failure: DateTime<Utc>,
    pub last_failure: DateTime<Utc>,
    pub next_retry: DateTime<Utc>,
    pub error_code: ErrorCode,
    pub error: String,
    /// A user gone from the source when it failed: `true` soft-deleted, `false` hard-deleted,
    /// so its retry knows what it was although the source no longer returns it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gone: Option<bool>,
}

impl EscrowPolicy {
    /// The escrow after one more failure at `now` (`previous` is `None` on the first).
    /// A `transient` failure (5xx, timeout, reset, throttling) is retried at the next cycle;
    /// a permanent one on the schedule. `None` means the object has been failing for longer
    /// than the policy allows: drop it.
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &self,
        previous: Option<&Escrow>,
        source_id: &str,
        display_name: &str,
        code: ErrorCode,
        error: &str,
        now: DateTime<Utc>,
        transient: bool,
    ) -> Option<Escrow> {
        let first = previous.map(|p| p.first_failure).unwrap_or(now);
        let attempts = previous.map(|p| p.attempts).unwrap_or(0) + 1;
        if now - first >= self.give_up_after {
            return None;
        }
        let n = attempts as usize;
        let offset = match self.delays.get(n - 1) {
            Some(d) => *d,
            None => {
                let last = self.delays.last().copied().unwrap_or_default();
                last + self.then_every * (n - self.delays.len()) as i32
            }
        };
        let mut next = first + offset;
        if transient {
            next = now;
        } else if next <= now {
            // A late cycle: never schedule into the past.
            next = now
                + self
                    .then_every
                    .min(self.delays.first().copied().unwrap_or(self.then_every));
        }
        Some(Escrow {
            source_id: source_id.to_string(),
            display_name: display_name.to_string(),
            attempts,
            first_failure: first,
            last_failure: now,
            next_retry: next,
            error_code: code,
            error: error.to_string(),
            gone: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transient_failure_is_retried_at_the_next_cycle() {
        let p = EscrowPolicy::default();
        let e = p
            .record(None, "u", "U", ErrorCode::Timeout, "reset", t0(), true)
            .unwrap();
        assert_eq!(e.next_retry, t0(), "due at the next cycle");
        assert_eq!(e.attempts, 1);
    }

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .into()
    }

    #[test]
    fn retries_follow_entra_schedule_then_daily_then_give_up() {
        let p = EscrowPolicy::default();
        let e1 = p
            .record(
                None,
                "u",
                "U",
                ErrorCode::InternalServerError,
                "boom",
                t0(),
                false,
            )
            .unwrap();
        assert_eq!(e1.next_retry, t0() + Duration::hours(6));
        let e2 = p
            .record(
                Some(&e1),
                "u",
                "U",
                ErrorCode::InternalServerError,
                "boom",
                e1.next_retry,
                false,
            )
            .unwrap();
        assert_eq!(e2.next_retry, t0() + Duration::hours(12));
        let e3 = p
            .record(
                Some(&e2),
                "u",
                "U",
                ErrorCode::InternalServerError,
                "boom",
                e2.next_retry,
                false,
            )
            .unwrap();
        assert_eq!(e3.next_retry, t0() + Duration::hours(24));
        let e4 = p
            .record(
                Some(&e3),
                "u",
                "U",
                ErrorCode::InternalServerError,
                "boom",
                e3.next_retry,
                false,
            )
            .unwrap();
        assert_eq!(e4.next_retry, t0() + Duration::hours(48));
        assert_eq!(e4.attempts, 4);
        assert_eq!(e4.first_failure, t0());
        let late = t0() + Duration::days(28);
        assert!(
            p.record(
                Some(&e4),
                "u",
                "U",
                ErrorCode::InternalServerError,
                "boom",
                late,
                false
            )
            .is_none()
        );
    }
}
