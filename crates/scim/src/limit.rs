//! Adaptive concurrency (AIMD) for one target, shared by every request kind: the number of
//! requests in flight grows while the target answers and falls when it pushes back.
//!
//! - **Increase**: after each success, +1 while in slow start (doubling per round trip), then
//!   +1/limit (one more per round trip), never above `max_concurrency`.
//! - **Decrease**: a 429 or 503 halves the limit; a success whose latency is far above the
//!   best seen (3× and 50 ms more) takes 10 % off — a server slowing down under load is asking
//!   for less. Answers to requests sent *before* the last decrease do not decrease again, so
//!   one burst of 429s halves once, not once per request in flight.
//! - Other failures (4xx, resets) say nothing about load and leave the limit alone.
//! - A membership PATCH's latency is its group's size, not load: its success grows the limit
//!   like any other, and its latency is never compared (one slow 5,000-member group took the
//!   limit to 1 and wrote every group one after the other: 0.50 of raw speed at 100k).
//!
//! The limit gates when a request may start; throttled requests wait out `Retry-After`
//! without holding a slot, and after a 429/503 no request starts until its `Retry-After`
//! (100 ms without one, at most 5 s) has passed.

use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// What an answer says about the target's load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    /// Answered (any status but the two below) in this time.
    Answered(Duration),
    /// Answered, but its latency says nothing about load (a membership PATCH costs the size
    /// of its group): grows the limit like a fast answer, never shrinks it.
    Succeeded,
    /// 429, or 503: the target asks for less, for this long when it said (`Retry-After`).
    Overloaded(Option<Duration>),
    /// No answer we can read load from (transport error, timeout).
    Neutral,
}

#[derive(Debug)]
struct State {
    limit: f64,
    in_flight: usize,
    slow_start: bool,
    /// Fastest answer seen, drifting up slowly so an old lucky sample does not rule forever.
    best: Option<Duration>,
    last_decrease: Option<Instant>,
    /// No request starts before this: a 429 is the target's word about the client, not one
    /// request, and refused answers come back fast — a freed slot alone would let the next
    /// waiting request straight into the next 429.
    paused_until: Option<Instant>,
}

/// The limiter. `max` is the ceiling (`max_concurrency`); `adaptive = false` keeps the limit at
/// `max` (a plain semaphore).
#[derive(Debug)]
pub(crate) struct Limiter {
    max: usize,
    adaptive: bool,
    state: Mutex<State>,
    freed: Notify,
}

/// A slot in flight; give it back with [`Limiter::release`].
#[derive(Debug)]
pub(crate) struct Slot {
    started: Instant,
}

const MIN_LIMIT: f64 = 1.0;
/// Pause after a 429/503 without `Retry-After`.
const DEFAULT_PAUSE: Duration = Duration::from_millis(100);
/// The longest pause one answer imposes on every request (the request itself still waits its
/// whole `Retry-After`, capped by the client).
const MAX_PAUSE: Duration = Duration::from_secs(5);
const SLOW_LATENCY_FACTOR: u32 = 3;
const SLOW_LATENCY_MARGIN: Duration = Duration::from_millis(50);

impl Limiter {
    pub(crate) fn new(max: usize, adaptive: bool) -> Self {
        let max = max.max(1);
        let start = if adaptive { max.min(4) } else { max };
        Limiter {
            max,
            adaptive,
            state: Mutex::new(State {
                limit: start as f64,
                in_flight: 0,
                slow_start: true,
                best: None,
                last_decrease: None,
                paused_until: None,
            }),
            freed: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Requests allowed in flight now.
    pub(crate) fn limit(&self) -> usize {
        (self.lock().limit.floor() as usize).clamp(1, self.max)
    }

    /// Wait for a slot.
    pub(crate) async fn acquire(&self) -> Slot {
        loop {
            let notified = self.freed.notified();
            let pause = self.lock().paused_until;
            if let Some(until) = pause
                && until > Instant::now()
            {
                tokio::time::sleep_until(until.into()).await;
                continue;
            }
            {
                let mut s = self.lock();
                let allowed = (s.limit.floor() as usize).clamp(1, self.max);
                if s.in_flight < allowed {
                    s.in_flight += 1;
                    return Slot {
                        started: Instant::now(),
                    };
                }
            }
            notified.await;
        }
    }

    /// Give a slot back with what its answer said.
    pub(crate) fn release(&self, slot: Slot, signal: Signal) {
        let mut s = self.lock();
        s.in_flight = s.in_flight.saturating_sub(1);
        if self.adaptive {
            self.adjust(&mut s, slot.started, signal);
        }
        drop(s);
        // Several may start when the limit grew.
        self.freed.notify_waiters();
    }

    fn adjust(&self, s: &mut State, started: Instant, signal: Signal) {
        let max = self.max as f64;
        let stale = s.last_decrease.is_some_and(|d| started < d);
        match signal {
            Signal::Neutral => {}
            Signal::Succeeded => {
                s.limit = if s.slow_start {
                    (s.limit + 1.0).min(max)
                } else {
                    (s.limit + 1.0 / s.limit).min(max)
                };
            }
            Signal::Overloaded(retry_after) => {
                let until = Instant::now() + retry_after.unwrap_or(DEFAULT_PAUSE).min(MAX_PAUSE);
                s.paused_until = Some(s.paused_until.map_or(until, |p| p.max(until)));
                if !stale {
                    s.limit = (s.limit / 2.0).max(MIN_LIMIT);
                    s.slow_start = false;
                    s.last_decrease = Some(Instant::now());
                }
            }
            Signal::Answered(latency) => {
                let best = s.best.map_or(latency, |b| b.mul_f64(1.01).min(latency));
                s.best = Some(best);
                let slow =
                    latency > best * SLOW_LATENCY_FACTOR && latency > best + SLOW_LATENCY_MARGIN;
                if slow {
                    if !stale {
                        s.limit = (s.limit * 0.9).max(MIN_LIMIT);
                        s.slow_start = false;
                        s.last_decrease = Some(Instant::now());
                    }
                } else if s.slow_start {
                    s.limit = (s.limit + 1.0).min(max);
                } else {
                    s.limit = (s.limit + 1.0 / s.limit).min(max);
                }
            }
        }
        metrics::gauge!("scimsync_scim_concurrency_limit").set(s.limit);
    }
}

/// A slot that is also given back when dropped: a request future dropped in flight (a cycle
/// cut short by shutdown or a lost job lease) must not keep its slot, or the next cycle of
/// this client waits for ever.
pub(crate) struct Held<'a> {
    limiter: &'a Limiter,
    slot: Option<Slot>,
}

impl Limiter {
    pub(crate) async fn hold(&self) -> Held<'_> {
        Held {
            limiter: self,
            slot: Some(self.acquire().await),
        }
    }
}

