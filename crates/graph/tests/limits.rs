//! Response size limits: an endless or oversized answer from Graph or the token endpoint is
//! refused with an error naming the request and the limit, after reading at most the limit.
//! The stand-in server streams its answer chunk by chunk and never holds it whole.

use scimsync_core::{ErrorCode, Secret, Source, UserQuery, UserScope};
use scimsync_graph::{
    DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_MAX_TOKEN_RESPONSE_BYTES, GraphClient, GraphConfig,
};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const MIB: usize = 1 << 20;
/// The stand-in stops on its own after this much, should the client never hang up.
const SERVER_GIVES_UP_AFTER: u64 = 1 << 30;

/// What one streaming answer looks like.
#[derive(Clone, Copy)]
struct Answer {
    status: u16,
    /// `Content-Length` to announce; `None` streams with chunked transfer encoding.
    announce: Option<u64>,
}

/// Counters of a [`streaming_server`].
struct Streamed {
    base: String,
    connections: Arc<AtomicUsize>,
    bytes_sent: Arc<AtomicU64>,
}

/// A loopback HTTP/1.1 server answering every request with a JSON-looking body that never ends
/// (64 KiB chunks of `{"id":"…"},`), until the client hangs up; except the deleted users, read
/// alongside the users, which are an empty page. `connections` counts the streamed answers.
async fn streaming_server(answer: Answer) -> Streamed {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let bytes_sent = Arc::new(AtomicU64::new(0));
    let (conns, sent) = (connections.clone(), bytes_sent.clone());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (conns, sent) = (conns.clone(), sent.clone());
            tokio::spawn(async move {
                let Some(head) = read_head(&stream).await else {
                    return;
                };
                if head.contains("/deletedItems/") {
                    let empty = r#"{"value":[]}"#;
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{empty}",
                        empty.len()
                    );
                    write_all(&stream, answer.as_bytes()).await;
                    return;
                }
                conns.fetch_add(1, Ordering::SeqCst);
                let length = match answer.announce {
                    Some(n) => format!("content-length: {n}"),
                    None => "transfer-encoding: chunked".to_string(),
                };
                let opening = match answer.announce {
                    Some(_) => "{\"value\":[".to_string(),
                    None => "a\r\n{\"value\":[\r\n".to_string(),
                };
                let head = format!(
                    "HTTP/1.1 {} X\r\ncontent-type: application/json\r\n{length}\r\n\r\n{opening}",
                    answer.status
                );
                if !write_all(&stream, head.as_bytes()).await {
                    return;
                }
                let item = br#"{"id":"00000000-0000-0000-0000-000000000000"},"#;
                let data: Vec<u8> = item.iter().copied().cycle().take(64 * 1024).collect();
                let chunk = match answer.announce {
                    Some(_) => data,
                    None => [format!("{:x}\r\n", data.len()).as_bytes(), &data, b"\r\n"].concat(),
                };
                while sent.load(Ordering::SeqCst) < SERVER_GIVES_UP_AFTER {
                    if !write_all(&stream, &chunk).await {
                        return;
                    }
                    sent.fetch_add(chunk.len() as u64, Ordering::SeqCst);
                }
            });
        }
    });
    Streamed {
        base,
        connections,
        bytes_sent,
    }
}

/// Reads until the end of a request head; `None` if the peer went away first.
async fn read_head(stream: &tokio::net::TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut chunk = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        stream.readable().await.ok()?;
        match stream.try_read(&mut chunk) {
            Ok(0) => return None,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return None,
        }
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

async fn write_all(stream: &tokio::net::TcpStream, mut bytes: &[u8]) -> bool {
    while !bytes.is_empty() {
        if stream.writable().await.is_err() {
            return false;
        }
        match stream.try_write(bytes) {
            Ok(0) => return false,
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return false,
        }
    }
    true
}

async fn token_server() -> MockServer {
    let login = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"token_type": "Bearer", "expires_in": 3599, "access_token": "tok"}),
        ))
        .mount(&login)
        .await;
    login
}

fn config(graph_url: String, login_url: String) -> GraphConfig {
    GraphConfig {
        graph_url,
        login_url,
        max_response_bytes: MIB,
        ..GraphConfig::new("tenant-1", "client-1", Secret::inline("s3cr3t"))
    }
}

fn all_users() -> UserQuery {
    UserQuery {
        attributes: vec![],
        scope: UserScope::All,
        keep: None,
    }
}

