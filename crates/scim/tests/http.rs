//! The client against a mock SCIM server on loopback: headers, status mapping, retries,
//! Test Connection, concurrency limit.

use scimsync_core::{Attrs, Change, ChangeOp, ErrorCode, Secret, Target};
use scimsync_scim::{Dialect, LIST_RESPONSE_SCHEMA, ScimClient, ScimClientConfig, user_resource};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use wiremock::matchers::{bearer_token, body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "s3cr3t-token-value";

fn config(server: &MockServer) -> ScimClientConfig {
    let mut cfg = ScimClientConfig::new(format!("{}/scim/v2", server.uri()), Secret::inline(TOKEN));
    cfg.retry_base_delay = Duration::from_millis(5);
    cfg
}

fn client(server: &MockServer) -> ScimClient {
    ScimClient::new(config(server)).unwrap()
}

fn attrs() -> Attrs {
    [
        ("userName", json!("bjensen@example.com")),
        ("active", json!(true)),
        (
            r#"emails[type eq "work"].value"#,
            json!("bjensen@example.com"),
        ),
        ("name.givenName", json!("Barbara")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn list(resources: Vec<Value>) -> Value {
    json!({"schemas": [LIST_RESPONSE_SCHEMA], "totalResults": resources.len(), "Resources": resources, "startIndex": 1, "itemsPerPage": 20})
}

fn scim_error(status: u16, scim_type: Option<&str>, detail: &str) -> ResponseTemplate {
    let mut body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": status.to_string(), "detail": detail});
    if let Some(t) = scim_type {
        body["scimType"] = json!(t);
    }
    ResponseTemplate::new(status).set_body_raw(body.to_string(), "application/scim+json")
}

#[tokio::test]
async fn create_sends_entra_headers_and_returns_the_new_id() {
    let server = MockServer::start().await;
    let mut created = user_resource(&attrs());
    created["id"] = json!("2819c223-7f76-453a-919d-413861904646");
    Mock::given(method("POST"))
        .and(path("/scim/v2/Users"))
        .and(bearer_token(TOKEN))
        .and(header("content-type", "application/scim+json"))
        .and(header("accept", "application/scim+json"))
        .and(body_json(user_resource(&attrs())))
        .respond_with(ResponseTemplate::new(201).set_body_json(&created))
        .expect(1)
        .mount(&server)
        .await;
    let user = client(&server).create_user(&attrs()).await.unwrap();
    assert_eq!(user.id, "2819c223-7f76-453a-919d-413861904646");
    assert_eq!(user.attrs, attrs());
}

#[tokio::test]
async fn duplicate_create_is_a_conflict() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(scim_error(
            409,
            Some("uniqueness"),
            "userName is already taken",
        ))
        .mount(&server)
        .await;
    let err = client(&server).create_user(&attrs()).await.unwrap_err();
    assert!(err.is_conflict());
    assert_eq!(err.code, ErrorCode::EntryConflict);
    assert_eq!(err.scim_type.as_deref(), Some("uniqueness"));
    assert!(
        err.detail.contains("userName is already taken"),
        "{}",
        err.detail
    );
}

#[tokio::test]
async fn find_sends_an_escaped_filter_and_returns_every_hit() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/scim/v2/Users"))
        .and(query_param("filter", r#"userName eq "a\"b""#))
        .respond_with(ResponseTemplate::new(200).set_body_json(list(vec![
            json!({"id": "1", "userName": "a\"b"}),
            json!({"id": "2", "userName": "A\"B"}),
        ])))
        .mount(&server)
        .await;
    let users = client(&server)
        .find_users("userName", "a\"b")
        .await
        .unwrap();
    assert_eq!(
        users.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(),
        ["1", "2"]
    );
    assert_eq!(users[1].attrs["userName"], json!("A\"B"));
}

#[tokio::test]
async fn typed_path_lookup_uses_a_value_filter() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(query_param(
            "filter",
            r#"emails[type eq "work" and value eq "x@y.z"]"#,
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(list(vec![])))
        .expect(1)
        .mount(&server)
        .await;
    let users = client(&server)
        .find_users(r#"emails[type eq "work"].value"#, "x@y.z")
        .await
        .unwrap();
    assert!(users.is_empty());
}

#[tokio::test]
async fn filter_404_is_a_compliance_issue_not_a_miss() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(scim_error(404, None, "User not found"))
        .mount(&server)
        .await;
    let err = client(&server)
        .find_users("userName", "nobody")
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::ScimComplianceIssue);
    assert_eq!(err.status, Some(404));
}

#[tokio::test]
async fn filtered_answer_that_is_not_a_list_response_is_incompatible() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "1", "userName": "x"})))
        .mount(&server)
        .await;
    let err = client(&server)
        .find_users("userName", "x")
        .await
        .unwrap_err();
    assert_eq!(
        err.code,
        ErrorCode::SystemForCrossDomainIdentityManagementServiceIncompatible
    );
}

