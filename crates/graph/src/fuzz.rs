//! Parse-only entry points for the fuzz targets in `fuzz/` (`cargo fuzz run graph_answer`).
//!
//! Each runs, on arbitrary bytes, the decoders the client applies to what Graph and the token
//! endpoint answer: no I/O, no client, no state. They are not part of the client's API and
//! may change with the decoders; a panic in one is a bug in the decoding it exercises.

use crate::attributes::graph_property;
use crate::batch::{inner_retry_after, item_error};
use crate::client::{GraphErrorBody, split_page};
use crate::delta::item_state;
use crate::groups::{GroupProjection, links, member_link};
use crate::read::Projection;
use crate::retry::retry_after_text;
use crate::token::{AadError, explain, refresh_after};
use oauth2::TokenResponse;
use oauth2::basic::BasicTokenResponse;
use serde_json::Value;

/// Source attributes every decoded user and group is read with, besides the item's own keys.
const REQUESTED: &[&str] = &[
    "objectId",
    "userPrincipalName",
    "displayName",
    "mail",
    "mobile",
    "telephoneNumber",
    "accountEnabled",
    "proxyAddresses",
    "otherMails",
    "employeeOrgData.division",
    "employeeOrgData.costCenter",
    "extensionAttribute1",
    "extensionAttribute15",
    "groupTypes",
    "securityEnabled",
    "IsSoftDeleted",
    "manager",
];

/// Decodes `body` the ways the client decodes a Graph answer: as a page (`value` and its
/// links), each item as a user and as a group (with the item's own keys requested too, so
/// attribute names go through the name table), as a delta item with `members@delta`; as a
/// `$batch` answer (item ids, statuses, inner `Retry-After`, item errors); and as Graph's
/// error envelope. Returns how many users were decoded.
pub fn decode_graph_answer(body: &[u8]) -> usize {
    let _ = GraphErrorBody::parse(body);
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return 0;
    };
    decode_batch(&value);
    let url = url::Url::parse("https://graph.microsoft.com/v1.0/users").expect("valid URL");
    let Ok((items, links_)) = split_page(&url, value) else {
        return 0;
    };
    for link in [links_.next, links_.delta].into_iter().flatten() {
        let _ = url.join(&link);
    }
    let mut users = 0;
    for item in &items {
        let mut requested: Vec<String> = REQUESTED.iter().map(|s| s.to_string()).collect();
        if let Some(obj) = item.as_object() {
            requested.extend(obj.keys().take(64).cloned());
            for key in obj.keys().take(64) {
                let _ = graph_property(key);
            }
        }
        if let Some(user) = Projection::new(&requested).user(item) {
            assert!(
                item.get("id").and_then(Value::as_str) == Some(user.id.as_str()),
                "a decoded user keeps its id"
            );
            users += 1;
        }
        let group = GroupProjection::new(&requested).group(item);
        let _ = item_state(item);
        let owner = group.as_ref().map_or("", |g| g.id.as_str());
        for link in links(item) {
            let _ = member_link(owner, link);
        }
    }
    users
}

/// A `$batch` answer's items, as `batch_chunk` reads them.
fn decode_batch(answer: &Value) {
    let Some(responses) = answer.get("responses").and_then(Value::as_array) else {
        return;
    };
    for r in responses {
        let _ = r
            .get("id")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<usize>().ok());
        let status = r.get("status").and_then(Value::as_u64).unwrap_or(0);
        let _ = inner_retry_after(r);
        let _ = item_error("/users/x?$select=id", status, r);
    }
}

/// Decodes `body` as a token endpoint answer: a token (its lifetime and refresh time) or the
/// endpoint's OAuth error (its AADSTS code and explanation); and any `Retry-After`-like text.
pub fn decode_token_answer(body: &[u8]) {
    if let Ok(token) = serde_json::from_slice::<BasicTokenResponse>(body)
        && let Some(lifetime) = token.expires_in()
    {
        let refresh = refresh_after(lifetime);
        assert!(refresh <= lifetime, "refresh before expiry");
    }
    if let Ok(err) = serde_json::from_slice::<AadError>(body) {
        let _ = err.to_string();
        if let Some(code) = err.code() {
            let _ = explain(code);
        }
    }
    if let Ok(text) = std::str::from_utf8(body) {
        let _ = retry_after_text(text);
    }
}
