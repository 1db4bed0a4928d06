//! `GraphClient::check_access` (test-connection's source side) against the Graph emulator: one
//! small request per step, 404 and 403 told apart, the missing permission named.

use scimsync_core::Secret;
use scimsync_graph::{AccessCheck, GraphClient, GraphConfig};
use scimsync_testkit::graph::{GraphEmulator, Tenant};
use std::time::Duration;

async fn emulator() -> GraphEmulator {
    GraphEmulator::start(Tenant::generate("contoso.onmicrosoft.com", 3, 1, 7))
        .await
        .unwrap()
}

fn client(g: &GraphEmulator, secret: &str) -> GraphClient {
    let cfg = GraphConfig {
        graph_url: g.url(),
        login_url: g.url(),
        ..GraphConfig::new(g.tenant_id(), g.client_id(), Secret::inline(secret))
    };
    GraphClient::with_retry_base(cfg, Duration::from_millis(5)).unwrap()
}

/// (step, Ok / missing permission / "failed" / "skipped") for every step.
fn summary(checks: &[AccessCheck]) -> Vec<(&'static str, String)> {
    checks
        .iter()
        .map(|c| {
            let s = match &c.outcome {
                Some(Ok(_)) => "ok".to_string(),
                Some(Err(f)) => match f.missing_permission {
                    Some(p) => format!("403 {p}"),
                    None => "failed".to_string(),
                },
                None => "skipped".to_string(),
            };
            (c.what, s)
        })
        .collect()
}

#[tokio::test]
async fn everything_readable() {
    let g = emulator().await;
    let checks = client(&g, g.client_secret())
        .check_access(Some(g.service_principal_id()))
        .await;
    assert_eq!(
        summary(&checks),
        vec![
            ("token", "ok".into()),
            ("service principal", "ok".into()),
            ("users", "ok".into()),
            ("groups", "ok".into()),
            ("assignments", "ok".into()),
        ]
    );
    // Token + four reads.
    assert_eq!(g.requests().len(), 5, "{:?}", g.requests());
}

#[tokio::test]
async fn a_wrong_secret_stops_at_the_token() {
    let g = emulator().await;
    let checks = client(&g, "wrong")
        .check_access(Some(g.service_principal_id()))
        .await;
    let s = summary(&checks);
    assert_eq!(s[0], ("token", "failed".into()));
    assert!(s[1..].iter().all(|(_, v)| v == "skipped"), "{s:?}");
}

#[tokio::test]
async fn an_unknown_service_principal_is_not_a_permission_problem() {
    let g = emulator().await;
    g.set_service_principal_missing(true);
    let checks = client(&g, g.client_secret())
        .check_access(Some(g.service_principal_id()))
        .await;
    assert_eq!(
        summary(&checks)[1..],
        [
            ("service principal", "failed".into()),
            ("users", "ok".into()),
            ("groups", "ok".into()),
            ("assignments", "skipped".into()),
        ]
    );
    let Some(Err(f)) = &checks[1].outcome else {
        panic!("{checks:?}")
    };
    assert!(f.summary.contains("does not exist"), "{f}");
}

#[tokio::test]
async fn each_denied_read_names_its_permission() {
    let g = emulator().await;
    g.deny_users();
    let c = client(&g, g.client_secret());
    let s = summary(&c.check_access(Some(g.service_principal_id())).await);
    assert_eq!(s[2], ("users", "403 User.Read.All".into()));
    assert_eq!(s[3], ("groups", "ok".into()));

    g.grant_permission("User.Read.All");
    g.deny_groups();
    let s = summary(&c.check_access(Some(g.service_principal_id())).await);
    assert_eq!(s[2], ("users", "ok".into()));
    assert_eq!(
        s[3],
        (
            "groups",
            "403 GroupMember.Read.All (or Group.Read.All)".into()
        )
    );

    g.grant_permission("Group.Read.All"); // the broader one is enough
    g.deny_service_principals();
    let s = summary(&c.check_access(Some(g.service_principal_id())).await);
    assert_eq!(s[3], ("groups", "ok".into()));
    assert_eq!(
        s[1],
        ("service principal", "403 Application.Read.All".into())
    );
    assert_eq!(s[4], ("assignments", "skipped".into()));
}

#[tokio::test]
async fn without_a_service_principal_id_only_users_and_groups_are_read() {
    let g = emulator().await;
    let checks = client(&g, g.client_secret()).check_access(None).await;
    assert_eq!(
        summary(&checks)[1..],
        [
            ("service principal", "skipped".into()),
            ("users", "ok".into()),
            ("groups", "ok".into()),
            ("assignments", "skipped".into()),
        ]
    );
}
