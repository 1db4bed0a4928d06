//! Turn engine decisions into the exact SCIM requests and into text for admins.
//!
//! Every value that comes from a source, a target or the state (names, ids, reasons, error
//! texts) goes through [`visible`] before it reaches a terminal table or line, so an ESC or BEL
//! in a display name cannot drive the terminal; CSV cells go through
//! [`scimsync_core::text::csv_cell`]. JSON output
//! is left to serde, which escapes control characters itself.

use scimsync_engine::{Action, CycleReport, ObjectReport, ObjectType};
use scimsync_scim::{Dialect, MemberRemoval, PlannedRequest};
use serde_json::{Value, json};

pub use scimsync_core::text::{visible, visible_lines};

/// A borderless table whose columns are aligned by display width (CJK and emoji take two
/// cells), two spaces apart. Cells must already be [`visible`].
pub fn plain_table(header: &[&str]) -> comfy_table::Table {
    let mut t = comfy_table::Table::new();
    t.load_style(comfy_table::presets::NOTHING)
        .set_content_arrangement(comfy_table::ContentArrangement::Disabled)
        .set_header(header.to_vec());
    for c in t.column_iter_mut() {
        c.set_padding((0, 2));
    }
    t
}

/// The table's lines without trailing blanks.
pub fn trimmed(t: &comfy_table::Table) -> String {
    t.lines()
        .map(|l| l.trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Why an object is disabled, deleted, held or skipped, in words an admin acts on:
/// unassigned, out of scope (a scoping filter), disabled or soft-/hard-deleted in the source,
/// or the skip's own reason. Empty for other actions.
pub fn reason(o: &ObjectReport) -> String {
    match &o.action {
        Action::Skip { reason } => reason.clone(),
        Action::Disable { .. } | Action::Delete { .. } => o.scope.clone(),
        Action::StagedDelete { held, .. } => {
            let staged = staged_reason(held);
            if o.scope.is_empty() {
                staged
            } else {
                format!("{staged} ({})", o.scope)
            }
        }
        _ => String::new(),
    }
}

/// Whether a preview has nothing to send and nothing to report: no request, no failure, no
/// hold, no skip.
pub fn no_changes(r: &CycleReport, shapes: Shapes) -> bool {
    !r.deletions_held
        && r.objects.iter().all(|o| {
            o.error.is_none()
                && !matches!(o.action, Action::Skip { .. } | Action::StagedDelete { .. })
                && requests(o, shapes).is_empty()
        })
}

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
        (
            ObjectType::User,
            Action::Update { target_id, .. }
            | Action::Disable { target_id }
            | Action::SetReference { target_id, .. },
        ) => {
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
    // Logged under Entra's code for it, but not a failure: it is tried again every cycle.
    if matches!(o.action, Action::ReferencePending { .. }) {
        return "pending";
    }
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
        Action::SetReference { .. } => "manager",
        Action::ReferencePending { .. } => "pending",
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
            line.push_str(&format!(" ({})", visible(&r.hold_reasons.join("; "))));
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
        out.push_str(&format!("  why: {}\n", visible(r)));
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
            op.action,
            visible(&op.display_name),
            visible(&op.source_id),
            visible(&op.target_id)
        ));
    }
    out
}

