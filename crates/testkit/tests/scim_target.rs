//! End-to-end tests of the built-in SCIM target over real HTTP, with request shapes taken from
//! RFC 7644 and from what Entra sends in both of its PATCH dialects.

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use scimsync_testkit::scim::{ScimTarget, ScimTargetOptions, klaxoon_group_schema};
use serde_json::{Value, json};

const CORE_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const CORE_GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    fn new(target: &ScimTarget) -> Self {
        Client {
            http: reqwest::Client::new(),
            base: target.url(),
            token: target.token().to_owned(),
        }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Value>,
    ) -> Resp {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .query(query);
        if let Some(b) = body {
            req = req
                .header(CONTENT_TYPE, "application/scim+json")
                .body(b.to_string());
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).expect("JSON body")
        };
        Resp {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, path: &str, query: &[(&str, &str)]) -> Resp {
        self.send(reqwest::Method::GET, path, query, None).await
    }
    async fn post(&self, path: &str, body: Value) -> Resp {
        self.send(reqwest::Method::POST, path, &[], Some(body))
            .await
    }
    async fn patch(&self, path: &str, ops: Value) -> Resp {
        self.send(
            reqwest::Method::PATCH,
            path,
            &[],
            Some(json!({"schemas": [PATCH_OP], "Operations": ops})),
        )
        .await
    }
    async fn delete(&self, path: &str) -> Resp {
        self.send(reqwest::Method::DELETE, path, &[], None).await
    }
    async fn filter(&self, endpoint: &str, filter: &str) -> Resp {
        self.get(endpoint, &[("filter", filter)]).await
    }
}

async fn start() -> (ScimTarget, Client) {
    let target = ScimTarget::start(ScimTargetOptions::default())
        .await
        .expect("start");
    let client = Client::new(&target);
    (target, client)
}

fn entra_user(user_name: &str) -> Value {
    json!({
        "schemas": [CORE_USER, ENTERPRISE],
        "externalId": format!("ext-{user_name}"),
        "userName": user_name,
        "active": true,
        "emails": [{"primary": true, "type": "work", "value": format!("{user_name}@work.example")}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "Given Family", "familyName": "Family", "givenName": "Given"},
        "roles": [],
        "title": null,
    })
}

fn assert_scim_error(r: &Resp, status: u16, scim_type: Option<&str>) {
    assert_eq!(r.status.as_u16(), status, "body: {}", r.body);
    assert_eq!(
        r.body["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:Error"])
    );
    assert_eq!(
        r.body["status"],
        json!(status.to_string()),
        "status is a string"
    );
    assert_eq!(r.body["scimType"].as_str(), scim_type, "body: {}", r.body);
    assert_eq!(r.headers[CONTENT_TYPE], "application/scim+json");
}

