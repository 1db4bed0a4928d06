//! `scimsync status`: per job, the last cycle, the current one (when `serve` runs it), escrows,
//! quarantine and held deletions, with the totals to date.
//!
//! Read from each job's state store, or through the admin API of the `serve` holding it.

use crate::logs::{Access, admin_get, open_existing};
use scimsync_core::{StateStore, StoreError};
use scimsync_engine::JobState;
use scimsync_service::{HeldSummary, QuarantineState};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// Which jobs: those of a config directory, of one job file, or every store under `--state`.
fn job_names(
    config_dir: Option<&Path>,
    config: Option<&Path>,
    state: &Path,
) -> Result<Vec<String>, u8> {
    if let Some(dir) = config_dir {
        let (loaded, errors) = scimsync_config::load_dir(dir);
        for e in &errors {
            eprintln!("warning: {e}");
        }
        return Ok(loaded.into_iter().map(|l| l.job.name).collect());
    }
    if let Some(file) = config {
        return crate::wiring::load(file).map(|c| vec![c.name]);
    }
    let Ok(entries) = std::fs::read_dir(state) else {
        eprintln!(
            "error: no state directory {} (give --state, --config or --config-dir)",
            state.display()
        );
        return Err(1);
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| !n.contains(".corrupt-") && !n.starts_with('.'))
        .collect();
    names.sort();
    Ok(names)
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

/// The human-readable block for one job.
pub(crate) fn describe(s: &Value, via_serve: bool, config_dir: Option<&Path>) -> String {
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
                    "{} ({}) started {} finished {}",
                    text(&c["cycleId"]),
                    text(&c["kind"]),
                    text(&c["started"]),
                    text(&c["finished"])
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
            format!("running since {}", text(&s["runningSince"]))
        }
        None => "not running".into(),
    };
    row(&mut out, "current", current);
    row(&mut out, "escrows", text(&s["escrowCount"]));
    let q = match s.get("quarantine").filter(|q| !q.is_null()) {
        Some(q) => format!(
            "{} since {}{}, next attempt {}: {}",
            text(&q["reason"]),
            text(&q["seriesBegan"]),
            if q["disabled"].as_bool() == Some(true) {
                " (disabled)"
            } else {
                ""
            },
            text(&q["nextAttempt"]),
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
                    text(&h["at"]),
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

/// `scimsync status`.
pub async fn command(
    config_dir: Option<PathBuf>,
    config: Option<PathBuf>,
    state: &Path,
    json: bool,
) -> u8 {
    let names = match job_names(config_dir.as_deref(), config.as_deref(), state) {
        Ok(n) => n,
        Err(code) => return code,
    };
    if names.is_empty() {
        eprintln!("no jobs found");
        return 1;
    }
    // Where `approve-deletions` finds the job files, for the hint.
    let hint_dir = config_dir
        .as_deref()
        .or_else(|| config.as_deref().and_then(Path::parent));
    let mut code = 0;
    let mut all = Vec::new();
    for name in names {
        let got = match open_existing(state, &name) {
            Ok(Access::Store(store)) => Ok((offline_status(&store, &name), false)),
            Ok(Access::Locked) => {
                admin_get(config_dir.as_deref(), state, &format!("/api/jobs/{name}"))
                    .await
                    .map(|v| (v, true))
            }
            Err(e) => Err(e),
        };
        match got {
            Ok((v, via)) => {
                if json {
                    all.push(v);
                } else {
                    println!("{}", describe(&v, via, hint_dir));
                }
            }
            Err(e) => {
                eprintln!("error: job {name}: {e}");
                code = 1;
            }
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&all).unwrap_or_default());
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
        let text = describe(&s, false, None);
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
        let text = describe(&s, false, None);
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
        assert!(describe(&s, false, None).contains("none held"));

        store
            .put_meta("app", scimsync_engine::META_QUARANTINE, "{garbled")
            .unwrap();
        let s = offline_status(&store, "app");
        let text = describe(&s, false, None);
        assert!(text.contains("state error"), "{text}");
        assert!(text.contains("quarantine"), "{text}");
    }
}
