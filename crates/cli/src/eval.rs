//! `scimsync eval`: Entra's "expression builder" on the command line. Evaluates one expression,
//! or the job's whole user mapping, against one source user (read from Graph with the job's
//! credentials, or from a JSON file of Entra-named attributes) and shows every step.

use crate::wiring;
use scimsync_config::{Apply, JobConfig, Mapping, MappingValue};
use scimsync_core::{Source, SourceUser, UserQuery, UserScope};
use scimsync_expr::{Context, Expr, Outcome, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Where the source user comes from.
#[derive(Debug, Clone)]
pub enum UserFrom {
    /// A Graph object id or user principal name, read with the job's `[source]`.
    Graph(String),
    /// A JSON object of Entra source attributes (`{"userPrincipalName": …, "surname": …}`).
    Json(PathBuf),
}

/// The flags of `scimsync eval`.
#[derive(Debug, Clone, clap::Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub job: crate::jobref::JobArgs,
    /// The user's object id or user principal name, read from Graph with the job's source.
    #[arg(long, conflicts_with = "user_file")]
    pub user: Option<String>,
    /// A JSON file with the user's Entra source attributes, instead of reading Graph.
    #[arg(long, value_name = "FILE")]
    pub user_file: Option<PathBuf>,
    /// The expression to evaluate (default: every user mapping of the job).
    #[arg(long)]
    pub expression: Option<String>,
    /// Print the steps and the result as one JSON document. (`--json FILE` is the old
    /// spelling of `--user-file FILE`, still read, with a note.)
    #[arg(long, value_name = "FILE", num_args = 0..=1)]
    pub json: Option<Option<PathBuf>>,
}

/// `scimsync eval`.
pub async fn command(args: &EvalArgs) -> u8 {
    let mut user_file = args.user_file.clone();
    let mut json = false;
    match &args.json {
        Some(Some(path)) if user_file.is_none() && args.user.is_none() => {
            eprintln!(
                "note: `--json FILE` is now `--user-file FILE` (`--json` alone asks for JSON \
                 output); reading {} as the user",
                path.display()
            );
            user_file = Some(path.clone());
        }
        Some(Some(_)) => {
            eprintln!("error: --json takes no value when --user or --user-file is given");
            return 2;
        }
        Some(None) => json = true,
        None => {}
    }
    let from = match (&args.user, user_file) {
        (_, Some(path)) => UserFrom::Json(path),
        (Some(u), None) => UserFrom::Graph(u.clone()),
        (None, None) => {
            eprintln!("error: give --user ID|UPN (read from Graph) or --user-file FILE");
            return 2;
        }
    };
    let config = match args.job.file() {
        Ok(f) => f,
        Err(code) => return code,
    };
    run(&config, from, args.expression.as_deref(), json).await
}

