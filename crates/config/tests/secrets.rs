//! Issue 12 §4: every secret reference keeps where it is written, and one that cannot be read
//! is reported at its file:line:column and key — never with a value.

use scimsync_config::*;

const SET_VALUE: &str = "s3cr3t-value-that-must-never-be-printed";

/// A job whose secrets are: client_secret (line 5, a file that exists), token (line 9, an
/// unset variable), webhook_token (line 16, a missing file) and the SMTP password (line 22, a
/// file that exists).
fn job(dir: &std::path::Path) -> String {
    format!(
        r#"name = "atmos"
[source]
tenant_id = "contoso.onmicrosoft.com"
client_id = "00000000-0000-0000-0000-000000000001"
client_secret = "file:graph.secret"
service_principal_id = "11111111-1111-1111-1111-111111111111"
[target]
url = "https://app.example.com/scim/v2"
token =   "env:SCIMSYNC_TEST_SURELY_UNSET_TOKEN"
[[users.mappings]]
target = "userName"
source = "userPrincipalName"
matching = 1
[notifications]
webhook_url = "https://hooks.example.com/x"
webhook_token = "file:{}/missing.token"
[notifications.smtp]
host = "smtp.example.com"
from = "a@example.com"
to = ["b@example.com"]
username = "scimsync"
password = "file:smtp.password"
"#,
        dir.display()
    )
}

#[test]
fn every_secret_reference_keeps_its_key_and_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("atmos.toml");
    let loaded = parse(&path, &job(dir.path())).unwrap_or_else(|e| panic!("{e:#?}"));
    let sites: Vec<(&str, usize, usize)> = loaded
        .secrets
        .iter()
        .map(|s| (s.key.as_str(), s.line, s.column))
        .collect();
    assert_eq!(
        sites,
        [
            ("source.client_secret", 5, 17),
            ("target.token", 9, 11),
            ("notifications.webhook_token", 16, 17),
            ("notifications.smtp.password", 22, 12),
        ]
    );
    // Relative files are anchored at the job file's directory, as when they are used.
    assert_eq!(
        loaded.secrets[0].reference,
        SecretRef::file(dir.path().join("graph.secret"))
    );
    assert!(loaded.secrets.iter().all(|s| s.file == path));
}

#[test]
fn unreadable_secrets_are_reported_at_their_key_without_values() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("graph.secret"), format!("{SET_VALUE}\n")).unwrap();
    std::fs::write(dir.path().join("smtp.password"), SET_VALUE).unwrap();
    let path = dir.path().join("atmos.toml");
    // Parsing alone reads no secret: the job is valid as written.
    let loaded = parse(&path, &job(dir.path())).unwrap_or_else(|e| panic!("{e:#?}"));

    let errors = loaded.unreadable_secrets();
    let got: Vec<(usize, usize, &str)> = errors
        .iter()
        .map(|e| (e.line, e.column, e.key.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (9, 11, "target.token"),
            (16, 17, "notifications.webhook_token")
        ]
    );
    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown[0],
        format!(
            "{}:9:11: target.token: cannot read the secret: environment variable \
             SCIMSYNC_TEST_SURELY_UNSET_TOKEN is not set",
            path.display()
        )
    );
    assert!(
        shown[1].starts_with(&format!(
            "{}:16:17: notifications.webhook_token: cannot read the secret: cannot read secret \
             file {}/missing.token: ",
            path.display(),
            dir.path().display()
        )),
        "{}",
        shown[1]
    );
    let everything = format!("{shown:?} {errors:?} {loaded:?}");
    assert!(!everything.contains(SET_VALUE), "{everything}");

    // Once the missing ones exist, nothing is reported.
    std::fs::write(dir.path().join("missing.token"), SET_VALUE).unwrap();
    let text = job(dir.path()).replace("env:SCIMSYNC_TEST_SURELY_UNSET_TOKEN", "file:graph.secret");
    let loaded = parse(&path, &text).unwrap();
    assert_eq!(loaded.unreadable_secrets(), []);
}

#[test]
fn an_empty_secret_file_is_reported_by_origin_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("atmos.toml");
    std::fs::write(dir.path().join("graph.secret"), "\n").unwrap();
    std::fs::write(dir.path().join("smtp.password"), SET_VALUE).unwrap();
    std::fs::write(dir.path().join("missing.token"), SET_VALUE).unwrap();
    let text =
        job(dir.path()).replace("env:SCIMSYNC_TEST_SURELY_UNSET_TOKEN", "file:smtp.password");
    let errors = parse(&path, &text).unwrap().unreadable_secrets();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].key, "source.client_secret");
    assert!(
        errors[0].message.contains("secret is empty (file:"),
        "{}",
        errors[0]
    );
}
