//! Directory extensions (`extension_<appIdNoDashes>_<name>`, issue 13 §3) read through the Graph
//! emulator: requested in `$select` exactly as written, read back under the same name, whatever
//! the extension's data type; full reads, single GETs, delta rounds and `$batch` re-reads alike.

use scimsync_core::{Secret, Source, UserQuery, UserRead, UserScope};
use scimsync_graph::{GraphClient, GraphConfig};
use scimsync_testkit::graph::{GraphEmulator, Tenant};
use serde_json::json;
use std::time::Duration;

const APP: &str = "b7d8e648520f41d3b9c0fdeb91768a0a";

fn ext(name: &str) -> String {
    format!("extension_{APP}_{name}")
}

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

/// Two users: Adele with one extension of every data type, Alex with none set.
async fn emulator() -> (GraphEmulator, String, String) {
    let mut t = Tenant::new("contoso.onmicrosoft.com");
    let adele = t.add_user(json!({
        "userPrincipalName": "adele@contoso.com",
        "displayName": "Adele Vance",
        ext("jobGroupTracker"): "E4",
        ext("level"): 7,
        ext("permanent_pensionable"): true,
        ext("skills"): ["SQL", "Rust"],
    }));
    let alex = t.add_user(json!({"userPrincipalName": "alex@contoso.com"}));
    (GraphEmulator::start(t).await.unwrap(), adele, alex)
}

fn query() -> UserQuery {
    UserQuery {
        attributes: vec![
            ext("jobGroupTracker"),
            ext("level"),
            ext("permanent_pensionable"),
            ext("skills"),
            "displayName".into(),
        ],
        scope: UserScope::All,
        keep: None,
    }
}

/// The `$select` of every recorded request that has one.
fn selects(g: &GraphEmulator) -> Vec<String> {
    g.requests()
        .into_iter()
        .filter_map(|r| {
            let (_, q) = r.path_and_query.split_once('?')?;
            q.split('&')
                .find_map(|kv| {
                    kv.strip_prefix("$select=")
                        .or(kv.strip_prefix("%24select="))
                })
                .map(str::to_string)
        })
        .collect()
}

#[tokio::test]
async fn a_full_read_selects_directory_extensions_verbatim_and_returns_their_values() {
    let (g, adele, alex) = emulator().await;
    let graph = client(&g);
    let snapshot = graph.read_users(&query()).await.unwrap();
    let want_select = format!(
        "id,userPrincipalName,accountEnabled,{},{},{},{},displayName",
        ext("jobGroupTracker"),
        ext("level"),
        ext("permanent_pensionable"),
        ext("skills")
    );
    let users_request = g
        .requests()
        .into_iter()
        .find(|r| r.path_and_query.starts_with("/v1.0/users?"))
        .expect("a /users request");
    assert!(
        users_request
            .path_and_query
            .contains(&format!("$select={want_select}")),
        "{}",
        users_request.path_and_query
    );
    assert_eq!(users_request.status, 200);

    let a = snapshot.users.iter().find(|u| u.id == adele).unwrap();
    assert_eq!(a.attrs.get(&ext("jobGroupTracker")), Some(&json!("E4")));
    assert_eq!(a.attrs.get(&ext("level")), Some(&json!(7)));
    assert_eq!(
        a.attrs.get(&ext("permanent_pensionable")),
        Some(&json!(true))
    );
    assert_eq!(a.attrs.get(&ext("skills")), Some(&json!(["SQL", "Rust"])));
    // Graph answers an unset extension with null; it reads as absent.
    let b = snapshot.users.iter().find(|u| u.id == alex).unwrap();
    assert!(
        !b.attrs.keys().any(|k| k.starts_with("extension_")),
        "{:?}",
        b.attrs
    );
}

#[tokio::test]
async fn a_single_user_get_and_a_delta_round_read_the_extension_by_its_exact_name() {
    let (g, adele, _) = emulator().await;
    let graph = client(&g);
    let name = ext("jobGroupTracker");
    let u = graph
        .user(&adele, std::slice::from_ref(&name))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(u.str(&name), Some("E4"));
    assert_eq!(
        selects(&g).last().map(String::as_str),
        Some(format!("id,userPrincipalName,accountEnabled,{name}").as_str())
    );
    // A name differing only in case is another property: nothing is read under it.
    let lower = name.to_lowercase();
    let u = graph
        .user(&adele, std::slice::from_ref(&lower))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(u.attrs.get(&lower), None);

    // Delta: the first round reads everything, a change to the extension comes back in the next.
    let UserRead::Full { watermark, .. } = graph.read_user_changes(&query(), None).await.unwrap()
    else {
        panic!("the first delta round is a full read")
    };
    let watermark = watermark.expect("a delta round leaves a watermark");
    g.update_user(&adele, json!({ext("jobGroupTracker"): "E5"}));
    let UserRead::Changes { upserts, .. } = graph
        .read_user_changes(&query(), Some(&watermark))
        .await
        .unwrap()
    else {
        panic!("expected changes")
    };
    let changed = upserts
        .iter()
        .find(|u| u.id == adele)
        .expect("adele changed");
    assert_eq!(changed.str(&name), Some("E5"));

    // `$batch` re-reads by id select it as well.
    let users = graph
        .read_users_by_id(std::slice::from_ref(&adele), &query())
        .await
        .unwrap();
    assert_eq!(users[0].str(&name), Some("E5"));
    assert_eq!(
        users[0].attrs.get(&ext("skills")),
        Some(&json!(["SQL", "Rust"]))
    );
}