pub async fn run(config: &Path, from: UserFrom, expression: Option<&str>, json: bool) -> u8 {
    let cfg = match wiring::load(config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let expr = match expression.map(parse_expression).transpose() {
        Ok(e) => e,
        Err(message) => {
            eprint!("{message}");
            return 2;
        }
    };
    let user = match read_user(&cfg, &from, expr.as_ref()).await {
        Ok(u) => u,
        Err(message) => {
            eprintln!("error: {message}");
            return 1;
        }
    };
    if let (Some(text), Some(expr)) = (expression, &expr) {
        let known = |name: &str| known_attribute(name) || user.attrs.contains_key(name);
        let problems = scimsync_expr::check(expr, &known);
        if !problems.is_empty() {
            for p in &problems {
                eprint!("{}", pointed(text, p));
            }
            return 2;
        }
    }
    let (user, computed) = with_computed(user);
    if json {
        let (doc, code) = match (expression, &expr) {
            (Some(text), Some(expr)) => crate::eval_json::one_expression(text, expr, &user),
            _ => crate::eval_json::whole_mapping(&cfg, &user),
        };
        let mut doc = doc;
        doc["user"] = serde_json::json!({"id": user.id, "displayName": user.display()});
        doc["computed"] = serde_json::json!(computed);
        outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return code;
    }
    let mut out = String::new();
    let _ = writeln!(out, "source user: {} (id {})", user.display(), user.id);
    for c in &computed {
        let _ = writeln!(out, "  {c}");
    }
    let code = match (expression, &expr) {
        (Some(text), Some(expr)) => one_expression(&mut out, text, expr, &user),
        _ => whole_mapping(&mut out, &cfg, &user),
    };
    out!("{}", crate::render::visible_lines(&out));
    code
}

/// Parse an expression given on the command line; the error points at line:column.
fn parse_expression(text: &str) -> Result<Expr, String> {
    scimsync_expr::parse(text).map_err(|e| pointed(text, &e))
}

/// `error: expression 1:12: message`, then the expression line and a caret under the column.
fn pointed(text: &str, e: &scimsync_expr::ExprError) -> String {
    let mut s = format!("error: expression {e}\n");
    if let Some(line) = text.lines().nth(e.line.saturating_sub(1) as usize) {
        let pad: String = line
            .chars()
            .take(e.column.saturating_sub(1) as usize)
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        let _ = writeln!(s, "  {line}\n  {pad}^");
    }
    s
}

/// A name Entra's source offers (Graph-backed or computed by the engine).
fn known_attribute(name: &str) -> bool {
    scimsync_graph::graph_property(name).is_some()
        || scimsync_graph::is_computed_attribute(name)
        || scimsync_graph::is_reference_attribute(name)
}

async fn read_user(
    cfg: &JobConfig,
    from: &UserFrom,
    expr: Option<&Expr>,
) -> Result<SourceUser, String> {
    match from {
        UserFrom::Json(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            user_from_json(&text).map_err(|e| format!("{}: {e}", path.display()))
        }
        UserFrom::Graph(key) => {
            let graph = wiring::graph(cfg).map_err(|e| format!("{e:#}"))?;
            let mut attributes = match expr {
                Some(e) => scimsync_expr::attributes(e),
                None => scimsync_mapping::source_attributes(&cfg.users.mappings),
            };
            attributes.retain(|a| !scimsync_graph::is_computed_attribute(a));
            let query = UserQuery {
                attributes,
                scope: UserScope::All,
                keep: None,
            };
            // Graph's /users/{key} takes an object id or a user principal name alike.
            let found = graph
                .read_users_by_id(std::slice::from_ref(key), &query)
                .await
                .map_err(|e| format!("reading {key} from Graph: {e}"))?;
            found
                .into_iter()
                .next()
                .ok_or_else(|| format!("no user {key} in tenant {}", cfg.source.tenant_id))
        }
    }
}

/// A JSON object of Entra-named attributes; `objectId` (else `id`) becomes the user's id.
fn user_from_json(text: &str) -> Result<SourceUser, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let serde_json::Value::Object(map) = value else {
        return Err(
            "expected a JSON object of source attributes, e.g. {\"givenName\": \"Ada\"}".into(),
        );
    };
    let attrs: BTreeMap<String, serde_json::Value> = map.into_iter().collect();
    let id = ["objectId", "id"]
        .iter()
        .find_map(|k| attrs.get(*k).and_then(|v| v.as_str()))
        .unwrap_or("(from file)")
        .to_string();
    Ok(SourceUser { id, attrs })
}

/// Adds the attributes Entra computes, as the engine does for a user being provisioned, and
/// says which were added.
fn with_computed(mut user: SourceUser) -> (SourceUser, Vec<String>) {
    let mut notes = Vec::new();
    if !user.attrs.contains_key("IsSoftDeleted") {
        user.attrs
            .insert("IsSoftDeleted".into(), serde_json::Value::Bool(false));
        notes.push(
            "[IsSoftDeleted] = False (computed: the user is assigned and not deleted)".into(),
        );
    }
    (user, notes)
}

