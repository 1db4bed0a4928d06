//! Job leases and fencing against a real server (needs `SCIMSYNC_TEST_POSTGRES_URL`).

use scimsync_core::{StateChange, StateStore};
use scimsync_store::StoreAdmin;
use scimsync_store::conformance::{log_entry, object};
use scimsync_store_pg::PgStore;
use scimsync_store_pg::testing::TestDb;
use std::time::Duration;

const TTL: Duration = Duration::from_secs(30);

macro_rules! needs_postgres {
    () => {
        match TestDb::create() {
            Some(db) => db,
            None => return,
        }
    };
}

#[test]
fn two_owners_racing_for_one_job_exactly_one_wins() {
    let db = needs_postgres!();
    let store = PgStore::open(&db.url, None).unwrap();
    for round in 0..5 {
        let job = format!("race{round}");
        let won: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|i| {
                    let (store, job) = (&store, &job);
                    s.spawn(move || store.try_acquire(job, &format!("owner{i}"), TTL).unwrap())
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let winners: Vec<_> = won.into_iter().flatten().collect();
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        assert_eq!(winners[0].epoch, 1);
    }
}

#[test]
fn an_expired_lease_is_taken_over_with_the_next_epoch() {
    let db = needs_postgres!();
    let store = PgStore::open(&db.url, None).unwrap();
    let a = store
        .try_acquire("j", "a", Duration::from_millis(300))
        .unwrap()
        .unwrap();
    assert!(store.try_acquire("j", "b", TTL).unwrap().is_none());
    std::thread::sleep(Duration::from_millis(600));
    let b = store.try_acquire("j", "b", TTL).unwrap().unwrap();
    assert_eq!(b.epoch, a.epoch + 1);
    assert_eq!(b.owner, "b");
    let rows = store.leases().unwrap();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].live);
    assert_eq!(rows[0].lease, b);
    // Released: taken at once, the epoch still grows.
    store.release(&b).unwrap();
    assert!(!store.leases().unwrap()[0].live);
    let c = store.try_acquire("j", "c", TTL).unwrap().unwrap();
    assert_eq!(c.epoch, b.epoch + 1);
}

#[test]
fn a_stale_holder_cannot_renew() {
    let db = needs_postgres!();
    let store = PgStore::open(&db.url, None).unwrap();
    let a = store
        .try_acquire("j", "a", Duration::from_millis(200))
        .unwrap()
        .unwrap();
    assert!(store.renew(&a, TTL).unwrap().is_some(), "own lease renews");
    store.release(&a).unwrap();
    let _b = store.try_acquire("j", "b", TTL).unwrap().unwrap();
    assert!(store.renew(&a, TTL).unwrap().is_none());
}

#[test]
fn a_stale_holders_writes_are_refused_and_write_nothing() {
    let db = needs_postgres!();
    let store = PgStore::open(&db.url, None).unwrap();
    let a = store.try_acquire("j", "a", TTL).unwrap().unwrap();
    let old = store.fenced("j", a.epoch);
    old.commit(
        "j",
        &StateChange::Put(object("u1", "t1")),
        &log_entry("j", "c1", "u1"),
    )
    .unwrap();
    old.put_meta("j", "k", "1").unwrap();

    store.release(&a).unwrap();
    let b = store.try_acquire("j", "b", TTL).unwrap().unwrap();
    let new = store.fenced("j", b.epoch);

    let refused = old
        .commit(
            "j",
            &StateChange::Put(object("u2", "t2")),
            &log_entry("j", "c1", "u2"),
        )
        .unwrap_err()
        .to_string();
    assert!(refused.contains("job j"), "{refused}");
    assert!(
        refused.contains(&format!("epoch is now {}", b.epoch)),
        "{refused}"
    );
    assert!(
        refused.contains(&format!("holds epoch {}", a.epoch)),
        "{refused}"
    );
    assert!(old.put_meta("j", "k", "2").is_err());
    assert!(old.remove_meta("j", "k").is_err());
    assert!(old.remove_objects("j").is_err());
    assert!(old.put_object("j", &object("u3", "t3")).is_err());
    assert!(old.append_log("j", &log_entry("j", "c1", "u3")).is_err());
    assert!(old.prune_logs("j", chrono::Utc::now()).is_err());
    // Nothing of the refused writes landed.
    assert_eq!(store.list("j").unwrap().len(), 1);
    assert_eq!(store.get_meta("j", "k").unwrap().as_deref(), Some("1"));
    assert_eq!(store.logs("j", None).unwrap().len(), 1);
    // Other jobs are not fenced; the new holder writes.
    old.put_meta("other", "k", "x").unwrap();
    new.commit(
        "j",
        &StateChange::Put(object("u2", "t2")),
        &log_entry("j", "c2", "u2"),
    )
    .unwrap();
    assert_eq!(store.list("j").unwrap().len(), 2);
}

