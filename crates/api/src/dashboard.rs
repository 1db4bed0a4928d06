//! The dashboard: one self-contained HTML page at `GET /` (inline CSS and JS, no build step,
//! nothing fetched from elsewhere) and the "Current status" endpoint it polls.
//!
//! The page itself holds no data, so it is served without the token; everything it shows
//! comes from the JSON endpoints, which need the token like the rest of the API. The page
//! asks for the token once and keeps it in `sessionStorage` (gone when the tab closes). For
//! scripted use it also reads the URL fragment: `/#token=…&job=…&status=failure&entry=<id>`
//! (a fragment is never sent to the server, so the token stays out of access logs).
//!
//! | method | path | does |
//! |---|---|---|
//! | GET | `/` | the page (no token) |
//! | GET | `/api/jobs/{name}/current` | Entra's "Current status": cycle type, percent complete, estimated completion, objects managed, statistics to date, last cycle, quarantine, held deletions |

use crate::logs::{JobStores, blocking, store_of};
use crate::{ApiState, error};
use axum::Router;
use axum::extract::{Extension, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use scimsync_engine::{CycleKind, CycleTotals};
use scimsync_service::{CommandError, JobStatus};
use serde_json::{Value, json};

const PAGE: &str = include_str!("../assets/dashboard.html");

/// `GET /`: the page, outside the token check (it carries no data).
pub fn page() -> Router {
    Router::new().route("/", get(serve_page))
}

async fn serve_page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // Everything is inline; nothing may be loaded from elsewhere.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                 connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
                 frame-ancestors 'none'",
            ),
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        PAGE,
    )
        .into_response()
}

pub(crate) fn routes() -> Router<ApiState> {
    Router::new().route("/api/jobs/{name}/current", get(current))
}

async fn current(
    State(s): State<ApiState>,
    stores: Option<Extension<JobStores>>,
    Path(name): Path<String>,
) -> Response {
    let status = match s.handle.status(&name) {
        Ok(st) => st,
        Err(CommandError::UnknownJob(_)) => {
            return error(
                StatusCode::NOT_FOUND,
                "UnknownJob",
                format!("no job named {name:?}"),
            );
        }
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, "Failed", e.to_string()),
    };
    // Without the stores the page still shows what the service knows.
    let (totals, managed) = match store_of(stores, &name) {
        Ok(js) => {
            let job = name.clone();
            blocking(move || {
                Ok((
                    scimsync_engine::cycle_totals(&*js.store, &job)?,
                    Some(js.store.list(&job)?.len()),
                ))
            })
            .await
            .unwrap_or_default()
        }
        Err(_) => (CycleTotals::default(), None),
    };
    axum::Json(current_status(&status, &totals, managed, Utc::now())).into_response()
}

