//! Provisioning logs for admins: the filters `scimsync logs` and the admin API share, masking
//! of secrets, Entra-style CSV, and the log and cycle-history endpoints.
//!
//! | method | path | does |
//! |---|---|---|
//! | GET | `/api/jobs/{name}/logs?cycle=&status=&action=&user=&since=&until=&limit=` | entries, newest first |
//! | GET | `/api/jobs/{name}/logs.csv?…` | the same filters, every matching entry as Entra's CSV download (newest first) |
//! | GET | `/api/jobs/{name}/logs/{id}` | one entry |
//! | GET | `/api/jobs/{name}/history` | recent cycle summaries and the totals to date |
//!
//! The endpoints read the job's state store, which the service holds open; `serve` hands the
//! stores to the router with [`with_stores`].

use crate::{ApiState, error};
use axum::extract::{Extension, Path, Query};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use scimsync_core::{LogAction, LogEntry, LogStatus, StateStore, StoreError};
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// What masked values read as, in every output format.
pub const REDACTED: &str = "[Redacted]";

/// One job's state store, as the admin endpoints see it.
#[derive(Clone)]
pub struct JobStore {
    pub store: Arc<dyn StateStore>,
    /// The store's directory on disk, for the size metric (`None` for in-memory stores).
    pub dir: Option<PathBuf>,
}

/// The state stores of the jobs `serve` runs, by job name.
#[derive(Clone, Default)]
pub struct JobStores(Arc<BTreeMap<String, JobStore>>);

impl JobStores {
    pub fn new(stores: BTreeMap<String, JobStore>) -> Self {
        JobStores(Arc::new(stores))
    }
    pub fn get(&self, job: &str) -> Option<&JobStore> {
        self.0.get(job)
    }
    pub fn iter(&self) -> impl Iterator<Item = (&String, &JobStore)> {
        self.0.iter()
    }
}

/// Give the log, history, metrics and dashboard endpoints of `router` the jobs' stores:
/// `with_stores(scimsync_api::router(handle, token), stores)`.
pub fn with_stores(router: Router, stores: JobStores) -> Router {
    router.layer(Extension(stores))
}

/// Which entries to show. Empty matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogFilter {
    pub cycle: Option<String>,
    pub status: Option<LogStatus>,
    pub action: Option<LogAction>,
    /// Case-insensitive substring of the source id, target id or display name (UPN).
    pub user: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

impl LogFilter {
    pub fn matches(&self, e: &LogEntry) -> bool {
        if self.status.is_some_and(|s| s != e.status)
            || self.action.is_some_and(|a| a != e.provisioning_action)
            || self.since.is_some_and(|t| e.activity_date_time < t)
            || self.until.is_some_and(|t| e.activity_date_time > t)
        {
            return false;
        }
        if let Some(c) = &self.cycle
            && c != &e.cycle_id
        {
            return false;
        }
        if let Some(u) = &self.user {
            let u = u.to_lowercase();
            let hit = |s: &str| s.to_lowercase().contains(&u);
            if !(hit(&e.source_id)
                || hit(&e.source_display_name)
                || e.target_id.as_deref().is_some_and(hit))
            {
                return false;
            }
        }
        true
    }
}

/// `success|warning|failure|skipped`, any case.
pub fn parse_status(s: &str) -> Result<LogStatus, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "success" => Ok(LogStatus::Success),
        "warning" => Ok(LogStatus::Warning),
        "failure" | "failed" => Ok(LogStatus::Failure),
        "skipped" | "skip" => Ok(LogStatus::Skipped),
        other => Err(format!(
            "unknown status {other:?}: use success, warning, failure or skipped"
        )),
    }
}

