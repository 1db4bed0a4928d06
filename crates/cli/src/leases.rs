//! Job leases for `serve` on PostgreSQL: several replicas on one database share the jobs.
//!
//! One thread per process keeps the leases: every TTL/3 it renews the leases it holds and, when
//! it holds fewer than its share, acquires one more free or expired job. Each job's store is a
//! fenced handle: it writes only under the epoch the keeper acquired, and the job's task runs
//! cycles only while its flag says the lease is held.
//!
//! Spreading: every replica keeps a *presence* lease on `replica:<owner>` (`:` is never in a job
//! name), so a replica without a job yet still counts as live. A replica's share is
//! ceil(jobs / live replicas); it takes at most one job per tick, and one holding more than its
//! share while another live replica holds less releases one job per tick (the job's task stops;
//! a cycle in flight is dropped, which fencing and match-before-create make harmless), so a
//! replica that joins later takes its share within a few ticks.

use scimsync_store_pg::{Lease, PgStore};
use std::collections::BTreeSet;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

const TARGET: &str = "scimsync::serve";
/// Prefix of presence leases: `replica:<owner>`.
const PRESENCE: &str = "replica:";

struct Slot {
    job: String,
    /// The job's store: writes checked against the epoch this keeper holds.
    fenced: Arc<PgStore>,
    held: Option<Held>,
    flag: watch::Sender<bool>,
}

struct Held {
    lease: Lease,
    /// By the local clock, measured from before the renewal was sent: never later than the
    /// database's expiry.
    until: Instant,
}

pub struct Keeper {
    store: Arc<PgStore>,
    owner: String,
    ttl: Duration,
    slots: Vec<Slot>,
    /// This replica's presence lease (see the module doc).
    presence: Option<Lease>,
}

/// `hostname-pid-random`: unique per process, readable in logs and `status`.
pub fn owner_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into());
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    format!("{host}-{}-{:06x}", std::process::id(), random & 0xff_ffff)
}

impl Keeper {
    pub fn new(store: Arc<PgStore>, ttl: Duration) -> Keeper {
        Keeper {
            store,
            owner: owner_id(),
            ttl,
            slots: Vec::new(),
            presence: None,
        }
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The unfenced store, for reading leases.
    pub fn database(&self) -> Arc<PgStore> {
        self.store.clone()
    }

    /// The job's fenced store and the flag its task runs under.
    pub fn add(&mut self, job: &str) -> (Arc<PgStore>, watch::Receiver<bool>) {
        let fenced = Arc::new(self.store.fenced(job, 0));
        let (flag, rx) = watch::channel(false);
        self.slots.push(Slot {
            job: job.to_owned(),
            fenced: fenced.clone(),
            held: None,
            flag,
        });
        (fenced, rx)
    }

    /// Keep the leases on a thread of its own until the returned stopper is stopped; then
    /// release them so another replica takes the jobs at once.
    pub fn spawn(mut self) -> std::io::Result<Stopper> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("scimsync-leases".into())
            .spawn(move || {
                let tick = self.ttl / 3;
                loop {
                    self.tick();
                    match stopped.recv_timeout(tick) {
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                        _ => break,
                    }
                }
                self.release_all();
            })?;
        Ok(Stopper {
            stop,
            thread: Some(thread),
        })
    }

    fn tick(&mut self) {
        self.keep_presence();
        self.renew();
        self.rebalance();
        self.acquire_one();
    }

    fn keep_presence(&mut self) {
        let kept = match &self.presence {
            Some(lease) => self.store.renew(lease, self.ttl),
            None => {
                self.store
                    .try_acquire(&format!("{PRESENCE}{}", self.owner), &self.owner, self.ttl)
            }
        };
        match kept {
            Ok(lease) => self.presence = lease,
            Err(e) => {
                tracing::warn!(target: TARGET, error = %e, "cannot renew this replica's presence")
            }
        }
    }

