//! Plan: every decision of a cycle, made once, with no I/O, no clock and no random ids (time
//! and everything read come in as arguments). Preview and run execute the same [`Plan`], and
//! the deletion threshold and the empty-source guards read it before anything is sent.
//!
//! What the plan cannot know without asking the target (does a matching object exist?) it
//! states as an operation the act step carries out the same way in both modes:
//! [`UserOp::Provision`] means "match by these keys, link what is found, else create".

use crate::escrow::Escrow;
use crate::job::JobSpec;
use crate::jobstate::HeldOp;
use crate::read::MirroredGroup;
use crate::report::CycleKind;
use chrono::{DateTime, Utc};
use scimsync_core::{
    AppRoleAssignment, Attrs, Change, ErrorCode, LogStatus, LogStep, ObjectState, Outcome,
    SourceUser,
};
use scimsync_mapping::{CompiledFilters, CompiledMappings, ScopeDecision, hash_attrs};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// State ids of groups are prefixed, so users and groups share one object tree.
pub const GROUP_PREFIX: &str = "group:";

/// The job's mappings and scoping filters, compiled once per cycle (expressions parsed,
/// patterns built) and owned by the caller.
pub(crate) struct Compiled {
    pub users: CompiledMappings,
    pub scoping: CompiledFilters,
    pub groups: CompiledMappings,
    pub group_scoping: CompiledFilters,
    /// User target paths the reference pass writes (see [`JobSpec::reference_paths`]).
    pub references: Vec<String>,
}

impl Compiled {
    pub fn new(job: &JobSpec) -> Self {
        let (gm, gs) = match &job.groups {
            Some(g) => (g.mappings.as_slice(), g.scoping.as_slice()),
            None => (&[][..], &[][..]),
        };
        Compiled {
            users: CompiledMappings::new(&job.mappings),
            scoping: CompiledFilters::new(&job.scoping),
            groups: CompiledMappings::new(gm),
            group_scoping: CompiledFilters::new(gs),
            references: job.reference_paths(),
        }
    }
}

/// What the plan needs besides the object itself.
pub(crate) struct PlanCtx<'a> {
    pub job: &'a JobSpec,
    pub compiled: &'a Compiled,
    pub kind: CycleKind,
    pub now: DateTime<Utc>,
    /// Effective assignments per user under "Sync only assigned"; `None` under "Sync all".
    pub assigned: Option<&'a BTreeMap<String, Vec<AppRoleAssignment>>>,
    pub escrows: &'a BTreeMap<String, Escrow>,
    /// On demand: the admin asked for this object now, whatever its escrow says.
    pub ignore_escrow: bool,
}

/// One user to decide.
/// The source user is borrowed for the decision only (`'u`): the cycle drops the users it
/// read once they are planned.
pub(crate) enum UserItem<'u, 'a> {
    Present(&'u SourceUser, Option<&'a ObjectState>),
    /// Known to the job, no longer among the source's users; `true` when soft-deleted.
    Gone(&'a ObjectState, bool),
}

/// Why a deprovision happens, for the log and for the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Deprovision {
    Disable,
    Delete,
}

impl Deprovision {
    pub fn as_str(self) -> &'static str {
        match self {
            Deprovision::Disable => "disable",
            Deprovision::Delete => "delete",
        }
    }
}

/// The operation decided for one user.
#[derive(Debug, Clone)]
pub(crate) enum UserOp {
    /// In scope and not linked: match by `keys` (in precedence order), link what is found
    /// and bring it to `desired`, else create with `create` (after `unique` values are chosen).
    /// `desired` is `None` when it equals `create` (no create-only mapping or default applies:
    /// the usual case), so a large plan holds each user's representation once.
    Provision {
        create: Attrs,
        desired: Option<Attrs>,
        hash: String,
        keys: Vec<(String, String)>,
        unique: Vec<(String, Vec<Value>)>,
    },
    /// Linked and different: PATCH the changes.
    Update {
        target_id: String,
        confirmed: Attrs,
        changes: Vec<Change>,
        hash: String,
        outcome: Outcome,
    },
    /// Disable (PATCH active false) or delete; `forget` removes the link after a delete.
    Deprovision {
        how: Deprovision,
        target_id: String,
        confirmed: Attrs,
        outcome: Outcome,
    },
    /// Held back by the deletion guards: logged as `StagedDelete`, nothing sent.
    Held { how: Deprovision, target_id: String },
    /// Left alone on purpose; `forget` drops the link (it left management).
    Skip {
        reason: String,
        forget: bool,
        target_id: Option<String>,
    },
    /// Decided to fail without asking the target (mapping error, no matching value).
    Fail {
        code: ErrorCode,
        message: String,
        target_id: Option<String>,
    },
    /// Nothing to do and nothing to log.
    Unchanged,
    /// Out of scope and never provisioned (incremental cycle): counted, not logged.
    SilentSkip,
    /// Waiting in escrow for its next retry.
    Escrowed,
}

