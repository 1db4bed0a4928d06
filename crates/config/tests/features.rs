//! The keys added for certificates, escrow, quarantine, notifications, scoping filters, groups
//! and the service file: what loads, the defaults, and what each mistake reports.

use scimsync_config::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

const FILE: &str = "jobs/atmos.toml";

/// A valid job; line numbers below count from it (it has 13 lines).
const BASE: &str = r#"name = "atmos"
[source]
tenant_id = "contoso.onmicrosoft.com"
client_id = "00000000-0000-0000-0000-000000000001"
client_secret = "env:GRAPH_CLIENT_SECRET"
service_principal_id = "11111111-1111-1111-1111-111111111111"
[target]
url = "https://app.example.com/scim/v2"
token = "env:ATMOS_SCIM_TOKEN"
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
    (e.line, e.column, e.key, e.message)
}

fn replace(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "{from:?} not in BASE");
    BASE.replacen(from, to, 1)
}

/// BASE with `extra` put before the first `[[users.mappings]]` (top-level keys go first).
fn with_top(extra: &str) -> String {
    format!("{extra}\n{BASE}")
}

fn with(extra: &str) -> String {
    format!("{BASE}{extra}")
}

#[test]
fn new_keys_default_to_entras_behaviour() {
    let job = ok(BASE).job;
    assert_eq!(job.deletion_threshold, 500);
    assert_eq!(job.log_retention_days, 30);
    assert_eq!(
        job.source.client_secret,
        Some(SecretRef::env("GRAPH_CLIENT_SECRET"))
    );
    assert_eq!(
        (job.source.certificate, job.source.private_key),
        (None, None)
    );
    assert_eq!(job.source.assertion_algorithm, AssertionAlgorithm::Ps256);
    assert!(!job.source.exclude_default_access);
    assert_eq!(job.target.membership_batch_size, 1000);
    assert_eq!(job.target.group_members_removal, MembersRemoval::Rfc);
    assert_eq!(job.target.manager_format, ManagerFormat::Complex);
    assert!(!job.target.clear_on_null);
    let h = |n: u64| Duration::from_secs(n * 3600);
    assert_eq!(job.escrow.retry_delays, [h(6), h(12), h(24)]);
    assert_eq!(
        (job.escrow.daily_after, job.escrow.give_up_after),
        (h(24), h(28 * 24))
    );
    assert_eq!(job.quarantine, Quarantine::default());
    assert_eq!(job.quarantine.threshold_ratio, 0.4);
    assert_eq!(job.notifications, Notifications::default());
    assert_eq!(job.users.deprovision, Deprovision::Disable);
    assert!(job.users.scoping.is_empty());
    assert_eq!(job.groups, GroupsConfig::default());
    assert_eq!(job.groups.out_of_scope, GroupOutOfScope::Delete);
    assert_eq!(job.groups.nested, Nested::Ignore);
    assert_eq!(job.groups.reconcile, Reconcile::Off);
    // The Entra dialect removes members Entra's way unless told otherwise.
    let entra = ok(&replace("[target]\n", "[target]\ndialect = \"entra\"\n")).job;
    assert_eq!(
        entra.target.group_members_removal,
        MembersRemoval::ValueList
    );
    let rfc_anyway = ok(&replace(
        "[target]\n",
        "[target]\ndialect = \"entra\"\ngroup_members_removal = \"rfc\"\n",
    ))
    .job;
    assert_eq!(rfc_anyway.target.group_members_removal, MembersRemoval::Rfc);
}

