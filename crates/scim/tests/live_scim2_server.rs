//! The client against a real, strict SCIM server (scim2-server from PyPI), when one is running.
//!
//! ```sh
//! python3 -m venv .venv-scim && .venv-scim/bin/pip install scim2-server==0.8.3
//! .venv-scim/bin/scim2-server --hostname 127.0.0.1 --port 8089 --bearer-token tok \
//!   --schema tests/fixtures/klaxoon-schema.json \
//!   --resource-type tests/fixtures/klaxoon-resource-types.json &
//! SCIMSYNC_LIVE_SCIM_URL=http://127.0.0.1:8089/v2 SCIMSYNC_LIVE_SCIM_TOKEN=tok \
//!   cargo test -p scimsync-scim --test live_scim2_server -- --ignored
//! ```

use scimsync_core::{Attrs, Change, ChangeOp, ErrorCode, Secret, Target};
use scimsync_scim::Dialect;
use scimsync_scim::{ENTERPRISE_USER_SCHEMA as ENT, ScimClient, ScimClientConfig};
use serde_json::{Value, json};

fn live_client() -> ScimClient {
    let url = std::env::var("SCIMSYNC_LIVE_SCIM_URL").expect("set SCIMSYNC_LIVE_SCIM_URL");
    let token = std::env::var("SCIMSYNC_LIVE_SCIM_TOKEN").expect("set SCIMSYNC_LIVE_SCIM_TOKEN");
    ScimClient::new(ScimClientConfig::new(url, Secret::inline(token))).unwrap()
}