/// One user's decision with what its log entry needs.
#[derive(Debug, Clone)]
pub(crate) struct UserDecision<'a> {
    pub source_id: String,
    pub display: String,
    pub scope: String,
    pub steps: Vec<LogStep>,
    pub op: UserOp,
    pub state: Option<&'a ObjectState>,
    /// For a user gone from the source: whether it was soft-deleted (kept in its escrow so a
    /// retry knows what it was).
    pub gone: Option<bool>,
    /// In scope: the references the source gives (for the reference pass after the users).
    pub refs: Vec<RefWant>,
}

/// A reference attribute as the source gives it: the referenced source object's id, or
/// `None` when the source says the link was removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RefWant {
    pub path: String,
    pub manager: Option<String>,
}

/// The references of an in-scope user; an attribute the source did not return is no want.
pub(crate) fn reference_wants(ctx: &PlanCtx<'_>, user: &SourceUser) -> Vec<RefWant> {
    if ctx.compiled.references.is_empty() {
        return Vec::new();
    }
    let Some(value) = user
        .attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(crate::job::REFERENCE_SOURCE))
        .map(|(_, v)| v)
    else {
        return Vec::new();
    };
    let manager = match value {
        Value::String(id) if !id.is_empty() => Some(id.clone()),
        _ => None,
    };
    (ctx.compiled.references)
        .iter()
        .map(|path| RefWant {
            path: path.clone(),
            manager: manager.clone(),
        })
        .collect()
}

pub(crate) fn step(name: &str, kind: &str, status: LogStatus, d: impl Into<String>) -> LogStep {
    LogStep {
        name: name.into(),
        provisioning_step_type: kind.into(),
        status,
        description: d.into(),
    }
}

/// Attributes Entra computes rather than reads: `IsSoftDeleted` (false for a user being
/// provisioned) and `appRoleAssignments` (from the assignments read this cycle).
pub(crate) fn with_derived_attributes(ctx: &PlanCtx<'_>, user: &SourceUser) -> SourceUser {
    let mut u = user.clone();
    u.attrs
        .entry("IsSoftDeleted".into())
        .or_insert(Value::Bool(false));
    if let Some(roles) = ctx.assigned.and_then(|a| a.get(&user.id)) {
        u.attrs.insert(
            "appRoleAssignments".into(),
            serde_json::to_value(roles).unwrap_or(Value::Null),
        );
    }
    u
}

/// The representation kept up to date on every cycle (create-only mappings and defaults
/// excluded, or included with `on_create`), with `active` when the engine owns it.
pub(crate) fn desired_user(
    ctx: &PlanCtx<'_>,
    user: &SourceUser,
    on_create: bool,
) -> Result<Attrs, (ErrorCode, String)> {
    let mut attrs = (ctx.compiled.users)
        .map_user(user, on_create, ctx.now)
        .map_err(|e| (e.code, e.message))?;
    if !ctx.job.maps_active() {
        attrs.insert("active".into(), Value::Bool(true));
    }
    // References are written by the reference pass once their target ids are known.
    for path in &ctx.compiled.references {
        attrs.remove(path);
    }
    Ok(attrs)
}

/// Decide one user. The one place the user decision is written.
pub(crate) fn decide_user<'a>(ctx: &PlanCtx<'a>, item: UserItem<'_, 'a>) -> UserDecision<'a> {
    let (source_id, state, gone) = match &item {
        UserItem::Present(u, st) => (u.id.clone(), *st, None),
        UserItem::Gone(st, soft) => (st.source_id.clone(), Some(*st), Some(*soft)),
    };
    let escrow = ctx.escrows.get(&source_id);
    let mut d = UserDecision {
        display: source_id.clone(),
        source_id,
        scope: String::new(),
        steps: Vec::new(),
        op: UserOp::Unchanged,
        state,
        gone,
        refs: Vec::new(),
    };
    if !ctx.ignore_escrow && escrow.is_some_and(|e| e.next_retry > ctx.now) {
        d.op = UserOp::Escrowed;
        return d;
    }
    match item {
        UserItem::Present(user, state) => decide_present(ctx, &mut d, user, state),
        UserItem::Gone(st, soft) => decide_gone(ctx, &mut d, st, soft),
    }
    d
}

