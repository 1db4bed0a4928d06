//! Benchmarks that print figures (run: `cargo bench --bench cycles [-- users groups]`):
//!
//! 1. Source: the initial delta read of an N-user tenant from the Graph emulator over HTTP,
//!    and the no-change incremental read (one delta round).
//! 2. Engine: a no-change incremental cycle over that tenant (in-memory target and state),
//!    which is what a quiet 40-minute cycle costs.
//! 3. Mapping: users mapped per second with Entra's default SCIM mapping (expressions).
//! 4. Groups: G groups holding M memberships in total, initial and no-change cycles (in-memory
//!    target, to measure the engine rather than an HTTP server).

use chrono::Utc;
use scimsync_config::{Apply, Mapping, MappingValue};
use scimsync_core::{
    MemberKind, Secret, Source, SourceGroup, SourceUser, SystemClock, UserQuery, UserScope,
};
use scimsync_engine::{Engine, GroupSpec, JobSpec, Mode};
use scimsync_graph::{GraphClient, GraphConfig};
use scimsync_store::MemoryStore;
use scimsync_testkit::doubles::{MemorySource, MemoryTarget};
use scimsync_testkit::graph::{GraphEmulator, Tenant};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Instant;

fn mapping(target: &str, value: MappingValue, matching: Option<u32>) -> Mapping {
    Mapping {
        target: target.into(),
        value,
        matching,
        apply: Apply::Always,
        default: None,
        required: false,
        line: 0,
    }
}

fn direct(target: &str, source: &str) -> Mapping {
    mapping(
        target,
        MappingValue::Direct {
            source: source.into(),
        },
        None,
    )
}

fn entra_default() -> Vec<Mapping> {
    vec![
        mapping(
            "userName",
            MappingValue::Direct {
                source: "userPrincipalName".into(),
            },
            Some(1),
        ),
        mapping(
            "active",
            MappingValue::Expression {
                text: r#"Switch([IsSoftDeleted], , "False", "True", "True", "False")"#.into(),
            },
            None,
        ),
        direct("displayName", "displayName"),
        direct("title", "jobTitle"),
        direct("emails[type eq \"work\"].value", "mail"),
        direct("preferredLanguage", "preferredLanguage"),
        direct("name.givenName", "givenName"),
        direct("name.familyName", "surname"),
        mapping(
            "name.formatted",
            MappingValue::Expression {
                text: r#"Join(" ", [givenName], [surname])"#.into(),
            },
            None,
        ),
        direct("addresses[type eq \"work\"].locality", "city"),
        direct("phoneNumbers[type eq \"mobile\"].value", "mobile"),
        direct("externalId", "mailNickname"),
        direct(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
            "department",
        ),
    ]
}