#[tokio::test]
async fn throttled_call_waits_for_retry_after_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(list(vec![json!({"id": "7"})])))
        .mount(&server)
        .await;
    let c = client(&server);
    let started = Instant::now();
    let users = c.find_users("userName", "x").await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(users[0].id, "7");
    assert_eq!(c.requests_sent(), 2);
}

#[tokio::test]
async fn exhausted_retries_return_the_last_error() {
    let server = MockServer::start().await;
    // A 503 with Retry-After: the target says it did not process the write, so it is resent.
    Mock::given(method("PATCH"))
        .respond_with(scim_error(503, None, "busy").insert_header("Retry-After", "0"))
        .mount(&server)
        .await;
    let mut cfg = config(&server);
    cfg.max_retries = 2;
    let c = ScimClient::new(cfg).unwrap();
    let err = c
        .update_user(
            "1",
            &[Change {
                op: ChangeOp::Replace,
                path: "title".into(),
                value: json!("x"),
            }],
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InternalServerError);
    assert_eq!(err.status, Some(503));
    assert_eq!(c.requests_sent(), 3);
}

#[tokio::test]
async fn unauthorized_and_numeric_status_error_bodies() {
    let server = MockServer::start().await;
    Mock::given(method("DELETE"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
            "status": 400, "scimType": "invalidValue", "detail": "emails.value is not an email"
        })))
        .mount(&server)
        .await;
    let c = client(&server);
    let err = c.delete_user("1").await.unwrap_err();
    assert_eq!(err.code, ErrorCode::Unauthorized);
    let err = c.create_user(&attrs()).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::SchemaViolation);
    assert_eq!(err.scim_type.as_deref(), Some("invalidValue"));
    assert!(
        err.detail.contains("emails.value is not an email"),
        "{}",
        err.detail
    );
}

#[tokio::test]
async fn patch_and_delete_by_id() {
    let server = MockServer::start().await;
    let changes = [Change {
        op: ChangeOp::Replace,
        path: "active".into(),
        value: json!(false),
    }];
    Mock::given(method("PATCH"))
        .and(path("/scim/v2/Users/abc"))
        .and(body_json(json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": false}]
        })))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/scim/v2/Users/with-body"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "with-body"})))
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/scim/v2/Users/abc"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/scim/v2/Users/gone"))
        .respond_with(scim_error(404, None, "Resource gone not found"))
        .mount(&server)
        .await;
    let c = client(&server);
    c.update_user("abc", &changes).await.unwrap();
    c.update_user("with-body", &changes).await.unwrap();
    c.delete_user("abc").await.unwrap();
    assert_eq!(
        c.delete_user("gone").await.unwrap_err().code,
        ErrorCode::InvalidAnchor
    );
}

#[tokio::test]
async fn entra_default_dialect_sends_strings_for_active() {
    let server = MockServer::start().await;
    Mock::given(method("PATCH"))
        .and(body_json(json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "Replace", "path": "active", "value": "False"}]
        })))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let mut cfg = config(&server);
    cfg.dialect = Dialect::EntraDefault;
    let changes = [Change {
        op: ChangeOp::Replace,
        path: "active".into(),
        value: json!(false),
    }];
    ScimClient::new(cfg)
        .unwrap()
        .update_user("1", &changes)
        .await
        .unwrap();
}