fn decide_present(
    ctx: &PlanCtx<'_>,
    d: &mut UserDecision<'_>,
    user: &SourceUser,
    state: Option<&ObjectState>,
) {
    let user = &with_derived_attributes(ctx, user);
    d.display = user.display().to_string();
    d.steps.push(step(
        "Import",
        "import",
        LogStatus::Success,
        format!("Retrieved {} from the source", user.display()),
    ));
    let scope = (ctx.compiled.scoping).scope(user, ctx.assigned.map(|a| a.contains_key(&user.id)));
    let decision = scope.decision;
    d.scope = scope.reason.clone();
    let status = if decision == ScopeDecision::InScope {
        LogStatus::Success
    } else {
        LogStatus::Skipped
    };
    d.steps.push(step("Scope", "scoping", status, scope.reason));

    if decision == ScopeDecision::InScope {
        d.refs = reference_wants(ctx, user);
    }
    d.op = match (decision, state) {
        (ScopeDecision::InScope, Some(st)) => decide_linked(ctx, d, user, st),
        (ScopeDecision::InScope, None) => decide_unlinked(ctx, user),
        (out, Some(st)) => decide_leaving(ctx, st, out),
        (_, None) if ctx.kind == CycleKind::Incremental => UserOp::SilentSkip,
        (out, None) => UserOp::Skip {
            reason: match out {
                ScopeDecision::DisabledAtSource => {
                    "disabled in the source: a disabled user is never created".into()
                }
                _ => "not in scope: nothing to provision".into(),
            },
            forget: false,
            target_id: None,
        },
    };
}

fn decide_linked(
    ctx: &PlanCtx<'_>,
    d: &mut UserDecision<'_>,
    user: &SourceUser,
    st: &ObjectState,
) -> UserOp {
    let job = ctx.job;
    let desired = match desired_user(ctx, user, false) {
        Ok(v) => v,
        Err((code, message)) => {
            return UserOp::Fail {
                code,
                message,
                target_id: Some(st.target_id.clone()),
            };
        }
    };
    let hash = hash_attrs(&desired);
    if st.active && st.hash == hash {
        return UserOp::Unchanged;
    }
    let changes = job.user_diff(&st.confirmed, &desired);
    if changes.is_empty() {
        return UserOp::Unchanged;
    }
    if !job.actions.update {
        return UserOp::Skip {
            reason: "the Update target action is off".into(),
            forget: false,
            target_id: Some(st.target_id.clone()),
        };
    }
    d.steps.push(step(
        "Match",
        "matching",
        LogStatus::Success,
        format!("linked to target object {}", st.target_id),
    ));
    UserOp::Update {
        target_id: st.target_id.clone(),
        confirmed: st.confirmed.clone(),
        changes,
        hash,
        outcome: if st.active {
            Outcome::Updated
        } else {
            Outcome::Enabled
        },
    }
}

fn decide_unlinked(ctx: &PlanCtx<'_>, user: &SourceUser) -> UserOp {
    let both =
        desired_user(ctx, user, true).and_then(|c| desired_user(ctx, user, false).map(|d| (c, d)));
    let (create, desired) = match both {
        Ok(v) => v,
        Err((code, message)) => {
            return UserOp::Fail {
                code,
                message,
                target_id: None,
            };
        }
    };
    let keys = ctx.compiled.users.matching_keys(&create);
    if keys.is_empty() {
        return UserOp::Fail {
            code: ErrorCode::ImportSkipped,
            message: "no matching attribute has a value for this user".into(),
            target_id: None,
        };
    }
    UserOp::Provision {
        hash: hash_attrs(&desired),
        unique: ctx.compiled.users.unique_candidates(user, ctx.now),
        desired: (desired != create).then_some(desired),
        create,
        keys,
    }
}

