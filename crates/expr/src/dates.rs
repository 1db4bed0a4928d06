//! Dates: Entra's output text, lenient ISO-8601 reading, .NET custom format strings (both
//! directions) and Active Directory FILETIME numbers. All times are UTC: Entra runs in UTC, so
//! .NET's "local" and "unspecified" kinds behave as UTC too.

use std::sync::LazyLock;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc};
use regex::Regex;

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// Seconds between 1601-01-01 (FILETIME epoch) and 1970-01-01.
const FILETIME_UNIX_DIFF: i64 = 11_644_473_600;

/// Entra's date output: `M/d/yyyy h:mm:ss tt` in UTC, e.g. `6/29/2021 4:00:00 PM`.
pub fn entra_text(d: &DateTime<Utc>) -> String {
    format(d, "M/d/yyyy h:mm:ss tt").unwrap_or_default()
}

/// AD FILETIME (100 ns ticks since 1601-01-01 UTC) to a date.
pub fn from_filetime(ticks: i64) -> Option<DateTime<Utc>> {
    let secs = ticks.div_euclid(10_000_000) - FILETIME_UNIX_DIFF;
    let nanos = (ticks.rem_euclid(10_000_000) * 100) as u32;
    DateTime::from_timestamp(secs, nanos)
}

/// A date to AD FILETIME.
pub fn to_filetime(d: &DateTime<Utc>) -> Option<i64> {
    (d.timestamp() + FILETIME_UNIX_DIFF)
        .checked_mul(10_000_000)?
        .checked_add(i64::from(d.timestamp_subsec_nanos() / 100))
}

static ISO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$",
    )
    .unwrap_or_else(|e| panic!("static regex: {e}"))
});
static US: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(\d{1,2})/(\d{1,2})/(\d{4})(?:\s+(\d{1,2}):(\d{2})(?::(\d{2}))?(?:\s*([AaPp][Mm]))?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$",
    )
    .unwrap_or_else(|e| panic!("static regex: {e}"))
});
static COMPACT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.(\d{1,7}))?(Z|[+-]\d{4})?$")
        .unwrap_or_else(|e| panic!("static regex: {e}"))
});

/// Reads the date strings admins feed to `CDate`, `DateAdd`, `NumFromDate`…: ISO-8601 with or
/// without time and offset (`2021-06-30+08:00`, `2009-06-15T01:45:30-07:00`, `2021-08-24`),
/// Entra's own `M/d/yyyy h:mm:ss tt`, and AD generalized time (`20150123105347.1Z`). No offset
/// means UTC.
pub fn parse_flexible(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    let num = |m: Option<regex::Match<'_>>| m.map_or(Some(0), |m| m.as_str().parse::<u32>().ok());
    if let Some(c) = ISO.captures(text) {
        let nanos = match c.get(7) {
            Some(f) => frac_nanos(f.as_str())?,
            None => 0,
        };
        return build(
            c[1].parse().ok()?,
            num(c.get(2))?,
            num(c.get(3))?,
            num(c.get(4))?,
            num(c.get(5))?,
            num(c.get(6))?,
            nanos,
            offset(c.get(8).map(|m| m.as_str()))?,
        );
    }
    if let Some(c) = US.captures(text) {
        let mut hour = num(c.get(4))?;
        if let Some(tt) = c.get(7) {
            if hour == 0 || hour > 12 {
                return None;
            }
            hour %= 12;
            if tt.as_str().eq_ignore_ascii_case("pm") {
                hour += 12;
            }
        }
        return build(
            c[3].parse().ok()?,
            num(c.get(1))?,
            num(c.get(2))?,
            hour,
            num(c.get(5))?,
            num(c.get(6))?,
            0,
            offset(c.get(8).map(|m| m.as_str()))?,
        );
    }
    if let Some(c) = COMPACT.captures(text) {
        let nanos = match c.get(7) {
            Some(f) => frac_nanos(f.as_str())?,
            None => 0,
        };
        return build(
            c[1].parse().ok()?,
            num(c.get(2))?,
            num(c.get(3))?,
            num(c.get(4))?,
            num(c.get(5))?,
            num(c.get(6))?,
            nanos,
            offset(c.get(8).map(|m| m.as_str()))?,
        );
    }
    None
}

fn frac_nanos(digits: &str) -> Option<u32> {
    let mut padded = digits.chars().take(9).collect::<String>();
    while padded.len() < 9 {
        padded.push('0');
    }
    padded.parse().ok()
}

