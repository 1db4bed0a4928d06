//! `[admin]` transport settings in the service file: `tls_cert` / `tls_key`, and the refusal of
//! a plain-HTTP `bind` beyond loopback unless `allow_plain_http = true`.

use scimsync_config::*;

struct Dir {
    dir: tempfile::TempDir,
}

impl Dir {
    fn new() -> Dir {
        Dir {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn load(&self, text: &str) -> Result<ServiceConfig, Vec<ConfigError>> {
        let path = self.dir.path().join(SERVICE_FILE);
        std::fs::write(&path, text).unwrap();
        load_service(&path)
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.dir.path().join(name), text).unwrap();
    }
}

fn keys(e: &[ConfigError]) -> Vec<(usize, usize, &str)> {
    e.iter()
        .map(|e| (e.line, e.column, e.key.as_str()))
        .collect()
}

#[test]
fn plain_http_beyond_loopback_is_refused_unless_allowed() {
    let d = Dir::new();
    let e = d
        .load("[admin]\nbind = \"0.0.0.0:8787\"\ntoken = \"env:T\"\n")
        .unwrap_err();
    assert_eq!(keys(&e), [(2, 8, "admin.bind")]);
    assert!(e[0].message.contains("without TLS"), "{}", e[0]);
    assert!(e[0].message.contains("tls_cert and tls_key"), "{}", e[0]);
    assert!(e[0].message.contains("allow_plain_http = true"), "{}", e[0]);
    // IPv6 and a specific address are beyond loopback as well.
    for bind in ["[::]:8787", "10.1.2.3:8787"] {
        let e = d
            .load(&format!("[admin]\nbind = \"{bind}\"\ntoken = \"env:T\"\n"))
            .unwrap_err();
        assert_eq!(keys(&e), [(2, 8, "admin.bind")], "{bind}");
    }

    // Allowed explicitly: loads, with a warning saying what it costs.
    let s = d
        .load("[admin]\nbind = \"0.0.0.0:8787\"\ntoken = \"env:T\"\nallow_plain_http = true\n")
        .unwrap();
    assert!(s.admin.allow_plain_http);
    assert!(s.admin.tls.is_none());
    assert_eq!(keys(&s.warnings), [(4, 20, "admin.allow_plain_http")]);
    assert!(s.warnings[0].message.contains("in clear"));

    // Loopback needs neither, and `allow_plain_http = false` is the default.
    for bind in ["127.0.0.1:8787", "[::1]:8787", "127.0.0.5:1"] {
        let s = d
            .load(&format!(
                "[admin]\nbind = \"{bind}\"\nallow_plain_http = false\n"
            ))
            .unwrap();
        assert!(!s.admin.allow_plain_http && s.warnings.is_empty(), "{bind}");
    }
    assert!(!AdminConfig::default().allow_plain_http);
    let e = d.load("[admin]\nallow_plain_http = \"yes\"\n").unwrap_err();
    assert_eq!(e[0].key, "admin.allow_plain_http");
}

#[test]
fn tls_cert_and_key_load_relative_to_the_service_file() {
    let d = Dir::new();
    let s = d
        .load(
            "[admin]\nbind = \"0.0.0.0:8443\"\ntoken = \"env:T\"\n\
             tls_cert = \"file:tls/cert.pem\"\ntls_key = \"file:/etc/scimsync/key.pem\"\n",
        )
        .unwrap();
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    let tls = s.admin.tls.expect("tls");
    assert_eq!(
        tls.cert.to_string(),
        format!("file:{}", d.dir.path().join("tls/cert.pem").display())
    );
    assert_eq!(tls.key.to_string(), "file:/etc/scimsync/key.pem");
    // An env variable may hold the PEM text.
    let s = d
        .load("[admin]\ntls_cert = \"env:ADMIN_CERT\"\ntls_key = \"env:ADMIN_KEY\"\n")
        .unwrap();
    assert_eq!(s.admin.tls.unwrap().key.to_string(), "env:ADMIN_KEY");
    // With TLS, allow_plain_http means nothing, and says so.
    let s = d
        .load(
            "[admin]\ntls_cert = \"file:c.pem\"\ntls_key = \"file:k.pem\"\nallow_plain_http = true\n",
        )
        .unwrap();
    assert_eq!(keys(&s.warnings), [(4, 20, "admin.allow_plain_http")]);
    assert!(s.warnings[0].message.contains("no effect"));
}

#[test]
fn tls_mistakes_are_reported_at_their_key_without_the_value() {
    let d = Dir::new();
    let e = d.load("[admin]\ntls_cert = \"file:c.pem\"\n").unwrap_err();
    assert_eq!(keys(&e), [(2, 12, "admin.tls_cert")]);
    assert!(e[0].message.contains("needs tls_key"), "{}", e[0]);
    let e = d.load("[admin]\ntls_key = \"file:k.pem\"\n").unwrap_err();
    assert_eq!(keys(&e), [(2, 11, "admin.tls_key")]);
    assert!(e[0].message.contains("needs tls_cert"), "{}", e[0]);

    // The PEM text itself, or a bare path, is not a reference: refused, and not echoed.
    let e = d
        .load(
            "[admin]\ntls_cert = \"file:c.pem\"\n\
             tls_key = \"-----BEGIN PRIVATE KEY-----hunter2\"\n",
        )
        .unwrap_err();
    assert_eq!(keys(&e), [(3, 11, "admin.tls_key")]);
    assert!(e[0].message.contains("expected file:PATH"), "{}", e[0]);
    assert!(!format!("{e:?}").contains("hunter2"));
    let e = d
        .load("[admin]\ntls_cert = \"/etc/cert.pem\"\ntls_key = \"file:k.pem\"\n")
        .unwrap_err();
    assert_eq!(keys(&e), [(2, 12, "admin.tls_cert")]);
    let e = d
        .load("[admin]\ntls_cert = \"FILE:c.pem\"\ntls_key = \"env:1X\"\n")
        .unwrap_err();
    assert_eq!(
        keys(&e),
        [(2, 12, "admin.tls_cert"), (3, 11, "admin.tls_key")]
    );
    // A serde type error on the key does not quote it either.
    let e = d.load("[admin]\ntls_key = 12345678\n").unwrap_err();
    assert_eq!(e[0].key, "admin.tls_key");
    assert!(!e[0].message.contains("12345678"), "{}", e[0]);
    // A bad tls_cert does not add "beyond loopback without TLS" on top.
    let e = d
        .load("[admin]\nbind = \"0.0.0.0:1\"\ntoken = \"env:T\"\ntls_cert = \"c.pem\"\n")
        .unwrap_err();
    assert_eq!(keys(&e), [(4, 12, "admin.tls_cert")]);
}

#[test]
fn reading_the_pem_files_reports_errors_at_their_keys() {
    let d = Dir::new();
    d.write(
        "cert.pem",
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    );
    d.write(
        "key.pem",
        "-----BEGIN PRIVATE KEY-----\nsecretbits\n-----END PRIVATE KEY-----\n",
    );
    let s = d
        .load("[admin]\ntls_cert = \"file:cert.pem\"\ntls_key = \"file:key.pem\"\n")
        .unwrap();
    let tls = s.admin.tls.unwrap();
    let pem = tls.read().unwrap();
    assert!(pem.cert.starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(pem.key.expose().contains("secretbits"));
    // Neither Debug nor Display of the settings shows the key.
    assert!(!format!("{tls:?} {:?} {}", pem.key, pem.key).contains("secretbits"));

    // Errors found later (by the TLS stack) point at the key that names the file.
    let e = tls.key_error("does not belong to the certificate");
    assert_eq!((e.line, e.column, e.key.as_str()), (3, 11, "admin.tls_key"));
    assert_eq!(e.file, d.dir.path().join(SERVICE_FILE));
    let e = tls.cert_error("no CERTIFICATE section");
    assert_eq!(
        (e.line, e.column, e.key.as_str()),
        (2, 12, "admin.tls_cert")
    );
    assert!(
        e.to_string()
            .contains(":2:12: admin.tls_cert: no CERTIFICATE"),
        "{e}"
    );

    let s = d
        .load("[admin]\ntls_cert = \"file:missing.pem\"\ntls_key = \"file:gone.pem\"\n")
        .unwrap();
    let e = s.admin.tls.unwrap().read().unwrap_err();
    assert_eq!(
        keys(&e),
        [(2, 12, "admin.tls_cert"), (3, 11, "admin.tls_key")]
    );
    assert!(e[0].message.contains("missing.pem"), "{}", e[0]);
    assert!(
        e[1].message.contains("cannot read the private key"),
        "{}",
        e[1]
    );
}