#[tokio::test]
async fn test_connection_probes_a_random_user_name() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/scim/v2/Users"))
        .respond_with(ResponseTemplate::new(200).set_body_json(list(vec![])))
        .expect(1)
        .mount(&server)
        .await;
    client(&server).test_connection().await.unwrap();
    let reqs = server.received_requests().await.unwrap();
    let filter = reqs[0]
        .url
        .query_pairs()
        .find(|(k, _)| k == "filter")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let probe = filter
        .strip_prefix("userName eq \"")
        .and_then(|s| s.strip_suffix('"'))
        .unwrap();
    assert!(uuid::Uuid::parse_str(probe).is_ok(), "{filter}");
}

#[tokio::test]
async fn test_connection_failures() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(404))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(scim_error(401, None, "bad token"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(list(vec![json!({"id": "1"})])))
        .mount(&server)
        .await;
    let c = client(&server);
    assert_eq!(
        c.test_connection().await.unwrap_err().code,
        ErrorCode::ScimComplianceIssue
    );
    assert_eq!(
        c.test_connection().await.unwrap_err().code,
        ErrorCode::Unauthorized
    );
    // A server that ignores `filter` would make matching link the wrong users.
    let err = c.test_connection().await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ScimComplianceIssue);
    assert!(err.detail.contains("ignores"), "{}", err.detail);
}

#[tokio::test]
async fn entra_url_flags_are_not_forwarded_but_other_query_parts_are() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/scim/v2/Users"))
        .and(query_param("tenant", "t1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(list(vec![])))
        .expect(1)
        .mount(&server)
        .await;
    let mut cfg = config(&server);
    cfg.base_url = format!("{}/scim/v2/?aadOptscim062020&tenant=t1", server.uri());
    ScimClient::new(cfg)
        .unwrap()
        .find_users("userName", "x")
        .await
        .unwrap();
    let url = &server.received_requests().await.unwrap()[0].url;
    assert!(!url.as_str().contains("aadOptscim062020"), "{url}");
}

#[tokio::test]
async fn timeouts_and_refused_connections_are_classified() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(list(vec![]))
                .set_delay(Duration::from_secs(5)),
        )
        .mount(&server)
        .await;
    let mut cfg = config(&server);
    cfg.timeout = Duration::from_millis(200);
    cfg.max_retries = 1;
    let c = ScimClient::new(cfg).unwrap();
    let err = c.find_users("userName", "x").await.unwrap_err();
    assert_eq!(err.code, ErrorCode::Timeout);
    assert!(err.target_may_have_acted() && err.is_transient());
    assert_eq!(c.requests_sent(), 2, "a GET that timed out is retried");

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cfg = ScimClientConfig::new(
        format!("http://127.0.0.1:{port}/scim"),
        Secret::inline(TOKEN),
    );
    cfg.retry_base_delay = Duration::from_millis(5);
    cfg.max_retries = 2;
    let c = ScimClient::new(cfg).unwrap();
    let err = c.find_users("userName", "x").await.unwrap_err();
    assert_eq!(err.code, ErrorCode::WebExceptionProtocolError);
    assert_eq!(err.status, None);
    assert!(!err.detail.contains(TOKEN));
    assert_eq!(
        c.requests_sent(),
        3,
        "a GET that could not connect is retried"
    );
}

fn one_change() -> Vec<Change> {
    vec![Change {
        op: ChangeOp::Replace,
        path: "title".into(),
        value: json!("x"),
    }]
}

#[tokio::test]
async fn get_answered_500_once_is_retried_and_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(scim_error(500, None, "hiccup"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(list(vec![json!({"id": "7"})])))
        .mount(&server)
        .await;
    let c = client(&server);
    let users = c.find_users("userName", "x").await.unwrap();
    assert_eq!(users[0].id, "7");
    assert_eq!(c.requests_sent(), 2);
}