#[test]
fn a_full_file_with_every_new_key_is_read() {
    let text = r#"name = "klaxoon"
deletion_threshold = 0
log_retention_days = 90
[source]
tenant_id = "t"
client_id = "c"
certificate = "file:certs/app.pem"
private_key = "env:APP_KEY"
assertion_algorithm = "RS256"
service_principal_id = "sp"
exclude_default_access = true
[target]
url = "https://app.example.com/scim"
token = "env:T"
membership_batch_size = 1000
group_members_removal = "value-list"
manager_format = "string"
clear_on_null = true
[escrow]
retry_delays = ["30m", "1h30m"]
daily_after = "12h"
give_up_after = "7d"
[quarantine]
threshold_min_failures = 10
threshold_ratio = 1
threshold_non_reference = 20
threshold_total = 30
backoff_max = "6h"
disable_after = "45s"
[notifications]
webhook_url = "http://127.0.0.1:9000/hook/"
webhook_token = "file:hook.token"
[notifications.smtp]
host = "smtp.example.com"
port = 465
starttls = false
username = "scimsync"
password = "env:SMTP_PASSWORD"
from = "scimsync@example.com"
to = ["a@example.com", "b@example.com"]
[users]
skip_out_of_scope_deletions = true
deprovision = "delete"
[[users.mappings]]
target = "userName"
source = "userPrincipalName"
matching = 1
[[users.scoping]]
name = "Sales"
[[users.scoping.clauses]]
attribute = "department"
operator = "EQUALS"
value = "Sales"
[[users.scoping.clauses]]
attribute = "accountEnabled"
operator = "IS TRUE"
[groups]
enabled = true
nested = "include"
out_of_scope = "skip"
reconcile = "every-cycle"
[[groups.mappings]]
target = "displayName"
source = "displayName"
matching = 1
[[groups.mappings]]
target = "urn:ietf:params:scim:schemas:extension:klaxoon:2.0:Group:license"
constant = "PRO"
[[groups.scoping]]
clauses = [{ attribute = "displayName", operator = "ENDS_WITH", value = "-klaxoon" }]
"#;
    let dir = Path::new("/etc/scimsync/jobs");
    let loaded = parse(&dir.join("klaxoon.toml"), text).unwrap_or_else(|e| panic!("{e:#?}"));
    assert!(loaded.warnings.is_empty(), "{:#?}", loaded.warnings);
    let job = loaded.job;
    assert_eq!((job.deletion_threshold, job.log_retention_days), (0, 90));
    assert_eq!(job.source.client_secret, None);
    assert_eq!(
        job.source.certificate,
        Some(SecretRef::file(dir.join("certs/app.pem")))
    );
    assert_eq!(job.source.private_key, Some(SecretRef::env("APP_KEY")));
    assert_eq!(job.source.assertion_algorithm, AssertionAlgorithm::Rs256);
    assert!(job.source.exclude_default_access);
    let t = &job.target;
    assert_eq!(t.membership_batch_size, 1000);
    assert_eq!(t.group_members_removal, MembersRemoval::ValueList);
    assert_eq!(t.manager_format, ManagerFormat::String);
    assert!(t.clear_on_null);
    let m = |n: u64| Duration::from_secs(n * 60);
    assert_eq!(
        job.escrow,
        Escrow {
            retry_delays: vec![m(30), m(90)],
            daily_after: m(720),
            give_up_after: m(7 * 24 * 60),
        }
    );
    assert_eq!(
        job.quarantine,
        Quarantine {
            threshold_min_failures: 10,
            threshold_ratio: 1.0,
            threshold_non_reference: 20,
            threshold_total: 30,
            backoff_max: m(360),
            disable_after: Duration::from_secs(45),
        }
    );
    assert_eq!(
        job.notifications,
        Notifications {
            webhook_url: Some("http://127.0.0.1:9000/hook".into()),
            webhook_token: Some(SecretRef::file(dir.join("hook.token"))),
            smtp: Some(Smtp {
                host: "smtp.example.com".into(),
                port: 465,
                tls: SmtpTls::Implicit,
                username: Some("scimsync".into()),
                password: Some(SecretRef::env("SMTP_PASSWORD")),
                from: "scimsync@example.com".into(),
                to: vec!["a@example.com".into(), "b@example.com".into()],
            }),
        }
    );
    assert!(job.skip_out_of_scope_deletions);
    assert!(job.users.skip_out_of_scope_deletions);
    assert_eq!(job.users.deprovision, Deprovision::Delete);
    assert_eq!(
        job.users.scoping,
        [ScopingFilter {
            name: Some("Sales".into()),
            clauses: vec![
                Clause {
                    attribute: "department".into(),
                    operator: Operator::Equals,
                    value: Some("Sales".into()),
                    line: 50,
                },
                Clause {
                    attribute: "accountEnabled".into(),
                    operator: Operator::IsTrue,
                    value: None,
                    line: 54,
                },
            ],
            line: 48,
        }]
    );
    let g = &job.groups;
    assert!(g.enabled);
    assert_eq!(
        (g.nested, g.out_of_scope, g.reconcile),
        (
            Nested::Include,
            GroupOutOfScope::Skip,
            Reconcile::EveryCycle
        )
    );
    assert_eq!(g.mappings.len(), 2);
    assert_eq!(g.mappings[0].matching, Some(1));
    assert_eq!(g.scoping[0].clauses[0].operator, Operator::EndsWith);
    assert_eq!(g.scoping[0].name, None);
}

#[test]
fn exactly_one_credential() {
    // Both.
    let both = replace(
        "client_secret = \"env:GRAPH_CLIENT_SECRET\"\n",
        "client_secret = \"env:GRAPH_CLIENT_SECRET\"\ncertificate = \"file:a.pem\"\nprivate_key = \"file:a.key\"\n",
    );
    let (line, col, key, msg) = one(&both);
    assert_eq!((line, col, key.as_str()), (6, 15, "source.certificate"));
    assert!(
        msg.contains("exactly one of client_secret or certificate"),
        "{msg}"
    );
    // Neither.
    let (line, _, key, msg) = one(&replace(
        "client_secret = \"env:GRAPH_CLIENT_SECRET\"\n",
        "",
    ));
    assert_eq!((line, key.as_str()), (2, "source.client_secret"));
    assert!(msg.contains("certificate + private_key"), "{msg}");
    // A certificate without its key, and a key without a certificate.
    let cert_only = replace(
        "client_secret = \"env:GRAPH_CLIENT_SECRET\"",
        "certificate = \"file:a.pem\"",
    );
    let (_, _, key, msg) = one(&cert_only);
    assert_eq!(key, "source.private_key");
    assert!(msg.starts_with("missing required key"), "{msg}");
    let key_only = replace(
        "client_secret = \"env:GRAPH_CLIENT_SECRET\"",
        "private_key = \"file:a.key\"",
    );
    assert!(one(&key_only).3.contains("needs `certificate`"));
    let secret_and_key = replace(
        "client_secret = \"env:GRAPH_CLIENT_SECRET\"\n",
        "client_secret = \"env:GRAPH_CLIENT_SECRET\"\nprivate_key = \"file:a.key\"\n",
    );
    assert_eq!(one(&secret_and_key).2, "source.private_key");
    // The algorithm is one of two spellings.
    let cert = cert_only.replace(
        "pem\"\n",
        "pem\"\nprivate_key = \"file:a.key\"\nassertion_algorithm = \"ES256\"\n",
    );
    let (_, _, key, msg) = one(&cert);
    assert_eq!(key, "source.assertion_algorithm");
    assert_eq!(msg, "expected \"PS256\" or \"RS256\", found \"ES256\"");
}

