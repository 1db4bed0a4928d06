//! Golden files: every request the client builds, in both dialects (`rfc` = Entra with
//! `aadOptscim062020`, `entra` = Entra's default client; reference §1.5–1.7), checked in under
//! `tests/golden/<dialect>/<operation>.json`, so a change of shape is a visible diff.
//!
//! `UPDATE_GOLDEN=1 cargo test -p scimsync-scim --test golden` rewrites the files.

use scimsync_core::{Attrs, Change, ChangeOp, Secret};
use scimsync_scim::{
    Dialect, ENTERPRISE_USER_SCHEMA as ENT, MemberRemoval, PlannedRequest, ScimClient,
    ScimClientConfig,
};
use serde_json::{Value, json};
use std::path::PathBuf;

const USER_ID: &str = "5b50642d-79fc-4410-9e90-4c077cdd1a59";
const GROUP_ID: &str = "f648f8d5ea4e4cd38e9c";
const MEMBERS: [&str; 2] = [
    "7f4bc1a3-285e-48ae-8202-5accb43efb0e",
    "00aa00aa-bb11-cc22-dd33-44ee44ee44ee",
];

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

fn client(dialect: Dialect) -> ScimClient {
    let mut cfg = ScimClientConfig::new(
        "https://scim.example.com/scim/v2",
        Secret::inline("golden-token"),
    );
    cfg.dialect = dialect;
    ScimClient::new(cfg).expect("client")
}

fn members() -> Vec<String> {
    MEMBERS.iter().map(|s| s.to_string()).collect()
}

