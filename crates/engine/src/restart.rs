//! Restart: Entra's reset scopes (reference §2.5). The default clears the watermark, the
//! escrows and the quarantine and keeps the links, so the next cycle is a full one that
//! re-evaluates every object without creating duplicates; `Full` also forgets the links, so
//! every object is matched again.

use crate::cycle::{META_CYCLES, META_DELETIONS_APPROVED};
use crate::escrow::ESCROW;
use crate::read::{
    ASSIGNED, GROUP_MIRROR, META_FINGERPRINT, META_GROUPS_WATERMARK, META_USERS_WATERMARK,
};
use scimsync_core::{StateStore, StoreError};
use serde::Serialize;

/// Meta key the service keeps a job's quarantine under (JSON).
pub const META_QUARANTINE: &str = "quarantine";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ResetScope {
    /// Forget the watermarks: the next cycle reads everything and re-evaluates every object.
    Watermark,
    /// Stop retrying pending failures.
    Escrows,
    /// Lift the quarantine.
    Quarantine,
    /// Everything above, and forget the source↔target links (every object is matched again).
    Full,
}

impl ResetScope {
    /// Entra's default restart: watermark, escrows and quarantine; links kept.
    pub const DEFAULT: [ResetScope; 3] = [
        ResetScope::Watermark,
        ResetScope::Escrows,
        ResetScope::Quarantine,
    ];

    pub fn parse(s: &str) -> Option<ResetScope> {
        match s.trim().to_ascii_lowercase().as_str() {
            "watermark" => Some(ResetScope::Watermark),
            "escrows" => Some(ResetScope::Escrows),
            "quarantine" | "quarantinestate" => Some(ResetScope::Quarantine),
            "full" => Some(ResetScope::Full),
            _ => None,
        }
    }
}

/// What a restart cleared.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestartSummary {
    pub watermark_cleared: bool,
    pub escrows_cleared: usize,
    pub quarantine_lifted: bool,
    pub links_forgotten: u64,
}

pub fn restart<St: StateStore>(
    store: &St,
    job: &str,
    scopes: &[ResetScope],
) -> Result<RestartSummary, StoreError> {
    let full = scopes.contains(&ResetScope::Full);
    let mut out = RestartSummary::default();
    if full || scopes.contains(&ResetScope::Watermark) {
        for key in [
            META_USERS_WATERMARK,
            META_GROUPS_WATERMARK,
            META_FINGERPRINT,
            META_CYCLES,
        ] {
            store.remove_meta(job, key)?;
        }
        out.watermark_cleared = true;
    }
    if full || scopes.contains(&ResetScope::Escrows) {
        for (id, _) in store.list_records(job, ESCROW)? {
            store.remove_record(job, ESCROW, &id)?;
            out.escrows_cleared += 1;
        }
    }
    if full || scopes.contains(&ResetScope::Quarantine) {
        out.quarantine_lifted = store.get_meta(job, META_QUARANTINE)?.is_some();
        store.remove_meta(job, META_QUARANTINE)?;
        store.remove_meta(job, META_DELETIONS_APPROVED)?;
    }
    if full {
        out.links_forgotten = store.remove_objects(job)?;
        for (key, _) in store.scan_meta(job, "rec/")? {
            let keep = key.starts_with(&format!("rec/{ESCROW}/"));
            if !keep {
                store.remove_meta(job, &key)?;
            }
        }
        let _ = (ASSIGNED, GROUP_MIRROR);
    }
    store.flush()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use scimsync_core::StateStore;
    use scimsync_store::MemoryStore;

    #[test]
    fn default_restart_keeps_links_and_full_forgets_them() {
        let s = MemoryStore::new();
        s.put_meta("j", META_USERS_WATERMARK, "https://graph/delta?token=1")
            .unwrap();
        s.put_meta("j", META_CYCLES, "7").unwrap();
        s.put_meta("j", META_QUARANTINE, "{}").unwrap();
        s.put_record("j", ESCROW, "u1", "{}").unwrap();
        s.put_record("j", "members/g1", "t1", "").unwrap();
        let out = restart(&s, "j", &ResetScope::DEFAULT).unwrap();
        assert!(out.watermark_cleared && out.quarantine_lifted);
        assert_eq!(out.escrows_cleared, 1);
        assert!(s.get_meta("j", META_USERS_WATERMARK).unwrap().is_none());
        assert!(
            s.get_meta("j", META_CYCLES).unwrap().is_none(),
            "the next cycle is an initial one"
        );
        assert_eq!(
            s.list_records("j", "members/g1").unwrap().len(),
            1,
            "links and member sets kept"
        );

        let out = restart(&s, "j", &[ResetScope::Full]).unwrap();
        assert_eq!(out.links_forgotten, 0);
        assert!(s.list_records("j", "members/g1").unwrap().is_empty());
    }
}
