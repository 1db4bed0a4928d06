//! The job commands: run, preview, test-connection, validate.

use crate::{render, wiring};
use scimsync_core::{LogStatus, SystemClock};
use scimsync_engine::{CycleReport, Engine, JobSpec, Mode};
use std::io::Write;
use std::path::Path;

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
    // A loop stops on request: the first lets the cycle in flight finish (its state committed),
    // a second stops at once. `--once` keeps the signals' default action.
    let mut stop = (!once).then(crate::shutdown::ShutdownSignal::listen);
    let mut stopping = false;
    loop {
        let cycle = engine.run(Mode::Apply);
        tokio::pin!(cycle);
        let outcome = loop {
            tokio::select! {
                o = &mut cycle => break Some(o),
                _ = stop_requested(&mut stop) => {
                    if stopping {
                        break None;
                    }
                    stopping = true;
                    eprintln!("stopping after this cycle (Ctrl-C again to stop now)");
                }
            }
        };
        progress.finish();
        let Some(outcome) = outcome else {
            eprintln!(
                "stopped in the middle of the cycle; the next run matches what it wrote (no duplicates)"
            );
            return crate::EXIT_INTERRUPTED;
        };
        // The engine recorded the cycle itself: last cycle, history, log retention.
        let code = match outcome {
            Ok(report) => {
                let dir = config.parent();
                if json {
                    outln!("{}", serde_json::to_string(&report).unwrap_or_default());
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
                let text = e.to_string();
                eprintln!(
                    "error: cycle failed ({}): {}",
                    e.code(),
                    render::visible(&text)
                );
                crate::EXIT_FAILED
            }
        };
        if once || stopping {
            return code;
        }
        let wait = match cfg.schedule {
            scimsync_config::Schedule::Interval(d) => d,
            // Cron schedules are run by `serve`; here a plain interval keeps `run` simple.
            scimsync_config::Schedule::Cron(_) => scimsync_config::DEFAULT_INTERVAL,
        };
        eprintln!("next cycle in {}s (Ctrl-C to stop)", wait.as_secs());
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop_requested(&mut stop) => return code,
        }
    }
}

