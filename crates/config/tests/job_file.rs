//! Job files as an admin writes them: what loads, and what each mistake reports (file, line,
//! column, key) — without ever echoing a secret.

use scimsync_config::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

const FILE: &str = "jobs/tribeloo.toml";

/// A valid job; line numbers below refer to it.
const BASE: &str = r#"name = "tribeloo"
[source]
tenant_id = "contoso.onmicrosoft.com"
client_id = "00000000-0000-0000-0000-000000000001"
client_secret = "env:GRAPH_CLIENT_SECRET"
service_principal_id = "11111111-1111-1111-1111-111111111111"
[target]
url = "https://app.example.com/scim/v2"
token = "env:TRIBELOO_SCIM_TOKEN"
[[users.mappings]]
target = "userName"
source = "userPrincipalName"
matching = 1
"#;

fn ok(text: &str) -> Loaded {
    match parse(Path::new(FILE), text) {
        Ok(l) => l,
        Err(errors) => panic!("unexpected errors: {errors:#?}"),
    }
}

fn errors(text: &str) -> Vec<ConfigError> {
    match parse(Path::new(FILE), text) {
        Ok(l) => panic!("expected errors, got {:#?}", l.job),
        Err(e) => e,
    }
}

/// The single error, as (line, column, key, message).
fn one(text: &str) -> (usize, usize, String, String) {
    let e = errors(text);
    assert_eq!(e.len(), 1, "{e:#?}");
    let e = e.into_iter().next().unwrap();
    assert_eq!(e.file, PathBuf::from(FILE));
    (e.line, e.column, e.key, e.message)
}

fn replace(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "{from:?} not in BASE");
    BASE.replacen(from, to, 1)
}

#[test]
fn the_documented_example_parses_into_the_expected_structs() {
    let text = r#"name = "tribeloo"                      # required; [A-Za-z0-9_-]+, used as the job id
schedule = "40m"
skip_out_of_scope_deletions = false    # Entra's SkipOutOfScopeDeletions
[source]                               # Microsoft Graph
tenant_id = "contoso.onmicrosoft.com"  # required
client_id = "00000000-0000-0000-0000-000000000001"
client_secret = "env:GRAPH_CLIENT_SECRET"
service_principal_id = "11111111-1111-1111-1111-111111111111"
scope = "assigned"
graph_url = "https://graph.microsoft.com"
login_url = "https://login.microsoftonline.com"
page_size = 999
[target]                               # the app's SCIM endpoint
url = "https://app.example.com/scim/v2"
token = "env:TRIBELOO_SCIM_TOKEN"
dialect = "rfc"
max_concurrency = 4
timeout_secs = 30
[target.actions]
create = true
update = true
delete = true
[[users.mappings]]
target = "userName"
source = "userPrincipalName"           # Direct
matching = 1
[[users.mappings]]
target = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"
source = "department"
apply = "create"
default = "Unknown"
[[users.mappings]]
target = "preferredLanguage"
constant = "en-US"                     # Constant
"#;
    let loaded = ok(text);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let expected = JobConfig {
        path: PathBuf::from(FILE),
        name: "tribeloo".into(),
        schedule: Schedule::Interval(Duration::from_secs(40 * 60)),
        skip_out_of_scope_deletions: false,
        deletion_threshold: 500,
        deletion_max_share: 50,
        log_retention_days: 30,
        source: SourceConfig {
            tenant_id: "contoso.onmicrosoft.com".into(),
            client_id: "00000000-0000-0000-0000-000000000001".into(),
            client_secret: Some(SecretRef::env("GRAPH_CLIENT_SECRET")),
            certificate: None,
            private_key: None,
            assertion_algorithm: AssertionAlgorithm::Ps256,
            service_principal_id: Some("11111111-1111-1111-1111-111111111111".into()),
            scope: ScopeSetting::Assigned,
            exclude_default_access: false,
            graph_url: "https://graph.microsoft.com".into(),
            login_url: "https://login.microsoftonline.com".into(),
            page_size: 999,
        },
        target: TargetConfig {
            url: "https://app.example.com/scim/v2".into(),
            token: SecretRef::env("TRIBELOO_SCIM_TOKEN"),
            dialect: DialectSetting::Rfc,
            max_concurrency: 4,
            timeout: Duration::from_secs(30),
            membership_batch_size: 1000,
            group_members_removal: MembersRemoval::Rfc,
            manager_format: ManagerFormat::Complex,
            clear_on_null: false,
            actions: TargetActions {
                create: true,
                update: true,
                delete: true,
            },
        },
        escrow: Escrow {
            retry_delays: vec![
                Duration::from_secs(6 * 3600),
                Duration::from_secs(12 * 3600),
                Duration::from_secs(24 * 3600),
            ],
            daily_after: Duration::from_secs(24 * 3600),
            give_up_after: Duration::from_secs(28 * 24 * 3600),
        },
        quarantine: Quarantine {
            threshold_min_failures: 5000,
            threshold_ratio: 0.4,
            threshold_non_reference: 40_000,
            threshold_total: 60_000,
            backoff_max: Duration::from_secs(24 * 3600),
            disable_after: Duration::from_secs(28 * 24 * 3600),
        },
        notifications: Notifications::default(),
        groups: GroupsConfig::default(),
        users: UsersConfig {
            mappings: vec![
                Mapping {
                    target: "userName".into(),
                    value: MappingValue::Direct {
                        source: "userPrincipalName".into(),
                    },
                    matching: Some(1),
                    apply: Apply::Always,
                    default: None,
                    required: false,
                    line: 23,
                },
                Mapping {
                    target: "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"
                        .into(),
                    value: MappingValue::Direct {
                        source: "department".into(),
                    },
                    matching: None,
                    apply: Apply::CreateOnly,
                    default: Some("Unknown".into()),
                    required: false,
                    line: 27,
                },
                Mapping {
                    target: "preferredLanguage".into(),
                    value: MappingValue::Constant {
                        value: "en-US".into(),
                    },
                    matching: None,
                    apply: Apply::Always,
                    default: None,
                    required: false,
                    line: 32,
                },
            ],
            scoping: vec![],
            skip_out_of_scope_deletions: false,
            deprovision: Deprovision::Disable,
        },
    };
    assert_eq!(loaded.job, expected);
}

