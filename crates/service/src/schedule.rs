//! When a job's next cycle runs. Pure: every function takes `now`.
//!
//! Two kinds of schedule (see `shared/docs/dependencies.md`):
//! - **Interval** (the default, Entra's 40 minutes): slots at `anchor + k·period`. The next slot
//!   after `now` is `anchor + period · ((now − anchor) / period + 1)`. A slot that passes while
//!   a cycle is still running is skipped (and counted, so the admin sees the job cannot keep
//!   up); after an outage the job runs once, never a burst of missed slots.
//! - **Cron**, parsed by the `cron` crate: 6 or 7 fields, **seconds first**
//!   (`sec min hour day-of-month month day-of-week [year]`), day-of-week numbered 1–7 with
//!   **Sunday = 1** (names `Sun`…`Sat` are safer). A 5-field crontab line is refused, not
//!   converted: prepending `0 ` would silently shift numeric weekdays by one day.
//!
//! In quarantine the wait doubles from the base period up to `backoff_max` (Entra: once a
//! day), and after `disable_after` of continuous quarantine the job is disabled.

use chrono::{DateTime, Duration, Utc};
use scimsync_core::Backoff;
use std::str::FromStr;

/// A job's parsed schedule.
#[derive(Debug, Clone)]
pub enum Plan {
    Interval {
        /// Slots are counted from here (the service start, or the job's first cycle).
        anchor: DateTime<Utc>,
        period: Duration,
    },
    Cron(Box<cron::Schedule>),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScheduleError {
    #[error("the interval must be at least one second")]
    ZeroInterval,
    #[error(
        "invalid cron expression {expr:?}: {reason} (6 or 7 fields, seconds first, \
         day-of-week 1-7 with Sunday = 1, e.g. \"0 0 2 * * Sun\")"
    )]
    Cron { expr: String, reason: String },
    #[error("the cron expression {0:?} never fires again")]
    CronExhausted(String),
}

impl Plan {
    /// Build from the job file's schedule; interval slots are anchored at `anchor`.
    pub fn from_config(
        schedule: &scimsync_config::Schedule,
        anchor: DateTime<Utc>,
    ) -> Result<Plan, ScheduleError> {
        match schedule {
            scimsync_config::Schedule::Interval(d) => {
                let period = Duration::from_std(*d).unwrap_or(Duration::MAX);
                if period < Duration::seconds(1) {
                    return Err(ScheduleError::ZeroInterval);
                }
                Ok(Plan::Interval { anchor, period })
            }
            scimsync_config::Schedule::Cron(expr) => parse_cron(expr).map(Plan::Cron),
        }
    }

    /// The first slot strictly after `now`.
    pub fn next_after(&self, now: DateTime<Utc>) -> Result<DateTime<Utc>, ScheduleError> {
        match self {
            Plan::Interval { anchor, period } => Ok(next_interval_slot(*anchor, *period, now)),
            Plan::Cron(s) => s
                .after(&now)
                .next()
                .ok_or_else(|| ScheduleError::CronExhausted(s.to_string())),
        }
    }

    /// The normal gap between cycles: the interval, or the gap between the cron's next two
    /// firings after `now`. Quarantine back-off starts from it.
    pub fn base_period(&self, now: DateTime<Utc>) -> Duration {
        match self {
            Plan::Interval { period, .. } => *period,
            Plan::Cron(s) => {
                let mut it = s.after(&now);
                match (it.next(), it.next()) {
                    (Some(a), Some(b)) => b - a,
                    _ => Duration::days(1),
                }
            }
        }
    }
}

/// Parse a cron expression in the `cron` crate's format. Five fields are refused with a
/// message saying how to write them, never converted.
pub fn parse_cron(expr: &str) -> Result<Box<cron::Schedule>, ScheduleError> {
    let expr = expr.trim();
    let fields = expr.split_whitespace().count();
    if fields == 5 {
        return Err(ScheduleError::Cron {
            expr: expr.to_string(),
            reason: "this looks like a 5-field crontab line; add the seconds field first and \
                     check numeric weekdays (here Sunday = 1, in crontab Sunday = 0)"
                .into(),
        });
    }
    cron::Schedule::from_str(expr)
        .map(Box::new)
        .map_err(|e| ScheduleError::Cron {
            expr: expr.to_string(),
            reason: e.to_string(),
        })
}

/// `anchor + period · ((now − anchor) / period + 1)`: the first slot strictly after `now`.
/// Before the anchor, the anchor itself.
pub fn next_interval_slot(
    anchor: DateTime<Utc>,
    period: Duration,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    if now < anchor {
        return anchor;
    }
    let p = period.num_milliseconds().max(1);
    let elapsed = (now - anchor).num_milliseconds();
    let k = elapsed / p + 1;
    anchor + Duration::milliseconds(p.saturating_mul(k))
}

