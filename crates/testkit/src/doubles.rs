//! In-memory test doubles for the I/O seams (`Source`, `Target`), shared by every crate's
//! unit tests. They speak the core types, not HTTP: the HTTP emulators live beside them.

use scimsync_core::{
    Attrs, Change, ErrorCode, Source, SourceError, SourceSnapshot, SourceUser, Target, TargetError,
    TargetUser, UserQuery,
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// A source whose snapshot tests set directly.
#[derive(Default)]
pub struct MemorySource {
    snapshot: Mutex<SourceSnapshot>,
    fail_next: Mutex<Option<SourceError>>,
}

impl MemorySource {
    pub fn new(users: Vec<SourceUser>) -> Self {
        MemorySource {
            snapshot: Mutex::new(SourceSnapshot {
                users,
                ..Default::default()
            }),
            fail_next: Mutex::new(None),
        }
    }

    /// Change the snapshot the next read returns.
    pub fn edit(&self, f: impl FnOnce(&mut SourceSnapshot)) {
        f(&mut self.snapshot.lock().unwrap_or_else(|e| e.into_inner()));
    }

    pub fn fail_next_read(&self, e: SourceError) {
        *self.fail_next.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
    }
}

impl Source for MemorySource {
    async fn read_users(&self, _query: &UserQuery) -> Result<SourceSnapshot, SourceError> {
        if let Some(e) = self
            .fail_next
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            return Err(e);
        }
        Ok(self
            .snapshot
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone())
    }
}

/// One write the [`MemoryTarget`] received.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    Create(Attrs),
    Update(String, Vec<Change>),
    Delete(String),
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
        if g.hidden_finds > 0 {
            g.hidden_finds -= 1;
            return Ok(Vec::new());
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
        if let Some(Value::String(name)) = attrs.get("userName")
            && g.users
                .values()
                .any(|a| a.get("userName").is_some_and(|v| same("userName", v, name)))
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
        Ok(TargetUser {
            id,
            attrs: attrs.clone(),
        })
    }

    async fn update_user(&self, id: &str, changes: &[Change]) -> Result<(), TargetError> {
        let mut g = self.lock();
        Self::injected(&mut g)?;
        g.writes
            .push(Write::Update(id.to_string(), changes.to_vec()));
        let user = g.users.get_mut(id).ok_or_else(|| TargetError {
            status: Some(404),
            ..TargetError::new(ErrorCode::InvalidAnchor, format!("no user {id}"))
        })?;
        for c in changes {
            user.insert(c.path.clone(), c.value.clone());
        }
        Ok(())
    }

    async fn delete_user(&self, id: &str) -> Result<(), TargetError> {
        let mut g = self.lock();
        Self::injected(&mut g)?;
        g.writes.push(Write::Delete(id.to_string()));
        match g.users.remove(id) {
            Some(_) => Ok(()),
            None => Err(TargetError {
                status: Some(404),
                ..TargetError::new(ErrorCode::InvalidAnchor, format!("no user {id}"))
            }),
        }
    }
}
