//! Parse-only entry points for the fuzz targets in `fuzz/` (`cargo fuzz run scim_answer`,
//! `cargo fuzz run scim_path`).
//!
//! Each runs, on arbitrary input, what the client does with a target's answers or with a
//! mapping's target paths: no I/O, no client, no state. They are not part of the client's API
//! and may change with the decoders; a panic in one is a bug in the code it exercises.

use crate::client::{
    Addressing, PlannedRequest, error_in_success, http_error, parse_list_response, parse_resource,
    parse_retry_after,
};
use crate::patch::{Dialect, patch_body};
use crate::path::{AttrPath, escape, match_filter};
use crate::resource::{flatten_group, flatten_user, group_resource, user_resource};
use scimsync_core::{Attrs, Change, ChangeOp};
use serde_json::Value;

/// Decodes `body` the ways the client decodes a SCIM answer: as the ListResponse of a filtered
/// query (each resource flattened as a user and as a group), as a single resource, as a SCIM
/// Error inside a 2xx, and as the body of each error status. Returns how many resources the
/// ListResponse held.
pub fn decode_answer(body: &[u8]) -> usize {
    let find = PlannedRequest::find("userName", "fuzz");
    let listed = match parse_list_response(body, &find) {
        Ok((_, resources)) => {
            for r in &resources {
                let _ = flatten_user(r);
                let _ = flatten_group(r);
            }
            resources.len()
        }
        Err(_) => 0,
    };
    let by_id = PlannedRequest::group_members("g1");
    if let Ok(resource) = parse_resource(body, &by_id, "group") {
        let (_, user) = flatten_user(&resource);
        let (_, group) = flatten_group(&resource);
        let _ = (user_resource(&user), group_resource(&group));
    }
    let _ = error_in_success(body);
    for status in [400, 401, 404, 409, 429, 500, 302] {
        let _ = http_error(&find, Addressing::of(&find.path), status, body, None, None);
    }
    if let Ok(text) = std::str::from_utf8(body) {
        let _ = parse_retry_after(text, chrono::DateTime::UNIX_EPOCH);
    }
    listed
}

/// Treats `text` as a mapping's target path and as a matching value: parses the path, builds
/// the match filter, a POST body and a PATCH body with it, and checks that a value escaped into
/// a filter string literal is a JSON string that decodes back to the value.
pub fn path_and_value(text: &str) {
    let (path, value) = text.split_once('\u{0}').unwrap_or((text, text));

    if let AttrPath::Filtered { selector_end, .. } = AttrPath::parse(path) {
        assert_eq!(path.as_bytes().get(selector_end), Some(&b']'), "{path:?}");
    }
    let _ = match_filter(path, value);
    let _ = PlannedRequest::find(path, value);

    let literal = format!("\"{}\"", escape(value));
    assert!(
        !literal.chars().any(|c| c.is_ascii_control()),
        "{literal:?} carries a control character"
    );
    let decoded: String = serde_json::from_str(&literal)
        .unwrap_or_else(|e| panic!("{literal:?} is not a JSON string: {e}"));
    assert_eq!(decoded, value);

    let attrs: Attrs = [
        (path.to_string(), Value::String(value.to_string())),
        ("userName".to_string(), Value::String("u".into())),
    ]
    .into_iter()
    .collect();
    let _ = flatten_user(&user_resource(&attrs));
    let _ = flatten_group(&group_resource(&attrs));
    let changes = [ChangeOp::Add, ChangeOp::Replace].map(|op| Change {
        op,
        path: path.to_string(),
        value: Value::String(value.to_string()),
    });
    for dialect in [Dialect::Rfc, Dialect::EntraDefault] {
        let _ = patch_body(&changes, dialect);
    }
}
