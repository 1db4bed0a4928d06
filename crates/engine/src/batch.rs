//! Members per membership PATCH, learned in the cycle from the target's answers (issue 16).
//!
//! A target's cost for a PATCH adding members is often dominated by the group it rewrites,
//! not by the members added (scim2-server re-validates the whole group: ≈170 ms per PATCH into
//! a 5,000-member group whatever the batch), so fewer, larger batches fill a large group many
//! times faster. But targets cap a request's size (413, 400 "too many operations"), and a huge
//! batch can run into the request timeout. So the size moves like a congestion window:
//!
//! - it starts at [`START`] (Entra's size; less when the job's maximum is smaller);
//! - an accepted PATCH answered about as fast as the fastest one seen (within 2× + 100 ms:
//!   "flat") doubles it, up to the job's `membership_batch_size` (the per-target maximum);
//! - an accepted PATCH far slower than the fastest (4× + 1 s) halves it;
//! - a PATCH refused as too large halves it, and no later batch of the cycle is that large
//!   again.
//!
//! One size per cycle, shared by the groups written concurrently: it is the target's size.
//! Latencies come from the engine's `Clock` (the caller measures), so this stays pure.

use std::sync::Mutex;
use std::time::Duration;

/// The first batch size (Entra's).
pub(crate) const START: usize = 100;

#[derive(Debug)]
struct State {
    size: usize,
    /// One less than the smallest size the target refused this cycle.
    cap: usize,
    best: Option<Duration>,
}

#[derive(Debug)]
pub(crate) struct MemberBatch {
    state: Mutex<State>,
}

impl Default for MemberBatch {
    fn default() -> Self {
        MemberBatch {
            state: Mutex::new(State {
                size: START,
                cap: usize::MAX,
                best: None,
            }),
        }
    }
}

impl MemberBatch {
    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        // A poisoned lock only means another task panicked mid-update; the numbers are still
        // usable.
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut s)
    }

    /// Members to put in the next PATCH, never above the job's maximum `max`.
    pub(crate) fn size(&self, max: usize) -> usize {
        self.with(|s| s.size.min(s.cap).min(max).max(1))
    }

    /// The target accepted `sent` members in `latency`.
    pub(crate) fn accepted(&self, sent: usize, latency: Duration, max: usize) {
        self.with(|s| {
            let best = *s.best.get_or_insert(latency);
            s.best = Some(best.min(latency));
            let current = s.size.min(s.cap).min(max).max(1);
            if latency <= best * 2 + Duration::from_millis(100) {
                // A short tail batch says nothing about a larger one.
                if sent >= current {
                    s.size = current.saturating_mul(2).min(s.cap).min(max).max(1);
                }
            } else if latency > best * 4 + Duration::from_secs(1) {
                s.size = (current / 2).max(1);
            }
        })
    }

    /// The target refused `sent` members as too large: smaller from now on, for the cycle.
    pub(crate) fn refused(&self, sent: usize) {
        self.with(|s| {
            let half = (sent / 2).max(1);
            s.cap = s.cap.min(sent.saturating_sub(1).max(1));
            s.size = s.size.min(half);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn starts_at_entras_size_or_the_maximum() {
        assert_eq!(MemberBatch::default().size(1000), START);
        assert_eq!(MemberBatch::default().size(3), 3);
    }

    #[test]
    fn grows_while_latency_stays_flat_up_to_the_maximum() {
        let b = MemberBatch::default();
        let mut sizes = Vec::new();
        for _ in 0..6 {
            let n = b.size(1000);
            sizes.push(n);
            b.accepted(n, 50 * MS, 1000);
        }
        assert_eq!(sizes, vec![100, 200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn a_short_tail_batch_does_not_grow_it() {
        let b = MemberBatch::default();
        b.accepted(7, 10 * MS, 1000);
        assert_eq!(b.size(1000), START);
    }

    #[test]
    fn holds_when_latency_rises_and_halves_when_far_slower() {
        let b = MemberBatch::default();
        b.accepted(100, 20 * MS, 1000);
        assert_eq!(b.size(1000), 200);
        b.accepted(200, 400 * MS, 1000); // slower, not far slower: hold
        assert_eq!(b.size(1000), 200);
        b.accepted(200, 2000 * MS, 1000); // far slower: halve
        assert_eq!(b.size(1000), 100);
    }

    #[test]
    fn a_refusal_halves_and_caps_it_for_the_cycle() {
        let b = MemberBatch::default();
        for _ in 0..3 {
            let n = b.size(1000);
            b.accepted(n, 10 * MS, 1000);
        }
        assert_eq!(b.size(1000), 800);
        b.refused(800);
        assert_eq!(b.size(1000), 400);
        for _ in 0..5 {
            let n = b.size(1000);
            b.accepted(n, 10 * MS, 1000);
        }
        assert_eq!(b.size(1000), 799, "never the refused size again");
    }
}
