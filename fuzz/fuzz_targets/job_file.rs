//! Fuzz target `job_file`: arbitrary text as a job file must never panic parsing and
//! validation; a valid job has a fingerprint, and every error points into the text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("/etc/scimsync/fuzz.toml");
    match scimsync_config::parse(path, text) {
        Ok(loaded) => {
            assert_eq!(loaded.job.fingerprint().len(), 64, "a hex SHA-256");
            for w in &loaded.warnings {
                let _ = w.to_string();
            }
        }
        Err(errors) => {
            assert!(!errors.is_empty(), "a refused file says why");
            let lines = text.split('\n').count();
            for e in &errors {
                assert!(e.line <= lines, "{e} points past the end ({lines} lines)");
                let _ = e.to_string();
            }
        }
    }
    if let Ok(secret) = scimsync_config::SecretRef::parse(text) {
        let _ = secret.to_string();
    }
});