#[test]
fn literal_secrets_in_new_keys_warn_without_showing_them() {
    let text = replace(
        "client_secret = \"env:GRAPH_CLIENT_SECRET\"",
        "certificate = \"-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\"\nprivate_key = \"KEY-hunter2\"",
    ) + "[notifications]\nwebhook_url = \"https://h.example.com\"\nwebhook_token = \"HOOK-hunter2\"\n[notifications.smtp]\nhost = \"smtp.example.com\"\nusername = \"u\"\npassword = \"PW-hunter2\"\nfrom = \"a@example.com\"\nto = [\"b@example.com\"]\n";
    let loaded = ok(&text);
    let keys: Vec<&str> = loaded.warnings.iter().map(|w| w.key.as_str()).collect();
    // An inline certificate is public and not warned about; the three secrets are.
    assert_eq!(
        keys,
        [
            "source.private_key",
            "notifications.webhook_token",
            "notifications.smtp.password"
        ]
    );
    for w in &loaded.warnings {
        assert!(!w.to_string().contains("hunter2"), "{w}");
    }
    assert!(!format!("{:?}", loaded.job).contains("hunter2"));
}

#[test]
fn secrets_of_the_wrong_type_are_never_echoed() {
    for text in [
        replace("\"env:GRAPH_CLIENT_SECRET\"", "987654321987"),
        with(
            "[notifications]\nwebhook_url = \"https://h.example.com\"\nwebhook_token = 987654321987\n",
        ),
        with("[notifications.smtp]\npassword = [\"987654321987\"]\n"),
    ] {
        for e in errors(&text) {
            assert!(!e.to_string().contains("987654321987"), "leaked: {e}");
        }
    }
}

#[test]
fn skip_out_of_scope_deletions_in_one_place_only() {
    let text = BASE.replace(
        "[[users.mappings]]",
        "[users]\nskip_out_of_scope_deletions = true\n[[users.mappings]]",
    );
    assert!(ok(&text).job.skip_out_of_scope_deletions);
    assert!(ok(&text).job.users.skip_out_of_scope_deletions);
    let both = format!("skip_out_of_scope_deletions = false\n{text}");
    let (line, col, key, msg) = one(&both);
    assert_eq!(
        (line, col, key.as_str()),
        (12, 31, "users.skip_out_of_scope_deletions")
    );
    assert_eq!(
        msg,
        "also set at the top level (line 1): set it in one place only"
    );
}

#[test]
fn numeric_ranges_of_new_keys() {
    let (line, col, key, msg) = one(&replace(
        "[target]\n",
        "[target]\nmembership_batch_size = 1001\n",
    ));
    assert_eq!(
        (line, col, key.as_str()),
        (8, 25, "target.membership_batch_size")
    );
    assert_eq!(msg, "must be between 1 and 1000, found 1001");
    assert_eq!(
        one(&replace(
            "[target]\n",
            "[target]\nmembership_batch_size = 0\n"
        ))
        .2,
        "target.membership_batch_size"
    );
    assert_eq!(
        one(&with_top("deletion_threshold = -1")).2,
        "deletion_threshold"
    );
    assert_eq!(
        one(&with_top("log_retention_days = 0")).2,
        "log_retention_days"
    );
    let (_, _, key, msg) = one(&with("[quarantine]\nthreshold_ratio = 1.5\n"));
    assert_eq!(key, "quarantine.threshold_ratio");
    assert!(msg.starts_with("must be between 0 and 1"), "{msg}");
    assert_eq!(
        one(&with("[quarantine]\nthreshold_ratio = -0.1\n")).2,
        "quarantine.threshold_ratio"
    );
    assert_eq!(
        one(&with("[quarantine]\nthreshold_total = 0\n")).2,
        "quarantine.threshold_total"
    );
    let (_, _, key, msg) = one(&with("[quarantine]\nthreshold_ratio = \"40%\"\n"));
    assert_eq!(
        (key.as_str(), msg.as_str()),
        (
            "quarantine.threshold_ratio",
            "expected a number, found a string"
        )
    );
}

