//! A fault-injecting HTTP/1.1 proxy for end-to-end tests: put it between scimsync and a real
//! SCIM server (scim2-server) to see what the engine does when the network and the target
//! misbehave.
//!
//! [`FaultProxy::start`] listens on `127.0.0.1:0` and forwards every request unchanged to an
//! upstream base URL. While faults are on ([`FaultProxy::set_enabled`], on at start) it injects,
//! with the shares of a [`FaultPlan`]:
//! - **`500` without forwarding** ([`FaultKind::Error500`]): the upstream never sees the request.
//! - **reset after forwarding** ([`FaultKind::ResetAfterForward`]): the upstream acted and
//!   answered; the client's connection is reset (TCP RST) before a byte of the answer.
//! - **malformed `201`**: a `POST` the upstream answered `201` keeps its status but gets a
//!   truncated JSON body ([`FaultKind::Truncated201`]), the JSON without `id`
//!   ([`FaultKind::MissingId201`]) or an empty body ([`FaultKind::Empty201`]). The `Location`
//!   header is dropped as well, so the new resource's id cannot be learned from the answer.
//!
//! Decisions are deterministic: each is a pure function of the seed, the request (method, path
//! and query, body) and how many times that same request was seen before. The same traffic gets
//! the same faults whatever the arrival order or concurrency, and a retried request rolls anew.
//!
//! It speaks just enough HTTP/1.1 for an HTTP client of a SCIM API: keep-alive,
//! `Content-Length` or chunked request bodies; its answers always carry `Content-Length`.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use scimsync_testkit::faults::{FaultPlan, FaultProxy};
//! let proxy = FaultProxy::start(
//!     "http://127.0.0.1:8000/v2",
//!     FaultPlan { seed: 7, error_500: 0.10, reset_after_forward: 0.05, malformed_201: 0.2 },
//! )
//! .await?;
//! // Point the SCIM client at proxy.url() (same path as the upstream, other port).
//! let stats = proxy.stats();
//! proxy.set_enabled(false); // plain forwarding from now on
//! # let _ = stats; Ok(()) }
//! ```

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// Largest request head (request line and headers) accepted.
const MAX_HEAD: usize = 64 * 1024;

/// How often each fault is injected. Shares are in `0.0..=1.0`; `0.0` never, `1.0` always.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FaultPlan {
    pub seed: u64,
    /// Share of requests answered `500` without being forwarded.
    pub error_500: f64,
    /// Share of forwarded requests whose connection is reset after the upstream answered.
    pub reset_after_forward: f64,
    /// Share of `POST`s answered `201` whose body is replaced by a malformed one (the three
    /// kinds in turn, chosen by the same roll).
    pub malformed_201: f64,
}

/// One kind of injected fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultKind {
    Error500,
    ResetAfterForward,
    Truncated201,
    MissingId201,
    Empty201,
}

/// A fault that was injected, for test diagnostics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InjectedFault {
    pub kind: FaultKind,
    pub method: String,
    /// Path and query as received.
    pub path: String,
}

/// One request the proxy received, and what the client got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxiedRequest {
    pub method: String,
    /// Path and query as received.
    pub path: String,
    /// Whether the upstream saw it.
    pub forwarded: bool,
    /// The status the client got; `None` when its connection was reset.
    pub status: Option<u16>,
}

impl ProxiedRequest {
    /// `POST`, `PUT`, `PATCH` or `DELETE`.
    pub fn is_write(&self) -> bool {
        ["POST", "PUT", "PATCH", "DELETE"]
            .iter()
            .any(|m| self.method.eq_ignore_ascii_case(m))
    }
}

/// Counters since start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// Complete requests received.
    pub requests: u64,
    /// Requests forwarded to the upstream (and answered by it).
    pub forwarded: u64,
    pub error_500: u64,
    pub resets: u64,
    pub truncated_201: u64,
    pub missing_id_201: u64,
    pub empty_201: u64,
}

impl FaultStats {
    /// Malformed `201` bodies of every kind.
    pub fn malformed_201(&self) -> u64 {
        self.truncated_201 + self.missing_id_201 + self.empty_201
    }
    /// Faults of every kind.
    pub fn faults(&self) -> u64 {
        self.error_500 + self.resets + self.malformed_201()
    }
}

