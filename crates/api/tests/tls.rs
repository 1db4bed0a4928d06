//! The admin API over HTTPS with a self-signed certificate (tests/fixtures, see its README):
//! the token works over TLS only, plain HTTP to the TLS port gets nothing, every answer carries
//! the security headers, and failed authentication is limited per client address.

use scimsync_api::{AuthLimit, Options, tls};
use scimsync_core::{Secret, UserScope};
use scimsync_engine::JobSpec;
use scimsync_service::{JobDef, PlainRender, Service, ServiceOptions};
use scimsync_store::MemoryStore;
use scimsync_testkit::doubles::{MemorySource, MemoryTarget};
use serde_json::Value;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

const TOKEN: &str = "admin-token-for-tls-tests";
const CERT: &str = include_str!("fixtures/admin-cert.pem");
const KEY: &str = include_str!("fixtures/admin-key.pem");
const OTHER_CERT: &str = include_str!("fixtures/other-cert.pem");

/// A running admin API; dropping it shuts the server down.
struct Server {
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
    _service: Service,
}

fn service() -> Service {
    let mut service = Service::new(ServiceOptions::system());
    service
        .add_job(JobDef {
            name: "app".into(),
            schedule: scimsync_config::Schedule::default(),
            quarantine: scimsync_config::Quarantine::default(),
            spec: JobSpec::new("app", UserScope::All, Vec::new()),
            source: MemorySource::new(Vec::new()),
            target: MemoryTarget::new(),
            store: Arc::new(MemoryStore::new()),
            notifier: Arc::new(scimsync_service::notify::NoNotifier),
            render: Arc::new(PlainRender),
        })
        .unwrap();
    service
}

async fn start(tls: bool, auth_limit: AuthLimit) -> Server {
    let service = service();
    let app = scimsync_api::router_with(
        service.handle(),
        Some(Secret::inline(TOKEN)),
        Options { tls, auth_limit },
    );
    let config = tls.then(|| tls::server_config(CERT.as_bytes(), KEY.as_bytes()).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(tls::serve(listener, app, config, async move {
        let _ = stopped.await;
    }));
    Server {
        addr,
        _stop: stop,
        _service: service,
    }
}

/// A client that trusts the test certificate as its only root (as any HTTPS client would).
fn trusting() -> reqwest::ClientBuilder {
    let cert = reqwest::Certificate::from_pem(CERT.as_bytes()).unwrap();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .tls_certs_only([cert])
}

async fn get(client: &reqwest::Client, url: &str, token: Option<&str>) -> reqwest::Response {
    let mut req = client.get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

fn header<'a>(r: &'a reqwest::Response, name: &str) -> &'a str {
    r.headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header on {} {}", r.status(), r.url()))
        .to_str()
        .unwrap()
}

fn assert_security_headers(r: &reqwest::Response, tls: bool) {
    assert_eq!(header(r, "x-content-type-options"), "nosniff");
    assert_eq!(header(r, "referrer-policy"), "no-referrer");
    assert_eq!(header(r, "x-frame-options"), "DENY");
    assert!(header(r, "content-security-policy").contains("frame-ancestors 'none'"));
    assert_eq!(header(r, "cache-control"), "no-store");
    assert_eq!(header(r, "cross-origin-resource-policy"), "same-origin");
    match tls {
        true => assert_eq!(header(r, "strict-transport-security"), "max-age=31536000"),
        false => assert!(r.headers().get("strict-transport-security").is_none()),
    }
}

#[tokio::test]
async fn the_api_answers_over_tls_with_the_token_and_headers() {
    let server = start(true, AuthLimit::default()).await;
    let port = server.addr.port();
    let client = trusting().build().unwrap();

    let url = format!("https://127.0.0.1:{port}/api/jobs");
    let ok = get(&client, &url, Some(TOKEN)).await;
    assert_eq!(ok.status(), 200);
    assert_security_headers(&ok, true);
    assert!(header(&ok, "content-type").starts_with("application/json"));
    assert_eq!(ok.version(), reqwest::Version::HTTP_11);
    let body: Value = ok.json().await.unwrap();
    assert_eq!(body["jobs"][0]["name"], "app", "{body}");

    // By name too (the certificate names localhost).
    let by_name = get(
        &client,
        &format!("https://localhost:{port}/api/jobs/app"),
        Some(TOKEN),
    )
    .await;
    assert_eq!(by_name.status(), 200);

    // Without the token, or with a wrong one: 401, with the same headers.
    for token in [None, Some("wrong")] {
        let r = get(&client, &url, token).await;
        assert_eq!(r.status(), 401);
        assert_eq!(header(&r, "www-authenticate"), "Bearer");
        assert_security_headers(&r, true);
    }
    let missing = get(
        &client,
        &format!("https://127.0.0.1:{port}/no/such"),
        Some(TOKEN),
    )
    .await;
    assert_eq!(missing.status(), 404);
    assert_security_headers(&missing, true);

    // The dashboard keeps its own policy (inline script and style, data from this origin only).
    let page = get(&client, &format!("https://127.0.0.1:{port}/"), None).await;
    assert_eq!(page.status(), 200);
    let csp = header(&page, "content-security-policy");
    assert!(
        csp.contains("script-src 'unsafe-inline'") && csp.contains("connect-src 'self'"),
        "{csp}"
    );
    assert_security_headers(&page, true);

    // The metrics need the token like the rest.
    let metrics = get(
        &client,
        &format!("https://127.0.0.1:{port}/metrics"),
        Some(TOKEN),
    )
    .await;
    assert_eq!(metrics.status(), 200);
    assert_security_headers(&metrics, true);
}

