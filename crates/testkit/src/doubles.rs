//! In-memory test doubles for the I/O seams (`Source`, `Target`), shared by every crate's
//! unit tests. They speak the core types, not HTTP: the HTTP emulators live beside them.

use scimsync_core::{
    AppRoleAssignment, Assignments, Attrs, Change, ErrorCode, GroupQuery, GroupRead, MemberKind,
    Source, SourceError, SourceGroup, SourceSnapshot, SourceUser, Target, TargetError, TargetGroup,
    TargetUser, UserQuery, UserRead,
};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

/// A source whose snapshot tests set directly. It tracks changes like Graph's delta query:
/// every edit bumps the version of the users it changed, and a watermark is the version the
/// last read saw, so incremental reads return only what changed since.
#[derive(Default)]
pub struct MemorySource {
    inner: Mutex<SourceInner>,
}

#[derive(Default)]
struct SourceInner {
    snapshot: SourceSnapshot,
    versions: BTreeMap<String, u64>,
    /// (id, soft, version)
    removals: Vec<(String, bool, u64)>,
    seq: u64,
    groups: Vec<SourceGroup>,
    members: BTreeMap<String, Vec<(String, MemberKind)>>,
    assigned_groups: BTreeSet<String>,
    fail_next: Option<SourceError>,
    reject_next_watermark: bool,
    reads: Vec<String>,
    /// The `keep` of the last full read.
    last_keep: Option<BTreeSet<String>>,
    /// With group deltas on: the groups each watermark saw (a watermark is `g{index}`).
    group_history: Option<Vec<GroupsSeen>>,
}

type GroupsSeen = (
    Vec<SourceGroup>,
    BTreeMap<String, Vec<(String, MemberKind)>>,
);