#[test]
fn durations_are_checked() {
    let (line, col, key, msg) = one(&with("[escrow]\nretry_delays = [\"6h\", \"12 hourz\"]\n"));
    assert_eq!(
        (line, col, key.as_str()),
        (15, 23, "escrow.retry_delays[1]")
    );
    assert_eq!(
        msg,
        "expected a duration like \"6h\", \"40min\", \"28d\" or \"1h30m\", found \"12 hourz\""
    );
    assert_eq!(
        one(&with("[escrow]\ndaily_after = \"0s\"\n")).2,
        "escrow.daily_after"
    );
    assert_eq!(
        one(&with("[quarantine]\nbackoff_max = \"1x\"\n")).2,
        "quarantine.backoff_max"
    );
    assert_eq!(
        one(&with(
            "[quarantine]\ndisable_after = \"cron: 0 0 2 * * *\"\n"
        ))
        .2,
        "quarantine.disable_after"
    );
    let (_, _, key, msg) = one(&with("[escrow]\ngive_up_after = \"1h\"\n"));
    assert_eq!(key, "escrow.give_up_after");
    assert!(msg.contains("shorter than the first retry delay"), "{msg}");
    // humantime's long units are accepted.
    let job = ok(&with(
        "[escrow]\nretry_delays = [\"40min\", \"12 hours\"]\n",
    ))
    .job;
    assert_eq!(
        job.escrow.retry_delays,
        [Duration::from_secs(2400), Duration::from_secs(43_200)]
    );
    // No listed delays: retries are daily from the start.
    let job = ok(&with("[escrow]\nretry_delays = []\n")).job;
    assert!(job.escrow.retry_delays.is_empty());
}

#[test]
fn notifications_are_checked() {
    let (_, _, key, msg) = one(&with(
        "[notifications]\nwebhook_url = \"http://hooks.example.com\"\n",
    ));
    assert_eq!(key, "notifications.webhook_url");
    assert!(
        msg.contains("plain http is allowed only for loopback"),
        "{msg}"
    );
    let (_, _, key, msg) = one(&with("[notifications]\nwebhook_token = \"env:HOOK\"\n"));
    assert_eq!(key, "notifications.webhook_token");
    assert!(msg.contains("needs `webhook_url`"), "{msg}");

    let smtp = "[notifications.smtp]\nhost = \"smtp.example.com\"\nfrom = \"a@example.com\"\nto = [\"b@example.com\"]\n";
    let job = ok(&with(smtp)).job;
    let s = job.notifications.smtp.unwrap();
    assert_eq!(
        (s.port, s.tls, s.username, s.password),
        (587, SmtpTls::Starttls, None, None)
    );

    let (line, col, key, msg) = one(&with(&smtp.replace("to = [\"b@example.com\"]", "to = []")));
    assert_eq!((line, col, key.as_str()), (14, 1, "notifications.smtp.to"));
    assert_eq!(msg, "must list at least one recipient");
    let (_, _, key, _) = one(&with(&smtp.replace("to = [\"b@example.com\"]\n", "")));
    assert_eq!(key, "notifications.smtp.to");
    let (_, _, key, msg) = one(&with(
        &smtp.replace("\"b@example.com\"", "\"b@example.com\", \"idadmins\""),
    ));
    assert_eq!(key, "notifications.smtp.to[1]");
    assert!(msg.starts_with("expected a mail address"), "{msg}");
    assert_eq!(
        one(&with(&smtp.replace("a@example.com", "scimsync"))).2,
        "notifications.smtp.from"
    );
    assert_eq!(
        one(&with(&smtp.replace("from = \"a@example.com\"\n", ""))).2,
        "notifications.smtp.from"
    );
    assert_eq!(
        one(&with(&format!("{smtp}port = 70000\n"))).2,
        "notifications.smtp.port"
    );
    assert_eq!(
        one(&with(&format!("{smtp}port = 0\n"))).2,
        "notifications.smtp.port"
    );
    let (_, _, key, msg) = one(&with(
        &smtp.replace("smtp.example.com", "smtp.example.com:25"),
    ));
    assert_eq!(key, "notifications.smtp.host");
    assert!(msg.contains("`port`"), "{msg}");
    assert_eq!(
        one(&with(&format!("{smtp}username = \"u\"\n"))).2,
        "notifications.smtp.password"
    );
    assert_eq!(
        one(&with(&format!("{smtp}password = \"env:P\"\n"))).2,
        "notifications.smtp.password"
    );
}

