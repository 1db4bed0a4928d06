//! What a cycle did (or, in preview, would do), object by object.

use scimsync_core::{Attrs, Change, ChangeOp, ErrorCode, LogAction, LogStatus};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Send to the target and record state.
    Apply,
    /// Dry run: match (read-only) and report, send and record nothing.
    Preview,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CycleKind {
    /// The job's first cycle (or the first after its state was lost or reset).
    Initial,
    Incremental,
}

/// The decision for one object; in preview, what would be sent.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "camelCase")]
pub enum Action {
    /// POST a new user.
    Create { attrs: Attrs },
    /// PATCH an existing user (also after linking to a matched one).
    Update {
        target_id: String,
        changes: Vec<Change>,
    },
    /// PATCH `active` to false.
    Disable { target_id: String },
    /// DELETE the user.
    Delete { target_id: String },
    /// Linked to a matched target user that already agrees: nothing to send.
    Link { target_id: String },
    /// Nothing to send.
    NoChange,
    /// Left alone on purpose, with the reason.
    Skip { reason: String },
    /// A disable or delete held back by the deletion threshold (Entra's `StagedDelete`):
    /// nothing is sent until an admin approves.
    StagedDelete { target_id: String, held: String },
    /// PATCH reference attributes (`manager`) once the referenced user has a target id
    /// (Entra's `referenceResolution` step, after the users of the cycle).
    SetReference {
        target_id: String,
        changes: Vec<Change>,
    },
    /// A reference the target cannot hold yet: the referenced user (`manager`, its source id)
    /// is not provisioned. Tried again at every cycle.
    ReferencePending { manager: String },
}

impl Action {
    /// The PATCH operations this action sends, for `Update` and `Disable`.
    pub fn changes(&self) -> Vec<Change> {
        match self {
            Action::Update { changes, .. } | Action::SetReference { changes, .. } => {
                changes.clone()
            }
            Action::Disable { .. } => vec![Change {
                op: ChangeOp::Replace,
                path: "active".into(),
                value: json!(false),
            }],
            _ => Vec::new(),
        }
    }

    /// Whether this action disables or deletes (what the deletion threshold counts).
    pub fn is_deprovision(&self) -> bool {
        matches!(
            self,
            Action::Disable { .. } | Action::Delete { .. } | Action::StagedDelete { .. }
        )
    }

    pub fn log_action(&self) -> LogAction {
        match self {
            Action::Create { .. } => LogAction::Create,
            Action::Update { .. } | Action::SetReference { .. } => LogAction::Update,
            Action::Disable { .. } => LogAction::Disable,
            Action::Delete { .. } => LogAction::Delete,
            Action::StagedDelete { .. } => LogAction::StagedDelete,
            Action::Link { .. }
            | Action::NoChange
            | Action::Skip { .. }
            | Action::ReferencePending { .. } => LogAction::Other,
        }
    }

    /// Whether this action writes to the target.
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Action::Create { .. }
                | Action::Update { .. }
                | Action::Disable { .. }
                | Action::Delete { .. }
                | Action::SetReference { .. }
        )
    }
}

/// Users and groups go through the same pipeline; the report says which one it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ObjectType {
    User,
    Group,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectReport {
    pub object_type: ObjectType,
    pub source_id: String,
    pub display_name: String,
    /// Why the object is in or out of scope.
    pub scope: String,
    /// The matching query that found the target object, if one ran.
    pub matched_by: Option<String>,
    pub action: Action,
    pub status: LogStatus,
    pub error_code: Option<ErrorCode>,
    pub error: Option<String>,
    /// Groups: member target ids added and removed (sent in batches).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub members_added: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub members_removed: Vec<String>,
    /// Groups: members left out because their user is not provisioned (never sent as
    /// dangling references).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub members_left_out: Vec<String>,
    /// The steps Entra shows for an object: import, scoping, matching, processing/export.
    pub steps: Vec<scimsync_core::LogStep>,
}

