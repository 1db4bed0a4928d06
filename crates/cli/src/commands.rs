//! The job commands: run, preview, test-connection, validate.

use crate::{render, wiring};
use scimsync_core::{LogStatus, SystemClock};
use scimsync_engine::{CycleReport, Engine, JobSpec, Mode};
use std::path::Path;
use std::time::Duration;

pub async fn run(config: &Path, state: &Path, once: bool, json: bool) -> u8 {
    let cfg = match wiring::load(config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let (graph, scim, store) = match (
        wiring::graph(&cfg),
        wiring::scim(&cfg),
        wiring::store(state, &cfg.name),
    ) {
        (Ok(g), Ok(s), Ok(st)) => (g, s, st),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            eprintln!("error: {e:#}");
            return 1;
        }
    };
    let job = JobSpec::from_config(&cfg);
    let progress = crate::progress::CliProgress::new("cycle");
    let engine = Engine::new(&job, &graph, &scim, &store, &SystemClock).with_progress(&progress);
    loop {
        let outcome = engine.run(Mode::Apply).await;
        progress.finish();
        // The engine recorded the cycle itself: last cycle, history, log retention.
        let code = match outcome {
            Ok(report) => {
                let dir = config.parent();
                if json {
                    println!("{}", serde_json::to_string(&report).unwrap_or_default());
                    if report.deletions_held {
                        // stdout stays one JSON document; the admin still sees the hold.
                        eprintln!(
                            "cycle held: {}; {}",
                            render::summary_line(&report),
                            render::held_hint(&report.job, dir)
                        );
                    }
                } else {
                    print_run(&report, dir);
                }
                exit_code(&report)
            }
            Err(e) => {
                eprintln!("error: cycle failed ({}): {e}", e.code());
                crate::EXIT_FAILED
            }
        };
        if once {
            return code;
        }
        let wait = match cfg.schedule {
            scimsync_config::Schedule::Interval(d) => d,
            // Cron schedules are run by `serve`; here a plain interval keeps `run` simple.
            scimsync_config::Schedule::Cron(_) => Duration::from_secs(40 * 60),
        };
        eprintln!("next cycle in {}s (Ctrl-C to stop)", wait.as_secs());
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = tokio::signal::ctrl_c() => return code,
        }
    }
}

/// The exit code of a completed apply cycle: held (5) before object failures (4).
pub fn exit_code(report: &CycleReport) -> u8 {
    if report.deletions_held {
        crate::EXIT_HELD
    } else if report.tally.failed > 0 {
        crate::EXIT_OBJECT_FAILURES
    } else {
        0
    }
}

/// A cycle's summary line, its failures, and what to do about a hold; `config_dir` is the
/// directory of the job file (for the `approve-deletions` hint).
pub fn print_run(report: &CycleReport, config_dir: Option<&Path>) {
    let secs = (report.finished - report.started).num_milliseconds() as f64 / 1000.0;
    println!(
        "cycle {} ({:?}) of job {} finished in {secs:.1}s: {}",
        report.cycle_id,
        report.kind,
        report.job,
        render::summary_line(report)
    );
    if report.deletions_held {
        println!("  {}", render::held_hint(&report.job, config_dir));
    }
    for o in report
        .objects
        .iter()
        .filter(|o| o.status == LogStatus::Failure)
    {
        println!(
            "  failed: {} ({}): {}",
            o.display_name,
            o.error_code.map(|c| c.to_string()).unwrap_or_default(),
            o.error.as_deref().unwrap_or("")
        );
    }
}

pub async fn preview(config: &Path, state: &Path, json: bool) -> u8 {
    let cfg = match wiring::load(config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let (graph, scim) = match (wiring::graph(&cfg), wiring::scim(&cfg)) {
        (Ok(g), Ok(s)) => (g, s),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e:#}");
            return 1;
        }
    };
    // A preview writes nothing, not even an empty store: a job that never ran previews its
    // initial cycle from an empty in-memory state.
    let result = if state.join(&cfg.name).exists() {
        match wiring::store(state, &cfg.name) {
            Ok(store) => preview_with(&cfg, &graph, &scim, &store).await,
            Err(e) => {
                eprintln!("error: {e:#}");
                return 1;
            }
        }
    } else {
        preview_with(&cfg, &graph, &scim, &scimsync_store::MemoryStore::new()).await
    };
    match result {
        Ok(report) => {
            let shapes = wiring::shapes(&cfg);
            if json {
                println!("{}", render::preview_json(&report, shapes));
            } else {
                print!("{}", render::preview_table(&report, shapes));
            }
            0
        }
        Err(e) => {
            eprintln!("error: preview failed ({}): {e}", e.code());
            1
        }
    }
}