#[test]
fn omitted_keys_take_their_documented_defaults() {
    let job = ok(BASE).job;
    assert_eq!(job.schedule, Schedule::Interval(Duration::from_secs(2400)));
    assert!(!job.skip_out_of_scope_deletions);
    assert_eq!(job.source.scope, ScopeSetting::Assigned);
    assert_eq!(job.source.graph_url, "https://graph.microsoft.com");
    assert_eq!(job.source.login_url, "https://login.microsoftonline.com");
    assert_eq!(job.source.page_size, 999);
    assert_eq!(job.target.dialect, DialectSetting::Rfc);
    assert_eq!(job.target.max_concurrency, 4);
    assert_eq!(job.target.timeout, Duration::from_secs(30));
    assert_eq!(job.target.actions, TargetActions::default());
    assert_eq!(
        job.source.user_scope(),
        scimsync_core::UserScope::Assigned {
            service_principal_id: "11111111-1111-1111-1111-111111111111".into()
        }
    );
    let m = &job.users.mappings[0];
    assert_eq!(
        (m.apply, m.required, m.default.as_deref(), m.line),
        (Apply::Always, false, None, 10)
    );
}

#[test]
fn non_default_settings_are_read() {
    let text = replace("[source]\n", "schedule = \"cron: 0 0 2 * * Mon-Fri\"\nskip_out_of_scope_deletions = true\n[source]\nscope = \"all\"\npage_size = 100\n")
        .replace(
            "[[users",
            "dialect = \"entra\"\nmax_concurrency = 64\ntimeout_secs = 5\nactions.delete = false\n[[users",
        )
        + "required = true\n";
    let job = ok(&text).job;
    assert_eq!(job.schedule, Schedule::Cron("0 0 2 * * Mon-Fri".into()));
    assert!(job.skip_out_of_scope_deletions);
    assert_eq!(job.source.scope, ScopeSetting::All);
    assert_eq!(job.source.page_size, 100);
    assert_eq!(job.target.dialect, DialectSetting::Entra);
    assert_eq!(job.target.max_concurrency, 64);
    assert_eq!(job.target.timeout, Duration::from_secs(5));
    assert_eq!(
        job.target.actions,
        TargetActions {
            create: true,
            update: true,
            delete: false
        }
    );
    assert!(job.users.mappings[0].required);
}

