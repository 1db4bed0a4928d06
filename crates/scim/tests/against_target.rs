//! The client's group operations against the built-in SCIM target (testkit), with the
//! Klaxoon extension registered: what a whole group lifecycle puts on the wire, per dialect.

use scimsync_core::{Attrs, Change, ChangeOp, ErrorCode, Secret, Target};
use scimsync_scim::{Dialect, ScimClient, ScimClientConfig};
use scimsync_testkit::scim::{ScimTarget, ScimTargetOptions, klaxoon_group_schema};
use serde_json::json;

const KLAXOON: &str = "urn:ietf:params:scim:schemas:extension:klaxoon:2.0:Group";

#[tokio::test]
async fn group_lifecycle_in_both_dialects() {
    for dialect in [Dialect::Rfc, Dialect::EntraDefault] {
        let target = ScimTarget::start(ScimTargetOptions {
            extra_schemas: vec![klaxoon_group_schema()],
            ..ScimTargetOptions::default()
        })
        .await
        .unwrap();
        let mut cfg = ScimClientConfig::new(target.url(), Secret::inline(target.token()));
        cfg.dialect = dialect;
        let c = ScimClient::new(cfg).unwrap();
        let users: Vec<String> = (0..3)
            .map(|n| target.insert_user(json!({"userName": format!("u{n}")})))
            .collect();

        let license = format!("{KLAXOON}:license");
        let attrs: Attrs = [
            ("displayName".to_string(), json!("Sales")),
            ("externalId".to_string(), json!("ext-1")),
            (license.clone(), json!("true")),
        ]
        .into_iter()
        .collect();
        let g = c.create_group(&attrs).await.unwrap();
        assert_eq!(g.attrs, attrs, "{dialect:?}");
        let stored = target.group(&g.id).unwrap();
        assert!(stored.get("members").is_none(), "created empty");

        c.add_members(&g.id, &users).await.unwrap();
        c.remove_members(&g.id, &users[..2]).await.unwrap();
        assert_eq!(
            target.membership_patches(),
            vec![
                (g.id.clone(), users.clone(), vec![]),
                (g.id.clone(), vec![], users[..2].to_vec()),
            ],
            "one PATCH per call ({dialect:?})"
        );
        assert_eq!(c.group_members(&g.id).await.unwrap(), users[2..]);

        c.update_group(
            &g.id,
            &[Change {
                op: ChangeOp::Replace,
                path: "displayName".into(),
                value: json!("Sales EMEA"),
            }],
        )
        .await
        .unwrap();
        let found = c.find_groups("displayName", "sales emea").await.unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].attrs[&license], json!("true"));
        assert_eq!(
            target
                .requests()
                .last()
                .unwrap()
                .query_param("excludedAttributes"),
            Some("members".to_string())
        );

        c.delete_group(&g.id).await.unwrap();
        assert_eq!(
            c.delete_group(&g.id).await.unwrap_err().code,
            ErrorCode::InvalidAnchor
        );
        assert_eq!(
            c.group_members(&g.id).await.unwrap_err().code,
            ErrorCode::InvalidAnchor
        );
    }
}