pub(crate) fn context(user: &SourceUser) -> Context<'_> {
    Context {
        attrs: &user.attrs,
        now: chrono::Utc::now(),
        seed: 0,
        default_domain: None,
    }
}

fn one_expression(out: &mut String, text: &str, expr: &Expr, user: &SourceUser) -> u8 {
    let _ = writeln!(out, "\n{text}");
    trace_steps(out, expr, user);
    match scimsync_expr::eval(expr, &context(user)) {
        Ok(outcome) => {
            let _ = writeln!(out, "result: {}", show_outcome(&outcome));
            0
        }
        Err(e) => {
            let _ = write!(out, "{}", pointed(text, &e));
            1
        }
    }
}

fn trace_steps(out: &mut String, expr: &Expr, user: &SourceUser) {
    for (step, value) in scimsync_expr::trace(expr, &context(user)) {
        match value {
            Ok(v) => {
                let _ = writeln!(out, "  {step} = {}", show(&v));
            }
            Err(e) => {
                let _ = writeln!(out, "  {step} failed: {e}");
            }
        }
    }
}

fn whole_mapping(out: &mut String, cfg: &JobConfig, user: &SourceUser) -> u8 {
    let _ = writeln!(
        out,
        "\nuser mappings of job {} ({}):",
        cfg.name,
        cfg.path.display()
    );
    for m in &cfg.users.mappings {
        let _ = writeln!(out, "{}", describe(m));
        let value = match &m.value {
            MappingValue::Direct { source } => user.attrs.get(source).map(Value::from_json),
            MappingValue::Constant { value } => Some(Value::Str(value.clone())),
            MappingValue::Expression { text } => match scimsync_expr::parse(text) {
                Ok(expr) => {
                    trace_steps(out, &expr, user);
                    match scimsync_expr::eval(&expr, &context(user)) {
                        Ok(Outcome::Value(v)) => Some(v),
                        Ok(other) => {
                            let _ = writeln!(out, "  = {}", show_outcome(&other));
                            continue;
                        }
                        Err(e) => {
                            let _ = writeln!(out, "  error at {e}");
                            continue;
                        }
                    }
                }
                Err(e) => {
                    let _ = writeln!(out, "  error at {e}");
                    continue;
                }
            },
            MappingValue::None => None,
        };
        let shown = match value {
            Some(v) if !v.is_null_or_empty() => show(&v),
            _ => match &m.default {
                Some(d) => format!("(no value) -> default {d:?} on create"),
                None => "(no value: not sent)".into(),
            },
        };
        let _ = writeln!(out, "  = {shown}");
    }
    // The attributes exactly as a create would send them (typed, nulls dropped, defaults).
    match scimsync_mapping::map_user(user, &cfg.users.mappings, true, chrono::Utc::now()) {
        Ok(attrs) => {
            let json = serde_json::to_string_pretty(&attrs).unwrap_or_default();
            let _ = writeln!(out, "\nattributes on create:\n{json}");
            0
        }
        Err(e) => {
            let _ = writeln!(out, "\nthe user would not be created: {e}");
            1
        }
    }
}

pub(crate) fn describe(m: &Mapping) -> String {
    let from = match &m.value {
        MappingValue::Direct { source } => format!("[{source}]"),
        MappingValue::Constant { value } => format!("constant {value:?}"),
        MappingValue::Expression { text } => text.clone(),
        MappingValue::None => "(none)".into(),
    };
    let mut flags = Vec::new();
    if let Some(p) = m.matching {
        flags.push(format!("matching {p}"));
    }
    if m.required {
        flags.push("required".into());
    }
    if m.apply == Apply::CreateOnly {
        flags.push("on create only".into());
    }
    let flags = if flags.is_empty() {
        String::new()
    } else {
        format!(", {}", flags.join(", "))
    };
    format!("{} <- {from} (line {}{flags})", m.target, m.line)
}