#[test]
fn the_shipped_example_is_valid_and_warning_free() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/examples/demo.toml");
    let loaded = load(&path).unwrap_or_else(|e| panic!("{e:#?}"));
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(loaded.job.name, "demo");
    assert_eq!(loaded.job.schedule, Schedule::default());
    assert!(
        loaded
            .job
            .users
            .mappings
            .iter()
            .any(|m| m.matching == Some(1))
    );
}

#[test]
fn load_reads_the_file_and_reports_unreadable_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("job.toml");
    std::fs::write(&path, BASE).unwrap();
    assert_eq!(load(&path).unwrap().job.path, path);
    let missing = load(&dir.path().join("nope.toml")).unwrap_err();
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0].line, 0);
    assert!(
        missing[0]
            .to_string()
            .contains("nope.toml: cannot read the job file"),
        "{}",
        missing[0]
    );
}

#[test]
fn bad_enum_value_is_reported_at_its_value() {
    let text = BASE.to_string() + "apply = \"sometimes\"\n";
    let e = errors(&text);
    assert_eq!(
        e[0].to_string(),
        "jobs/tribeloo.toml:14:9: users.mappings[0].apply: expected \"always\" or \"create\", found \"sometimes\""
    );
    assert_eq!(
        one(&replace("[target]\n", "[target]\ndialect = \"RFC\"\n")),
        (
            8,
            11,
            "target.dialect".into(),
            "expected \"rfc\" or \"entra\", found \"RFC\"".into()
        )
    );
    assert_eq!(
        one(&replace("[source]\n", "[source]\nscope = \"everyone\"\n")),
        (
            3,
            9,
            "source.scope".into(),
            "expected \"assigned\" or \"all\", found \"everyone\"".into()
        )
    );
}

#[test]
fn unknown_keys_are_errors_that_name_the_key_and_line() {
    let (line, col, key, msg) = one(&replace("client_secret", "clent_secret"));
    assert_eq!((line, col, key.as_str()), (5, 1, "source.clent_secret"));
    assert!(msg.contains("unknown key `clent_secret`"), "{msg}");
    assert!(msg.contains("did you mean `client_secret`"), "{msg}");

    let (line, col, key, msg) = one(&(BASE.to_string() + "colour = \"blue\"\n"));
    assert_eq!(
        (line, col, key.as_str()),
        (14, 1, "users.mappings[0].colour")
    );
    assert!(msg.contains("expected one of: target, source"), "{msg}");

    let (line, _, key, _) = one(&format!("retries = 3\n{BASE}"));
    assert_eq!((line, key.as_str()), (1, "retries"));
}

#[test]
fn wrong_types_are_reported_by_type_not_value() {
    assert_eq!(
        one(&replace("name = \"tribeloo\"", "name = 42")),
        (
            1,
            8,
            "name".into(),
            "expected a string, found an integer".into()
        )
    );
    assert_eq!(
        one(&replace(
            "[target]\n",
            "[target]\nmax_concurrency = \"4\"\n"
        )),
        (
            8,
            19,
            "target.max_concurrency".into(),
            "expected an integer, found a string".into()
        )
    );
    // A wrong-typed table is one error, not a cascade of "missing" ones.
    let text = replace("[source]\n", "source = \"graph\"\n[x]\n").replace("[x]\n", "[y]\n");
    let e = errors(&text);
    assert!(
        e.iter()
            .any(|e| e.key == "source" && e.message == "expected a table, found a string"),
        "{e:#?}"
    );
    assert!(!e.iter().any(|e| e.key.starts_with("source.")), "{e:#?}");
}

