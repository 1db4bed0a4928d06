//! State on PostgreSQL through the binary: `run --store postgres://…`, and `state migrate` of
//! a sled deployment that then continues on PostgreSQL without matching again.
//!
//! Needs `SCIMSYNC_TEST_POSTGRES_URL` (skipped loudly without it, failed with
//! `SCIMSYNC_REQUIRE_POSTGRES=1`, as CI runs).

use crate::support::*;
use scimsync_store_pg::testing::TestDb;
use scimsync_testkit::scim::{ScimTarget, ScimTargetOptions};
use serde_json::json;

fn run_on(job: &Job, store: &str) -> serde_json::Value {
    let out = scimsync(&[
        "run",
        "--once",
        "--json",
        "--config",
        job.config.to_str().unwrap(),
        "--state",
        job.state().to_str().unwrap(),
        "--store",
        store,
    ]);
    assert!(out.status.success(), "run failed: {}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sled_deployment_migrates_to_postgres_and_continues_without_rematching() {
    let Some(db) = TestDb::create() else { return };
    let graph = tenant(15).await;
    let t = ScimTarget::start(ScimTargetOptions::default())
        .await
        .expect("scim target");
    let job = write_job(&graph, &t.url(), t.token(), JobOptions::default());

    let first = run_once(&job); // on sled
    let created = tally(&first, "created");
    assert!(created > 0, "{first}");

    let out = scimsync(&[
        "state",
        "migrate",
        "--from",
        job.state().to_str().unwrap(),
        "--to",
        &db.url,
    ]);
    assert!(out.status.success(), "migrate failed: {}", text(&out));
    assert!(text(&out).contains("job e2e:"), "{}", text(&out));

    // The sled state is gone from view: only the database is read from now on.
    std::fs::remove_dir_all(job.state()).unwrap();
    let writes_before = t.writes().len();
    let second = run_on(&job, &db.url);
    assert_eq!(tally(&second, "created"), 0, "{second}");
    assert_eq!(tally(&second, "linked"), 0, "no re-match: {second}");
    assert_eq!(
        t.writes().len(),
        writes_before,
        "a no-change cycle sends no write"
    );

    graph.update_user(
        &user_id(&graph, 0),
        json!({"displayName": "Renamed Person"}),
    );
    let third = run_on(&job, &db.url);
    assert_eq!(tally(&third, "updated"), 1, "{third}");
    assert_eq!(
        tally(&third, "created") + tally(&third, "linked"),
        0,
        "{third}"
    );

    // The log of every cycle, the migrated one included, reads back from the database.
    let out = scimsync(&[
        "logs", "--job", "e2e", "--format", "jsonl", "--store", &db.url,
    ]);
    assert!(out.status.success(), "logs failed: {}", text(&out));
    let cycles: std::collections::BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["cycleId"].to_string())
        .collect();
    assert!(cycles.len() >= 2, "{cycles:?}");

    // A second migration would double the log: refused.
    let again = scimsync(&[
        "state",
        "migrate",
        "--from",
        job.state().to_str().unwrap(),
        "--to",
        &db.url,
    ]);
    assert!(!again.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_password_never_shows_in_output() {
    let Some(db) = TestDb::create() else { return };
    let graph = tenant(3).await;
    let t = ScimTarget::start(ScimTargetOptions::default())
        .await
        .expect("scim target");
    let job = write_job(&graph, &t.url(), t.token(), JobOptions::default());
    // Trust auth accepts any password; a wrong port fails. Neither output may show it.
    let url = db
        .url
        .replacen("postgres@", "postgres:Pw-Hunter2-Secret@", 1);
    let report = run_on(&job, &url);
    assert!(!report.to_string().contains("Pw-Hunter2-Secret"));
    let broken = "postgres://postgres:Pw-Hunter2-Secret@127.0.0.1:1/x?connect_timeout=2";
    let out = scimsync(&[
        "run",
        "--once",
        "--config",
        job.config.to_str().unwrap(),
        "--store",
        broken,
    ]);
    assert!(!out.status.success());
    assert!(!text(&out).contains("Pw-Hunter2-Secret"), "{}", text(&out));
    assert!(
        text(&out).contains("postgres://postgres@127.0.0.1:1"),
        "{}",
        text(&out)
    );
}