/// Counts by outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Tally {
    pub created: usize,
    pub updated: usize,
    pub disabled: usize,
    pub deleted: usize,
    pub linked: usize,
    pub unchanged: usize,
    pub skipped: usize,
    pub failed: usize,
    /// Disables and deletes held back by the deletion threshold.
    pub staged_deletes: usize,
    /// Objects waiting in escrow for their next retry.
    pub escrowed: usize,
    pub members_added: usize,
    pub members_removed: usize,
    /// References (`manager`) written in the reference pass.
    pub references_set: usize,
    /// References waiting for their manager to be provisioned (first seen this cycle).
    pub references_pending: usize,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CycleReport {
    pub job: String,
    pub cycle_id: String,
    pub kind: CycleKind,
    pub mode: Mode,
    pub started: chrono::DateTime<chrono::Utc>,
    pub finished: chrono::DateTime<chrono::Utc>,
    pub source_users: usize,
    /// A full read (initial cycle, restart, changed mappings or scope, or a rejected watermark)
    /// rather than changes since the watermark.
    pub full_read: bool,
    /// Why the source was read in full although a watermark existed.
    pub notes: Vec<String>,
    /// The cycle would have disabled or deleted more objects than the threshold allows; they
    /// were held (`StagedDelete`) and the job waits for `approve-deletions`.
    pub deletions_held: bool,
    /// Why the cycle held its disables and deletes (threshold, share, an empty source read).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hold_reasons: Vec<String>,
    /// Out-of-scope users never provisioned, not logged one by one after the initial cycle.
    pub out_of_scope_unlogged: usize,
    pub tally: Tally,
    /// Where the cycle's time went.
    pub phases: Phases,
    /// The objects the cycle touched or decided about, sorted by display name: every one in a
    /// preview; in a run every failure and the first [`LISTED_OBJECTS`] others (each object
    /// has its provisioning log entry, so a 100,000-user cycle need not hold them all).
    pub objects: Vec<ObjectReport>,
    /// Objects counted in `tally` but not listed in `objects`.
    pub objects_not_listed: usize,
    /// What the objects not listed were, for the tally and the cycle history.
    #[serde(skip)]
    pub unlisted: Unlisted,
}

/// How many objects besides failures a run's report lists one by one.
pub const LISTED_OBJECTS: usize = 1000;

/// The objects of a report that are counted but not listed.
#[derive(Debug, Clone, Default)]
pub struct Unlisted {
    pub tally: Tally,
    /// (action, status) of each, as the provisioning log has them.
    pub operations: Vec<(LogAction, LogStatus)>,
}

impl Unlisted {
    pub(crate) fn add(&mut self, action: &Action, status: LogStatus, members: (usize, usize)) {
        tally_one(&mut self.tally, action, status, members);
        self.operations.push((action.log_action(), status));
    }
}

/// Wall-clock time per step of a cycle, in milliseconds (the engine's clock): what an admin
/// compares with the target's own capacity (the users phase is the users' matches, creates
/// and updates; the groups phase their groups and member batches).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Phases {
    /// Reading the source and the state, and planning.
    pub read_ms: u64,
    pub users_ms: u64,
    /// The reference pass (`manager`).
    pub references_ms: u64,
    pub groups_ms: u64,
}

impl CycleReport {
    pub(crate) fn count(&mut self) {
        let mut t = self.unlisted.tally.clone();
        for o in &self.objects {
            let members = (o.members_added.len(), o.members_removed.len());
            tally_one(&mut t, &o.action, o.status, members);
        }
        self.tally = t;
        self.objects_not_listed = self.unlisted.operations.len();
    }
}

/// `members`: how many were added and removed.
fn tally_one(t: &mut Tally, action: &Action, status: LogStatus, members: (usize, usize)) {
    if status == LogStatus::Failure {
        t.failed += 1;
        return;
    }
    match action {
        Action::Create { .. } => t.created += 1,
        Action::Update { .. } => t.updated += 1,
        Action::Disable { .. } => t.disabled += 1,
        Action::Delete { .. } => t.deleted += 1,
        Action::Link { .. } => t.linked += 1,
        Action::NoChange => t.unchanged += 1,
        Action::Skip { .. } => t.skipped += 1,
        Action::StagedDelete { .. } => t.staged_deletes += 1,
        Action::SetReference { .. } => t.references_set += 1,
        Action::ReferencePending { .. } => t.references_pending += 1,
    }
    t.members_added += members.0;
    t.members_removed += members.1;
}