#[tokio::test]
async fn create_conflict_and_case_insensitive_filter() {
    let (target, c) = start().await;
    let r = c.post("/Users", entra_user("Alice@Example.com")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.headers[CONTENT_TYPE], "application/scim+json");
    let id = r.body["id"].as_str().expect("id").to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok());
    assert_eq!(r.body["meta"]["resourceType"], "User");
    assert_eq!(r.body["meta"]["version"], "W/\"1\"");
    let location = format!("{}/Users/{id}", target.url());
    assert_eq!(r.body["meta"]["location"], json!(location));
    assert_eq!(r.headers["location"], location.as_str());
    assert!(
        r.body.get("title").is_none(),
        "explicit nulls are not stored"
    );
    assert!(r.body.get("roles").is_none(), "empty arrays are unassigned");

    let dup = c.post("/Users", entra_user("alice@EXAMPLE.com")).await;
    assert_scim_error(&dup, 409, Some("uniqueness"));

    let hit = c
        .filter("/Users", r#"userName eq "ALICE@example.COM""#)
        .await;
    assert_eq!(hit.status, StatusCode::OK);
    assert_eq!(
        hit.body["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"])
    );
    assert_eq!(hit.body["totalResults"], 1);
    assert_eq!(hit.body["Resources"][0]["id"], json!(id));
    assert_eq!(hit.body["startIndex"], 1);
    assert_eq!(hit.body["itemsPerPage"], 1);

    // Entra's Test Connection: a random GUID must give 200 and an empty list, never 404.
    let miss = c
        .filter(
            "/Users",
            r#"userName eq "6f9619ff-8b86-d011-b42d-00cf4fc964ff""#,
        )
        .await;
    assert_eq!(miss.status, StatusCode::OK);
    assert_eq!(miss.body["totalResults"], 0);
    assert_eq!(miss.body["Resources"], json!([]));

    for (f, n) in [
        (r#"externalId eq "ext-Alice@Example.com""#, 1),
        (r#"externalId eq "EXT-alice@example.com""#, 0),
        (
            r#"emails[type eq "work" and value eq "Alice@Example.com@work.example"]"#,
            1,
        ),
        (r#"emails.value eq "alice@example.com@work.example""#, 1),
        (r#"name.familyName eq "family" and active eq true"#, 1),
        (r#"userName sw "alice" or userName eq "nobody""#, 1),
        (r#"userName eq "a \"quoted\" name""#, 0),
    ] {
        let r = c.filter("/Users", f).await;
        assert_eq!(r.status, StatusCode::OK, "{f}: {}", r.body);
        assert_eq!(r.body["totalResults"], n, "{f}");
    }
    let hit = c.filter("/Users", &format!(r#"id eq "{id}""#)).await;
    assert_eq!(hit.body["totalResults"], 1);

    for bad in [
        "userName eq jyoung",
        "userName equals \"x\"",
        "favouriteColour eq \"x\"",
        "userName eq \"open",
    ] {
        assert_scim_error(&c.filter("/Users", bad).await, 400, Some("invalidFilter"));
    }
}

#[tokio::test]
async fn create_rejects_schema_violations() {
    let (_target, c) = start().await;
    let no_name = c
        .post("/Users", json!({"schemas": [CORE_USER], "active": true}))
        .await;
    assert_scim_error(&no_name, 400, Some("invalidValue"));
    let custom = c
        .post(
            "/Users",
            json!({"schemas": [CORE_USER], "userName": "u1", "urn:contoso:scim:schemas:extension:custom:2.0:User": {"badge": "1"}}),
        )
        .await;
    assert_scim_error(&custom, 400, Some("invalidValue"));
    let bad_active = c
        .post(
            "/Users",
            json!({"schemas": [CORE_USER], "userName": "u1", "active": "yes"}),
        )
        .await;
    assert_scim_error(&bad_active, 400, Some("invalidValue"));
    let emails_object = c
        .post(
            "/Users",
            json!({"schemas": [CORE_USER], "userName": "u1", "emails": {"value": "a@b"}}),
        )
        .await;
    assert_scim_error(&emails_object, 400, Some("invalidValue"));
    let phone_strings = c
        .post(
            "/Users",
            json!({"schemas": [CORE_USER], "userName": "u1", "phoneNumbers": ["+1 555"]}),
        )
        .await;
    assert_scim_error(&phone_strings, 400, Some("invalidValue"));
    let no_schemas = c.post("/Users", json!({"userName": "u1"})).await;
    assert_eq!(no_schemas.status, StatusCode::BAD_REQUEST);
    let top_level_department = c
        .post(
            "/Users",
            json!({"schemas": [CORE_USER], "userName": "u1", "department": "Eng"}),
        )
        .await;
    assert_eq!(
        top_level_department.status,
        StatusCode::BAD_REQUEST,
        "enterprise attribute outside its extension"
    );

    // The default Entra client sends "True"/"False" strings: accepted, stored as booleans.
    let ok = c
        .post(
            "/Users",
            json!({"schemas": [CORE_USER], "userName": "u1", "active": "False"}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::CREATED);
    assert_eq!(ok.body["active"], false);

    // A plain application/json body is fine; anything else is 415.
    let r = c
        .http
        .post(format!("{}/Users", c.base))
        .bearer_auth(&c.token)
        .json(&json!({"schemas": [CORE_USER], "userName": "u2"}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = c
        .http
        .post(format!("{}/Users", c.base))
        .bearer_auth(&c.token)
        .header(CONTENT_TYPE, "text/plain")
        .body(json!({"schemas": [CORE_USER], "userName": "u3"}).to_string())
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn strict_booleans_reject_strings() {
    let target = ScimTarget::start(ScimTargetOptions {
        strict_booleans: true,
        ..Default::default()
    })
    .await
    .expect("start");
    let c = Client::new(&target);
    let r = c
        .post(
            "/Users",
            json!({"schemas": [CORE_USER], "userName": "u1", "active": "False"}),
        )
        .await;
    assert_scim_error(&r, 400, Some("invalidValue"));
    let id = target.insert_user(json!({"userName": "u1", "active": true}));
    let r = c
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "Replace", "path": "active", "value": "False"}]),
        )
        .await;
    assert_scim_error(&r, 400, Some("invalidValue"));
    let r = c
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "replace", "path": "active", "value": false}]),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(target.user(&id).expect("user")["active"], false);
}

#[tokio::test]
async fn patch_default_entra_dialect() {
    let (target, c) = start().await;
    let id = c.post("/Users", entra_user("bob")).await.body["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let r = c
        .patch(
            &format!("/Users/{id}"),
            json!([
                {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "bob.new@work.example"},
                {"op": "Replace", "path": "name.familyName", "value": "Newfamily"},
                {"op": "Replace", "path": "active", "value": "False"},
                {"op": "Add", "path": "nickName", "value": "Bobby"},
                {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Tech"}
            ]),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["id"], json!(id), "users get the resource back");
    assert_eq!(r.body["meta"]["version"], "W/\"2\"");
    let u = target.user(&id).expect("user");
    assert_eq!(
        u["emails"],
        json!([{"primary": true, "type": "work", "value": "bob.new@work.example"}])
    );
    assert_eq!(u["name"]["familyName"], "Newfamily");
    assert_eq!(u["name"]["givenName"], "Given");
    assert_eq!(u["active"], false, "string \"False\" stored as a boolean");
    assert_eq!(u["nickName"], "Bobby");
    assert_eq!(u[ENTERPRISE]["department"], "Tech");
    assert!(
        u["schemas"]
            .as_array()
            .expect("schemas")
            .contains(&json!(ENTERPRISE))
    );

    // The extension attribute is filterable by its full URN path.
    let r = c
        .filter("/Users", &format!(r#"{ENTERPRISE}:department eq "tech""#))
        .await;
    assert_eq!(r.body["totalResults"], 1);

    // A failing operation leaves the resource untouched (all or nothing).
    let r = c
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "Replace", "path": "title", "value": "CEO"}, {"op": "Replace", "path": "bogus", "value": 1}]),
        )
        .await;
    assert_scim_error(&r, 400, Some("invalidPath"));
    assert!(target.user(&id).expect("user").get("title").is_none());
}

#[tokio::test]
async fn patch_rfc_dialect_pathless_and_filtered_paths() {
    let (target, c) = start().await;
    let id = target.insert_user(json!({"schemas": [CORE_USER], "userName": "carol", "name": {"givenName": "C", "familyName": "F"}}));
    let path = format!("/Users/{id}");

    // aadOptscim062020: no work email yet, so replacing its value has no target…
    let r = c
        .patch(&path, json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "c@work.example"}]))
        .await;
    assert_scim_error(&r, 400, Some("noTarget"));
    assert_scim_error(
        &c.patch(&path, json!([{"op": "add", "path": "emails[type eq \"work\"].value", "value": "c@work.example"}])).await,
        400,
        Some("noTarget"),
    );
    // …the client must add an emails entry instead, after which replace works.
    let r = c
        .patch(&path, json!([{"op": "add", "path": "emails", "value": [{"type": "work", "value": "c@work.example", "primary": true}]}]))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = c
        .patch(
            &path,
            json!([
                {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "carol@work.example"},
                {"op": "replace", "value": {
                    "displayName": "Carol", "name.givenName": "Carol", "name.familyName": "Field",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "1001",
                    "active": false
                }}
            ]),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let u = target.user(&id).expect("user");
    assert_eq!(
        u["emails"],
        json!([{"type": "work", "value": "carol@work.example", "primary": true}])
    );
    assert_eq!(u["displayName"], "Carol");
    assert_eq!(
        u["name"],
        json!({"givenName": "Carol", "familyName": "Field"})
    );
    assert_eq!(u[ENTERPRISE]["employeeNumber"], "1001");
    assert_eq!(u["active"], false);
    let r = c
        .filter(
            "/Users",
            &format!(r#"{ENTERPRISE}:employeeNumber eq "1001""#),
        )
        .await;
    assert_eq!(r.body["totalResults"], 1);

    // Extension object as a key, plus a primary flag replaced through a filter path.
    let r = c
        .patch(
            &path,
            json!([
                {"op": "replace", "value": {ENTERPRISE: {"department": "Ops", "costCenter": "42"}}},
                {"op": "add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Tech Infrastructure"},
                {"op": "replace", "path": "emails[type eq \"work\"].primary", "value": true}
            ]),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let u = target.user(&id).expect("user");
    assert_eq!(
        u[ENTERPRISE],
        json!({"employeeNumber": "1001", "department": "Tech Infrastructure", "costCenter": "42"})
    );

    // Remove needs a path; removing a sub-attribute and a filtered value works.
    assert_scim_error(
        &c.patch(&path, json!([{"op": "remove"}])).await,
        400,
        Some("noTarget"),
    );
    let r = c
        .patch(&path, json!([{"op": "remove", "path": "name.familyName"}, {"op": "remove", "path": "emails[type eq \"work\"]"}]))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let u = target.user(&id).expect("user");
    assert_eq!(u["name"], json!({"givenName": "Carol"}));
    assert!(u.get("emails").is_none());

    // userName changes keep uniqueness.
    target.insert_user(json!({"userName": "dave"}));
    assert_scim_error(
        &c.patch(
            &path,
            json!([{"op": "replace", "path": "userName", "value": "DAVE"}]),
        )
        .await,
        409,
        Some("uniqueness"),
    );
    assert_scim_error(
        &c.patch(
            "/Users/no-such-id",
            json!([{"op": "replace", "path": "title", "value": "x"}]),
        )
        .await,
        404,
        None,
    );
}

#[tokio::test]
async fn manager_must_be_complex() {
    let (target, c) = start().await;
    let boss = target.insert_user(json!({"userName": "boss"}));
    let mut u = entra_user("worker");
    u[ENTERPRISE] = json!({"manager": boss});
    assert_scim_error(
        &c.post("/Users", u.clone()).await,
        400,
        Some("invalidValue"),
    );
    u[ENTERPRISE] = json!({"manager": {"value": boss}});
    let r = c.post("/Users", u).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_str().expect("id").to_owned();

    let manager_path = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager";
    let r = c
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "add", "path": manager_path, "value": boss}]),
        )
        .await;
    assert_scim_error(&r, 400, Some("invalidValue"));
    let r = c
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "Add", "path": "manager", "value": [{"value": boss}]}]),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "manager is not a core attribute"
    );
    let r = c
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "replace", "path": manager_path, "value": {"value": boss}}]),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = c
        .filter("/Users", &format!(r#"{manager_path}.value eq "{boss}""#))
        .await;
    assert_eq!(r.body["totalResults"], 1);
}

#[tokio::test]
async fn groups_members_both_dialects() {
    let (target, c) = start().await;
    let u1 = target.insert_user(json!({"userName": "u1"}));
    let u2 = target.insert_user(json!({"userName": "u2"}));
    let u3 = target.insert_user(json!({"userName": "u3"}));

    assert_scim_error(
        &c.post("/Groups", json!({"schemas": [CORE_GROUP]})).await,
        400,
        Some("invalidValue"),
    );
    let r = c
        .post(
            "/Groups",
            json!({
                "schemas": [CORE_GROUP, "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
                "externalId": "8aa1a0c0", "displayName": "Sales", "meta": {"resourceType": "Group"}
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let gid = r.body["id"].as_str().expect("id").to_owned();
    let path = format!("/Groups/{gid}");

    let r = c
        .patch(&path, json!([{"op": "Add", "path": "members", "value": [{"$ref": null, "value": u1}, {"value": u2}]}]))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "groups answer 204");
    let r = c
        .patch(
            &path,
            json!([{"op": "add", "path": "members", "value": [{"value": u3}, {"value": u1}]}]),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        target.group_member_ids(&gid),
        vec![u1.clone(), u2.clone(), u3.clone()],
        "no duplicates"
    );

    // Reads as Entra does them: members excluded.
    let r = c
        .get(
            "/Groups",
            &[
                ("excludedAttributes", "members"),
                ("filter", r#"displayName eq "sales""#),
            ],
        )
        .await;
    assert_eq!(r.body["totalResults"], 1);
    assert!(r.body["Resources"][0].get("members").is_none());
    assert_eq!(r.body["Resources"][0]["displayName"], "Sales");
    let r = c.get(&path, &[("excludedAttributes", "members")]).await;
    assert!(r.body.get("members").is_none());
    assert_eq!(r.body["id"], json!(gid));
    let r = c
        .filter(
            "/Groups",
            &format!(r#"id eq "{gid}" and members eq "{u2}""#),
        )
        .await;
    assert_eq!(r.body["totalResults"], 1);

    // Default dialect removal by value list; RFC removal by filter path.
    let r = c
        .patch(
            &path,
            json!([{"op": "Remove", "path": "members", "value": [{"value": u1}]}]),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = c
        .patch(
            &path,
            json!([{"op": "remove", "path": format!("members[value eq \"{u2}\"]")}]),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(target.group_member_ids(&gid), vec![u3.clone()]);

    let r = c
        .patch(
            &path,
            json!([{"op": "Replace", "path": "displayName", "value": "Sales EMEA"}]),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        target.group(&gid).expect("group")["displayName"],
        "Sales EMEA"
    );

    // Unknown ids are accepted but reported, as are members whose user was deleted.
    assert!(target.dangling_members().is_empty());
    c.patch(
        &path,
        json!([{"op": "add", "path": "members", "value": [{"value": "ghost"}]}]),
    )
    .await;
    assert_eq!(
        c.delete(&format!("/Users/{u3}")).await.status,
        StatusCode::NO_CONTENT
    );
    let mut dangling = target.dangling_members();
    dangling.sort();
    assert_eq!(
        dangling,
        vec![(gid.clone(), u3.clone()), (gid.clone(), "ghost".to_owned())]
    );

    assert_eq!(c.delete(&path).await.status, StatusCode::NO_CONTENT);
    assert_scim_error(&c.get(&path, &[]).await, 404, None);
    assert!(target.groups().is_empty());
}

#[tokio::test]
async fn auth_and_token_rotation() {
    let (mut target, c) = start().await;
    let r = c
        .http
        .get(format!("{}/Users", c.base))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()[CONTENT_TYPE], "application/scim+json");
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["status"], "401");
    let r = c
        .http
        .get(format!("{}/Users", c.base))
        .bearer_auth("wrong")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(c.get("/Users", &[]).await.status, StatusCode::OK);

    target.set_token("rotated");
    assert_eq!(c.get("/Users", &[]).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(target.token(), "rotated");
    let statuses: Vec<u16> = target.requests().iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        vec![401, 401, 200, 401],
        "every request is recorded with its status"
    );
}

#[tokio::test]
async fn fault_injection_and_non_compliant_filters() {
    let (target, c) = start().await;
    target.throttle_next(2, 7);
    target.fail_next(1, 503);
    for _ in 0..2 {
        let r = c.get("/Users", &[]).await;
        assert_scim_error(&r, 429, None);
        assert_eq!(r.headers["retry-after"], "7");
    }
    assert_scim_error(&c.get("/Users", &[]).await, 503, None);
    assert_eq!(c.get("/Users", &[]).await.status, StatusCode::OK);

    target.insert_user(json!({"userName": "erin"}));
    target.set_filter_404(true);
    assert_scim_error(
        &c.filter("/Users", r#"userName eq "nobody""#).await,
        404,
        None,
    );
    assert_eq!(
        c.filter("/Users", r#"userName eq "erin""#).await.body["totalResults"],
        1
    );
    assert_eq!(
        c.get("/Users", &[]).await.status,
        StatusCode::OK,
        "unfiltered lists are unaffected"
    );
    target.set_filter_404(false);
    assert_eq!(
        c.filter("/Users", r#"userName eq "nobody""#).await.status,
        StatusCode::OK
    );

    // A lagging replica: the next filtered list misses although the user exists.
    target.stale_filter_next(1);
    let r = c.filter("/Users", r#"userName eq "erin""#).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["totalResults"], 0);
    assert_eq!(
        c.get("/Users", &[]).await.body["totalResults"],
        1,
        "unfiltered lists are not stale"
    );
    assert_eq!(
        c.filter("/Users", r#"userName eq "erin""#).await.body["totalResults"],
        1
    );
}

#[tokio::test]
async fn delete_then_404_and_put_replaces() {
    let (target, c) = start().await;
    let id = c.post("/Users", entra_user("frank")).await.body["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let path = format!("/Users/{id}");
    let r = c
        .send(
            reqwest::Method::PUT,
            &path,
            &[],
            Some(json!({"schemas": [CORE_USER], "id": id, "userName": "frank", "title": "CTO"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        r.body.get("emails").is_none(),
        "PUT replaces the whole resource"
    );
    assert_eq!(r.body["title"], "CTO");

    // A stale If-Match is refused.
    let r = c
        .http
        .delete(format!("{}{path}", c.base))
        .bearer_auth(&c.token)
        .header("If-Match", "W/\"1\"")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::PRECONDITION_FAILED);

    assert_eq!(c.delete(&path).await.status, StatusCode::NO_CONTENT);
    assert_scim_error(&c.get(&path, &[]).await, 404, None);
    assert_scim_error(&c.delete(&path).await, 404, None);
    assert!(target.users().is_empty());
    let writes: Vec<(String, u16)> = target
        .writes()
        .iter()
        .map(|w| (w.method.clone(), w.status))
        .collect();
    assert_eq!(
        writes,
        vec![
            ("POST".into(), 201),
            ("PUT".into(), 200),
            ("DELETE".into(), 412),
            ("DELETE".into(), 204),
            ("DELETE".into(), 404)
        ]
    );
    assert_eq!(
        target.writes()[0].body.as_ref().expect("body")["userName"],
        "frank"
    );
    target.clear_requests();
    assert!(target.requests().is_empty());
}

#[tokio::test]
async fn paging_projection_and_discovery() {
    let target = ScimTarget::start(ScimTargetOptions {
        default_page_size: 2,
        ..Default::default()
    })
    .await
    .expect("start");
    let c = Client::new(&target);
    for i in 0..5 {
        target.insert_user(
            json!({"userName": format!("user{i}"), "title": "T", "password": "secret"}),
        );
    }
    let r = c.get("/Users", &[]).await;
    assert_eq!(r.body["totalResults"], 5);
    assert_eq!(r.body["itemsPerPage"], 2);
    assert!(
        r.body["Resources"][0].get("password").is_none(),
        "password is never returned"
    );
    let r = c
        .get(
            "/Users",
            &[
                ("startIndex", "4"),
                ("count", "10"),
                ("attributes", "userName"),
            ],
        )
        .await;
    assert_eq!(r.body["startIndex"], 4);
    assert_eq!(r.body["itemsPerPage"], 2);
    let first = &r.body["Resources"][0];
    assert_eq!(first["userName"], "user3");
    assert!(first.get("id").is_some(), "id is always returned");
    assert!(first.get("title").is_none());
    let r = c.get("/Users", &[("count", "0")]).await;
    assert_eq!(r.body["totalResults"], 5);
    assert_eq!(r.body["Resources"], json!([]));

    let spc = c.get("/ServiceProviderConfig", &[]).await;
    assert_eq!(spc.body["patch"]["supported"], true);
    assert_eq!(spc.body["filter"]["supported"], true);
    let schemas = c.get("/Schemas", &[]).await;
    let ids: Vec<&str> = schemas.body["Resources"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert_eq!(ids, vec![CORE_USER, ENTERPRISE, CORE_GROUP]);
    let types = c.get("/ResourceTypes", &[]).await;
    assert_eq!(types.body["Resources"][0]["endpoint"], "/Users");
    assert_eq!(types.body["Resources"][1]["endpoint"], "/Groups");
    assert_scim_error(&c.get("/Nope", &[]).await, 404, None);

    let r = c
        .post("/Users/.search", json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": "userName eq \"USER1\""}))
        .await;
    assert_eq!(r.body["totalResults"], 1);
    target.shutdown().await;
}

const KLAXOON: &str = "urn:ietf:params:scim:schemas:extension:klaxoon:2.0:Group";

async fn start_with_schemas(extra: Vec<Value>) -> (ScimTarget, Client) {
    let target = ScimTarget::start(ScimTargetOptions {
        extra_schemas: extra,
        ..ScimTargetOptions::default()
    })
    .await
    .expect("start");
    let client = Client::new(&target);
    (target, client)
}

#[tokio::test]
async fn klaxoon_group_extension_is_accepted_once_registered() {
    // Without the schema, the attribute is a 400, as on scim2-server without `--schema`.
    let (_plain, c) = start().await;
    let klaxoon_group = json!({
        "schemas": [CORE_GROUP, KLAXOON],
        "displayName": "Sales",
        "externalId": "ext-sales",
        (KLAXOON): {"license": "true"},
    });
    assert_scim_error(
        &c.post("/Groups", klaxoon_group.clone()).await,
        400,
        Some("invalidValue"),
    );

    let (target, c) = start_with_schemas(vec![klaxoon_group_schema()]).await;
    let r = c.post("/Groups", klaxoon_group).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body[KLAXOON]["license"], "true");
    assert_eq!(r.body["schemas"], json!([CORE_GROUP, KLAXOON]));
    let gid = r.body["id"].as_str().expect("id").to_owned();
    let path = format!("/Groups/{gid}");

    // Entra leaves custom URNs out of `schemas`: still accepted.
    let r = c
        .post(
            "/Groups",
            json!({"schemas": [CORE_GROUP], "displayName": "Ops", (KLAXOON): {"license": "false"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    // Validated by type: `license` is a string; unknown attributes and URNs stay errors.
    assert_scim_error(
        &c.post(
            "/Groups",
            json!({"schemas": [CORE_GROUP, KLAXOON], "displayName": "B", (KLAXOON): {"license": true}}),
        )
        .await,
        400,
        Some("invalidValue"),
    );
    assert_scim_error(
        &c.post(
            "/Groups",
            json!({"schemas": [CORE_GROUP, KLAXOON], "displayName": "B", (KLAXOON): {"seats": "3"}}),
        )
        .await,
        400,
        Some("invalidSyntax"),
    );
    assert_scim_error(
        &c.post(
            "/Groups",
            json!({"schemas": [CORE_GROUP], "displayName": "B", "urn:example:other:2.0:Group": {"x": "y"}}),
        )
        .await,
        400,
        Some("invalidValue"),
    );
    // A Group extension does not apply to Users.
    let mut user = entra_user("klax-user");
    user[KLAXOON] = json!({"license": "true"});
    assert_scim_error(&c.post("/Users", user).await, 400, Some("invalidValue"));

    // PATCH in both dialects: a path through the URN, and a path-less replace keyed by it.
    let license = format!("{KLAXOON}:license");
    let r = c
        .patch(
            &path,
            json!([{"op": "Replace", "path": license, "value": "false"}]),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(
        target.group(&gid).expect("group")[KLAXOON]["license"],
        "false"
    );
    let r = c
        .patch(
            &path,
            json!([{"op": "replace", "value": {"displayName": "Sales EMEA", (license.clone()): "true"}}]),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let g = target.group(&gid).expect("group");
    assert_eq!(g["displayName"], "Sales EMEA");
    assert_eq!(g[KLAXOON]["license"], "true");

    // Filterable, and announced in discovery like any schema.
    let r = c
        .filter("/Groups", &format!(r#"{license} eq "TRUE""#))
        .await;
    assert_eq!(r.body["totalResults"], 1, "{}", r.body);
    let r = c.get(&format!("/Schemas/{KLAXOON}"), &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["attributes"][0]["name"], "license");
    assert_eq!(r.body["attributes"][0]["type"], "string");
    let r = c.get("/ResourceTypes/Group", &[]).await;
    assert_eq!(
        r.body["schemaExtensions"],
        json!([{"schema": KLAXOON, "required": false}])
    );
}

#[tokio::test]
async fn scim2_server_fixture_file_is_the_same_schema() {
    let file: Value =
        serde_json::from_str(include_str!("../../../tests/fixtures/klaxoon-schema.json"))
            .expect("fixture is JSON");
    let list = file
        .as_array()
        .expect("a list of schemas, as scim2-server wants");
    let klaxoon = list
        .iter()
        .find(|s| s["id"] == KLAXOON)
        .expect("the Klaxoon schema");
    assert_eq!(*klaxoon, klaxoon_group_schema());
    // The whole file (RFC 7643 defaults included) is accepted as extra schemas.
    let (_target, c) = start_with_schemas(list.clone()).await;
    let r = c
        .post(
            "/Groups",
            json!({"schemas": [CORE_GROUP, KLAXOON], "displayName": "S", (KLAXOON): {"license": "true"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = c.get("/Schemas", &[]).await;
    assert_eq!(r.body["totalResults"], 4, "defaults not served twice");

    let types: Value = serde_json::from_str(include_str!(
        "../../../tests/fixtures/klaxoon-resource-types.json"
    ))
    .expect("fixture is JSON");
    let group = types
        .as_array()
        .and_then(|t| t.iter().find(|rt| rt["id"] == "Group"))
        .expect("a Group resource type");
    assert_eq!(
        group["schemaExtensions"],
        json!([{"schema": KLAXOON, "required": false}])
    );
}

#[tokio::test]
async fn custom_user_extension_is_typed() {
    let urn = "urn:ietf:params:scim:schemas:extension:acme:2.0:User";
    let schema = json!({
        "id": urn,
        "name": "AcmeUser",
        "attributes": [
            {"name": "seats", "type": "integer"},
            {"name": "badge", "type": "complex", "subAttributes": [{"name": "color", "type": "string"}]},
        ],
    });
    let (_target, c) = start_with_schemas(vec![schema]).await;
    let mut u = entra_user("acme");
    u[urn] = json!({"seats": 3, "badge": {"color": "red"}});
    let r = c.post("/Users", u).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body[urn]["seats"], 3);
    let mut u = entra_user("acme2");
    u[urn] = json!({"seats": "3"});
    assert_scim_error(&c.post("/Users", u).await, 400, Some("invalidValue"));
}

#[tokio::test]
async fn invalid_extra_schemas_fail_to_start() {
    for bad in [
        json!({"id": "urn:example:2.0:Thing", "attributes": []}),
        json!({"id": "urn:example:2.0:Group", "attributes": [{"name": "x", "type": "float"}]}),
        json!({"id": "not-a-urn", "attributes": []}),
        json!({"id": "urn:example:2.0:User", "attributes": [{"name": "c", "type": "complex"}]}),
    ] {
        let err = ScimTarget::start(ScimTargetOptions {
            extra_schemas: vec![bad.clone()],
            ..ScimTargetOptions::default()
        })
        .await
        .expect_err("invalid schema");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{bad}");
    }
}

#[tokio::test]
async fn enterprise_department_and_division_need_no_extra_schema() {
    // What the Atmos tutorial maps: enterprise department/division on users.
    let (target, c) = start().await;
    let mut u = entra_user("atmos");
    u[ENTERPRISE] = json!({"department": "R&D", "division": "Cloud"});
    let r = c.post("/Users", u).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_str().expect("id").to_owned();
    let r = c
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "replace", "value": {format!("{ENTERPRISE}:division"): "Edge"}}]),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let stored = target.user(&id).expect("user");
    assert_eq!(stored[ENTERPRISE]["department"], "R&D");
    assert_eq!(stored[ENTERPRISE]["division"], "Edge");
}

#[tokio::test]
async fn membership_patches_report_what_each_patch_sent() {
    let (target, c) = start().await;
    let gid = target.insert_group(json!({"displayName": "G"}));
    let path = format!("/Groups/{gid}");
    c.patch(
        &path,
        json!([{"op": "Add", "path": "members", "value": [{"$ref": null, "value": "u1"}]}]),
    )
    .await;
    c.patch(
        &path,
        json!([{"op": "Replace", "path": "displayName", "value": "G2"}]),
    )
    .await;
    c.patch(
        &path,
        json!([{"op": "add", "path": "members", "value": [{"value": "u2"}, {"value": "u3"}]}]),
    )
    .await;
    c.patch(
        &path,
        json!([
            {"op": "remove", "path": "members[value eq \"u1\"]"},
            {"op": "remove", "path": "Members[Value EQ \"u2\"]"},
        ]),
    )
    .await;
    c.patch(
        &path,
        json!([{"op": "Remove", "path": "members", "value": [{"value": "u3"}]}]),
    )
    .await;
    // A failed PATCH (unknown group) applied nothing: not reported.
    let r = c
        .patch(
            "/Groups/nope",
            json!([{"op": "add", "path": "members", "value": [{"value": "u9"}]}]),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(
        target.membership_patches(),
        vec![
            (gid.clone(), s(&["u1"]), s(&[])),
            (gid.clone(), s(&["u2", "u3"]), s(&[])),
            (gid.clone(), s(&[]), s(&["u1", "u2"])),
            (gid.clone(), s(&[]), s(&["u3"])),
        ]
    );
    assert!(target.group_member_ids(&gid).is_empty());
}
