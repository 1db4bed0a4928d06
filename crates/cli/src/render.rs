//! Turn engine decisions into the exact SCIM requests and into text for admins.

use scimsync_engine::{Action, CycleReport, ObjectReport, ObjectType};
use scimsync_scim::{Dialect, MemberRemoval, PlannedRequest};
use serde_json::{Value, json};

/// How requests are rendered for a job: the same choices the SCIM client makes.
#[derive(Debug, Clone, Copy)]
pub struct Shapes {
    pub dialect: Dialect,
    pub removal: MemberRemoval,
    pub batch: usize,
}

/// The requests the target receives for one object (or would receive, in a preview), built
/// by the same code the SCIM client sends with.
pub fn requests(o: &ObjectReport, shapes: Shapes) -> Vec<PlannedRequest> {
    let d = shapes.dialect;
    let mut out = match (&o.object_type, &o.action) {
        (ObjectType::User, Action::Create { attrs }) => vec![PlannedRequest::create(attrs, true)],
        (ObjectType::User, Action::Update { target_id, .. } | Action::Disable { target_id }) => {
            vec![PlannedRequest::update(target_id, &o.action.changes(), d)]
        }
        (ObjectType::User, Action::Delete { target_id }) => vec![PlannedRequest::delete(target_id)],
        (ObjectType::Group, Action::Create { attrs }) => {
            vec![PlannedRequest::create_group(attrs, true)]
        }
        (ObjectType::Group, Action::Update { target_id, changes }) if !changes.is_empty() => {
            vec![PlannedRequest::update_group(target_id, changes, d)]
        }
        (ObjectType::Group, Action::Delete { target_id }) => {
            vec![PlannedRequest::delete_group(target_id)]
        }
        _ => Vec::new(),
    };
    if o.object_type == ObjectType::Group {
        let id = match &o.action {
            Action::Update { target_id, .. } | Action::Link { target_id } => target_id.clone(),
            _ => "{new group}".to_string(),
        };
        for chunk in o.members_added.chunks(shapes.batch.max(1)) {
            out.push(PlannedRequest::add_members(&id, chunk, d));
        }
        for chunk in o.members_removed.chunks(shapes.batch.max(1)) {
            out.push(PlannedRequest::remove_members(
                &id,
                chunk,
                d,
                shapes.removal,
            ));
        }
    }
    out
}

fn action_word(o: &ObjectReport) -> &'static str {
    if o.error_code.is_some() {
        return "FAILED";
    }
    match o.action {
        Action::Create { .. } => "create",
        Action::Update { .. } => "update",
        Action::Disable { .. } => "disable",
        Action::Delete { .. } => "delete",
        Action::Link { .. } => "link",
        Action::NoChange => "none",
        Action::Skip { .. } => "skip",
        Action::StagedDelete { .. } => "staged",
    }
}

/// The tally in one line; a held cycle ends with `held N (why)`.
pub fn summary_line(r: &CycleReport) -> String {
    let t = &r.tally;
    let mut line = format!(
        "{} created, {} updated, {} disabled, {} deleted, {} linked, {} unchanged, {} skipped, {} failed",
        t.created, t.updated, t.disabled, t.deleted, t.linked, t.unchanged, t.skipped, t.failed
    );
    if r.deletions_held {
        line.push_str(&format!("; held {}", t.staged_deletes));
        if !r.hold_reasons.is_empty() {
            line.push_str(&format!(" ({})", r.hold_reasons.join("; ")));
        }
    }
    line
}

/// A config directory for a command line an admin copies (`DIR` when unknown).
pub fn dir_arg(config_dir: Option<&std::path::Path>) -> String {
    config_dir
        .map(|d| {
            let d = d.display().to_string();
            if d.is_empty() { ".".to_string() } else { d }
        })
        .unwrap_or_else(|| "DIR".into())
}

/// What an admin does about a held cycle.
pub fn held_hint(job: &str, config_dir: Option<&std::path::Path>) -> String {
    let dir = dir_arg(config_dir);
    format!(
        "no disable or delete was sent: they wait for approval. Review them and approve exactly \
         that set with `scimsync approve-deletions --job {job} --config-dir {dir}`, or fix the \
         source (the next cycle then has nothing to hold)"
    )
}

