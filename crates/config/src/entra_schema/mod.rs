//! Entra's exported synchronization schema (`GET …/jobs/{id}/schema`, the portal's "Review your
//! schema here → Download") and its translation to and from a job file.
//!
//! [`import`] reads the JSON and writes the text of an equivalent job file: every user and group
//! attribute mapping, scoping filter, the object flow types (`[target.actions]`) and whether the
//! group mapping is enabled. [`export`] is the way back: the schema of a job, with the fixed names
//! a custom SCIM app ("customappsso") has in Entra. `import(export(job))` gives the job's
//! mappings, scoping filters, actions and group switch back unchanged (tested over every app
//! template).
//!
//! The JSON comes from Entra, so parsing is lenient: absent keys take their documented defaults,
//! `null` is read as absent and unknown keys are ignored. What cannot be translated is never
//! dropped silently: it is an error, or (with [`ImportOptions::lenient`] where the contract
//! allows an approximation) a warning, each naming its JSON path, e.g.
//! `synchronizationRules[0].objectMappings[1].attributeMappings[4].source.type`; a mapping that is
//! left out is also written into the job file as a comment.
//!
//! This is a file format an admin downloads, not Graph's wire: the Graph client
//! (`crates/graph`) still is the only code that talks to Graph.
//!
//! Decisions where the contract (`entra-sync-api-contract.md`, Part A) leaves room:
//! - A target attribute marked `required` in the schema's target directory gives
//!   `required = true` on the mapping that writes it (contract A.5's table). The contract's
//!   example output (A.5) leaves it off `userName` and the group's `displayName`, although A.4
//!   marks both required; the rule is what makes `required` survive a round trip, so it wins.
//! - `members` of a group mapped from `[members]` is not a scimsync mapping: the engine sends
//!   each group's direct members itself. It becomes a comment (and a note); a group mapping
//!   without it is a warning, since scimsync sends members anyway.
//! - A mapping whose source attribute scimsync cannot read from Graph (the caller says which,
//!   see [`ImportOptions::readable`]; `manager` is read, as a reference) is written commented out with a
//!   warning, so the file passes `validate`. A scoping clause on such an attribute is an error:
//!   dropping it would widen the scope.
//! - `flowTypes` absent or `null` means all three actions; an empty string means none.
//! - A scoping filter without clauses, `inputFilterGroups`/`categoryFilterGroups`, unknown
//!   mapping source types and the flow types `MultiValueAddOnly`, `ValueAddOnly`,
//!   `AttributeAddOnly` are errors; with `lenient` the first three are left out and the flow
//!   types imported as `always`, each with a warning.
//! - Operators: Entra's exact spelling; otherwise a case-insensitive match with `_` and space
//!   alike (`INCLUDES`, `GREATER_THAN`) is taken with a warning; anything else (`Present`,
//!   `Valid Cert Match`) is an error. Unary operators accept `values` absent, `[]` or `[""]`.
//! - A Function source is imported from its `expression` text; only without one is the call
//!   rebuilt from the parameter tree, placing parameters by their keys (the names of Microsoft's
//!   function reference, e.g. Switch's `source`, `defaultValue`, `key`, `value`), with a note.
//!   Export writes that tree with the same keys; empty arguments are left out [inference].

mod export;
mod functions;
mod import;
mod model;
mod text;

pub use export::{Exported, export};
pub use import::{import, import_schema};
pub use model::*;

use crate::{Deprovision, ScopeSetting, TargetActions};
use std::fmt;

/// The source directory's name in current exports (older ones: `Azure Active Directory`).
pub const ENTRA_DIRECTORY: &str = "Microsoft Entra ID";
const ENTRA_DIRECTORY_NAMES: [&str; 2] = [ENTRA_DIRECTORY, "Azure Active Directory"];
/// The target directory of a custom SCIM app.
pub const SCIM_DIRECTORY: &str = "customappsso";
/// The synchronization rule of SCIM and gallery apps.
pub const RULE_NAME: &str = "USERGROUP_OUTBOUND_USERGROUP";
pub const USER_MAPPING_NAME: &str = "Provision Microsoft Entra ID Users";
pub const GROUP_MAPPING_NAME: &str = "Provision Microsoft Entra ID Groups";
/// The target object names of a customappsso user and group.
pub const SCIM_USER_OBJECT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const SCIM_GROUP_OBJECT: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

