//! Read: what the source says this cycle, and which objects need a decision.
//!
//! A full read (initial cycle, a restart, changed mappings or scope, a rejected watermark)
//! decides every user; an incremental read decides only users that changed, whose assignment
//! changed, or whose escrow is due. Assignments have no delta query, so they are read each
//! cycle (⌈n/999⌉ sequential pages: the one read a quiet cycle pays in full) and compared with
//! the snapshot kept from the last one, through a digest first: of the list as read, which
//! when unchanged (and no group changed) spares expanding the groups at all, then of the
//! effective assignments.

use scimsync_core::{
    AppRoleAssignment, Assignments, GroupRead, MemberKind, SourceGroup, SourceUser, StateStore,
    StoreError, UserRead,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

use crate::jobstate::GROUP_MIRROR;

/// The Default Access role's id.
pub const DEFAULT_ACCESS_ROLE: &str = "00000000-0000-0000-0000-000000000000";

/// One source group as remembered between cycles (Graph's group delta only says what changed).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MirroredGroup {
    pub attrs: BTreeMap<String, serde_json::Value>,
    pub users: BTreeSet<String>,
    pub groups: BTreeSet<String>,
}

/// The groups as of this cycle, and which of them changed.
#[derive(Debug, Default)]
pub struct GroupView {
    pub groups: BTreeMap<String, MirroredGroup>,
    pub changed: BTreeSet<String>,
    pub deleted: BTreeSet<String>,
    pub watermark: Option<String>,
    pub note: Option<String>,
}

impl GroupView {
    pub fn load<S: StateStore>(
        store: &S,
        job: &str,
    ) -> Result<BTreeMap<String, MirroredGroup>, StoreError> {
        store
            .list_records(job, GROUP_MIRROR)?
            .into_iter()
            .map(|(id, v)| {
                serde_json::from_str(&v).map(|g| (id.clone(), g)).map_err(|e| {
                    StoreError::new(format!(
                        "state of job {job} is damaged: the group mirror record `{id}` cannot be read ({e})"
                    ))
                })
            })
            .collect()
    }

    /// Apply one source read to the mirror loaded from the store.
    pub fn apply(mut mirror: BTreeMap<String, MirroredGroup>, read: GroupRead) -> GroupView {
        match read {
            GroupRead::Full {
                groups,
                members,
                fallback_reason,
                watermark,
            } => {
                let fresh: BTreeMap<String, MirroredGroup> = groups
                    .into_iter()
                    .map(|g: SourceGroup| {
                        let mut m = MirroredGroup {
                            attrs: g.attrs,
                            ..Default::default()
                        };
                        for (id, kind) in members.get(&g.id).into_iter().flatten() {
                            match kind {
                                MemberKind::User => m.users.insert(id.clone()),
                                MemberKind::Group => m.groups.insert(id.clone()),
                            };
                        }
                        (g.id, m)
                    })
                    .collect();
                let deleted = mirror
                    .keys()
                    .filter(|id| !fresh.contains_key(*id))
                    .cloned()
                    .collect();
                let changed = fresh.keys().cloned().collect();
                GroupView {
                    groups: fresh,
                    changed,
                    deleted,
                    watermark,
                    note: fallback_reason,
                }
            }
            GroupRead::Changes {
                upserts,
                deleted,
                members_added,
                members_removed,
                watermark,
            } => {
                let mut changed = BTreeSet::new();
                for g in upserts {
                    let entry = mirror.entry(g.id.clone()).or_default();
                    entry.attrs = g.attrs;
                    changed.insert(g.id);
                }
                for (gid, members) in members_added {
                    let entry = mirror.entry(gid.clone()).or_default();
                    for (id, kind) in members {
                        match kind {
                            MemberKind::User => entry.users.insert(id),
                            MemberKind::Group => entry.groups.insert(id),
                        };
                    }
                    changed.insert(gid);
                }
                for (gid, members) in members_removed {
                    if let Some(entry) = mirror.get_mut(&gid) {
                        for (id, _) in members {
                            entry.users.remove(&id);
                            entry.groups.remove(&id);
                        }
                    }
                    changed.insert(gid);
                }
                let mut gone = BTreeSet::new();
                for id in deleted {
                    mirror.remove(&id);
                    changed.remove(&id);
                    gone.insert(id);
                }
                GroupView {
                    groups: mirror,
                    changed,
                    deleted: gone,
                    watermark: Some(watermark),
                    note: None,
                }
            }
        }
    }