#[tokio::test]
async fn plain_http_and_untrusted_clients_get_nothing_from_the_tls_port() {
    let server = start(true, AuthLimit::default()).await;
    let port = server.addr.port();

    // Plain HTTP to the TLS port: the handshake fails and the connection closes, no answer.
    let plain = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let err = plain
        .get(format!("http://127.0.0.1:{port}/api/jobs"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect_err("plain HTTP must not be answered");
    assert!(!err.is_timeout(), "{err:?}");

    // A client that does not trust the certificate refuses it.
    let other = reqwest::Certificate::from_pem(OTHER_CERT.as_bytes()).unwrap();
    let untrusting = reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only([other])
        .build()
        .unwrap();
    let err = untrusting
        .get(format!("https://127.0.0.1:{port}/api/jobs"))
        .send()
        .await
        .expect_err("an untrusted certificate must be refused");
    assert!(err.is_connect(), "{err:?}");

    // The server still serves trusting clients after those failed handshakes.
    let r = get(
        &trusting().build().unwrap(),
        &format!("https://127.0.0.1:{port}/api/jobs"),
        Some(TOKEN),
    )
    .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn the_cli_client_pins_the_configured_certificate() {
    let server = start(true, AuthLimit::default()).await;
    let port = server.addr.port();
    let pinned = |pem: &str| {
        reqwest::Client::builder()
            .no_proxy()
            .tls_backend_preconfigured(tls::pinned_client_config(pem.as_bytes()).unwrap())
            .build()
            .unwrap()
    };
    // Any address the server is reached by: the certificate itself is what is checked.
    for host in ["127.0.0.1", "localhost"] {
        let r = get(
            &pinned(CERT),
            &format!("https://{host}:{port}/api/jobs"),
            Some(TOKEN),
        )
        .await;
        assert_eq!(r.status(), 200, "{host}");
    }
    let err = pinned(OTHER_CERT)
        .get(format!("https://127.0.0.1:{port}/api/jobs"))
        .send()
        .await
        .expect_err("another certificate must be refused");
    // What the CLI prints: the error and its sources.
    let mut chain = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        chain.push_str(&format!(": {s}"));
        source = s.source();
    }
    assert!(
        chain.contains("another certificate than [admin] tls_cert"),
        "{chain}"
    );
}

#[tokio::test]
async fn failed_authentication_is_limited_per_address() {
    let server = start(true, AuthLimit::default()).await;
    let url = format!("https://127.0.0.1:{}/api/jobs", server.addr.port());
    let client = trusting().build().unwrap();

    for i in 0..10 {
        let r = get(&client, &url, Some(&format!("guess-{i}"))).await;
        assert_eq!(r.status(), 401, "attempt {}", i + 1);
    }
    // The 11th is refused, and so is the right token from the same address: guessing on
    // would learn nothing.
    for token in ["guess-10", TOKEN] {
        let r = get(&client, &url, Some(token)).await;
        assert_eq!(r.status(), 429, "{token}");
        let retry: u64 = header(&r, "retry-after").parse().unwrap();
        assert!((55..=60).contains(&retry), "{retry}");
        assert_security_headers(&r, true);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "TooManyRequests");
    }
    // The dashboard page needs no token and stays reachable.
    let page = get(&client, &url.replace("/api/jobs", "/"), None).await;
    assert_eq!(page.status(), 200);

    // Another address (127.0.0.2 is loopback too on Linux) is not affected.
    let from = IpAddr::from([127, 0, 0, 2]);
    let elsewhere = trusting().local_address(from).build().unwrap();
    match elsewhere.get(&url).bearer_auth(TOKEN).send().await {
        Ok(r) => assert_eq!(r.status(), 200),
        // Systems whose loopback is only 127.0.0.1 (macOS): the window test below covers it.
        Err(e) if e.is_connect() => eprintln!("SKIPPED the second address: {e}"),
        Err(e) => panic!("{e:?}"),
    }
}

#[tokio::test]
async fn a_refused_address_is_served_again_after_the_window() {
    let window = Duration::from_millis(800);
    let server = start(
        false,
        AuthLimit {
            max_failures: 3,
            window,
            max_clients: 16,
        },
    )
    .await;
    let url = format!("http://{}/api/jobs", server.addr);
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    for _ in 0..3 {
        assert_eq!(get(&client, &url, Some("wrong")).await.status(), 401);
    }
    let refused = get(&client, &url, Some(TOKEN)).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(header(&refused, "retry-after"), "1");
    assert_security_headers(&refused, false);
    tokio::time::sleep(window + Duration::from_millis(100)).await;
    // Served again; good tokens never counted, so these do not refuse it again.
    for _ in 0..5 {
        let ok = get(&client, &url, Some(TOKEN)).await;
        assert_eq!(ok.status(), 200);
        assert_security_headers(&ok, false);
    }
    assert_eq!(get(&client, &url, Some("wrong")).await.status(), 401);
}
