//! Waiting as a parameter: the runner sleeps through a [`Sleeper`] so tests drive schedules,
//! escrow and quarantine timing with a [`ManualTime`] in milliseconds instead of minutes.

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use scimsync_core::Clock;
use std::sync::Arc;

/// Sleeps until a wall-clock instant of the job's [`Clock`].
pub trait Sleeper: Send + Sync {
    fn sleep_until(&self, at: DateTime<Utc>) -> BoxFuture<'static, ()>;
}

/// Real time: tokio's timer, re-checked against the clock on waking (the wall clock may have
/// been adjusted meanwhile).
pub struct SystemSleeper {
    clock: Arc<dyn Clock>,
}

impl SystemSleeper {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        SystemSleeper { clock }
    }
}

impl Sleeper for SystemSleeper {
    fn sleep_until(&self, at: DateTime<Utc>) -> BoxFuture<'static, ()> {
        let clock = Arc::clone(&self.clock);
        Box::pin(async move {
            loop {
                let left = at - clock.now();
                let Ok(left) = left.to_std() else { return };
                if left.is_zero() {
                    return;
                }
                // Wake at least hourly so a wall-clock jump is noticed.
                tokio::time::sleep(left.min(std::time::Duration::from_secs(3600))).await;
            }
        })
    }
}

/// A clock and a sleeper that move only when the test says so: [`ManualTime::advance`] wakes
/// every sleeper whose instant has come. The current instant lives in a watch channel, so a
/// sleeping future needs no borrow of the `ManualTime`.
pub struct ManualTime {
    now: tokio::sync::watch::Sender<DateTime<Utc>>,
}

impl ManualTime {
    pub fn new(at: DateTime<Utc>) -> Arc<Self> {
        Arc::new(ManualTime {
            now: tokio::sync::watch::Sender::new(at),
        })
    }

    pub fn advance(&self, by: chrono::Duration) {
        self.now.send_modify(|t| *t += by);
    }

    /// Move to `at` (never backwards).
    pub fn advance_to(&self, at: DateTime<Utc>) {
        self.now.send_modify(|t| {
            if at > *t {
                *t = at;
            }
        });
    }
}

impl Clock for ManualTime {
    fn now(&self) -> DateTime<Utc> {
        *self.now.borrow()
    }
}

impl Sleeper for ManualTime {
    fn sleep_until(&self, at: DateTime<Utc>) -> BoxFuture<'static, ()> {
        let mut rx = self.now.subscribe();
        Box::pin(async move {
            // `wait_for` checks the current value first, then every change.
            let _ = rx.wait_for(|now| *now >= at).await;
        })
    }
}