#[test]
fn a_secret_of_the_wrong_type_is_never_echoed() {
    for (from, to) in [
        ("\"env:GRAPH_CLIENT_SECRET\"", "987654321987"),
        ("\"env:GRAPH_CLIENT_SECRET\"", "[\"987654321987\"]"),
        (
            "\"env:GRAPH_CLIENT_SECRET\"",
            "{ value = \"987654321987\" }",
        ),
        ("\"env:TRIBELOO_SCIM_TOKEN\"", "987654321987.5"),
    ] {
        let e = errors(&replace(from, to));
        for err in &e {
            assert!(!err.to_string().contains("987654321987"), "leaked: {err}");
        }
        assert!(
            e[0].message.starts_with("expected a string (env:NAME"),
            "{e:#?}"
        );
    }
}

#[test]
fn a_literal_secret_loads_with_a_warning_that_hides_it() {
    let loaded = ok(&replace(
        "\"env:TRIBELOO_SCIM_TOKEN\"",
        "\"tok-XYZ-very-secret-123\"",
    ));
    assert_eq!(loaded.warnings.len(), 1);
    let w = &loaded.warnings[0];
    assert_eq!((w.line, w.column, w.key.as_str()), (9, 9, "target.token"));
    assert_eq!(
        w.message,
        "literal secret in the file; use env:NAME or file:PATH"
    );
    assert!(!w.to_string().contains("tok-XYZ"));
    let token = &loaded.job.target.token;
    assert!(token.is_literal());
    assert!(!format!("{:?}", loaded.job).contains("tok-XYZ"));
    assert_eq!(token.resolve().unwrap().expose(), "tok-XYZ-very-secret-123");
}

#[test]
fn secret_references_must_be_well_formed() {
    assert_eq!(
        one(&replace("env:GRAPH_CLIENT_SECRET", "env:graph-secret")),
        (
            5,
            17,
            "source.client_secret".into(),
            "expected env:NAME with NAME matching [A-Za-z_][A-Za-z0-9_]*".into()
        )
    );
    let (line, _, key, _) = one(&replace("env:TRIBELOO_SCIM_TOKEN", "file:"));
    assert_eq!((line, key.as_str()), (9, "target.token"));
    let (_, _, key, msg) = one(&replace(
        "env:TRIBELOO_SCIM_TOKEN",
        "ENV:TRIBELOO_SCIM_TOKEN",
    ));
    assert_eq!(
        (key.as_str(), msg.as_str()),
        (
            "target.token",
            "secret reference prefixes are lowercase: env: or file:"
        )
    );
    let (line, col, key, _) = one(&replace("token = \"env:TRIBELOO_SCIM_TOKEN\"\n", ""));
    assert_eq!((line, col, key.as_str()), (7, 1, "target.token"));
}

#[test]
fn relative_secret_files_are_found_next_to_the_job_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("secrets")).unwrap();
    std::fs::write(dir.path().join("secrets/tok"), "s3cr3t\n").unwrap();
    let path = dir.path().join("job.toml");
    std::fs::write(
        &path,
        replace("env:TRIBELOO_SCIM_TOKEN", "file:secrets/tok"),
    )
    .unwrap();
    let job = load(&path).unwrap().job;
    assert_eq!(
        job.target.token,
        SecretRef::file(dir.path().join("secrets/tok"))
    );
    assert_eq!(job.target.token.resolve().unwrap().expose(), "s3cr3t");
}

#[test]
fn service_principal_is_required_for_assigned_scope_only() {
    let without = replace(
        "service_principal_id = \"11111111-1111-1111-1111-111111111111\"\n",
        "",
    );
    let (line, col, key, msg) = one(&without);
    assert_eq!(
        (line, col, key.as_str()),
        (2, 1, "source.service_principal_id")
    );
    assert!(msg.contains("scope = \"assigned\""), "{msg}");
    let all = without.replace("[source]\n", "[source]\nscope = \"all\"\n");
    assert_eq!(ok(&all).job.source.service_principal_id, None);
    assert_eq!(
        ok(&all).job.source.user_scope(),
        scimsync_core::UserScope::All
    );
}

