//! `scimsync demo` leaves its job file and state in `--dir` and ends with the commands to
//! explore them; those commands work on what it left.

use crate::support::*;

#[test]
fn the_demo_keeps_its_state_for_logs_and_status() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("demo");
    let d = dir.to_str().unwrap();
    let out = scimsync(&["demo", "--users", "40", "--dir", d]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains(&format!("The job file and state stay in {d}")),
        "{shown}"
    );
    let logs_cmd = format!("scimsync logs --job demo --state {d}/state");
    assert!(shown.contains(&logs_cmd), "{shown}");
    assert!(dir.join("demo.toml").is_file());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("scim-token"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the demo's secrets are private: {mode:o}");
    }

    // What it printed, run as printed.
    let state = format!("{d}/state");
    let out = scimsync(&["logs", "--job", "demo", "--state", &state]);
    assert!(out.status.success(), "{}", text(&out));
    let out = scimsync(&[
        "logs", "--job", "demo", "--state", &state, "--user", "new.hire",
    ]);
    let logs = text(&out);
    assert!(out.status.success(), "{logs}");
    assert!(
        logs.contains("new.hire"),
        "the new hire's create is in the log: {logs}"
    );
    let config = format!("{d}/demo.toml");
    let out = scimsync(&["status", "--config", &config, "--state", &state]);
    assert!(out.status.success(), "{}", text(&out));

    // A second demo reuses its directory; a directory that is not a demo's is refused.
    let out = scimsync(&["demo", "--users", "40", "--dir", d]);
    assert!(out.status.success(), "{}", text(&out));
    let other = parent.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("keep.txt"), "mine").unwrap();
    let out = scimsync(&["demo", "--users", "40", "--dir", other.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("holds no earlier demo"),
        "{}",
        text(&out)
    );
    assert_eq!(
        std::fs::read_to_string(other.join("keep.txt")).unwrap(),
        "mine"
    );
}
