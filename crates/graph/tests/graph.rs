//! The Graph client against a wiremock stand-in for Entra's token endpoint and Graph v1.0.

use scimsync_core::{ErrorCode, Secret, Source, UserQuery, UserScope};
use scimsync_graph::{GraphClient, GraphConfig};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use wiremock::matchers::{header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const TENANT: &str = "tenant-1";
const CLIENT_ID: &str = "535fb089-9ff3-47b6-9bfb-4f1264799865";
const SECRET: &str = "s3cr3t~Value.With+Specials";
const TOKEN_PATH: &str = "/tenant-1/oauth2/v2.0/token";

fn config(server: &MockServer) -> GraphConfig {
    GraphConfig {
        graph_url: server.uri(),
        login_url: server.uri(),
        ..GraphConfig::new(TENANT, CLIENT_ID, Secret::inline(SECRET))
    }
}

fn client(server: &MockServer) -> GraphClient {
    client_with(config(server))
}

fn client_with(cfg: GraphConfig) -> GraphClient {
    GraphClient::with_retry_base(cfg, Duration::from_millis(5)).unwrap()
}

fn token_body(token: &str) -> Value {
    json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token})
}

async fn mount_token(server: &MockServer, token: &str) {
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(token_body(token)))
        .mount(server)
        .await;
}

async fn mount_no_deleted(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path("/v1.0/directory/deletedItems/microsoft.graph.user"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"value": []})))
        .mount(server)
        .await;
}

fn page(users: Value, next: Option<String>) -> ResponseTemplate {
    let mut body = json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users"});
    if let Some(n) = next {
        body["@odata.nextLink"] = json!(n);
    }
    body["value"] = users;
    ResponseTemplate::new(200).set_body_json(body)
}

fn graph_error(status: u16, code: &str, message: &str, request_id: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("request-id", request_id)
        .set_body_json(json!({"error": {"code": code, "message": message,
            "innerError": {"date": "2024-12-05T12:07:47", "request-id": request_id}}}))
}

fn all(attributes: &[&str]) -> UserQuery {
    UserQuery {
        attributes: attributes.iter().map(|s| s.to_string()).collect(),
        scope: UserScope::All,
        keep: None,
    }
}

fn ids(users: &[scimsync_core::SourceUser]) -> Vec<&str> {
    users.iter().map(|u| u.id.as_str()).collect()
}

#[tokio::test]
async fn token_request_carries_client_credentials_and_is_cached() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(token_body("tok-1")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1.0/users"))
        .and(header("authorization", "Bearer tok-1"))
        .respond_with(page(
            json!([{"id": "u1", "userPrincipalName": "a@x"}]),
            None,
        ))
        .expect(3)
        .mount(&server)
        .await;
    mount_no_deleted(&server).await;
    let graph = client(&server);
    for _ in 0..3 {
        let snap = graph.read_users(&all(&[])).await.unwrap();
        assert_eq!(ids(&snap.users), ["u1"]);
        assert_eq!(snap.assigned, None);
    }
    graph.token().await.unwrap();

    let requests = server.received_requests().await.unwrap();
    let token_requests: Vec<&Request> = requests
        .iter()
        .filter(|r| r.url.path() == TOKEN_PATH)
        .collect();
    assert_eq!(token_requests.len(), 1);
    let form: std::collections::BTreeMap<String, String> =
        url::form_urlencoded::parse(&token_requests[0].body)
            .into_owned()
            .collect();
    assert_eq!(form["grant_type"], "client_credentials");
    assert_eq!(form["client_id"], CLIENT_ID);
    assert_eq!(form["client_secret"], SECRET);
    assert_eq!(form["scope"], format!("{}/.default", server.uri()));
    // The secret goes in the body (AuthType::RequestBody), not in a Basic header.
    assert!(!token_requests[0].headers.contains_key("authorization"));
    // 1 token + 3 × (users + deletedItems)
    assert_eq!(graph.requests_sent(), 7);
}