fn decide_leaving(ctx: &PlanCtx<'_>, st: &ObjectState, decision: ScopeDecision) -> UserOp {
    let job = ctx.job;
    if !st.active {
        return UserOp::Unchanged;
    }
    if decision.is_scope_loss() && job.skip_out_of_scope_deletions {
        return UserOp::Skip {
            reason: "left scope; SkipOutOfScopeDeletions is set, so it stays active".into(),
            forget: false,
            target_id: Some(st.target_id.clone()),
        };
    }
    let how = if decision.is_scope_loss() && job.deprovision_delete {
        Deprovision::Delete
    } else {
        Deprovision::Disable
    };
    UserOp::Deprovision {
        how,
        target_id: st.target_id.clone(),
        confirmed: st.confirmed.clone(),
        outcome: if decision.is_scope_loss() {
            Outcome::OutOfScope
        } else {
            Outcome::Disabled
        },
    }
}

fn decide_gone(ctx: &PlanCtx<'_>, d: &mut UserDecision<'_>, st: &ObjectState, soft: bool) {
    d.display = st
        .confirmed
        .get("userName")
        .and_then(Value::as_str)
        .unwrap_or(&st.source_id)
        .to_string();
    if soft {
        d.scope = "soft-deleted in the source".into();
        d.steps.push(step(
            "Import",
            "import",
            LogStatus::Success,
            "the user is in the source's deleted items",
        ));
        d.op = if st.active {
            UserOp::Deprovision {
                how: Deprovision::Disable,
                target_id: st.target_id.clone(),
                confirmed: st.confirmed.clone(),
                outcome: Outcome::Disabled,
            }
        } else {
            UserOp::Unchanged
        };
        return;
    }
    d.scope = "hard-deleted in the source".into();
    d.steps.push(step(
        "Import",
        "import",
        LogStatus::Success,
        "the user no longer exists in the source",
    ));
    d.op = if st.outcome == Outcome::OutOfScope {
        UserOp::Skip {
            reason: "left management when it left scope; no DELETE is sent (as Entra)".into(),
            forget: true,
            target_id: Some(st.target_id.clone()),
        }
    } else if !ctx.job.actions.delete {
        UserOp::Skip {
            reason: "the Delete target action is off".into(),
            forget: true,
            target_id: Some(st.target_id.clone()),
        }
    } else {
        UserOp::Deprovision {
            how: Deprovision::Delete,
            target_id: st.target_id.clone(),
            confirmed: st.confirmed.clone(),
            outcome: Outcome::Disabled,
        }
    };
}

// ---------------------------------------------------------------------------------------
// Groups

/// The operation decided for one group object (its membership is planned by
/// [`plan_members`] once the users it references are settled).
#[derive(Debug, Clone)]
pub(crate) enum GroupOp {
    /// Linked and up to date.
    Unchanged {
        target_id: String,
    },
    Update {
        target_id: String,
        confirmed: Attrs,
        changes: Vec<Change>,
        hash: String,
    },
    /// Match by `keys`, link what is found (updating it to `desired`), else create empty.
    Provision {
        create: Attrs,
        desired: Attrs,
        hash: String,
        keys: Vec<(String, String)>,
    },
    Delete {
        target_id: String,
    },
    Held {
        target_id: String,
    },
    /// Left scope and kept: marked out of scope once, logged once.
    Keep,
    Fail {
        code: ErrorCode,
        message: String,
    },
    /// Out of scope and already marked, or not provisioned: nothing at all.
    Quiet,
    Escrowed,
}

#[derive(Debug, Clone)]
pub(crate) struct GroupDecision<'a> {
    /// Source group id (the state id is `group:` + this).
    pub id: String,
    pub display: String,
    pub scope: String,
    pub steps: Vec<LogStep>,
    pub op: GroupOp,
    pub state: Option<&'a ObjectState>,
    /// In-scope groups: the source members to mirror.
    pub members: Option<&'a MirroredGroup>,
}

impl GroupDecision<'_> {
    pub fn state_id(&self) -> String {
        format!("{GROUP_PREFIX}{}", self.id)
    }
}