/// `create|update|delete|disable|stageddelete|other`, any case (Entra's names).
pub fn parse_action(s: &str) -> Result<LogAction, String> {
    match s
        .trim()
        .to_ascii_lowercase()
        .replace(['-', '_'], "")
        .as_str()
    {
        "create" => Ok(LogAction::Create),
        "update" => Ok(LogAction::Update),
        "delete" => Ok(LogAction::Delete),
        "disable" => Ok(LogAction::Disable),
        "stageddelete" => Ok(LogAction::StagedDelete),
        "other" | "skip" => Ok(LogAction::Other),
        other => Err(format!(
            "unknown action {other:?}: use create, update, delete, disable, stageddelete or other"
        )),
    }
}

/// An RFC 3339 time, a date (`2026-03-02`, midnight UTC) or an age before `now` (`30m`,
/// `2h`, `7d`, `1w`).
pub fn parse_time(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d")
        && let Some(t) = d.and_hms_opt(0, 0, 0)
    {
        return Ok(t.and_utc());
    }
    let bad = || {
        format!(
            "invalid time {s:?}: use RFC 3339 (2026-03-02T09:00:00Z), a date, or an age such as 30m, 2h, 7d"
        )
    };
    let unit = s.chars().last().ok_or_else(bad)?;
    let n: i64 = s[..s.len() - unit.len_utf8()].parse().map_err(|_| bad())?;
    let age = match unit {
        's' => Duration::try_seconds(n),
        'm' => Duration::try_minutes(n),
        'h' => Duration::try_hours(n),
        'd' => Duration::try_days(n),
        'w' => Duration::try_weeks(n),
        _ => None,
    }
    .ok_or_else(bad)?;
    now.checked_sub_signed(age).ok_or_else(bad)
}

fn is_secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.contains("password") || n.contains("secret")
}

/// The entry as admins may see it: modified properties whose name says password or secret
/// are masked (attributes flagged `Redact` in the mapping were masked by the engine already).
pub fn mask(entry: &LogEntry) -> LogEntry {
    let mut e = entry.clone();
    for p in &mut e.modified_properties {
        if is_secret_name(&p.display_name) {
            if p.old_value.is_some() {
                p.old_value = Some(REDACTED.into());
            }
            if p.new_value.is_some() {
                p.new_value = Some(REDACTED.into());
            }
        }
    }
    e
}

/// The entry with its reason filled by the rule `logs` and the CSV download use, so the
/// dashboard's detail says why a disable or skip happened even when no explicit reason was kept.
fn with_reason(mut e: LogEntry) -> LogEntry {
    if e.reason.as_deref().is_none_or(str::is_empty) {
        let why = scimsync_core::text::reason(&e);
        e.reason = (!why.is_empty()).then_some(why);
    }
    e
}

/// The job's matching entries, masked, oldest first.
pub fn query(
    store: &dyn StateStore,
    job: &str,
    filter: &LogFilter,
) -> Result<Vec<LogEntry>, StoreError> {
    Ok(store
        .logs(job, filter.cycle.as_deref())?
        .iter()
        .filter(|e| filter.matches(e))
        .map(mask)
        .collect())
}

/// The lowercase name Entra's log download uses for an action or status.
pub fn name_of<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_ascii_lowercase))
        .unwrap_or_default()
}