#[tokio::test]
async fn gets_are_retried_on_502_503_and_504_without_retry_after() {
    let server = MockServer::start().await;
    for status in [502, 503, 504] {
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(status))
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&server)
            .await;
    }
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(list(vec![])))
        .mount(&server)
        .await;
    let c = client(&server);
    assert!(c.find_users("userName", "x").await.unwrap().is_empty());
    assert_eq!(c.requests_sent(), 4);
}

#[tokio::test]
async fn post_answered_500_is_not_resent() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(scim_error(500, None, "something broke"))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let err = c.create_user(&attrs()).await.unwrap_err();
    assert_eq!(err.status, Some(500));
    assert_eq!(err.code, ErrorCode::InternalServerError);
    assert!(err.target_may_have_acted(), "{err:?}");
    assert!(err.is_transient());
    assert_eq!(c.requests_sent(), 1);
}

#[tokio::test]
async fn writes_are_resent_only_when_the_target_did_not_process_them() {
    let server = MockServer::start().await;
    // Not resent: the target may have acted.
    Mock::given(method("PATCH"))
        .and(path("/scim/v2/Users/503"))
        .respond_with(scim_error(503, None, "busy"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/scim/v2/Users/502"))
        .respond_with(ResponseTemplate::new(502))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .respond_with(ResponseTemplate::new(504).insert_header("Retry-After", "0"))
        .expect(1)
        .mount(&server)
        .await;
    // Resent: 429, and 503 with Retry-After, say the request was not processed.
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "0"))
        .up_to_n_times(1)
        .with_priority(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(scim_error(503, None, "busy").insert_header("Retry-After", "0"))
        .up_to_n_times(1)
        .with_priority(2)
        .expect(1)
        .mount(&server)
        .await;
    let mut created = user_resource(&attrs());
    created["id"] = json!("new");
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(&created))
        .with_priority(3)
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);

    let err = c.update_user("503", &one_change()).await.unwrap_err();
    assert_eq!(err.status, Some(503));
    assert!(err.target_may_have_acted() && err.is_transient());
    let err = c.update_user("502", &one_change()).await.unwrap_err();
    assert_eq!(err.status, Some(502));
    let err = c.delete_user("1").await.unwrap_err();
    assert_eq!(err.status, Some(504));
    assert_eq!(c.requests_sent(), 3);

    assert_eq!(c.create_user(&attrs()).await.unwrap().id, "new");
    assert_eq!(c.requests_sent(), 6);
}

#[tokio::test]
async fn post_answered_201_with_a_truncated_body_reports_the_status() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(201).set_body_raw(r#"{"schemas":["#, "application/scim+json"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let err = c.create_user(&attrs()).await.unwrap_err();
    assert_eq!(err.status, Some(201));
    assert_eq!(
        err.code,
        ErrorCode::SystemForCrossDomainIdentityManagementServiceIncompatible
    );
    assert!(err.target_may_have_acted(), "{err:?}");
    assert!(err.is_transient());
    assert!(err.detail.contains("201"), "{}", err.detail);
    assert_eq!(c.requests_sent(), 1);
}

#[tokio::test]
async fn created_user_or_group_without_an_id_reports_the_status() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/scim/v2/Users"))
        .respond_with(ResponseTemplate::new(201).set_body_json(user_resource(&attrs())))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/scim/v2/Groups"))
        .respond_with(ResponseTemplate::new(200).set_body_raw("<html>ok</html>", "text/html"))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let err = c.create_user(&attrs()).await.unwrap_err();
    assert_eq!(err.status, Some(201));
    assert!(err.detail.contains("no `id`"), "{}", err.detail);
    assert!(err.target_may_have_acted());
    let group: Attrs = [("displayName".to_string(), json!("Sales"))]
        .into_iter()
        .collect();
    let err = c.create_group(&group).await.unwrap_err();
    assert_eq!(err.status, Some(200));
    assert_eq!(
        err.code,
        ErrorCode::SystemForCrossDomainIdentityManagementServiceIncompatible
    );
    assert!(err.target_may_have_acted());
}

