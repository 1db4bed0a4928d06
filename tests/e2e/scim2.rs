//! The binary against the Graph emulator and the real `scim2-server` (PyPI): a strict,
//! independent SCIM implementation that did not grow up with our client.

use crate::support::*;
use serde_json::json;

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_lifecycle_against_scim2_server() {
    lifecycle_flow(&Scim2Server::start()).await;
}

/// A user's whole life in the `rfc` dialect on a real SCIM server (scim2-server here, SCIMMY in
/// `scimmy.rs`): created, left alone, one attribute updated, a work email added, disabled,
/// enabled, deleted.
pub async fn lifecycle_flow(server: &impl RealScim) {
    let graph = tenant(25).await;
    let job = write_job(&graph, server.base(), server.token(), JobOptions::default());

    // Initial cycle: every enabled user is created, with the enterprise extension.
    let report = run_once(&job);
    let expected = enabled_upns(&graph);
    assert_eq!(tally(&report, "failed"), 0, "{report}");
    assert_eq!(server.user_count(), expected.len() as u64);
    let id = user_id(&graph, 0);
    let upn = upn_of(&graph, &id);
    let src = graph
        .users()
        .into_iter()
        .find(|u| u["id"] == id.as_str())
        .unwrap();
    let u = server.user(&upn).expect("created");
    assert_eq!(u["active"], json!(true));
    assert_eq!(u["displayName"], src["displayName"]);
    if let Some(dept) = src["department"].as_str() {
        assert_eq!(u[ENTERPRISE]["department"], dept);
    }

    // No change: nothing is sent, so nothing changes on the server.
    let report = run_once(&job);
    let writes: u64 = ["created", "updated", "disabled", "deleted"]
        .iter()
        .map(|k| tally(&report, k))
        .sum();
    assert_eq!(writes, 0, "{report}");
    assert_eq!(
        server.user(&upn).unwrap()["meta"]["version"],
        u["meta"]["version"]
    );

    // One attribute changed → one PATCH the strict server accepts.
    graph.update_user(
        &id,
        json!({"jobTitle": "Staff Engineer", "department": "Research"}),
    );
    let report = run_once(&job);
    assert_eq!(tally(&report, "updated"), 1, "{report}");
    let u = server.user(&upn).unwrap();
    assert_eq!(u["title"], "Staff Engineer");
    assert_eq!(u[ENTERPRISE]["department"], "Research");

    // A work email that was never sent is added (scim2-server rejects a replace there).
    let other = user_id(&graph, 1);
    let other_upn = upn_of(&graph, &other);
    graph.update_user(&other, json!({"mail": null}));
    // (clearing never clears the target; set a fresh address on a user without one instead)
    let new_id = graph.add_user(
        json!({"userPrincipalName": "no.mail@contoso.onmicrosoft.com",
        "displayName": "No Mail", "accountEnabled": true, "mailNickname": "no.mail"}),
    );
    run_once(&job);
    assert!(
        server
            .user("no.mail@contoso.onmicrosoft.com")
            .unwrap()
            .get("emails")
            .is_none()
    );
    graph.update_user(&new_id, json!({"mail": "no.mail@contoso.com"}));
    let report = run_once(&job);
    assert_eq!(tally(&report, "failed"), 0, "{report}");
    let emails = server.user("no.mail@contoso.onmicrosoft.com").unwrap()["emails"].clone();
    assert_eq!(emails[0]["value"], "no.mail@contoso.com");
    assert_eq!(emails[0]["type"], "work");
    assert!(
        server.user(&other_upn).unwrap()["emails"].is_array(),
        "a cleared source value is kept"
    );

    // Disabled at the source → active false on the server.
    graph.disable_user(&id);
    assert_eq!(tally(&run_once(&job), "disabled"), 1);
    assert_eq!(server.user(&upn).unwrap()["active"], json!(false));
    graph.enable_user(&id);
    run_once(&job);
    assert_eq!(server.user(&upn).unwrap()["active"], json!(true));

    // Hard-deleted at the source → DELETE.
    graph.hard_delete_user(&new_id);
    assert_eq!(tally(&run_once(&job), "deleted"), 1);
    assert!(server.user("no.mail@contoso.onmicrosoft.com").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_created_by_hand_in_scim2_server_is_matched() {
    let graph = tenant(6).await;
    let server = Scim2Server::start();
    let id = user_id(&graph, 0);
    let upn = upn_of(&graph, &id);
    server.post(
        "/Users",
        &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": upn.to_uppercase(), "title": "by hand"}),
    );
    let job = write_job(&graph, &server.base, &server.token, JobOptions::default());
    let report = run_once(&job);
    assert_eq!(tally(&report, "failed"), 0, "{report}");
    assert_eq!(
        server.user_count(),
        enabled_upns(&graph).len() as u64,
        "matched, not duplicated"
    );
    let u = server.user(&upn).unwrap();
    let src = graph
        .users()
        .into_iter()
        .find(|u| u["id"] == id.as_str())
        .unwrap();
    assert_eq!(
        u["title"], src["jobTitle"],
        "the matched user was brought up to date"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_against_scim2_server_sends_nothing() {
    let graph = tenant(6).await;
    let server = Scim2Server::start();
    let job = write_job(&graph, &server.base, &server.token, JobOptions::default());
    let planned = preview_json(&job);
    assert_eq!(
        planned["tally"]["created"].as_u64(),
        Some(enabled_upns(&graph).len() as u64)
    );
    assert_eq!(server.user_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_connection_against_scim2_server() {
    let graph = tenant(2).await;
    let server = Scim2Server::start();
    let job = write_job(&graph, &server.base, &server.token, JobOptions::default());
    let out = scimsync(&["test-connection", "--config", job.config.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
}

/// Entra's default user mapping for a custom SCIM app, expressions included, against the
/// strict server.
const ENTRA_DEFAULT: &str = r#"
[[users.mappings]]
target = "userName"
source = "userPrincipalName"
matching = 1

[[users.mappings]]
target = "active"
expression = 'Switch([IsSoftDeleted], , "False", "True", "True", "False")'

[[users.mappings]]
target = "displayName"
source = "displayName"

[[users.mappings]]
target = "title"
source = "jobTitle"

[[users.mappings]]
target = 'emails[type eq "work"].value'
source = "mail"

[[users.mappings]]
target = "preferredLanguage"
source = "preferredLanguage"

[[users.mappings]]
target = "name.givenName"
source = "givenName"

[[users.mappings]]
target = "name.familyName"
source = "surname"

[[users.mappings]]
target = "name.formatted"
expression = 'Join(" ", [givenName], [surname])'

[[users.mappings]]
target = 'addresses[type eq "work"].locality'
source = "city"

[[users.mappings]]
target = 'addresses[type eq "work"].country'
source = "country"

[[users.mappings]]
target = 'phoneNumbers[type eq "mobile"].value'
source = "mobile"

[[users.mappings]]
target = "externalId"
source = "mailNickname"

[[users.mappings]]
target = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber"
source = "employeeId"

[[users.mappings]]
target = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"
source = "department"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entra_default_mapping_with_expressions_against_scim2_server() {
    let graph = tenant(12).await;
    let server = Scim2Server::start();
    let job = write_job(
        &graph,
        &server.base,
        &server.token,
        JobOptions {
            mappings: ENTRA_DEFAULT,
            ..Default::default()
        },
    );
    let report = run_once(&job);
    assert_eq!(tally(&report, "failed"), 0, "{report}");
    for src in graph
        .users()
        .into_iter()
        .filter(|u| u["accountEnabled"] == json!(true))
    {
        let upn = src["userPrincipalName"].as_str().unwrap();
        let u = server.user(upn).expect("provisioned");
        assert_eq!(
            u["active"],
            json!(true),
            "Switch([IsSoftDeleted]…) gives a real boolean"
        );
        let formatted = [src["givenName"].as_str(), src["surname"].as_str()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(u["name"]["formatted"], formatted.as_str());
        assert_eq!(u["name"]["familyName"], src["surname"]);
        assert_eq!(u["externalId"], src["mailNickname"]);
        if let Some(city) = src["city"].as_str() {
            assert_eq!(u["addresses"][0]["locality"], city);
            assert_eq!(u["addresses"][0]["type"], "work");
        }
        if let Some(mobile) = src["mobilePhone"].as_str() {
            assert_eq!(u["phoneNumbers"][0]["value"], mobile);
        }
        if let Some(n) = src["employeeId"].as_str() {
            assert_eq!(u[ENTERPRISE]["employeeNumber"], n);
        }
    }
    // Disable and re-enable through the mapping-owned `active`.
    let id = user_id(&graph, 0);
    let upn = upn_of(&graph, &id);
    graph.disable_user(&id);
    run_once(&job);
    assert_eq!(server.user(&upn).unwrap()["active"], json!(false));
    graph.enable_user(&id);
    let report = run_once(&job);
    assert_eq!(tally(&report, "failed"), 0, "{report}");
    assert_eq!(server.user(&upn).unwrap()["active"], json!(true));
    // A surname change flows into name.formatted too: one PATCH, both attributes.
    graph.update_user(&id, json!({"surname": "Newname"}));
    run_once(&job);
    let u = server.user(&upn).unwrap();
    assert_eq!(u["name"]["familyName"], "Newname");
    assert!(
        u["name"]["formatted"]
            .as_str()
            .unwrap()
            .ends_with("Newname")
    );
}