/// An object with nothing to send and nothing to say (unchanged), left out of the table.
fn is_quiet(o: &ObjectReport, shapes: Shapes) -> bool {
    o.error.is_none() && matches!(o.action, Action::NoChange) && requests(o, shapes).is_empty()
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
            out.push_str(&format!("  why: {}\n", visible(why)));
        }
    }
    if no_changes(r, shapes) {
        out.push_str("No changes.\n");
        return out;
    }
    // Columns by display width (comfy-table, as `logs`): a CJK or emoji name takes two cells
    // per character, so padding by `char`s would push the columns after it out of line.
    let mut t = plain_table(&["ACTION", "OBJECT", "REQUEST / REASON"]);
    for o in r.objects.iter().filter(|o| !is_quiet(o, shapes)) {
        let reqs = requests(o, shapes);
        let word = action_word(o);
        let name = visible(&o.display_name).into_owned();
        if let Some(err) = &o.error {
            let code = o.error_code.map(|c| c.to_string()).unwrap_or_default();
            t.add_row(vec![word.into(), name, format!("{code}: {}", visible(err))]);
            continue;
        }
        if reqs.is_empty() {
            let why = match &o.action {
                Action::Link { target_id } => format!("matched {target_id}; already up to date"),
                _ => reason(o),
            };
            t.add_row(vec![word.into(), name, visible(&why).into_owned()]);
            continue;
        }
        let why = reason(o);
        for req in reqs {
            let because = if why.is_empty() {
                String::new()
            } else {
                format!("  ({})", visible(&why))
            };
            let request = format!("{} {}{because}", req.method, visible(&req.path));
            t.add_row(vec![word.into(), name.clone(), request]);
            if req.method == "PATCH"
                && let Some(body) = &req.body
            {
                // JSON escapes control characters already; bidi overrides it keeps.
                let body = visible(&body.to_string()).into_owned();
                t.add_row(vec![String::new(), String::new(), body]);
            }
        }
    }
    out.push_str(&trimmed(&t));
    out.push('\n');
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
                "reason": Some(reason(o)).filter(|r| !r.is_empty()),
                "errorCode": o.error_code, "error": o.error, "requests": reqs,
            })
        })
        .collect();
    json!({
        "job": r.job, "kind": r.kind, "sourceUsers": r.source_users, "tally": r.tally,
        "outOfScopeUnlisted": r.out_of_scope_unlogged,
        "deletionsHeld": r.deletions_held, "held": r.tally.staged_deletes,
        "holdReasons": r.hold_reasons, "noChanges": no_changes(r, shapes), "objects": objects,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use scimsync_core::text::csv_cell;

    const HOSTILE: &str = "Ada\u{1b}]0;owned\u{7}\nLovelace\u{1b}[2J";

    fn shapes() -> Shapes {
        Shapes {
            dialect: Dialect::Rfc,
            removal: MemberRemoval::Filter,
            batch: 100,
        }
    }

    /// No byte a terminal would act on: no C0/C1 control but the line breaks we write.
    fn terminal_safe(out: &str) -> bool {
        !out.chars().any(|c| c != '\n' && c.is_control())
    }

    #[test]
    fn visible_writes_control_characters_as_escapes() {
        assert!(matches!(
            visible("Ada Lovelace é 名"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(
            visible(HOSTILE),
            r"Ada\u{1b}]0;owned\u{7}\nLovelace\u{1b}[2J"
        );
        assert_eq!(visible("a\tb\rc\u{7f}d\u{9b}e"), r"a\tb\rc\u{7f}d\u{9b}e");
        // Bidi overrides would reorder what the terminal shows.
        assert_eq!(visible("abc\u{202e}fed"), r"abc\u{202e}fed");
        assert_eq!(visible_lines("one\ntwo\u{1b}\n"), "one\ntwo\\u{1b}\n");
    }

    #[test]
    fn csv_cells_never_start_a_formula() {
        assert_eq!(
            csv_cell("=HYPERLINK(\"http://evil.example\",\"x\")"),
            "\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"x\"\")\""
        );
        assert_eq!(csv_cell("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        for (cell, safe) in [
            ("+1+2", "'+1+2"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\t=1", r"\t=1"),
            ("ada\u{1b}[31m", r"ada\u{1b}[31m"),
            ("two\nlines", r"two\nlines"),
            ("plain", "plain"),
            ("a, b", "\"a, b\""),
            ("", ""),
        ] {
            assert_eq!(csv_cell(cell), safe, "{cell:?}");
        }
    }

    /// Issue 12 §2: a display name with ESC, BEL and a newline reaches the preview table,
    /// the run summary's failures and the held set escaped, on one line.
    #[tokio::test]
    async fn hostile_names_are_escaped_in_the_preview_and_held_set() {
        let (mut report, store) = crate::test_support::held_job(4).await;
        report.objects[0].display_name = HOSTILE.into();
        report.objects[1].display_name = HOSTILE.into();
        report.objects[1].error = Some("target said \u{7}\u{1b}[5mno".into());
        report.objects[1].error_code = Some(scimsync_core::ErrorCode::SchemaViolation);
        report.hold_reasons.push("why\u{1b}[8m".into());
        let table = preview_table(&report, shapes());
        assert!(terminal_safe(&table), "{table:?}");
        let escaped = r"Ada\u{1b}]0;owned\u{7}\nLovelace\u{1b}[2J";
        assert_eq!(table.matches(escaped).count(), 2, "{table}");
        assert!(table.contains(r"target said \u{7}\u{1b}[5mno"), "{table}");
        assert!(table.contains(r"why\u{1b}[8m"), "{table}");
        // One line per object, as before: the newline in the name did not break the table.
        let lines_with_name = table.lines().filter(|l| l.contains("Lovelace")).count();
        assert_eq!(lines_with_name, 2, "{table}");
        // JSON stays JSON: serde escapes the controls itself.
        let json = preview_json(&report, shapes()).to_string();
        assert!(
            json.contains(r"Ada\u001b]0;owned\u0007\nLovelace"),
            "{json}"
        );
        assert!(terminal_safe(&json), "{json:?}");

        let mut held = scimsync_engine::JobState::new(&store, "app")
            .held()
            .unwrap()
            .unwrap();
        held.ops[0].display_name = HOSTILE.into();
        held.reasons.push("\u{1b}[1A".into());
        let shown = held_set("app", &held);
        assert!(terminal_safe(&shown), "{shown:?}");
        assert!(
            shown.contains(escaped) && shown.contains(r"\u{1b}[1A"),
            "{shown}"
        );
        assert!(terminal_safe(&summary_line(&report)));
    }

    /// Issue 15: nothing to do says so; disables and held disables say why, in the table
    /// and in JSON.
    #[tokio::test]
    async fn preview_says_no_changes_and_why_each_disable() {
        let steady = crate::test_support::steady_preview().await;
        let table = preview_table(&steady, shapes());
        assert!(table.ends_with("No changes.\n"), "{table}");
        assert_eq!(table.lines().count(), 2, "{table}");
        assert_eq!(preview_json(&steady, shapes())["noChanges"], true);

        // One soft-deleted user: disabled (under the threshold of 2), with the reason.
        let (one, _) = crate::test_support::held_job(1).await;
        let table = preview_table(&one, shapes());
        let line = table
            .lines()
            .find(|l| l.starts_with("disable"))
            .unwrap_or_else(|| panic!("{table}"));
        assert!(line.contains("PATCH /Users/"), "{line}");
        assert!(line.contains("(soft-deleted in the source)"), "{line}");
        assert!(!table.contains("No changes."), "{table}");
        let json = preview_json(&one, shapes());
        let disabled = json["objects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["action"] == "disable")
            .unwrap();
        assert_eq!(disabled["reason"], "soft-deleted in the source");

        // Held: the StagedDelete line carries the source's reason too.
        let (held, _) = crate::test_support::held_job(4).await;
        let table = preview_table(&held, shapes());
        let staged: Vec<&str> = table.lines().filter(|l| l.starts_with("staged")).collect();
        assert_eq!(staged.len(), 4, "{table}");
        for l in staged {
            assert!(
                l.ends_with("StagedDelete: disable held, waits for approve-deletions (soft-deleted in the source)"),
                "{l}"
            );
        }
    }

    /// Display columns of `needle` in `line` (CJK and emoji count two).
    fn column_of(line: &str, needle: &str) -> usize {
        let at = line
            .find(needle)
            .unwrap_or_else(|| panic!("{needle} in {line}"));
        unicode_width::UnicodeWidthStr::width(&line[..at])
    }

    /// Issue 15: a CJK or emoji display name keeps the request column aligned on screen,
    /// and the PATCH body under it starts in that column too.
    #[tokio::test]
    async fn wide_names_keep_the_preview_columns_aligned() {
        let (mut report, _) = crate::test_support::held_job(1).await;
        let disable = report
            .objects
            .iter()
            .position(|o| matches!(o.action, Action::Disable { .. }))
            .expect("a disable");
        report.objects[disable].display_name = "山田太郎 🚀".into();
        let table = preview_table(&report, shapes());
        let lines: Vec<&str> = table.lines().collect();
        let header = lines
            .iter()
            .position(|l| l.starts_with("ACTION"))
            .unwrap_or_else(|| panic!("{table}"));
        let column = column_of(lines[header], "REQUEST / REASON");
        let row = header
            + lines[header..]
                .iter()
                .position(|l| l.contains("山田太郎 🚀"))
                .unwrap_or_else(|| panic!("{table}"));
        assert_eq!(column_of(lines[row], "PATCH /Users/"), column, "{table}");
        assert_eq!(column_of(lines[row + 1], "{"), column, "{table}");
        assert_eq!(
            column_of(lines[header], "OBJECT"),
            column_of(lines[row], "山田")
        );
    }
}
