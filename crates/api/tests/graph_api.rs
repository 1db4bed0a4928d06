//! The Graph-shaped management API (`/v1.0/servicePrincipals/{id}/synchronization/jobs…`,
//! `/v1.0/auditLogs/provisioning`): same token as the admin API, Graph's shapes and errors,
//! and the job it reaches is the running one.

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use scimsync_api::{GraphJob, GraphJobs, JobStore, JobStores};
use scimsync_config::{Apply, Mapping, MappingValue};
use scimsync_core::{Secret, SourceUser, StateStore, UserScope};
use scimsync_engine::{Engine, JobSpec, Mode};
use scimsync_service::{JobDef, ManualTime, PlainRender, Service, ServiceOptions};
use scimsync_store::MemoryStore;
use scimsync_testkit::doubles::{MemorySource, MemoryTarget};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tower::ServiceExt;

const TOKEN: &str = "admin-token-for-graph-tests";
const SP: &str = "11111111-1111-1111-1111-111111111111";
const JOBS: &str =
    "/v1.0/servicePrincipals/11111111-1111-1111-1111-111111111111/synchronization/jobs";

fn time() -> Arc<ManualTime> {
    ManualTime::new(
        chrono::DateTime::parse_from_rfc3339("2026-03-02T09:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc),
    )
}

fn mapping(target: &str, source: &str, matching: Option<u32>) -> Mapping {
    Mapping {
        target: target.into(),
        value: MappingValue::Direct {
            source: source.into(),
        },
        matching,
        apply: Apply::Always,
        default: None,
        required: false,
        line: 1,
    }
}

fn person(n: usize) -> SourceUser {
    let attrs = json!({
        "userPrincipalName": format!("person{n:02}@contoso.example"),
        "displayName": format!("Person {n:02}"),
        "accountEnabled": true,
    });
    SourceUser {
        id: format!("u{n:02}"),
        attrs: attrs.as_object().unwrap().clone().into_iter().collect(),
    }
}

fn graph_job(schema: Option<Value>) -> GraphJob {
    GraphJob {
        service_principal_id: Some(SP.into()),
        tenant_id: "contoso.onmicrosoft.com".into(),
        deletion_threshold: 500,
        cron: None,
        schema,
        target: None,
    }
}

/// A job `app` whose first apply (before the service) created `users` users (and `later`
/// more appear in the source after it), the router with
/// its store and its Graph facts, and the service.
async fn app_with(
    users: usize,
    later: usize,
    graph: Option<GraphJob>,
) -> (Service, axum::Router, Arc<MemoryStore>) {
    let time = time();
    let store = Arc::new(MemoryStore::new());
    let spec = JobSpec::new(
        "app",
        UserScope::All,
        vec![
            mapping("userName", "userPrincipalName", Some(1)),
            mapping("displayName", "displayName", None),
        ],
    );
    let source = MemorySource::new((1..=users).map(person).collect());
    let target = MemoryTarget::new();
    if users > 0 {
        let engine = Engine::new(&spec, &source, &target, &*store, &*time);
        let first = engine.run(Mode::Apply).await.unwrap();
        assert_eq!(first.tally.created, users);
    }
    // Users the source gains after that apply: not provisioned yet.
    source.edit(|s| s.users.extend((users + 1..=users + later).map(person)));
    let mut service = Service::new(ServiceOptions {
        clock: time.clone(),
        sleeper: time,
        shutdown_grace: std::time::Duration::ZERO,
    });
    service
        .add_job(JobDef {
            name: "app".into(),
            schedule: scimsync_config::Schedule::default(),
            quarantine: scimsync_config::Quarantine::default(),
            spec,
            source,
            target,
            store: Arc::clone(&store),
            notifier: Arc::new(scimsync_service::notify::NoNotifier),
            render: Arc::new(PlainRender),
        })
        .unwrap();
    let stores = JobStores::new(BTreeMap::from([(
        "app".to_string(),
        JobStore {
            store: store.clone() as Arc<dyn StateStore>,
            dir: None,
        },
    )]));
    // Tests send many refused requests: a higher failed-auth limit than the default.
    let options = scimsync_api::Options {
        auth_limit: scimsync_api::AuthLimit {
            max_failures: 1000,
            ..Default::default()
        },
        ..Default::default()
    };
    let mut app = scimsync_api::with_stores(
        scimsync_api::router_with(service.handle(), Some(Secret::inline(TOKEN)), options),
        stores,
    );
    if let Some(g) = graph {
        app = scimsync_api::with_graph_jobs(
            app,
            GraphJobs::new(BTreeMap::from([("app".to_string(), g)])),
        );
    }
    (service, app, store)
}

async fn call_with(
    app: &axum::Router,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: &str,
) -> (StatusCode, HeaderMap, Value) {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("client-request-id", "cid-42");
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 22)
        .await
        .unwrap();
    (
        status,
        headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn call(app: &axum::Router, method: &str, path: &str, body: &str) -> (StatusCode, Value) {
    let auth = format!("Bearer {TOKEN}");
    let (s, _, v) = call_with(app, method, path, Some(&auth), body).await;
    (s, v)
}

/// Graph's error envelope with the code, and the ids of the request in `innerError`.
fn assert_graph_error(
    status: StatusCode,
    headers: &HeaderMap,
    body: &Value,
    want: StatusCode,
    code: &str,
) {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    let inner = &body["error"]["innerError"];
    let date = inner["date"].as_str().unwrap_or_default();
    assert_eq!(date.len(), 19, "no Z, no fraction: {date}");
    assert_eq!(inner["client-request-id"], "cid-42", "{body}");
    assert_eq!(
        inner["request-id"].as_str(),
        headers.get("request-id").and_then(|v| v.to_str().ok()),
        "{body}"
    );
}

async fn wait_cycles(app: &axum::Router, cycles: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (_, s) = call(app, "GET", "/api/jobs/app", "").await;
        if s["cyclesRun"].as_u64().unwrap_or(0) >= cycles && s["state"] != "running" {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "no cycle: {s}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_endpoints_need_the_token_and_answer_in_graphs_words() {
    let (service, app, _) = app_with(0, 0, Some(graph_job(None))).await;
    let job = format!("{JOBS}/app");
    let endpoints = [
        ("GET", JOBS.to_string()),
        ("GET", job.clone()),
        ("POST", format!("{job}/start")),
        ("POST", format!("{job}/pause")),
        ("POST", format!("{job}/restart")),
        ("POST", format!("{job}/provisionOnDemand")),
        ("GET", format!("{job}/schema")),
        ("GET", format!("{job}/schema/filterOperators")),
        ("POST", format!("{job}/validateCredentials")),
        ("GET", "/v1.0/auditLogs/provisioning".to_string()),
        ("GET", "/beta/auditLogs/provisioning".to_string()),
    ];
    for (method, path) in &endpoints {
        for auth in [None, Some(format!("Bearer {TOKEN}x"))] {
            let (status, headers, body) = call_with(&app, method, path, auth.as_deref(), "").await;
            assert_graph_error(
                status,
                &headers,
                &body,
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
            );
        }
    }
    let auth = format!("Bearer {TOKEN}");
    // An id the job does not answer under, an unknown job, an unknown endpoint, jobs
    // cannot be created.
    let other = "/v1.0/servicePrincipals/22222222-2222-2222-2222-222222222222/synchronization/jobs";
    for path in [
        other.to_string(),
        format!("{other}/app"),
        format!("{JOBS}/nope"),
    ] {
        let (status, headers, body) = call_with(&app, "GET", &path, Some(&auth), "").await;
        assert_graph_error(
            status,
            &headers,
            &body,
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
        );
    }
    let (status, headers, body) = call_with(&app, "POST", JOBS, Some(&auth), "{}").await;
    assert_graph_error(
        status,
        &headers,
        &body,
        StatusCode::NOT_IMPLEMENTED,
        "NotImplemented",
    );
    let (status, headers, body) =
        call_with(&app, "GET", "/v1.0/servicePrincipals", Some(&auth), "").await;
    assert_graph_error(
        status,
        &headers,
        &body,
        StatusCode::BAD_REQUEST,
        "BadRequest",
    );
    let (status, headers, body) =
        call_with(&app, "PUT", &format!("{job}/schema"), Some(&auth), "{}").await;
    assert_graph_error(
        status,
        &headers,
        &body,
        StatusCode::FORBIDDEN,
        "Authorization_RequestDenied",
    );
    let (status, headers, body) = call_with(
        &app,
        "POST",
        &format!("{job}/restart"),
        Some(&auth),
        "{not json",
    )
    .await;
    assert_graph_error(
        status,
        &headers,
        &body,
        StatusCode::BAD_REQUEST,
        "BadRequest",
    );
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_are_listed_read_paused_started_and_restarted() {
    let (service, app, _) = app_with(3, 0, Some(graph_job(None))).await;
    wait_cycles(&app, 1).await;
    let (status, body) = call(&app, "GET", JOBS, "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body["@odata.context"].as_str().unwrap().ends_with(&format!(
            "/v1.0/$metadata#servicePrincipals('{SP}')/synchronization/jobs"
        )),
        "{body}"
    );
    let job = &body["value"][0];
    assert_eq!(job["id"], "app");
    assert_eq!(job["templateId"], "scim");
    assert_eq!(
        job["schedule"],
        json!({"expiration": null, "interval": "PT40M", "state": "Active"})
    );
    let st = &job["status"];
    assert_eq!(st["code"], "Active", "{st}");
    assert_eq!(st["countSuccessiveCompleteFailures"], 0);
    assert_eq!(st["quarantine"], Value::Null);
    assert_eq!(st["progress"], json!([]));
    assert_eq!(st["steadyStateFirstAchievedTime"], "0001-01-01T00:00:00Z");
    assert_eq!(
        st["synchronizedEntryCountByType"],
        json!([{"key": "User", "value": 3}, {"key": "Group", "value": 0}])
    );
    let last = &st["lastExecution"];
    assert_eq!(last["state"], "Succeeded", "{st}");
    assert!(
        last["activityIdentifier"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    for counter in [
        "countEntitled",
        "countEntitledForProvisioning",
        "countEscrowed",
        "countEscrowedRaw",
        "countExported",
        "countExports",
        "countImported",
        "countImportedDeltas",
        "countImportedReferenceDeltas",
    ] {
        assert!(last[counter].is_u64(), "{counter}: {last}");
    }
    assert_eq!(st["lastSuccessfulExecution"], *last);
    assert_eq!(
        job["synchronizationJobSettings"],
        json!([{"name": "QuarantineTooManyDeletesThreshold", "value": "500"}])
    );

    let one = format!("{JOBS}/app");
    let (status, body) = call(&app, "GET", &one, "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("/jobs/$entity")
    );
    assert_eq!(body["id"], "app");

    // Pause: 204, no body; the job reads Paused both ways.
    let (status, body) = call(&app, "POST", &format!("{one}/pause"), "").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(body, Value::Null);
    let (_, body) = call(&app, "GET", &one, "").await;
    assert_eq!(body["schedule"]["state"], "Paused");
    assert_eq!(body["status"]["code"], "Paused");
    let (_, admin) = call(&app, "GET", "/api/jobs/app", "").await;
    assert_eq!(admin["state"], "paused");

    let (status, _) = call(&app, "POST", &format!("{one}/start"), "").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, body) = call(&app, "GET", &one, "").await;
    assert_eq!(body["schedule"]["state"], "Active");
    assert_ne!(body["status"]["code"], "Paused");

    // Restart with a reset scope (property names in any case, as PowerShell sends them).
    let (status, body) = call(
        &app,
        "POST",
        &format!("{one}/restart"),
        r#"{"Criteria":{"ResetScope":"Watermark, Escrows, QuarantineState"}}"#,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    wait_cycles(&app, 2).await;
    for ok in [
        "",
        "{}",
        r#"{"criteria":{"resetScope":"Full"}}"#,
        r#"{"criteria":{"resetScope":"ForceDeletes"}}"#,
    ] {
        let (status, body) = call(&app, "POST", &format!("{one}/restart"), ok).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{ok}: {body}");
    }
    let (status, body) = call(
        &app,
        "POST",
        &format!("{one}/restart"),
        r#"{"criteria":{"resetScope":"Watermark, Everything"}}"#,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "RequestParameterInvalid", "{body}");

    // The same handlers under /beta.
    let (status, body) = call(&app, "GET", &one.replace("/v1.0/", "/beta/"), "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body["@odata.context"]
            .as_str()
            .unwrap()
            .contains("/beta/$metadata")
    );
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quarantine_reads_as_graphs_and_start_lifts_it() {
    let (service, app, store) = app_with(2, 0, Some(graph_job(None))).await;
    wait_cycles(&app, 1).await;
    let at = chrono::DateTime::parse_from_rfc3339("2026-03-02T09:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let q = scimsync_service::QuarantineState {
        reason: scimsync_service::QuarantineReason::EncounteredQuarantineException,
        series_began: at,
        current_began: at,
        next_attempt: at + chrono::Duration::minutes(5),
        series_count: 1,
        error_code: Some(scimsync_core::ErrorCode::Unauthorized),
        error: "The SCIM endpoint answered 401.".into(),
        disabled: false,
    };
    scimsync_engine::JobState::new(&*store, "app")
        .set_quarantine(Some(&q))
        .unwrap();
    let one = format!("{JOBS}/app");
    let (_, body) = call(&app, "GET", &one, "").await;
    let st = &body["status"];
    assert_eq!(st["code"], "Quarantine", "{st}");
    assert_eq!(
        st["quarantine"],
        json!({
            "currentBegan": "2026-03-02T09:00:00Z",
            "nextAttempt": "2026-03-02T09:05:00Z",
            "reason": "EncounteredQuarantineException",
            "seriesBegan": "2026-03-02T09:00:00Z",
            "seriesCount": 1,
            "error": {"code": "Unauthorized", "message": "The SCIM endpoint answered 401.", "tenantActionable": true},
        })
    );
    let (status, body) = call(&app, "POST", &format!("{one}/start"), "").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (_, body) = call(&app, "GET", &one, "").await;
    assert_eq!(body["status"]["quarantine"], Value::Null, "{body}");
    assert_ne!(body["status"]["code"], "Quarantine", "{body}");
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_job_files_any_service_principal_id_reaches_the_jobs() {
    let (service, app, _) = app_with(0, 0, None).await;
    let (status, body) = call(
        &app,
        "GET",
        "/v1.0/servicePrincipals/anything/synchronization/jobs/app",
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["synchronizationJobSettings"], json!([]));
    let (status, body) = call(
        &app,
        "GET",
        "/v1.0/servicePrincipals/anything/synchronization/jobs/app/schema",
        "",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED, "{body}");
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisioning_logs_page_through_every_entry_newest_first_and_filter() {
    let (service, app, store) = app_with(10, 0, Some(graph_job(None))).await;
    wait_cycles(&app, 1).await;
    let all: BTreeSet<String> = store
        .logs("app", None)
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert!(all.len() >= 10, "{}", all.len());

    let mut seen = Vec::new();
    let mut times = Vec::new();
    let mut next = Some("/v1.0/auditLogs/provisioning?$top=3".to_string());
    let mut pages = 0;
    while let Some(path) = next.take() {
        pages += 1;
        assert!(pages < 50, "paging does not end");
        let (status, body) = call(&app, "GET", &path, "").await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        let value = body["value"].as_array().unwrap();
        assert!(value.len() <= 3);
        for v in value {
            seen.push(v["id"].as_str().unwrap().to_string());
            times.push(v["activityDateTime"].as_str().unwrap().to_string());
        }
        next = body["@odata.nextLink"].as_str().map(|l| {
            let rest = l
                .strip_prefix("http://localhost")
                .unwrap_or_else(|| panic!("{l}"));
            assert!(rest.contains("$skiptoken="), "{l}");
            rest.to_string()
        });
    }
    assert_eq!(seen.len(), all.len(), "every entry once");
    assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), all);
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted, "newest first");

    // One entry's shape.
    let (_, body) = call(&app, "GET", "/v1.0/auditLogs/provisioning?$top=1", "").await;
    let e = &body["value"][0];
    assert!(
        body["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("/v1.0/$metadata#auditLogs/provisioning")
    );
    assert_eq!(e["jobId"], "app");
    assert_eq!(e["tenantId"], "contoso.onmicrosoft.com");
    assert_eq!(e["servicePrincipal"]["id"], SP);
    assert_eq!(e["servicePrincipal"]["name"], "app");
    assert_eq!(e["sourceIdentity"]["identityType"], "User");
    assert_eq!(e["sourceSystem"]["displayName"], "Microsoft Entra ID");
    assert_eq!(e["initiatedBy"]["initiatorType"], "system");
    assert!(e["provisioningStatusInfo"]["status"].is_string());
    assert!(e["provisioningSteps"].is_array());
    assert!(e["durationInMilliseconds"].is_u64());

    // $filter: eq and contains joined by and; times; a filter that matches nothing.
    let q = "/v1.0/auditLogs/provisioning?$filter=jobId%20eq%20%27app%27%20and%20provisioningAction%20eq%20%27create%27%20and%20contains(sourceIdentity/displayName,%27person0%27)";
    let (status, body) = call(&app, "GET", q, "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let value = body["value"].as_array().unwrap();
    assert_eq!(value.len(), 9, "Person 01..09: {body}");
    assert!(value.iter().all(|v| v["provisioningAction"] == "create"));
    let (_, body) = call(
        &app,
        "GET",
        "/v1.0/auditLogs/provisioning?$filter=sourceIdentity/id%20eq%20%27u03%27",
        "",
    )
    .await;
    assert!(!body["value"].as_array().unwrap().is_empty());
    assert!(
        body["value"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["sourceIdentity"]["id"] == "u03")
    );
    let (_, body) = call(
        &app,
        "GET",
        "/v1.0/auditLogs/provisioning?$filter=activityDateTime%20gt%202026-03-03T00:00:00Z",
        "",
    )
    .await;
    assert_eq!(body["value"], json!([]));
    assert!(body.get("@odata.nextLink").is_none());
    // A filtered listing pages with its filter kept in the link.
    let (_, body) = call(
        &app,
        "GET",
        "/v1.0/auditLogs/provisioning?$filter=jobId%20eq%20%27app%27&$top=2",
        "",
    )
    .await;
    let link = body["@odata.nextLink"].as_str().unwrap();
    assert!(link.contains("$filter=jobId%20eq%20%27app%27"), "{link}");

    let auth = format!("Bearer {TOKEN}");
    for bad in [
        "$filter=jobId%20eq%20app",
        "$filter=secret%20eq%20%27x%27",
        "$filter=jobId%20eq%20%27a%27%20or%20jobId%20eq%20%27b%27",
        "$top=0",
        "$top=1001",
        "$top=many",
        "$skiptoken=zz",
        "$orderby=id",
    ] {
        let (status, headers, body) = call_with(
            &app,
            "GET",
            &format!("/v1.0/auditLogs/provisioning?{bad}"),
            Some(&auth),
            "",
        )
        .await;
        assert_graph_error(
            status,
            &headers,
            &body,
            StatusCode::BAD_REQUEST,
            "BadRequest",
        );
    }
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provision_on_demand_answers_a_key_value_pair_and_is_rate_limited() {
    let schema = json!({"synchronizationRules": [{"id": "rule-1", "name": "USER_OUTBOUND"}]});
    let (service, app, store) = app_with(3, 1, Some(graph_job(Some(schema)))).await;
    wait_cycles(&app, 1).await;
    let path = format!("{JOBS}/app/provisionOnDemand");
    let body = |rule: &str, id: &str, kind: &str| {
        json!({"parameters": [{"ruleId": rule,
            "subjects": [{"objectId": id, "objectTypeName": kind}]}]})
        .to_string()
    };
    // A user already provisioned as the mappings say: Entra's skip, RedundantExport.
    let (status, v) = call(&app, "POST", &path, &body("rule-1", "u02", "User")).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let key: Value = serde_json::from_str(v["key"].as_str().unwrap()).unwrap();
    assert_eq!(key["result"], "Skipped", "{v}");
    assert_eq!(key["details"]["errorCode"], "RedundantExport", "{v}");
    // A user scimsync has no link for (its state forgotten) is matched and linked.
    store.remove_objects("app").unwrap();
    let (status, v) = call(&app, "POST", &path, &body("rule-1", "u04", "User")).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(
        v["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("#microsoft.graph.stringKeyStringValuePair")
    );
    let key: Value = serde_json::from_str(v["key"].as_str().unwrap()).unwrap();
    assert_eq!(key["result"], "Success", "{v}");
    let value: Value = serde_json::from_str(v["value"].as_str().unwrap()).unwrap();
    assert!(
        ["Create", "Update"].contains(&value["action"].as_str().unwrap()),
        "{value}"
    );
    assert_eq!(
        value["sourceIdentity"],
        json!({"id": "u04", "type": "User"})
    );
    assert_eq!(value["reportableIdentifier"], "person04@contoso.example");
    assert_eq!(value["statusInfo"]["status"], "Success");
    assert!(
        value["provisioningSteps"]
            .as_array()
            .is_some_and(|s| !s.is_empty())
    );
    assert!(
        value["provisioningSteps"][0]["type"]
            .as_str()
            .is_some_and(|t| t.starts_with(char::is_uppercase))
    );

    // The rule by name works too; an unknown rule, subject type or object is refused.
    let (status, v) = call(&app, "POST", &path, &body("USER_OUTBOUND", "u01", "User")).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (status, v) = call(&app, "POST", &path, &body("nope", "u01", "User")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"]["code"], "RequestParameterInvalid");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does not include the rule")
    );
    let (status, v) = call(&app, "POST", &path, &body("USER_OUTBOUND", "u01", "Worker")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"]["code"], "RequestParameterInvalid");
    let (status, v) = call(&app, "POST", &path, "{}").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    let (status, v) = call(
        &app,
        "POST",
        &path,
        &body("USER_OUTBOUND", "nobody", "User"),
    )
    .await;
    assert!(status.is_client_error(), "{status} {v}");
    assert!(v["error"]["code"].is_string(), "{v}");

    // Entra's limit: 5 per 10 s per job (four used above, the unknown object included).
    let mut limited = None;
    for _ in 0..6 {
        let auth = format!("Bearer {TOKEN}");
        let (status, headers, v) = call_with(
            &app,
            "POST",
            &path,
            Some(&auth),
            &body("rule-1", "u03", "User"),
        )
        .await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            limited = Some((headers, v));
            break;
        }
        assert_eq!(status, StatusCode::OK, "{v}");
    }
    let (headers, v) = limited.expect("the sixth request in 10 s is refused");
    assert_eq!(v["error"]["code"], "TooManyRequests");
    let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=10).contains(&wait));
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_filter_operators_and_credentials() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/examples/demo.toml");
    let loaded = scimsync_config::load(&dir).unwrap_or_else(|e| panic!("{e:?}"));
    let mut g = GraphJob::from_config(&loaded.job);
    assert_eq!(g.service_principal_id.as_deref(), Some(SP));
    assert!(g.schema.is_some());
    // The demo job is named "demo"; the test's job is "app".
    g.cron = Some("0 0 2 * * *".into());
    let (service, app, _) = app_with(0, 0, Some(g)).await;
    let job = format!("{JOBS}/app");

    let (status, body) = call(&app, "GET", &job, "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["schedule"]["interval"], "P1D", "a daily cron");

    let (status, body) = call(&app, "GET", &format!("{job}/schema"), "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body["synchronizationRules"]
            .as_array()
            .is_some_and(|r| !r.is_empty()),
        "{body}"
    );
    assert!(
        body["directories"].as_array().is_some_and(|d| d.len() == 2),
        "{body}"
    );

    let (status, body) = call(&app, "GET", &format!("{job}/schema/filterOperators"), "").await;
    assert_eq!(status, StatusCode::OK);
    let ops = body["value"].as_array().unwrap();
    assert_eq!(ops.len(), 14);
    assert!(
        ops.iter()
            .any(|o| o["name"] == "IS NOT NULL" && o["arity"] == "Unary")
    );
    assert!(ops.iter().all(|o| o["multivaluedComparisonType"] == "All"));

    let path = format!("{job}/validateCredentials");
    let (status, body) = call(
        &app,
        "POST",
        &path,
        r#"{"useSavedCredentials":false,"credentials":[{"key":"baseAddress","value":"s3cr3t-value"}]}"#,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "BadRequest");
    assert!(!body.to_string().contains("s3cr3t-value"));

    // Entra's Test Connection against a real SCIM server: the right token passes (204), a
    // wrong one fails as CredentialValidationFailed without echoing it.
    let scim = scimsync_testkit::scim::ScimTarget::start(Default::default())
        .await
        .unwrap();
    let creds = |token: &str| {
        json!({"useSavedCredentials": false, "credentials": [
            {"key": "BaseAddress", "value": scim.url()},
            {"key": "SecretToken", "value": token}]})
        .to_string()
    };
    let (status, body) = call(&app, "POST", &path, &creds("scimsync-test-token")).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = call(&app, "POST", &path, &creds("wrong-t0ken-value")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body["error"]["code"], "CredentialValidationFailed",
        "{body}"
    );
    assert!(!body.to_string().contains("wrong-t0ken-value"));
    let (status, body) = call(
        &app,
        "POST",
        &path,
        r#"{"credentials":[{"key":"SecretToken","value":"t"}]}"#,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "BadRequest");
    // The demo job's saved token is an env: reference that is not set here.
    let (status, body) = call(&app, "POST", &path, r#"{"useSavedCredentials":true}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body["error"]["code"], "CredentialValidationFailed",
        "{body}"
    );
    service.shutdown().await;
}