/// Entra's name for a held disable or delete, and what it waits for.
fn staged_reason(held: &str) -> String {
    format!("StagedDelete: {held} held, waits for approve-deletions")
}

/// A held set, object by object, with the reasons and the fingerprint an approval names.
pub fn held_set(job: &str, h: &scimsync_engine::HeldDeletions) -> String {
    let mut out = format!(
        "job {job}: {} disables and deletes held by cycle {} at {}\n",
        h.ops.len(),
        h.cycle_id,
        h.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    for r in &h.reasons {
        out.push_str(&format!("  why: {r}\n"));
    }
    out.push_str(&format!("  fingerprint: {}\n", h.fingerprint));
    for op in &h.ops {
        let kind = if op.source_id.starts_with("group:") {
            "group"
        } else {
            "user"
        };
        out.push_str(&format!(
            "  {:<8} {kind:<5} {:<40} (source {}, target {})\n",
            op.action, op.display_name, op.source_id, op.target_id
        ));
    }
    out
}

/// The preview as a table: one line per request (or per skip/failure), with the body below
/// each PATCH so an admin sees exactly what changes.
pub fn preview_table(r: &CycleReport, shapes: Shapes) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "Preview of job {} ({:?} cycle, {} source users): {}\n",
        r.job,
        r.kind,
        r.source_users,
        summary_line(r)
    ));
    if r.deletions_held {
        out.push_str(&format!(
            "This cycle would be held: its {} disables and deletes would wait for `scimsync approve-deletions` (none of them would be sent).\n",
            r.tally.staged_deletes
        ));
        for why in &r.hold_reasons {
            out.push_str(&format!("  why: {why}\n"));
        }
    }
    out.push_str(&format!(
        "{:<8} {:<40} {}\n",
        "ACTION", "OBJECT", "REQUEST / REASON"
    ));
    for o in &r.objects {
        let reqs = requests(o, shapes);
        let word = action_word(o);
        if let Some(err) = &o.error {
            let code = o.error_code.map(|c| c.to_string()).unwrap_or_default();
            out.push_str(&format!("{word:<8} {:<40} {code}: {err}\n", o.display_name));
            continue;
        }
        if reqs.is_empty() {
            let why = match &o.action {
                Action::Skip { reason } => reason.clone(),
                Action::Link { target_id } => format!("matched {target_id}; already up to date"),
                Action::StagedDelete { held, .. } => staged_reason(held),
                _ => String::new(),
            };
            out.push_str(&format!("{word:<8} {:<40} {why}\n", o.display_name));
            continue;
        }
        for req in reqs {
            out.push_str(&format!(
                "{word:<8} {:<40} {} {}\n",
                o.display_name, req.method, req.path
            ));
            if req.method == "PATCH"
                && let Some(body) = &req.body
            {
                out.push_str(&format!("{:<49} {}\n", "", body));
            }
        }
    }
    if r.out_of_scope_unlogged > 0 {
        out.push_str(&format!(
            "({} out-of-scope users never provisioned are not listed)\n",
            r.out_of_scope_unlogged
        ));
    }
    out
}

pub fn preview_json(r: &CycleReport, shapes: Shapes) -> Value {
    let objects: Vec<Value> = r
        .objects
        .iter()
        .map(|o| {
            let reqs: Vec<Value> = requests(o, shapes)
                .into_iter()
                .map(|q| json!({"method": q.method, "path": q.path, "body": q.body}))
                .collect();
            json!({
                "sourceId": o.source_id, "displayName": o.display_name, "scope": o.scope,
                "matchedBy": o.matched_by, "action": action_word(o), "status": o.status,
                "errorCode": o.error_code, "error": o.error, "requests": reqs,
            })
        })
        .collect();
    json!({
        "job": r.job, "kind": r.kind, "sourceUsers": r.source_users, "tally": r.tally,
        "outOfScopeUnlisted": r.out_of_scope_unlogged,
        "deletionsHeld": r.deletions_held, "held": r.tally.staged_deletes,
        "holdReasons": r.hold_reasons, "objects": objects,
    })
}