/// The placeholders an imported job can carry, with the `import-entra` (and `init`) flag that
/// fills each.
pub const PLACEHOLDERS: [(&str, &str); 4] = [
    ("{{TENANT_ID}}", "--tenant-id"),
    ("{{CLIENT_ID}}", "--client-id"),
    ("{{SERVICE_PRINCIPAL_ID}}", "--service-principal-id"),
    ("{{TENANT_URL}}", "--tenant-url"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Nothing is written.
    Error,
    /// Written, but something differs from Entra or was left out (and written as a comment).
    Warning,
    /// Translated in a way worth knowing (e.g. `members`).
    Note,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        })
    }
}

/// One problem or remark, at a JSON path of the schema (`""`: the document as a whole).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub path: String,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Users or groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    User,
    Group,
}

/// What the schema does not hold, and how to treat what it holds.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The job id (`name`).
    pub name: String,
    /// Where the schema came from, for the file's header comment (e.g. the file name).
    pub origin: String,
    /// `None` leaves the placeholder (see [`PLACEHOLDERS`]).
    pub tenant_id: Option<String>,
    pub client_id: Option<String>,
    pub service_principal_id: Option<String>,
    pub tenant_url: Option<String>,
    pub graph_url: Option<String>,
    pub login_url: Option<String>,
    /// Entra's `SyncAll` (a job setting, not in the schema).
    pub scope: ScopeSetting,
    /// Entra's `SkipOutOfScopeDeletions`.
    pub skip_out_of_scope_deletions: bool,
    /// Entra's accidental-deletions threshold; `None` keeps scimsync's default (500).
    pub deletion_threshold: Option<u32>,
    pub deprovision: Deprovision,
    /// Approximate what the contract allows (see the module docs) instead of failing.
    pub lenient: bool,
    /// Whether scimsync can read a source attribute (from Graph). A mapping that reads one it
    /// cannot is written commented out, a scoping clause on one is an error.
    pub readable: fn(ObjectKind, &str) -> bool,
}

impl ImportOptions {
    /// Placeholders for everything, Entra's defaults for the settings, every attribute readable.
    pub fn new(name: impl Into<String>) -> Self {
        ImportOptions {
            name: name.into(),
            origin: "the exported schema".into(),
            tenant_id: None,
            client_id: None,
            service_principal_id: None,
            tenant_url: None,
            graph_url: None,
            login_url: None,
            scope: ScopeSetting::Assigned,
            skip_out_of_scope_deletions: false,
            deletion_threshold: None,
            deprovision: Deprovision::Disable,
            lenient: false,
            readable: |_, _| true,
        }
    }
}

/// The job file written from a schema.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The TOML text.
    pub text: String,
    /// Warnings and notes, in the schema's order.
    pub findings: Vec<Finding>,
    /// The placeholders left in `text`, with the flag that fills each.
    pub placeholders: Vec<(&'static str, &'static str)>,
    /// The environment variable the target token is read from.
    pub token_env: String,
    /// Counts for a summary line.
    pub user_mappings: usize,
    pub group_mappings: usize,
    pub scoping_filters: usize,
}

/// The environment variable an imported job reads its SCIM token from: `<NAME>_SCIM_TOKEN`.
pub fn token_env(name: &str) -> String {
    let base: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("{base}_SCIM_TOKEN")
}

fn flow_types_text(a: &TargetActions) -> String {
    let mut parts = Vec::new();
    if a.create {
        parts.push("Add");
    }
    if a.update {
        parts.push("Update");
    }
    if a.delete {
        parts.push("Delete");
    }
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}