/// Decide every group: those in the source (in or out of scope) and those the job knows that
/// the source no longer has.
pub(crate) fn decide_groups<'a>(
    ctx: &PlanCtx<'a>,
    groups: &'a BTreeMap<String, MirroredGroup>,
    assigned: Option<&BTreeSet<String>>,
    states: &'a [ObjectState],
) -> Vec<GroupDecision<'a>> {
    if ctx.job.groups.is_none() {
        return Vec::new();
    }
    let by_id: HashMap<&str, &ObjectState> = states
        .iter()
        .filter_map(|s| s.source_id.strip_prefix(GROUP_PREFIX).map(|id| (id, s)))
        .collect();
    let mut out = Vec::new();
    for (id, g) in groups {
        let in_scope = assigned.is_none_or(|a| a.contains(id))
            && ctx.compiled.group_scoping.evaluate(&g.attrs).in_scope;
        out.push(decide_group(
            ctx,
            id,
            Some(g),
            by_id.get(id.as_str()).copied(),
            in_scope,
        ));
    }
    for (id, st) in &by_id {
        if !groups.contains_key(*id) {
            out.push(decide_group(ctx, id, None, Some(st), false));
        }
    }
    out
}

/// Decide one group: `source` is `None` when the source no longer has it.
pub(crate) fn decide_group<'a>(
    ctx: &PlanCtx<'a>,
    id: &str,
    source: Option<&'a MirroredGroup>,
    state: Option<&'a ObjectState>,
    in_scope: bool,
) -> GroupDecision<'a> {
    let state_id = format!("{GROUP_PREFIX}{id}");
    let escrow = ctx.escrows.get(&state_id);
    let display = source
        .and_then(|g| g.attrs.get("displayName"))
        .or_else(|| state.and_then(|s| s.confirmed.get("displayName")))
        .and_then(Value::as_str)
        .unwrap_or(id)
        .to_string();
    let mut d = GroupDecision {
        id: id.to_string(),
        display,
        scope: String::new(),
        steps: Vec::new(),
        op: GroupOp::Quiet,
        state,
        members: None,
    };
    if !ctx.ignore_escrow && escrow.is_some_and(|e| e.next_retry > ctx.now) {
        d.op = GroupOp::Escrowed;
        return d;
    }
    let Some(spec) = &ctx.job.groups else {
        return d;
    };
    match (source, in_scope) {
        (Some(g), true) => {
            d.steps.push(step(
                "Import",
                "import",
                LogStatus::Success,
                format!("Retrieved group {} from the source", d.display),
            ));
            d.scope = "in scope: assigned to the application".into();
            d.steps.push(step(
                "Scope",
                "scoping",
                LogStatus::Success,
                d.scope.clone(),
            ));
            d.members = Some(g);
            d.op = decide_group_object(ctx, id, g, state);
        }
        (source, _) => {
            let deleted = source.is_none();
            let Some(st) = state else {
                return d;
            };
            d.scope = if deleted {
                "deleted in the source".into()
            } else {
                "out of scope: not assigned".into()
            };
            d.steps.push(step(
                "Scope",
                "scoping",
                LogStatus::Skipped,
                d.scope.clone(),
            ));
            let delete = (deleted || spec.delete_out_of_scope) && ctx.job.actions.delete;
            d.op = if delete {
                GroupOp::Delete {
                    target_id: st.target_id.clone(),
                }
            } else if st.outcome == Outcome::OutOfScope {
                GroupOp::Quiet
            } else {
                GroupOp::Keep
            };
        }
    }
    d
}

fn group_source(id: &str, g: &MirroredGroup) -> SourceUser {
    let mut attrs = g.attrs.clone();
    attrs
        .entry("objectId".into())
        .or_insert_with(|| Value::String(id.to_string()));
    SourceUser {
        id: id.to_string(),
        attrs,
    }
}

fn decide_group_object(
    ctx: &PlanCtx<'_>,
    id: &str,
    g: &MirroredGroup,
    state: Option<&ObjectState>,
) -> GroupOp {
    if ctx.job.groups.is_none() {
        return GroupOp::Quiet;
    }
    let mappings = &ctx.compiled.groups;
    let source = group_source(id, g);
    let mapped = mappings
        .map_user(&source, false, ctx.now)
        .and_then(|desired| {
            mappings
                .map_user(&source, true, ctx.now)
                .map(|create| (desired, create))
        });
    let (desired, create) = match mapped {
        Ok(v) => v,
        Err(e) => {
            return GroupOp::Fail {
                code: e.code,
                message: e.message,
            };
        }
    };
    let hash = hash_attrs(&desired);
    if let Some(st) = state {
        if st.hash == hash {
            return GroupOp::Unchanged {
                target_id: st.target_id.clone(),
            };
        }
        let changes = crate::diff::diff(&st.confirmed, &desired);
        if changes.is_empty() || !ctx.job.actions.update {
            return GroupOp::Unchanged {
                target_id: st.target_id.clone(),
            };
        }
        return GroupOp::Update {
            target_id: st.target_id.clone(),
            confirmed: st.confirmed.clone(),
            changes,
            hash,
        };
    }
    let keys = mappings.matching_keys(&create);
    if keys.is_empty() {
        return GroupOp::Fail {
            code: ErrorCode::ImportSkipped,
            message: "the group has no value for its matching attribute".into(),
        };
    }
    GroupOp::Provision {
        create,
        desired,
        hash,
        keys,
    }
}

