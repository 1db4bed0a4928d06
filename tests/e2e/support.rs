//! Shared harness: emulated tenants, job files, running the binary, and the real SCIM server.

use scimsync_testkit::graph::{GraphEmulator, Tenant};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The user mappings most tests use: Entra's default user mapping for a SCIM app, without
/// expressions.
pub const DEFAULT_MAPPINGS: &str = r#"
[[users.mappings]]
target = "userName"
source = "userPrincipalName"
matching = 1

[[users.mappings]]
target = "externalId"
source = "mailNickname"

[[users.mappings]]
target = "displayName"
source = "displayName"

[[users.mappings]]
target = "name.givenName"
source = "givenName"

[[users.mappings]]
target = "name.familyName"
source = "surname"

[[users.mappings]]
target = "title"
source = "jobTitle"

[[users.mappings]]
target = 'emails[type eq "work"].value'
source = "mail"

[[users.mappings]]
target = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"
source = "department"
"#;

/// A job directory: the job file, its secrets (as files) and its state.
pub struct Job {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl Job {
    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }
}

pub struct JobOptions<'a> {
    pub scope: &'a str,
    pub dialect: &'a str,
    pub mappings: &'a str,
    pub extra_top: &'a str,
}

impl Default for JobOptions<'_> {
    fn default() -> Self {
        JobOptions {
            scope: "all",
            dialect: "rfc",
            mappings: DEFAULT_MAPPINGS,
            extra_top: "",
        }
    }
}

pub fn write_job(
    graph: &GraphEmulator,
    scim_url: &str,
    scim_token: &str,
    opts: JobOptions<'_>,
) -> Job {
    let dir = tempfile::tempdir().expect("temp dir");
    let secret = dir.path().join("graph-secret");
    let token = dir.path().join("scim-token");
    std::fs::write(&secret, graph.client_secret()).expect("write secret");
    std::fs::write(&token, scim_token).expect("write token");
    let text = format!(
        r#"name = "e2e"
{extra}
[source]
tenant_id = "{tenant}"
client_id = "{client}"
client_secret = "file:{secret}"
service_principal_id = "{sp}"
scope = "{scope}"
graph_url = "{url}"
login_url = "{url}"

[target]
url = "{scim_url}"
token = "file:{token}"
dialect = "{dialect}"
{mappings}"#,
        extra = opts.extra_top,
        tenant = graph.tenant_id(),
        client = graph.client_id(),
        secret = secret.display(),
        sp = graph.service_principal_id(),
        scope = opts.scope,
        url = graph.url(),
        token = token.display(),
        dialect = opts.dialect,
        mappings = opts.mappings,
    );
    let config = dir.path().join("job.toml");
    std::fs::write(&config, text).expect("write job");
    Job { dir, config }
}

pub async fn tenant(users: usize) -> GraphEmulator {
    GraphEmulator::start(Tenant::generate("contoso.onmicrosoft.com", users, 2, 7))
        .await
        .expect("graph emulator")
}

/// Enabled users of the emulated tenant (what "Sync all" provisions).
pub fn enabled_upns(graph: &GraphEmulator) -> Vec<String> {
    let mut v: Vec<String> = graph
        .users()
        .iter()
        .filter(|u| u["accountEnabled"] != Value::Bool(false))
        .filter_map(|u| u["userPrincipalName"].as_str().map(str::to_lowercase))
        .collect();
    v.sort();
    v
}