/// Issue 12 §1: SMTP credentials never go over plain TCP, except to a loopback relay.
#[test]
fn smtp_credentials_need_tls_unless_the_host_is_loopback() {
    let smtp = "[notifications.smtp]\nhost = \"smtp.example.com\"\nfrom = \"a@example.com\"\n\
                to = [\"b@example.com\"]\nusername = \"scimsync\"\npassword = \"env:SMTP_PASSWORD\"\n";
    let tls_of = |extra: &str| {
        ok(&with(&format!("{smtp}{extra}")))
            .job
            .notifications
            .smtp
            .unwrap()
            .tls
    };
    // With credentials: STARTTLS by default, implicit TLS on 465 (however it is spelled).
    assert_eq!(tls_of(""), SmtpTls::Starttls);
    assert_eq!(tls_of("port = 465\n"), SmtpTls::Implicit);
    assert_eq!(tls_of("port = 465\nstarttls = false\n"), SmtpTls::Implicit);
    assert_eq!(
        tls_of("tls = \"implicit\"\nport = 2465\n"),
        SmtpTls::Implicit
    );
    assert_eq!(tls_of("starttls = true\n"), SmtpTls::Starttls);
    assert_eq!(tls_of("tls = \"starttls\"\n"), SmtpTls::Starttls);

    // Credentials in cleartext to a host that is not loopback: refused at the key that turned
    // TLS off (BASE has 13 lines, the table starts on line 14).
    let (line, col, key, msg) = one(&with(&format!("{smtp}starttls = false\n")));
    assert_eq!(
        (line, col, key.as_str()),
        (20, 12, "notifications.smtp.starttls")
    );
    assert!(msg.contains("cleartext"), "{msg}");
    assert!(
        msg.contains("\"smtp.example.com\" is not a loopback host"),
        "{msg}"
    );
    assert!(msg.contains("tls = \"starttls\""), "{msg}");
    assert!(!msg.contains("SMTP_PASSWORD"), "{msg}");
    let (line, col, key, _) = one(&with(&format!("{smtp}port = 25\ntls = \"none\"\n")));
    assert_eq!((line, col, key.as_str()), (21, 7, "notifications.smtp.tls"));
    // A relay that only looks local is judged by its name, not resolved.
    let e = errors(&with(&format!(
        "{}tls = \"none\"\n",
        smtp.replace("smtp.example.com", "localhost.example.com")
    )));
    assert_eq!(e[0].key, "notifications.smtp.tls", "{e:#?}");

    // Plain SMTP is fine on loopback, or without credentials.
    for host in ["localhost", "127.0.0.1", "127.0.0.25", "::1", "[::1]"] {
        let text = with(&format!(
            "{}starttls = false\nport = 25\n",
            smtp.replace("smtp.example.com", host)
        ));
        let s = ok(&text).job.notifications.smtp.unwrap();
        assert_eq!(s.tls, SmtpTls::None, "{host}");
        assert_eq!(s.host, host.trim_matches(['[', ']']), "{host}");
        assert!(
            s.host_is_loopback() && !s.credentials_in_cleartext(),
            "{host}"
        );
    }
    let anonymous = smtp
        .replace("username = \"scimsync\"\n", "")
        .replace("password = \"env:SMTP_PASSWORD\"\n", "");
    let s = ok(&with(&format!("{anonymous}tls = \"none\"\nport = 25\n")))
        .job
        .notifications
        .smtp
        .unwrap();
    assert_eq!(s.tls, SmtpTls::None);
    assert!(!s.has_credentials() && !s.credentials_in_cleartext());

    // One spelling at a time, and only known modes.
    let (_, _, key, msg) = one(&with(&format!(
        "{smtp}tls = \"starttls\"\nstarttls = true\n"
    )));
    assert_eq!(key, "notifications.smtp.starttls");
    assert!(msg.contains("remove `starttls`"), "{msg}");
    let (_, _, key, msg) = one(&with(&format!("{smtp}tls = \"ssl\"\n")));
    assert_eq!(key, "notifications.smtp.tls");
    assert!(msg.contains("\"implicit\""), "{msg}");
}

#[test]
fn enum_values_of_new_keys() {
    for (text, key) in [
        (
            replace(
                "[target]\n",
                "[target]\ngroup_members_removal = \"entra\"\n",
            ),
            "target.group_members_removal",
        ),
        (
            replace("[target]\n", "[target]\nmanager_format = \"object\"\n"),
            "target.manager_format",
        ),
        (with("[groups]\nnested = \"yes\"\n"), "groups.nested"),
        (
            with("[groups]\nout_of_scope = \"disable\"\n"),
            "groups.out_of_scope",
        ),
        (
            with("[groups]\nreconcile = \"hourly\"\n"),
            "groups.reconcile",
        ),
    ] {
        assert_eq!(one(&text).2, key);
    }
    let text = BASE.replace(
        "[[users.mappings]]",
        "[users]\ndeprovision = \"remove\"\n[[users.mappings]]",
    );
    assert_eq!(
        one(&text).3,
        "expected \"disable\" or \"delete\", found \"remove\""
    );
    let (_, _, _, msg) = one(&with("[groups]\nreconcile = \"hourly\"\n"));
    assert_eq!(
        msg,
        "expected \"off\", \"daily\", \"every-cycle\", found \"hourly\""
    );
}

/// BASE plus one users scoping filter with the given clause lines.
fn scoped(clause: &str) -> String {
    with(&format!(
        "[[users.scoping]]\nname = \"Sales\"\n[[users.scoping.clauses]]\n{clause}"
    ))
}

