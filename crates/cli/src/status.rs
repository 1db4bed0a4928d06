//! `scimsync status`: per job, the last cycle, the current one (when `serve` runs it), escrows,
//! quarantine and held deletions, with the totals to date.
//!
//! Read from each job's state store, or through the admin API of the `serve` holding it.

use crate::logs::{Access, admin_get, open_existing};
use chrono::Utc;
use scimsync_core::{StateStore, StoreError};
use scimsync_engine::JobState;
use scimsync_service::{HeldSummary, QuarantineState};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// The flags of `scimsync status`.
#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    /// Every job of this config directory (and the admin API of its `serve`); with --job,
    /// that one job.
    #[arg(long, value_name = "DIR", env = "SCIMSYNC_CONFIG_DIR")]
    pub config_dir: Option<PathBuf>,
    /// One job file.
    #[arg(long, value_name = "FILE", conflicts_with = "job")]
    pub config: Option<PathBuf>,
    /// One job, by name (found in --config-dir, or by its state alone).
    #[arg(long, value_name = "NAME")]
    pub job: Option<String>,
    #[command(flatten)]
    pub state: crate::jobref::StateArg,
    /// Print every job's status as one JSON array.
    #[arg(long)]
    pub json: bool,
}

/// A job to show: its name, and its schedule when its file is known.
struct Shown {
    name: String,
    schedule: Option<scimsync_config::Schedule>,
}

/// Which jobs: one (--config, --job), those of a config directory, or every store under
/// `--state`.
fn jobs(args: &StatusArgs) -> Result<Vec<Shown>, u8> {
    let state = &args.state.state;
    let from = |c: scimsync_config::JobConfig| Shown {
        name: c.name,
        schedule: Some(c.schedule),
    };
    if let Some(file) = &args.config {
        return crate::wiring::load(file).map(|c| vec![from(c)]);
    }
    if let Some(dir) = &args.config_dir {
        let (loaded, errors) = scimsync_config::load_dir(dir);
        let all: Vec<Shown> = loaded.into_iter().map(|l| from(l.job)).collect();
        if let Some(name) = &args.job {
            return match all.into_iter().find(|s| &s.name == name) {
                Some(s) => Ok(vec![s]),
                None => {
                    for e in &errors {
                        eprintln!("error: {e}");
                    }
                    let (loaded, _) = scimsync_config::load_dir(dir);
                    let names: Vec<String> = loaded.into_iter().map(|l| l.job.name).collect();
                    let names: Vec<&str> = names.iter().map(String::as_str).collect();
                    eprintln!(
                        "error: {}",
                        crate::jobref::unknown_job(name, &dir.display().to_string(), &names)
                    );
                    Err(2)
                }
            };
        }
        for e in &errors {
            eprintln!("warning: {e}");
        }
        return Ok(all);
    }
    if let Some(name) = &args.job {
        return Ok(vec![Shown {
            name: name.clone(),
            schedule: None,
        }]);
    }
    let Some(names) = crate::jobref::state_jobs(state) else {
        eprintln!(
            "error: no state directory {} (give --state, --config or --config-dir)",
            state.display()
        );
        return Err(1);
    };
    Ok(names
        .into_iter()
        .map(|name| Shown {
            name,
            schedule: None,
        })
        .collect())
}

/// A value read from the job's state, or `None` with the error kept for the admin.
fn keep<T>(errors: &mut Vec<String>, r: Result<T, StoreError>) -> Option<T> {
    r.map_err(|e| errors.push(e.message)).ok()
}

/// The same shape as the admin API's job status, read offline.
pub(crate) fn offline_status(store: &dyn StateStore, job: &str) -> Value {
    let js = JobState::new(store, job);
    let mut errors = Vec::new();
    let last = keep(&mut errors, js.last_cycle()).flatten();
    let quarantine: Option<QuarantineState> = keep(&mut errors, js.quarantine()).flatten();
    let held = keep(&mut errors, js.held())
        .flatten()
        .filter(|h| !h.ops.is_empty());
    let escrows = keep(&mut errors, js.escrow_count());
    let managed = keep(&mut errors, store.list(job).map(|l| l.len()));
    let totals = keep(&mut errors, scimsync_engine::cycle_totals(store, job));
    json!({
        "name": job,
        "state": "notRunning",
        "lastCycle": last,
        "progress": null,
        "escrowCount": escrows,
        "quarantine": quarantine,
        "deletionsHeld": held.is_some(),
        "held": held.as_ref().map(HeldSummary::from),
        "objectsManaged": managed,
        "totals": totals,
        "stateError": (!errors.is_empty()).then(|| errors.join("; ")),
    })
}

