//! `test-connection` checks the source as Entra's Test Connection checks credentials: a token,
//! the service principal, and that users, groups and app role assignments can be read — each a
//! distinct failure naming what is wrong (issue 13 §3 (b)).

use crate::support::*;
use scimsync_testkit::graph::GraphEmulator;
use scimsync_testkit::scim::{ScimTarget, ScimTargetOptions};

async fn target() -> ScimTarget {
    ScimTarget::start(ScimTargetOptions::default())
        .await
        .expect("scim target")
}

/// Runs `test-connection` on a fresh job; (exit code, output, Graph requests after the token).
async fn test_connection(graph: &GraphEmulator) -> (Option<i32>, String, Vec<String>) {
    let t = target().await;
    let job = write_job(graph, &t.url(), t.token(), JobOptions::default());
    graph.clear_requests();
    let out = scimsync(&["test-connection", "--config", job.config.to_str().unwrap()]);
    let graph_reads = graph
        .requests()
        .into_iter()
        .filter(|r| r.path_and_query.starts_with("/v1.0/"))
        .map(|r| format!("{} {}", r.status, r.path_and_query))
        .collect();
    (out.status.code(), text(&out), graph_reads)
}

fn source_failures(s: &str) -> Vec<&str> {
    s.lines()
        .filter(|l| l.starts_with("source: FAILED"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_connection_checks_token_service_principal_users_groups_and_assignments() {
    let graph = tenant(3).await;
    let (code, s, reads) = test_connection(&graph).await;
    assert_eq!(code, Some(0), "{s}");
    for what in [
        "source: OK: token issued",
        &format!(
            "source: OK: service principal {} found",
            graph.service_principal_id()
        ),
        "source: OK: users can be read",
        "source: OK: groups can be read",
        "source: OK: app role assignments can be read",
        "target: OK",
    ] {
        assert!(s.contains(what), "{what:?} missing in:\n{s}");
    }
    // One small request each.
    let sp = graph.service_principal_id();
    assert_eq!(
        reads,
        vec![
            format!("200 /v1.0/servicePrincipals/{sp}?$select=id,appId,displayName"),
            "200 /v1.0/users?$select=id&$top=1".to_string(),
            "200 /v1.0/groups?$select=id&$top=1".to_string(),
            format!("200 /v1.0/servicePrincipals/{sp}/appRoleAssignedTo?$top=1"),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_connection_fails_for_an_unknown_service_principal() {
    let graph = tenant(3).await;
    graph.set_service_principal_missing(true);
    let (code, s, reads) = test_connection(&graph).await;
    assert_eq!(code, Some(1), "{s}");
    let failures = source_failures(&s);
    assert_eq!(failures.len(), 1, "{s}");
    assert!(
        failures[0].starts_with("source: FAILED: service principal: service principal")
            && failures[0].contains(graph.service_principal_id())
            && failures[0].contains("does not exist")
            && failures[0].contains("Request_ResourceNotFound"),
        "{s}"
    );
    assert!(!s.contains(".Read.All"), "no permission is blamed: {s}");
    assert!(
        s.contains("source: not checked: assignments"),
        "assignments of a missing service principal are not read: {s}"
    );
    assert!(
        !reads.iter().any(|r| r.contains("appRoleAssignedTo")),
        "{reads:?}"
    );
    assert!(s.contains("source: OK: users can be read"), "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_connection_fails_for_a_wrong_service_principal_id_in_the_job() {
    let graph = tenant(3).await;
    let t = target().await;
    let job = write_job(&graph, &t.url(), t.token(), JobOptions::default());
    let wrong = "00000000-1111-2222-3333-444444444444";
    let text_of = std::fs::read_to_string(&job.config).unwrap();
    assert!(text_of.contains(graph.service_principal_id()));
    std::fs::write(
        &job.config,
        text_of.replace(graph.service_principal_id(), wrong),
    )
    .unwrap();
    let out = scimsync(&["test-connection", "--config", job.config.to_str().unwrap()]);
    let s = text(&out);
    assert_eq!(out.status.code(), Some(1), "{s}");
    assert!(
        s.contains(&format!(
            "source: FAILED: service principal: service principal {wrong} does not exist"
        )),
        "{s}"
    );
    assert!(!s.contains("source: OK (token"), "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_connection_names_the_missing_user_permission() {
    let graph = tenant(3).await;
    graph.deny_users();
    let (code, s, _) = test_connection(&graph).await;
    assert_eq!(code, Some(1), "{s}");
    let failures = source_failures(&s);
    assert_eq!(failures.len(), 1, "{s}");
    assert!(
        failures[0].starts_with("source: FAILED: users: users cannot be read")
            && failures[0].contains("missing application permission User.Read.All")
            && failures[0].contains("Authorization_RequestDenied"),
        "{s}"
    );
    assert!(s.contains("source: OK: groups can be read"), "{s}");
    assert!(
        s.contains("source: OK: app role assignments can be read"),
        "{s}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_connection_names_the_missing_group_permission() {
    let graph = tenant(3).await;
    graph.deny_groups();
    let (code, s, _) = test_connection(&graph).await;
    assert_eq!(code, Some(1), "{s}");
    let failures = source_failures(&s);
    assert_eq!(failures.len(), 1, "{s}");
    assert!(
        failures[0].starts_with("source: FAILED: groups: groups cannot be read")
            && failures[0].contains(
                "missing application permission GroupMember.Read.All (or Group.Read.All)"
            ),
        "{s}"
    );
    assert!(!failures[0].contains("User.Read.All"), "{s}");
    assert!(s.contains("source: OK: users can be read"), "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_connection_names_the_missing_application_permission() {
    let graph = tenant(3).await;
    graph.deny_service_principals();
    let (code, s, reads) = test_connection(&graph).await;
    assert_eq!(code, Some(1), "{s}");
    let failures = source_failures(&s);
    assert_eq!(failures.len(), 1, "{s}");
    assert!(
        failures[0]
            .starts_with("source: FAILED: service principal: the service principal cannot be read")
            && failures[0].contains("missing application permission Application.Read.All"),
        "{s}"
    );
    assert!(!s.contains("does not exist"), "403 is not 404: {s}");
    assert!(s.contains("source: OK: users can be read"), "{s}");
    assert!(s.contains("source: OK: groups can be read"), "{s}");
    assert!(
        reads
            .iter()
            .any(|r| r.starts_with("403 /v1.0/servicePrincipals/")),
        "{reads:?}"
    );
}