#[test]
fn urls_must_be_https_or_loopback_http() {
    let (line, col, key, msg) = one(&replace(
        "https://app.example.com",
        "http://app.example.com",
    ));
    assert_eq!((line, col, key.as_str()), (8, 7, "target.url"));
    assert!(
        msg.contains("plain http is allowed only for loopback"),
        "{msg}"
    );
    for local in [
        "http://127.0.0.1:8080",
        "http://localhost:3000",
        "http://[::1]:9",
    ] {
        let job = ok(&replace("https://app.example.com", local)).job;
        assert!(job.target.url.starts_with(local));
    }
    let (_, _, key, msg) = one(&replace(
        "https://app.example.com/scim/v2",
        "app.example.com/scim",
    ));
    assert_eq!(key, "target.url");
    assert!(msg.starts_with("not a valid URL"), "{msg}");
    let (_, _, _, msg) = one(&replace("https://app", "ftp://app"));
    assert_eq!(msg, "expected an https URL, found scheme \"ftp\"");
    let (_, _, _, msg) = one(&replace("https://app", "https://admin:pw@app"));
    assert!(msg.starts_with("credentials do not belong in the URL"));
    assert!(!msg.contains("pw"));
    let (line, _, key, _) = one(&replace("[source]\n", "[source]\ngraph_url = \"graph\"\n"));
    assert_eq!((line, key.as_str()), (3, "source.graph_url"));
    // A trailing slash is dropped so paths join cleanly.
    assert_eq!(
        ok(&replace("scim/v2", "scim/v2/")).job.target.url,
        "https://app.example.com/scim/v2"
    );
}

#[test]
fn entra_flag_in_the_url_is_a_warning() {
    let loaded = ok(&replace("scim/v2", "scim/v2?aadOptscim062020"));
    assert_eq!(loaded.warnings.len(), 1);
    assert_eq!(loaded.warnings[0].key, "target.url");
    assert!(loaded.warnings[0].message.contains("dialect"));
}

#[test]
fn schedule_syntax_is_checked() {
    let with = |s: &str| format!("schedule = \"{s}\"\n{BASE}");
    assert_eq!(
        ok(&with("1h30m")).job.schedule,
        Schedule::Interval(Duration::from_secs(5400))
    );
    assert_eq!(
        ok(&with("40min")).job.schedule,
        Schedule::Interval(Duration::from_secs(2400))
    );
    let (line, col, key, msg) = one(&with("40 minutez"));
    assert_eq!((line, col, key.as_str()), (1, 12, "schedule"));
    assert!(msg.contains("expected an interval like \"40m\""), "{msg}");
    let (_, _, _, msg) = one(&with("cron: */40 * * * *"));
    assert!(msg.contains("6 or 7 fields, seconds first"), "{msg}");
    assert!(errors(&with("0s")).len() == 1);
}

#[test]
fn numeric_ranges_are_checked() {
    let (line, col, key, msg) = one(&replace("[source]\n", "[source]\npage_size = 1000\n"));
    assert_eq!((line, col, key.as_str()), (3, 13, "source.page_size"));
    assert_eq!(msg, "must be between 1 and 999, found 1000");
    assert_eq!(
        one(&replace("[source]\n", "[source]\npage_size = 0\n")).2,
        "source.page_size"
    );
    assert_eq!(
        one(&replace("[target]\n", "[target]\nmax_concurrency = 65\n")).2,
        "target.max_concurrency"
    );
    assert_eq!(
        one(&replace("[target]\n", "[target]\ntimeout_secs = 0\n")).2,
        "target.timeout_secs"
    );
}

#[test]
fn name_must_be_an_id() {
    let (line, col, key, _) = one(&replace("\"tribeloo\"", "\"tribe loo\""));
    assert_eq!((line, col, key.as_str()), (1, 8, "name"));
    let (line, col, key, _) = one(&replace("name = \"tribeloo\"\n", ""));
    assert_eq!((line, col, key.as_str()), (1, 1, "name"));
}