/// A group's membership change, from the users as they stand after the user phase.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct MemberPlan {
    pub add: Vec<String>,
    pub remove: Vec<String>,
    /// Source members left out: not provisioned or not active (never sent dangling).
    pub left_out: Vec<String>,
}

/// Bring `confirmed` (target member ids the target holds, as far as we know) to exactly the
/// provisioned, active users among the group's direct members (plus provisioned nested groups
/// when the job includes them).
pub(crate) fn plan_members(
    g: &MirroredGroup,
    include_nested: bool,
    user_target: &dyn Fn(&str) -> Option<String>,
    group_target: &dyn Fn(&str) -> Option<String>,
    confirmed: &BTreeSet<String>,
) -> MemberPlan {
    let mut desired = BTreeSet::new();
    let mut left_out = Vec::new();
    for u in &g.users {
        match user_target(u) {
            Some(t) => {
                desired.insert(t);
            }
            None => left_out.push(u.clone()),
        }
    }
    if include_nested {
        for n in &g.groups {
            match group_target(n) {
                Some(t) => {
                    desired.insert(t);
                }
                None => left_out.push(n.clone()),
            }
        }
    }
    MemberPlan {
        add: desired.difference(confirmed).cloned().collect(),
        remove: confirmed.difference(&desired).cloned().collect(),
        left_out,
    }
}

// ---------------------------------------------------------------------------------------
// Identity: objects whose matching values collide are decided in one sequence

/// Group the objects to provision into sequences: objects that share a matching value
/// (compared case-insensitively, as SCIM filters do) are matched and created one after the
/// other in the order given, so the first links or creates and the next sees it claimed.
/// Objects that collide with nothing are sequences of one and run concurrently.
pub(crate) fn sequences(keys: &[Option<&[(String, String)]>]) -> Vec<Vec<usize>> {
    let mut parent: Vec<usize> = (0..keys.len()).collect();
    fn root(p: &mut [usize], mut i: usize) -> usize {
        while p[i] != i {
            p[i] = p[p[i]];
            i = p[i];
        }
        i
    }
    let mut first: HashMap<(String, String), usize> = HashMap::new();
    for (i, k) in keys.iter().enumerate() {
        for (path, value) in k.iter().flat_map(|k| k.iter()) {
            let key = (path.to_ascii_lowercase(), value.to_lowercase());
            match first.get(&key) {
                Some(&j) => {
                    let (a, b) = (root(&mut parent, i), root(&mut parent, j));
                    if a != b {
                        parent[a.max(b)] = a.min(b);
                    }
                }
                None => {
                    first.insert(key, i);
                }
            }
        }
    }
    let mut out: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in 0..keys.len() {
        let r = root(&mut parent, i);
        out.entry(r).or_default().push(i);
    }
    out.into_values().collect()
}

// ---------------------------------------------------------------------------------------
// Deletion guards

/// What the guards need to know besides the plan.
#[derive(Debug, Clone, Default)]
pub(crate) struct GuardInput {
    /// More disables and deletes than this are held; 0 = no count limit.
    pub threshold: usize,
    /// Hold when more than this share (percent) of the provisioned, active objects would be
    /// disabled or deleted; 0 = off.
    pub max_share_percent: u32,
    /// Provisioned, active objects (users and groups) before this cycle.
    pub active_provisioned: usize,
    /// Source reads that came back empty while the job has provisioned objects.
    pub suspicious_reads: Vec<String>,
    /// The state ids an admin approved (`approve-deletions`), if any.
    pub approved: Option<BTreeSet<String>>,
}

/// The guards' verdict.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Hold {
    /// Why the cycle holds (empty: nothing held).
    pub reasons: Vec<String>,
    /// Whether an approval covered this cycle's deprovisions (it is then used up).
    pub approval_used: bool,
}