/// The client hung up: what the server managed to send stops growing, far below its limit.
async fn assert_server_stopped(s: &Streamed) {
    tokio::time::sleep(Duration::from_millis(300)).await;
    let settled = s.bytes_sent.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        s.bytes_sent.load(Ordering::SeqCst),
        settled,
        "still sending"
    );
    // The limit plus what socket buffers hold.
    assert!(settled < 64 * MIB as u64, "{settled} bytes sent");
}

#[test]
fn defaults_are_64_mib_for_pages_and_1_mib_for_tokens() {
    let cfg = GraphConfig::new("t", "c", Secret::inline("s"));
    assert_eq!(cfg.max_response_bytes, DEFAULT_MAX_RESPONSE_BYTES);
    assert_eq!(DEFAULT_MAX_RESPONSE_BYTES, 64 * MIB);
    assert_eq!(
        cfg.max_token_response_bytes,
        DEFAULT_MAX_TOKEN_RESPONSE_BYTES
    );
    assert_eq!(DEFAULT_MAX_TOKEN_RESPONSE_BYTES, MIB);
    for cfg in [
        GraphConfig {
            max_response_bytes: 10,
            ..cfg.clone()
        },
        GraphConfig {
            max_token_response_bytes: 0,
            ..cfg.clone()
        },
    ] {
        let err = GraphClient::new(cfg).unwrap_err();
        assert_eq!(err.code, ErrorCode::ConfigInvalid);
        assert!(err.message.contains("must be at least 1024 bytes (1 KiB)"));
    }
}

#[tokio::test]
async fn an_endless_streamed_page_is_refused_at_the_limit() {
    let login = token_server().await;
    let graph = streaming_server(Answer {
        status: 200,
        announce: None,
    })
    .await;
    let client =
        GraphClient::with_retry_base(config(graph.base.clone(), login.uri()), Duration::ZERO)
            .unwrap();
    let err = tokio::time::timeout(Duration::from_secs(30), client.read_users(&all_users()))
        .await
        .expect("refused without reading the whole answer")
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::GraphRequestFailed, "{err:?}");
    assert!(
        err.message.starts_with("GET /v1.0/users: Graph answered 200 OK with a body larger than the limit of 1048576 bytes (1 MiB); refused without reading the rest"),
        "{}",
        err.message
    );
    assert!(
        err.message.contains("max_response_bytes"),
        "{}",
        err.message
    );
    // Not retried: the same request would bring the same answer.
    assert_eq!(graph.connections.load(Ordering::SeqCst), 1);
    assert_server_stopped(&graph).await;
}

#[tokio::test]
async fn an_announced_300_mb_page_is_refused_before_reading() {
    let login = token_server().await;
    let graph = streaming_server(Answer {
        status: 200,
        announce: Some(300_000_000),
    })
    .await;
    let client =
        GraphClient::with_retry_base(config(graph.base.clone(), login.uri()), Duration::ZERO)
            .unwrap();
    let err = client.read_users(&all_users()).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::GraphRequestFailed);
    assert!(
        err.message.contains(
            "with a body announced 300000000 bytes, more than the limit of 1048576 bytes (1 MiB)"
        ),
        "{}",
        err.message
    );
    assert_server_stopped(&graph).await;
}

#[tokio::test]
async fn an_oversized_error_answer_is_still_that_error() {
    let login = token_server().await;
    let graph = streaming_server(Answer {
        status: 403,
        announce: None,
    })
    .await;
    let client =
        GraphClient::with_retry_base(config(graph.base.clone(), login.uri()), Duration::ZERO)
            .unwrap();
    let err = client.read_users(&all_users()).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::GraphRequestFailed);
    assert!(
        err.message.starts_with("GET /v1.0/users: HTTP 403"),
        "{}",
        err.message
    );
    assert_server_stopped(&graph).await;
}

#[tokio::test]
async fn an_endless_token_answer_is_refused_at_its_own_limit() {
    let login = streaming_server(Answer {
        status: 200,
        announce: None,
    })
    .await;
    let client = GraphClient::with_retry_base(
        config("http://127.0.0.1:9".into(), login.base.clone()),
        Duration::ZERO,
    )
    .unwrap();
    let err = tokio::time::timeout(Duration::from_secs(30), client.token())
        .await
        .expect("refused without reading the whole answer")
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::GraphRequestFailed, "{err:?}");
    assert!(
        err.message.starts_with(
            "token endpoint answered HTTP 200 with a body larger than the limit of 1048576 bytes (1 MiB)"
        ),
        "{}",
        err.message
    );
    assert!(
        err.message.contains("max_token_response_bytes"),
        "{}",
        err.message
    );
    assert_eq!(login.connections.load(Ordering::SeqCst), 1, "not retried");
    assert_server_stopped(&login).await;
}