    /// Give one job back when this replica holds more than its share and another live replica
    /// holds less.
    fn rebalance(&mut self) {
        let Ok(rows) = self.store.leases() else {
            return;
        };
        let mut held_by: std::collections::BTreeMap<&str, usize> = rows
            .iter()
            .filter(|r| r.live)
            .map(|r| (r.lease.owner.as_str(), 0))
            .collect();
        held_by.entry(self.owner.as_str()).or_insert(0);
        for r in rows
            .iter()
            .filter(|r| r.live && !r.lease.job.starts_with(PRESENCE))
        {
            *held_by.entry(r.lease.owner.as_str()).or_insert(0) += 1;
        }
        let share = self.slots.len().div_ceil(held_by.len());
        let mine = self.slots.iter().filter(|s| s.held.is_some()).count();
        let someone_short = held_by
            .iter()
            .any(|(owner, n)| *owner != self.owner && *n < share);
        if mine <= share || !someone_short {
            return;
        }
        let Some(slot) = self.slots.iter_mut().rev().find(|s| s.held.is_some()) else {
            return;
        };
        let Some(held) = slot.held.take() else { return };
        slot.fenced.set_fence_epoch(0);
        let _ = slot.flag.send(false);
        match self.store.release(&held.lease) {
            Ok(()) => {
                tracing::info!(target: TARGET, job = %slot.job, owner = %self.owner, share, "lease given up so another replica takes its share")
            }
            Err(e) => {
                tracing::warn!(target: TARGET, job = %slot.job, error = %e, "cannot release the lease; it expires by itself")
            }
        }
    }

    fn renew(&mut self) {
        for slot in &mut self.slots {
            let Some(held) = &slot.held else { continue };
            let sent = Instant::now();
            match self.store.renew(&held.lease, self.ttl) {
                Ok(Some(lease)) => {
                    slot.held = Some(Held {
                        lease,
                        until: sent + self.ttl,
                    })
                }
                Ok(None) => lose(slot, &self.owner, "another replica took it over"),
                Err(e) if sent >= held.until => {
                    lose(slot, &self.owner, &format!("not renewed in time: {e}"))
                }
                Err(e) => {
                    tracing::warn!(target: TARGET, job = %slot.job, error = %e, "lease renewal failed; retrying")
                }
            }
        }
    }

    fn acquire_one(&mut self) {
        let rows = match self.store.leases() {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(target: TARGET, error = %e, "cannot read job leases");
                return;
            }
        };
        let mut live: BTreeSet<&str> = rows
            .iter()
            .filter(|r| r.live)
            .map(|r| r.lease.owner.as_str())
            .collect();
        live.insert(self.owner.as_str());
        let share = self.slots.len().div_ceil(live.len());
        let held = self.slots.iter().filter(|s| s.held.is_some()).count();
        if held >= share {
            return;
        }
        let taken: BTreeSet<&str> = rows
            .iter()
            .filter(|r| r.live && r.lease.owner != self.owner)
            .map(|r| r.lease.job.as_str())
            .collect();
        // Start at a different job per replica so replicas starting together rarely collide.
        let n = self.slots.len();
        let start = (self.owner.bytes().map(usize::from).sum::<usize>()) % n.max(1);
        for i in 0..n {
            let slot = &mut self.slots[(start + i) % n];
            if slot.held.is_some() || taken.contains(slot.job.as_str()) {
                continue;
            }
            let sent = Instant::now();
            match self.store.try_acquire(&slot.job, &self.owner, self.ttl) {
                Ok(Some(lease)) => {
                    tracing::info!(target: TARGET, job = %slot.job, owner = %self.owner, epoch = lease.epoch, "lease acquired: this replica runs the job");
                    slot.fenced.set_fence_epoch(lease.epoch);
                    slot.held = Some(Held {
                        lease,
                        until: sent + self.ttl,
                    });
                    let _ = slot.flag.send(true);
                    return;
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(target: TARGET, job = %slot.job, error = %e, "cannot acquire the lease")
                }
            }
        }
    }

    fn release_all(&mut self) {
        if let Some(presence) = self.presence.take() {
            let _ = self.store.release(&presence);
        }
        for slot in &mut self.slots {
            let Some(held) = slot.held.take() else {
                continue;
            };
            slot.fenced.set_fence_epoch(0);
            let _ = slot.flag.send(false);
            match self.store.release(&held.lease) {
                Ok(()) => {
                    tracing::info!(target: TARGET, job = %slot.job, epoch = held.lease.epoch, "lease released")
                }
                Err(e) => {
                    tracing::warn!(target: TARGET, job = %slot.job, error = %e, "cannot release the lease; it expires by itself")
                }
            }
        }
    }
}

