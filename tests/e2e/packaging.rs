//! The packaging files keep their promises: the Dockerfile is multi-stage, builds without the
//! demo's emulators, runs as a non-root user with a state volume and a health check on the
//! admin API; the systemd unit is hardened. (CI runs `systemd-analyze verify` on the unit
//! where it exists; no container engine runs here, so the image is not built.)

use std::path::Path;

fn read(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The Dockerfile's instructions, continuation lines joined, comments dropped.
fn instructions(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('#') || (t.is_empty() && current.is_empty()) {
            continue;
        }
        match t.strip_suffix('\\') {
            Some(rest) => {
                current.push_str(rest);
                current.push(' ');
            }
            None => {
                current.push_str(t);
                let (op, args) = current.split_once(' ').unwrap_or((&current, ""));
                out.push((op.to_uppercase(), args.trim().to_string()));
                current.clear();
            }
        }
    }
    out
}

#[test]
fn the_dockerfile_is_multi_stage_non_root_with_a_volume_and_a_health_check() {
    let ins = instructions(&read("Dockerfile"));
    let all = |op: &str| -> Vec<&str> {
        ins.iter()
            .filter(|(o, _)| o == op)
            .map(|(_, a)| a.as_str())
            .collect()
    };
    let from = all("FROM");
    assert_eq!(from.len(), 2, "{from:?}");
    assert!(
        from[0].starts_with("rust:") && from[0].ends_with(" AS build"),
        "{from:?}"
    );
    assert!(
        from[1].starts_with("debian:") && from[1].contains("slim"),
        "{from:?}"
    );
    let build = all("RUN").join("\n");
    assert!(
        build.contains("cargo build --release --locked --no-default-features"),
        "the image is built without the demo feature: {build}"
    );
    assert!(
        all("COPY").iter().any(|c| c.starts_with("--from=build ")),
        "the runtime stage takes only the binary"
    );
    // The last USER, in the runtime stage, is not root.
    let runtime_start = ins.iter().rposition(|(o, _)| o == "FROM").unwrap();
    let user = ins[runtime_start..]
        .iter()
        .rev()
        .find(|(o, _)| o == "USER")
        .map(|(_, a)| a.clone())
        .expect("a USER in the runtime stage");
    let name = user.split(':').next().unwrap();
    assert!(name != "root" && name != "0", "{user}");
    assert_eq!(all("VOLUME"), ["[\"/var/lib/scimsync\"]"]);
    let health = all("HEALTHCHECK");
    assert_eq!(health.len(), 1);
    assert!(
        health[0].contains("CMD") && health[0].contains("/healthz"),
        "{health:?}"
    );
    let cmd = all("CMD").join(" ");
    assert!(
        cmd.contains("\"serve\"") && cmd.contains("\"/var/lib/scimsync\""),
        "{cmd}"
    );
    let ignore = read(".dockerignore");
    assert!(ignore.lines().any(|l| l.trim() == "target"), "{ignore}");
}

#[test]
fn the_systemd_unit_is_hardened() {
    let unit = read("packaging/systemd/scimsync.service");
    let lines: Vec<&str> = unit
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .collect();
    for want in [
        "DynamicUser=yes",
        "StateDirectory=scimsync",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "PrivateDevices=yes",
        "CapabilityBoundingSet=",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "SystemCallFilter=@system-service",
        "RestrictNamespaces=yes",
        "MemoryDenyWriteExecute=yes",
        "RestartPreventExitStatus=2",
    ] {
        assert!(lines.contains(&want), "{want} missing");
    }
    let exec = lines
        .iter()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    // The state lives where StateDirectory= puts it.
    assert!(
        exec.contains(" serve ") && exec.contains("--state /var/lib/scimsync"),
        "{exec}"
    );
}

#[test]
fn the_emulators_are_behind_the_demo_feature() {
    let cli = read("crates/cli/Cargo.toml");
    let dep = cli
        .lines()
        .find(|l| l.starts_with("scimsync-testkit") && l.contains("optional"))
        .expect("scimsync-testkit is an optional dependency of the CLI");
    assert!(dep.contains("optional = true"), "{dep}");
    assert!(cli.contains("demo = [\"dep:scimsync-testkit\"]"), "{cli}");
    let root = read("Cargo.toml");
    assert!(root.contains("default-features = false"), "{root}");
    assert!(root.contains("demo = [\"scimsync-cli/demo\"]"), "{root}");
}