/// Steps flattened to one cell: `import [success] description | matching [...] ...`.
pub fn steps_text(e: &LogEntry) -> String {
    e.provisioning_steps
        .iter()
        .map(|s| {
            format!(
                "{} [{}] {}",
                s.provisioning_step_type,
                name_of(&s.status),
                s.description
            )
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Modified properties flattened to one cell: `name: old -> new; ...`.
pub fn properties_text(e: &LogEntry) -> String {
    e.modified_properties
        .iter()
        .map(|p| {
            format!(
                "{}: {} -> {}",
                p.display_name,
                p.old_value.as_deref().unwrap_or(""),
                p.new_value.as_deref().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The columns of [`to_csv`], after Entra's provisioning log download.
pub const CSV_HEADER: &[&str] = &[
    "Date (UTC)",
    "Id",
    "Job ID",
    "Cycle ID",
    "Change ID",
    "Action",
    "Status",
    "Error Code",
    "Reason",
    "Source ID",
    "Source Display Name",
    "Target ID",
    "Duration (ms)",
    "Provisioning Steps",
    "Modified Properties",
];

/// One row per entry; steps and modified properties flattened in their own columns, the
/// reason filled by [`scimsync_core::text::reason`] (as the CLI's table shows it), every cell
/// safe to open in a spreadsheet. `scimsync logs --format csv` writes this too.
pub fn to_csv(entries: &[LogEntry]) -> String {
    use scimsync_core::text;
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    // Writing to a Vec fails only on a bug; such a row is left out rather than panic.
    let _ = w.write_record(CSV_HEADER);
    for e in entries {
        let row = [
            e.activity_date_time.to_rfc3339(),
            e.id.clone(),
            e.job_id.clone(),
            e.cycle_id.clone(),
            e.change_id.clone(),
            name_of(&e.provisioning_action),
            name_of(&e.status),
            e.error_code.map(|c| c.to_string()).unwrap_or_default(),
            text::reason(e),
            e.source_id.clone(),
            e.source_display_name.clone(),
            e.target_id.clone().unwrap_or_default(),
            e.duration_in_milliseconds.to_string(),
            steps_text(e),
            properties_text(e),
        ];
        let _ = w.write_record(row.iter().map(|c| text::spreadsheet_text(c)));
    }
    w.into_inner()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// Query parameters of the log endpoint.
#[derive(Debug, Default, Deserialize)]
pub struct LogQuery {
    pub cycle: Option<String>,
    pub status: Option<String>,
    pub action: Option<String>,
    pub user: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub limit: Option<usize>,
}

fn given(o: &Option<String>) -> Option<&str> {
    o.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl LogQuery {
    /// Empty parameters mean "any" (an HTML form sends them empty).
    pub fn filter(&self, now: DateTime<Utc>) -> Result<LogFilter, String> {
        Ok(LogFilter {
            cycle: given(&self.cycle).map(str::to_string),
            status: given(&self.status).map(parse_status).transpose()?,
            action: given(&self.action).map(parse_action).transpose()?,
            user: given(&self.user).map(str::to_string),
            since: given(&self.since).map(|s| parse_time(s, now)).transpose()?,
            until: given(&self.until).map(|s| parse_time(s, now)).transpose()?,
        })
    }
}

/// Entries the log endpoint returns at most (and by default).
pub const MAX_LIMIT: usize = 5000;
const DEFAULT_LIMIT: usize = 200;

pub(crate) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/jobs/{name}/logs", get(list))
        .route("/api/jobs/{name}/logs.csv", get(list_csv))
        .route("/api/jobs/{name}/logs/{id}", get(one))
        .route("/api/jobs/{name}/history", get(history))
}

/// The job's store, or the response that explains why there is none.
// The error is the handler's answer, returned at once; boxing it would buy nothing.
#[allow(clippy::result_large_err)]
pub(crate) fn store_of(
    stores: Option<Extension<JobStores>>,
    job: &str,
) -> Result<JobStore, Response> {
    let Some(Extension(stores)) = stores else {
        return Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "NoStores",
            "this server was started without access to the jobs' state stores",
        ));
    };
    stores.get(job).cloned().ok_or_else(|| {
        error(
            StatusCode::NOT_FOUND,
            "UnknownJob",
            format!("no job named {job:?}"),
        )
    })
}

/// Run a store read off the async threads (sled blocks).
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, Response> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            e.code.as_str(),
            e.message,
        )),
        Err(e) => Err(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "StateStoreFailed",
            format!("reading the state store failed: {e}"),
        )),
    }
}

/// The job's entries that `q` selects, oldest first (the shared part of the JSON and CSV
/// routes).
async fn matching_entries(
    stores: Option<Extension<JobStores>>,
    name: &str,
    q: &LogQuery,
) -> Result<Vec<LogEntry>, Response> {
    let js = store_of(stores, name)?;
    let filter = q
        .filter(Utc::now())
        .map_err(|m| error(StatusCode::BAD_REQUEST, "BadRequest", m))?;
    let job = name.to_string();
    blocking(move || query(&*js.store, &job, &filter)).await
}

async fn list(
    stores: Option<Extension<JobStores>>,
    Path(name): Path<String>,
    Query(q): Query<LogQuery>,
) -> Response {
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    match matching_entries(stores, &name, &q).await {
        Ok(mut entries) => {
            let total = entries.len();
            entries.reverse();
            entries.truncate(limit);
            Json(json!({"job": name, "total": total, "truncated": total > entries.len(), "entries": entries}))
                .into_response()
        }
        Err(r) => r,
    }
}

async fn list_csv(
    stores: Option<Extension<JobStores>>,
    Path(name): Path<String>,
    Query(q): Query<LogQuery>,
) -> Response {
    match matching_entries(stores, &name, &q).await {
        Ok(mut entries) => {
            entries.reverse();
            if let Some(limit) = q.limit {
                entries.truncate(limit.max(1));
            }
            // The job name is a file stem the config checked; keep the header plain anyway.
            let stem: String = name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            (
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{stem}-provisioning-log.csv\""),
                    ),
                ],
                to_csv(&entries),
            )
                .into_response()
        }
        Err(r) => r,
    }
}

