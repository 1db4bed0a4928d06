//! Response size limits: an endless or oversized answer from the target is refused with
//! `ServiceIncompatible` naming the request and the limit, after reading at most the limit. The
//! stand-in server streams its answer chunk by chunk and never holds it whole.

use scimsync_core::{Attrs, ErrorCode, Secret, Target};
use scimsync_scim::{DEFAULT_MAX_RESPONSE_BYTES, ScimClient, ScimClientConfig};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

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
/// (64 KiB chunks of `{"id":"…"},`), until the client hangs up. `connections` counts them.
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
                let Some(_head) = read_head(&stream).await else {
                    return;
                };
                conns.fetch_add(1, Ordering::SeqCst);
                let length = match answer.announce {
                    Some(n) => format!("content-length: {n}"),
                    None => "transfer-encoding: chunked".to_string(),
                };
                let opening = match answer.announce {
                    Some(_) => "{\"Resources\":[".to_string(),
                    None => "e\r\n{\"Resources\":[\r\n".to_string(),
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

fn client(base: &str) -> ScimClient {
    let mut cfg = ScimClientConfig::new(format!("{base}/scim/v2"), Secret::inline("t0ken"));
    cfg.max_response_bytes = MIB;
    cfg.retry_base_delay = Duration::ZERO;
    ScimClient::new(cfg).unwrap()
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
fn the_default_limit_is_16_mib_and_tiny_limits_are_refused() {
    let cfg = ScimClientConfig::new("https://scim.example.com/v2", Secret::inline("t"));
    assert_eq!(cfg.max_response_bytes, DEFAULT_MAX_RESPONSE_BYTES);
    assert_eq!(DEFAULT_MAX_RESPONSE_BYTES, 16 * MIB);
    let err = ScimClient::new(ScimClientConfig {
        max_response_bytes: 100,
        ..cfg
    })
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::ConfigInvalid);
    assert!(
        err.detail
            .contains("max_response_bytes 100 must be at least 1024 bytes (1 KiB)")
    );
}

#[tokio::test]
async fn an_endless_list_response_is_refused_at_the_limit_and_not_resent() {
    let target = streaming_server(Answer {
        status: 200,
        announce: None,
    })
    .await;
    let c = client(&target.base);
    let err = tokio::time::timeout(
        Duration::from_secs(30),
        c.find_users("userName", "a@example.com"),
    )
    .await
    .expect("refused without reading the whole answer")
    .unwrap_err();
    assert_eq!(
        err.code,
        ErrorCode::SystemForCrossDomainIdentityManagementServiceIncompatible,
        "{err:?}"
    );
    assert_eq!(err.status, None);
    assert!(
        !err.is_transient() && !err.target_may_have_acted(),
        "{err:?}"
    );
    assert_eq!(
        err.detail,
        "GET /Users?filter=userName+eq+%22a%40example.com%22: answered 200 with a body larger \
         than the limit of 1048576 bytes (1 MiB); refused without reading the rest \
         (max_response_bytes)"
    );
    assert_eq!(target.connections.load(Ordering::SeqCst), 1, "not resent");
    assert_server_stopped(&target).await;
}

#[tokio::test]
async fn an_oversized_answer_to_a_create_says_the_target_has_acted() {
    let target = streaming_server(Answer {
        status: 201,
        announce: Some(300_000_000),
    })
    .await;
    let c = client(&target.base);
    let attrs: Attrs = [("userName".to_string(), json!("a@example.com"))]
        .into_iter()
        .collect();
    let err = c.create_user(&attrs).await.unwrap_err();
    assert_eq!(
        err.code,
        ErrorCode::SystemForCrossDomainIdentityManagementServiceIncompatible
    );
    assert_eq!(err.status, Some(201));
    assert!(err.target_may_have_acted(), "{err:?}");
    assert!(
        err.detail.contains(
            "a body announced 300000000 bytes, more than the limit of 1048576 bytes (1 MiB)"
        ),
        "{}",
        err.detail
    );
    assert!(err.detail.starts_with("POST /Users: "), "{}", err.detail);
    assert_eq!(
        target.connections.load(Ordering::SeqCst),
        1,
        "a POST is never resent"
    );
    assert_server_stopped(&target).await;
}

#[tokio::test]
async fn an_oversized_error_answer_is_still_that_error() {
    let target = streaming_server(Answer {
        status: 403,
        announce: None,
    })
    .await;
    let c = client(&target.base);
    let err = c.find_groups("displayName", "Sales").await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InsufficientRights, "{err:?}");
    assert_eq!(err.status, Some(403));
    assert_server_stopped(&target).await;
}
