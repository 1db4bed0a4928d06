//! Benchmark: provision N users (default 10,000) from the Graph emulator to the built-in SCIM
//! app over loopback HTTP, with real sled state, then run a no-change cycle. Prints users per
//! second and peak memory. Run: `cargo bench --bench provision [-- USERS]`.
//!
//! The emulator and the SCIM app run in this process, so the figures include their cost: they
//! are an end-to-end throughput on this machine, not the engine alone.

use scimsync_config::{Apply, Mapping, MappingValue};
use scimsync_core::{Secret, SystemClock, UserScope};
use scimsync_engine::{Engine, JobSpec, Mode};
use scimsync_graph::{GraphClient, GraphConfig};
use scimsync_scim::{ScimClient, ScimClientConfig};
use scimsync_store::SledStore;
use scimsync_testkit::graph::{GraphEmulator, Tenant};
use scimsync_testkit::scim::{ScimTarget, ScimTargetOptions};
use std::time::Instant;

fn direct(target: &str, source: &str, matching: Option<u32>) -> Mapping {
    Mapping {
        target: target.into(),
        value: MappingValue::Direct {
            source: source.into(),
        },
        matching,
        apply: Apply::Always,
        default: None,
        required: false,
        line: 0,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let users: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10_000);
    let concurrency: usize = std::env::var("SCIMSYNC_BENCH_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let graph = GraphEmulator::start(Tenant::generate("bench.onmicrosoft.com", users, 10, 1))
        .await
        .expect("graph");
    let target = ScimTarget::start(ScimTargetOptions::default())
        .await
        .expect("target");
    let dir = tempfile::tempdir().expect("tempdir");

    let mut gc = GraphConfig::new(
        graph.tenant_id(),
        graph.client_id(),
        Secret::inline(graph.client_secret()),
    );
    gc.graph_url = graph.url();
    gc.login_url = graph.url();
    let source = GraphClient::new(gc).expect("graph client");
    let mut sc = ScimClientConfig::new(target.url(), Secret::inline(target.token()));
    sc.max_concurrency = concurrency;
    let scim = ScimClient::new(sc).expect("scim client");
    let (store, _) = SledStore::open(&dir.path().join("state")).expect("store");

    let mut job = JobSpec::new(
        "bench",
        UserScope::All,
        vec![
            direct("userName", "userPrincipalName", Some(1)),
            direct("externalId", "mailNickname", None),
            direct("displayName", "displayName", None),
            direct("name.givenName", "givenName", None),
            direct("name.familyName", "surname", None),
            direct("title", "jobTitle", None),
            direct("emails[type eq \"work\"].value", "mail", None),
            direct("phoneNumbers[type eq \"mobile\"].value", "mobile", None),
            direct(
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
                "department",
                None,
            ),
            direct(
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
                "employeeId",
                None,
            ),
        ],
    );
    job.concurrency = concurrency;
    let engine = Engine::new(&job, &source, &scim, &store, &SystemClock);

    let t = Instant::now();
    let initial = engine.run(Mode::Apply).await.expect("initial cycle");
    let initial_s = t.elapsed().as_secs_f64();
    assert_eq!(initial.tally.failed, 0, "failures in the initial cycle");
    let created = initial.tally.created;

    let t = Instant::now();
    let again = engine.run(Mode::Apply).await.expect("no-change cycle");
    let again_s = t.elapsed().as_secs_f64();
    assert_eq!(again.tally.created + again.tally.updated, 0);

    println!(
        "provision benchmark: {users} source users, {created} provisioned, concurrency {concurrency}"
    );
    println!(
        "  initial cycle:   {initial_s:.2} s  ({:.0} users/s, {} SCIM requests)",
        created as f64 / initial_s,
        scim.requests_sent()
    );
    println!(
        "  no-change cycle: {again_s:.2} s  ({:.0} users/s checked, 0 SCIM writes)",
        users as f64 / again_s
    );
    println!(
        "  peak memory (whole process, emulators included): {:.0} MiB",
        scimsync_testkit::peak_rss_mib()
    );
}