/// Decide whether this cycle's disables and deletes go out. `deprovisions` are the state ids
/// the plan would disable or delete. An approval covers the cycle only when every one of
/// them was approved; any other deprovision holds again.
pub(crate) fn guard(deprovisions: &[HeldOp], input: &GuardInput) -> Hold {
    let n = deprovisions.len();
    if n == 0 {
        return Hold::default();
    }
    let mut reasons = Vec::new();
    for r in &input.suspicious_reads {
        reasons.push(format!(
            "{r}: refusing to disable or delete on an empty read (check the source permissions and scope)"
        ));
    }
    if input.threshold > 0 && n > input.threshold {
        reasons.push(format!(
            "{n} disables and deletes exceed the deletion threshold of {}",
            input.threshold
        ));
    }
    let share = u64::from(input.max_share_percent);
    if share > 0 && n >= 2 && (n as u64) * 100 > share * input.active_provisioned as u64 {
        reasons.push(format!(
            "{n} of {} provisioned objects would be disabled or deleted at once (more than {share} %)",
            input.active_provisioned
        ));
    }
    if reasons.is_empty() {
        return Hold::default();
    }
    if let Some(ids) = &input.approved
        && deprovisions.iter().all(|d| ids.contains(&d.source_id))
    {
        return Hold {
            reasons: Vec::new(),
            approval_used: true,
        };
    }
    Hold {
        reasons,
        approval_used: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn colliding_matching_values_are_sequenced_in_order() {
        let a = keys(&[("displayName", "Sales")]);
        let b = keys(&[("displayName", "Ops")]);
        let c = keys(&[("displayName", "sales")]);
        let s = sequences(&[Some(&a), Some(&b), Some(&c), None]);
        assert_eq!(s, vec![vec![0, 2], vec![1], vec![3]]);
    }

    fn held(ids: &[&str]) -> Vec<HeldOp> {
        ids.iter()
            .map(|i| HeldOp {
                source_id: i.to_string(),
                display_name: i.to_string(),
                target_id: format!("t{i}"),
                action: "disable".into(),
            })
            .collect()
    }

    #[test]
    fn a_sudden_drop_holds_a_small_job() {
        let input = GuardInput {
            threshold: 500,
            max_share_percent: 50,
            active_provisioned: 40,
            ..Default::default()
        };
        let ids: Vec<String> = (0..21).map(|i| i.to_string()).collect();
        let ops = held(&ids.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(guard(&ops, &input).reasons.len(), 1);
        assert!(
            guard(&ops[..20], &input).reasons.is_empty(),
            "half is allowed"
        );
        assert!(guard(&[], &input).reasons.is_empty());
    }

    #[test]
    fn an_approval_covers_only_the_set_it_names() {
        let mut input = GuardInput {
            suspicious_reads: vec!["the user list is empty".into()],
            approved: Some(["a".to_string(), "b".to_string()].into()),
            ..Default::default()
        };
        let h = guard(&held(&["a", "b"]), &input);
        assert!(h.reasons.is_empty() && h.approval_used);
        let h = guard(&held(&["a"]), &input);
        assert!(
            h.reasons.is_empty() && h.approval_used,
            "a subset is covered"
        );
        let h = guard(&held(&["a", "c"]), &input);
        assert!(
            !h.reasons.is_empty() && !h.approval_used,
            "a new one holds again"
        );
        input.approved = None;
        assert_eq!(guard(&held(&["a"]), &input).reasons.len(), 1);
    }

    #[test]
    fn members_are_exact_and_never_dangling() {
        let g = MirroredGroup {
            users: ["u1".to_string(), "u2".to_string(), "u3".to_string()].into(),
            ..Default::default()
        };
        let users = |u: &str| match u {
            "u1" => Some("t1".to_string()),
            "u2" => Some("t2".to_string()),
            _ => None,
        };
        let none = |_: &str| None;
        let confirmed: BTreeSet<String> = ["t2".to_string(), "t9".to_string()].into();
        let p = plan_members(&g, false, &users, &none, &confirmed);
        assert_eq!(p.add, vec!["t1".to_string()]);
        assert_eq!(p.remove, vec!["t9".to_string()]);
        assert_eq!(p.left_out, vec!["u3".to_string()]);
    }
}