impl MemorySource {
    pub fn new(users: Vec<SourceUser>) -> Self {
        let s = MemorySource::default();
        s.edit(|snap| snap.users = users);
        s
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SourceInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Change the tenant; the users this changes get a new version.
    pub fn edit(&self, f: impl FnOnce(&mut SourceSnapshot)) {
        let mut g = self.lock();
        let before: BTreeMap<String, SourceUser> = g
            .snapshot
            .users
            .iter()
            .map(|u| (u.id.clone(), u.clone()))
            .collect();
        f(&mut g.snapshot);
        let after: BTreeMap<String, SourceUser> = g
            .snapshot
            .users
            .iter()
            .map(|u| (u.id.clone(), u.clone()))
            .collect();
        for (id, u) in &after {
            if before.get(id) != Some(u) {
                g.seq += 1;
                let v = g.seq;
                g.versions.insert(id.clone(), v);
            }
        }
        for id in before.keys().filter(|id| !after.contains_key(*id)) {
            g.seq += 1;
            let (v, soft) = (g.seq, g.snapshot.soft_deleted.contains(id));
            g.removals.push((id.clone(), soft, v));
        }
        // A soft-deleted user that is later purged is a hard delete.
        let purged: Vec<String> = g
            .removals
            .iter()
            .filter(|(id, soft, _)| {
                *soft && !g.snapshot.soft_deleted.contains(id) && !after.contains_key(id)
            })
            .map(|(id, _, _)| id.clone())
            .collect();
        for id in purged {
            g.seq += 1;
            let v = g.seq;
            g.removals.retain(|(r, _, _)| *r != id);
            g.removals.push((id, false, v));
        }
    }

    /// Groups with their direct members, and which of them are assigned to the app.
    pub fn set_groups(
        &self,
        groups: Vec<SourceGroup>,
        members: BTreeMap<String, Vec<(String, MemberKind)>>,
        assigned: BTreeSet<String>,
    ) {
        let mut g = self.lock();
        g.groups = groups;
        g.members = members;
        g.assigned_groups = assigned;
    }

    /// Group reads with a watermark answer only what changed since it, as Graph's group
    /// delta (`members@delta`) does; without this every group read is full.
    pub fn enable_group_deltas(&self) {
        let mut g = self.lock();
        if g.group_history.is_none() {
            g.group_history = Some(Vec::new());
        }
    }

    pub fn fail_next_read(&self, e: SourceError) {
        self.lock().fail_next = Some(e);
    }

    /// The next incremental read finds its watermark expired, as Graph's delta tokens do.
    pub fn reject_next_watermark(&self) {
        self.lock().reject_next_watermark = true;
    }

    /// What was read, in order: `full`, `changes`, `by-id:N`, `assignments`, `groups`.
    pub fn reads(&self) -> Vec<String> {
        self.lock().reads.clone()
    }

    /// The users the last full read was asked to keep whole (`None`: all of them).
    pub fn last_keep(&self) -> Option<BTreeSet<String>> {
        self.lock().last_keep.clone()
    }

    fn failed(g: &mut SourceInner) -> Result<(), SourceError> {
        match g.fail_next.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Source for MemorySource {
    async fn read_users(&self, _query: &UserQuery) -> Result<SourceSnapshot, SourceError> {
        let mut g = self.lock();
        Self::failed(&mut g)?;
        g.reads.push("full".into());
        Ok(g.snapshot.clone())
    }

    async fn read_user_changes(
        &self,
        query: &UserQuery,
        watermark: Option<&str>,
    ) -> Result<UserRead, SourceError> {
        let mut g = self.lock();
        Self::failed(&mut g)?;
        let since = match watermark.map(str::parse::<u64>) {
            Some(Ok(v)) if !std::mem::take(&mut g.reject_next_watermark) => Some(v),
            _ => None,
        };
        let mark = g.seq.to_string();
        match since {
            None => {
                g.reads.push("full".into());
                g.last_keep = query.keep.as_deref().cloned();
                let reason = watermark.map(|_| "the delta token expired".to_string());
                Ok(UserRead::Full {
                    // As Graph does: users the engine will not provision come back slim.
                    users: g
                        .snapshot
                        .users
                        .iter()
                        .map(|u| match query.keeps(&u.id) {
                            true => u.clone(),
                            false => u.clone().slim(),
                        })
                        .collect(),
                    soft_deleted: g.snapshot.soft_deleted.clone(),
                    fallback_reason: reason,
                    watermark: Some(mark),
                })
            }
            Some(v) => {
                g.reads.push("changes".into());
                let upserts = g
                    .snapshot
                    .users
                    .iter()
                    .filter(|u| g.versions.get(&u.id).is_some_and(|x| *x > v))
                    .cloned()
                    .collect();
                let removed = |soft: bool| -> Vec<String> {
                    g.removals
                        .iter()
                        .filter(|(_, s, x)| *s == soft && *x > v)
                        .map(|(id, _, _)| id.clone())
                        .collect()
                };
                Ok(UserRead::Changes {
                    upserts,
                    soft_deleted: removed(true),
                    hard_deleted: removed(false),
                    watermark: mark,
                })
            }
        }
    }

    async fn read_users_by_id(
        &self,
        ids: &[String],
        _query: &UserQuery,
    ) -> Result<Vec<SourceUser>, SourceError> {
        let mut g = self.lock();
        Self::failed(&mut g)?;
        g.reads.push(format!("by-id:{}", ids.len()));
        Ok(g.snapshot
            .users
            .iter()
            .filter(|u| ids.contains(&u.id))
            .cloned()
            .collect())
    }

    async fn read_assignments(&self, _sp: &str) -> Result<Assignments, SourceError> {
        let mut g = self.lock();
        Self::failed(&mut g)?;
        g.reads.push("assignments".into());
        let role = |kind: &str, id: &str| AppRoleAssignment {
            app_role_id: "00000000-0000-0000-0000-000000000000".into(),
            principal_type: kind.into(),
            principal_id: id.into(),
        };
        let users = g
            .snapshot
            .assigned
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|id| {
                let r = vec![role("User", &id)];
                (id, r)
            });
        let groups = g
            .assigned_groups
            .iter()
            .map(|id| (id.clone(), vec![role("Group", id)]));
        Ok(Assignments {
            users: users.collect(),
            groups: groups.collect(),
        })
    }

    async fn read_groups(
        &self,
        _query: &GroupQuery,
        watermark: Option<&str>,
    ) -> Result<GroupRead, SourceError> {
        let mut g = self.lock();
        Self::failed(&mut g)?;
        let now: GroupsSeen = (g.groups.clone(), g.members.clone());
        let Some(history) = g.group_history.as_mut() else {
            g.reads.push("groups".into());
            return Ok(GroupRead::Full {
                groups: now.0,
                members: now.1,
                fallback_reason: None,
                watermark: None,
            });
        };
        let seen = watermark
            .and_then(|w| w.strip_prefix('g'))
            .and_then(|i| i.parse::<usize>().ok())
            .and_then(|i| history.get(i))
            .cloned();
        history.push(now.clone());
        let next = format!("g{}", history.len() - 1);
        let Some((before, before_members)) = seen else {
            g.reads.push("groups".into());
            return Ok(GroupRead::Full {
                groups: now.0,
                members: now.1,
                fallback_reason: None,
                watermark: Some(next),
            });
        };
        g.reads.push("group-changes".into());
        let (groups, members) = now;
        let before: BTreeMap<&str, &SourceGroup> =
            before.iter().map(|x| (x.id.as_str(), x)).collect();
        let upserts = groups
            .iter()
            .filter(|x| before.get(x.id.as_str()) != Some(x))
            .cloned()
            .collect();
        let deleted = before
            .keys()
            .filter(|id| !groups.iter().any(|x| x.id == **id))
            .map(|id| id.to_string())
            .collect();
        let (mut members_added, mut members_removed) = (BTreeMap::new(), BTreeMap::new());
        let empty = Vec::new();
        for x in &groups {
            let now_m = members.get(&x.id).unwrap_or(&empty);
            let was_m = before_members.get(&x.id).unwrap_or(&empty);
            let added: Vec<_> = now_m
                .iter()
                .filter(|m| !was_m.contains(m))
                .cloned()
                .collect();
            let removed: Vec<_> = was_m
                .iter()
                .filter(|m| !now_m.contains(m))
                .cloned()
                .collect();
            if !added.is_empty() {
                members_added.insert(x.id.clone(), added);
            }
            if !removed.is_empty() {
                members_removed.insert(x.id.clone(), removed);
            }
        }
        Ok(GroupRead::Changes {
            upserts,
            deleted,
            members_added,
            members_removed,
            watermark: next,
        })
    }
}

/// One write the [`MemoryTarget`] received.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    Create(Attrs),
    Update(String, Vec<Change>),
    Delete(String),
    CreateGroup(Attrs),
    UpdateGroup(String, Vec<Change>),
    AddMembers(String, Vec<String>),
    RemoveMembers(String, Vec<String>),
    DeleteGroup(String),
}

/// A target that keeps users as flat attributes. `userName` is unique ignoring case, as SCIM
/// servers enforce; a duplicate create answers 409.
#[derive(Default)]
pub struct MemoryTarget {
    inner: Mutex<TargetInner>,
}

#[derive(Default)]
struct TargetInner {
    users: BTreeMap<String, Attrs>,
    next_id: u64,
    writes: Vec<Write>,
    reads: usize,
    fail_next: Vec<TargetError>,
    hidden_finds: usize,
    groups: BTreeMap<String, (Attrs, BTreeSet<String>)>,
    /// Lower-cased userName → id, so matching stays fast with thousands of users.
    by_user_name: std::collections::HashMap<String, String>,
    name_of: std::collections::HashMap<String, String>,
    /// Fail member PATCHes after this many more succeed (a crash half way).
    member_patches_before_failure: Option<usize>,
    member_patch_error: Option<TargetError>,
    chaos: Option<(Chaos, u64)>,
    /// Refuse a second group with a taken displayName (409 uniqueness), as some apps do.
    unique_group_names: bool,
    /// Refuse a membership PATCH of more members than this with 413, as size-limited apps do.
    max_members_per_patch: Option<usize>,
}

/// Faults drawn per request from a seeded sequence, so a run is repeatable: a share of
/// requests answered 500 before the target acts, a share of writes whose answer is lost
/// after the target acted (a reset), and a share of creates acknowledged with a 201 whose
/// body cannot be read (the object exists, its id never reached the client).
#[derive(Debug, Clone, Copy, Default)]
pub struct Chaos {
    pub seed: u64,
    pub fail_before_percent: u32,
    pub reset_after_percent: u32,
    pub garbled_create_percent: u32,
}

impl TargetInner {
    fn roll(&mut self, percent: impl Fn(&Chaos) -> u32) -> bool {
        let Some((c, state)) = &mut self.chaos else {
            return false;
        };
        // xorshift64*: enough to spread faults, and the same every run.
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        (*state % 100) < u64::from(percent(c))
    }

