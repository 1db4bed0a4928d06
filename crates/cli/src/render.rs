//! Turn engine decisions into the exact SCIM requests and into text for admins.

use scimsync_engine::{Action, CycleReport, ObjectReport};
use scimsync_scim::{Dialect, PlannedRequest};
use serde_json::{Value, json};

/// The requests the target receives for an action (or would receive, in a preview), built by
/// the same code the SCIM client sends with.
pub fn requests(action: &Action, dialect: Dialect) -> Vec<PlannedRequest> {
    match action {
        Action::Create { attrs } => vec![PlannedRequest::create(attrs, true)],
        Action::Update { target_id, .. } | Action::Disable { target_id } => {
            vec![PlannedRequest::update(
                target_id,
                &action.changes(),
                dialect,
            )]
        }
        Action::Delete { target_id } => vec![PlannedRequest::delete(target_id)],
        Action::Link { .. } | Action::NoChange | Action::Skip { .. } => Vec::new(),
    }
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
    }
}

pub fn summary_line(r: &CycleReport) -> String {
    let t = &r.tally;
    format!(
        "{} created, {} updated, {} disabled, {} deleted, {} linked, {} unchanged, {} skipped, {} failed",
        t.created, t.updated, t.disabled, t.deleted, t.linked, t.unchanged, t.skipped, t.failed
    )
}

/// The preview as a table: one line per request (or per skip/failure), with the body below
/// each PATCH so an admin sees exactly what changes.
pub fn preview_table(r: &CycleReport, dialect: Dialect) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "Preview of job {} ({:?} cycle, {} source users): {}\n",
        r.job,
        r.kind,
        r.source_users,
        summary_line(r)
    ));
    out.push_str(&format!(
        "{:<8} {:<40} {}\n",
        "ACTION", "OBJECT", "REQUEST / REASON"
    ));
    for o in &r.objects {
        let reqs = requests(&o.action, dialect);
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

pub fn preview_json(r: &CycleReport, dialect: Dialect) -> Value {
    let objects: Vec<Value> = r
        .objects
        .iter()
        .map(|o| {
            let reqs: Vec<Value> = requests(&o.action, dialect)
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
        "outOfScopeUnlisted": r.out_of_scope_unlogged, "objects": objects,
    })
}