/// `Z`, `+08:00`, `-0700`, `+08` → offset seconds east of UTC.
fn offset(text: Option<&str>) -> Option<i32> {
    let Some(t) = text else { return Some(0) };
    if t.eq_ignore_ascii_case("z") {
        return Some(0);
    }
    let sign = if t.starts_with('-') { -1 } else { 1 };
    let digits: String = t[1..].chars().filter(char::is_ascii_digit).collect();
    let (h, m) = match digits.len() {
        1 | 2 => (digits.parse::<i32>().ok()?, 0),
        3 | 4 => {
            let split = digits.len() - 2;
            (digits[..split].parse().ok()?, digits[split..].parse().ok()?)
        }
        _ => return None,
    };
    if h > 14 || m > 59 {
        return None;
    }
    Some(sign * (h * 3600 + m * 60))
}

#[allow(clippy::too_many_arguments)]
fn build(
    year: i32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    nanos: u32,
    offset_secs: i32,
) -> Option<DateTime<Utc>> {
    let naive =
        NaiveDate::from_ymd_opt(year, month, day)?.and_hms_nano_opt(hour, minute, second, nanos)?;
    let tz = FixedOffset::east_opt(offset_secs)?;
    tz.from_local_datetime(&naive)
        .single()
        .map(|d| d.with_timezone(&Utc))
}

/// One element of a .NET custom date and time format string.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Year(usize),
    Month(usize),
    Day(usize),
    Hour24(usize),
    Hour12(usize),
    Minute(usize),
    Second(usize),
    /// `f…` (`true`: exact digits) or `F…` (`false`: trailing zeros dropped).
    Frac(usize, bool),
    AmPm(usize),
    Zone(usize),
    Kind,
    Lit(String),
}

/// Expands a one-letter standard format (`o`, `s`, `u`, `d`, …) to its invariant-culture pattern.
fn standard(fmt: &str) -> Result<&str, String> {
    let mut chars = fmt.chars();
    let (Some(c), None) = (chars.next(), chars.next()) else {
        return Ok(fmt);
    };
    Ok(match c {
        'o' | 'O' => "yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffffK",
        's' => "yyyy'-'MM'-'dd'T'HH':'mm':'ss",
        'u' => "yyyy'-'MM'-'dd HH':'mm':'ss'Z'",
        'd' => "MM/dd/yyyy",
        'D' => "dddd, dd MMMM yyyy",
        'f' => "dddd, dd MMMM yyyy HH:mm",
        'F' => "dddd, dd MMMM yyyy HH:mm:ss",
        'g' => "MM/dd/yyyy HH:mm",
        'G' => "MM/dd/yyyy HH:mm:ss",
        'M' | 'm' => "MMMM dd",
        'r' | 'R' => "ddd, dd MMM yyyy HH':'mm':'ss 'GMT'",
        't' => "HH:mm",
        'T' => "HH:mm:ss",
        'y' | 'Y' => "yyyy MMMM",
        other => return Err(format!("unsupported standard date format '{other}'")),
    })
}

fn tokenize(fmt: &str) -> Result<Vec<Tok>, String> {
    let fmt = standard(fmt)?;
    let chars: Vec<char> = fmt.chars().collect();
    let mut toks = Vec::new();
    let lit = |toks: &mut Vec<Tok>, s: &str| match toks.last_mut() {
        Some(Tok::Lit(prev)) => prev.push_str(s),
        _ => toks.push(Tok::Lit(s.to_string())),
    };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let run = chars[i..].iter().take_while(|&&x| x == c).count();
        let tok = match c {
            'y' => Tok::Year(run),
            'M' => Tok::Month(run),
            'd' => Tok::Day(run),
            'H' => Tok::Hour24(run.min(2)),
            'h' => Tok::Hour12(run.min(2)),
            'm' => Tok::Minute(run.min(2)),
            's' => Tok::Second(run.min(2)),
            'f' | 'F' if run > 7 => return Err("more than 7 fraction digits in date format".into()),
            'f' => Tok::Frac(run, true),
            'F' => Tok::Frac(run, false),
            't' => Tok::AmPm(run.min(2)),
            'z' => Tok::Zone(run.min(3)),
            'K' => Tok::Kind,
            'g' => {
                // Era ("A.D."): nothing useful to print or read in a provisioning feed.
                i += run;
                continue;
            }
            '\'' | '"' => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|&x| x == c)
                    .ok_or_else(|| format!("unterminated quoted text in date format \"{fmt}\""))?;
                let text: String = chars[i + 1..i + 1 + end].iter().collect();
                lit(&mut toks, &text);
                i += end + 2;
                continue;
            }
            '\\' => {
                let next = chars
                    .get(i + 1)
                    .ok_or_else(|| "date format ends with a lone '\\'".to_string())?;
                lit(&mut toks, &next.to_string());
                i += 2;
                continue;
            }
            '%' => {
                i += 1;
                continue;
            }
            other => {
                lit(&mut toks, &other.to_string());
                i += 1;
                continue;
            }
        };
        toks.push(tok);
        i += run;
    }
    Ok(toks)
}