pub fn user_id(graph: &GraphEmulator, enabled_index: usize) -> String {
    let users = graph.users();
    let mut enabled: Vec<&Value> = users
        .iter()
        .filter(|u| u["accountEnabled"] != Value::Bool(false))
        .collect();
    enabled.sort_by_key(|u| {
        u["userPrincipalName"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase()
    });
    enabled[enabled_index]["id"]
        .as_str()
        .expect("id")
        .to_string()
}

pub fn upn_of(graph: &GraphEmulator, id: &str) -> String {
    graph
        .users()
        .iter()
        .find(|u| u["id"] == id)
        .and_then(|u| u["userPrincipalName"].as_str())
        .expect("upn")
        .to_string()
}

/// Run the binary to completion.
pub fn scimsync(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_scimsync"))
        .args(args)
        .output()
        .expect("run scimsync")
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `run --once --json`, asserting success; returns the cycle report.
pub fn run_once(job: &Job) -> Value {
    let out = scimsync(&[
        "run",
        "--once",
        "--json",
        "--config",
        job.config.to_str().unwrap(),
        "--state",
        job.state().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "run failed: {}", text(&out));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("report is not JSON ({e}): {}", text(&out)))
}

/// `run --once --json` whatever its exit code (tests of failing or held cycles).
pub fn run_once_output(job: &Job) -> Output {
    scimsync(&[
        "run",
        "--once",
        "--json",
        "--config",
        job.config.to_str().unwrap(),
        "--state",
        job.state().to_str().unwrap(),
    ])
}

pub fn preview_json(job: &Job) -> Value {
    let out = scimsync(&[
        "preview",
        "--json",
        "--config",
        job.config.to_str().unwrap(),
        "--state",
        job.state().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "preview failed: {}", text(&out));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("preview is not JSON ({e}): {}", text(&out)))
}

pub fn tally(report: &Value, key: &str) -> u64 {
    report["tally"][key]
        .as_u64()
        .unwrap_or_else(|| panic!("no tally.{key} in {report}"))
}

/// The real SCIM server from PyPI, started on a free loopback port that we read back from the
/// kernel (it prints the port it was given, not the one it got).
pub struct Scim2Server {
    child: Child,
    pub base: String,
    pub token: String,
}

impl Scim2Server {
    pub fn start() -> Scim2Server {
        Scim2Server::start_with(&[])
    }

    /// Started with extra arguments, e.g. `--schema FILE --resource-type FILE` to serve an
    /// app's own extension schema (Klaxoon's group licence).
    pub fn start_with(extra: &[&str]) -> Scim2Server {
        let bin = scim2_server_binary();
        let token = format!("tok-{}", std::process::id());
        let child = Command::new(&bin)
            .args([
                "--hostname",
                "127.0.0.1",
                "--port",
                "0",
                "--bearer-token",
                &token,
            ])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let port = listening_port(child.id(), Duration::from_secs(20))
            .unwrap_or_else(|| panic!("scim2-server (pid {}) did not start listening", child.id()));
        Scim2Server {
            child,
            base: format!("http://127.0.0.1:{port}/v2"),
            token,
        }
    }
}

/// What the tests read and seed on a real SCIM server, whichever it is (scim2-server, SCIMMY).
pub trait RealScim {
    /// The SCIM base URL (`…/v2`, `…/scim/v2`).
    fn base(&self) -> &str;
    fn token(&self) -> &str;

    /// Any request, as sent: the status and the JSON body (`Null` when there is none).
    fn request(&self, method: &str, path_and_query: &str, body: Option<&Value>) -> (u16, Value) {
        plain_http::request(
            method,
            &format!("{}{}", self.base(), path_and_query),
            self.token(),
            body,
        )
    }

    /// GET a path on the server (e.g. `/Users?filter=...`), asserting 200.
    fn get(&self, path_and_query: &str) -> Value {
        let (status, body) = plain_http::request(
            "GET",
            &format!("{}{}", self.base(), path_and_query),
            self.token(),
            None,
        );
        assert_eq!(status, 200, "GET {path_and_query}: {body}");
        body
    }

    /// POST a resource (to seed the app as an admin would by hand), asserting 201.
    fn post(&self, path: &str, body: &Value) -> Value {
        let (status, body) = plain_http::request(
            "POST",
            &format!("{}{}", self.base(), path),
            self.token(),
            Some(body),
        );
        assert_eq!(status, 201, "POST {path}: {body}");
        body
    }

    /// The one user with this userName, if any.
    fn user(&self, user_name: &str) -> Option<Value> {
        let q = format!(
            "/Users?filter={}",
            pct(&format!("userName eq \"{user_name}\""))
        );
        let list = self.get(&q);
        let all = list["Resources"].as_array().cloned().unwrap_or_default();
        assert!(all.len() <= 1, "duplicate users named {user_name}: {all:?}");
        all.into_iter().next()
    }

    /// Every resource of a type (`Users`, `Groups`), all pages.
    fn list_all(&self, resource: &str) -> Vec<Value> {
        let mut all = Vec::new();
        loop {
            let page = self.get(&format!(
                "/{resource}?startIndex={}&count=100",
                all.len() + 1
            ));
            let got = page["Resources"].as_array().cloned().unwrap_or_default();
            let total = page["totalResults"].as_u64().unwrap_or(0) as usize;
            let empty = got.is_empty();
            all.extend(got);
            if empty || all.len() >= total {
                return all;
            }
        }
    }

    fn user_count(&self) -> u64 {
        self.get("/Users?count=1")["totalResults"]
            .as_u64()
            .expect("totalResults")
    }
}

impl RealScim for Scim2Server {
    fn base(&self) -> &str {
        &self.base
    }
    fn token(&self) -> &str {
        &self.token
    }
}

fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Drop for Scim2Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// SCIMMY (npm) made into a server by `tests/scimmy/server.js`: the second real SCIM target,
/// lenient where scim2-server is strict and strict where it is lenient. `.ci/run` installs its
/// pinned packages (`npm ci` in `tests/scimmy`); the server picks a free loopback port and
/// prints it on stdout.
pub struct Scimmy {
    child: Child,
    pub base: String,
    pub token: String,
}

impl Scimmy {
    /// Started, or `None` (with a message saying why the test is skipped) when its packages are
    /// not installed and `CI` is not set; in CI a missing install is a failure.
    pub fn start() -> Option<Scimmy> {
        Scimmy::start_with(&[])
    }

    /// Started with extra arguments: `--schema FILE --resource-type FILE` as scim2-server's,
    /// to declare an app's own extension schema (Klaxoon's group licence).
    pub fn start_with(extra: &[&str]) -> Option<Scimmy> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scimmy");
        if !dir.join("node_modules/scimmy").is_dir() {
            let why = format!(
                "SCIMMY is not installed: run `npm ci` in {} (node and npm needed)",
                dir.display()
            );
            assert!(std::env::var_os("CI").is_none(), "{why}");
            eprintln!("SKIPPED: {why}");
            return None;
        }
        let token = format!("tok-{}", std::process::id());
        let mut child = Command::new(std::env::var("SCIMSYNC_NODE").unwrap_or("node".into()))
            .arg(dir.join("server.js"))
            .arg("0")
            .args(extra)
            .env("SCIMMY_TOKEN", &token)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start node {}/server.js: {e}", dir.display()));
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            let mut line = String::new();
            let _ = std::io::BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(20)).unwrap_or_default();
        let port: u16 = match line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|p| p.parse().ok())
        {
            Some(p) => p,
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the SCIMMY server did not say its port (it said {line:?})");
            }
        };
        Some(Scimmy {
            child,
            base: format!("http://127.0.0.1:{port}/scim/v2"),
            token,
        })
    }
}