    /// Persist the mirror: write changed groups, remove deleted ones.
    pub fn save<S: StateStore>(&self, store: &S, job: &str) -> Result<(), StoreError> {
        if !self.deleted.is_empty() {
            let gone: Vec<String> = self.deleted.iter().cloned().collect();
            store.remove_records(job, GROUP_MIRROR, &gone)?;
        }
        let mut put = Vec::with_capacity(self.changed.len());
        for id in &self.changed {
            if let Some(g) = self.groups.get(id) {
                let v = serde_json::to_string(g).map_err(|e| StoreError::new(e.to_string()))?;
                put.push((id.clone(), v));
            }
        }
        if put.is_empty() {
            return Ok(());
        }
        store.put_records(job, GROUP_MIRROR, &put)
    }
}

/// Effective assignment per user: direct, plus direct membership of an assigned group
/// (nested groups do not count, as in Entra). Each user's roles sorted, each once.
///
/// Takes the assignments by value: the direct users' map becomes the result (no copy, no
/// second sort by user id), since a quiet cycle of a large tenant builds this over every
/// assignment only to compare its digest.
pub fn effective_assignments(
    assignments: Assignments,
    groups: &BTreeMap<String, MirroredGroup>,
    exclude_default_access: bool,
) -> BTreeMap<String, Vec<AppRoleAssignment>> {
    let keep =
        |a: &AppRoleAssignment| !(exclude_default_access && *a.app_role_id == *DEFAULT_ACCESS_ROLE);
    let Assignments {
        users: mut by_user,
        groups: group_roles,
    } = assignments;
    for roles in by_user.values_mut() {
        roles.retain(keep);
    }
    for (group, mut roles) in group_roles {
        roles.retain(keep);
        if let Some(g) = groups.get(&group)
            && !roles.is_empty()
        {
            for user in &g.users {
                match by_user.get_mut(user.as_str()) {
                    Some(list) => list.extend(roles.iter().cloned()),
                    None => {
                        by_user.insert(user.clone(), roles.clone());
                    }
                }
            }
        }
    }
    by_user.retain(|_, roles| {
        roles.sort_unstable();
        roles.dedup();
        !roles.is_empty()
    });
    by_user
}

/// Groups in scope under "Sync only assigned": assigned groups (with a kept role).
pub fn assigned_groups(
    assignments: &Assignments,
    exclude_default_access: bool,
) -> BTreeSet<String> {
    assignments
        .groups
        .iter()
        .filter(|(_, roles)| {
            roles
                .iter()
                .any(|a| !(exclude_default_access && *a.app_role_id == *DEFAULT_ACCESS_ROLE))
        })
        .map(|(g, _)| g.clone())
        .collect()
}

/// Users whose effective assignment differs from the last cycle's snapshot.
pub fn assignment_changes(
    previous: &BTreeMap<String, String>,
    now: &BTreeMap<String, Vec<AppRoleAssignment>>,
) -> BTreeSet<String> {
    let mut changed = BTreeSet::new();
    for (id, roles) in now {
        if previous.get(id) != Some(&roles_key(roles)) {
            changed.insert(id.clone());
        }
    }
    for id in previous.keys() {
        if !now.contains_key(id) {
            changed.insert(id.clone());
        }
    }
    changed
}

pub fn roles_key(roles: &[AppRoleAssignment]) -> String {
    serde_json::to_string(roles).unwrap_or_default()
}

/// A digest of the effective assignments (user → roles). Graph cannot tell what changed in
/// the assignment list, so the list is read every cycle; when its digest equals the last
/// cycle's, no user's assignment changed and the per-user snapshot is not even loaded.
pub fn assignments_digest(now: &BTreeMap<String, Vec<AppRoleAssignment>>) -> String {
    // Fields hashed as they are, each ended by a byte no id contains (no JSON per user: a
    // quiet cycle of a 100,000-user tenant digests ~40,000 users).
    let mut h = Hashed::default();
    for (id, roles) in now {
        h.field(id, 0);
        for r in roles {
            for field in [&r.app_role_id, &r.principal_type, &r.principal_id] {
                h.field(field, 1);
            }
            h.end(2);
        }
        h.end(b'\n');
    }
    h.finish()
}