/// Formats a UTC date with a .NET custom (or one-letter standard) format string.
pub fn format(d: &DateTime<Utc>, fmt: &str) -> Result<String, String> {
    let mut out = String::new();
    for tok in tokenize(fmt)? {
        match tok {
            Tok::Year(1) => out.push_str(&(d.year() % 100).to_string()),
            Tok::Year(2) => out.push_str(&format!("{:02}", d.year() % 100)),
            Tok::Year(n) => out.push_str(&format!("{:0n$}", d.year())),
            Tok::Month(1) => out.push_str(&d.month().to_string()),
            Tok::Month(2) => out.push_str(&format!("{:02}", d.month())),
            Tok::Month(3) => out.push_str(&MONTHS[d.month0() as usize][..3]),
            Tok::Month(_) => out.push_str(MONTHS[d.month0() as usize]),
            Tok::Day(1) => out.push_str(&d.day().to_string()),
            Tok::Day(2) => out.push_str(&format!("{:02}", d.day())),
            Tok::Day(3) => out.push_str(&DAYS[d.weekday().num_days_from_sunday() as usize][..3]),
            Tok::Day(_) => out.push_str(DAYS[d.weekday().num_days_from_sunday() as usize]),
            Tok::Hour24(n) => out.push_str(&format!("{:0n$}", d.hour())),
            Tok::Hour12(n) => {
                let h = match d.hour() % 12 {
                    0 => 12,
                    h => h,
                };
                out.push_str(&format!("{h:0n$}"));
            }
            Tok::Minute(n) => out.push_str(&format!("{:0n$}", d.minute())),
            Tok::Second(n) => out.push_str(&format!("{:0n$}", d.second())),
            Tok::Frac(n, exact) => {
                let digits = format!("{:07}", d.timestamp_subsec_nanos() / 100);
                let mut part = digits[..n].to_string();
                if !exact {
                    part = part.trim_end_matches('0').to_string();
                    // .NET drops the separator too when nothing follows it.
                    if part.is_empty() && out.ends_with('.') {
                        out.pop();
                    }
                }
                out.push_str(&part);
            }
            Tok::AmPm(n) => {
                let tt = if d.hour() < 12 { "AM" } else { "PM" };
                out.push_str(&tt[..n]);
            }
            Tok::Zone(1) => out.push_str("+0"),
            Tok::Zone(2) => out.push_str("+00"),
            Tok::Zone(_) => out.push_str("+00:00"),
            Tok::Kind => out.push('Z'),
            Tok::Lit(s) => out.push_str(&s),
        }
    }
    Ok(out)
}