/// After a cycle that started at `started` and ended at `finished`, the next slot and how
/// many slots passed while it ran (skipped, not caught up).
pub fn after_cycle(
    plan: &Plan,
    started: DateTime<Utc>,
    finished: DateTime<Utc>,
) -> Result<(DateTime<Utc>, u64), ScheduleError> {
    let next = plan.next_after(finished)?;
    let mut skipped = 0u64;
    let mut slot = plan.next_after(started)?;
    // Bounded: a cron that fires every second during a day-long cycle would otherwise spin.
    while slot <= finished && skipped < 100_000 {
        skipped += 1;
        slot = plan.next_after(slot)?;
    }
    Ok((next, skipped))
}

/// Quarantine back-off: the wait after the `series_count`-th quarantined cycle — the base
/// period (at least a second) doubled each time, at most `max` (Entra: once a day). The
/// product's one back-off policy ([`Backoff`]) without jitter, in chrono durations.
pub fn backoff(base: Duration, series_count: u32, max: Duration) -> Duration {
    let to_std = |d: Duration| d.to_std().unwrap_or_default();
    let policy = Backoff::exponential(to_std(base.max(Duration::seconds(1))), to_std(max));
    Duration::from_std(policy.delay_without_jitter(series_count)).unwrap_or(max)
}

/// Whether a quarantine that began at `series_began` has lasted long enough to disable the job.
pub fn should_disable(series_began: DateTime<Utc>, now: DateTime<Utc>, after: Duration) -> bool {
    now - series_began > after
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, TimeZone, Timelike, Weekday};

    fn t(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, h, m, 0).unwrap()
    }

    #[test]
    fn interval_slots_are_anchored_not_drifting() {
        let plan = Plan::Interval {
            anchor: t(9, 0),
            period: Duration::minutes(40),
        };
        assert_eq!(plan.next_after(t(9, 0)).unwrap(), t(9, 40));
        // A cycle that ended at 9:53 does not push the schedule to 10:33.
        assert_eq!(plan.next_after(t(9, 53)).unwrap(), t(10, 20));
        assert_eq!(plan.next_after(t(8, 0)).unwrap(), t(9, 0));
    }

    #[test]
    fn a_slot_missed_while_running_is_skipped_and_counted() {
        let plan = Plan::Interval {
            anchor: t(9, 0),
            period: Duration::minutes(40),
        };
        // Started at 9:40, ran 50 minutes: the 10:20 slot passed.
        let (next, skipped) = after_cycle(&plan, t(9, 40), t(10, 30)).unwrap();
        assert_eq!((next, skipped), (t(11, 0), 1));
        let (next, skipped) = after_cycle(&plan, t(9, 40), t(9, 50)).unwrap();
        assert_eq!((next, skipped), (t(10, 20), 0));
    }

    #[test]
    fn after_an_outage_the_job_runs_once_not_a_burst() {
        let plan = Plan::Interval {
            anchor: t(0, 0),
            period: Duration::minutes(40),
        };
        // Down from 01:00 to 09:05: twelve slots missed, one next slot, in the future.
        let next = plan.next_after(t(9, 5)).unwrap();
        assert_eq!(next, t(9, 20));
        assert!(plan.next_after(next).unwrap() - next == Duration::minutes(40));
    }

    #[test]
    fn cron_is_seconds_first_with_sunday_as_one() {
        // "at 02:00:00 on day-of-week 1" = Sunday in the cron crate.
        let plan = Plan::Cron(parse_cron("0 0 2 * * 1").unwrap());
        // 2026-03-02 is a Monday.
        let next = plan.next_after(t(9, 0)).unwrap();
        assert_eq!(next.weekday(), Weekday::Sun);
        assert_eq!((next.hour(), next.minute(), next.second()), (2, 0, 0));
        assert_eq!(next.day(), 8);
        let named = Plan::Cron(parse_cron("0 0 2 * * Sun").unwrap());
        assert_eq!(named.next_after(t(9, 0)).unwrap(), next);
        assert_eq!(plan.base_period(t(9, 0)), Duration::days(7));
    }

    #[test]
    fn five_field_crontab_lines_are_refused_not_converted() {
        let err = parse_cron("0 2 * * 1").unwrap_err();
        assert!(err.to_string().contains("seconds field"), "{err}");
        assert!(parse_cron("every day").is_err());
    }

    #[test]
    fn quarantine_backoff_doubles_to_once_a_day() {
        let base = Duration::minutes(40);
        let day = Duration::days(1);
        let waits: Vec<i64> = (0..7)
            .map(|n| backoff(base, n, day).num_minutes())
            .collect();
        assert_eq!(waits, vec![40, 80, 160, 320, 640, 1280, 1440]);
        assert_eq!(backoff(base, 1000, day), day);
        assert_eq!(backoff(base, u32::MAX, day), day);
        // A period under a second starts at a second; a period over the cap is capped.
        assert_eq!(backoff(Duration::zero(), 2, day), Duration::seconds(4));
        assert_eq!(backoff(Duration::days(7), 0, day), day);
    }

    #[test]
    fn disabled_after_four_weeks() {
        let began = t(0, 0);
        let four_weeks = Duration::weeks(4);
        assert!(!should_disable(began, began + four_weeks, four_weeks));
        assert!(should_disable(
            began,
            began + four_weeks + Duration::seconds(1),
            four_weeks
        ));
    }
}