/// A value of the status, shown safely ([`crate::render::visible`]).
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => crate::render::visible(s).into_owned(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// How long a cycle took, from its start and finish times.
fn took(started: &Value, finished: &Value) -> String {
    let parse = |v: &Value| {
        v.as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
    };
    match (parse(started), parse(finished)) {
        (Some(a), Some(b)) => {
            let ms = (b - a).num_milliseconds().max(0);
            format!("{:.1} s", ms as f64 / 1000.0)
        }
        _ => "?".into(),
    }
}

/// The human-readable block for one job.
pub(crate) fn describe(
    s: &Value,
    via_serve: bool,
    config_dir: Option<&Path>,
    now: chrono::DateTime<Utc>,
) -> String {
    let when = |v: &Value| match v.as_str() {
        Some(t) => crate::times::with_relative(t, now),
        None => text(v),
    };
    let mut out = format!(
        "job {}  ({}{})\n",
        text(&s["name"]),
        text(&s["state"]),
        if via_serve {
            ", from the running serve"
        } else {
            ""
        }
    );
    let row = |out: &mut String, k: &str, v: String| out.push_str(&format!("  {k:<12} {v}\n"));
    match s.get("lastCycle").filter(|c| !c.is_null()) {
        Some(c) => {
            let t = &c["tally"];
            row(
                &mut out,
                "last cycle",
                format!(
                    "{} ({}) finished {}, took {}",
                    text(&c["cycleId"]),
                    text(&c["kind"]),
                    when(&c["finished"]),
                    took(&c["started"], &c["finished"])
                ),
            );
            let keys = [
                "created",
                "updated",
                "disabled",
                "deleted",
                "skipped",
                "failed",
                "staged_deletes",
                "escrowed",
            ];
            let counts: Vec<String> = keys
                .iter()
                .map(|k| format!("{} {}", k.replace('_', " "), t[*k].as_u64().unwrap_or(0)))
                .collect();
            row(&mut out, "", counts.join(", "));
        }
        None => row(&mut out, "last cycle", "none yet".into()),
    }
    let current = match s.get("progress").filter(|p| !p.is_null()) {
        Some(p) => {
            let (done, total) = (
                p["done"].as_u64().unwrap_or(0),
                p["total"].as_u64().unwrap_or(0),
            );
            let pct = (done * 100).checked_div(total).unwrap_or(0);
            format!("running: {} {done}/{total} ({pct}%)", text(&p["phase"]))
        }
        None if s.get("runningSince").is_some_and(|r| !r.is_null()) => {
            format!("running since {}", when(&s["runningSince"]))
        }
        None => "not running".into(),
    };
    row(&mut out, "current", current);
    if let Some(l) = s.get("lease").filter(|l| !l.is_null()) {
        let held = if l["live"].as_bool() == Some(true) {
            format!(
                "{} (lease epoch {}, until {})",
                text(&l["owner"]),
                text(&l["epoch"]),
                when(&l["expiresAt"])
            )
        } else {
            format!(
                "none (last {}, lease expired {})",
                text(&l["owner"]),
                when(&l["expiresAt"])
            )
        };
        row(&mut out, "replica", held);
    }
    let next = match (s.get("nextRun").filter(|n| !n.is_null()), via_serve) {
        (Some(n), true) => when(n),
        (Some(n), false) => format!(
            "due {} (one interval after the last start; cycles run under `serve` or `run`)",
            when(n)
        ),
        (None, _) => match s.get("schedule").and_then(Value::as_str) {
            Some(sch) => format!("not scheduled (no `serve` runs it); schedule {sch}"),
            None => "not scheduled (no `serve` runs it)".into(),
        },
    };
    row(&mut out, "next cycle", next);
    row(&mut out, "escrows", text(&s["escrowCount"]));
    let q = match s.get("quarantine").filter(|q| !q.is_null()) {
        Some(q) => format!(
            "{} since {}{}, next attempt {}: {}",
            text(&q["reason"]),
            when(&q["seriesBegan"]),
            if q["disabled"].as_bool() == Some(true) {
                " (disabled)"
            } else {
                ""
            },
            when(&q["nextAttempt"]),
            text(&q["error"])
        ),
        None => "none".into(),
    };
    row(&mut out, "quarantine", q);
    match s.get("held").filter(|h| !h.is_null()) {
        Some(h) => {
            row(
                &mut out,
                "deletions",
                format!(
                    "held {} ({} disables, {} deletes) by cycle {} at {}: waiting for approval, \
                     see `scimsync approve-deletions --job {} --config-dir {} --dry-run`",
                    h["count"].as_u64().unwrap_or(0),
                    h["disables"].as_u64().unwrap_or(0),
                    h["deletes"].as_u64().unwrap_or(0),
                    text(&h["cycleId"]),
                    when(&h["at"]),
                    text(&s["name"]),
                    crate::render::dir_arg(config_dir),
                ),
            );
            for why in h["reasons"].as_array().into_iter().flatten() {
                row(&mut out, "", format!("why: {}", text(why)));
            }
            row(
                &mut out,
                "",
                format!("fingerprint {}", text(&h["fingerprint"])),
            );
        }
        None if s["deletionsHeld"].as_bool() == Some(true) => row(
            &mut out,
            "deletions",
            "held: waiting for `scimsync approve-deletions`".into(),
        ),
        None => row(&mut out, "deletions", "none held".into()),
    }
    if let Some(e) = s.get("stateError").filter(|e| !e.is_null()) {
        row(&mut out, "state error", text(e));
    }
    if let Some(t) = s.get("totals").filter(|t| !t.is_null()) {
        let ops = &t["operations"];
        let sum = |a: &str| {
            ops[a]
                .as_object()
                .map(|m| m.values().filter_map(Value::as_u64).sum::<u64>())
                .unwrap_or(0)
        };
        let failures: u64 = ops
            .as_object()
            .map(|m| m.values().filter_map(|s| s["failure"].as_u64()).sum())
            .unwrap_or(0);
        row(
            &mut out,
            "to date",
            format!(
                "{} cycles; created {}, updated {}, disabled {}, deleted {}; {failures} failures",
                t["cycles"].as_u64().unwrap_or(0),
                sum("create"),
                sum("update"),
                sum("disable"),
                sum("delete")
            ),
        );
    }
    out
}

/// When the next cycle is due, as far as the state tells without a running `serve`: one
/// interval after the last cycle started.
fn next_offline(v: &Value, schedule: Option<&scimsync_config::Schedule>) -> Value {
    let last = v["lastCycle"]["started"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
    match (schedule, last) {
        (Some(scimsync_config::Schedule::Interval(d)), Some(t)) => {
            let due = t.with_timezone(&Utc) + chrono::Duration::from_std(*d).unwrap_or_default();
            json!(due)
        }
        _ => Value::Null,
    }
}

/// A job whose state another process holds, when its admin API cannot tell us more: most
/// likely a `run` (no admin API at all), else a `serve` that did not answer.
fn locked(api_error: &str) -> String {
    let base = "locked by a running scimsync (a `run` cycle, or a `serve`)";
    if api_error.starts_with("no admin token") {
        format!("{base}; try again when its cycle is over, or give the --config-dir of the `serve`")
    } else {
        format!("{base}; its admin API did not answer: {api_error}")
    }
}

/// `scimsync status`.
pub async fn command(args: &StatusArgs) -> u8 {
    let state = args.state.state.as_path();
    let shown = match jobs(args) {
        Ok(n) => n,
        Err(code) => return code,
    };
    if shown.is_empty() {
        eprintln!("no jobs found");
        return 1;
    }
    // Where `approve-deletions` finds the job files, for the hint.
    let hint_dir = args
        .config_dir
        .clone()
        .or_else(|| args.config.as_deref().map(crate::jobref::parent_dir));
    let now = Utc::now();
    let mut code = 0;
    let mut all = Vec::new();
    for job in shown {
        let name = &job.name;
        let got = match open_existing(state, name) {
            Ok(Access::Store(store)) => {
                let mut v = offline_status(&store, name);
                v["nextRun"] = next_offline(&v, job.schedule.as_ref());
                if let Some(l) = crate::store_select::lease_status(name) {
                    v["lease"] = json!(l);
                }
                Ok((v, false))
            }
            Ok(Access::Locked) => {
                admin_get(hint_dir.as_deref(), state, &format!("/api/jobs/{name}"))
                    .await
                    .map(|v| (v, true))
                    .map_err(|e| locked(&e))
            }
            Err(e) => Err(e),
        };
        match got {
            Ok((mut v, via)) => {
                if let Some(s) = &job.schedule {
                    v["schedule"] = json!(s.to_string());
                }
                if args.json {
                    all.push(v);
                } else {
                    outln!("{}", describe(&v, via, hint_dir.as_deref(), now));
                }
            }
            Err(e) => {
                eprintln!("error: job {name}: {e}");
                code = 1;
            }
        }
    }
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&all).unwrap_or_default());
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;
    use scimsync_service::QuarantineReason;

    #[tokio::test]
    async fn offline_status_shows_the_held_set_and_the_quarantine() {
        let (report, store) = crate::test_support::held_job(4).await;
        assert!(report.deletions_held);
        let js = JobState::new(&store, "app");
        let at = report.finished;
        js.set_quarantine(Some(&QuarantineState {
            reason: QuarantineReason::TooManyDeletes,
            series_began: at,
            current_began: at,
            next_attempt: at,
            series_count: 1,
            error_code: None,
            error: "4 disables and deletes were held".into(),
            disabled: false,
        }))
        .unwrap();
        let s = offline_status(&store, "app");
        assert_eq!(s["deletionsHeld"], json!(true));
        assert_eq!(s["held"]["count"], json!(4), "{s}");
        let fingerprint = js.held().unwrap().unwrap().fingerprint;
        assert_eq!(s["held"]["fingerprint"], json!(fingerprint));
        assert_eq!(s["lastCycle"]["cycleId"], json!(report.cycle_id));
        assert!(s.get("stateError").unwrap().is_null(), "{s}");
        let text = describe(&s, false, None, Utc::now());
        assert!(
            text.contains(&format!("{} (incremental)", report.cycle_id)),
            "{text}"
        );
        assert!(text.contains("staged deletes 4"), "{text}");
        assert!(text.contains("held 4 (4 disables, 0 deletes)"), "{text}");
        assert!(text.contains("waiting for approval"), "{text}");
        assert!(text.contains("deletion threshold of 2"), "{text}");
        assert!(
            text.contains(&format!("fingerprint {fingerprint}")),
            "{text}"
        );
        assert!(text.contains("TooManyDeletes since"), "{text}");
    }

    #[test]
    fn values_from_the_state_are_shown_escaped() {
        let s = json!({
            "name": "app",
            "state": "notRunning",
            "quarantine": {
                "reason": "EncounteredQuarantineException",
                "seriesBegan": "2026-01-01T00:00:00Z",
                "nextAttempt": "2026-01-01T06:00:00Z",
                "error": "Unauthorized: \u{1b}[2J\u{7}bad\ntoken",
            },
        });
        let text = describe(&s, false, None, Utc::now());
        assert!(!text.contains(['\u{1b}', '\u{7}']), "{text:?}");
        assert!(
            text.contains(r"Unauthorized: \u{1b}[2J\u{7}bad\ntoken"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn nothing_held_and_a_damaged_record_are_told_apart() {
        let (_, store) = crate::test_support::held_job(1).await;
        let s = offline_status(&store, "app");
        assert_eq!(s["deletionsHeld"], json!(false), "{s}");
        assert!(s["held"].is_null());
        assert!(describe(&s, false, None, Utc::now()).contains("none held"));

        store
            .put_meta("app", scimsync_engine::META_QUARANTINE, "{garbled")
            .unwrap();
        let s = offline_status(&store, "app");
        let text = describe(&s, false, None, Utc::now());
        assert!(text.contains("state error"), "{text}");
        assert!(text.contains("quarantine"), "{text}");
    }

    /// Issue 14: on PostgreSQL, the replica holding the job's lease is shown.
    #[test]
    fn the_lease_holder_is_shown() {
        use chrono::TimeZone;
        let now = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
        let mut s = json!({
            "name": "app", "state": "notRunning",
            "lease": {"owner": "node1-42-abc123", "epoch": 3,
                      "expiresAt": "2026-03-01T12:00:20Z", "live": true},
        });
        let text = describe(&s, false, None, now);
        assert!(
            text.contains("replica      node1-42-abc123 (lease epoch 3"),
            "{text}"
        );
        s["lease"]["live"] = json!(false);
        let text = describe(&s, false, None, now);
        assert!(
            text.contains("replica      none (last node1-42-abc123"),
            "{text}"
        );
    }

    /// Issue 15: times read "3 min ago", the next cycle is shown (from `serve`, or one
    /// interval after the last start), and held deletions stay unmistakable.
    #[test]
    fn times_are_human_and_the_next_cycle_is_shown() {
        use chrono::TimeZone;
        let now = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
        let s = json!({
            "name": "app",
            "state": "idle",
            "lastCycle": {
                "cycleId": "0193-full-id", "kind": "incremental",
                "started": "2026-03-01T11:56:30Z", "finished": "2026-03-01T11:57:00Z",
                "tally": {"created": 1},
            },
            "nextRun": "2026-03-01T12:37:00Z",
            "schedule": "40m",
        });
        let text = describe(&s, true, None, now);
        assert!(
            text.contains(
                "last cycle   0193-full-id (incremental) finished 2026-03-01 11:57:00 UTC \
                 (3 min ago), took 30.0 s"
            ),
            "{text}"
        );
        assert!(
            text.contains("next cycle   2026-03-01 12:37:00 UTC (in 37 min)"),
            "{text}"
        );
        let offline = describe(&s, false, None, now);
        assert!(
            offline.contains("next cycle   due 2026-03-01 12:37:00 UTC (in 37 min)"),
            "{offline}"
        );
        let mut never = s.clone();
        never["nextRun"] = Value::Null;
        assert!(
            describe(&never, false, None, now)
                .contains("next cycle   not scheduled (no `serve` runs it); schedule 40m"),
        );
        let v = json!({"lastCycle": {"started": "2026-03-01T11:56:30Z"}});
        let every = "40m".parse::<scimsync_config::Schedule>().unwrap();
        assert_eq!(
            next_offline(&v, Some(&every)),
            json!("2026-03-01T12:36:30Z")
        );
    }

    #[test]
    fn a_locked_state_says_who_holds_it() {
        let e = locked("no admin token: give --config-dir with the service file");
        assert!(e.starts_with("locked by a running scimsync"), "{e}");
        assert!(!e.contains("no admin token"), "{e}");
        let e = locked("admin API answered 401: bad token");
        assert!(
            e.contains("its admin API did not answer: admin API answered 401"),
            "{e}"
        );
    }

    /// A real lock: the store open in this process, status read from another handle.
    #[tokio::test]
    async fn status_of_a_store_another_handle_holds_says_locked() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let _held = crate::wiring::store(&state, "app").unwrap();
        let args = StatusArgs {
            config_dir: None,
            config: None,
            job: Some("app".into()),
            state: crate::jobref::StateArg {
                state: state.clone(),
            },
            json: false,
        };
        match open_existing(&state, "app") {
            Ok(Access::Locked) => {}
            Ok(Access::Store(_)) => panic!("sled let a second handle open the store"),
            Err(e) => panic!("{e}"),
        }
        // With no serve and no token, the command fails naming the lock (exit 1).
        assert_eq!(command(&args).await, 1);
    }
}