#[test]
fn scoping_clauses_are_validated() {
    let job = ok(&scoped(
        "attribute = \"department\"\noperator = \"EQUALS\"\nvalue = \"Sales\"\n",
    ))
    .job;
    assert_eq!(job.users.scoping[0].line, 14);
    assert_eq!(job.users.scoping[0].clauses[0].line, 16);

    // Operators are spelled exactly as Entra spells them.
    let (line, col, key, msg) = one(&scoped(
        "attribute = \"department\"\noperator = \"equals\"\nvalue = \"Sales\"\n",
    ));
    assert_eq!(
        (line, col, key.as_str()),
        (18, 12, "users.scoping[0].clauses[0].operator")
    );
    assert_eq!(
        msg,
        "unknown operator \"equals\" (did you mean \"EQUALS\"?)"
    );
    let (_, _, _, msg) = one(&scoped(
        "attribute = \"a\"\noperator = \"Greater_Than_Or_Equals\"\nvalue = \"1\"\n",
    ));
    assert!(
        msg.contains("did you mean \"Greater_Than_OR_EQUALS\""),
        "{msg}"
    );
    let (_, _, _, msg) = one(&scoped(
        "attribute = \"a\"\noperator = \"LESS THAN\"\nvalue = \"1\"\n",
    ));
    assert!(msg.contains("expected one of:"), "{msg}");

    // A binary operator needs a value; a unary one takes none.
    let (line, _, key, msg) = one(&scoped(
        "attribute = \"department\"\noperator = \"NOT EQUALS\"\n",
    ));
    assert_eq!(
        (line, key.as_str()),
        (16, "users.scoping[0].clauses[0].value")
    );
    assert!(msg.contains("`NOT EQUALS` compares with it"), "{msg}");
    let (line, _, key, msg) = one(&scoped(
        "attribute = \"mail\"\noperator = \"IS NULL\"\nvalue = \"x\"\n",
    ));
    assert_eq!(
        (line, key.as_str()),
        (19, "users.scoping[0].clauses[0].value")
    );
    assert_eq!(msg, "`IS NULL` takes no value: remove `value`");
    for unary in ["IS TRUE", "IS FALSE", "IS NULL", "IS NOT NULL"] {
        ok(&scoped(&format!(
            "attribute = \"a\"\noperator = \"{unary}\"\n"
        )));
    }

    // Greater_Than* compare integers.
    let (_, _, key, msg) = one(&scoped(
        "attribute = \"extension_0123456789abcdef0123456789abcdef_level\"\noperator = \"Greater_Than\"\nvalue = \"ten\"\n",
    ));
    assert_eq!(key, "users.scoping[0].clauses[0].value");
    assert!(msg.contains("expected a whole number"), "{msg}");
    ok(&scoped(
        "attribute = \"a\"\noperator = \"Greater_Than_OR_EQUALS\"\nvalue = \"-3\"\n",
    ));

    // Regexes must compile; the message names the clause's line.
    let (line, col, key, msg) = one(&scoped(
        "attribute = \"userPrincipalName\"\noperator = \"REGEX MATCH\"\nvalue = \"(?<=x)y\"\n",
    ));
    assert_eq!(
        (line, col, key.as_str()),
        (19, 9, "users.scoping[0].clauses[0].value")
    );
    assert!(
        msg.starts_with("the pattern of the clause on line 16 does not compile"),
        "{msg}"
    );
    assert!(msg.contains("no lookaround"), "{msg}");
    assert_eq!(
        one(&scoped(
            "attribute = \"a\"\noperator = \"NOT REGEX MATCH\"\nvalue = \"[a-\"\n"
        ))
        .2,
        "users.scoping[0].clauses[0].value"
    );
    ok(&scoped(
        "attribute = \"userPrincipalName\"\noperator = \"REGEX MATCH\"\nvalue = '.*\\@domain.com'\n",
    ));

    // `&`/`!&` need at least one list item.
    assert!(
        one(&scoped(
            "attribute = \"a\"\noperator = \"!&\"\nvalue = \" , \"\n"
        ))
        .3
        .contains("comma-separated")
    );

    // Missing pieces, and an empty filter.
    assert_eq!(
        one(&scoped("operator = \"IS NULL\"\n")).2,
        "users.scoping[0].clauses[0].attribute"
    );
    assert_eq!(
        one(&scoped("attribute = \"a\"\n")).2,
        "users.scoping[0].clauses[0].operator"
    );
    let (line, _, key, msg) = one(&with("[[users.scoping]]\nname = \"empty\"\n"));
    assert_eq!((line, key.as_str()), (14, "users.scoping[0].clauses"));
    assert!(msg.contains("at least one clause"), "{msg}");
    let (_, _, key, msg) = one(&scoped(
        "attribute = \"a\"\noperator = \"IS NULL\"\nvalu = \"x\"\n",
    ));
    assert_eq!(key, "users.scoping[0].clauses[0].valu");
    assert!(msg.contains("did you mean `value`"), "{msg}");
}

#[test]
fn group_mappings_need_matching_only_when_groups_are_on() {
    let off = with("[[groups.mappings]]\ntarget = \"displayName\"\nsource = \"displayName\"\n");
    assert!(!ok(&off).job.groups.enabled);
    let on = off.replace(
        "[[groups.mappings]]",
        "[groups]\nenabled = true\n[[groups.mappings]]",
    );
    let (line, col, key, msg) = one(&on);
    assert_eq!((line, col, key.as_str()), (16, 1, "groups.mappings"));
    assert!(
        msg.contains("at least one attribute must identify groups"),
        "{msg}"
    );
    assert!(msg.contains("target = \"displayName\""), "{msg}");
    let (_, _, key, msg) = one(&with("[groups]\nenabled = true\n"));
    assert_eq!(key, "groups.mappings");
    assert!(msg.contains("[[groups.mappings]]"), "{msg}");
    ok(&format!("{on}matching = 1\n"));
    // The usual mapping rules apply to groups, with group keys in the messages.
    let dup = format!(
        "{on}matching = 1\n[[groups.mappings]]\ntarget = \"DisplayName\"\nsource = \"mail\"\n"
    );
    let (_, _, key, msg) = one(&dup);
    assert_eq!(key, "groups.mappings[1].target");
    assert_eq!(
        msg,
        "`DisplayName` is already mapped by groups.mappings[0] (line 16)"
    );
}