#[tokio::test]
async fn wrong_client_secret_is_named_and_the_secret_never_shown() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(ResponseTemplate::new(401).set_body_raw(
            r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '535fb089-9ff3-47b6-9bfb-4f1264799865'.\r\nTrace ID: 654ce9b2-a626-4e0b-8598-0cac69970200\r\nCorrelation ID: 5be327fc-93cb-4bef-ab4e-0373f11a8017\r\nTimestamp: 2022-10-31 09:03:41Z","error_codes":[7000215],"timestamp":"2022-10-31 09:03:41Z","trace_id":"654ce9b2-a626-4e0b-8598-0cac69970200","correlation_id":"5be327fc-93cb-4bef-ab4e-0373f11a8017","error_uri":"https://login.microsoftonline.com/error?code=7000215"}"#,
            "application/json; charset=utf-8",
        ))
        // One request per call below: a refused secret is not retried.
        .expect(2)
        .mount(&server)
        .await;
    let graph = client(&server);
    let err = graph.token().await.unwrap_err();
    assert_eq!(err.code, ErrorCode::GraphAuthenticationFailed);
    assert!(
        err.message.contains("invalid client secret"),
        "{}",
        err.message
    );
    assert!(err.message.contains("AADSTS7000215"), "{}", err.message);
    assert!(!err.message.contains(SECRET));
    assert!(!format!("{err:?}").contains(SECRET));
    assert_eq!(
        err.request_id.as_deref(),
        Some("5be327fc-93cb-4bef-ab4e-0373f11a8017")
    );
    // A sync fails the same way, without reaching Graph.
    let err = graph.read_users(&all(&[])).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::GraphAuthenticationFailed);
}

#[tokio::test]
async fn unknown_application_is_explained() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": "unauthorized_client",
            "error_description": "AADSTS700016: Application with identifier 'x' was not found in the directory 'y'.\r\nTrace ID: t",
            "error_codes": [700016]
        })))
        .mount(&server)
        .await;
    let err = client(&server).token().await.unwrap_err();
    assert_eq!(err.code, ErrorCode::GraphAuthenticationFailed);
    assert!(
        err.message
            .contains("application not found in the directory"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn a_malformed_token_answer_never_echoes_the_token() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"token_type": "Bearer", "expires_in": "soon", "access_token": "eyJ-leaky"}),
        ))
        .mount(&server)
        .await;
    let err = client(&server).token().await.unwrap_err();
    assert_eq!(err.code, ErrorCode::GraphAuthenticationFailed);
    assert!(!err.message.contains("eyJ-leaky"), "{}", err.message);
}

