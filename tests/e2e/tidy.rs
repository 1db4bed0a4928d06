//! Architecture invariants a machine can check (see ARCHITECTURE.md).

use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out
}

#[test]
fn every_source_file_starts_with_a_module_doc() {
    let mut missing = Vec::new();
    for dir in ["crates", "src", "tests", "benches"] {
        for f in rust_files(&root().join(dir)) {
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            if !text.trim_start().starts_with("//!") {
                missing.push(f.strip_prefix(root()).unwrap_or(&f).display().to_string());
            }
        }
    }
    assert!(
        missing.is_empty(),
        "files without a leading //! doc: {missing:?}"
    );
}

/// The pure crates do no I/O: they may not depend on an HTTP client, a runtime or a store.
#[test]
fn pure_crates_have_no_io_dependencies() {
    for krate in ["core", "mapping"] {
        let manifest =
            std::fs::read_to_string(root().join("crates").join(krate).join("Cargo.toml")).unwrap();
        let deps = manifest
            .split("[dependencies]")
            .nth(1)
            .unwrap_or("")
            .split("\n[")
            .next()
            .unwrap_or("");
        for banned in ["reqwest", "tokio", "sled", "axum", "hyper"] {
            assert!(!deps.contains(banned), "crates/{krate} depends on {banned}");
        }
    }
}

/// Only the scim crate builds SCIM JSON: no other library crate names the PatchOp schema.
#[test]
fn only_the_scim_crate_speaks_scim_json() {
    for krate in ["core", "mapping", "engine", "config", "graph", "store"] {
        for f in rust_files(&root().join("crates").join(krate).join("src")) {
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            assert!(
                !text.contains("urn:ietf:params:scim:api:messages"),
                "{} builds SCIM messages",
                f.display()
            );
        }
    }
}

/// The engine never reads the system clock: time comes from the `Clock` it is given.
#[test]
fn the_engine_never_reads_the_clock() {
    for f in rust_files(&root().join("crates/engine/src")) {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        assert!(
            !text.contains("Utc::now") && !text.contains("SystemTime::now"),
            "{} reads the clock",
            f.display()
        );
    }
}
