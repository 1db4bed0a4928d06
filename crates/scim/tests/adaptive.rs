//! Adaptive concurrency (issue 16 §5) against a target that rate-limits: a loopback server
//! that answers at most N requests per second (each taking 50 ms) and 429 with `Retry-After`
//! above that. The adaptive client backs off to what the target sustains and loses nothing;
//! the same client at a fixed concurrency of 16 hammers it with several times the 429s.

use scimsync_core::{Secret, Target};
use scimsync_scim::{LIST_RESPONSE_SCHEMA, ScimClient, ScimClientConfig};
use serde_json::json;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// At most `per_second` answers in any one-second window; the rest get 429.
struct RateLimited {
    per_second: usize,
    window: Mutex<VecDeque<Instant>>,
    ok: AtomicUsize,
    throttled: AtomicUsize,
}

impl Respond for RateLimited {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let now = Instant::now();
        let mut w = self.window.lock().unwrap();
        while w
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
        {
            w.pop_front();
        }
        if w.len() >= self.per_second {
            self.throttled.fetch_add(1, Ordering::SeqCst);
            return ResponseTemplate::new(429)
                .insert_header("Retry-After", "0.2")
                .set_body_json(
                    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                                       "status": "429", "detail": "slow down"}),
                );
        }
        w.push_back(now);
        self.ok.fetch_add(1, Ordering::SeqCst);
        ResponseTemplate::new(200)
            .set_body_json(json!({"schemas": [LIST_RESPONSE_SCHEMA], "totalResults": 0,
                                   "startIndex": 1, "itemsPerPage": 0, "Resources": []}))
            .set_delay(Duration::from_millis(50))
    }
}

struct Outcome {
    failed: usize,
    throttled: usize,
    limit_at_end: usize,
}

async fn run(adaptive: bool) -> Outcome {
    let server = MockServer::start().await;
    let target = Arc::new(RateLimited {
        per_second: 40,
        window: Mutex::new(VecDeque::new()),
        ok: AtomicUsize::new(0),
        throttled: AtomicUsize::new(0),
    });
    Mock::given(wiremock::matchers::method("GET"))
        .respond_with(ArcResponder(target.clone()))
        .mount(&server)
        .await;
    let mut cfg = ScimClientConfig::new(format!("{}/scim/v2", server.uri()), Secret::inline("t"));
    cfg.max_concurrency = 16;
    cfg.adaptive_concurrency = adaptive;
    cfg.max_retries = 8;
    let client = ScimClient::new(cfg).unwrap();
    let calls: Vec<_> = (0..120)
        .map(|i| {
            let c = client.clone();
            tokio::spawn(async move { c.find_users("userName", &format!("u{i}")).await })
        })
        .collect();
    let mut failed = 0;
    for h in calls {
        if h.await.unwrap().is_err() {
            failed += 1;
        }
    }
    assert_eq!(target.ok.load(Ordering::SeqCst), 120 - failed);
    Outcome {
        failed,
        throttled: target.throttled.load(Ordering::SeqCst),
        limit_at_end: client.concurrency_limit(),
    }
}

struct ArcResponder(Arc<RateLimited>);

impl Respond for ArcResponder {
    fn respond(&self, r: &Request) -> ResponseTemplate {
        self.0.respond(r)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_adaptive_limit_settles_below_the_ceiling_without_failing_requests() {
    let t = Instant::now();
    let adaptive = run(true).await;
    let adaptive_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let fixed = run(false).await;
    eprintln!(
        "120 requests, target allows 40/s: adaptive {:.1} s, {} 429s, {} failed, limit {} at the end; \
         fixed 16: {:.1} s, {} 429s, {} failed",
        adaptive_s,
        adaptive.throttled,
        adaptive.failed,
        adaptive.limit_at_end,
        t.elapsed().as_secs_f64(),
        fixed.throttled,
        fixed.failed
    );
    assert_eq!(adaptive.failed, 0, "no request lost to throttling");
    assert!(
        adaptive.limit_at_end < 16,
        "backed off from the ceiling: {}",
        adaptive.limit_at_end
    );
    assert_eq!(fixed.limit_at_end, 16);
    assert!(
        adaptive.throttled * 2 < fixed.throttled,
        "adaptive drew {} 429s, fixed concurrency {}",
        adaptive.throttled,
        fixed.throttled
    );
}
