//! Group provisioning against a mock SCIM server: the exact bodies Entra's two dialects send
//! (reference §1.6–1.7), both member removal forms, status mapping and tolerated oddities.

use scimsync_core::{Attrs, Change, ChangeOp, ErrorCode, Secret, Target};
use scimsync_scim::{
    CORE_GROUP_SCHEMA, Dialect, ENTERPRISE_USER_SCHEMA, LIST_RESPONSE_SCHEMA, ManagerFormat,
    MemberRemoval, PATCH_OP_SCHEMA, PlannedRequest, ScimClient, ScimClientConfig, flatten_group,
    group_resource, group_resource_with,
};
use serde_json::{Value, json};
use std::time::Duration;
use wiremock::matchers::{body_json, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const TOKEN: &str = "group-test-token";
const KLAXOON: &str = "urn:ietf:params:scim:schemas:extension:klaxoon:2.0:Group";

fn config(server: &MockServer, dialect: Dialect) -> ScimClientConfig {
    let mut cfg = ScimClientConfig::new(format!("{}/scim/v2", server.uri()), Secret::inline(TOKEN));
    cfg.dialect = dialect;
    cfg.retry_base_delay = Duration::from_millis(5);
    cfg
}

fn client(server: &MockServer, dialect: Dialect) -> ScimClient {
    ScimClient::new(config(server, dialect)).unwrap()
}

fn attrs(pairs: &[(&str, Value)]) -> Attrs {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn klaxoon_group() -> Attrs {
    attrs(&[
        ("displayName", json!("Sales")),
        ("externalId", json!("8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159")),
        (&format!("{KLAXOON}:license"), json!("true")),
    ])
}

fn ids(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn patch(ops: Value) -> Value {
    json!({"schemas": [PATCH_OP_SCHEMA], "Operations": ops})
}

fn list(resources: Vec<Value>) -> Value {
    json!({"schemas": [LIST_RESPONSE_SCHEMA], "totalResults": resources.len(), "Resources": resources})
}

/// Mounts a PATCH on `/Groups/g1` that must carry exactly `body`, answering 204.
async fn expect_patch(server: &MockServer, body: Value) {
    Mock::given(method("PATCH"))
        .and(path("/scim/v2/Groups/g1"))
        .and(body_json(body))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(server)
        .await;
}

#[test]
fn group_resource_round_trips_with_the_klaxoon_extension() {
    let a = klaxoon_group();
    let body = group_resource(&a);
    assert_eq!(
        body,
        json!({
            "schemas": [CORE_GROUP_SCHEMA, KLAXOON],
            "displayName": "Sales",
            "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
            (KLAXOON): {"license": "true"},
        })
    );
    let mut served = body.clone();
    served["id"] = json!("g1");
    served["meta"] = json!({"resourceType": "Group"});
    served["members"] = json!([{"value": "u1", "type": "User"}]);
    let (id, back) = flatten_group(&served);
    assert_eq!(id, "g1");
    assert_eq!(back, a);
    // Entra's own form leaves the custom URN out of `schemas`.
    assert_eq!(
        group_resource_with(&a, false)["schemas"],
        json!([CORE_GROUP_SCHEMA])
    );
}

#[test]
fn groups_are_created_empty_whatever_the_attributes_say() {
    let mut a = klaxoon_group();
    a.insert("members".into(), json!([{"value": "u1"}]));
    a.insert(r#"members[value eq "u2"].value"#.into(), json!("u2"));
    let body = group_resource(&a);
    assert!(body.get("members").is_none(), "{body}");
    assert!(!body.to_string().contains("u2"));
}

#[tokio::test]
async fn find_groups_excludes_members_and_escapes_the_filter() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/scim/v2/Groups"))
        .and(query_param("filter", r#"displayName eq "R&D \"core\"""#))
        .and(query_param("excludedAttributes", "members"))
        .respond_with(ResponseTemplate::new(200).set_body_json(list(vec![json!({
            "schemas": [CORE_GROUP_SCHEMA], "id": "g1", "displayName": "R&D \"core\"",
            "meta": {"resourceType": "Group"},
        })])))
        .expect(1)
        .mount(&server)
        .await;
    let found = client(&server, Dialect::Rfc)
        .find_groups("displayName", "R&D \"core\"")
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, "g1");
    assert_eq!(found[0].attrs["displayName"], json!("R&D \"core\""));
    assert_eq!(
        PlannedRequest::find_groups("externalId", "x-1").path,
        "/Groups?filter=externalId+eq+%22x-1%22&excludedAttributes=members"
    );
}

#[tokio::test]
async fn members_returned_anyway_are_ignored() {
    let server = MockServer::start().await;
    let group =
        json!({"id": "g1", "displayName": "Big", "members": [{"value": "u1"}, {"value": "u2"}]});
    Mock::given(method("GET"))
        .and(path("/scim/v2/Groups"))
        .respond_with(ResponseTemplate::new(200).set_body_json(list(vec![group.clone(), group])))
        .mount(&server)
        .await;
    let found = client(&server, Dialect::Rfc)
        .find_groups("displayName", "Big")
        .await
        .unwrap();
    // Both hits handed back (the engine decides about duplicates), members dropped.
    assert_eq!(found.len(), 2);
    assert_eq!(found[0].attrs, attrs(&[("displayName", json!("Big"))]));
}

#[tokio::test]
async fn create_group_posts_an_empty_group_and_returns_its_id() {
    for dialect in [Dialect::Rfc, Dialect::EntraDefault] {
        let server = MockServer::start().await;
        let mut created = group_resource(&klaxoon_group());
        created["id"] = json!("g-new");
        created["members"] = json!([]);
        Mock::given(method("POST"))
            .and(path("/scim/v2/Groups"))
            .and(body_json(group_resource(&klaxoon_group())))
            .respond_with(ResponseTemplate::new(201).set_body_json(&created))
            .expect(1)
            .mount(&server)
            .await;
        let g = client(&server, dialect)
            .create_group(&klaxoon_group())
            .await
            .unwrap();
        assert_eq!(g.id, "g-new");
        assert_eq!(g.attrs, klaxoon_group());
    }
}

#[tokio::test]
async fn create_group_conflict_and_missing_id() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/scim/v2/Groups"))
        .respond_with(ResponseTemplate::new(409).set_body_json(
            json!({"status": "409", "scimType": "uniqueness", "detail": "displayName taken"}),
        ))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/scim/v2/Groups"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"displayName": "Sales"})))
        .mount(&server)
        .await;
    let c = client(&server, Dialect::Rfc);
    let err = c.create_group(&klaxoon_group()).await.unwrap_err();
    assert!(err.is_conflict());
    assert_eq!(err.scim_type.as_deref(), Some("uniqueness"));
    let err = c.create_group(&klaxoon_group()).await.unwrap_err();
    assert_eq!(
        err.code,
        ErrorCode::SystemForCrossDomainIdentityManagementServiceIncompatible
    );
}

#[tokio::test]
async fn rename_is_one_op_in_each_dialect() {
    let rename = [Change {
        op: ChangeOp::Replace,
        path: "displayName".into(),
        value: json!("Sales EMEA"),
    }];
    let server = MockServer::start().await;
    expect_patch(
        &server,
        patch(json!([{"op": "replace", "path": "displayName", "value": "Sales EMEA"}])),
    )
    .await;
    client(&server, Dialect::Rfc)
        .update_group("g1", &rename)
        .await
        .unwrap();

    let server = MockServer::start().await;
    // 200 with a body is as good as 204.
    Mock::given(method("PATCH"))
        .and(path("/scim/v2/Groups/g1"))
        .and(body_json(patch(
            json!([{"op": "Replace", "path": "displayName", "value": "Sales EMEA"}]),
        )))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": "g1", "displayName": "x"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    client(&server, Dialect::EntraDefault)
        .update_group("g1", &rename)
        .await
        .unwrap();
}

#[tokio::test]
async fn extension_attribute_update_and_members_changes_are_refused() {
    let server = MockServer::start().await;
    let license = format!("{KLAXOON}:license");
    expect_patch(
        &server,
        patch(json!([{"op": "Add", "path": license, "value": "false"}])),
    )
    .await;
    let c = client(&server, Dialect::EntraDefault);
    c.update_group(
        "g1",
        &[Change {
            op: ChangeOp::Add,
            path: license.clone(),
            value: json!("false"),
        }],
    )
    .await
    .unwrap();
    let err = c
        .update_group(
            "g1",
            &[Change {
                op: ChangeOp::Replace,
                path: "members".into(),
                value: json!([{"value": "u1"}]),
            }],
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::ConfigInvalid);
}

#[tokio::test]
async fn add_members_is_one_patch_in_each_dialect() {
    let server = MockServer::start().await;
    expect_patch(
        &server,
        patch(
            json!([{"op": "add", "path": "members", "value": [{"value": "u1"}, {"value": "u2"}]}]),
        ),
    )
    .await;
    client(&server, Dialect::Rfc)
        .add_members("g1", &ids(&["u1", "u2"]))
        .await
        .unwrap();

    let server = MockServer::start().await;
    expect_patch(
        &server,
        patch(json!([{"op": "Add", "path": "members", "value": [{"$ref": null, "value": "f648f8d5ea4e4cd38e9c"}]}])),
    )
    .await;
    client(&server, Dialect::EntraDefault)
        .add_members("g1", &ids(&["f648f8d5ea4e4cd38e9c"]))
        .await
        .unwrap();
}

#[tokio::test]
async fn remove_members_default_form_follows_the_dialect() {
    let server = MockServer::start().await;
    expect_patch(
        &server,
        patch(json!([
            {"op": "remove", "path": "members[value eq \"u1\"]"},
            {"op": "remove", "path": "members[value eq \"u2\"]"},
        ])),
    )
    .await;
    let c = client(&server, Dialect::Rfc);
    assert_eq!(c.member_removal(), MemberRemoval::Filter);
    c.remove_members("g1", &ids(&["u1", "u2"])).await.unwrap();

    let server = MockServer::start().await;
    expect_patch(
        &server,
        patch(json!([{"op": "Remove", "path": "members", "value": [{"$ref": null, "value": "u1091"}]}])),
    )
    .await;
    let c = client(&server, Dialect::EntraDefault);
    assert_eq!(c.member_removal(), MemberRemoval::ValueList);
    c.remove_members("g1", &ids(&["u1091"])).await.unwrap();
}

#[tokio::test]
async fn remove_members_form_can_be_overridden() {
    let server = MockServer::start().await;
    expect_patch(
        &server,
        patch(json!([{"op": "remove", "path": "members", "value": [{"value": "u1"}, {"value": "u2"}]}])),
    )
    .await;
    let mut cfg = config(&server, Dialect::Rfc);
    cfg.member_removal = Some(MemberRemoval::ValueList);
    ScimClient::new(cfg)
        .unwrap()
        .remove_members("g1", &ids(&["u1", "u2"]))
        .await
        .unwrap();

    let server = MockServer::start().await;
    expect_patch(
        &server,
        patch(json!([{"op": "Remove", "path": "members[value eq \"u1\"]"}])),
    )
    .await;
    let mut cfg = config(&server, Dialect::EntraDefault);
    cfg.member_removal = Some(MemberRemoval::Filter);
    ScimClient::new(cfg)
        .unwrap()
        .remove_members("g1", &ids(&["u1"]))
        .await
        .unwrap();
}

#[tokio::test]
async fn empty_member_lists_send_nothing() {
    let server = MockServer::start().await;
    let c = client(&server, Dialect::Rfc);
    c.add_members("g1", &[]).await.unwrap();
    c.remove_members("g1", &[]).await.unwrap();
    c.update_group("g1", &[]).await.unwrap();
    assert_eq!(c.requests_sent(), 0);
}

#[tokio::test]
async fn group_members_reads_ids_and_a_gone_group_is_an_invalid_anchor() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/scim/v2/Groups/g1"))
        .and(query_param("attributes", "members"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "g1",
            "members": [{"value": "u1", "type": "User"}, {"value": "g2", "type": "Group"}, {"display": "no id"}],
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/scim/v2/Groups/g2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "g2"})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/scim/v2/Groups/gone"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    let c = client(&server, Dialect::Rfc);
    assert_eq!(c.group_members("g1").await.unwrap(), ids(&["u1", "g2"]));
    assert!(c.group_members("g2").await.unwrap().is_empty());
    assert_eq!(
        c.group_members("gone").await.unwrap_err().code,
        ErrorCode::InvalidAnchor
    );
}

#[tokio::test]
async fn delete_group_and_404_on_group_ops() {
    let server = MockServer::start().await;
    Mock::given(method("DELETE"))
        .and(path("/scim/v2/Groups/g1"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/scim/v2/Groups/gone"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/scim/v2/Groups/gone"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/scim/v2/Groups"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    let c = client(&server, Dialect::Rfc);
    c.delete_group("g1").await.unwrap();
    assert_eq!(
        c.delete_group("gone").await.unwrap_err().code,
        ErrorCode::InvalidAnchor
    );
    assert_eq!(
        c.add_members("gone", &ids(&["u1"])).await.unwrap_err().code,
        ErrorCode::InvalidAnchor
    );
    // A filtered miss must be an empty list, for groups as for users.
    assert_eq!(
        c.find_groups("displayName", "x").await.unwrap_err().code,
        ErrorCode::ScimComplianceIssue
    );
}

#[tokio::test]
async fn throttled_member_patch_is_retried_with_the_same_body() {
    let server = MockServer::start().await;
    Mock::given(method("PATCH"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "0"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    let c = client(&server, Dialect::Rfc);
    c.add_members("g1", &ids(&["u1"])).await.unwrap();
    let bodies: Vec<Value> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r: &Request| r.body_json().unwrap())
        .collect();
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[0], bodies[1]);
}

#[test]
fn client_plans_match_what_the_planned_request_constructors_build() {
    let cfg = ScimClientConfig::new("http://127.0.0.1:9/scim", Secret::inline("t"));
    let c = ScimClient::new(cfg).unwrap();
    let members = ids(&["u1"]);
    assert_eq!(
        c.plan_remove_members("g/1", &members),
        PlannedRequest::remove_members("g/1", &members, Dialect::Rfc, MemberRemoval::Filter)
    );
    assert_eq!(
        PlannedRequest::remove_members("g/1", &members, Dialect::Rfc, MemberRemoval::Filter).path,
        "/Groups/g%2F1"
    );
    assert_eq!(
        c.plan_add_members("g1", &members),
        PlannedRequest::add_members("g1", &members, Dialect::Rfc)
    );
    assert_eq!(
        c.plan_create_group(&klaxoon_group()),
        PlannedRequest::create_group(&klaxoon_group(), true)
    );
    assert_eq!(PlannedRequest::delete_group("g1").method, "DELETE");
    assert_eq!(
        PlannedRequest::group_members("g1").path,
        "/Groups/g1?attributes=members"
    );
}

#[tokio::test]
async fn manager_format_string_is_sent_bare_in_post_and_patch() {
    let manager = format!("{ENTERPRISE_USER_SCHEMA}:manager");
    let user = attrs(&[("userName", json!("u")), (&manager, json!("m-1"))]);
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/scim/v2/Users"))
        .and(body_json(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE_USER_SCHEMA],
            "userName": "u",
            (ENTERPRISE_USER_SCHEMA): {"manager": "m-1"},
        })))
        .respond_with(ResponseTemplate::new(201).set_body_json(
            json!({"id": "u1", "userName": "u", (ENTERPRISE_USER_SCHEMA): {"manager": "m-1"}}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/scim/v2/Users/u1"))
        .and(body_json(patch(
            json!([{"op": "Replace", "path": manager, "value": "m-2"}]),
        )))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let mut cfg = config(&server, Dialect::EntraDefault);
    cfg.manager_format = ManagerFormat::String;
    let c = ScimClient::new(cfg).unwrap();
    let created = c.create_user(&user).await.unwrap();
    assert_eq!(created.attrs[&manager], json!("m-1"));
    c.update_user(
        "u1",
        &[Change {
            op: ChangeOp::Replace,
            path: manager.clone(),
            value: json!("m-2"),
        }],
    )
    .await
    .unwrap();
    // The default stays the RFC complex form.
    assert_eq!(
        ScimClient::new(config(&server, Dialect::Rfc))
            .unwrap()
            .plan_create(&user)
            .body
            .unwrap()[ENTERPRISE_USER_SCHEMA]["manager"],
        json!({"value": "m-1"})
    );
}