#[test]
fn a_mapping_takes_exactly_one_value_kind() {
    let (line, col, key, msg) = one(&(BASE.to_string() + "constant = \"x\"\n"));
    assert_eq!(
        (line, col, key.as_str()),
        (14, 12, "users.mappings[0].constant")
    );
    assert!(
        msg.contains("exactly one of source, constant or expression"),
        "{msg}"
    );

    let none = BASE.to_string() + "[[users.mappings]]\ntarget = \"title\"\n";
    let (line, col, key, msg) = one(&none);
    assert_eq!((line, col, key.as_str()), (14, 1, "users.mappings[1]"));
    assert!(
        msg.contains("needs one of `source`, `constant` or `expression`"),
        "{msg}"
    );

    // None with a default is Entra's "None" mapping: only the default, only on create.
    let job = ok(&(none + "default = \"Staff\"\n")).job;
    assert_eq!(job.users.mappings[1].value, MappingValue::None);
    assert_eq!(job.users.mappings[1].default.as_deref(), Some("Staff"));
}

#[test]
fn expressions_are_parsed_and_their_errors_point_into_the_file() {
    let ok = BASE.to_string()
        + "[[users.mappings]]\ntarget = \"displayName\"\nexpression = 'Join(\" \", [givenName], [surname])'\n";
    let loaded =
        scimsync_config::parse(std::path::Path::new("jobs/tribeloo.toml"), &ok).expect("valid");
    assert!(loaded.job.users.mappings.iter().any(|m| matches!(&m.value, scimsync_config::MappingValue::Expression { text } if text.starts_with("Join("))));

    // `Jion` is at column 15 of line 16: 14 for `expression = '` plus one.
    let bad = BASE.to_string()
        + "[[users.mappings]]\ntarget = \"displayName\"\nexpression = 'Jion(\" \", [givenName], [surname])'\n";
    let (line, col, key, msg) = one(&bad);
    assert_eq!(
        (line, col, key.as_str()),
        (16, 15, "users.mappings[1].expression")
    );
    assert!(msg.contains("Jion"), "{msg}");

    let arity = BASE.to_string()
        + "[[users.mappings]]\ntarget = \"displayName\"\nexpression = 'Left([givenName])'\n";
    let (line, _, _, msg) = one(&arity);
    assert_eq!(line, 16);
    assert!(msg.to_lowercase().contains("argument"), "{msg}");
}

#[test]
fn matching_rules() {
    // At least one mapping must match.
    let (line, col, key, msg) = one(&replace("matching = 1\n", ""));
    assert_eq!((line, col, key.as_str()), (10, 1, "users.mappings"));
    assert!(msg.contains("no mapping sets `matching`"), "{msg}");
    let (_, _, key, msg) = one(BASE.split("[[users").next().unwrap());
    assert_eq!(key, "users.mappings");
    assert!(msg.starts_with("no mappings"), "{msg}");

    // Precedence is 1 or more, and unique.
    assert_eq!(one(&replace("matching = 1", "matching = 0")).0, 13);
    let dup = BASE.to_string()
        + "[[users.mappings]]\ntarget = \"externalId\"\nsource = \"objectId\"\nmatching = 1\n";
    let (line, col, key, msg) = one(&dup);
    assert_eq!(
        (line, col, key.as_str()),
        (17, 12, "users.mappings[1].matching")
    );
    assert_eq!(
        msg,
        "precedence 1 is already used by users.mappings[0] (line 10)"
    );
    let job = ok(&dup.replace("objectId\"\nmatching = 1", "objectId\"\nmatching = 2")).job;
    assert_eq!(
        job.users
            .mappings
            .iter()
            .map(|m| m.matching)
            .collect::<Vec<_>>(),
        [Some(1), Some(2)]
    );

    // A constant can't identify anyone.
    let constant = BASE.to_string()
        + "[[users.mappings]]\ntarget = \"title\"\nconstant = \"x\"\nmatching = 2\n";
    assert_eq!(one(&constant).2, "users.mappings[1].matching");
}