    fn chaos_before(&mut self) -> Result<(), TargetError> {
        if self.roll(|c| c.fail_before_percent) {
            return Err(TargetError {
                status: Some(500),
                ..TargetError::new(ErrorCode::InternalServerError, "injected 500")
            });
        }
        Ok(())
    }

    fn chaos_after(&mut self, create: bool) -> Result<(), TargetError> {
        if create && self.roll(|c| c.garbled_create_percent) {
            return Err(TargetError {
                status: Some(201),
                ..TargetError::new(
                    ErrorCode::SystemForCrossDomainIdentityManagementServiceIncompatible,
                    "the created resource answered is not JSON (injected)",
                )
            });
        }
        if self.roll(|c| c.reset_after_percent) {
            return Err(TargetError::new(
                ErrorCode::WebExceptionProtocolError,
                "connection reset after the target acted (injected)",
            ));
        }
        Ok(())
    }
}

impl TargetInner {
    /// Keep the userName index in step with user `id` after a change.
    fn reindex(&mut self, id: &str) {
        if let Some(old) = self.name_of.remove(id) {
            self.by_user_name.remove(&old);
        }
        if let Some(Value::String(name)) = self.users.get(id).and_then(|a| a.get("userName")) {
            self.by_user_name
                .insert(name.to_lowercase(), id.to_string());
            self.name_of.insert(id.to_string(), name.to_lowercase());
        }
    }
}

impl MemoryTarget {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TargetInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Put a user in the target directly (as if created by hand in the app).
    pub fn seed(&self, attrs: Attrs) -> String {
        let mut g = self.lock();
        g.next_id += 1;
        let id = format!("t{}", g.next_id);
        g.users.insert(id.clone(), attrs);
        g.reindex(&id);
        id
    }