fn attrs(pairs: &[(&str, Value)]) -> Attrs {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn ch(op: ChangeOp, path: &str, value: Value) -> Change {
    Change {
        op,
        path: path.to_string(),
        value,
    }
}

#[tokio::test]
#[ignore = "needs a running scim2-server; see the module docs"]
async fn full_user_lifecycle_against_scim2_server() {
    let c = live_client();
    c.test_connection().await.unwrap();
    let run = uuid::Uuid::new_v4().simple().to_string();
    let user_name = format!("bjensen-{run}@example.com");
    let boss = c
        .create_user(&attrs(&[(
            "userName",
            json!(format!("boss-{run}@example.com")),
        )]))
        .await
        .unwrap();

    let initial = attrs(&[
        ("userName", json!(user_name)),
        ("externalId", json!(run)),
        ("active", json!(true)),
        ("displayName", json!("Barbara Jensen")),
        ("name.givenName", json!("Barbara")),
        ("name.familyName", json!("Jensen")),
        (r#"emails[type eq "work"].value"#, json!(user_name)),
        (&format!("{ENT}:department"), json!("Tour Operations")),
        (&format!("{ENT}:manager"), json!(boss.id)),
    ]);
    let created = c.create_user(&initial).await.unwrap();
    assert_eq!(created.attrs, initial);

    let err = c.create_user(&initial).await.unwrap_err();
    assert!(err.is_conflict(), "{err:?}");

    let hits = c
        .find_users("userName", &user_name.to_uppercase())
        .await
        .unwrap();
    assert_eq!(hits.len(), 1);
    let hits = c
        .find_users(r#"emails[type eq "work"].value"#, &user_name)
        .await
        .unwrap();
    assert_eq!(hits.len(), 1);
    assert!(
        c.find_users("externalId", "nobody")
            .await
            .unwrap()
            .is_empty()
    );

    // Entra's aadOptscim062020 PATCH: a filter-path replace plus one path-less replace.
    let new_mail = format!("barbara-{run}@example.com");
    c.update_user(
        &created.id,
        &[
            ch(ChangeOp::Replace, "displayName", json!("Babs Jensen")),
            ch(
                ChangeOp::Replace,
                r#"emails[type eq "work"].value"#,
                json!(new_mail),
            ),
            ch(ChangeOp::Replace, "name.givenName", json!("Babs")),
            ch(
                ChangeOp::Replace,
                &format!("{ENT}:department"),
                json!("Tech"),
            ),
            ch(ChangeOp::Replace, "active", json!(false)),
            ch(ChangeOp::Add, "nickName", json!("Babs")),
            ch(
                ChangeOp::Add,
                r#"phoneNumbers[type eq "mobile"].value"#,
                json!("+1 555 0100"),
            ),
            ch(
                ChangeOp::Add,
                r#"addresses[type eq "work"].locality"#,
                json!("Paris"),
            ),
            ch(
                ChangeOp::Add,
                r#"addresses[type eq "work"].postalCode"#,
                json!("75001"),
            ),
        ],
    )
    .await
    .unwrap();
    let now = c
        .find_users("userName", &user_name)
        .await
        .unwrap()
        .remove(0)
        .attrs;
    assert_eq!(now["displayName"], json!("Babs Jensen"));
    assert_eq!(now[r#"emails[type eq "work"].value"#], json!(new_mail));
    assert_eq!(now["name.givenName"], json!("Babs"));
    assert_eq!(now["name.familyName"], json!("Jensen"));
    assert_eq!(now[&format!("{ENT}:department")], json!("Tech"));
    assert_eq!(now[&format!("{ENT}:manager")], json!(boss.id));
    assert_eq!(now["active"], json!(false));
    assert_eq!(now["nickName"], json!("Babs"));
    assert_eq!(
        now[r#"phoneNumbers[type eq "mobile"].value"#],
        json!("+1 555 0100")
    );
    assert_eq!(now[r#"addresses[type eq "work"].locality"#], json!("Paris"));
    assert_eq!(
        now[r#"addresses[type eq "work"].postalCode"#],
        json!("75001")
    );

    c.delete_user(&created.id).await.unwrap();
    let err = c.delete_user(&created.id).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidAnchor);
    c.delete_user(&boss.id).await.unwrap();
}

/// Needs the Klaxoon fixtures (`--schema`/`--resource-type`, see the module docs).
#[tokio::test]
#[ignore = "needs a running scim2-server with the Klaxoon fixtures; see the module docs"]
async fn group_lifecycle_against_scim2_server() {
    const KLAXOON: &str = "urn:ietf:params:scim:schemas:extension:klaxoon:2.0:Group";
    let c = live_client();
    let run = uuid::Uuid::new_v4().simple().to_string();
    let mut members = Vec::new();
    for n in 0..3 {
        let u = c
            .create_user(&attrs(&[(
                "userName",
                json!(format!("m{n}-{run}@example.com")),
            )]))
            .await
            .unwrap();
        members.push(u.id);
    }
    let name = format!("Sales {run}");
    let license = format!("{KLAXOON}:license");
    let initial = attrs(&[
        ("displayName", json!(name)),
        ("externalId", json!(run)),
        (&license, json!("true")),
    ]);
    let g = c.create_group(&initial).await.unwrap();
    assert_eq!(g.attrs, initial);
    assert!(c.group_members(&g.id).await.unwrap().is_empty());

    c.add_members(&g.id, &members).await.unwrap();
    assert_eq!(c.group_members(&g.id).await.unwrap(), members);
    // The Rfc default removal form: `members[value eq "id"]` ops, two ids in one PATCH.
    c.remove_members(&g.id, &members[..2]).await.unwrap();
    assert_eq!(c.group_members(&g.id).await.unwrap(), members[2..]);

    let renamed = format!("Sales EMEA {run}");
    c.update_group(
        &g.id,
        &[
            ch(ChangeOp::Replace, "displayName", json!(renamed)),
            ch(ChangeOp::Replace, &license, json!("false")),
        ],
    )
    .await
    .unwrap();
    let found = c.find_groups("displayName", &renamed).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].attrs[&license], json!("false"));
    assert_eq!(c.find_groups("externalId", &run).await.unwrap().len(), 1);

    // Entra's default client against the same server: `Add` with `$ref: null` works, its
    // value-list `Remove` is the documented 400.
    let mut cfg = ScimClientConfig::new(
        std::env::var("SCIMSYNC_LIVE_SCIM_URL").unwrap(),
        Secret::inline(std::env::var("SCIMSYNC_LIVE_SCIM_TOKEN").unwrap()),
    );
    cfg.dialect = Dialect::EntraDefault;
    let entra = ScimClient::new(cfg).unwrap();
    entra.add_members(&g.id, &members[..1]).await.unwrap();
    let err = entra
        .remove_members(&g.id, &members[..1])
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::SchemaViolation);

    c.delete_group(&g.id).await.unwrap();
    assert_eq!(
        c.delete_group(&g.id).await.unwrap_err().code,
        ErrorCode::InvalidAnchor
    );
    for id in members {
        c.delete_user(&id).await.unwrap();
    }
}
