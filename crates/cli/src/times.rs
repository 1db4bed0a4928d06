//! Times for people: "3 min ago", "in 12 min", with the exact UTC time kept beside them.

use chrono::{DateTime, Utc};

/// `at` relative to `now`: "just now", "3 min ago", "in 2 h 5 min", "4 days ago".
pub fn relative(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (at - now).num_seconds();
    let span = span(secs.unsigned_abs());
    match secs {
        -9..=9 => "just now".into(),
        s if s < 0 => format!("{span} ago"),
        _ => format!("in {span}"),
    }
}

fn span(secs: u64) -> String {
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3_600, secs % 3_600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{secs} s"),
        (0, 0, m) => format!("{m} min"),
        (0, h, 0) => format!("{h} h"),
        (0, h, m) => format!("{h} h {m} min"),
        (1, _, _) => "1 day".into(),
        (d, _, _) => format!("{d} days"),
    }
}

/// "2026-01-01 10:00:00 UTC (3 min ago)" for an RFC 3339 text; the text as it is when it
/// does not parse.
pub fn with_relative(rfc3339: &str, now: DateTime<Utc>) -> String {
    match DateTime::parse_from_rfc3339(rfc3339) {
        Ok(t) => {
            let t = t.with_timezone(&Utc);
            format!(
                "{} ({})",
                t.format("%Y-%m-%d %H:%M:%S UTC"),
                relative(t, now)
            )
        }
        Err(_) => rfc3339.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn times_read_like_a_person_says_them() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
        let ago = |s: i64| relative(now - chrono::Duration::seconds(s), now);
        assert_eq!(ago(3), "just now");
        assert_eq!(ago(45), "45 s ago");
        assert_eq!(ago(180), "3 min ago");
        assert_eq!(ago(7_500), "2 h 5 min ago");
        assert_eq!(ago(3_600), "1 h ago");
        assert_eq!(ago(90_000), "1 day ago");
        assert_eq!(ago(4 * 86_400), "4 days ago");
        assert_eq!(
            relative(now + chrono::Duration::minutes(12), now),
            "in 12 min"
        );
        assert_eq!(
            with_relative("2026-01-01T11:57:00Z", now),
            "2026-01-01 11:57:00 UTC (3 min ago)"
        );
        assert_eq!(with_relative("garbled", now), "garbled");
    }
}