/// Reads `text` with a .NET custom format string, like `DateTime.ParseExact` with
/// `RoundtripKind | AllowLeadingWhite | AllowTrailingWhite`.
pub fn parse_exact(text: &str, fmt: &str) -> Result<DateTime<Utc>, String> {
    let fail = || format!("\"{text}\" does not match the date format \"{fmt}\"");
    let mut s = Cursor { rest: text.trim() };
    let (mut year, mut month, mut day) = (1i32, 1u32, 1u32);
    let (mut hour, mut minute, mut second, mut nanos) = (0u32, 0u32, 0u32, 0u32);
    let mut pm: Option<bool> = None;
    let mut twelve = false;
    let mut offset_secs = 0i32;
    for tok in tokenize(fmt)? {
        match tok {
            Tok::Year(n) if n <= 2 => {
                let y = s.digits(if n == 1 { 1 } else { 2 }, 2).ok_or_else(fail)? as i32;
                // .NET's TwoDigitYearMax of 2049.
                year = if y < 50 { 2000 + y } else { 1900 + y };
            }
            Tok::Year(n) => year = s.digits(n, n.max(4)).ok_or_else(fail)? as i32,
            Tok::Month(n) if n <= 2 => month = s.digits(n, 2).ok_or_else(fail)?,
            Tok::Month(n) => month = s.name(&MONTHS, n == 3).ok_or_else(fail)? as u32 + 1,
            Tok::Day(n) if n <= 2 => day = s.digits(n, 2).ok_or_else(fail)?,
            Tok::Day(n) => {
                s.name(&DAYS, n == 3).ok_or_else(fail)?;
            }
            Tok::Hour24(n) => hour = s.digits(n, 2).ok_or_else(fail)?,
            Tok::Hour12(n) => {
                hour = s.digits(n, 2).ok_or_else(fail)?;
                twelve = true;
            }
            Tok::Minute(n) => minute = s.digits(n, 2).ok_or_else(fail)?,
            Tok::Second(n) => second = s.digits(n, 2).ok_or_else(fail)?,
            Tok::Frac(n, exact) => {
                let min = if exact { n } else { 0 };
                let len = s
                    .rest
                    .chars()
                    .take(n)
                    .take_while(char::is_ascii_digit)
                    .count();
                if len < min {
                    return Err(fail());
                }
                if len > 0 {
                    nanos = frac_nanos(&s.rest[..len]).ok_or_else(fail)?;
                }
                s.rest = &s.rest[len..];
            }
            Tok::AmPm(n) => {
                let upper = s.rest.to_ascii_uppercase();
                let (am, pm_text) = if n == 1 { ("A", "P") } else { ("AM", "PM") };
                if upper.starts_with(am) {
                    pm = Some(false);
                } else if upper.starts_with(pm_text) {
                    pm = Some(true);
                } else {
                    return Err(fail());
                }
                s.rest = &s.rest[n..];
            }
            Tok::Zone(_) | Tok::Kind => {
                if let Some(rest) = s.rest.strip_prefix(['Z', 'z']).filter(|_| tok == Tok::Kind) {
                    s.rest = rest;
                    continue;
                }
                let sign = match s.rest.chars().next() {
                    Some('+') => 1,
                    Some('-') => -1,
                    _ if tok == Tok::Kind => continue,
                    _ => return Err(fail()),
                };
                s.rest = &s.rest[1..];
                let h = s.digits(1, 2).ok_or_else(fail)? as i32;
                let mut m = 0;
                if let Some(rest) = s.rest.strip_prefix(':') {
                    s.rest = rest;
                    m = s.digits(2, 2).ok_or_else(fail)? as i32;
                }
                offset_secs = sign * (h * 3600 + m * 60);
            }
            Tok::Lit(lit) => {
                if lit.chars().all(char::is_whitespace) {
                    // .NET lets one whitespace in the format match any run of whitespace.
                    s.rest = s.rest.trim_start();
                } else {
                    s.rest = s.rest.strip_prefix(lit.as_str()).ok_or_else(fail)?;
                }
            }
        }
    }
    if !s.rest.is_empty() {
        return Err(fail());
    }
    if twelve || pm.is_some() {
        if twelve && !(1..=12).contains(&hour) {
            return Err(fail());
        }
        hour %= 12;
        if pm == Some(true) {
            hour += 12;
        }
    }
    build(year, month, day, hour, minute, second, nanos, offset_secs).ok_or_else(fail)
}

struct Cursor<'a> {
    rest: &'a str,
}

impl Cursor<'_> {
    fn digits(&mut self, min: usize, max: usize) -> Option<u32> {
        let len = self
            .rest
            .chars()
            .take(max)
            .take_while(char::is_ascii_digit)
            .count();
        if len < min {
            return None;
        }
        let value = self.rest[..len].parse().ok()?;
        self.rest = &self.rest[len..];
        Some(value)
    }

    fn name(&mut self, names: &[&str], abbreviated: bool) -> Option<usize> {
        for (i, full) in names.iter().enumerate() {
            let want = if abbreviated { &full[..3] } else { full };
            if self.rest.len() >= want.len()
                && self.rest.is_char_boundary(want.len())
                && self.rest[..want.len()].eq_ignore_ascii_case(want)
            {
                self.rest = &self.rest[want.len()..];
                return Some(i);
            }
        }
        None
    }
}

/// Naive UTC wall clock of a date, for month arithmetic.
pub(crate) fn naive(d: &DateTime<Utc>) -> NaiveDateTime {
    d.naive_utc()
}