impl RealScim for Scimmy {
    fn base(&self) -> &str {
        &self.base
    }
    fn token(&self) -> &str {
        &self.token
    }
}

impl Drop for Scimmy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

mod plain_http {
    //! A tiny blocking HTTP/1.1 client for checking the real server's state from tests.
    use serde_json::Value;
    use std::io::{Read, Write};
    use std::net::TcpStream;

    pub fn request(method: &str, url: &str, token: &str, body: Option<&Value>) -> (u16, Value) {
        let rest = url.strip_prefix("http://").expect("http url");
        let (host, path) = rest.split_once('/').expect("path");
        let mut s = TcpStream::connect(host).expect("connect");
        let payload = body.map(|b| b.to_string()).unwrap_or_default();
        write!(
            s,
            "{method} /{path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nAccept: application/scim+json\r\nContent-Type: application/scim+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{payload}",
            payload.len()
        )
        .expect("send");
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).expect("read");
        let text = String::from_utf8_lossy(&buf);
        let (head, body) = text.split_once("\r\n\r\n").expect("http response");
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .expect("status");
        let body = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(body)
        } else {
            body.to_string()
        };
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    fn dechunk(mut body: &str) -> String {
        let mut out = String::new();
        while let Some((size, rest)) = body.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 || rest.len() < n {
                break;
            }
            out.push_str(&rest[..n]);
            body = rest[n..].trim_start_matches("\r\n");
        }
        out
    }
}

/// `SCIMSYNC_SCIM2_SERVER`, else `.venv-scim/bin/scim2-server` at the workspace root, installed
/// there from PyPI on first use so `cargo test` works on a fresh machine.
fn scim2_server_binary() -> PathBuf {
    if let Ok(p) = std::env::var("SCIMSYNC_SCIM2_SERVER") {
        return PathBuf::from(p);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bin = root.join(".venv-scim/bin/scim2-server");
    if bin.exists() {
        return bin;
    }
    let lock = std::fs::File::create(root.join("target/.venv-scim.lock")).expect("lock file");
    lock.lock().expect("lock");
    if !bin.exists() {
        let venv = root.join(".venv-scim");
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success())
            && Command::new(venv.join("bin/pip"))
                .args([
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "scim2-server==0.8.3",
                ])
                .status()
                .is_ok_and(|s| s.success());
        assert!(
            ok,
            "could not install scim2-server from PyPI into {}",
            venv.display()
        );
    }
    bin
}

/// The TCP port a process listens on, from /proc (Linux).
fn listening_port(pid: u32, within: Duration) -> Option<u16> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::read_link(e.path()).ok())
            .filter_map(|l| {
                let s = l.to_string_lossy().to_string();
                s.strip_prefix("socket:[")
                    .and_then(|r| r.strip_suffix(']'))
                    .map(str::to_string)
            })
            .collect();
        if let Ok(tcp) = std::fs::read_to_string("/proc/net/tcp") {
            for line in tcp.lines().skip(1) {
                let f: Vec<&str> = line.split_whitespace().collect();
                // local_address, st == 0A (LISTEN), inode
                if f.len() > 9 && f[3] == "0A" && inodes.iter().any(|i| i == f[9]) {
                    let port = f[1]
                        .rsplit(':')
                        .next()
                        .and_then(|p| u16::from_str_radix(p, 16).ok());
                    if port.is_some() {
                        return port;
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}
