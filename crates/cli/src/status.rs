//! `scimsync status`: per job, the last cycle, the current one (when `serve` runs it), escrows,
//! quarantine and held deletions, with the totals to date.
//!
//! Read from each job's state store, or through the admin API of the `serve` holding it.

use crate::logs::{Access, admin_get, open_existing};
use scimsync_core::StateStore;
use scimsync_engine::{META_LAST_CYCLE, META_QUARANTINE};

/// The engine's record kind for escrows (`scimsync_engine::escrow::ESCROW`, not exported).
const ESCROW: &str = "escrow";
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

/// The same shape as the admin API's job status, read offline.
pub(crate) fn offline_status(store: &dyn StateStore, job: &str) -> Value {
    let meta = |k: &str| {
        store
            .get_meta(job, k)
            .ok()
            .flatten()
            .and_then(|v| serde_json::from_str::<Value>(&v).ok())
    };
    let last = meta(META_LAST_CYCLE);
    let quarantine = meta(META_QUARANTINE);
    let held = last
        .as_ref()
        .and_then(|c| c.get("deletionsHeld"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
        || quarantine
            .as_ref()
            .and_then(|q| q.get("reason"))
            .and_then(Value::as_str)
            == Some("TooManyDeletes");
    json!({
        "name": job,
        "state": "notRunning",
        "lastCycle": last,
        "progress": null,
        "escrowCount": store.list_records(job, ESCROW).map(|r| r.len()).unwrap_or(0),
        "quarantine": quarantine,
        "deletionsHeld": held,
        "objectsManaged": store.list(job).map(|l| l.len()).ok(),
        "totals": scimsync_engine::cycle_totals(store, job).ok(),
    })
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The human-readable block for one job.
pub(crate) fn describe(s: &Value, via_serve: bool) -> String {
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
    row(
        &mut out,
        "deletions",
        if s["deletionsHeld"].as_bool() == Some(true) {
            "held: waiting for `scimsync approve-deletions`".into()
        } else {
            "none held".into()
        },
    );
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
                    println!("{}", describe(&v, via));
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
    use scimsync_store::MemoryStore;

    #[test]
    fn offline_status_reports_quarantine_escrows_and_held_deletions() {
        let store = MemoryStore::new();
        store
            .put_meta(
                "app",
                META_LAST_CYCLE,
                r#"{"cycleId":"c9","kind":"incremental","started":"2026-03-02T09:00:00Z","finished":"2026-03-02T09:00:04Z","deletionsHeld":true,"tally":{"created":2,"failed":1}}"#,
            )
            .unwrap();
        store
            .put_meta(
                "app",
                META_QUARANTINE,
                r#"{"reason":"TooManyDeletes","seriesBegan":"2026-03-02T09:00:04Z","nextAttempt":"2026-03-03T09:00:00Z","error":"12 deletions held"}"#,
            )
            .unwrap();
        store.put_record("app", ESCROW, "u1", "{}").unwrap();
        let s = offline_status(&store, "app");
        let text = describe(&s, false);
        assert!(text.contains("c9 (incremental)"), "{text}");
        assert!(text.contains("created 2"), "{text}");
        assert!(text.contains("failed 1"), "{text}");
        assert!(text.contains("escrows      1"), "{text}");
        assert!(
            text.contains("TooManyDeletes since 2026-03-02T09:00:04Z"),
            "{text}"
        );
        assert!(text.contains("held: waiting"), "{text}");
    }
}