#[test]
fn a_forwarded_action_is_claimed_once_by_the_holder_and_answered() {
    let db = needs_postgres!();
    let store = PgStore::open(&db.url, None).unwrap();
    use scimsync_store_pg::CommandState;
    let first = store
        .submit_command("j", r#"{"action":"pause"}"#, "b")
        .unwrap();
    let second = store
        .submit_command("j", r#"{"action":"start"}"#, "c")
        .unwrap();
    store.submit_command("other", "{}", "b").unwrap();
    assert_eq!(
        store.command_state("j", first).unwrap(),
        Some(CommandState::Queued)
    );
    // Only the jobs asked for, oldest first; a second claimer finds nothing left.
    let claimed = store.claim_commands(&["j".to_owned()], "a").unwrap();
    assert_eq!(
        claimed.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![first, second]
    );
    assert_eq!(claimed[0].action, r#"{"action":"pause"}"#);
    assert!(
        store
            .claim_commands(&["j".to_owned()], "z")
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.command_state("j", first).unwrap(),
        Some(CommandState::Taken { by: "a".into() })
    );
    store.finish_command(first, r#"{"Ok":null}"#).unwrap();
    assert_eq!(
        store.command_state("j", first).unwrap(),
        Some(CommandState::Done {
            by: "a".into(),
            outcome: r#"{"Ok":null}"#.into()
        })
    );
    // Another job's id is not this job's command.
    assert_eq!(store.command_state("other", first).unwrap(), None);
}

#[test]
fn an_action_taken_by_a_replica_that_lost_the_job_is_claimed_by_the_new_holder() {
    let db = needs_postgres!();
    let store = PgStore::open(&db.url, None).unwrap();
    use scimsync_store_pg::CommandState;
    let jobs = ["j".to_owned()];
    let a = store
        .try_acquire("j", "a", Duration::from_millis(200))
        .unwrap()
        .unwrap();
    let id = store
        .submit_command("j", r#"{"action":"pause"}"#, "c")
        .unwrap();
    assert_eq!(store.claim_commands(&jobs, "a").unwrap().len(), 1);
    // While a holds the job, nobody else takes its command.
    assert!(store.claim_commands(&jobs, "b").unwrap().is_empty());
    // a dies before it answers; b takes the job over and then the unfinished command.
    std::thread::sleep(Duration::from_millis(400));
    let _b = store.try_acquire("j", "b", TTL).unwrap().unwrap();
    assert!(store.renew(&a, TTL).unwrap().is_none());
    let again = store.claim_commands(&jobs, "b").unwrap();
    assert_eq!(again.iter().map(|c| c.id).collect::<Vec<_>>(), vec![id]);
    assert_eq!(
        store.command_state("j", id).unwrap(),
        Some(CommandState::Taken { by: "b".into() })
    );
    // Once answered it is never claimed again.
    store.finish_command(id, r#"{"Ok":null}"#).unwrap();
    assert!(store.claim_commands(&jobs, "b").unwrap().is_empty());
}
