//! JSON batching (`POST /v1.0/$batch`, wire contract §6.4): many single-object GETs in few
//! round trips.
//!
//! At most 20 requests go in one batch; their URLs are relative (`/users/{id}?$select=…`).
//! The batch answers 200 whenever it parses, and each item has its own status: items come
//! back in any order (correlated by `id`), and a throttled item (429, or a 5xx) is sent again
//! in a later batch after the largest inner `Retry-After`, up to the client's retry limit.
//! A 404 item means the object does not exist (any more).

use crate::client::{GraphClient, request_failed};
use crate::retry::{backoff_delay, retry_after_text, retryable_status};
use futures::StreamExt;
use scimsync_core::SourceError;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// Requests per `$batch`: Graph's limit.
pub(crate) const BATCH_LIMIT: usize = 20;

/// What one batched GET gave.
#[derive(Debug)]
pub(crate) enum Fetched {
    Found(Value),
    NotFound,
}

impl GraphClient {
    /// GET each relative URL through `$batch`; the answers are in the order of `urls`.
    pub(crate) async fn batch_get(
        &self,
        urls: &[String],
        permission: &str,
    ) -> Result<Vec<Fetched>, SourceError> {
        let indexed: Vec<(usize, String)> = urls.iter().cloned().enumerate().collect();
        // Futures collected first: a stream built from a borrowing closure trips the compiler's
        // `Send` inference in the `Source` futures.
        let batches: Vec<_> = indexed
            .chunks(BATCH_LIMIT)
            .map(|chunk| self.batch_chunk(chunk.to_vec(), permission))
            .collect();
        let mut results: Vec<Option<Fetched>> = urls.iter().map(|_| None).collect();
        let mut answers =
            futures::stream::iter(batches).buffer_unordered(self.inner.max_concurrency);
        while let Some(answer) = answers.next().await {
            for (i, fetched) in answer? {
                results[i] = Some(fetched);
            }
        }
        results
            .into_iter()
            .map(|r| r.ok_or_else(|| request_failed("$batch lost an item".into(), None)))
            .collect()
    }

    /// One batch of at most [`BATCH_LIMIT`] items, retrying throttled items.
    async fn batch_chunk(
        &self,
        chunk: Vec<(usize, String)>,
        permission: &str,
    ) -> Result<Vec<(usize, Fetched)>, SourceError> {
        let url = self.url(&["$batch"], "");
        let mut pending: BTreeMap<usize, String> = chunk.into_iter().collect();
        let mut done = Vec::with_capacity(pending.len());
        let mut attempt = 0u32;
        loop {
            let requests: Vec<Value> = pending
                .iter()
                .map(|(i, u)| json!({"id": i.to_string(), "method": "GET", "url": u}))
                .collect();
            let answer = self
                .post(&url, &json!({ "requests": requests }), permission)
                .await
                .map_err(|f| f.error)?;
            let Some(responses) = answer.get("responses").and_then(Value::as_array) else {
                return Err(request_failed(
                    "POST /v1.0/$batch: the answer has no \"responses\" array".into(),
                    None,
                ));
            };
            let mut wait: Option<Duration> = None;
            let mut throttled = 0usize;
            for r in responses {
                let Some(i) = r
                    .get("id")
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse::<usize>().ok())
                else {
                    continue;
                };
                let Some(item_url) = pending.get(&i).cloned() else {
                    continue;
                };
                let status = r.get("status").and_then(Value::as_u64).unwrap_or(0);
                match status {
                    200..=299 => {
                        let body = r.get("body").cloned().unwrap_or(Value::Null);
                        done.push((i, Fetched::Found(body)));
                        pending.remove(&i);
                    }
                    404 => {
                        done.push((i, Fetched::NotFound));
                        pending.remove(&i);
                    }
                    s if u16::try_from(s).is_ok_and(retryable_status) => {
                        throttled += 1;
                        if let Some(d) = inner_retry_after(r) {
                            wait = Some(wait.map_or(d, |w| w.max(d)));
                        }
                    }
                    _ => return Err(item_error(&item_url, status, r)),
                }
            }
            if pending.is_empty() {
                return Ok(done);
            }
            // Items still pending were throttled or (against the contract) left unanswered.
            if attempt >= self.inner.max_retries {
                return Err(request_failed(
                    format!(
                        "POST /v1.0/$batch: {} item(s) still throttled or unanswered after {attempt} retries",
                        pending.len()
                    ),
                    None,
                ));
            }
            let delay = wait.unwrap_or_else(|| backoff_delay(self.inner.retry_base, attempt));
            tracing::warn!(
                items = pending.len(),
                throttled,
                attempt = attempt + 1,
                delay_ms = delay.as_millis() as u64,
                "Graph throttled items of a $batch; sending them again"
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }
}

/// `Retry-After` from an item's inner `headers` (any casing; string or number).
pub(crate) fn inner_retry_after(item: &Value) -> Option<Duration> {
    let headers = item.get("headers")?.as_object()?;
    let (_, v) = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))?;
    match v {
        Value::String(s) => retry_after_text(s),
        Value::Number(n) => retry_after_text(&n.to_string()),
        _ => None,
    }
}

pub(crate) fn item_error(url: &str, status: u64, item: &Value) -> SourceError {
    let error = item.get("body").and_then(|b| b.get("error"));
    let text = |k: &str| {
        error
            .and_then(|e| e.get(k))
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    let request_id = error
        .and_then(|e| {
            e.as_object()?
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("innerError"))
        })
        .and_then(|(_, i)| i.get("request-id"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let path = url.split('?').next().unwrap_or(url);
    request_failed(
        format!(
            "GET {path} (in $batch): HTTP {status} {}: {}",
            text("code"),
            text("message")
        ),
        request_id,
    )
}