/// A loopback HTTP/1.1 server that resets (RST) its first `resets` connections once it has read
/// a request's head, and answers the later ones 200 with `body`. Returns the SCIM base URL and
/// the number of connections accepted.
async fn resetting_server(resets: usize, body: String) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/scim/v2", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let n = count.fetch_add(1, Ordering::SeqCst);
            let body = body.clone();
            tokio::spawn(async move {
                if !read_head(&stream).await {
                    return;
                }
                if n < resets {
                    stream.set_zero_linger().unwrap();
                    drop(stream);
                } else {
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/scim+json\r\n\
                         content-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    write_all(&stream, answer.as_bytes()).await;
                }
            });
        }
    });
    (base, accepted)
}

/// Reads until the end of a request head; false if the peer went away first.
async fn read_head(stream: &TcpStream) -> bool {
    let mut head = Vec::new();
    let mut chunk = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if stream.readable().await.is_err() {
            return false;
        }
        match stream.try_read(&mut chunk) {
            Ok(0) => return false,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return false,
        }
    }
    true
}

async fn write_all(stream: &TcpStream, mut data: &[u8]) {
    while !data.is_empty() {
        if stream.writable().await.is_err() {
            return;
        }
        match stream.try_write(data) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
}

fn reset_config(base: String) -> ScimClientConfig {
    let mut cfg = ScimClientConfig::new(base, Secret::inline(TOKEN));
    cfg.retry_base_delay = Duration::from_millis(5);
    cfg
}

#[tokio::test]
async fn connection_reset_on_a_get_is_retried() {
    let (base, accepted) = resetting_server(1, list(vec![json!({"id": "7"})]).to_string()).await;
    let c = ScimClient::new(reset_config(base)).unwrap();
    let users = c.find_users("userName", "x").await.unwrap();
    assert_eq!(users[0].id, "7");
    assert_eq!(c.requests_sent(), 2);
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn connection_reset_on_a_post_is_not_resent() {
    let (base, accepted) = resetting_server(usize::MAX, String::new()).await;
    let c = ScimClient::new(reset_config(base)).unwrap();
    let err = c.create_user(&attrs()).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::WebExceptionProtocolError, "{err:?}");
    assert_eq!(err.status, None);
    assert!(err.target_may_have_acted() && err.is_transient());
    assert_eq!(c.requests_sent(), 1);
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn concurrency_is_bounded() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(list(vec![]))
                .set_delay(Duration::from_millis(200)),
        )
        .mount(&server)
        .await;
    let mut cfg = config(&server);
    cfg.max_concurrency = 2;
    let c = ScimClient::new(cfg).unwrap();
    let started = Instant::now();
    let calls = (0..6).map(|i| {
        let c = c.clone();
        async move { c.find_users("userName", &i.to_string()).await }
    });
    for r in futures_join(calls).await {
        r.unwrap();
    }
    // 6 calls, 2 at a time, 200 ms each: at least 3 rounds.
    assert!(
        started.elapsed() >= Duration::from_millis(590),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(c.requests_sent(), 6);
}

async fn futures_join<F: std::future::Future + Send + 'static>(
    futs: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[test]
fn debug_output_never_contains_the_token() {
    let cfg = ScimClientConfig::new("http://127.0.0.1:9/scim", Secret::inline(TOKEN));
    let c = ScimClient::new(cfg.clone()).unwrap();
    assert!(!format!("{cfg:?}").contains(TOKEN));
    assert!(!format!("{c:?}").contains(TOKEN));
}

#[test]
fn bad_base_urls_are_config_errors() {
    for url in ["not a url", "ftp://host/scim", "/scim/v2"] {
        let err = ScimClient::new(ScimClientConfig::new(url, Secret::inline(TOKEN))).unwrap_err();
        assert_eq!(err.code, ErrorCode::ConfigInvalid, "{url}");
    }
}
