//! Filter values with control characters, quotes and backslashes, against the built-in SCIM
//! target (testkit, a real loopback HTTP server whose filter parser decodes string literals as
//! JSON, RFC 7644 §3.4.2.2): what we create we must be able to find again.

use scimsync_core::{Attrs, Secret, Target};
use scimsync_scim::{ScimClient, ScimClientConfig, match_filter};
use scimsync_testkit::scim::{ScimTarget, ScimTargetOptions};
use serde_json::json;

fn attrs(pairs: &[(&str, &str)]) -> Attrs {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect()
}

#[tokio::test]
async fn a_group_named_with_escape_codes_is_created_then_found() {
    let target = ScimTarget::start(ScimTargetOptions::default())
        .await
        .unwrap();
    let c = ScimClient::new(ScimClientConfig::new(
        target.url(),
        Secret::inline(target.token()),
    ))
    .unwrap();

    let name = "Ops\u{1b}[31mRed";
    assert!(c.find_groups("displayName", name).await.unwrap().is_empty());
    let created = c
        .create_group(&attrs(&[("displayName", name), ("externalId", "g-esc")]))
        .await
        .unwrap();
    let found = c.find_groups("displayName", name).await.unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].id, created.id);
    assert_eq!(found[0].attrs["displayName"], json!(name));
    // What went on the wire: a JSON-escaped literal, no raw control character.
    let filter = target
        .requests()
        .iter()
        .rev()
        .find_map(|r| r.query_param("filter"))
        .unwrap();
    assert_eq!(filter, r#"displayName eq "Ops\u001b[31mRed""#);
    assert_eq!(filter, match_filter("displayName", name));

    // A near miss does not match: the escape is compared as the character it stands for.
    assert!(
        c.find_groups("displayName", "Ops[31mRed")
            .await
            .unwrap()
            .is_empty()
    );
    target.shutdown().await;
}

#[tokio::test]
async fn users_with_quotes_backslashes_and_control_characters_are_found() {
    let target = ScimTarget::start(ScimTargetOptions::default())
        .await
        .unwrap();
    let c = ScimClient::new(ScimClientConfig::new(
        target.url(),
        Secret::inline(target.token()),
    ))
    .unwrap();

    for (n, user_name) in [
        r#"dom\"o'brien"\x@example.com"#,
        "bell\u{7}\nnew\tline\\\"@example.com",
        "nul\u{0}del\u{7f}@example.com",
    ]
    .into_iter()
    .enumerate()
    {
        let external = format!("ext-{n}");
        assert!(
            c.find_users("userName", user_name)
                .await
                .unwrap()
                .is_empty(),
            "{user_name:?} before create"
        );
        let created = c
            .create_user(&attrs(&[
                ("userName", user_name),
                ("externalId", &external),
            ]))
            .await
            .unwrap_or_else(|e| panic!("{user_name:?}: {e:?}"));
        let found = c
            .find_users("userName", user_name)
            .await
            .unwrap_or_else(|e| panic!("{user_name:?}: {e:?}"));
        assert_eq!(found.len(), 1, "{user_name:?}: {found:?}");
        assert_eq!(found[0].id, created.id);
        assert_eq!(found[0].attrs["userName"], json!(user_name));
        let by_external = c.find_users("externalId", &external).await.unwrap();
        assert_eq!(by_external[0].attrs["userName"], json!(user_name));
    }
    assert_eq!(target.users().len(), 3);
    target.shutdown().await;
}