/// What Entra's "Current status" shows, plus an estimated completion time for a running
/// cycle (elapsed time scaled by the share of objects left).
pub fn current_status(
    s: &JobStatus,
    totals: &CycleTotals,
    objects_managed: Option<usize>,
    now: DateTime<Utc>,
) -> Value {
    let last = s.last_cycle.as_ref();
    let percent = s
        .progress
        .filter(|p| p.total > 0)
        .map(|p| (p.done as f64 * 100.0 / p.total as f64).min(100.0));
    let eta = match (s.running_since, s.progress) {
        (Some(since), Some(p)) if p.done > 0 && p.total >= p.done => {
            let elapsed = (now - since).num_milliseconds().max(0) as f64;
            let left = elapsed * (p.total - p.done) as f64 / p.done as f64;
            Some(now + chrono::Duration::milliseconds(left as i64))
        }
        _ => None,
    };
    // The engine decides the kind when the cycle starts; a job that never completed one
    // runs its initial cycle.
    let cycle_type = match last {
        None => "initial",
        Some(c) if s.running_since.is_none() && c.kind == CycleKind::Initial => "initial",
        Some(_) => "incremental",
    };
    json!({
        "job": s.name,
        "state": s.state,
        "running": s.running_since.is_some(),
        "runningSince": s.running_since,
        "cycleType": cycle_type,
        "phase": s.progress.map(|p| p.phase),
        "done": s.progress.map(|p| p.done),
        "total": s.progress.map(|p| p.total),
        "percentComplete": percent,
        "estimatedCompletion": eta,
        "nextRun": s.next_run,
        "objectsManaged": objects_managed,
        "statisticsToDate": totals,
        "lastCycle": last.map(|c| json!({
            "cycleId": c.cycle_id,
            "kind": c.kind,
            "started": c.started,
            "finished": c.finished,
            "durationMs": (c.finished - c.started).num_milliseconds().max(0),
            "tally": c.tally,
            "held": c.held,
        })),
        "lastError": s.last_error,
        "escrowCount": s.escrow_count,
        "deletionsHeld": s.deletions_held,
        "held": s.held,
        "quarantine": s.quarantine,
        "stateError": s.state_error,
        // On PostgreSQL: the replica holding the job's lease.
        "lease": s.lease,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use scimsync_engine::{LastCycle, Progress, Tally};
    use scimsync_service::{HeldSummary, JobState};

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn status() -> JobStatus {
        JobStatus {
            name: "app".into(),
            state: JobState::Running,
            schedule: "40m".into(),
            next_run: None,
            running_since: Some(at("2026-03-02T09:00:00Z")),
            progress: Some(Progress {
                phase: "users",
                done: 250,
                total: 1000,
            }),
            last_cycle: Some(LastCycle {
                cycle_id: "c7".into(),
                kind: CycleKind::Incremental,
                started: at("2026-03-02T08:20:00Z"),
                finished: at("2026-03-02T08:20:30Z"),
                tally: Tally {
                    created: 1,
                    ..Default::default()
                },
                source_users: 40,
                full_read: false,
                held: 0,
                deletions_held: false,
                notes: Vec::new(),
            }),
            last_error: None,
            cycles_run: 7,
            skipped_slots: 0,
            concurrency: 4,
            escrow_count: 2,
            escrows: Vec::new(),
            quarantine: None,
            deletions_held: false,
            held: None,
            state_error: None,
            lease: None,
        }
    }

    #[test]
    fn current_status_reports_percent_eta_and_last_cycle() {
        let now = at("2026-03-02T09:01:00Z");
        let v = current_status(&status(), &CycleTotals::default(), Some(40), now);
        assert_eq!(v["percentComplete"], json!(25.0));
        // A quarter took a minute: three more minutes to go.
        assert_eq!(v["estimatedCompletion"], json!(at("2026-03-02T09:04:00Z")));
        assert_eq!(v["cycleType"], "incremental");
        assert_eq!(v["lastCycle"]["cycleId"], "c7");
        assert_eq!(v["lastCycle"]["durationMs"], 30_000);
        assert_eq!(v["objectsManaged"], 40);
        assert_eq!(v["escrowCount"], 2);
        assert_eq!(v["deletionsHeld"], false);
        assert!(v["held"].is_null());
    }

    #[test]
    fn current_status_names_the_replica_holding_the_lease() {
        let mut s = status();
        assert!(
            current_status(
                &s,
                &CycleTotals::default(),
                None,
                at("2026-03-02T09:01:00Z")
            )["lease"]
                .is_null()
        );
        s.lease = Some(scimsync_service::LeaseStatus {
            owner: "node-b-4242-x1".into(),
            epoch: 7,
            expires_at: at("2026-03-02T09:01:30Z"),
            live: true,
        });
        let v = current_status(
            &s,
            &CycleTotals::default(),
            None,
            at("2026-03-02T09:01:00Z"),
        );
        assert_eq!(v["lease"]["owner"], "node-b-4242-x1");
        assert_eq!(v["lease"]["epoch"], 7);
    }

    #[test]
    fn current_status_carries_the_held_set() {
        let mut s = status();
        s.running_since = None;
        s.progress = None;
        s.state = JobState::WaitingForApproval;
        s.deletions_held = true;
        s.held = Some(HeldSummary {
            count: 12,
            disables: 10,
            deletes: 2,
            reasons: vec!["12 disables and deletes exceed the deletion threshold of 5".into()],
            fingerprint: "00ff00ff00ff00ff".into(),
            cycle_id: "c7".into(),
            at: at("2026-03-02T08:20:30Z"),
        });
        let v = current_status(
            &s,
            &CycleTotals::default(),
            None,
            at("2026-03-02T09:01:00Z"),
        );
        assert_eq!(v["deletionsHeld"], true);
        assert_eq!(v["held"]["count"], 12);
        assert_eq!(v["held"]["fingerprint"], "00ff00ff00ff00ff");
        assert!(
            v["held"]["reasons"][0]
                .as_str()
                .unwrap()
                .contains("threshold")
        );
        assert_eq!(v["state"], "waitingForApproval");
    }

    #[test]
    fn a_job_that_never_finished_a_cycle_runs_its_initial_one() {
        let mut s = status();
        s.last_cycle = None;
        s.progress = None;
        let v = current_status(
            &s,
            &CycleTotals::default(),
            None,
            at("2026-03-02T09:01:00Z"),
        );
        assert_eq!(v["cycleType"], "initial");
        assert!(v["estimatedCompletion"].is_null());
        assert!(v["lastCycle"].is_null());
    }
}
