//! The `schedule` key: an interval (`"40m"`, `"1h30m"`) or `"cron: <6 or 7 fields>"`.
//!
//! Intervals are the default because a true 40-minute period cannot be written in cron
//! (`*/40` fires at :00 and :40). Cron syntax is only checked loosely here (field count and
//! characters); the scheduler parses it fully.

use std::fmt;
use std::time::Duration;

/// When a job's cycles run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// A fixed period between cycle starts.
    Interval(Duration),
    /// A cron expression with 6 or 7 fields, seconds first (the `cron` crate's format), with
    /// fields separated by single spaces.
    Cron(String),
}

/// Entra's provisioning interval, and ours by default.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(40 * 60);

impl Default for Schedule {
    fn default() -> Self {
        Schedule::Interval(DEFAULT_INTERVAL)
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Interval(d) => {
                let mut secs = d.as_secs();
                if secs == 0 {
                    return f.write_str("0s");
                }
                for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
                    if secs >= size {
                        write!(f, "{}{unit}", secs / size)?;
                        secs %= size;
                    }
                }
                Ok(())
            }
            Schedule::Cron(expr) => write!(f, "cron: {expr}"),
        }
    }
}

impl std::str::FromStr for Schedule {
    type Err = String;

    /// Parse the `schedule` value. Errors are messages for the admin.
    fn from_str(s: &str) -> Result<Schedule, String> {
        let s = s.trim();
        match s.strip_prefix("cron:") {
            Some(expr) => parse_cron(expr).map(Schedule::Cron),
            None => parse_interval(s).map(Schedule::Interval),
        }
    }
}

fn parse_interval(s: &str) -> Result<Duration, String> {
    parse_units(s).map_err(|e| {
        e.unwrap_or_else(|| {
            format!(
                "expected an interval like \"40m\", \"40min\" or \"1h30m\" (units d, h, m, s and their long names) or \"cron: <6 or 7 fields>\", found {s:?}"
            )
        })
    })
}

/// A duration key of the job file (`"6h"`, `"28d"`, `"1h30m"`): an interval without cron.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    parse_units(s).map_err(|e| {
        e.unwrap_or_else(|| {
            format!("expected a duration like \"6h\", \"40min\", \"28d\" or \"1h30m\", found {s:?}")
        })
    })
}

/// `Err(None)` is a syntax error the caller words; `Err(Some(_))` is already worded.
/// humantime reads the units (`40m`, `40min`, `1h 30m`, `2days`, `1.5h`); signs are refused
/// by it, zero and parts of a second here.
fn parse_units(s: &str) -> Result<Duration, Option<String>> {
    if !s.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(None);
    }
    let d = humantime::parse_duration(s).map_err(|e| match e {
        humantime::DurationError::NumberOverflow => Some("is too long".to_string()),
        _ => None,
    })?;
    if d.is_zero() {
        return Err(Some("must be longer than zero".into()));
    }
    // Whole seconds: the schedule and the keys that take durations count in seconds.
    if d.subsec_nanos() != 0 {
        return Err(None);
    }
    Ok(d)
}

fn parse_cron(expr: &str) -> Result<String, String> {
    let fields: Vec<&str> = expr.split_whitespace().collect();
    match fields.len() {
        6 | 7 => {}
        5 => {
            return Err("cron expressions here have 6 or 7 fields, seconds first \
                 (sec min hour day-of-month month day-of-week [year]), and count weekdays \
                 1-7 from Sunday; found a 5-field crontab line, e.g. write \"cron: 0 0 2 * * *\" \
                 for 02:00 daily"
                .into());
        }
        n => {
            return Err(format!(
                "expected 6 or 7 cron fields (sec min hour day-of-month month day-of-week [year]), found {n}"
            ));
        }
    }
    for (i, field) in fields.iter().enumerate() {
        if !field
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "*/,-?#".contains(c))
        {
            return Err(format!(
                "cron field {} ({field:?}) has characters other than digits, names and * / , - ? #",
                i + 1
            ));
        }
    }
    Ok(fields.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: &str) -> u64 {
        match s.parse::<Schedule>().unwrap() {
            Schedule::Interval(d) => d.as_secs(),
            Schedule::Cron(c) => panic!("unexpected cron {c}"),
        }
    }

    #[test]
    fn intervals() {
        assert_eq!(secs("40m"), 2400);
        assert_eq!(secs("1h30m"), 5400);
        assert_eq!(secs("2d"), 172_800);
        assert_eq!(secs(" 90s "), 90);
        assert_eq!(secs("1d2h3m4s"), 93_784);
        assert_eq!(secs("40min"), 2400);
        assert_eq!(secs("1h 30m"), 5400);
        assert_eq!(secs("2days"), 172_800);
        assert_eq!(secs("1.5h"), 5400);
        for bad in [
            "",
            "40",
            "m",
            "40x",
            "0m",
            "0.5s",
            "-5m",
            "99999999999999999999d",
        ] {
            assert!(bad.parse::<Schedule>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn cron_needs_six_or_seven_fields() {
        assert_eq!(
            "cron:  0 */40  * * * *".parse::<Schedule>(),
            Ok(Schedule::Cron("0 */40 * * * *".into()))
        );
        assert!("cron: 0 0 2 * * Mon-Fri 2030".parse::<Schedule>().is_ok());
        let five = "cron: */40 * * * *".parse::<Schedule>().unwrap_err();
        assert!(five.contains("seconds first"), "{five}");
        assert!("cron: 0 0".parse::<Schedule>().is_err());
        assert!("cron: 0 0 2 * * $".parse::<Schedule>().is_err());
    }

    #[test]
    fn display_round_trips() {
        for s in ["40m", "1h30m", "1d4s", "cron: 0 0 2 * * *"] {
            assert_eq!(s.parse::<Schedule>().unwrap().to_string(), s);
        }
    }
}
