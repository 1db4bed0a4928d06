//! Restart: Entra's reset scopes (reference §2.5). The default clears the watermark, makes
//! every escrowed object due at the next cycle and lifts the quarantine, keeping the links, so
//! the next cycle is a full one that re-evaluates every object without creating duplicates;
//! `Full` also forgets the links, so every object is matched again.

use crate::jobstate::{ESCROW, JobState};
use scimsync_core::{StateStore, StoreError};
use serde::Serialize;

/// Meta key the service keeps a job's quarantine under (JSON); see [`JobState::quarantine`].
pub const META_QUARANTINE: &str = "quarantine";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ResetScope {
    /// Forget the watermarks: the next cycle reads everything and re-evaluates every object.
    Watermark,
    /// Retry every escrowed object at the next cycle instead of on its escrow schedule.
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

/// What a restart did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestartSummary {
    pub watermark_cleared: bool,
    /// Escrowed objects now due: the next cycle retries each of them (they stay in escrow
    /// until they succeed, so none is forgotten).
    pub escrows_due_now: usize,
    /// Escrows dropped with the links (`full`): every object is matched again anyway.
    #[serde(default)]
    pub escrows_dropped: usize,
    pub quarantine_lifted: bool,
    pub links_forgotten: u64,
}

impl RestartSummary {
    /// One line for the admin, saying what each scope really did.
    pub fn describe(&self) -> String {
        let escrows = if self.escrows_dropped > 0 {
            format!(
                "escrows dropped with the links: {} (their objects are matched again)",
                self.escrows_dropped
            )
        } else {
            format!(
                "escrowed objects retried at the next cycle: {}",
                self.escrows_due_now
            )
        };
        format!(
            "watermark cleared: {}; {escrows}; quarantine lifted: {}; links forgotten: {}",
            self.watermark_cleared, self.quarantine_lifted, self.links_forgotten
        )
    }
}

pub fn restart<St: StateStore>(
    store: &St,
    job: &str,
    scopes: &[ResetScope],
) -> Result<RestartSummary, StoreError> {
    let js = JobState::new(store, job);
    let full = scopes.contains(&ResetScope::Full);
    let mut out = RestartSummary::default();
    if full || scopes.contains(&ResetScope::Watermark) {
        js.forget_watermarks()?;
        out.watermark_cleared = true;
    }
    if full {
        // Every escrowed object is matched again anyway: the escrows go with the links.
        out.escrows_dropped = js.clear_escrows()?;
    } else if scopes.contains(&ResetScope::Escrows) {
        out.escrows_due_now = js.make_escrows_due()?;
    }
    if full || scopes.contains(&ResetScope::Quarantine) {
        out.quarantine_lifted = js.has_quarantine()?;
        js.set_quarantine::<serde_json::Value>(None)?;
    }
    if full {
        out.links_forgotten = store.remove_objects(job)?;
        for (key, _) in store.scan_meta(job, "rec/")? {
            if !key.starts_with(&format!("rec/{ESCROW}/")) {
                store.remove_meta(job, &key)?;
            }
        }
        js.set_held(None)?;
        js.clear_approval()?;
    }
    store.flush()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobstate::{CYCLES_KEY, USERS_WATERMARK};
    use scimsync_core::StateStore;
    use scimsync_store::MemoryStore;

    #[test]
    fn default_restart_keeps_links_and_full_forgets_them() {
        let s = MemoryStore::new();
        s.put_meta("j", USERS_WATERMARK, "https://graph/delta?token=1")
            .unwrap();
        s.put_meta("j", CYCLES_KEY, "7").unwrap();
        s.put_meta("j", META_QUARANTINE, "{}").unwrap();
        let e = crate::EscrowPolicy::default()
            .record(
                None,
                "u1",
                "U1",
                scimsync_core::ErrorCode::SchemaViolation,
                "400",
                chrono::DateTime::from_timestamp(1_790_000_000, 0).unwrap(),
                false,
            )
            .unwrap();
        s.put_record("j", ESCROW, "u1", &serde_json::to_string(&e).unwrap())
            .unwrap();
        s.put_record("j", "members/g1", "t1", "").unwrap();
        let out = restart(&s, "j", &ResetScope::DEFAULT).unwrap();
        assert!(out.watermark_cleared && out.quarantine_lifted);
        let kept = JobState::new(&s, "j").escrows().unwrap();
        assert!(
            kept["u1"].next_retry == chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
            "the escrow stays and is due at the next cycle"
        );
        assert_eq!(out.escrows_due_now, 1);
        assert!(s.get_meta("j", USERS_WATERMARK).unwrap().is_none());
        assert!(
            s.get_meta("j", CYCLES_KEY).unwrap().is_none(),
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