/// The next stop request, or never when the command does not listen for them.
async fn stop_requested(stop: &mut Option<crate::shutdown::ShutdownSignal>) {
    match stop {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
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
    outln!(
        "cycle {} ({:?}) of job {} finished in {secs:.1}s: {}",
        report.cycle_id,
        report.kind,
        report.job,
        render::summary_line(report)
    );
    if report.deletions_held {
        outln!("  {}", render::held_hint(&report.job, config_dir));
    }
    if report.objects_not_listed > 0 {
        outln!(
            "  {} objects are counted but not listed in this report; each has its provisioning log entry (`scimsync logs --cycle {}`)",
            report.objects_not_listed,
            report.cycle_id
        );
    }
    for o in report
        .objects
        .iter()
        .filter(|o| o.status == LogStatus::Failure)
    {
        outln!(
            "  failed: {} ({}): {}",
            render::visible(&o.display_name),
            o.error_code.map(|c| c.to_string()).unwrap_or_default(),
            render::visible(o.error.as_deref().unwrap_or(""))
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
    let result = if crate::store_select::has_state(state, &cfg.name) {
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
                outln!("{}", render::preview_json(&report, shapes));
            } else {
                out!("{}", render::preview_table(&report, shapes));
            }
            0
        }
        Err(e) => {
            let text = e.to_string();
            eprintln!(
                "error: preview failed ({}): {}",
                e.code(),
                render::visible(&text)
            );
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

pub async fn test_connection(config: &Path, json: bool) -> u8 {
    let cfg = match wiring::load(config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    // (side, check, ok, line): the line as text shows it; JSON gets the parts.
    let mut results: Vec<serde_json::Value> = Vec::new();
    let mut lines: Vec<String> = Vec::new();
    let mut failed = false;
    match wiring::graph(&cfg) {
        Ok(g) => {
            // As Entra's Test Connection: token, service principal, users, groups, assignments.
            let checks = g
                .check_access(cfg.source.service_principal_id.as_deref())
                .await;
            lines.extend(source_check_lines(&checks, &cfg.source.tenant_id));
            results.extend(checks.iter().map(|c| {
                let (result, detail) = match &c.outcome {
                    Some(Ok(d)) => ("ok", d.clone()),
                    Some(Err(f)) => ("failed", f.to_string()),
                    None => ("not checked", String::new()),
                };
                serde_json::json!({"side": "source", "check": c.what, "result": result, "detail": detail})
            }));
            failed |= checks.iter().any(scimsync_graph::AccessCheck::failed);
        }
        Err(e) => {
            lines.push(format!("source: FAILED: {e:#}"));
            results.push(serde_json::json!({"side": "source", "check": "configuration", "result": "failed", "detail": format!("{e:#}")}));
            failed = true;
        }
    }
    let target = match wiring::scim(&cfg) {
        Ok(s) => match s.test_connection().await {
            Ok(()) => Ok(format!(
                "{} answered a userName query with an empty list",
                cfg.target.url
            )),
            Err(e) => Err(render::visible(&e.to_string()).into_owned()),
        },
        Err(e) => Err(format!("{e:#}")),
    };
    match &target {
        Ok(d) => lines.push(format!("target: OK ({d})")),
        Err(d) => lines.push(format!("target: FAILED: {d}")),
    }
    results.push(serde_json::json!({
        "side": "target",
        "check": "userName query",
        "result": if target.is_ok() { "ok" } else { "failed" },
        "detail": target.as_ref().unwrap_or_else(|e| e),
    }));
    failed |= target.is_err();
    if json {
        let doc = serde_json::json!({"job": cfg.name, "ok": !failed, "checks": results});
        outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        for l in &lines {
            outln!("{l}");
        }
    }
    u8::from(failed)
}

/// One line per source check: `source: OK: …`, `source: FAILED: <what>: …` (naming the missing
/// permission on a 403), `source: not checked: <what> (…)`.
fn source_check_lines(checks: &[scimsync_graph::AccessCheck], tenant: &str) -> Vec<String> {
    let token_failed = checks.iter().any(|c| c.what == "token" && c.failed());
    checks
        .iter()
        .map(|c| match &c.outcome {
            Some(Ok(_)) if c.what == "token" => {
                format!(
                    "source: OK: token issued for tenant {}",
                    render::visible(tenant)
                )
            }
            Some(Ok(detail)) => format!("source: OK: {}", render::visible(detail)),
            Some(Err(f)) => format!(
                "source: FAILED: {}: {}",
                c.what,
                render::visible(&f.to_string())
            ),
            None if token_failed => format!("source: not checked: {} (no token)", c.what),
            None if c.what == "service principal" => {
                "source: not checked: service principal (no source.service_principal_id)".into()
            }
            None => format!(
                "source: not checked: {} (the service principal was not found or not readable)",
                c.what
            ),
        })
        .collect()
}

/// `scimsync validate`: every problem of the job file, each at file:line:column and key.
/// Unless `offline`, every secret reference is also read (and dropped at once, never shown), and
/// each one that cannot be read is an error at its own key.
#[cfg(test)]
pub fn validate(config: &Path, offline: bool) -> u8 {
    validate_as(config, offline, false)
}

/// [`validate`], as text or (`json`) as one JSON document on stdout.
pub fn validate_as(config: &Path, offline: bool, json: bool) -> u8 {
    if json {
        let (code, doc) = validate_json(config, offline);
        outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return code;
    }
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = validate_to(config, offline, &mut out, &mut err);
    eprint!("{}", String::from_utf8_lossy(&err));
    out!("{}", String::from_utf8_lossy(&out));
    code
}

/// The verdict as JSON: `valid`, and each problem with its file, line, column, key, message.
fn validate_json(config: &Path, offline: bool) -> (u8, serde_json::Value) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = validate_to(config, offline, &mut out, &mut err);
    let problem = |e: &scimsync_config::ConfigError| {
        serde_json::json!({
            "file": e.file, "line": e.line, "column": e.column, "key": e.key,
            "message": e.message,
        })
    };
    let (errors, warnings) = match scimsync_config::load(config) {
        Err(errors) => (errors.iter().map(problem).collect(), Vec::new()),
        Ok(loaded) => {
            let mut errors: Vec<serde_json::Value> = unknown_attributes(&loaded.job)
                .into_iter()
                .map(|(line, key, name)| {
                    serde_json::json!({
                        "file": config, "line": line, "column": 0, "key": key,
                        "message": unknown_source(&name),
                    })
                })
                .collect();
            if !offline {
                errors.extend(loaded.unreadable_secrets().iter().map(problem));
            }
            (errors, loaded.warnings.iter().map(problem).collect())
        }
    };
    let doc = serde_json::json!({
        "file": config,
        "valid": code == 0,
        "secretsRead": !offline,
        "summary": String::from_utf8_lossy(&out).trim(),
        "errors": errors,
        "warnings": warnings,
    });
    (code, doc)
}

fn unknown_source(name: &str) -> String {
    format!(
        "unknown source attribute {name:?} (not an Entra attribute of Microsoft Graph, nor \
         extension_<appId>_<name>)"
    )
}

/// [`validate`], writing the verdict to `out` and the problems to `err`.
pub(crate) fn validate_to(
    config: &Path,
    offline: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let loaded = match scimsync_config::load(config) {
        Ok(l) => l,
        Err(errors) => {
            for e in &errors {
                let _ = writeln!(err, "error: {e}");
            }
            return 2;
        }
    };
    for w in &loaded.warnings {
        let _ = writeln!(err, "warning: {w}");
    }
    let cfg = &loaded.job;
    // (line, column, the whole message): unknown attributes carry no column (0).
    let mut problems: Vec<(usize, usize, String)> = unknown_attributes(cfg)
        .into_iter()
        .map(|(line, key, name)| {
            let text = format!(
                "{}:{line}: {key}: {}",
                config.display(),
                unknown_source(&name)
            );
            (line, 0, text)
        })
        .collect();
    if !offline {
        problems.extend(
            loaded
                .unreadable_secrets()
                .into_iter()
                .map(|e| (e.line, e.column, e.to_string())),
        );
    }
    problems.sort_by_key(|&(line, column, _)| (line, column));
    for (_, _, text) in &problems {
        let _ = writeln!(err, "error: {text}");
    }
    if !problems.is_empty() {
        return 2;
    }
    let secrets = if offline {
        "secrets not read (--offline)".to_string()
    } else {
        match loaded.secrets.len() {
            1 => "its secret is readable".to_string(),
            n => format!("all {n} secrets are readable"),
        }
    };
    let _ = writeln!(
        out,
        "{}: valid job {:?} ({} user mappings, {} group mappings, scope {:?}); {secrets}",
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
            || scimsync_graph::is_reference_attribute(n)
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

    const SECRET: &str = "smtp-s3cr3t-never-shown";

    /// Secrets: client_secret (line 5, an unset variable), token (line 9, a missing file), the
    /// SMTP password (line 22, a file holding SECRET); an unknown attribute in the mapping of
    /// line 14.
    const JOB: &str = r#"name = "x"
[source]
tenant_id = "t"
client_id = "c"
client_secret = "env:SCIMSYNC_CLI_TEST_SURELY_UNSET"
scope = "all"
[target]
url = "https://app.example.com/scim"
token = "file:missing.token"
[[users.mappings]]
target = "userName"
source = "userPrincipalName"
matching = 1
[[users.mappings]]
target = "title"
source = "jobTitel"
[notifications.smtp]
host = "smtp.example.com"
from = "a@example.com"
to = ["b@example.com"]
username = "u"
password = "file:smtp.password"
"#;

    /// (exit code, stdout, stderr) of `validate`.
    fn validate_job(dir: &Path, text: &str, offline: bool) -> (u8, String, String) {
        let config = dir.join("job.toml");
        std::fs::write(&config, text).unwrap();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = validate_to(&config, offline, &mut out, &mut err);
        let (out, err) = (
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        );
        assert!(!out.contains(SECRET) && !err.contains(SECRET), "{out}{err}");
        (code, out, err)
    }

    /// Issue 12 §4: every unreadable secret at its file:line:column and key, in file order
    /// with the other problems; none with `--offline`; never a value.
    #[test]
    fn validate_reads_every_secret_unless_offline() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("smtp.password"), SECRET).unwrap();
        let file = dir.path().join("job.toml");
        let file = file.display();

        let (code, out, err) = validate_job(dir.path(), JOB, false);
        assert_eq!(code, 2, "{out}{err}");
        assert_eq!(out, "");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 3, "{err}");
        assert_eq!(
            lines[0],
            format!(
                "error: {file}:5:17: source.client_secret: cannot read the secret: environment \
                 variable SCIMSYNC_CLI_TEST_SURELY_UNSET is not set"
            )
        );
        assert!(
            lines[1].starts_with(&format!(
                "error: {file}:9:9: target.token: cannot read the secret: cannot read secret \
                 file {}: ",
                dir.path().join("missing.token").display()
            )),
            "{err}"
        );
        assert!(lines[2].contains(":14: users.mappings[1]") && lines[2].contains("jobTitel"));

        // Offline: the file alone (the unknown attribute still counts).
        let (code, _, err) = validate_job(dir.path(), JOB, true);
        assert_eq!(code, 2);
        assert!(!err.contains("secret"), "{err}");
        let known = JOB.replace("jobTitel", "jobTitle");
        let (code, out, err) = validate_job(dir.path(), &known, true);
        assert_eq!((code, err.as_str()), (0, ""), "{out}");
        assert!(out.contains("valid job \"x\""), "{out}");
        assert!(out.ends_with("; secrets not read (--offline)\n"), "{out}");

        // Every secret readable: valid, and it says so.
        std::fs::write(dir.path().join("missing.token"), SECRET).unwrap();
        let readable = known.replace("env:SCIMSYNC_CLI_TEST_SURELY_UNSET", "file:smtp.password");
        let (code, out, err) = validate_job(dir.path(), &readable, false);
        assert_eq!((code, err.as_str()), (0, ""), "{out}");
        assert!(out.ends_with("; all 3 secrets are readable\n"), "{out}");
    }

    /// Issue 12 §1: credentials over plain SMTP to a remote relay are refused, even offline.
    #[test]
    fn validate_refuses_smtp_credentials_without_tls() {
        let dir = tempfile::tempdir().unwrap();
        let plain = JOB.replace("jobTitel", "jobTitle").replace(
            "host = \"smtp.example.com\"\n",
            "host = \"smtp.example.com\"\nstarttls = false\n",
        );
        let (code, _, err) = validate_job(dir.path(), &plain, true);
        assert_eq!(code, 2);
        assert!(
            err.contains(
                ":19:12: notifications.smtp.starttls: would send the SMTP username and \
                          password in cleartext"
            ),
            "{err}"
        );
        let local = plain.replace("smtp.example.com", "127.0.0.1");
        let (code, _, err) = validate_job(dir.path(), &local, true);
        assert_eq!((code, err.as_str()), (0, ""));
    }

    /// Issue 15: a typo in a target attribute is an error at its line and column with a
    /// suggestion; `--json` gives the same verdict as a document.
    #[test]
    fn validate_names_a_misspelt_target_and_speaks_json() {
        let dir = tempfile::tempdir().unwrap();
        let typo = JOB
            .replace("jobTitel", "jobTitle")
            .replace("target = \"title\"", "target = \"name.familyNme\"");
        let (code, _, err) = validate_job(dir.path(), &typo, true);
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains(
                ":15:10: users.mappings[1].target: unknown SCIM attribute `name.familyNme`: not \
                 in the SCIM core User schema (did you mean `name.familyName`?)"
            ),
            "{err}"
        );
        let (code, doc) = validate_json(&dir.path().join("job.toml"), true);
        assert_eq!(code, 2);
        assert_eq!(doc["valid"], false);
        assert_eq!(doc["errors"][0]["line"], 15);
        assert_eq!(doc["errors"][0]["column"], 10);
        assert_eq!(doc["errors"][0]["key"], "users.mappings[1].target");

        let good = JOB.replace("jobTitel", "jobTitle");
        std::fs::write(dir.path().join("job.toml"), &good).unwrap();
        let (code, doc) = validate_json(&dir.path().join("job.toml"), true);
        assert_eq!(code, 0, "{doc}");
        assert_eq!(doc["valid"], true);
        assert!(doc["summary"].as_str().unwrap().contains("valid job \"x\""));
        assert_eq!(doc["errors"], serde_json::json!([]));
        // Unknown source attributes and secrets are problems in JSON too.
        std::fs::write(dir.path().join("job.toml"), JOB).unwrap();
        let (code, doc) = validate_json(&dir.path().join("job.toml"), false);
        assert_eq!(code, 2);
        assert_eq!(doc["errors"].as_array().unwrap().len(), 4, "{doc}");
        assert!(!doc.to_string().contains(SECRET));
    }

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