struct State {
    /// Request fingerprint → times seen.
    seen: HashMap<u64, u64>,
    stats: FaultStats,
    injected: Vec<InjectedFault>,
    requests: Vec<ProxiedRequest>,
}

struct Shared {
    plan: FaultPlan,
    /// `scheme://host:port` of the upstream.
    upstream_origin: String,
    enabled: AtomicBool,
    state: Mutex<State>,
    client: reqwest::Client,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running fault proxy on `127.0.0.1`. Dropping it stops it and closes its connections.
pub struct FaultProxy {
    shared: Arc<Shared>,
    addr: SocketAddr,
    base_path: String,
    task: JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (a base URL such as `http://127.0.0.1:PORT/v2`) on a free
    /// loopback port, faults on.
    pub async fn start(upstream: &str, plan: FaultPlan) -> io::Result<FaultProxy> {
        let url = url::Url::parse(upstream)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{upstream}: {e}")))?;
        let upstream_origin = url.origin().ascii_serialization();
        let base_path = url.path().trim_end_matches('/').to_string();
        let client = reqwest::Client::builder()
            .no_proxy()
            .no_gzip()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(io::Error::other)?;
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            plan,
            upstream_origin,
            enabled: AtomicBool::new(true),
            state: Mutex::new(State {
                seen: HashMap::new(),
                stats: FaultStats::default(),
                injected: Vec::new(),
                requests: Vec::new(),
            }),
            client,
        });
        let accept = Arc::clone(&shared);
        let task = tokio::spawn(async move {
            // Dropped with this task when the proxy is dropped: aborts every connection.
            let mut connections = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                connections.spawn(serve_connection(Arc::clone(&accept), stream));
                while connections.try_join_next().is_some() {}
            }
        });
        Ok(FaultProxy {
            shared,
            addr,
            base_path,
            task,
        })
    }

    /// The proxy's base URL: the upstream's path on the proxy's address.
    pub fn url(&self) -> String {
        format!("http://{}{}", self.addr, self.base_path)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Turns fault injection on or off; off, every request is forwarded untouched.
    pub fn set_enabled(&self, on: bool) {
        self.shared.enabled.store(on, Ordering::SeqCst);
    }

    pub fn enabled(&self) -> bool {
        self.shared.enabled.load(Ordering::SeqCst)
    }

    pub fn stats(&self) -> FaultStats {
        self.shared.lock().stats
    }

    /// Every fault injected so far, oldest first.
    pub fn injected(&self) -> Vec<InjectedFault> {
        self.shared.lock().injected.clone()
    }

    /// Every request answered (or reset) so far, oldest first.
    pub fn requests(&self) -> Vec<ProxiedRequest> {
        self.shared.lock().requests.clone()
    }

    /// The requests that would change the upstream: `POST`, `PUT`, `PATCH`, `DELETE`.
    pub fn writes(&self) -> Vec<ProxiedRequest> {
        self.requests()
            .into_iter()
            .filter(ProxiedRequest::is_write)
            .collect()
    }

    /// Forgets recorded requests (counters and injected faults are kept).
    pub fn clear_requests(&self) {
        self.shared.lock().requests.clear();
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ---- one connection ---------------------------------------------------------------------------

struct Request {
    method: String,
    /// Path and query (origin form).
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    has_body: bool,
    close: bool,
}

enum Reply {
    Answer(Vec<u8>),
    Reset,
}

async fn serve_connection(shared: Arc<Shared>, mut stream: TcpStream) {
    let mut buf = Vec::new();
    loop {
        let req = match read_request(&mut stream, &mut buf).await {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(_) => {
                let _ = stream
                    .write_all(&render(400, &[], b"bad request", true))
                    .await;
                return;
            }
        };
        match handle(&shared, &req).await {
            Reply::Answer(bytes) => {
                if stream.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            Reply::Reset => {
                // SO_LINGER 0: closing sends RST, as a crashed peer or a middlebox would.
                let _ = stream.set_zero_linger();
                return;
            }
        }
        if req.close {
            let _ = stream.shutdown().await;
            return;
        }
    }
}

/// What the rolls decided for one request, before knowing the upstream's answer.
struct Decision {
    error_500: bool,
    reset: bool,
    /// Applies only if the upstream answers a `POST` with `201`.
    malformed: Option<FaultKind>,
}

impl Shared {
    fn decide(&self, req: &Request) -> Decision {
        let mut st = self.lock();
        st.stats.requests += 1;
        let key = fingerprint(self.plan.seed, req);
        let seen = st.seen.entry(key).or_insert(0);
        let occurrence = *seen;
        *seen += 1;
        if !self.enabled.load(Ordering::SeqCst) {
            return Decision {
                error_500: false,
                reset: false,
                malformed: None,
            };
        }
        let mut rng = SplitMix(key ^ occurrence.wrapping_mul(0xA076_1D64_78BD_642F));
        let error_500 = rng.unit() < self.plan.error_500;
        let reset = rng.unit() < self.plan.reset_after_forward;
        let malformed = (rng.unit() < self.plan.malformed_201).then(|| match rng.next() % 3 {
            0 => FaultKind::Truncated201,
            1 => FaultKind::MissingId201,
            _ => FaultKind::Empty201,
        });
        Decision {
            error_500,
            reset,
            malformed,
        }
    }

    fn record(&self, kind: FaultKind, req: &Request) {
        let mut st = self.lock();
        match kind {
            FaultKind::Error500 => st.stats.error_500 += 1,
            FaultKind::ResetAfterForward => st.stats.resets += 1,
            FaultKind::Truncated201 => st.stats.truncated_201 += 1,
            FaultKind::MissingId201 => st.stats.missing_id_201 += 1,
            FaultKind::Empty201 => st.stats.empty_201 += 1,
        }
        st.injected.push(InjectedFault {
            kind,
            method: req.method.clone(),
            path: req.target.clone(),
        });
    }

    async fn forward(&self, req: &Request) -> Result<Upstream, String> {
        let method =
            reqwest::Method::from_bytes(req.method.as_bytes()).map_err(|e| e.to_string())?;
        let mut rb = self
            .client
            .request(method, format!("{}{}", self.upstream_origin, req.target));
        for (name, value) in &req.headers {
            if !hop_by_hop(name)
                && !name.eq_ignore_ascii_case("host")
                && !name.eq_ignore_ascii_case("content-length")
            {
                rb = rb.header(name.as_str(), value.as_str());
            }
        }
        if req.has_body {
            rb = rb.body(req.body.clone());
        }
        let resp = rb.send().await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .filter(|(name, _)| !hop_by_hop(name.as_str()) && *name != "content-length")
            .map(|(name, value)| {
                (
                    name.to_string(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = resp.bytes().await.map_err(|e| e.to_string())?.to_vec();
        Ok(Upstream {
            status,
            headers,
            body,
        })
    }
}

struct Upstream {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

async fn handle(shared: &Shared, req: &Request) -> Reply {
    let (reply, forwarded, status) = decide_and_forward(shared, req).await;
    shared.lock().requests.push(ProxiedRequest {
        method: req.method.clone(),
        path: req.target.clone(),
        forwarded,
        status,
    });
    reply
}

/// The reply, whether the upstream saw the request, and the status the client gets.
async fn decide_and_forward(shared: &Shared, req: &Request) -> (Reply, bool, Option<u16>) {
    let decision = shared.decide(req);
    if decision.error_500 {
        shared.record(FaultKind::Error500, req);
        let body = serde_json::json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
            "status": "500",
            "detail": "fault injected by the scimsync test kit (not forwarded)",
        })
        .to_string();
        let headers = [(
            "content-type".to_string(),
            "application/scim+json".to_string(),
        )];
        let reply = Reply::Answer(render(500, &headers, body.as_bytes(), req.close));
        return (reply, false, Some(500));
    }
    let mut up = match shared.forward(req).await {
        Ok(up) => up,
        Err(e) => {
            let msg = format!("fault proxy: upstream unreachable: {e}");
            return (
                Reply::Answer(render(502, &[], msg.as_bytes(), req.close)),
                false,
                Some(502),
            );
        }
    };
    shared.lock().stats.forwarded += 1;
    if decision.reset {
        shared.record(FaultKind::ResetAfterForward, req);
        return (Reply::Reset, true, None);
    }
    if let Some(kind) = decision.malformed
        && req.method.eq_ignore_ascii_case("POST")
        && up.status == 201
    {
        up.body = match kind {
            FaultKind::Truncated201 => up.body[..up.body.len() / 2].to_vec(),
            FaultKind::MissingId201 => match serde_json::from_slice::<Value>(&up.body) {
                Ok(Value::Object(mut m)) => {
                    m.remove("id");
                    Value::Object(m).to_string().into_bytes()
                }
                _ => b"{}".to_vec(),
            },
            _ => Vec::new(),
        };
        up.headers
            .retain(|(name, _)| !name.eq_ignore_ascii_case("location"));
        shared.record(kind, req);
    }
    let reply = Reply::Answer(render(up.status, &up.headers, &up.body, req.close));
    (reply, true, Some(up.status))
}

// ---- HTTP/1.1 framing -------------------------------------------------------------------------

fn hop_by_hop(name: &str) -> bool {
    [
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    ]
    .iter()
    .any(|h| name.eq_ignore_ascii_case(h))
}

fn render(status: u16, headers: &[(String, String)], body: &[u8], close: bool) -> Vec<u8> {
    let reason = reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Unknown");
    let mut out = format!("HTTP/1.1 {status} {reason}\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    // No body at all for 1xx, 204 and 304 (RFC 9110 §8.6).
    let bodiless = status < 200 || status == 204 || status == 304;
    if !bodiless {
        out.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    if close {
        out.push_str("connection: close\r\n");
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    if !bodiless {
        bytes.extend_from_slice(body);
    }
    bytes
}

/// Reads one request from the connection; `None` on a clean end of stream between requests.
async fn read_request(s: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<Option<Request>> {
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_HEAD {
            return Err(invalid("request head too large"));
        }
        if read_more(s, buf).await? == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err(invalid("connection closed inside a request head"))
            };
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    buf.drain(..head_end + 4);
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split_whitespace();
    let (Some(method), Some(target), Some(version)) = (first.next(), first.next(), first.next())
    else {
        return Err(invalid("malformed request line"));
    };
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.to_ascii_lowercase())
    };
    let chunked = header("transfer-encoding").is_some_and(|v| v.contains("chunked"));
    let length = header("content-length");
    let (body, has_body) = if chunked {
        (read_chunked(s, buf).await?, true)
    } else if let Some(n) = length {
        let n: usize = n.parse().map_err(|_| invalid("bad content-length"))?;
        fill(s, buf, n).await?;
        (buf.drain(..n).collect(), true)
    } else {
        (Vec::new(), false)
    };
    let close = version.eq_ignore_ascii_case("HTTP/1.0")
        || header("connection").is_some_and(|v| v.contains("close"));
    // Absolute form (a client configured with us as its HTTP proxy): keep path and query.
    let target = match target.strip_prefix("http://") {
        Some(rest) => rest.find('/').map_or("/", |i| &rest[i..]).to_string(),
        None => target.to_string(),
    };
    Ok(Some(Request {
        method: method.to_string(),
        target,
        headers,
        body,
        has_body,
        close,
    }))
}

async fn read_more(s: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<usize> {
    let mut chunk = [0u8; 16 * 1024];
    let n = s.read(&mut chunk).await?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n)
}

/// Until `buf` holds at least `n` bytes.
async fn fill(s: &mut TcpStream, buf: &mut Vec<u8>, n: usize) -> io::Result<()> {
    while buf.len() < n {
        if read_more(s, buf).await? == 0 {
            return Err(invalid("connection closed inside a request body"));
        }
    }
    Ok(())
}

async fn read_line(s: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<String> {
    loop {
        if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
            let line = String::from_utf8_lossy(&buf[..i]).into_owned();
            buf.drain(..i + 2);
            return Ok(line);
        }
        if buf.len() > MAX_HEAD {
            return Err(invalid("line too long"));
        }
        if read_more(s, buf).await? == 0 {
            return Err(invalid("connection closed inside a chunked body"));
        }
    }
}

async fn read_chunked(s: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line = read_line(s, buf).await?;
        let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| invalid("bad chunk size"))?;
        if size == 0 {
            // Trailers, up to the empty line.
            while !read_line(s, buf).await?.is_empty() {}
            return Ok(body);
        }
        fill(s, buf, size + 2).await?;
        body.extend_from_slice(&buf[..size]);
        buf.drain(..size + 2);
    }
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

// ---- determinism ------------------------------------------------------------------------------

/// FNV-1a over the seed and the request's method, target and body.
fn fingerprint(seed: u64, req: &Request) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let method = req.method.to_ascii_uppercase();
    let parts: [&[u8]; 4] = [
        &seed.to_le_bytes(),
        method.as_bytes(),
        req.target.as_bytes(),
        &req.body,
    ];
    for part in parts {
        for b in part.iter().chain(std::iter::once(&0xff)) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::{ScimTarget, ScimTargetOptions};
    use serde_json::json;

    fn client() -> reqwest::Client {
        reqwest::Client::builder().no_proxy().build().unwrap()
    }

    fn user(name: &str) -> Value {
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name})
    }

    async fn post(
        c: &reqwest::Client,
        url: &str,
        token: &str,
        body: &Value,
    ) -> reqwest::Result<(u16, Vec<u8>, bool)> {
        let r = c
            .post(format!("{url}/Users"))
            .bearer_auth(token)
            .header("content-type", "application/scim+json")
            .body(body.to_string())
            .send()
            .await?;
        let status = r.status().as_u16();
        let location = r.headers().contains_key("location");
        Ok((status, r.bytes().await?.to_vec(), location))
    }

    #[tokio::test]
    async fn forwards_untouched_with_faults_off() {
        let app = ScimTarget::start(ScimTargetOptions::default())
            .await
            .unwrap();
        let proxy = FaultProxy::start(
            &app.url(),
            FaultPlan {
                seed: 1,
                error_500: 1.0,
                reset_after_forward: 1.0,
                malformed_201: 1.0,
            },
        )
        .await
        .unwrap();
        proxy.set_enabled(false);
        assert!(proxy.url().ends_with("/scim/v2"));
        let c = client();
        let (status, body, _) = post(&c, &proxy.url(), app.token(), &user("ada@x"))
            .await
            .unwrap();
        assert_eq!(status, 201);
        let id = serde_json::from_slice::<Value>(&body).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        let got = c
            .get(format!("{}/Users/{id}", proxy.url()))
            .bearer_auth(app.token())
            .send()
            .await
            .unwrap();
        assert_eq!(got.status(), 200);
        assert_eq!(got.json::<Value>().await.unwrap()["userName"], "ada@x");
        // A 204 passes through with no body, and the connection stays usable.
        let del = c
            .delete(format!("{}/Users/{id}", proxy.url()))
            .bearer_auth(app.token())
            .send()
            .await
            .unwrap();
        assert_eq!(del.status(), 204);
        let s = proxy.stats();
        assert_eq!((s.requests, s.forwarded, s.faults()), (3, 3, 0));
        let seen: Vec<(String, Option<u16>)> = proxy
            .requests()
            .into_iter()
            .map(|r| (r.method, r.status))
            .collect();
        assert_eq!(
            seen,
            [("POST", 201), ("GET", 200), ("DELETE", 204)].map(|(m, s)| (m.to_string(), Some(s)))
        );
        assert_eq!(proxy.writes().len(), 2);
    }

    #[tokio::test]
    async fn injects_each_fault_kind() {
        let app = ScimTarget::start(ScimTargetOptions::default())
            .await
            .unwrap();
        let c = client();

        // 500 without forwarding: the app never sees the request.
        let p = FaultProxy::start(
            &app.url(),
            FaultPlan {
                seed: 2,
                error_500: 1.0,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let (status, _, _) = post(&c, &p.url(), app.token(), &user("a@x")).await.unwrap();
        assert_eq!(status, 500);
        assert!(app.requests().is_empty());
        assert_eq!(p.stats().error_500, 1);
        assert_eq!(p.stats().forwarded, 0);

        // Reset after forwarding: the client gets no answer, the app created the user.
        let p = FaultProxy::start(
            &app.url(),
            FaultPlan {
                seed: 2,
                reset_after_forward: 1.0,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let err = post(&c, &p.url(), app.token(), &user("b@x")).await;
        assert!(err.is_err(), "{err:?}");
        assert!(app.user_by_username("b@x").is_some());
        assert_eq!(p.stats().resets, 1);
        assert_eq!(p.injected()[0].kind, FaultKind::ResetAfterForward);
        assert_eq!(p.requests()[0].status, None);
        assert!(p.requests()[0].forwarded);

        // Malformed 201: status kept, body broken, no Location; every kind shows up.
        let p = FaultProxy::start(
            &app.url(),
            FaultPlan {
                seed: 2,
                malformed_201: 1.0,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        for i in 0..30 {
            let (status, body, location) =
                post(&c, &p.url(), app.token(), &user(&format!("m{i}@x")))
                    .await
                    .unwrap();
            assert_eq!(status, 201);
            assert!(!location);
            let id = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v.get("id").cloned());
            assert!(id.is_none(), "{}", String::from_utf8_lossy(&body));
            assert!(app.user_by_username(&format!("m{i}@x")).is_some());
        }
        let s = p.stats();
        assert_eq!(s.malformed_201(), 30);
        assert!(
            s.truncated_201 > 0 && s.missing_id_201 > 0 && s.empty_201 > 0,
            "{s:?}"
        );
        // Not a POST answered 201: untouched.
        let list = c
            .get(format!("{}/Users", p.url()))
            .bearer_auth(app.token())
            .send()
            .await
            .unwrap();
        assert_eq!(
            list.json::<Value>().await.unwrap()["totalResults"],
            31,
            "b and m0..m29"
        );
    }

    #[tokio::test]
    async fn decisions_depend_on_the_seed_and_the_request_not_the_order() {
        let app = ScimTarget::start(ScimTargetOptions::default())
            .await
            .unwrap();
        let c = client();
        let plan = FaultPlan {
            seed: 42,
            error_500: 0.1,
            ..Default::default()
        };
        let mut runs = Vec::new();
        for reversed in [false, true] {
            let p = FaultProxy::start(&app.url(), plan).await.unwrap();
            let mut order: Vec<usize> = (0..200).collect();
            if reversed {
                order.reverse();
            }
            let mut failed = Vec::new();
            for i in order {
                let r = c
                    .get(format!(
                        "{}/Users?filter=userName%20eq%20%22u{i}%22",
                        p.url()
                    ))
                    .bearer_auth(app.token())
                    .send()
                    .await
                    .unwrap();
                if r.status() == 500 {
                    failed.push(i);
                }
            }
            failed.sort_unstable();
            assert_eq!(p.stats().error_500, failed.len() as u64);
            runs.push(failed);
        }
        assert_eq!(runs[0], runs[1]);
        assert!(
            (8..=40).contains(&runs[0].len()),
            "about 10 %: {}",
            runs[0].len()
        );
        // The same request again rolls anew: it does not fail forever.
        let p = FaultProxy::start(
            &app.url(),
            FaultPlan {
                seed: 42,
                error_500: 0.5,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let mut statuses = Vec::new();
        for _ in 0..20 {
            let r = c
                .get(format!("{}/Users", p.url()))
                .bearer_auth(app.token())
                .send()
                .await
                .unwrap();
            statuses.push(r.status().as_u16());
        }
        assert!(
            statuses.contains(&500) && statuses.contains(&200),
            "{statuses:?}"
        );
    }

    #[tokio::test]
    async fn chunked_request_bodies_are_forwarded() {
        let app = ScimTarget::start(ScimTargetOptions::default())
            .await
            .unwrap();
        let p = FaultProxy::start(&app.url(), FaultPlan::default())
            .await
            .unwrap();
        let body = user("chunked@x").to_string();
        let mut s = TcpStream::connect(p.addr()).await.unwrap();
        let (a, b) = body.split_at(10);
        let raw = format!(
            "POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/scim+json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
            app.token(),
            a.len(),
            b.len()
        );
        s.write_all(raw.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.unwrap();
        assert!(
            String::from_utf8_lossy(&out).starts_with("HTTP/1.1 201"),
            "{}",
            String::from_utf8_lossy(&out)
        );
        assert!(app.user_by_username("chunked@x").is_some());
    }
}