#[test]
fn target_attributes_are_unique_and_never_id() {
    let dup = BASE.to_string() + "[[users.mappings]]\ntarget = \"UserName\"\nsource = \"mail\"\n";
    let (line, col, key, msg) = one(&dup);
    assert_eq!(
        (line, col, key.as_str()),
        (15, 10, "users.mappings[1].target")
    );
    assert_eq!(
        msg,
        "`UserName` is already mapped by users.mappings[0] (line 10)"
    );

    let id = BASE.to_string() + "[[users.mappings]]\ntarget = \"id\"\nsource = \"objectId\"\n";
    let (line, _, key, msg) = one(&id);
    assert_eq!((line, key.as_str()), (15, "users.mappings[1].target"));
    assert!(msg.contains("must not be mapped"), "{msg}");
}

#[test]
fn toml_syntax_errors_point_at_the_spot() {
    let (line, col, key, msg) = one(&replace("\"contoso.onmicrosoft.com\"", "contoso"));
    assert_eq!((line, col, key.as_str()), (3, 13, "source.tenant_id"));
    assert!(msg.contains("string values must be quoted"), "{msg}");
    // A secret written without quotes is a syntax error that must not echo it either.
    let e = errors(&replace("\"env:GRAPH_CLIENT_SECRET\"", "hunter2hunter2"));
    assert!(
        e.iter().all(|e| !e.to_string().contains("hunter2")),
        "{e:#?}"
    );
    let (line, _, _, msg) = one(&(BASE.to_string() + "matching = 2\n"));
    assert_eq!(line, 14);
    assert!(msg.contains("duplicate key"), "{msg}");
}

#[test]
fn many_mistakes_are_reported_together_in_file_order() {
    let text = BASE
        .replace(
            "name = \"tribeloo\"",
            "name = \"tribe loo\"\nschedul = \"1h\"",
        )
        .replace("[target]\n", "[target]\ndialect = \"scim\"\n")
        .replace("https://app.example.com", "http://app.example.com")
        + "apply = \"sometimes\"\n";
    let e = errors(&text);
    let got: Vec<(usize, &str)> = e.iter().map(|e| (e.line, e.key.as_str())).collect();
    assert_eq!(
        got,
        [
            (1, "name"),
            (2, "schedul"),
            (9, "target.dialect"),
            (10, "target.url"),
            (16, "users.mappings[0].apply")
        ]
    );
}

#[test]
fn inline_mapping_arrays_work_too() {
    let text = BASE.split("[[users").next().unwrap().to_string()
        + "[users]\nmappings = [\n  { target = \"userName\", source = \"userPrincipalName\", matching = 1 },\n  { target = \"title\", sorce = \"jobTitle\" },\n]\n";
    let (line, col, key, _) = one(&text);
    assert_eq!(
        (line, col, key.as_str()),
        (13, 23, "users.mappings[1].sorce")
    );
}

/// A garbled file is refused quickly: the first syntax errors are listed, the rest counted
/// (naming each error's key rescans the text, which would cost the square of the file size).
#[test]
fn a_garbled_file_lists_the_first_syntax_errors_and_counts_the_rest() {
    let text = "= =\n".repeat(5_000);
    let errors = match scimsync_config::parse(std::path::Path::new("big.toml"), &text) {
        Ok(_) => panic!("garbage accepted"),
        Err(e) => e,
    };
    assert!(errors.len() <= 21, "{} errors", errors.len());
    assert!(
        errors
            .iter()
            .any(|e| e.message.contains("more syntax error")),
        "{errors:?}"
    );
}

/// `/dev/zero` or a huge file is not a job file: refused before it is held in memory.
#[test]
fn an_oversized_job_file_is_refused_before_it_is_read_whole() {
    let errors = match scimsync_config::load(std::path::Path::new("/dev/zero")) {
        Ok(_) => panic!("/dev/zero accepted"),
        Err(e) => e,
    };
    assert!(errors[0].message.contains("larger than"), "{errors:?}");
}
