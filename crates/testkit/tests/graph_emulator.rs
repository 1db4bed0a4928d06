//! End-to-end tests of the Graph emulator over real HTTP with reqwest, checking what a Graph
//! client would notice: status codes, error shapes, paging links, nulls, throttling, deletion.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use scimsync_testkit::graph::{DEFAULT_ACCESS_ROLE, GraphEmulator, Tenant};
use serde_json::{Value, json};

const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

async fn token_request(
    g: &GraphEmulator,
    tenant: &str,
    form: &[(&str, &str)],
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let resp = client()
        .post(format!("{}/{tenant}/oauth2/v2.0/token", g.url()))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    (status, headers, resp.json().await.unwrap())
}

async fn token(g: &GraphEmulator) -> String {
    let (status, _, body) = token_request(
        g,
        g.tenant_id(),
        &[
            ("client_id", g.client_id()),
            ("client_secret", g.client_secret()),
            ("scope", GRAPH_SCOPE),
            ("grant_type", "client_credentials"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().unwrap().to_string()
}

async fn get_full(
    url: &str,
    token: Option<&str>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut req = client().get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, headers, body)
}

async fn get(url: &str, token: &str) -> (StatusCode, Value) {
    let (s, _, b) = get_full(url, Some(token)).await;
    (s, b)
}

/// Follows nextLinks from `url`, returning every page.
async fn all_pages(url: &str, token: &str) -> Vec<Value> {
    let mut pages = Vec::new();
    let mut next = Some(url.to_string());
    while let Some(u) = next {
        let (s, body) = get(&u, token).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        next = body
            .get("@odata.nextLink")
            .map(|l| l.as_str().unwrap().to_string());
        pages.push(body);
        assert!(pages.len() < 100, "runaway paging");
    }
    pages
}

fn assert_graph_error(body: &Value, code: &str) {
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    let inner = &body["error"]["innerError"];
    let date = inner["date"].as_str().unwrap();
    assert_eq!(date.len(), 19, "no Z, no fraction: {date}");
    assert!(!date.ends_with('Z'));
    assert!(inner["request-id"].is_string());
    assert!(inner["client-request-id"].is_string());
}

fn assert_oauth_error(body: &Value, error: &str, code: u64) {
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["error_codes"], json!([code]), "{body}");
    let desc = body["error_description"].as_str().unwrap();
    assert!(desc.starts_with(&format!("AADSTS{code}:")), "{desc}");
    assert!(desc.contains("\r\nTrace ID: ") && desc.contains("\r\nCorrelation ID: "));
    let ts = body["timestamp"].as_str().unwrap();
    assert_eq!(ts.len(), 20, "YYYY-MM-DD HH:MM:SSZ: {ts}");
    assert_eq!(&ts[10..11], " ");
    assert!(body["trace_id"].is_string() && body["correlation_id"].is_string());
    assert!(body.get("error_uri").is_some());
    assert!(
        body.get("error").unwrap().is_string(),
        "flat OAuth shape, not the Graph envelope"
    );
}

// ---- token endpoint ---------------------------------------------------------------------------

/// (what, form, expected status, OAuth error, AADSTS code)
type TokenCase<'a> = (&'a str, Vec<(&'a str, &'a str)>, StatusCode, &'a str, u64);

#[tokio::test]
async fn token_success_shape_and_variants() {
    let g = GraphEmulator::start(Tenant::generate("contoso.onmicrosoft.com", 5, 1, 1))
        .await
        .unwrap();
    let (status, headers, body) = token_request(
        &g,
        g.tenant_id(),
        &[
            ("client_id", g.client_id()),
            ("client_secret", g.client_secret()),
            ("scope", GRAPH_SCOPE),
            ("grant_type", "client_credentials"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].is_u64());
    assert!(body["ext_expires_in"].is_u64());
    assert!(body.get("refresh_token").is_none());
    assert_eq!(body["access_token"].as_str().unwrap().split('.').count(), 3);
    assert_eq!(headers["cache-control"], "no-store, no-cache");

    // Tenant addressed by GUID, secret via HTTP Basic.
    let resp = client()
        .post(format!("{}/{}/oauth2/v2.0/token", g.url(), g.tenant_guid()))
        .basic_auth(g.client_id(), Some(g.client_secret()))
        .form(&[("scope", GRAPH_SCOPE), ("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    g.set_token_lifetime(120);
    let (_, _, body) = token_request(
        &g,
        g.tenant_id(),
        &[
            ("client_id", g.client_id()),
            ("client_secret", g.client_secret()),
            ("scope", GRAPH_SCOPE),
            ("grant_type", "client_credentials"),
        ],
    )
    .await;
    assert_eq!(body["expires_in"], 120);
    g.shutdown().await;
}

#[tokio::test]
async fn token_errors_have_exact_statuses_and_flat_bodies() {
    let g = GraphEmulator::start(Tenant::new("contoso.onmicrosoft.com"))
        .await
        .unwrap();
    let id = g.client_id().to_string();
    let secret = g.client_secret().to_string();
    let tenant = g.tenant_id().to_string();
    let cases: [TokenCase; 5] = [
        (
            "wrong secret",
            vec![
                ("client_id", &id),
                ("client_secret", "nope"),
                ("scope", GRAPH_SCOPE),
                ("grant_type", "client_credentials"),
            ],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
        ),
        (
            "unknown client",
            vec![
                ("client_id", "11111111-1111-1111-1111-111111111111"),
                ("client_secret", &secret),
                ("scope", GRAPH_SCOPE),
                ("grant_type", "client_credentials"),
            ],
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
        ),
        (
            "bad scope",
            vec![
                ("client_id", &id),
                ("client_secret", &secret),
                ("scope", "https://foo.microsoft.com/.default"),
                ("grant_type", "client_credentials"),
            ],
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            70011,
        ),
        (
            "unsupported grant",
            vec![
                ("client_id", &id),
                ("client_secret", &secret),
                ("scope", GRAPH_SCOPE),
                ("grant_type", "password"),
            ],
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
        ),
        (
            "no secret",
            vec![
                ("client_id", &id),
                ("scope", GRAPH_SCOPE),
                ("grant_type", "client_credentials"),
            ],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000218,
        ),
    ];
    for (what, form, status, error, code) in cases {
        let (s, h, body) = token_request(&g, &tenant, &form).await;
        assert_eq!(s, status, "{what}: {body}");
        assert_oauth_error(&body, error, code);
        assert!(
            h["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
    }
    let (s, _, body) = token_request(
        &g,
        "fabrikam.onmicrosoft.com",
        &[
            ("client_id", &id),
            ("client_secret", &secret),
            ("scope", GRAPH_SCOPE),
            ("grant_type", "client_credentials"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_oauth_error(&body, "invalid_request", 90002);

    // The client secret never appears in an error body.
    let (_, _, body) = token_request(
        &g,
        &tenant,
        &[
            ("client_id", &id),
            ("client_secret", "nope"),
            ("scope", GRAPH_SCOPE),
            ("grant_type", "client_credentials"),
        ],
    )
    .await;
    assert!(!body.to_string().contains(&secret));
}

fn jwt(header: Value, claims: Value) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(b"not-a-real-signature")
    )
}

#[tokio::test]
async fn client_assertion_is_checked_for_claims() {
    let g = GraphEmulator::start(Tenant::new("contoso.onmicrosoft.com"))
        .await
        .unwrap();
    let now = chrono::Utc::now().timestamp();
    let claims = |aud: &str| json!({"aud": aud, "iss": g.client_id(), "sub": g.client_id(), "jti": "x", "nbf": now, "exp": now + 600});
    let send = |assertion: String| {
        let id = g.client_id().to_string();
        let url = g.token_url();
        async move {
            let resp = client()
                .post(url)
                .form(&[
                    ("client_id", id.as_str()),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", &assertion),
                    ("scope", GRAPH_SCOPE),
                    ("grant_type", "client_credentials"),
                ])
                .send()
                .await
                .unwrap();
            (resp.status(), resp.json::<Value>().await.unwrap())
        }
    };
    let ok = jwt(
        json!({"alg": "PS256", "typ": "JWT"}),
        claims(&g.token_url()),
    );
    let (s, body) = send(ok).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let rs = jwt(
        json!({"alg": "RS256"}),
        claims(&format!(
            "https://login.microsoftonline.com/{}/oauth2/v2.0/token",
            g.tenant_guid()
        )),
    );
    assert_eq!(send(rs).await.0, StatusCode::OK);

    let (s, body) = send(jwt(
        json!({"alg": "RS256"}),
        claims("https://elsewhere/token"),
    ))
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_client");
    let (s, body) = send(jwt(json!({"alg": "HS512"}), claims(&g.token_url()))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_oauth_error(&body, "invalid_request", 5002738);
}

// ---- Graph auth and headers -------------------------------------------------------------------

#[tokio::test]
async fn graph_requires_a_valid_bearer_token() {
    let g = GraphEmulator::start(Tenant::generate("contoso.onmicrosoft.com", 3, 0, 2))
        .await
        .unwrap();
    let url = format!("{}/v1.0/users", g.url());
    let (s, h, body) = get_full(&url, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_graph_error(&body, "InvalidAuthenticationToken");
    assert!(h.contains_key("www-authenticate"));
    let (s, body) = get(&url, "garbage").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_graph_error(&body, "InvalidAuthenticationToken");

    let t = token(&g).await;
    assert_eq!(get(&url, &t).await.0, StatusCode::OK);
    g.expire_tokens();
    let (s, body) = get(&url, &t).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_graph_error(&body, "InvalidAuthenticationToken");
    let fresh = token(&g).await;
    assert_eq!(get(&url, &fresh).await.0, StatusCode::OK);
}

#[tokio::test]
async fn responses_carry_request_ids_and_odata_content_type() {
    let g = GraphEmulator::start(Tenant::generate("contoso.onmicrosoft.com", 3, 0, 2))
        .await
        .unwrap();
    let t = token(&g).await;
    let resp = client()
        .get(format!("{}/v1.0/users", g.url()))
        .bearer_auth(&t)
        .header("client-request-id", "my-correlation")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["client-request-id"], "my-correlation");
    assert!(resp.headers().contains_key("request-id"));
    let ct = resp.headers()["content-type"].to_str().unwrap();
    assert!(
        ct.starts_with("application/json;odata.metadata=minimal"),
        "{ct}"
    );

    let resp = client()
        .get(format!("{}/v1.0/users", g.url()))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["client-request-id"],
        resp.headers()["request-id"]
    );

    let (s, body) = get(&format!("{}/v1.0/nonsense", g.url()), &t).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_graph_error(&body, "BadRequest");
    let (s, _, body) = get_full(&format!("{}/beta/users", g.url()), Some(&t)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(body["error"]["code"].is_string());
}

// ---- users: paging, $select, $top, $filter ----------------------------------------------------

#[tokio::test]
async fn paging_250_users_by_100_gives_three_pages() {
    let g = GraphEmulator::start(Tenant::generate("contoso.onmicrosoft.com", 250, 3, 9))
        .await
        .unwrap();
    let t = token(&g).await;
    let first = format!(
        "{}/v1.0/users?$select=id,userPrincipalName&$top=100",
        g.url()
    );
    let pages = all_pages(&first, &t).await;
    assert_eq!(pages.len(), 3);
    let sizes: Vec<usize> = pages
        .iter()
        .map(|p| p["value"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, vec![100, 100, 50]);
    let link = pages[0]["@odata.nextLink"].as_str().unwrap();
    assert!(
        link.starts_with(&format!("{}/v1.0/users?", g.url())),
        "{link}"
    );
    assert!(
        link.contains("$select=id,userPrincipalName")
            && link.contains("$top=100")
            && link.contains("$skiptoken=")
    );
    assert!(
        pages[2].get("@odata.nextLink").is_none(),
        "absent, not null, on the last page"
    );
    assert!(
        pages[0]["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("$metadata#users(id,userPrincipalName)")
    );
    let keys: Vec<&String> = pages[0].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["@odata.context", "@odata.nextLink", "value"]);
    let mut ids: Vec<&str> = pages
        .iter()
        .flat_map(|p| p["value"].as_array().unwrap())
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 250);

    // Default page size is 100.
    let (_, body) = get(&format!("{}/v1.0/users", g.url()), &t).await;
    assert_eq!(body["value"].as_array().unwrap().len(), 100);

    // Expired page tokens.
    g.expire_page_tokens();
    let (s, body) = get(link, &t).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_graph_error(&body, "Directory_ExpiredPageToken");
}

#[tokio::test]
async fn select_nulls_defaults_and_unknown_properties() {
    let mut tenant = Tenant::new("contoso.onmicrosoft.com");
    let id = tenant.add_user(
        json!({"userPrincipalName": "bare@contoso.onmicrosoft.com", "displayName": "Bare"}),
    );
    let g = GraphEmulator::start(tenant).await.unwrap();
    let t = token(&g).await;

    let (s, body) = get(
        &format!("{}/v1.0/users/{id}?$select=id,mobilePhone,businessPhones,department,accountEnabled,onPremisesExtensionAttributes", g.url()),
        &t,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["mobilePhone"], Value::Null);
    assert_eq!(body["department"], Value::Null);
    assert!(
        body.as_object().unwrap().contains_key("mobilePhone"),
        "explicit null, not missing"
    );
    assert_eq!(body["businessPhones"], json!([]));
    assert_eq!(body["accountEnabled"], true);
    assert_eq!(
        body["onPremisesExtensionAttributes"]["extensionAttribute7"],
        Value::Null
    );

    // Without $select: exactly the default set (plus the context), accountEnabled not included.
    let (_, body) = get(&format!("{}/v1.0/users", g.url()), &t).await;
    let user = body["value"][0].as_object().unwrap();
    let mut keys: Vec<&str> = user.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "businessPhones",
            "displayName",
            "givenName",
            "id",
            "jobTitle",
            "mail",
            "mobilePhone",
            "officeLocation",
            "preferredLanguage",
            "surname",
            "userPrincipalName"
        ]
    );

    // By UPN, case-insensitively; property names in $select are case-insensitive too.
    let (s, body) = get(
        &format!(
            "{}/v1.0/users/BARE@contoso.onmicrosoft.com?$select=ID",
            g.url()
        ),
        &t,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["id"], id);

    let (s, body) = get(&format!("{}/v1.0/users?$select=id,shoeSize", g.url()), &t).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_graph_error(&body, "Request_BadRequest");

    // A cleared property reads back as null.
    g.update_user(&id, json!({"jobTitle": "Clerk"}));
    g.update_user(&id, json!({"jobTitle": null}));
    let (_, body) = get(&format!("{}/v1.0/users/{id}?$select=jobTitle", g.url()), &t).await;
    assert_eq!(body["jobTitle"], Value::Null);
}

#[tokio::test]
async fn top_limits_and_filters() {
    let g = GraphEmulator::start(Tenant::generate("contoso.onmicrosoft.com", 120, 2, 3))
        .await
        .unwrap();
    let t = token(&g).await;
    let (s, body) = get(&format!("{}/v1.0/users?$top=1000", g.url()), &t).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_graph_error(&body, "Request_UnsupportedQuery");
    assert_eq!(
        get(&format!("{}/v1.0/users?$top=0", g.url()), &t).await.0,
        StatusCode::BAD_REQUEST
    );
    let (s, body) = get(&format!("{}/v1.0/users?$top=999", g.url()), &t).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["value"].as_array().unwrap().len(), 120);

    let users = g.users();
    let some = users[17]["userPrincipalName"].as_str().unwrap().to_string();
    let (_, body) = get(
        &format!(
            "{}/v1.0/users?$filter=userPrincipalName eq '{}'",
            g.url(),
            some.to_uppercase()
        ),
        &t,
    )
    .await;
    assert_eq!(body["value"].as_array().unwrap().len(), 1);
    assert_eq!(body["value"][0]["userPrincipalName"], some);

    let disabled = users
        .iter()
        .filter(|u| u["accountEnabled"] == false)
        .count();
    let (_, body) = get(
        &format!(
            "{}/v1.0/users?$filter=accountEnabled eq false&$select=id,accountEnabled&$top=999",
            g.url()
        ),
        &t,
    )
    .await;
    assert_eq!(body["value"].as_array().unwrap().len(), disabled);
    assert!(
        body["value"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["accountEnabled"] == false)
    );

    let prefix = &some[..3];
    let expected = users
        .iter()
        .filter(|u| u["userPrincipalName"].as_str().unwrap().starts_with(prefix))
        .count();
    let (_, body) = get(
        &format!(
            "{}/v1.0/users?$filter=startswith(userPrincipalName,'{prefix}')&$top=999",
            g.url()
        ),
        &t,
    )
    .await;
    assert_eq!(body["value"].as_array().unwrap().len(), expected);

    let id = users[3]["id"].as_str().unwrap();
    let (_, body) = get(&format!("{}/v1.0/users?$filter=id eq '{id}'", g.url()), &t).await;
    assert_eq!(body["value"][0]["id"], id);

    for bad in [
        "userPrincipalName ne 'x'",
        "endswith(mail,'x')",
        "not(accountEnabled eq true)",
    ] {
        let (s, body) = get(&format!("{}/v1.0/users?$filter={bad}", g.url()), &t).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}");
        assert_graph_error(&body, "Request_UnsupportedQuery");
    }

    // $count only with ConsistencyLevel: eventual, and only on the first page.
    let (_, body) = get(&format!("{}/v1.0/users?$count=true", g.url()), &t).await;
    assert!(body.get("@odata.count").is_none());
    let resp = client()
        .get(format!("{}/v1.0/users?$count=true&$top=50", g.url()))
        .bearer_auth(&t)
        .header("ConsistencyLevel", "eventual")
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["@odata.count"], 120);
}

// ---- faults -----------------------------------------------------------------------------------

#[tokio::test]
async fn throttling_then_success_and_injected_failures() {
    let g = GraphEmulator::start(Tenant::generate("contoso.onmicrosoft.com", 3, 0, 4))
        .await
        .unwrap();
    let t = token(&g).await;
    let url = format!("{}/v1.0/users", g.url());
    g.throttle_next(2, 2.128);
    for _ in 0..2 {
        let (s, h, body) = get_full(&url, Some(&t)).await;
        assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(h["retry-after"], "2.128");
        assert_graph_error(&body, "TooManyRequests");
        assert_eq!(body["error"]["innerError"]["status"], "429");
    }
    // The token endpoint is never throttled by throttle_next.
    g.throttle_next(1, 1.0);
    let _ = token(&g).await;
    assert_eq!(get(&url, &t).await.0, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(get(&url, &t).await.0, StatusCode::OK);

    g.fail_next(1, 503);
    g.fail_next(1, 504);
    let (s, body) = get(&url, &t).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_graph_error(&body, "serviceNotAvailable");
    assert_eq!(get(&url, &t).await.0, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(get(&url, &t).await.0, StatusCode::OK);

    let statuses: Vec<u16> = g
        .requests()
        .iter()
        .filter(|r| r.path_and_query == "/v1.0/users")
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, vec![429, 429, 429, 200, 503, 504, 200]);
    g.clear_requests();
    assert!(g.requests().is_empty());
}

// ---- deletion ---------------------------------------------------------------------------------

#[tokio::test]
async fn soft_delete_restore_and_hard_delete_visibility() {
    let mut tenant = Tenant::new("contoso.onmicrosoft.com");
    let id = tenant.add_user(
        json!({"userPrincipalName": "patti@contoso.onmicrosoft.com", "displayName": "Patti"}),
    );
    let other = tenant.add_user(
        json!({"userPrincipalName": "alex@contoso.onmicrosoft.com", "displayName": "Alex"}),
    );
    let group = tenant.add_group(json!({"displayName": "sg-Sales", "members": [id, other]}));
    tenant.assign(&id);
    let g = GraphEmulator::start(tenant).await.unwrap();
    let t = token(&g).await;
    let user_url = format!("{}/v1.0/users/{id}", g.url());
    let list = format!("{}/v1.0/users?$select=id", g.url());
    let deleted = format!(
        "{}/v1.0/directory/deletedItems/microsoft.graph.user?$select=id,userPrincipalName,deletedDateTime",
        g.url()
    );
    let members = format!("{}/v1.0/groups/{group}/members?$select=id", g.url());
    let assigned = format!(
        "{}/v1.0/servicePrincipals/{}/appRoleAssignedTo",
        g.url(),
        g.service_principal_id()
    );
    let ids = |body: &Value| -> Vec<String> {
        body["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                v.get("principalId")
                    .or(v.get("id"))
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };

    g.soft_delete_user(&id);
    let (s, body) = get(&user_url, &t).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_graph_error(&body, "Request_ResourceNotFound");
    assert!(!ids(&get(&list, &t).await.1).contains(&id));
    let (_, body) = get(&deleted, &t).await;
    assert_eq!(body["value"].as_array().unwrap().len(), 1);
    let item = &body["value"][0];
    assert_eq!(item["id"], id);
    assert_eq!(
        item["userPrincipalName"],
        format!("{}patti@contoso.onmicrosoft.com", id.replace('-', ""))
    );
    assert!(item["deletedDateTime"].as_str().unwrap().ends_with('Z'));
    assert!(g.user_by_upn("patti@contoso.onmicrosoft.com").is_none());
    assert!(!ids(&get(&members, &t).await.1).contains(&id));
    assert!(!ids(&get(&assigned, &t).await.1).contains(&id));

    g.restore_user(&id);
    let (s, body) = get(&user_url, &t).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["userPrincipalName"], "patti@contoso.onmicrosoft.com");
    assert!(
        get(&deleted, &t).await.1["value"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(
        ids(&get(&members, &t).await.1).contains(&id),
        "memberships survive soft delete"
    );
    assert!(
        ids(&get(&assigned, &t).await.1).contains(&id),
        "assignments survive soft delete"
    );

    g.soft_delete_user(&id);
    g.hard_delete_user(&id);
    assert_eq!(get(&user_url, &t).await.0, StatusCode::NOT_FOUND);
    assert!(
        get(&deleted, &t).await.1["value"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(
        g.groups()
            .iter()
            .all(|gr| !gr["members"].as_array().unwrap().contains(&json!(id)))
    );
    g.restore_user_must_fail(&id);
}

trait RestoreCheck {
    fn restore_user_must_fail(&self, id: &str);
}

impl RestoreCheck for GraphEmulator {
    fn restore_user_must_fail(&self, id: &str) {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.restore_user(id)));
        assert!(r.is_err(), "a hard-deleted user cannot be restored");
    }
}

// ---- groups, members, assignments -------------------------------------------------------------

#[tokio::test]
async fn members_are_typed_directory_objects() {
    let g = GraphEmulator::start(Tenant::generate("contoso.onmicrosoft.com", 60, 3, 5))
        .await
        .unwrap();
    let t = token(&g).await;
    let groups = g.groups();
    let nested = groups.iter().find(|gr| {
        gr["members"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| groups.iter().any(|o| o["id"] == *m))
    });
    let nested = nested.expect("the generator nests one group");
    let url = format!(
        "{}/v1.0/groups/{}/members?$select=id,userPrincipalName,displayName&$top=5",
        g.url(),
        nested["id"].as_str().unwrap()
    );
    let pages = all_pages(&url, &t).await;
    let items: Vec<&Value> = pages
        .iter()
        .flat_map(|p| p["value"].as_array().unwrap())
        .collect();
    assert_eq!(items.len(), nested["members"].as_array().unwrap().len());
    let group_item = items
        .iter()
        .find(|i| i["@odata.type"] == "#microsoft.graph.group")
        .unwrap();
    assert!(
        group_item.get("userPrincipalName").is_none(),
        "no user-only properties on a group"
    );
    assert!(group_item["displayName"].is_string());
    let user_item = items
        .iter()
        .find(|i| i["@odata.type"] == "#microsoft.graph.user")
        .unwrap();
    assert!(user_item["userPrincipalName"].is_string());
    assert!(
        pages[0]["@odata.context"]
            .as_str()
            .unwrap()
            .contains("$metadata#directoryObjects")
    );

    let (s, body) = get(
        &format!(
            "{}/v1.0/groups/00000000-0000-0000-0000-000000000001/members",
            g.url()
        ),
        &t,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_graph_error(&body, "Request_ResourceNotFound");

    // Groups list uses the group default set.
    let (_, body) = get(&format!("{}/v1.0/groups", g.url()), &t).await;
    let first = &body["value"][0];
    assert_eq!(first["securityEnabled"], true);
    assert_eq!(first["groupTypes"], json!([]));
    assert_eq!(first["classification"], Value::Null);
}

#[tokio::test]
async fn app_role_assigned_to_shape() {
    let mut tenant = Tenant::new("contoso.onmicrosoft.com");
    let u = tenant.add_user(
        json!({"userPrincipalName": "adele@contoso.onmicrosoft.com", "displayName": "Adele Vance"}),
    );
    let grp = tenant.add_group(json!({"displayName": "sg-HR", "members": [u]}));
    tenant.assign(&u);
    tenant.assign(&grp);
    let role = tenant.add_app_role("Admin", "Administrator");
    let g = GraphEmulator::start(tenant).await.unwrap();
    let t = token(&g).await;
    let sp = g.service_principal_id().to_string();
    let (s, body) = get(
        &format!("{}/v1.0/servicePrincipals/{sp}/appRoleAssignedTo", g.url()),
        &t,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert!(body["@odata.context"].as_str().unwrap().ends_with(&format!(
        "$metadata#servicePrincipals('{sp}')/appRoleAssignedTo"
    )));
    let rows = body["value"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "a group assignment is one row, not expanded");
    for row in rows {
        let keys: Vec<&str> = row
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "id",
                "deletedDateTime",
                "appRoleId",
                "createdDateTime",
                "principalDisplayName",
                "principalId",
                "principalType",
                "resourceDisplayName",
                "resourceId"
            ]
        );
        assert_eq!(row["appRoleId"], DEFAULT_ACCESS_ROLE);
        assert_eq!(row["resourceId"], sp);
        assert_eq!(row["deletedDateTime"], Value::Null);
        assert_eq!(
            row["id"].as_str().unwrap().len(),
            43,
            "base64url-like id, not a GUID"
        );
        assert!(row["createdDateTime"].as_str().unwrap().ends_with('Z'));
    }
    let user_row = rows.iter().find(|r| r["principalType"] == "User").unwrap();
    assert_eq!(user_row["principalId"], u);
    assert_eq!(user_row["principalDisplayName"], "Adele Vance");
    let group_row = rows.iter().find(|r| r["principalType"] == "Group").unwrap();
    assert_eq!(group_row["principalId"], grp);

    // The appId is not the service principal id.
    let (s, body) = get(
        &format!(
            "{}/v1.0/servicePrincipals/{}/appRoleAssignedTo",
            g.url(),
            g.client_id()
        ),
        &t,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_graph_error(&body, "Request_ResourceNotFound");
    // …but it resolves through a filter.
    let (_, body) = get(
        &format!(
            "{}/v1.0/servicePrincipals?$filter=appId eq '{}'&$select=id,appRoles",
            g.url(),
            g.client_id()
        ),
        &t,
    )
    .await;
    assert_eq!(body["value"][0]["id"], sp);
    assert_eq!(body["value"][0]["appRoles"][0]["id"], role);

    g.unassign_user(&u);
    g.assign_role(&u, &role);
    let (_, body) = get(
        &format!(
            "{}/v1.0/servicePrincipals/{sp}/appRoleAssignedTo?$top=1",
            g.url()
        ),
        &t,
    )
    .await;
    assert_eq!(body["value"].as_array().unwrap().len(), 1);
    assert!(body["@odata.nextLink"].is_string());
    let pages = all_pages(
        &format!(
            "{}/v1.0/servicePrincipals/{sp}/appRoleAssignedTo?$top=1",
            g.url()
        ),
        &t,
    )
    .await;
    let user_row = pages
        .iter()
        .flat_map(|p| p["value"].as_array().unwrap())
        .find(|r| r["principalType"] == "User")
        .unwrap();
    assert_eq!(user_row["appRoleId"], role);
}

// ---- generator --------------------------------------------------------------------------------

#[test]
fn generator_is_deterministic_and_realistic() {
    let a = Tenant::generate("contoso.onmicrosoft.com", 400, 6, 42);
    let b = Tenant::generate("contoso.onmicrosoft.com", 400, 6, 42);
    assert_eq!(a.to_json(), b.to_json());
    assert_ne!(
        a.to_json(),
        Tenant::generate("contoso.onmicrosoft.com", 400, 6, 43).to_json()
    );
    assert_eq!(a.client_secret(), b.client_secret());

    let users = a.users();
    assert_eq!(users.len(), 400);
    let disabled = users
        .iter()
        .filter(|u| u["accountEnabled"] == false)
        .count();
    assert!(
        (5..=40).contains(&disabled),
        "about 5% disabled, got {disabled}"
    );
    for key in [
        "givenName",
        "surname",
        "displayName",
        "userPrincipalName",
        "mailNickname",
        "department",
        "jobTitle",
        "city",
        "country",
        "preferredLanguage",
        "businessPhones",
    ] {
        assert!(
            users.iter().all(|u| u.get(key).is_some()),
            "{key} always set"
        );
    }
    let upns: std::collections::HashSet<&str> = users
        .iter()
        .map(|u| u["userPrincipalName"].as_str().unwrap())
        .collect();
    assert_eq!(upns.len(), 400, "UPNs are unique");
    assert!(
        users.iter().any(|u| u.get("mobilePhone").is_none()),
        "some unset values exist to exercise nulls"
    );
    let groups = a.groups();
    assert_eq!(groups.len(), 6);
    assert!(
        groups
            .iter()
            .all(|g| !g["members"].as_array().unwrap().is_empty())
    );
    let assigned = a.assigned_principals();
    assert!(assigned.len() > 50 && assigned.len() < 400);
    assert!(
        groups
            .iter()
            .any(|g| assigned.contains(&g["id"].as_str().unwrap().to_string()))
    );
}

// ---- delta ------------------------------------------------------------------------------------

/// Runs one delta round from `url`; returns (all objects, deltaLink, page count).
async fn delta_round(url: &str, token: &str) -> (Vec<Value>, String, usize) {
    let mut next = url.to_string();
    let mut objects = Vec::new();
    let mut pages = 0;
    loop {
        let (s, body) = get(&next, token).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        pages += 1;
        let has_next = body.get("@odata.nextLink").is_some();
        let has_delta = body.get("@odata.deltaLink").is_some();
        assert!(has_next ^ has_delta, "exactly one link per page: {body}");
        objects.extend(body["value"].as_array().unwrap().iter().cloned());
        if has_delta {
            return (
                objects,
                body["@odata.deltaLink"].as_str().unwrap().to_string(),
                pages,
            );
        }
        next = body["@odata.nextLink"].as_str().unwrap().to_string();
        assert!(!next.contains("$select"), "options live inside the token");
    }
}

#[tokio::test]
async fn users_delta_rounds() {
    let g = GraphEmulator::start(Tenant::generate("contoso.onmicrosoft.com", 30, 2, 11))
        .await
        .unwrap();
    g.set_delta_page_size(10);
    let t = token(&g).await;
    let (objects, link, pages) = delta_round(
        &format!(
            "{}/v1.0/users/delta?$select=displayName,mobilePhone,accountEnabled",
            g.url()
        ),
        &t,
    )
    .await;
    assert!(
        pages >= 4,
        "30 users by 10 plus the closing empty page: {pages}"
    );
    let mut ids: Vec<&str> = objects.iter().map(|o| o["id"].as_str().unwrap()).collect();
    assert!(ids.len() > 30, "replays within a round");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 30);
    let no_phone = objects.iter().find(|o| o.get("mobilePhone").is_none());
    assert!(
        no_phone.is_some(),
        "never-set properties are omitted in delta"
    );

    // No changes: empty, but a new deltaLink.
    let (objects, link2, _) = delta_round(&link, &t).await;
    assert!(objects.is_empty());
    assert_ne!(link, link2);

    let users = g.users();
    let (a, b, c, d) = (
        users[0]["id"].as_str().unwrap().to_string(),
        users[1]["id"].as_str().unwrap().to_string(),
        users[2]["id"].as_str().unwrap().to_string(),
        users[3]["id"].as_str().unwrap().to_string(),
    );
    g.update_user(&a, json!({"mobilePhone": "+1 425 555 0000"}));
    g.update_user(&a, json!({"mobilePhone": null}));
    g.soft_delete_user(&b);
    g.hard_delete_user(&c);
    g.update_user(&d, json!({"department": "Not selected"}));
    let (objects, link3, _) = delta_round(&link2, &t).await;
    let find = |id: &str| objects.iter().find(|o| o["id"] == id).cloned();
    let ua = find(&a).expect("changed user appears");
    assert!(
        ua.as_object().unwrap().contains_key("mobilePhone") && ua["mobilePhone"].is_null(),
        "cleared → null: {ua}"
    );
    assert_eq!(find(&b).unwrap()["@removed"]["reason"], "changed");
    assert_eq!(find(&c).unwrap()["@removed"]["reason"], "deleted");
    assert!(
        find(&d).is_none(),
        "changes to unselected properties do not show"
    );

    g.restore_user(&b);
    g.disable_user(&a);
    let (objects, link4, _) = delta_round(&link3, &t).await;
    let restored = objects.iter().find(|o| o["id"] == b).unwrap();
    assert!(restored.get("@removed").is_none());
    let disabled = objects.iter().find(|o| o["id"] == a).unwrap();
    assert_eq!(disabled["accountEnabled"], false);

    let (s, body) = get(
        &format!("{}/v1.0/users/delta?$deltatoken=latest", g.url()),
        &t,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert!(body["value"].as_array().unwrap().is_empty() && body["@odata.deltaLink"].is_string());

    g.reset_delta_next();
    let resp = client().get(&link4).bearer_auth(&t).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::GONE);
    assert!(
        resp.headers()["location"]
            .to_str()
            .unwrap()
            .contains("/v1.0/users/delta?$select=")
    );

    g.expire_delta_tokens();
    let (s, body) = get(&link4, &t).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_graph_error(&body, "syncStateNotFound");
    let (s, _) = get(&format!("{}/v1.0/users/delta?$top=5", g.url()), &t).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn manager_endpoint_and_expand() {
    let mut tenant = Tenant::new("contoso.onmicrosoft.com");
    let boss = tenant.add_user(
        json!({"userPrincipalName": "boss@contoso.onmicrosoft.com", "displayName": "Boss"}),
    );
    let worker = tenant.add_user(
        json!({"userPrincipalName": "worker@contoso.onmicrosoft.com", "displayName": "Worker"}),
    );
    tenant.set_manager(&worker, Some(&boss));
    let g = GraphEmulator::start(tenant).await.unwrap();
    let t = token(&g).await;
    let (s, body) = get(
        &format!(
            "{}/v1.0/users/{worker}/manager?$select=id,displayName",
            g.url()
        ),
        &t,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["@odata.type"], "#microsoft.graph.user");
    assert_eq!(body["id"], boss);
    let (s, body) = get(&format!("{}/v1.0/users/{boss}/manager", g.url()), &t).await;
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "no manager is a 404, not a null body"
    );
    assert_graph_error(&body, "Request_ResourceNotFound");
    let (_, body) = get(
        &format!(
            "{}/v1.0/users?$select=id,displayName&$expand=manager($select=id,displayName)",
            g.url()
        ),
        &t,
    )
    .await;
    let rows = body["value"].as_array().unwrap();
    let w = rows.iter().find(|r| r["id"] == worker).unwrap();
    assert_eq!(w["manager"]["id"], boss);
    let b = rows.iter().find(|r| r["id"] == boss).unwrap();
    assert!(b.get("manager").is_none());
}

#[tokio::test]
async fn fixture_file_round_trip_serves_the_same_tenant() {
    let original = Tenant::generate("contoso.onmicrosoft.com", 20, 2, 8);
    let json = original.to_json();
    let g = GraphEmulator::start(Tenant::from_json(&json).unwrap())
        .await
        .unwrap();
    assert_eq!(g.client_id(), original.client_id());
    let t = token(&g).await;
    let (_, body) = get(&format!("{}/v1.0/users?$select=id", g.url()), &t).await;
    assert_eq!(body["value"].as_array().unwrap().len(), 20);
    let snap = g.snapshot();
    assert_eq!(snap.to_json(), json);
}

// ---- certificates, groups delta, $batch ----------------------------------------------------------

fn pem_der(pem: &str) -> Vec<u8> {
    use base64::engine::general_purpose::STANDARD;
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(b64).unwrap()
}

#[tokio::test]
async fn registered_certificates_make_assertion_signatures_count() {
    use aws_lc_rs::digest::{SHA256, digest};
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RSA_PSS_SHA256, RsaEncoding, RsaKeyPair};
    use scimsync_testkit::graph::test_only;

    let mut t = Tenant::new("contoso.onmicrosoft.com");
    t.register_certificate(test_only::CERT_A_PEM);
    let g = GraphEmulator::start(t).await.unwrap();
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"aud": g.token_url(), "iss": g.client_id(), "sub": g.client_id(),
                        "jti": "x", "nbf": now, "exp": now + 600});
    let thumb = URL_SAFE_NO_PAD.encode(digest(&SHA256, &pem_der(test_only::CERT_A_PEM)));
    let send = |assertion: String| {
        let id = g.client_id().to_string();
        let url = g.token_url();
        async move {
            let resp = client()
                .post(url)
                .form(&[
                    ("client_id", id.as_str()),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", &assertion),
                    ("scope", GRAPH_SCOPE),
                    ("grant_type", "client_credentials"),
                ])
                .send()
                .await
                .unwrap();
            (resp.status(), resp.json::<Value>().await.unwrap())
        }
    };
    // `signed_as` lets a test claim one algorithm in the header and sign with another.
    let sign_as = |alg: &str, signed_as: &'static dyn RsaEncoding, key_pem: &str| {
        let head = json!({"alg": alg, "typ": "JWT", "x5t#S256": thumb});
        let signed = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(head.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let key = RsaKeyPair::from_pkcs8(&pem_der(key_pem)).unwrap();
        let mut sig = vec![0; key.public_modulus_len()];
        key.sign(signed_as, &SystemRandom::new(), signed.as_bytes(), &mut sig)
            .unwrap();
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(sig))
    };
    let sign = |key_pem: &str| sign_as("RS256", &RSA_PKCS1_SHA256, key_pem);

    let (s, body) = send(sign(test_only::KEY_A_PEM)).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (s, body) = send(sign_as("PS256", &RSA_PSS_SHA256, test_only::KEY_A_PEM)).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (s, body) = send(sign(test_only::KEY_B_PEM)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_oauth_error(&body, "invalid_client", 700027);
    // A PSS signature is not a PKCS#1 v1.5 one: the header's `alg` decides how it is checked.
    let (s, body) = send(sign_as("RS256", &RSA_PSS_SHA256, test_only::KEY_A_PEM)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_oauth_error(&body, "invalid_client", 700027);
    // No thumbprint naming a registered certificate: "the key was not found".
    let (s, body) = send(jwt(json!({"alg": "RS256"}), claims.clone())).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_oauth_error(&body, "invalid_client", 700027);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("The key was not found")
    );
}

#[tokio::test]
async fn groups_delta_sends_member_chunks_and_later_changes() {
    let mut t = Tenant::new("contoso.onmicrosoft.com");
    let users: Vec<String> = (0..5)
        .map(|i| t.add_user(json!({"userPrincipalName": format!("u{i}@contoso.com")})))
        .collect();
    let big = t.add_group(json!({"displayName": "big", "members": users}));
    let empty = t.add_group(json!({"displayName": "empty"}));
    let g = GraphEmulator::start(t).await.unwrap();
    g.set_group_member_chunk(2);
    g.set_delta_quirks(false);
    let tok = token(&g).await;
    let pages = all_pages(
        &format!("{}/v1.0/groups/delta?$select=displayName,members", g.url()),
        &tok,
    )
    .await;
    let items: Vec<&Value> = pages
        .iter()
        .flat_map(|p| p["value"].as_array().unwrap())
        .collect();
    let big_items: Vec<&&Value> = items.iter().filter(|i| i["id"] == big.as_str()).collect();
    assert_eq!(big_items.len(), 3, "5 members in chunks of 2");
    assert!(big_items.iter().all(|i| i["displayName"] == "big"));
    let members: usize = big_items
        .iter()
        .map(|i| i["members@delta"].as_array().unwrap().len())
        .sum();
    assert_eq!(members, 5);
    let e = items.iter().find(|i| i["id"] == empty.as_str()).unwrap();
    assert!(
        e.get("members@delta").is_none(),
        "no key for a group without members"
    );
    let delta = pages.last().unwrap()["@odata.deltaLink"]
        .as_str()
        .unwrap()
        .to_string();

    g.remove_member(&big, &users[0]);
    g.delete_group(&empty);
    let (s, body) = get(&delta, &tok).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let value = body["value"].as_array().unwrap();
    let b = value.iter().find(|i| i["id"] == big.as_str()).unwrap();
    assert_eq!(
        b["members@delta"],
        json!([{"@odata.type": "#microsoft.graph.user", "id": users[0], "@removed": {"reason": "deleted"}}])
    );
    let gone = value.iter().find(|i| i["id"] == empty.as_str()).unwrap();
    assert_eq!(gone["@removed"]["reason"], "deleted");
}

#[tokio::test]
async fn batch_answers_items_with_their_own_status() {
    let mut t = Tenant::new("contoso.onmicrosoft.com");
    let id = t.add_user(json!({"userPrincipalName": "a@contoso.com", "displayName": "A"}));
    let g = GraphEmulator::start(t).await.unwrap();
    let tok = token(&g).await;
    let post = |body: Value| {
        let url = format!("{}/v1.0/$batch", g.url());
        let tok = tok.clone();
        async move {
            let resp = client()
                .post(url)
                .bearer_auth(tok)
                .json(&body)
                .send()
                .await
                .unwrap();
            (resp.status(), resp.json::<Value>().await.unwrap())
        }
    };
    g.throttle_batch_items(1, 2.5);
    let (s, body) = post(json!({"requests": [
        {"id": "1", "method": "GET", "url": format!("/users/{id}?$select=displayName")},
        {"id": "2", "method": "GET", "url": format!("/users/{id}?$select=displayName")},
        {"id": "3", "method": "GET", "url": "/users/00000000-0000-0000-0000-000000000000"},
        {"id": "4", "method": "GET", "url": format!("{}/v1.0/users", g.url())},
    ]}))
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let by_id = |k: &str| {
        body["responses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == k)
            .unwrap()
            .clone()
    };
    assert_eq!(by_id("1")["status"], 429);
    assert_eq!(by_id("1")["headers"]["Retry-After"], "2.5");
    assert_eq!(by_id("2")["status"], 200);
    assert_eq!(by_id("2")["body"]["displayName"], "A");
    assert_eq!(by_id("3")["status"], 404);
    assert_eq!(by_id("4")["status"], 400, "absolute URLs are refused");

    let many: Vec<Value> = (0..21)
        .map(|i| json!({"id": i.to_string(), "method": "GET", "url": "/users"}))
        .collect();
    let (s, body) = post(json!({ "requests": many })).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_graph_error(&body, "BadRequest");
}