fn show_outcome(o: &Outcome) -> String {
    match o {
        Outcome::Value(v) if v.is_null_or_empty() => format!("{} (not sent)", show(v)),
        Outcome::Value(v) => show(v),
        Outcome::Ignore => "(IgnoreFlowIfNullOrEmpty: the attribute is not sent)".into(),
        Outcome::Unique(c) => format!(
            "SelectUniqueValue candidates, first one free in the app wins: {}",
            show(&Value::List(c.clone()))
        ),
    }
}

/// A value as Entra's expression builder would show it: text quoted, booleans `True`/`False`.
fn show(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Str(s) => serde_json::Value::String(s.clone()).to_string(),
        Value::Bool(_) | Value::Int(_) | Value::Date(_) => v.to_text().unwrap_or_default(),
        Value::List(_) | Value::Object(_) => v.to_json().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(dir: &Path) -> PathBuf {
        let text = crate::apps::render(
            crate::apps::template("cybsafe").unwrap(),
            &crate::apps::InitValues {
                tenant_id: Some("contoso.onmicrosoft.com".into()),
                client_id: Some("c".into()),
                service_principal_id: Some("s".into()),
                ..Default::default()
            },
        )
        .unwrap()
        .text;
        let p = dir.join("job.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    fn ada() -> SourceUser {
        user_from_json(
            r#"{"objectId": "u1", "userPrincipalName": "ada@contoso.com",
                "givenName": "Ada", "surname": "Lovelace", "displayName": "Ada Lovelace",
                "mail": "ada@contoso.com"}"#,
        )
        .unwrap()
    }

    #[test]
    fn the_whole_mapping_shows_each_step_and_the_created_attributes() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = scimsync_config::load(&job(dir.path())).unwrap().job;
        let (user, computed) = with_computed(ada());
        assert_eq!(computed.len(), 1);
        let mut out = String::new();
        assert_eq!(whole_mapping(&mut out, &cfg, &user), 0);
        assert!(
            out.contains("name.formatted <- Join(\" \", [givenName], [surname])"),
            "{out}"
        );
        assert!(out.contains("  [givenName] = \"Ada\""), "{out}");
        assert!(out.contains("= \"Ada Lovelace\""), "{out}");
        assert!(out.contains("[IsSoftDeleted] = False"), "{out}");
        assert!(out.contains("title <- [jobTitle]"), "{out}");
        assert!(out.contains("(no value: not sent)"), "{out}");
        assert!(out.contains("\"active\": true"), "{out}");
        assert!(
            out.contains("\"name.formatted\": \"Ada Lovelace\""),
            "{out}"
        );
    }

    #[test]
    fn one_expression_traces_and_errors_point_at_line_and_column() {
        let user = ada();
        let text = r#"ToUpper(Left([givenName], 2))"#;
        let expr = parse_expression(text).unwrap();
        let mut out = String::new();
        assert_eq!(one_expression(&mut out, text, &expr, &user), 0);
        assert!(out.contains("Left([givenName], 2) = \"Ad\""), "{out}");
        assert!(out.contains("result: \"AD\""), "{out}");

        let err = parse_expression("Join(\" \", [givenName]").unwrap_err();
        assert!(err.starts_with("error: expression 1:"), "{err}");
        assert!(err.contains('^'), "{err}");

        let text = r#"IIF([country]="US", "a", "b")"#;
        let expr = parse_expression(text).unwrap();
        let mut out = String::new();
        assert_eq!(one_expression(&mut out, text, &expr, &user), 1);
        assert!(out.contains("error: expression 1:5:"), "{out}");
        assert!(
            out.contains("\n      ^"),
            "the caret is under [country]: {out}"
        );
    }

    #[test]
    fn a_json_file_must_hold_an_object() {
        assert!(user_from_json("[1]").is_err());
        assert!(user_from_json("{").is_err());
        assert_eq!(user_from_json("{\"id\": \"x\"}").unwrap().id, "x");
    }
}