/// Every operation, as the client for `dialect` plans it.
fn operations(dialect: Dialect) -> Vec<(&'static str, PlannedRequest)> {
    let c = client(dialect);
    let manager = format!("{ENT}:manager");
    let department = format!("{ENT}:department");
    let employee_number = format!("{ENT}:employeeNumber");
    let user = attrs(&[
        ("externalId", json!("0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef")),
        ("userName", json!("Test_User@testuser.com")),
        ("active", json!(true)),
        (
            r#"emails[type eq "work"].value"#,
            json!("Test_User@testuser.com"),
        ),
        ("name.givenName", json!("givenName")),
        ("name.familyName", json!("familyName")),
        ("name.formatted", json!("givenName familyName")),
        (&department, json!("Tech Infrastructure")),
    ]);
    let group = attrs(&[
        ("displayName", json!("Sales")),
        ("externalId", json!("8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159")),
    ]);
    let update = |changes: &[Change]| c.plan_update(USER_ID, changes);
    vec![
        (
            "find_user",
            PlannedRequest::find("userName", "Test_User@testuser.com"),
        ),
        ("create_user", c.plan_create(&user)),
        (
            "update_one_attribute",
            update(&[ch(
                ChangeOp::Replace,
                "title",
                json!("Chief Widget Officer"),
            )]),
        ),
        (
            "update_one_extension_attribute",
            update(&[ch(ChangeOp::Replace, &department, json!("Ops"))]),
        ),
        (
            "update_several_attributes",
            // Reference §1.6, "Several attrs" with the flag.
            update(&[
                ch(ChangeOp::Replace, "displayName", json!("Bjfe")),
                ch(
                    ChangeOp::Replace,
                    r#"emails[type eq "work"].value"#,
                    json!("TestMhvaes@test.microsoft.com"),
                ),
                ch(ChangeOp::Replace, "name.familyName", json!("Unua")),
                ch(ChangeOp::Replace, "name.givenName", json!("Kkom")),
                ch(ChangeOp::Replace, &employee_number, json!("Aklq")),
            ]),
        ),
        (
            "update_disable_and_attribute",
            update(&[
                ch(ChangeOp::Replace, "active", json!(false)),
                ch(ChangeOp::Replace, "userName", json!("someone")),
            ]),
        ),
        (
            "add_string",
            update(&[ch(ChangeOp::Add, "nickName", json!("Babs"))]),
        ),
        (
            "disable",
            update(&[ch(ChangeOp::Replace, "active", json!(false))]),
        ),
        (
            "enable",
            update(&[ch(ChangeOp::Replace, "active", json!(true))]),
        ),
        (
            "add_email",
            update(&[ch(
                ChangeOp::Add,
                r#"emails[type eq "other"].value"#,
                json!("babs@home.example"),
            )]),
        ),
        (
            "replace_email",
            update(&[ch(
                ChangeOp::Replace,
                r#"emails[type eq "work"].value"#,
                json!("updatedEmail@microsoft.com"),
            )]),
        ),
        (
            // Only with the job's `clear_on_null` opt-in (Entra never clears).
            "remove_email",
            update(&[ch(
                ChangeOp::Remove,
                r#"emails[type eq "other"].value"#,
                Value::Null,
            )]),
        ),
        (
            "manager_set",
            update(&[ch(ChangeOp::Add, &manager, json!(MEMBERS[1]))]),
        ),
        (
            "manager_change",
            update(&[ch(ChangeOp::Replace, &manager, json!(MEMBERS[0]))]),
        ),
        (
            // Only with the job's `clear_on_null` opt-in (Entra never clears).
            "manager_clear",
            update(&[ch(ChangeOp::Remove, &manager, Value::Null)]),
        ),
        ("delete_user", PlannedRequest::delete(USER_ID)),
        (
            "find_group",
            PlannedRequest::find_groups("displayName", "Sales"),
        ),
        ("create_group", c.plan_create_group(&group)),
        (
            "rename_group",
            c.plan_update_group(
                GROUP_ID,
                &[ch(ChangeOp::Replace, "displayName", json!("Sales EMEA"))],
            ),
        ),
        ("add_members", c.plan_add_members(GROUP_ID, &members())),
        (
            "remove_members",
            c.plan_remove_members(GROUP_ID, &members()),
        ),
        (
            "remove_members_filter",
            PlannedRequest::remove_members(GROUP_ID, &members(), dialect, MemberRemoval::Filter),
        ),
        (
            "remove_members_value_list",
            PlannedRequest::remove_members(GROUP_ID, &members(), dialect, MemberRemoval::ValueList),
        ),
        ("delete_group", PlannedRequest::delete_group(GROUP_ID)),
    ]
}

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn check(dialect: Dialect, dir: &str) {
    let update = std::env::var("UPDATE_GOLDEN").is_ok_and(|v| !v.is_empty() && v != "0");
    let dir = golden_dir().join(dir);
    let mut failures = Vec::new();
    for (name, req) in operations(dialect) {
        let file = dir.join(format!("{name}.json"));
        let rendered = serde_json::to_string_pretty(&req).expect("json") + "\n";
        if update {
            std::fs::create_dir_all(&dir).expect("golden dir");
            std::fs::write(&file, &rendered).expect("write golden");
            continue;
        }
        match std::fs::read_to_string(&file) {
            Ok(expected) if expected == rendered => {}
            Ok(expected) => failures.push(format!(
                "{}: differs\n--- expected\n{expected}+++ rendered\n{rendered}",
                file.display()
            )),
            Err(e) => failures.push(format!("{}: {e}", file.display())),
        }
    }
    // Every checked-in file is an operation rendered above (a removed operation is noticed).
    if !update {
        let names: Vec<String> = operations(dialect)
            .iter()
            .map(|(n, _)| format!("{n}.json"))
            .collect();
        for entry in std::fs::read_dir(&dir).expect("golden dir") {
            let name = entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned();
            if !names.contains(&name) {
                failures.push(format!(
                    "{}: no operation renders it",
                    dir.join(name).display()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "golden files differ (rerun with UPDATE_GOLDEN=1 to accept):\n{}",
        failures.join("\n")
    );
}

#[test]
fn rfc_requests_match_the_golden_files() {
    check(Dialect::Rfc, "rfc");
}

#[test]
fn entra_requests_match_the_golden_files() {
    check(Dialect::EntraDefault, "entra");
}

#[test]
fn rfc_single_attribute_and_active_use_path_and_value() {
    // The flag's shapes (reference §1.6), independent of the files.
    let c = client(Dialect::Rfc);
    let disable = c.plan_update(USER_ID, &[ch(ChangeOp::Replace, "active", json!(false))]);
    assert_eq!(
        disable.body.expect("body")["Operations"],
        json!([{"op": "replace", "path": "active", "value": false}])
    );
    let several = c.plan_update(
        USER_ID,
        &[
            ch(ChangeOp::Replace, "active", json!(false)),
            ch(ChangeOp::Replace, "userName", json!("someone")),
        ],
    );
    assert_eq!(
        several.body.expect("body")["Operations"],
        json!([{"op": "replace", "value": {"active": false, "userName": "someone"}}])
    );
}
