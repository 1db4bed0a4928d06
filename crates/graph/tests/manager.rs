//! `manager` (issue 13 §3) read through the Graph emulator: a navigation property, so it is
//! never in `$select` of a GET — `$expand=manager($select=id)` there — and is selected in the
//! delta round, where it comes back as `manager@delta`. It reads as the manager's object id;
//! a user without one has no value. Group directory extensions are read like users'.

use scimsync_core::{GroupQuery, GroupRead, Secret, Source, UserQuery, UserRead, UserScope};
use scimsync_graph::{GraphClient, GraphConfig};
use scimsync_testkit::graph::{GraphEmulator, Tenant};
use serde_json::json;
use std::time::Duration;

fn client(g: &GraphEmulator) -> GraphClient {
    let cfg = GraphConfig {
        graph_url: g.url(),
        login_url: g.url(),
        ..GraphConfig::new(
            g.tenant_id(),
            g.client_id(),
            Secret::inline(g.client_secret()),
        )
    };
    GraphClient::with_retry_base(cfg, Duration::from_millis(5)).unwrap()
}

fn query() -> UserQuery {
    UserQuery {
        attributes: vec!["displayName".into(), "manager".into()],
        scope: UserScope::All,
        keep: None,
    }
}

/// Boss, and Report whose manager is Boss.
async fn emulator() -> (GraphEmulator, String, String) {
    let mut t = Tenant::new("contoso.onmicrosoft.com");
    let boss = t.add_user(json!({"userPrincipalName": "boss@contoso.com"}));
    let report = t.add_user(json!({"userPrincipalName": "report@contoso.com"}));
    t.set_manager(&report, Some(&boss));
    (GraphEmulator::start(t).await.unwrap(), boss, report)
}

fn queries(g: &GraphEmulator) -> Vec<String> {
    g.requests()
        .into_iter()
        .filter_map(|r| r.path_and_query.split_once('?').map(|(_, q)| q.to_string()))
        .collect()
}

#[tokio::test]
async fn a_full_read_expands_the_manager_and_reads_its_id() {
    let (g, boss, report) = emulator().await;
    let graph = client(&g);
    let snapshot = graph.read_users(&query()).await.unwrap();
    let by_id = |id: &str| snapshot.users.iter().find(|u| u.id == id).unwrap().clone();
    assert_eq!(by_id(&report).attrs.get("manager"), Some(&json!(boss)));
    assert_eq!(by_id(&boss).attrs.get("manager"), None);
    let qs = queries(&g);
    assert!(
        qs.iter()
            .any(|q| q.contains("expand=manager") && !q.contains(",manager")),
        "{qs:?}"
    );

    // One user by id: the same.
    let one = graph.user(&report, &query().attributes).await.unwrap();
    assert_eq!(one.unwrap().attrs.get("manager"), Some(&json!(boss)));
}

#[tokio::test]
async fn a_delta_round_tracks_the_manager_and_a_change_brings_the_user_back() {
    let (g, boss, report) = emulator().await;
    let graph = client(&g);
    let UserRead::Full {
        users, watermark, ..
    } = graph.read_user_changes(&query(), None).await.unwrap()
    else {
        panic!("the first read is full");
    };
    let r = users.iter().find(|u| u.id == report).unwrap();
    assert_eq!(r.attrs.get("manager"), Some(&json!(boss)));
    // Selected in the delta round (turns on relationship tracking), never expanded there.
    let initial: Vec<String> = g
        .requests()
        .into_iter()
        .map(|r| r.path_and_query)
        .filter(|p| p.contains("/users/delta?") && p.contains("select="))
        .collect();
    assert!(!initial.is_empty());
    for p in &initial {
        assert!(p.contains(",manager") && !p.contains("expand"), "{p}");
    }

    // A new manager: the user comes back in the next round, re-read with its new manager.
    let other = g.add_user(json!({"userPrincipalName": "other@contoso.com"}));
    g.set_manager(&report, Some(&other));
    let UserRead::Changes {
        upserts, watermark, ..
    } = graph
        .read_user_changes(&query(), watermark.as_deref())
        .await
        .unwrap()
    else {
        panic!("an incremental read");
    };
    let r = upserts
        .iter()
        .find(|u| u.id == report)
        .expect("report changed");
    assert_eq!(r.attrs.get("manager"), Some(&json!(other)));

    // The manager removed: the user comes back without one.
    g.set_manager(&report, None);
    let UserRead::Changes { upserts, .. } = graph
        .read_user_changes(&query(), Some(&watermark))
        .await
        .unwrap()
    else {
        panic!("an incremental read");
    };
    let r = upserts
        .iter()
        .find(|u| u.id == report)
        .expect("report changed");
    assert_eq!(r.attrs.get("manager"), None);
}

#[tokio::test]
async fn group_directory_extensions_are_selected_verbatim_and_read_back() {
    let name = "extension_b7d8e648520f41d3b9c0fdeb91768a0a_costCenter";
    let mut t = Tenant::new("contoso.onmicrosoft.com");
    let g1 = t.add_group(json!({"displayName": "Sales", name: "CC-4711"}));
    let g2 = t.add_group(json!({"displayName": "Ops"}));
    let g = GraphEmulator::start(t).await.unwrap();
    let graph = client(&g);
    let q = GroupQuery {
        attributes: vec!["displayName".into(), name.into()],
    };
    let GroupRead::Full { groups, .. } = graph.read_groups(&q, None).await.unwrap() else {
        panic!("the first read is full");
    };
    let get = |id: &str| groups.iter().find(|x| x.id == id).unwrap().attrs.clone();
    assert_eq!(get(&g1).get(name), Some(&json!("CC-4711")));
    assert_eq!(get(&g2).get(name), None);
    assert!(queries(&g).iter().any(|q| q.contains(name)));
}