async fn preview_with<St: scimsync_core::StateStore>(
    cfg: &scimsync_config::JobConfig,
    graph: &scimsync_graph::GraphClient,
    scim: &scimsync_scim::ScimClient,
    store: &St,
) -> Result<CycleReport, scimsync_engine::CycleError> {
    let job = JobSpec::from_config(cfg);
    let progress = crate::progress::CliProgress::new("preview");
    let report = Engine::new(&job, graph, scim, store, &SystemClock)
        .with_progress(&progress)
        .run(Mode::Preview)
        .await;
    progress.finish();
    report
}

pub async fn test_connection(config: &Path) -> u8 {
    let cfg = match wiring::load(config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mut failed = false;
    match wiring::graph(&cfg) {
        Ok(g) => match g.token().await {
            Ok(()) => println!(
                "source: OK (token issued for tenant {})",
                cfg.source.tenant_id
            ),
            Err(e) => {
                println!("source: FAILED: {e}");
                failed = true;
            }
        },
        Err(e) => {
            println!("source: FAILED: {e:#}");
            failed = true;
        }
    }
    match wiring::scim(&cfg) {
        Ok(s) => match s.test_connection().await {
            Ok(()) => println!(
                "target: OK ({} answered a userName query with an empty list)",
                cfg.target.url
            ),
            Err(e) => {
                println!("target: FAILED: {e}");
                failed = true;
            }
        },
        Err(e) => {
            println!("target: FAILED: {e:#}");
            failed = true;
        }
    }
    u8::from(failed)
}

pub fn validate(config: &Path) -> u8 {
    let cfg = match wiring::load(config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let unknown = unknown_attributes(&cfg);
    for (line, key, name) in &unknown {
        eprintln!(
            "error: {}:{line}: {key}: unknown source attribute {name:?} (not an Entra attribute of Microsoft Graph, nor extension_<appId>_<name>)",
            config.display()
        );
    }
    if !unknown.is_empty() {
        return 2;
    }
    println!(
        "{}: valid job {:?} ({} user mappings, {} group mappings, scope {:?})",
        config.display(),
        cfg.name,
        cfg.users.mappings.len(),
        cfg.groups.mappings.len(),
        cfg.source.scope
    );
    0
}

/// Source attributes the mappings, expressions and scoping filters name that Graph does not
/// have: (line, key, name).
fn unknown_attributes(cfg: &scimsync_config::JobConfig) -> Vec<(usize, String, String)> {
    use scimsync_config::MappingValue;
    let user_ok = |n: &str| {
        scimsync_graph::graph_property(n).is_some()
            || scimsync_graph::is_computed_attribute(n)
            || n.starts_with("extension_")
    };
    let group_ok =
        |n: &str| scimsync_graph::graph_group_property(n).is_some() || n.starts_with("extension_");
    let mut out = Vec::new();
    let mut check = |kind: &str,
                     mappings: &[scimsync_config::Mapping],
                     filters: &[scimsync_config::ScopingFilter],
                     ok: &dyn Fn(&str) -> bool| {
        for (i, m) in mappings.iter().enumerate() {
            let names = match &m.value {
                MappingValue::Direct { source } => vec![source.clone()],
                MappingValue::Expression { text } => scimsync_expr::parse(text)
                    .map(|e| scimsync_expr::attributes(&e))
                    .unwrap_or_default(),
                _ => Vec::new(),
            };
            for n in names.into_iter().filter(|n| !ok(n)) {
                out.push((m.line, format!("{kind}.mappings[{i}]"), n));
            }
        }
        for (i, f) in filters.iter().enumerate() {
            for (j, c) in f.clauses.iter().enumerate() {
                if !ok(&c.attribute) {
                    out.push((
                        c.line,
                        format!("{kind}.scoping[{i}].clauses[{j}]"),
                        c.attribute.clone(),
                    ));
                }
            }
        }
    };
    check("users", &cfg.users.mappings, &cfg.users.scoping, &user_ok);
    check(
        "groups",
        &cfg.groups.mappings,
        &cfg.groups.scoping,
        &group_ok,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_held_cycle_exits_5_and_says_so_even_with_failures() {
        let (mut report, _) = crate::test_support::held_job(4).await;
        assert_eq!(exit_code(&report), crate::EXIT_HELD);
        let line = render::summary_line(&report);
        assert!(line.contains("held 4"), "{line}");
        assert!(line.contains("deletion threshold of 2"), "{line}");
        let preview = render::preview_table(
            &report,
            render::Shapes {
                dialect: scimsync_scim::Dialect::Rfc,
                removal: scimsync_scim::MemberRemoval::Filter,
                batch: 100,
            },
        );
        assert!(preview.contains("This cycle would be held"), "{preview}");
        assert_eq!(
            preview.matches("StagedDelete: disable held").count(),
            4,
            "{preview}"
        );
        report.tally.failed = 1;
        assert_eq!(
            exit_code(&report),
            crate::EXIT_HELD,
            "held wins over failures"
        );
        report.deletions_held = false;
        assert_eq!(exit_code(&report), crate::EXIT_OBJECT_FAILURES);
    }
}