#[test]
fn exclude_default_access_warns_when_it_cannot_apply() {
    let loaded = ok(&replace(
        "service_principal_id = \"11111111-1111-1111-1111-111111111111\"\n",
        "scope = \"all\"\nexclude_default_access = true\n",
    ));
    assert_eq!(loaded.warnings.len(), 1);
    assert_eq!(loaded.warnings[0].key, "source.exclude_default_access");
}

#[test]
fn fingerprint_follows_mappings_and_scope_only() {
    let base = ok(BASE).job.fingerprint();
    assert_eq!(base.len(), 64);
    assert_eq!(ok(BASE).job.fingerprint(), base, "stable");
    // Secrets, URLs, schedule, other settings and formatting don't change it.
    for same in [
        replace("env:ATMOS_SCIM_TOKEN", "env:OTHER"),
        replace("env:GRAPH_CLIENT_SECRET", "env:OTHER"),
        replace("app.example.com", "other.example.com"),
        with_top("schedule = \"1h\"\ndeletion_threshold = 3"),
        replace("[[users.mappings]]\n", "\n\n[[users.mappings]]\n"),
        with("[escrow]\ndaily_after = \"2d\"\n"),
    ] {
        assert_eq!(ok(&same).job.fingerprint(), base);
    }
    // What decides representation or scope does.
    let changed = [
        replace("source = \"userPrincipalName\"", "source = \"mail\""),
        with("apply = \"create\"\n"),
        with("[[users.mappings]]\ntarget = \"title\"\nsource = \"jobTitle\"\n"),
        scoped("attribute = \"a\"\noperator = \"IS NULL\"\n"),
        scoped("attribute = \"a\"\noperator = \"IS NOT NULL\"\n"),
        replace(
            "service_principal_id = \"11111111-1111-1111-1111-111111111111\"\n",
            "scope = \"all\"\n",
        ),
        replace(
            "service_principal_id = \"11111111-1111-1111-1111-111111111111\"\n",
            "service_principal_id = \"11111111-1111-1111-1111-111111111111\"\nexclude_default_access = true\n",
        ),
        with(
            "[groups]\nenabled = true\n[[groups.mappings]]\ntarget = \"displayName\"\nsource = \"displayName\"\nmatching = 1\n",
        ),
    ];
    let mut seen = vec![base];
    for text in changed {
        let fp = ok(&text).job.fingerprint();
        assert!(!seen.contains(&fp), "{text}");
        seen.push(fp);
    }
}