/// A Graph client of the emulator reading lists `page_size` at a time.
fn graph_client(graph: &GraphEmulator, page_size: u32) -> GraphClient {
    let mut gc = GraphConfig::new(
        graph.tenant_id(),
        graph.client_id(),
        Secret::inline(graph.client_secret()),
    );
    gc.graph_url = graph.url();
    gc.login_url = graph.url();
    gc.page_size = page_size;
    GraphClient::new(gc).expect("client")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let users = args.first().copied().unwrap_or(100_000);
    let groups = args.get(1).copied().unwrap_or(1_000);

    // 1. Source over HTTP.
    let t = Instant::now();
    let graph = GraphEmulator::start(Tenant::generate("bench.onmicrosoft.com", users, 10, 3))
        .await
        .expect("graph");
    println!(
        "tenant of {users} users generated in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let client = graph_client(&graph, 999);
    let query = UserQuery {
        attributes: scimsync_mapping::source_attributes(&entra_default()),
        scope: UserScope::All,
        keep: None,
    };
    let t = Instant::now();
    let first = client
        .read_user_changes(&query, None)
        .await
        .expect("initial read");
    let initial_s = t.elapsed().as_secs_f64();
    let (watermark, read_users) = match first {
        scimsync_core::UserRead::Full {
            watermark, users, ..
        } => (watermark.expect("deltaLink"), users),
        other => panic!("expected a full round, got {other:?}"),
    };
    let requests_before = client.requests_sent();
    let t = Instant::now();
    let again = client
        .read_user_changes(&query, Some(&watermark))
        .await
        .expect("incremental read");
    let incr_s = t.elapsed().as_secs_f64();
    let changed = match again {
        scimsync_core::UserRead::Changes { upserts, .. } => upserts.len(),
        _ => usize::MAX,
    };
    println!("source (Graph emulator over loopback HTTP):");
    println!(
        "  initial delta read of {} users: {initial_s:.2} s ({:.0} users/s)",
        read_users.len(),
        read_users.len() as f64 / initial_s
    );
    println!(
        "  no-change incremental read: {:.3} s, {} request(s), {changed} users changed",
        incr_s,
        client.requests_sent() - requests_before
    );

    // Assignments have no delta query: every cycle of an "assigned users" job reads the whole
    // list. Graph's default page (100, what the list cost before it asked for $top=999) against
    // the largest page.
    let sp = graph.service_principal_id().to_string();
    for page_size in [100u32, 999] {
        let c = graph_client(&graph, page_size);
        let before = c.requests_sent();
        let t = Instant::now();
        let a = c.read_assignments(&sp).await.expect("assignments");
        println!(
            "  assignment list, $top={page_size}: {} user + {} group assignments in {:.3} s, {} request(s) (token included)",
            a.users.len(),
            a.groups.len(),
            t.elapsed().as_secs_f64(),
            c.requests_sent() - before
        );
    }

    // 2. Engine no-change incremental cycle over the same users (in-memory target and state).
    let source = MemorySource::new(read_users);
    let target = MemoryTarget::new();
    let store = MemoryStore::new();
    let mut job = JobSpec::new("bench", UserScope::All, entra_default());
    job.concurrency = 8;
    job.deletion_threshold = 0;
    let engine = Engine::new(&job, &source, &target, &store, &SystemClock);
    let t = Instant::now();
    let r = engine.run(Mode::Apply).await.expect("initial cycle");
    println!("engine (in-memory target):");
    println!(
        "  initial cycle, {} created: {:.2} s",
        r.tally.created,
        t.elapsed().as_secs_f64()
    );
    target.clear_log();
    let t = Instant::now();
    let r = engine.run(Mode::Apply).await.expect("no-change cycle");
    println!(
        "  no-change incremental cycle: {:.3} s ({} objects decided, {} writes)",
        t.elapsed().as_secs_f64(),
        r.source_users,
        target.writes().len()
    );

    // 3. Mapping throughput.
    let sample: Vec<SourceUser> = source.read_users(&query).await.expect("users").users;
    let maps = scimsync_mapping::CompiledMappings::new(&entra_default());
    let now = Utc::now();
    let t = Instant::now();
    let mut n = 0usize;
    while t.elapsed().as_secs_f64() < 2.0 {
        for u in &sample {
            let mut u = u.clone();
            u.attrs.insert("IsSoftDeleted".into(), json!(false));
            let _ = maps.map_user(&u, false, now).expect("maps");
            n += 1;
        }
    }
    println!(
        "mapping: {:.0} users/s with Entra's default SCIM mapping (2 expressions, 13 attributes)",
        n as f64 / t.elapsed().as_secs_f64()
    );

    // 4. Groups.
    let members_total = 100_000usize.min(users * groups);
    let per_group = members_total / groups.max(1);
    let group_users = (per_group * 10).clamp(1, users);
    let source = MemorySource::new(
        (0..group_users)
            .map(|i| {
                let a = json!({"userPrincipalName": format!("u{i}@bench"), "accountEnabled": true});
                SourceUser {
                    id: format!("u{i}"),
                    attrs: a.as_object().unwrap().clone().into_iter().collect(),
                }
            })
            .collect(),
    );
    let mut gs = Vec::new();
    let mut members: BTreeMap<String, Vec<(String, MemberKind)>> = BTreeMap::new();
    for g in 0..groups {
        let id = format!("g{g}");
        let a = json!({"displayName": format!("Group {g}")});
        gs.push(SourceGroup {
            id: id.clone(),
            attrs: a.as_object().unwrap().clone().into_iter().collect(),
        });
        members.insert(
            id,
            (0..per_group)
                .map(|k| (format!("u{}", (g * 7 + k) % group_users), MemberKind::User))
                .collect(),
        );
    }
    source.set_groups(gs, members, Default::default());
    let target = MemoryTarget::new();
    let store = MemoryStore::new();
    let mut job = JobSpec::new(
        "groups",
        UserScope::All,
        vec![mapping(
            "userName",
            MappingValue::Direct {
                source: "userPrincipalName".into(),
            },
            Some(1),
        )],
    );
    job.concurrency = 8;
    job.groups = Some(GroupSpec {
        mappings: vec![mapping(
            "displayName",
            MappingValue::Direct {
                source: "displayName".into(),
            },
            Some(1),
        )],
        scoping: Vec::new(),
        include_nested: false,
        delete_out_of_scope: true,
        batch_size: 100,
    });
    let engine = Engine::new(&job, &source, &target, &store, &SystemClock);
    let t = Instant::now();
    let r = engine.run(Mode::Apply).await.expect("group cycle");
    println!(
        "groups ({groups} groups, {} memberships over {group_users} users, in-memory target):",
        r.tally.members_added
    );
    println!(
        "  initial cycle: {:.2} s ({} PATCH requests for members)",
        t.elapsed().as_secs_f64(),
        target
            .writes()
            .iter()
            .filter(|w| matches!(w, scimsync_testkit::doubles::Write::AddMembers(..)))
            .count()
    );
    target.clear_log();
    let t = Instant::now();
    engine
        .run(Mode::Apply)
        .await
        .expect("no-change group cycle");
    println!(
        "  no-change cycle: {:.2} s, {} writes",
        t.elapsed().as_secs_f64(),
        target.writes().len()
    );
    println!(
        "peak memory (whole process, emulator included): {:.0} MiB",
        scimsync_testkit::peak_rss_mib()
    );
}