/// A digest of the assignment list as read (principal → roles), before groups are expanded.
/// When it and every assigned group's members are as the last cycle left them, the
/// effective assignments are too, and a quiet cycle need not expand them (see
/// `Engine::read`).
pub fn raw_assignments_digest(a: &Assignments, exclude_default_access: bool) -> String {
    let mut h = Hashed::default();
    h.end(u8::from(exclude_default_access));
    for (kind, principals) in [(b'u', &a.users), (b'g', &a.groups)] {
        h.end(kind);
        for (id, roles) in principals {
            h.field(id, 0);
            // The principal's type and id are the key: the role is all that varies. Sorted,
            // since Graph does not promise an order within a principal's assignments.
            if let [only] = roles.as_slice() {
                // The usual case: no list to sort (one allocation per principal saved).
                h.field(&only.app_role_id, 1);
            } else {
                let mut ids: Vec<&str> = roles.iter().map(|r| &*r.app_role_id).collect();
                ids.sort_unstable();
                for role in ids {
                    h.field(role, 1);
                }
            }
            h.end(b'\n');
        }
    }
    h.finish()
}

/// What the job state keeps under `ASSIGNMENTS_DIGEST`: the effective digest, then the raw
/// one. One value, so the two are written together, after the per-user snapshot; a value an
/// earlier version wrote has no raw part and never lets a cycle skip the expansion.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredDigests {
    pub effective: String,
    pub raw: Option<String>,
}

impl StoredDigests {
    pub fn parse(stored: &str) -> StoredDigests {
        match stored.split_once(' ') {
            Some((effective, raw)) => StoredDigests {
                effective: effective.to_string(),
                raw: Some(raw.to_string()),
            },
            None => StoredDigests {
                effective: stored.to_string(),
                raw: None,
            },
        }
    }

    pub fn join(effective: &str, raw: Option<&str>) -> String {
        match raw {
            Some(raw) => format!("{effective} {raw}"),
            None => effective.to_string(),
        }
    }

    /// The raw part: the list's digest tied to the groups watermark the job's copy of the
    /// groups stands at, so a copy saved without its digest (a commit cut short) never
    /// matches, and neither does a cycle without a group watermark.
    pub fn raw_part(raw: &str, groups_watermark: Option<&str>) -> Option<String> {
        let mut h = Hashed::default();
        h.field(groups_watermark?, 0);
        Some(format!("{raw}.{}", h.finish()))
    }
}

/// SHA-256 fed through a buffer: one update per ~64 KiB rather than one per id (a quiet
/// cycle of a large tenant hashes ~200,000 short fields).
#[derive(Default)]
struct Hashed {
    h: sha2::Sha256,
    buf: Vec<u8>,
}

impl Hashed {
    fn field(&mut self, s: &str, end: u8) {
        self.buf.extend_from_slice(s.as_bytes());
        self.end(end);
    }

    fn end(&mut self, b: u8) {
        self.buf.push(b);
        if self.buf.len() >= 1 << 16 {
            sha2::Digest::update(&mut self.h, &self.buf);
            self.buf.clear();
        }
    }