#[tokio::test]
async fn users_are_read_across_three_pages() {
    let server = MockServer::start().await;
    mount_token(&server, "tok-1").await;
    mount_no_deleted(&server).await;
    let base = server.uri();
    Mock::given(method("GET"))
        .and(path("/v1.0/users"))
        .and(query_param("$select", "id,userPrincipalName,accountEnabled,mailNickname"))
        .and(query_param("$top", "999"))
        .and(query_param_is_missing("$skiptoken"))
        .respond_with(page(
            json!([{"id": "u1"}, {"id": "u2"}]),
            Some(format!("{base}/v1.0/users?$select=id,userPrincipalName,accountEnabled,mailNickname&$top=999&$skiptoken=RFNwdAIAAQAAAD8")),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1.0/users"))
        .and(query_param("$skiptoken", "RFNwdAIAAQAAAD8"))
        // "A page of results might contain zero or more results".
        .respond_with(page(
            json!([]),
            Some(format!("{base}/v1.0/users?$skiptoken=page3")),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1.0/users"))
        .and(query_param("$skiptoken", "page3"))
        .respond_with(page(json!([{"id": "u3", "mailNickname": "c"}]), None))
        .expect(1)
        .mount(&server)
        .await;
    let graph = client(&server);
    let snap = graph.read_users(&all(&["mailNickname"])).await.unwrap();
    assert_eq!(ids(&snap.users), ["u1", "u2", "u3"]);
    assert_eq!(snap.users[2].str("mailNickname"), Some("c"));

    // Every Graph request carries its own client-request-id.
    let requests = server.received_requests().await.unwrap();
    let ids: BTreeSet<String> = requests
        .iter()
        .filter(|r| r.url.path().starts_with("/v1.0/"))
        .map(|r| {
            let v = r.headers["client-request-id"].to_str().unwrap().to_string();
            uuid::Uuid::parse_str(&v).unwrap();
            v
        })
        .collect();
    assert_eq!(ids.len(), 4);
}

#[tokio::test]
async fn throttled_request_waits_for_fractional_retry_after() {
    let server = MockServer::start().await;
    mount_token(&server, "tok-1").await;
    mount_no_deleted(&server).await;
    Mock::given(method("GET"))
        .and(path("/v1.0/users"))
        .respond_with(
            graph_error(
                429,
                "TooManyRequests",
                "Please retry again later.",
                "rid-429",
            )
            .insert_header("Retry-After", "0.05"),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1.0/users"))
        .respond_with(page(json!([{"id": "u1"}]), None))
        .mount(&server)
        .await;
    // A large backoff base proves the wait came from Retry-After.
    let graph = GraphClient::with_retry_base(config(&server), Duration::from_secs(30)).unwrap();
    let started = Instant::now();
    let snap = graph.read_users(&all(&[])).await.unwrap();
    let waited = started.elapsed();
    assert_eq!(ids(&snap.users), ["u1"]);
    assert!(waited >= Duration::from_millis(50), "{waited:?}");
    assert!(waited < Duration::from_secs(10), "{waited:?}");
}

#[tokio::test]
async fn unavailable_without_retry_after_backs_off_and_succeeds() {
    let server = MockServer::start().await;
    mount_token(&server, "tok-1").await;
    mount_no_deleted(&server).await;
    Mock::given(method("GET"))
        .and(path("/v1.0/users"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1.0/users"))
        .respond_with(page(json!([{"id": "u1"}]), None))
        .mount(&server)
        .await;
    let snap = client(&server).read_users(&all(&[])).await.unwrap();
    assert_eq!(ids(&snap.users), ["u1"]);
}

#[tokio::test]
async fn reads_are_retried_on_500_502_and_504_but_not_501() {
    let server = MockServer::start().await;
    mount_token(&server, "tok-1").await;
    mount_no_deleted(&server).await;
    for status in [500, 502, 504] {
        Mock::given(method("GET"))
            .and(path("/v1.0/users"))
            .respond_with(ResponseTemplate::new(status))
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path("/v1.0/users"))
        .respond_with(page(json!([{"id": "u1"}]), None))
        .mount(&server)
        .await;
    let snap = client(&server).read_users(&all(&[])).await.unwrap();
    assert_eq!(ids(&snap.users), ["u1"]);
    let user_reads = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/v1.0/users")
        .count();
    assert_eq!(user_reads, 4);

    let server = MockServer::start().await;
    mount_token(&server, "tok-1").await;
    mount_no_deleted(&server).await;
    Mock::given(method("GET"))
        .and(path("/v1.0/users"))
        .respond_with(graph_error(501, "NotImplemented", "no", "rid-501"))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server).read_users(&all(&[])).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::GraphRequestFailed);
}

#[tokio::test]
async fn a_connection_reset_is_retried() {
    let login = MockServer::start().await;
    mount_token(&login, "tok-1").await;
    let (graph_url, accepted) = resetting_server(1, json!({"value": []}).to_string()).await;
    let graph = client_with(GraphConfig {
        graph_url,
        ..config(&login)
    });
    let snap = graph.read_users(&all(&[])).await.unwrap();
    assert!(snap.users.is_empty());
    // Every Graph request was a new connection (the server closes each); one token request.
    let accepted = accepted.load(std::sync::atomic::Ordering::SeqCst) as u64;
    assert!(accepted >= 2, "{accepted}");
    assert_eq!(graph.requests_sent(), accepted + 1);
}

/// A loopback HTTP/1.1 server that resets (RST) its first `resets` connections once it has read
/// a request's head, and answers the later ones 200 with the JSON `body` and closes them.
/// Returns its base URL and the number of connections accepted.
async fn resetting_server(
    resets: usize,
    body: String,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let accepted = std::sync::Arc::new(AtomicUsize::new(0));
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
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
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
async fn read_head(stream: &tokio::net::TcpStream) -> bool {
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

async fn write_all(stream: &tokio::net::TcpStream, mut data: &[u8]) {
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

#[tokio::test]
async fn persistent_throttling_fails_with_graph_code_and_request_ids() {
    let server = MockServer::start().await;
    mount_token(&server, "tok-1").await;
    mount_no_deleted(&server).await;
    Mock::given(method("GET"))
        .and(path("/v1.0/users"))
        .respond_with(
            graph_error(
                429,
                "TooManyRequests",
                "Please retry again later.",
                "rid-429",
            )
            .insert_header("Retry-After", "0.01"),
        )
        .expect(3) // the first try and max_retries = 2 retries
        .mount(&server)
        .await;
    let graph = client_with(GraphConfig {
        max_retries: 2,
        ..config(&server)
    });
    let err = graph.read_users(&all(&[])).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::GraphRequestFailed);
    assert_eq!(err.request_id.as_deref(), Some("rid-429"));
    for part in [
        "TooManyRequests",
        "rid-429",
        "client-request-id",
        "2 retries",
    ] {
        assert!(
            err.message.contains(part),
            "{part} missing: {}",
            err.message
        );
    }
}

#[tokio::test]
async fn refused_access_token_is_replaced_once() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(token_body("tok-old")))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    mount_token(&server, "tok-new").await;
    mount_no_deleted(&server).await;
    Mock::given(method("GET"))
        .and(path("/v1.0/users"))
        .and(header("authorization", "Bearer tok-old"))
        .respond_with(graph_error(
            401,
            "InvalidAuthenticationToken",
            "Access token has expired or is not yet valid.",
            "rid-401",
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1.0/users"))
        .and(header("authorization", "Bearer tok-new"))
        .respond_with(page(json!([{"id": "u1"}]), None))
        .mount(&server)
        .await;
    let graph = client(&server);
    let snap = graph.read_users(&all(&[])).await.unwrap();
    assert_eq!(ids(&snap.users), ["u1"]);
    let token_calls = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == TOKEN_PATH)
        .count();
    assert_eq!(token_calls, 2);
}

#[tokio::test]
async fn a_token_refused_twice_is_an_authentication_failure() {
    let server = MockServer::start().await;
    mount_token(&server, "tok-1").await;
    mount_no_deleted(&server).await;
    Mock::given(method("GET"))
        .and(path("/v1.0/users"))
        .respond_with(graph_error(
            401,
            "invalidAuthenticationToken",
            "Access token validation failure. Invalid audience.",
            "rid-401",
        ))
        .expect(2)
        .mount(&server)
        .await;
    let err = client(&server).read_users(&all(&[])).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::GraphAuthenticationFailed);
    assert!(err.message.contains("Invalid audience"), "{}", err.message);
}

#[tokio::test]
async fn assigned_scope_expands_groups_to_direct_user_members() {
    let server = MockServer::start().await;
    mount_token(&server, "tok-1").await;
    let sp = "8e881353-1735-45af-af21-ee1344582a4d";
    let base = server.uri();
    Mock::given(method("GET"))
        .and(path("/v1.0/users"))
        .respond_with(page(
            json!([{"id": "u1"}, {"id": "u2"}, {"id": "u3"}, {"id": "u4"}]),
            None,
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1.0/directory/deletedItems/microsoft.graph.user"))
        .and(query_param("$select", "id"))
        .respond_with(page(
            json!([{"id": "u9", "deletedDateTime": "2024-05-01T09:12:44Z"}]),
            None,
        ))
        .mount(&server)
        .await;
    let row = |principal: &str, kind: &str, role: &str| {
        json!({"id": format!("a-{principal}"), "deletedDateTime": null, "appRoleId": role,
               "principalId": principal, "principalType": kind, "resourceId": sp})
    };
    Mock::given(method("GET"))
        .and(path(format!(
            "/v1.0/servicePrincipals/{sp}/appRoleAssignedTo"
        )))
        .and(query_param_is_missing("$skiptoken"))
        // No delta for assignments: read each cycle, so with Graph's largest page.
        .and(query_param("$top", "999"))
        .and(query_param(
            "$select",
            "principalId,principalType,appRoleId",
        ))
        .respond_with(page(
            json!([
                row("u1", "User", "00000000-0000-0000-0000-000000000000"),
                row("sp1", "ServicePrincipal", "r-sp")
            ]),
            Some(format!(
                "{base}/v1.0/servicePrincipals/{sp}/appRoleAssignedTo?$skiptoken=2"
            )),
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!(
            "/v1.0/servicePrincipals/{sp}/appRoleAssignedTo"
        )))
        .and(query_param("$skiptoken", "2"))
        .respond_with(page(json!([row("g1", "Group", "r-admin")]), None))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1.0/groups/g1/members"))
        .and(query_param("$select", "id"))
        .respond_with(page(
            json!([
                {"@odata.type": "#microsoft.graph.user", "id": "u1"},
                {"@odata.type": "#microsoft.graph.user", "id": "u2"},
                {"@odata.type": "#microsoft.graph.group", "id": "g2"},
                {"@odata.type": "#microsoft.graph.device", "id": "d1"}
            ]),
            None,
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1.0/groups/g2/members"))
        .respond_with(page(
            json!([{"@odata.type": "#microsoft.graph.user", "id": "u3"}]),
            None,
        ))
        .expect(0) // nested groups are not expanded
        .mount(&server)
        .await;
    let snap = client(&server)
        .read_users(&UserQuery {
            attributes: vec!["appRoleAssignments".into()],
            scope: UserScope::Assigned {
                service_principal_id: sp.into(),
            },
            keep: None,
        })
        .await
        .unwrap();
    assert_eq!(ids(&snap.users), ["u1", "u2", "u3", "u4"]);
    assert_eq!(
        snap.assigned,
        Some(BTreeSet::from(["u1".to_string(), "u2".to_string()]))
    );
    assert_eq!(snap.soft_deleted, BTreeSet::from(["u9".to_string()]));
    assert_eq!(
        snap.users[0].attrs["appRoleAssignments"],
        json!([{"appRoleId": "00000000-0000-0000-0000-000000000000", "principalType": "User"},
               {"appRoleId": "r-admin", "principalType": "Group"}])
    );
    assert_eq!(
        snap.users[1].attrs["appRoleAssignments"],
        json!([{"appRoleId": "r-admin", "principalType": "Group"}])
    );
    assert!(!snap.users[2].attrs.contains_key("appRoleAssignments"));
}

#[tokio::test]
async fn missing_permission_is_named() {
    let server = MockServer::start().await;
    mount_token(&server, "tok-1").await;
    mount_no_deleted(&server).await;
    Mock::given(method("GET"))
        .and(path("/v1.0/users"))
        .respond_with(page(json!([]), None))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1.0/servicePrincipals/sp-1/appRoleAssignedTo"))
        .respond_with(graph_error(
            403,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
            "rid-403",
        ))
        .expect(1) // not retried
        .mount(&server)
        .await;
    let err = client(&server)
        .read_users(&UserQuery {
            attributes: vec![],
            scope: UserScope::Assigned {
                service_principal_id: "sp-1".into(),
            },
            keep: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::GraphRequestFailed);
    assert!(
        err.message.contains("Application.Read.All"),
        "{}",
        err.message
    );
    assert_eq!(err.request_id.as_deref(), Some("rid-403"));
}

#[tokio::test]
async fn attributes_come_back_under_entra_names() {
    let server = MockServer::start().await;
    mount_token(&server, "tok-1").await;
    mount_no_deleted(&server).await;
    Mock::given(method("GET"))
        .and(path("/v1.0/users"))
        .and(query_param(
            "$select",
            "id,userPrincipalName,accountEnabled,businessPhones,mobilePhone,onPremisesExtensionAttributes,employeeOrgData",
        ))
        .respond_with(page(
            json!([{
                "id": "87d349ed-44d7-43e1-9a83-5f2406dee5bd",
                "userPrincipalName": "AdeleV@contoso.com",
                "accountEnabled": false,
                "businessPhones": ["+1 425 555 0109"],
                "mobilePhone": null,
                "onPremisesExtensionAttributes": {"extensionAttribute1": null, "extensionAttribute3": "E3"},
                "employeeOrgData": {"division": "Sales", "costCenter": null}
            }, {
                "id": "6e7b768e-07e2-4810-8459-485f84f8f204",
                "userPrincipalName": "AlexW@contoso.com",
                "businessPhones": [],
                "mobilePhone": "+1 858 555 0110",
                "onPremisesExtensionAttributes": null,
                "employeeOrgData": null
            }]),
            None,
        ))
        .mount(&server)
        .await;
    let snap = client(&server)
        .read_users(&all(&[
            "telephoneNumber",
            "mobile",
            "extensionAttribute3",
            "employeeOrgData.division",
        ]))
        .await
        .unwrap();
    let adele = serde_json::to_value(&snap.users[0].attrs).unwrap();
    assert_eq!(
        adele,
        json!({"objectId": "87d349ed-44d7-43e1-9a83-5f2406dee5bd",
               "userPrincipalName": "AdeleV@contoso.com", "accountEnabled": false,
               "telephoneNumber": "+1 425 555 0109", "extensionAttribute3": "E3",
               "employeeOrgData.division": "Sales"})
    );
    assert!(!snap.users[0].account_enabled());
    let alex = serde_json::to_value(&snap.users[1].attrs).unwrap();
    assert_eq!(
        alex,
        json!({"objectId": "6e7b768e-07e2-4810-8459-485f84f8f204",
               "userPrincipalName": "AlexW@contoso.com", "mobile": "+1 858 555 0110"})
    );
}

#[tokio::test]
async fn single_user_lookup_encodes_guest_upns_and_maps_404_to_none() {
    let server = MockServer::start().await;
    mount_token(&server, "tok-1").await;
    Mock::given(method("GET"))
        .and(path(
            "/v1.0/users/a_contoso.com%23EXT%23@fabrikam.onmicrosoft.com",
        ))
        .and(query_param(
            "$select",
            "id,userPrincipalName,accountEnabled,surname",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "g1", "userPrincipalName": "a_contoso.com#EXT#@fabrikam.onmicrosoft.com",
            "accountEnabled": true, "surname": "Guest"})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1.0/users/gone"))
        .respond_with(graph_error(
            404,
            "Request_ResourceNotFound",
            "Resource 'gone' does not exist or one of its queried reference-property objects are not present.",
            "rid-404",
        ))
        .mount(&server)
        .await;
    let graph = client(&server);
    let user = graph
        .user(
            "a_contoso.com#EXT#@fabrikam.onmicrosoft.com",
            &["surname".to_string()],
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.id, "g1");
    assert_eq!(user.str("surname"), Some("Guest"));
    assert_eq!(graph.user("gone", &[]).await.unwrap(), None);
}

#[tokio::test]
async fn next_link_to_another_host_is_refused() {
    let server = MockServer::start().await;
    mount_token(&server, "tok-1").await;
    mount_no_deleted(&server).await;
    Mock::given(method("GET"))
        .and(path("/v1.0/users"))
        .respond_with(page(
            json!([{"id": "u1"}]),
            Some("https://evil.example/v1.0/users?$skiptoken=x".into()),
        ))
        .mount(&server)
        .await;
    let err = client(&server).read_users(&all(&[])).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::GraphRequestFailed);
    assert!(err.message.contains("another host"), "{}", err.message);
}

#[test]
fn invalid_configuration_is_reported_before_any_request() {
    let base = GraphConfig::new(TENANT, CLIENT_ID, Secret::inline(SECRET));
    for (cfg, needle) in [
        (
            GraphConfig {
                page_size: 1000,
                ..base.clone()
            },
            "page_size",
        ),
        (
            GraphConfig {
                max_concurrency: 0,
                ..base.clone()
            },
            "max_concurrency",
        ),
        (
            GraphConfig {
                graph_url: "not a url".into(),
                ..base.clone()
            },
            "graph_url",
        ),
        (
            GraphConfig {
                tenant_id: "a/b".into(),
                ..base.clone()
            },
            "tenant_id",
        ),
    ] {
        let err = GraphClient::new(cfg).unwrap_err();
        assert_eq!(err.code, ErrorCode::ConfigInvalid);
        assert!(err.message.contains(needle), "{}", err.message);
    }
}

#[tokio::test]
async fn an_expired_page_token_restarts_the_read_once_from_the_start() {
    let server = MockServer::start().await;
    mount_token(&server, "tok-1").await;
    mount_no_deleted(&server).await;
    let base = server.uri();
    Mock::given(method("GET"))
        .and(path("/v1.0/users"))
        .and(query_param_is_missing("$skiptoken"))
        .respond_with(page(
            json!([{"id": "u1"}, {"id": "u2"}]),
            Some(format!("{base}/v1.0/users?$skiptoken=p2")),
        ))
        .expect(2)
        .mount(&server)
        .await;
    // The first attempt at page 2 finds the token expired (paging was slowed down).
    Mock::given(method("GET"))
        .and(path("/v1.0/users"))
        .and(query_param("$skiptoken", "p2"))
        .respond_with(graph_error(
            400,
            "Directory_ExpiredPageToken",
            "The specified page token value has expired and can no longer be included in your request.",
            "rid-1",
        ))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1.0/users"))
        .and(query_param("$skiptoken", "p2"))
        .respond_with(page(json!([{"id": "u3"}]), None))
        .expect(1)
        .mount(&server)
        .await;
    let snap = client(&server).read_users(&all(&[])).await.unwrap();
    assert_eq!(ids(&snap.users), ["u1", "u2", "u3"], "nothing read twice");
}

#[tokio::test]
async fn a_second_expired_page_token_is_an_error() {
    let server = MockServer::start().await;
    mount_token(&server, "tok-1").await;
    mount_no_deleted(&server).await;
    let base = server.uri();
    Mock::given(method("GET"))
        .and(path("/v1.0/users"))
        .and(query_param_is_missing("$skiptoken"))
        .respond_with(page(
            json!([{"id": "u1"}]),
            Some(format!("{base}/v1.0/users?$skiptoken=p2")),
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1.0/users"))
        .and(query_param("$skiptoken", "p2"))
        .respond_with(graph_error(
            400,
            "directory_expiredpagetoken",
            "expired",
            "rid-2",
        ))
        .expect(2)
        .mount(&server)
        .await;
    let err = client(&server).read_users(&all(&[])).await.unwrap_err();
    assert!(
        err.message.contains("ExpiredPageToken") || err.message.contains("expiredpagetoken"),
        "{}",
        err.message
    );
}