impl Held<'_> {
    pub(crate) fn release(mut self, signal: Signal) {
        if let Some(s) = self.slot.take() {
            self.limiter.release(s, signal);
        }
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if let Some(s) = self.slot.take() {
            self.limiter.release(s, Signal::Neutral);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: Signal = Signal::Answered(Duration::from_millis(5));

    async fn cycle(l: &Limiter, signal: Signal) {
        let slot = l.acquire().await;
        l.release(slot, signal);
    }

    #[tokio::test]
    async fn a_membership_patch_grows_the_limit_whatever_its_latency() {
        let l = Limiter::new(8, true);
        cycle(&l, FAST).await;
        let before = l.limit();
        for _ in 0..20 {
            // As slow as a PATCH into a large group; as an `Answered` it would shrink.
            cycle(&l, Signal::Succeeded).await;
        }
        assert!(l.limit() >= before, "{} < {before}", l.limit());
        assert_eq!(l.limit(), 8);
    }

    #[tokio::test]
    async fn grows_to_the_ceiling_while_answers_stay_fast() {
        let l = Limiter::new(16, true);
        assert_eq!(l.limit(), 4);
        for _ in 0..200 {
            cycle(&l, FAST).await;
        }
        assert_eq!(l.limit(), 16);
    }

    #[tokio::test]
    async fn a_429_halves_once_per_burst_and_growth_is_additive_after() {
        let l = Limiter::new(32, true);
        for _ in 0..100 {
            cycle(&l, FAST).await;
        }
        assert_eq!(l.limit(), 32);
        // Eight requests in flight when the target starts refusing: one halving, not eight.
        let mut slots = Vec::new();
        for _ in 0..8 {
            slots.push(l.acquire().await);
        }
        for s in slots {
            l.release(s, Signal::Overloaded(Some(Duration::ZERO)));
        }
        assert_eq!(l.limit(), 16);
        // Additive now: 16 successes add about one.
        for _ in 0..16 {
            cycle(&l, FAST).await;
        }
        assert_eq!(l.limit(), 16);
        for _ in 0..20 {
            cycle(&l, FAST).await;
        }
        assert_eq!(l.limit(), 18);
    }

    #[tokio::test]
    async fn a_slow_answer_takes_a_tenth_off_and_never_below_one() {
        let l = Limiter::new(8, true);
        for _ in 0..50 {
            cycle(&l, FAST).await;
        }
        assert_eq!(l.limit(), 8);
        cycle(&l, Signal::Answered(Duration::from_millis(500))).await;
        assert_eq!(l.limit(), 7);
        for _ in 0..40 {
            cycle(&l, Signal::Overloaded(Some(Duration::ZERO))).await;
        }
        assert_eq!(l.limit(), 1);
        // Neutral signals change nothing.
        cycle(&l, Signal::Neutral).await;
        assert_eq!(l.limit(), 1);
    }

    #[tokio::test]
    async fn after_a_429_no_request_starts_before_its_retry_after() {
        let l = Limiter::new(8, true);
        cycle(&l, Signal::Overloaded(Some(Duration::from_millis(150)))).await;
        let t = Instant::now();
        let s = l.acquire().await;
        assert!(
            t.elapsed() >= Duration::from_millis(140),
            "{:?}",
            t.elapsed()
        );
        l.release(s, FAST);
    }

    #[tokio::test]
    async fn not_adaptive_is_a_plain_limit_of_max() {
        let l = Limiter::new(6, false);
        cycle(&l, Signal::Overloaded(Some(Duration::ZERO))).await;
        assert_eq!(l.limit(), 6);
    }

    #[tokio::test]
    async fn at_most_limit_in_flight_and_a_release_wakes_a_waiter() {
        let l = std::sync::Arc::new(Limiter::new(2, false));
        let a = l.acquire().await;
        let _b = l.acquire().await;
        let l2 = l.clone();
        let waiter = tokio::spawn(async move {
            let s = l2.acquire().await;
            l2.release(s, Signal::Neutral);
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "a third request waits");
        l.release(a, FAST);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .unwrap();
    }

    #[tokio::test]
    async fn a_held_slot_dropped_in_flight_is_given_back() {
        let l = Limiter::new(1, false);
        let request = async {
            let _held = l.hold().await;
            std::future::pending::<()>().await;
        };
        let dropped = tokio::time::timeout(Duration::from_millis(20), request).await;
        assert!(dropped.is_err(), "the request was cut short");
        tokio::time::timeout(Duration::from_secs(5), l.hold())
            .await
            .expect("the slot came back")
            .release(Signal::Neutral);
    }
}