async fn one(
    stores: Option<Extension<JobStores>>,
    Path((name, id)): Path<(String, String)>,
) -> Response {
    let js = match store_of(stores, &name) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let job = name.clone();
    let found = blocking(move || {
        Ok(js
            .store
            .logs(&job, None)?
            .into_iter()
            .rev()
            .find(|e| e.id == id || e.change_id == id)
            .map(|e| with_reason(mask(&e))))
    })
    .await;
    match found {
        Ok(Some(e)) => Json(e).into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("job {name} has no log entry with that id"),
        ),
        Err(r) => r,
    }
}

async fn history(stores: Option<Extension<JobStores>>, Path(name): Path<String>) -> Response {
    let js = match store_of(stores, &name) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let job = name.clone();
    let read = blocking(move || {
        Ok((
            scimsync_engine::cycle_history(&*js.store, &job)?,
            scimsync_engine::cycle_totals(&*js.store, &job)?,
        ))
    })
    .await;
    match read {
        Ok((cycles, totals)) => {
            Json(json!({"job": name, "cycles": cycles, "totals": totals})).into_response()
        }
        Err(r) => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scimsync_core::{ErrorCode, LogStep, ModifiedProperty};

    pub(crate) fn entry(id: &str, status: LogStatus, action: LogAction) -> LogEntry {
        LogEntry {
            id: id.into(),
            activity_date_time: DateTime::parse_from_rfc3339("2026-03-02T09:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
            job_id: "app".into(),
            cycle_id: "c1".into(),
            change_id: format!("ch-{id}"),
            provisioning_action: action,
            status,
            error_code: (status == LogStatus::Failure).then_some(ErrorCode::SchemaViolation),
            reason: Some("the target said, \"no\"".into()),
            source_id: "src-1".into(),
            source_display_name: "ada@contoso.example".into(),
            target_id: Some("t-1".into()),
            provisioning_steps: vec![LogStep {
                name: "EntryExportAdd".into(),
                provisioning_step_type: "export".into(),
                status,
                description: "POST /Users".into(),
            }],
            modified_properties: vec![
                ModifiedProperty {
                    display_name: "password".into(),
                    old_value: None,
                    new_value: Some("hunter2-secret-value".into()),
                },
                ModifiedProperty {
                    display_name: "displayName".into(),
                    old_value: Some("Ada".into()),
                    new_value: Some("Ada L.".into()),
                },
            ],
            duration_in_milliseconds: 12,
        }
    }

    #[test]
    fn an_entry_without_a_kept_reason_says_why_from_its_steps() {
        let mut e = entry("1", LogStatus::Success, LogAction::Disable);
        e.reason = None;
        e.provisioning_steps = vec![
            LogStep {
                name: "Scope".into(),
                provisioning_step_type: "scoping".into(),
                status: LogStatus::Skipped,
                description: "no longer assigned to the app".into(),
            },
            LogStep {
                name: "EntryExportUpdate".into(),
                provisioning_step_type: "export".into(),
                status: LogStatus::Success,
                description: "PATCH active=false".into(),
            },
        ];
        let filled = with_reason(e.clone());
        assert_eq!(
            filled.reason.as_deref(),
            Some("no longer assigned to the app")
        );
        // A kept reason is the admin's answer as it was written.
        e.reason = Some("the target said, \"no\"".into());
        assert_eq!(with_reason(e.clone()).reason, e.reason);
    }

    #[test]
    fn filters_by_status_action_user_and_time() {
        let now = DateTime::parse_from_rfc3339("2026-03-02T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let e = entry("1", LogStatus::Failure, LogAction::Create);
        let f = |q: LogQuery| q.filter(now).unwrap().matches(&e);
        assert!(f(LogQuery::default()));
        assert!(f(LogQuery {
            status: Some("FAILURE".into()),
            action: Some("create".into()),
            user: Some("ADA@".into()),
            since: Some("2h".into()),
            ..Default::default()
        }));
        assert!(!f(LogQuery {
            since: Some("30m".into()),
            ..Default::default()
        }));
        assert!(!f(LogQuery {
            status: Some("success".into()),
            ..Default::default()
        }));
        assert!(!f(LogQuery {
            user: Some("bob".into()),
            ..Default::default()
        }));
        assert!(
            LogQuery {
                action: Some("explode".into()),
                ..Default::default()
            }
            .filter(now)
            .is_err()
        );
        assert_eq!(parse_action("StagedDelete"), Ok(LogAction::StagedDelete));
        assert_eq!(
            parse_time("2026-03-01", now).unwrap().to_rfc3339(),
            "2026-03-01T00:00:00+00:00"
        );
    }

    #[test]
    fn csv_is_one_row_per_entry_quoted_and_masked() {
        let entries: Vec<LogEntry> = [
            entry("1", LogStatus::Failure, LogAction::Create),
            entry("2", LogStatus::Success, LogAction::Update),
        ]
        .iter()
        .map(mask)
        .collect();
        let csv = to_csv(&entries);
        assert!(!csv.contains("hunter2"));
        assert!(csv.contains("password:  -> [Redacted]"));
        assert!(csv.contains("\"the target said, \"\"no\"\"\""));
        assert!(csv.contains("SchemaViolation"));
        assert!(csv.contains("export [failure] POST /Users"));
        // Header + two rows; no cell breaks a line.
        assert_eq!(csv.matches("\r\n").count(), 3);
    }

    /// Issue 15: the download's Reason column is filled for entries without an error, by the
    /// same rule as `scimsync logs` (here: the scoping step that disabled the user).
    #[test]
    fn csv_reason_says_why_without_an_error() {
        let mut e = entry("1", LogStatus::Success, LogAction::Disable);
        e.reason = None;
        e.provisioning_steps.insert(
            0,
            LogStep {
                name: "Scope".into(),
                provisioning_step_type: "scoping".into(),
                status: LogStatus::Skipped,
                description: "out of scope: not assigned to the application".into(),
            },
        );
        let csv = to_csv(&[e.clone()]);
        let mut reader = csv::Reader::from_reader(csv.as_bytes());
        let reason = reader
            .headers()
            .unwrap()
            .iter()
            .position(|h| h == "Reason")
            .unwrap();
        let row = reader.records().next().unwrap().unwrap();
        assert_eq!(
            &row[reason],
            "out of scope: not assigned to the application"
        );
        assert_eq!(row[reason], scimsync_core::text::reason(&e));
    }
}