    pub fn users(&self) -> BTreeMap<String, Attrs> {
        self.lock().users.clone()
    }

    pub fn writes(&self) -> Vec<Write> {
        self.lock().writes.clone()
    }

    pub fn reads(&self) -> usize {
        self.lock().reads
    }

    pub fn clear_log(&self) {
        let mut g = self.lock();
        g.writes.clear();
        g.reads = 0;
    }

    /// The next requests (of any kind) fail with these errors, in order.
    pub fn fail_next(&self, errors: Vec<TargetError>) {
        self.lock().fail_next = errors;
    }

    /// Change a group's members behind the engine's back, as an admin would in the app.
    pub fn edit_group_members(&self, group_id: &str, f: impl FnOnce(&mut BTreeSet<String>)) {
        if let Some((_, members)) = self.lock().groups.get_mut(group_id) {
            f(members);
        }
    }

    /// Groups with their member ids.
    pub fn groups(&self) -> BTreeMap<String, (Attrs, BTreeSet<String>)> {
        self.lock().groups.clone()
    }

    /// After `n` more successful member PATCHes, the next one fails with a 500 (and the
    /// failure stays until [`MemoryTarget::heal`]).
    pub fn fail_member_patches_after(&self, n: usize) {
        self.lock().member_patches_before_failure = Some(n);
    }

    /// Every member PATCH fails with `e` until [`MemoryTarget::heal`].
    pub fn refuse_member_patches(&self, e: TargetError) {
        let mut g = self.lock();
        g.member_patches_before_failure = Some(0);
        g.member_patch_error = Some(e);
    }

    pub fn heal(&self) {
        let mut g = self.lock();
        g.member_patches_before_failure = None;
        g.member_patch_error = None;
    }

    /// Answer 413 to a membership PATCH of more than `n` members.
    pub fn limit_members_per_patch(&self, n: usize) {
        self.lock().max_members_per_patch = Some(n);
    }

    fn member_patch_size_allowed(g: &TargetInner, n: usize) -> Result<(), TargetError> {
        match g.max_members_per_patch {
            Some(max) if n > max => Err(TargetError {
                status: Some(413),
                ..TargetError::new(
                    ErrorCode::SchemaViolation,
                    format!("too many operations: {n} (at most {max})"),
                )
            }),
            _ => Ok(()),
        }
    }