/// Fence first, then tell the task: no write can slip in under the lost epoch.
fn lose(slot: &mut Slot, owner: &str, why: &str) {
    let epoch = slot.held.take().map(|h| h.lease.epoch).unwrap_or(0);
    slot.fenced.set_fence_epoch(0);
    let _ = slot.flag.send(false);
    tracing::warn!(target: TARGET, job = %slot.job, owner = %owner, epoch, reason = %why, "lease lost: this replica stops running the job");
}

pub struct Stopper {
    stop: mpsc::Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Stopper {
    /// Stop renewing and release every lease held (after the jobs' cycles finished).
    pub fn stop(mut self) {
        let _ = self.stop.send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The job's lease as `status` and the admin API show it; `None` when it never had one or the
/// database cannot be read (status is best effort).
pub fn lease_status(store: &PgStore, job: &str) -> Option<scimsync_service::LeaseStatus> {
    let rows = store.leases().ok()?;
    rows.into_iter()
        .find(|r| r.lease.job == job)
        .map(|r| scimsync_service::LeaseStatus {
            owner: r.lease.owner,
            epoch: r.lease.epoch,
            expires_at: r.lease.expires_at,
            live: r.live,
        })
}

/// [`lease_status`] for the service's status.
pub fn view(store: Arc<PgStore>) -> scimsync_service::LeaseView {
    Arc::new(move |job: &str| lease_status(&store, job))
}

#[cfg(test)]
mod tests {
    use super::*;
    use scimsync_store_pg::testing::TestDb;

    fn held(k: &Keeper) -> usize {
        k.slots.iter().filter(|s| s.held.is_some()).count()
    }

    #[test]
    fn a_replica_joining_later_gets_its_share() {
        let Some(db) = TestDb::create() else { return };
        let store = Arc::new(PgStore::open(&db.url, None).unwrap());
        let ttl = Duration::from_secs(30);
        let jobs = ["j1", "j2", "j3", "j4"];
        let mut a = Keeper::new(store.clone(), ttl);
        let flags_a: Vec<_> = jobs.iter().map(|j| a.add(j).1).collect();
        for _ in 0..jobs.len() {
            a.tick();
        }
        assert_eq!(held(&a), 4, "alone, a replica runs every job");
        assert!(flags_a.iter().all(|f| *f.borrow()));

        let mut b = Keeper::new(store.clone(), ttl);
        for j in jobs {
            b.add(j);
        }
        for _ in 0..6 {
            b.tick();
            a.tick();
        }
        assert_eq!((held(&a), held(&b)), (2, 2), "two replicas, two jobs each");
        assert_eq!(flags_a.iter().filter(|f| *f.borrow()).count(), 2);
        // Every job has exactly one live holder.
        let rows = store.leases().unwrap();
        for j in jobs {
            assert_eq!(
                rows.iter().filter(|r| r.live && r.lease.job == j).count(),
                1,
                "{j}: {rows:?}"
            );
        }
        // Stable: more ticks move nothing.
        let before: Vec<i64> = rows.iter().map(|r| r.lease.epoch).collect();
        for _ in 0..4 {
            a.tick();
            b.tick();
        }
        let after: Vec<i64> = store
            .leases()
            .unwrap()
            .iter()
            .map(|r| r.lease.epoch)
            .collect();
        assert_eq!(before, after);
    }
}
