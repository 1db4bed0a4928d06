//! `[store]` in the service file: the PostgreSQL URL and its password as secret references.

use scimsync_config::*;

fn load(text: &str) -> Result<ServiceConfig, Vec<ConfigError>> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(SERVICE_FILE);
    std::fs::write(&path, text).unwrap();
    load_service(&path)
}

#[test]
fn no_store_section_means_sled() {
    assert_eq!(load("[admin]\n").unwrap().store, None);
}

#[test]
fn url_and_password_are_secret_references() {
    let s = load(
        "[store]\nurl = \"postgres://scimsync@db.internal/scimsync\"\npassword = \"env:PGPW\"\n",
    )
    .unwrap();
    let store = s.store.unwrap();
    assert_eq!(store.password, Some(SecretRef::env("PGPW")));
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    let s = load("[store]\nurl = \"env:SCIMSYNC_STORE_URL\"\n").unwrap();
    assert_eq!(s.store.unwrap().url, SecretRef::env("SCIMSYNC_STORE_URL"));
}

#[test]
fn a_password_in_a_literal_url_is_warned_about_and_never_shown() {
    let s = load("[store]\nurl = \"postgres://app:Very-Secret-Pw@db/x\"\n").unwrap();
    assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
    assert_eq!(s.warnings[0].key, "store.url");
    assert!(!s.warnings[0].to_string().contains("Very-Secret-Pw"));
    assert!(!format!("{:?}", s.store).contains("Very-Secret-Pw"));
}

#[test]
fn a_store_without_url_is_an_error_at_its_key() {
    let e = load("[store]\npassword = \"env:PGPW\"\n").unwrap_err();
    assert_eq!(e[0].key, "store.url");
    let e = load("[store]\nurl = \"postgres://db/x\"\nhost = \"db\"\n").unwrap_err();
    assert!(e.iter().any(|e| e.key.contains("store.host")), "{e:?}");
}

#[test]
fn lease_ttl_defaults_to_30s_and_reads_durations() {
    let s = load("[store]\nurl = \"env:U\"\n").unwrap();
    assert_eq!(s.store.unwrap().lease_ttl, DEFAULT_LEASE_TTL);
    let s = load("[store]\nurl = \"env:U\"\nlease_ttl = \"3s\"\n").unwrap();
    assert_eq!(
        s.store.unwrap().lease_ttl,
        std::time::Duration::from_secs(3)
    );
    let e = load("[store]\nurl = \"env:U\"\nlease_ttl = \"soon\"\n").unwrap_err();
    assert!(e.iter().any(|e| e.key == "store.lease_ttl"), "{e:?}");
}