#[test]
fn the_documented_examples_load_even_fully_uncommented() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/examples");
    let demo = std::fs::read_to_string(dir.join("demo.toml")).unwrap();
    // Turn every commented-out key and table back on, except the certificate alternative.
    let text: String = demo
        .lines()
        .map(|l| {
            let body = l.strip_prefix("# ").unwrap_or("");
            let is_toml = body.starts_with('[')
                || body.split_once(" = ").is_some_and(|(k, _)| {
                    !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                });
            let alternative = ["certificate", "private_key", "assertion_algorithm"]
                .iter()
                .any(|k| body.starts_with(k));
            if is_toml && !alternative { body } else { l }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let loaded = parse(&dir.join("demo.toml"), &text).unwrap_or_else(|e| panic!("{e:#?}\n{text}"));
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let job = loaded.job;
    assert!(job.groups.enabled);
    assert_eq!(job.users.scoping.len(), 1);
    assert_eq!(job.users.scoping[0].clauses.len(), 2);
    assert_eq!(job.groups.scoping.len(), 1);
    assert!(job.notifications.smtp.is_some());

    let service = load_service(&dir.join("service.toml")).unwrap_or_else(|e| panic!("{e:#?}"));
    assert!(service.warnings.is_empty());
    assert_eq!(service.admin.bind, "127.0.0.1:8787".parse().unwrap());
    assert_eq!(
        service.admin.token,
        Some(SecretRef::env("SCIMSYNC_ADMIN_TOKEN"))
    );
}

/// Issue 15: every default the example documents (`# key = value` under a table that exists
/// without it) is the default the code applies: writing them all out changes nothing. A default
/// changed in one place only fails here.
#[test]
fn the_documented_defaults_are_the_defaults() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/examples");
    let demo = std::fs::read_to_string(dir.join("demo.toml")).unwrap();
    // Tables whose commented keys show defaults (the others show examples to fill in).
    let defaults = [
        "",
        "source",
        "target",
        "target.actions",
        "escrow",
        "quarantine",
        "users",
    ];
    let mut table = String::new();
    let mut written = Vec::new();
    let text: String = demo
        .lines()
        .map(|l| {
            let body = l.strip_prefix("# ").unwrap_or(l);
            if let Some(name) = body.strip_prefix('[').and_then(|b| b.split(']').next()) {
                table = name.trim_start_matches('[').to_string();
                let on = l.starts_with("# ") && defaults.contains(&table.as_str());
                return if on { body } else { l };
            }
            let key = body.split_once(" = ").map(|(k, _)| k).unwrap_or("");
            let is_key = !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c == '_');
            let alternative = ["certificate", "private_key", "assertion_algorithm"].contains(&key);
            if l.starts_with("# ") && is_key && !alternative && defaults.contains(&table.as_str()) {
                written.push(format!("{table}.{key}"));
                body
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    for key in [
        ".deletion_threshold",
        ".deletion_max_share",
        ".log_retention_days",
        "source.page_size",
        "target.max_concurrency",
        "target.timeout_secs",
        "target.membership_batch_size",
        "target.actions.delete",
        "escrow.retry_delays",
        "quarantine.threshold_ratio",
        "users.deprovision",
    ] {
        assert!(
            written.contains(&key.to_string()),
            "{key} not written: {written:?}"
        );
    }
    let path = dir.join("demo.toml");
    let explicit = parse(&path, &text).unwrap_or_else(|e| panic!("{e:#?}\n{text}"));
    assert!(explicit.warnings.is_empty(), "{:?}", explicit.warnings);
    let implicit = parse(&path, &demo).unwrap().job;
    assert_eq!(explicit.job, implicit, "written out:\n{text}");
    assert_eq!(implicit.target.max_concurrency, DEFAULT_MAX_CONCURRENCY);
    assert_eq!(implicit.deletion_threshold, DEFAULT_DELETION_THRESHOLD);
    assert_eq!(implicit.deletion_max_share, DEFAULT_DELETION_MAX_SHARE);
}

#[test]
fn service_file_rules() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(SERVICE_FILE);
    let load = |text: &str| {
        std::fs::write(&path, text).unwrap();
        load_service(&path)
    };
    // Everything defaults: loopback, no token.
    let s = load("").unwrap();
    assert_eq!(s.admin, AdminConfig::default());
    assert_eq!(s.admin.bind, DEFAULT_ADMIN_BIND);
    assert_eq!(s.admin.bind.to_string(), "127.0.0.1:8787");
    // A literal token works, with a warning that hides it.
    let s = load("[admin]\ntoken = \"adm-hunter2\"\n").unwrap();
    assert_eq!(s.warnings.len(), 1);
    assert!(!s.warnings[0].to_string().contains("hunter2"));
    // Beyond loopback a token is required (and TLS, or an explicit `allow_plain_http`: see
    // tests/admin.rs).
    let e = load("[admin]\nbind = \"0.0.0.0:8787\"\nallow_plain_http = true\n").unwrap_err();
    assert_eq!(
        (e[0].line, e[0].column, e[0].key.as_str()),
        (2, 8, "admin.token")
    );
    assert!(
        load("[admin]\nbind = \"0.0.0.0:8787\"\ntoken = \"file:tok\"\nallow_plain_http = true\n")
            .is_ok()
    );
    let e = load("[admin]\nbind = \"localhost\"\n").unwrap_err();
    assert_eq!(e[0].key, "admin.bind");
    let e = load("[admin]\nbnd = \"127.0.0.1:1\"\n").unwrap_err();
    assert!(e[0].message.contains("did you mean `bind`"), "{}", e[0]);
    let e = load("name = \"job\"\n").unwrap_err();
    assert!(e[0].message.contains("expected one of: admin"), "{}", e[0]);
    let e = load_service(&dir.path().join("missing.toml")).unwrap_err();
    assert!(e[0].message.starts_with("cannot read the service file"));
}

#[test]
fn load_dir_loads_each_job_and_rejects_duplicate_names() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write("a.toml", BASE);
    write("b.toml", &BASE.replace("\"atmos\"", "\"tribeloo\""));
    write("c.toml", &BASE.replace("\"atmos\"", "\"tribeloo\""));
    write("d.toml", &replace("matching = 1", "matching = 0"));
    write(SERVICE_FILE, "[admin]\n");
    write("notes.txt", "not a job");
    write(".e.toml", "garbage =");
    let (jobs, errors) = load_dir(dir.path());
    let names: Vec<&str> = jobs.iter().map(|l| l.job.name.as_str()).collect();
    assert_eq!(names, ["atmos"]);
    let got: Vec<(PathBuf, usize, &str)> = errors
        .iter()
        .map(|e| {
            (
                e.file.strip_prefix(dir.path()).unwrap().to_path_buf(),
                e.line,
                e.key.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (PathBuf::from("b.toml"), 1, "name"),
            (PathBuf::from("c.toml"), 1, "name"),
            (PathBuf::from("d.toml"), 13, "users.mappings[0].matching"),
        ]
    );
    assert!(errors[0].message.contains("c.toml"), "{}", errors[0]);
    assert!(
        errors[0].message.contains("must be unique"),
        "{}",
        errors[0]
    );

    let (jobs, errors) = load_dir(&dir.path().join("nope"));
    assert!(jobs.is_empty());
    assert!(
        errors[0]
            .message
            .starts_with("cannot read the config directory")
    );
}