    fn member_patch_allowed(g: &mut TargetInner) -> Result<(), TargetError> {
        match &mut g.member_patches_before_failure {
            Some(0) => Err(g.member_patch_error.clone().unwrap_or(TargetError {
                status: Some(500),
                ..TargetError::new(ErrorCode::InternalServerError, "injected")
            })),
            Some(n) => {
                *n -= 1;
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Turn seeded faults on (or off with `None`).
    pub fn set_chaos(&self, chaos: Option<Chaos>) {
        self.lock().chaos = chaos.map(|c| (c, c.seed.max(1)));
    }

    /// Refuse a group whose displayName another group holds (409 uniqueness).
    pub fn refuse_duplicate_group_names(&self) {
        self.lock().unique_group_names = true;
    }

    /// The next `n` matching queries find nothing, as a lagging replica would answer.
    pub fn hide_from_next_finds(&self, n: usize) {
        self.lock().hidden_finds = n;
    }

    fn injected(g: &mut TargetInner) -> Result<(), TargetError> {
        if g.fail_next.is_empty() {
            Ok(())
        } else {
            Err(g.fail_next.remove(0))
        }
    }
}

fn same(path: &str, a: &Value, b: &str) -> bool {
    match a {
        Value::String(s) if path == "userName" => s.eq_ignore_ascii_case(b),
        Value::String(s) => s == b,
        other => b == other.to_string().as_str(),
    }
}

impl Target for MemoryTarget {
    async fn find_users(&self, path: &str, value: &str) -> Result<Vec<TargetUser>, TargetError> {
        let mut g = self.lock();
        g.reads += 1;
        Self::injected(&mut g)?;
        g.chaos_before()?;
        if g.hidden_finds > 0 {
            g.hidden_finds -= 1;
            return Ok(Vec::new());
        }
        if path == "userName" {
            let id = g.by_user_name.get(&value.to_lowercase()).cloned();
            return Ok(id
                .and_then(|id| {
                    g.users.get(&id).map(|a| TargetUser {
                        id,
                        attrs: a.clone(),
                    })
                })
                .into_iter()
                .collect());
        }
        Ok(g.users
            .iter()
            .filter(|(_, a)| a.get(path).is_some_and(|v| same(path, v, value)))
            .map(|(id, a)| TargetUser {
                id: id.clone(),
                attrs: a.clone(),
            })
            .collect())
    }

    async fn create_user(&self, attrs: &Attrs) -> Result<TargetUser, TargetError> {
        let mut g = self.lock();
        Self::injected(&mut g)?;
        g.chaos_before()?;
        if let Some(Value::String(name)) = attrs.get("userName")
            && g.by_user_name.contains_key(&name.to_lowercase())
        {
            return Err(TargetError {
                code: ErrorCode::EntryConflict,
                status: Some(409),
                scim_type: Some("uniqueness".into()),
                detail: format!("userName {name} is already taken"),
                retry_after: None,
            });
        }
        g.writes.push(Write::Create(attrs.clone()));
        g.next_id += 1;
        let id = format!("t{}", g.next_id);
        g.users.insert(id.clone(), attrs.clone());
        g.reindex(&id);
        g.chaos_after(true)?;
        Ok(TargetUser {
            id,
            attrs: attrs.clone(),
        })
    }

    async fn update_user(&self, id: &str, changes: &[Change]) -> Result<(), TargetError> {
        let mut g = self.lock();
        Self::injected(&mut g)?;
        g.chaos_before()?;
        g.writes
            .push(Write::Update(id.to_string(), changes.to_vec()));
        let user = g.users.get_mut(id).ok_or_else(|| TargetError {
            status: Some(404),
            ..TargetError::new(ErrorCode::InvalidAnchor, format!("no user {id}"))
        })?;
        for c in changes {
            match c.op {
                scimsync_core::ChangeOp::Remove => user.remove(&c.path),
                _ => user.insert(c.path.clone(), c.value.clone()),
            };
        }
        g.reindex(id);
        g.chaos_after(false)
    }

    async fn delete_user(&self, id: &str) -> Result<(), TargetError> {
        let mut g = self.lock();
        Self::injected(&mut g)?;
        g.chaos_before()?;
        g.writes.push(Write::Delete(id.to_string()));
        match g.users.remove(id) {
            Some(_) => {
                g.reindex(id);
                g.chaos_after(false)
            }
            None => Err(TargetError {
                status: Some(404),
                ..TargetError::new(ErrorCode::InvalidAnchor, format!("no user {id}"))
            }),
        }
    }

    async fn find_groups(&self, path: &str, value: &str) -> Result<Vec<TargetGroup>, TargetError> {
        let mut g = self.lock();
        g.reads += 1;
        Self::injected(&mut g)?;
        g.chaos_before()?;
        Ok(g.groups
            .iter()
            .filter(|(_, (a, _))| a.get(path).is_some_and(|v| same(path, v, value)))
            .map(|(id, (a, _))| TargetGroup {
                id: id.clone(),
                attrs: a.clone(),
            })
            .collect())
    }

    async fn create_group(&self, attrs: &Attrs) -> Result<TargetGroup, TargetError> {
        let mut g = self.lock();
        Self::injected(&mut g)?;
        g.chaos_before()?;
        if g.unique_group_names
            && let Some(name) = attrs.get("displayName")
            && g.groups
                .values()
                .any(|(a, _)| a.get("displayName") == Some(name))
        {
            return Err(TargetError {
                code: ErrorCode::EntryConflict,
                status: Some(409),
                scim_type: Some("uniqueness".into()),
                detail: format!("displayName {name} is already taken"),
                retry_after: None,
            });
        }
        g.writes.push(Write::CreateGroup(attrs.clone()));
        g.next_id += 1;
        let id = format!("g{}", g.next_id);
        g.groups
            .insert(id.clone(), (attrs.clone(), BTreeSet::new()));
        g.chaos_after(true)?;
        Ok(TargetGroup {
            id,
            attrs: attrs.clone(),
        })
    }

    async fn update_group(&self, id: &str, changes: &[Change]) -> Result<(), TargetError> {
        let mut g = self.lock();
        Self::injected(&mut g)?;
        g.writes
            .push(Write::UpdateGroup(id.to_string(), changes.to_vec()));
        let (attrs, _) = g.groups.get_mut(id).ok_or_else(|| TargetError {
            status: Some(404),
            ..TargetError::new(ErrorCode::InvalidAnchor, format!("no group {id}"))
        })?;
        for c in changes {
            attrs.insert(c.path.clone(), c.value.clone());
        }
        Ok(())
    }

    async fn add_members(&self, group_id: &str, member_ids: &[String]) -> Result<(), TargetError> {
        let mut g = self.lock();
        Self::injected(&mut g)?;
        g.chaos_before()?;
        Self::member_patch_allowed(&mut g)?;
        Self::member_patch_size_allowed(&g, member_ids.len())?;
        g.writes
            .push(Write::AddMembers(group_id.to_string(), member_ids.to_vec()));
        let (_, members) = g.groups.get_mut(group_id).ok_or_else(|| TargetError {
            status: Some(404),
            ..TargetError::new(ErrorCode::InvalidAnchor, format!("no group {group_id}"))
        })?;
        members.extend(member_ids.iter().cloned());
        g.chaos_after(false)
    }

    async fn remove_members(
        &self,
        group_id: &str,
        member_ids: &[String],
    ) -> Result<(), TargetError> {
        let mut g = self.lock();
        Self::injected(&mut g)?;
        g.chaos_before()?;
        Self::member_patch_allowed(&mut g)?;
        Self::member_patch_size_allowed(&g, member_ids.len())?;
        g.writes.push(Write::RemoveMembers(
            group_id.to_string(),
            member_ids.to_vec(),
        ));
        if let Some((_, members)) = g.groups.get_mut(group_id) {
            for m in member_ids {
                members.remove(m);
            }
        }
        g.chaos_after(false)
    }

    async fn group_members(&self, group_id: &str) -> Result<Vec<String>, TargetError> {
        let g = self.lock();
        Ok(g.groups
            .get(group_id)
            .map(|(_, m)| m.iter().cloned().collect())
            .unwrap_or_default())
    }

    async fn delete_group(&self, id: &str) -> Result<(), TargetError> {
        let mut g = self.lock();
        Self::injected(&mut g)?;
        g.writes.push(Write::DeleteGroup(id.to_string()));
        match g.groups.remove(id) {
            Some(_) => Ok(()),
            None => Err(TargetError {
                status: Some(404),
                ..TargetError::new(ErrorCode::InvalidAnchor, format!("no group {id}"))
            }),
        }
    }
}
