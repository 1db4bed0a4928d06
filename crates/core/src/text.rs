//! Text from sources, targets and state made safe for people: terminals and spreadsheets.
//!
//! Every value that comes from outside (names, ids, reasons, error texts) goes through
//! [`visible`] before it reaches a terminal, so an ESC or BEL in a display name cannot drive the
//! terminal; CSV cells go through [`csv_cell`], so a name cannot run as a spreadsheet formula.
//! JSON output is left to serde, which escapes control characters itself.

use crate::log::{LogAction, LogEntry, LogStatus};
use std::borrow::Cow;

/// Whether `c` must not reach a terminal as is: C0 and C1 controls, DEL, and the bidirectional
/// overrides and isolates that reorder what a terminal shows.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `s` with every control character written visibly, as Rust writes it in a string literal
/// (`\u{1b}`, `\u{7}`, `\n`, `\t`, `\r`); borrowed when there is none (the usual case).
pub fn visible(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_unsafe(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A block of lines made by the CLI itself: its line breaks stay, every other control
/// character is written visibly (for output built from many values, e.g. `eval`).
pub fn visible_lines(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c != '\n' && is_unsafe(c)) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(s.split('\n').map(visible).collect::<Vec<_>>().join("\n"))
}

/// A cell's text that a spreadsheet shows as text: control characters written as [`visible`]
/// does, and a cell that would start a formula (`=`, `+`, `-`, `@`, or a tab or carriage
/// return, OWASP's list) prefixed with `'`. Quoting is left to the CSV writer.
pub fn spreadsheet_text(s: &str) -> String {
    let mut cell = visible(s).into_owned();
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        cell.insert(0, '\'');
    }
    cell
}

/// One CSV cell (RFC 4180): [`spreadsheet_text`], quoted when it needs to be.
pub fn csv_cell(s: &str) -> String {
    let cell = spreadsheet_text(s);
    if cell.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell
    }
}

/// Why a log entry did what it did, as the log table, its CSV download (CLI and admin API) and
/// the dashboard show it: its reason (an error), else the step that decided it (out of scope,
/// soft-deleted, a skip), else its last step. Entries carry a `reason` only on failure, so
/// without this rule the column would be empty for every disable and skip.
pub fn reason(e: &LogEntry) -> String {
    if let Some(r) = e.reason.as_deref().filter(|r| !r.is_empty()) {
        return r.to_string();
    }
    let steps = &e.provisioning_steps;
    let deciding = steps.iter().find(|s| {
        matches!(
            s.status,
            LogStatus::Skipped | LogStatus::Warning | LogStatus::Failure
        )
    });
    let deprovision = matches!(
        e.provisioning_action,
        LogAction::Disable | LogAction::Delete | LogAction::StagedDelete
    );
    // A deprovision's import step names why the object left ("in the deleted items"), unless
    // it is the plain "Retrieved …" of an object that was read.
    let gone = steps
        .iter()
        .find(|s| deprovision && s.name == "Import" && !s.description.is_empty())
        .filter(|s| !s.description.starts_with("Retrieved "));
    deciding
        .or(gone)
        .or(steps.last())
        .map(|s| s.description.clone())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_and_bidi_overrides_are_written_visibly() {
        assert_eq!(visible("ada"), "ada");
        assert_eq!(visible("a\u{1b}[31m\u{7}"), r"a\u{1b}[31m\u{7}");
        assert_eq!(visible("x\u{202e}y"), r"x\u{202e}y");
        assert_eq!(visible_lines("one\ntwo\u{1b}"), "one\ntwo\\u{1b}");
    }

    #[test]
    fn a_csv_cell_never_starts_a_formula() {
        assert_eq!(csv_cell("=1+1"), "'=1+1");
        assert_eq!(csv_cell("-1"), "'-1");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
    }
}
