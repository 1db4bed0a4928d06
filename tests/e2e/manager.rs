//! `manager` end to end (issue 13 §3): the binary reads it from the Graph emulator and writes it
//! to scim2-server as the manager's SCIM id in a pass after the users, a manager that is
//! provisioned only later resolves the waiting reference at that later cycle (without the
//! report changing in Graph), a changed manager is replaced, and an unchanged tenant sends
//! nothing.

use crate::support::*;
use serde_json::{Value, json};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn mappings() -> String {
    format!(
        "{DEFAULT_MAPPINGS}
[[users.mappings]]
target = \"{ENTERPRISE}:manager\"
source = \"manager\"
"
    )
}

fn manager_value(server: &Scim2Server, upn: &str) -> Option<Value> {
    let u = server.user(upn).expect("provisioned");
    u.get(ENTERPRISE)?.get("manager")?.get("value").cloned()
}

fn scim_id(server: &Scim2Server, upn: &str) -> Value {
    server.user(upn).expect("provisioned")["id"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manager_is_a_reference_resolved_after_the_users_against_scim2_server() {
    // The generated tenant gives most users their department head as manager.
    let graph = tenant(12).await;
    let boss = graph.add_user(json!({
        "userPrincipalName": "late.boss@contoso.onmicrosoft.com",
        "displayName": "Late Boss",
        "accountEnabled": false,
    }));
    let report = graph.add_user(json!({
        "userPrincipalName": "report@contoso.onmicrosoft.com",
        "displayName": "Report",
        "accountEnabled": true,
    }));
    graph.set_manager(&report, Some(&boss));
    let server = Scim2Server::start();
    let m = mappings();
    let job = write_job(
        &graph,
        &server.base,
        &server.token,
        JobOptions {
            mappings: &m,
            ..Default::default()
        },
    );

    // 1. Initial cycle: every user with a provisioned manager points at the manager's SCIM id.
    let first = run_once(&job);
    assert_eq!(tally(&first, "failed"), 0, "{first}");
    let users = graph.users();
    let upn_of_id = |id: &str| {
        users
            .iter()
            .find(|u| u["id"] == id)
            .and_then(|u| u["userPrincipalName"].as_str())
            .map(str::to_string)
    };
    let mut checked = 0;
    for u in users.iter().filter(|u| u["accountEnabled"] == json!(true)) {
        let upn = u["userPrincipalName"].as_str().unwrap();
        let Some(mgr) = u["managerId"].as_str() else {
            assert_eq!(manager_value(&server, upn), None, "{upn} has no manager");
            continue;
        };
        let mgr_upn = upn_of_id(mgr).unwrap();
        let mgr_enabled = users
            .iter()
            .any(|x| x["id"] == mgr && x["accountEnabled"] == json!(true));
        if mgr_enabled {
            assert_eq!(
                manager_value(&server, upn),
                Some(scim_id(&server, &mgr_upn)),
                "{upn}'s manager"
            );
            checked += 1;
        } else {
            assert_eq!(
                manager_value(&server, upn),
                None,
                "{upn}: manager not provisioned"
            );
        }
    }
    assert!(
        checked >= 3,
        "the tenant should give several users a manager"
    );
    assert!(tally(&first, "references_set") >= checked as u64, "{first}");
    // The report's manager is disabled, so never created: the reference waits.
    assert_eq!(
        manager_value(&server, "report@contoso.onmicrosoft.com"),
        None
    );
    assert!(tally(&first, "references_pending") >= 1, "{first}");

    // 2. The boss is enabled: only the boss changes in Graph, and the waiting reference of the
    //    report resolves in the same (incremental) cycle.
    graph.enable_user(&boss);
    let second = run_once(&job);
    assert_eq!(tally(&second, "failed"), 0, "{second}");
    assert_eq!(tally(&second, "created"), 1, "{second}");
    assert_eq!(
        manager_value(&server, "report@contoso.onmicrosoft.com"),
        Some(scim_id(&server, "late.boss@contoso.onmicrosoft.com"))
    );

    // 3. A new manager replaces the old one.
    let other = users
        .iter()
        .find(|u| u["accountEnabled"] == json!(true) && u["id"] != report)
        .unwrap();
    let other_upn = other["userPrincipalName"].as_str().unwrap().to_string();
    graph.set_manager(&report, other["id"].as_str());
    let third = run_once(&job);
    assert_eq!(tally(&third, "failed"), 0, "{third}");
    assert_eq!(
        manager_value(&server, "report@contoso.onmicrosoft.com"),
        Some(scim_id(&server, &other_upn))
    );

    // 4. Nothing changed: nothing sent.
    let fourth = run_once(&job);
    for key in ["created", "updated", "references_set", "failed"] {
        assert_eq!(tally(&fourth, key), 0, "{key}: {fourth}");
    }
}