    fn finish(mut self) -> String {
        sha2::Digest::update(&mut self.h, &self.buf);
        sha2::Digest::finalize(self.h)
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// The users to decide this cycle.
pub struct UserWork {
    pub full: bool,
    pub users: Vec<SourceUser>,
    pub soft_deleted: BTreeSet<String>,
    /// Incremental reads name hard deletes; a full read leaves them to be inferred.
    pub hard_deleted: BTreeSet<String>,
    pub watermark: Option<String>,
    pub note: Option<String>,
}

impl From<UserRead> for UserWork {
    fn from(read: UserRead) -> Self {
        match read {
            UserRead::Full {
                users,
                soft_deleted,
                fallback_reason,
                watermark,
            } => UserWork {
                full: true,
                users,
                soft_deleted,
                hard_deleted: BTreeSet::new(),
                watermark,
                note: fallback_reason,
            },
            UserRead::Changes {
                upserts,
                soft_deleted,
                hard_deleted,
                watermark,
            } => {
                // A user may appear several times in a round; the last record wins.
                let mut last: BTreeMap<String, SourceUser> = BTreeMap::new();
                for u in upserts {
                    last.insert(u.id.clone(), u);
                }
                let soft: BTreeSet<String> = soft_deleted.into_iter().collect();
                let hard: BTreeSet<String> = hard_deleted.into_iter().collect();
                // A removal after an upsert in the same round wins, and the other way round;
                // Graph gives no order, so a present record beats a soft removal.
                let users: Vec<SourceUser> = last
                    .into_values()
                    .filter(|u| !hard.contains(&u.id))
                    .collect();
                let present: BTreeSet<&str> = users.iter().map(|u| u.id.as_str()).collect();
                let soft = soft
                    .into_iter()
                    .filter(|id| !present.contains(id.as_str()))
                    .collect();
                UserWork {
                    full: false,
                    users,
                    soft_deleted: soft,
                    hard_deleted: hard,
                    watermark: Some(watermark),
                    note: None,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(id: &str, kind: &str, principal: &str) -> AppRoleAssignment {
        AppRoleAssignment {
            app_role_id: id.into(),
            principal_type: kind.into(),
            principal_id: principal.into(),
        }
    }

    #[test]
    fn assigned_groups_bring_their_direct_user_members_only() {
        let mut a = Assignments::default();
        a.users.insert("u1".into(), vec![role("r1", "User", "u1")]);
        a.groups
            .insert("g1".into(), vec![role("r2", "Group", "g1")]);
        let mut groups = BTreeMap::new();
        groups.insert(
            "g1".to_string(),
            MirroredGroup {
                users: ["u2".to_string()].into(),
                groups: ["g2".to_string()].into(),
                ..Default::default()
            },
        );
        groups.insert(
            "g2".to_string(),
            MirroredGroup {
                users: ["u3".to_string()].into(),
                ..Default::default()
            },
        );
        let eff = effective_assignments(a, &groups, false);
        assert_eq!(
            eff.keys().cloned().collect::<Vec<_>>(),
            vec!["u1".to_string(), "u2".to_string()]
        );
    }

    #[test]
    fn a_user_reached_directly_and_through_two_groups_has_each_role_once_in_order() {
        let mut a = Assignments::default();
        a.users.insert("u1".into(), vec![role("r2", "User", "u1")]);
        a.groups
            .insert("g1".into(), vec![role("r2", "Group", "g1")]);
        a.groups.insert(
            "g2".into(),
            vec![
                role("r1", "Group", "g2"),
                role(DEFAULT_ACCESS_ROLE, "Group", "g2"),
            ],
        );
        let member = |u: &[&str]| MirroredGroup {
            users: u.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        let groups: BTreeMap<String, MirroredGroup> = [
            ("g1".to_string(), member(&["u1", "u2"])),
            ("g2".to_string(), member(&["u1", "u2"])),
        ]
        .into();
        let eff = effective_assignments(a.clone(), &groups, true);
        assert_eq!(
            eff["u1"],
            vec![
                role("r1", "Group", "g2"),
                role("r2", "Group", "g1"),
                role("r2", "User", "u1")
            ]
        );
        assert_eq!(
            eff["u2"],
            vec![role("r1", "Group", "g2"), role("r2", "Group", "g1")]
        );
        assert_eq!(eff.len(), 2);
        // The same input twice gives the same map, so the same digest.
        assert_eq!(
            assignments_digest(&eff),
            assignments_digest(&effective_assignments(a, &groups, true))
        );
    }

    #[test]
    fn default_access_can_be_excluded() {
        let mut a = Assignments::default();
        a.users
            .insert("u1".into(), vec![role(DEFAULT_ACCESS_ROLE, "User", "u1")]);
        a.users.insert(
            "u2".into(),
            vec![
                role(DEFAULT_ACCESS_ROLE, "User", "u2"),
                role("r", "User", "u2"),
            ],
        );
        let eff = effective_assignments(a.clone(), &BTreeMap::new(), true);
        assert_eq!(
            eff.keys().cloned().collect::<Vec<_>>(),
            vec!["u2".to_string()]
        );
        assert_eq!(eff["u2"].len(), 1);
        assert_eq!(effective_assignments(a, &BTreeMap::new(), false).len(), 2);
    }

    #[test]
    fn the_assignment_digest_changes_with_any_user_or_role() {
        let base: BTreeMap<String, Vec<AppRoleAssignment>> = [
            ("u1".to_string(), vec![role("r", "User", "u1")]),
            ("u2".to_string(), vec![role("r", "Group", "g1")]),
        ]
        .into();
        let d = assignments_digest(&base);
        assert_eq!(d, assignments_digest(&base.clone()));
        let mut other_role = base.clone();
        other_role.insert("u2".into(), vec![role("r2", "Group", "g1")]);
        let mut fewer = base.clone();
        fewer.remove("u1");
        let mut renamed = BTreeMap::new();
        renamed.insert("u1u2".to_string(), vec![role("r", "User", "u1")]);
        for changed in [other_role, fewer, renamed, BTreeMap::new()] {
            assert_ne!(d, assignments_digest(&changed));
        }
    }

    #[test]
    fn the_assignment_digest_is_stable_across_versions_and_buffer_boundaries() {
        // Digests stored by an earlier version must still compare equal after an upgrade
        // (else every job re-reads its assignment snapshot once): pinned bytes.
        let one: BTreeMap<String, Vec<AppRoleAssignment>> =
            [("u1".to_string(), vec![role("r", "User", "u1")])].into();
        assert_eq!(assignments_digest(&one), "7e680074b8dc7b2536eb64dd6ea8ae71");
        // Past the buffer's 64 KiB the digest is still the hash of the whole stream.
        use sha2::Digest;
        let many: BTreeMap<String, Vec<AppRoleAssignment>> = (0..5000)
            .map(|i| (format!("user-{i:05}"), vec![role("r", "User", "g")]))
            .collect();
        let mut stream = Vec::new();
        for id in many.keys() {
            stream.extend_from_slice(format!("{id}\0r\x01User\x01g\x01\x02\n").as_bytes());
        }
        assert!(stream.len() > 1 << 16);
        let whole: String = sha2::Sha256::digest(&stream)
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(assignments_digest(&many), whole);
    }

    #[test]
    fn the_raw_assignment_digest_sees_roles_principals_and_the_default_access_setting() {
        let mut base = Assignments::default();
        base.users.insert(
            "u1".into(),
            vec![role("r2", "User", "u1"), role("r1", "User", "u1")],
        );
        base.groups
            .insert("g1".into(), vec![role("r1", "Group", "g1")]);
        let d = raw_assignments_digest(&base, false);
        // Graph's order within a principal does not matter.
        let mut reordered = base.clone();
        reordered.users.get_mut("u1").unwrap().reverse();
        assert_eq!(d, raw_assignments_digest(&reordered, false));
        let mut other_role = base.clone();
        other_role
            .groups
            .insert("g1".into(), vec![role("r3", "Group", "g1")]);
        let mut user_not_group = base.clone();
        let g = user_not_group.groups.remove("g1").unwrap();
        user_not_group.users.insert("g1".into(), g);
        let mut one_more = base.clone();
        one_more
            .users
            .insert("u2".into(), vec![role("r1", "User", "u2")]);
        let mut fewer = base.clone();
        fewer.users.clear();
        for changed in [other_role, user_not_group, one_more, fewer] {
            assert_ne!(d, raw_assignments_digest(&changed, false));
        }
        assert_ne!(d, raw_assignments_digest(&base, true));
    }

    #[test]
    fn stored_digests_tie_the_raw_digest_to_the_groups_watermark() {
        let a = StoredDigests::raw_part("r", Some("w1")).unwrap();
        assert_ne!(Some(a.clone()), StoredDigests::raw_part("r", Some("w2")));
        assert_ne!(Some(a.clone()), StoredDigests::raw_part("r2", Some("w1")));
        assert_eq!(StoredDigests::raw_part("r", None), None);
        let stored = StoredDigests::join("e", Some(&a));
        assert_eq!(
            StoredDigests::parse(&stored),
            StoredDigests {
                effective: "e".into(),
                raw: Some(a)
            }
        );
        // What an earlier version stored: the effective digest alone.
        assert_eq!(StoredDigests::parse("e").raw, None);
        assert_eq!(StoredDigests::join("e", None), "e");
    }

    #[test]
    fn assignment_changes_see_added_removed_and_role_changes() {
        let prev: BTreeMap<String, String> = [
            ("u1".to_string(), roles_key(&[role("r", "User", "u1")])),
            ("u2".to_string(), roles_key(&[role("r", "User", "u2")])),
        ]
        .into();
        let now: BTreeMap<String, Vec<AppRoleAssignment>> = [
            ("u1".to_string(), vec![role("r", "User", "u1")]),
            ("u3".to_string(), vec![role("r", "User", "u3")]),
        ]
        .into();
        assert_eq!(
            assignment_changes(&prev, &now),
            ["u2".to_string(), "u3".to_string()].into()
        );
    }
}
