//! The one back-off policy of the product: how long to wait before trying again.
//!
//! Used by the Graph client (throttled or failed reads), the SCIM client (retries within one
//! call) and the service (quarantine: the schedule's period doubled up to once a day). Pure: the
//! caller supplies the randomness (`jitter`) and does the waiting.

use std::time::Duration;

/// Exponential back-off: `base · factor^attempt`, capped at `max`.
///
/// ```
/// use scimsync_core::Backoff;
/// use std::time::Duration;
///
/// let b = Backoff::exponential(Duration::from_secs(1), Duration::from_secs(60));
/// assert_eq!(b.delay_without_jitter(3), Duration::from_secs(8));
/// assert_eq!(b.delay_without_jitter(10), Duration::from_secs(60));
/// // Full jitter (1.0) halves the step; none (0.0) keeps it.
/// assert_eq!(b.delay(3, 1.0), Duration::from_secs(4));
/// assert_eq!(b.delay(3, 0.0), Duration::from_secs(8));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first wait (attempt 0).
    pub base: Duration,
    /// No wait is longer than this.
    pub max: Duration,
    /// Each attempt waits this many times longer than the one before (0 and 1 both mean a
    /// constant wait of `base`).
    pub factor: u32,
}

impl Backoff {
    /// Doubling from `base`, capped at `max`.
    pub const fn exponential(base: Duration, max: Duration) -> Backoff {
        Backoff {
            base,
            max,
            factor: 2,
        }
    }

    /// The step for `attempt` (0-based): `base · factor^attempt`, at most `max`. Saturating, so
    /// any `attempt` is safe.
    pub fn delay_without_jitter(&self, attempt: u32) -> Duration {
        let mut step = self.base.min(self.max);
        if self.factor <= 1 {
            return step;
        }
        // At most ~94 doublings take a nonzero step past any Duration, so this loop is short.
        for _ in 0..attempt {
            if step.is_zero() || step >= self.max {
                break;
            }
            step = step.saturating_mul(self.factor);
        }
        step.min(self.max)
    }

    /// The step for `attempt`, shortened by up to half by `jitter` (clamped to `[0, 1]`; NaN
    /// counts as 0): `step · (1 − jitter / 2)`. Callers pass a random number so that parallel
    /// workers do not retry in lockstep; the wait is then 50–100 % of the step.
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let jitter = if jitter.is_nan() {
            0.0
        } else {
            jitter.clamp(0.0, 1.0)
        };
        let step = self.delay_without_jitter(attempt);
        // Subtract a part rather than scale the whole: `Duration::MAX · 1.0` would overflow.
        step.saturating_sub(step.mul_f64(jitter / 2.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn doubles_from_base_up_to_max() {
        let b = Backoff::exponential(ms(250), Duration::from_secs(30));
        let steps: Vec<u128> = (0..10)
            .map(|a| b.delay_without_jitter(a).as_millis())
            .collect();
        assert_eq!(
            steps,
            [250, 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
        );
    }

    #[test]
    fn any_attempt_is_safe() {
        let b = Backoff::exponential(Duration::from_nanos(1), Duration::MAX);
        assert_eq!(b.delay_without_jitter(u32::MAX), Duration::MAX);
        assert_eq!(b.delay(u32::MAX, 0.0), Duration::MAX);
        assert!(b.delay(u32::MAX, 1.0) >= Duration::MAX / 2 - Duration::from_secs(1));
        let b = Backoff {
            factor: u32::MAX,
            ..Backoff::exponential(Duration::from_secs(1), Duration::from_secs(60))
        };
        assert_eq!(b.delay_without_jitter(u32::MAX), Duration::from_secs(60));
        let zero = Backoff::exponential(Duration::ZERO, Duration::from_secs(60));
        assert_eq!(zero.delay_without_jitter(u32::MAX), Duration::ZERO);
    }

    #[test]
    fn factor_one_or_zero_is_constant_and_base_is_capped() {
        for factor in [0, 1] {
            let b = Backoff {
                base: ms(100),
                max: Duration::from_secs(1),
                factor,
            };
            assert_eq!(b.delay_without_jitter(0), ms(100));
            assert_eq!(b.delay_without_jitter(u32::MAX), ms(100));
        }
        let b = Backoff::exponential(Duration::from_secs(10), Duration::from_secs(1));
        assert_eq!(b.delay_without_jitter(0), Duration::from_secs(1));
    }

    #[test]
    fn factor_three() {
        let b = Backoff {
            base: ms(10),
            max: Duration::from_secs(1),
            factor: 3,
        };
        let steps: Vec<u128> = (0..6)
            .map(|a| b.delay_without_jitter(a).as_millis())
            .collect();
        assert_eq!(steps, [10, 30, 90, 270, 810, 1000]);
    }

    #[test]
    fn jitter_takes_off_at_most_half() {
        let b = Backoff::exponential(ms(100), Duration::from_secs(30));
        for attempt in 0..40 {
            let step = b.delay_without_jitter(attempt);
            assert_eq!(b.delay(attempt, 0.0), step);
            assert_eq!(b.delay(attempt, 1.0), step / 2);
            let mid = b.delay(attempt, 0.5);
            assert!(mid >= step / 2 && mid <= step, "attempt {attempt}: {mid:?}");
        }
        // Out of range or NaN jitter is clamped, never a longer or negative wait.
        assert_eq!(b.delay(1, -3.0), ms(200));
        assert_eq!(b.delay(1, 7.0), ms(100));
        assert_eq!(b.delay(1, f64::NAN), ms(200));
    }
}
