//! [`SecretRef`]: where a secret lives, as written in the job file — never the secret itself
//! unless the admin wrote a literal, and then it is never shown.
//!
//! Resolving a reference (reading the environment variable or the file) happens here and only
//! here: `scimsync-core` holds the [`Secret`] wrapper and does no I/O.

use scimsync_core::Secret;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Largest `file:` secret read, 64 KiB: a token, a client secret, a PEM key or certificate is a
/// few KB. Anything longer is refused after reading at most this many bytes (one more, to tell),
/// so `file:/dev/zero` or a log file named by mistake fails at once instead of filling memory.
pub(crate) const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// Why a [`SecretRef`] could not be read. Never contains the secret's value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("environment variable {0} is not set")]
    MissingEnv(String),
    #[error("cannot read secret file {path}: {reason}")]
    File { path: String, reason: String },
    #[error(
        "secret file {path} is larger than {limit} bytes ({} KiB); a secret file holds only the secret",
        limit / 1024
    )]
    TooLarge { path: String, limit: u64 },
    #[error("secret is empty ({0})")]
    Empty(String),
}

/// A reference to a secret, not the secret: `env:NAME`, `file:PATH`, or a literal.
///
/// `Debug` and `Display` show `env:NAME` / `file:PATH`, but a literal as `[REDACTED literal]`.
/// There is deliberately no `Serialize`. The value is read only by [`SecretRef::resolve`], at
/// the moment it is needed, so rotating an environment variable or file needs no config edit.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretRef(Repr);

#[derive(Clone, PartialEq, Eq)]
enum Repr {
    Env(String),
    File(PathBuf),
    Literal(String),
}

impl SecretRef {
    /// `env:NAME`. The name is not checked here; [`SecretRef::parse`] checks it.
    pub fn env(name: impl Into<String>) -> SecretRef {
        SecretRef(Repr::Env(name.into()))
    }

    /// `file:PATH`; the file's content minus a trailing newline is the secret (at most 64 KiB).
    pub fn file(path: impl Into<PathBuf>) -> SecretRef {
        SecretRef(Repr::File(path.into()))
    }

    /// The secret itself (tests, the demo). Discouraged in files: it ends up in backups.
    pub fn literal(value: impl Into<String>) -> SecretRef {
        SecretRef(Repr::Literal(value.into()))
    }

    /// Parse a reference with the job file's rules. The error message never repeats the input.
    /// A relative `file:` path stays relative here; [`crate::load`] anchors it at the job file.
    pub fn parse(reference: &str) -> Result<SecretRef, String> {
        if let Some(name) = reference.strip_prefix("env:") {
            if valid_env_name(name) {
                Ok(SecretRef::env(name))
            } else {
                Err("expected env:NAME with NAME matching [A-Za-z_][A-Za-z0-9_]*".into())
            }
        } else if let Some(path) = reference.strip_prefix("file:") {
            if path.trim().is_empty() {
                Err("expected file:PATH with a non-empty path".into())
            } else {
                Ok(SecretRef::file(path))
            }
        } else if has_prefix_ignoring_case(reference, "env:")
            || has_prefix_ignoring_case(reference, "file:")
        {
            // `ENV:X` would otherwise be sent verbatim as the token: refuse instead of guessing.
            Err("secret reference prefixes are lowercase: env: or file:".into())
        } else if reference.is_empty() {
            Err("must not be empty; use env:NAME or file:PATH".into())
        } else {
            Ok(SecretRef::literal(reference))
        }
    }

    /// Read the secret now: the environment variable, the file's content minus a trailing
    /// newline, or the literal itself. An empty value is an error, and so is a file larger than
    /// 64 KiB ([`SecretError::TooLarge`], refused after reading that much: `file:/dev/zero`
    /// fails at once).
    pub fn resolve(&self) -> Result<Secret, SecretError> {
        let (value, origin) = match &self.0 {
            Repr::Env(name) => (read_env(name)?, format!("env:{name}")),
            Repr::File(path) => (read_file(path)?, format!("file:{}", path.display())),
            // A literal made in code may look like a reference; it stays a literal.
            Repr::Literal(value) => (value.clone(), "literal".to_string()),
        };
        if value.is_empty() {
            return Err(SecretError::Empty(origin));
        }
        Ok(Secret::new(value, origin))
    }

    /// Whether the secret is written in the file itself.
    pub fn is_literal(&self) -> bool {
        matches!(self.0, Repr::Literal(_))
    }

    /// Anchor a relative `file:` path at `dir` (the job file's directory).
    pub(crate) fn rebased(self, dir: &std::path::Path) -> SecretRef {
        match self.0 {
            Repr::File(p) if p.is_relative() && !dir.as_os_str().is_empty() => {
                SecretRef::file(dir.join(p))
            }
            other => SecretRef(other),
        }
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Env(name) => write!(f, "env:{name}"),
            Repr::File(path) => write!(f, "file:{}", path.display()),
            Repr::Literal(_) => f.write_str("[REDACTED literal]"),
        }
    }
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretRef({self})")
    }
}

fn read_env(name: &str) -> Result<String, SecretError> {
    std::env::var(name).map_err(|_| SecretError::MissingEnv(name.to_string()))
}

fn read_file(path: &Path) -> Result<String, SecretError> {
    read_file_capped(path, MAX_SECRET_FILE_BYTES)
}

/// `path`'s content as UTF-8 minus trailing newlines, reading at most `limit + 1` bytes.
fn read_file_capped(path: &Path, limit: u64) -> Result<String, SecretError> {
    let failed = |reason: String| SecretError::File {
        path: path.display().to_string(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| failed(e.to_string()))?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| failed(e.to_string()))?;
    if bytes.len() as u64 > limit {
        return Err(SecretError::TooLarge {
            path: path.display().to_string(),
            limit,
        });
    }
    let text = String::from_utf8(bytes).map_err(|_| failed("not UTF-8 text".into()))?;
    Ok(text.trim_end_matches(['\r', '\n']).to_string())
}

fn valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn has_prefix_ignoring_case(s: &str, prefix: &str) -> bool {
    s.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_redact_literals_only() {
        let lit = SecretRef::literal("hunter2-super-secret");
        assert_eq!(format!("{lit:?}"), "SecretRef([REDACTED literal])");
        assert_eq!(lit.to_string(), "[REDACTED literal]");
        assert!(!format!("{lit:#?}").contains("hunter2"));
        assert!(lit.is_literal());

        let env = SecretRef::env("GRAPH_CLIENT_SECRET");
        assert_eq!(format!("{env:?}"), "SecretRef(env:GRAPH_CLIENT_SECRET)");
        assert_eq!(env.to_string(), "env:GRAPH_CLIENT_SECRET");
        assert!(!env.is_literal());
        assert_eq!(
            SecretRef::file("/run/secrets/tok").to_string(),
            "file:/run/secrets/tok"
        );
    }

    #[test]
    fn parse_follows_the_file_rules_without_echoing_input() {
        assert_eq!(SecretRef::parse("env:A_1"), Ok(SecretRef::env("A_1")));
        assert_eq!(SecretRef::parse("file:/x"), Ok(SecretRef::file("/x")));
        assert!(SecretRef::parse("plain").is_ok_and(|s| s.is_literal()));
        for bad in [
            "env:",
            "env:1S3CR3T",
            "env:S3CR3T-X",
            "file:",
            "ENV:S3CR3T",
            "File:S3CR3T",
            "",
        ] {
            let err = SecretRef::parse(bad).unwrap_err();
            assert!(!err.contains("S3CR3T"), "{bad:?} echoed in {err:?}");
        }
    }

    #[test]
    fn resolve_reads_env_and_files_and_keeps_literals() {
        let s = SecretRef::env("PATH").resolve().unwrap();
        assert_eq!(s.expose(), std::env::var("PATH").unwrap());
        assert_eq!(
            SecretRef::env("SCIMSYNC_CONFIG_TEST_UNSET")
                .resolve()
                .unwrap_err(),
            SecretError::MissingEnv("SCIMSYNC_CONFIG_TEST_UNSET".into())
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tok"), "t0k\n").unwrap();
        let f = SecretRef::file("tok").rebased(dir.path());
        assert_eq!(f.resolve().unwrap().expose(), "t0k");
        assert_eq!(
            SecretRef::literal("env:NOT_A_REF")
                .resolve()
                .unwrap()
                .expose(),
            "env:NOT_A_REF"
        );
        assert!(SecretRef::literal("").resolve().is_err());
    }

    #[test]
    fn resolved_secrets_report_their_origin_never_their_value() {
        let s = SecretRef::env("PATH").resolve().unwrap();
        assert_eq!(s.origin(), "env:PATH");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("tok");
        std::fs::write(&p, "s3cr3t\r\n").unwrap();
        let s = SecretRef::file(&p).resolve().unwrap();
        assert_eq!(s.expose(), "s3cr3t");
        assert_eq!(s.origin(), format!("file:{}", p.display()));
        assert!(!format!("{s:?} {s}").contains("s3cr3t"));
        let s = SecretRef::parse("plain-s3cr3t").unwrap().resolve().unwrap();
        assert_eq!(s.origin(), "literal");
        assert!(!format!("{s:?} {s}").contains("s3cr3t"));
    }

    #[test]
    fn endless_and_oversized_secret_files_fail_fast_naming_the_file_and_limit() {
        let started = std::time::Instant::now();
        let err = SecretRef::file("/dev/zero").resolve().unwrap_err();
        assert_eq!(
            err,
            SecretError::TooLarge {
                path: "/dev/zero".into(),
                limit: MAX_SECRET_FILE_BYTES
            }
        );
        assert_eq!(
            err.to_string(),
            "secret file /dev/zero is larger than 65536 bytes (64 KiB); a secret file holds only \
             the secret"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(5));

        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'k'; MAX_SECRET_FILE_BYTES as usize + 1]).unwrap();
        assert!(matches!(
            SecretRef::file(&big).resolve().unwrap_err(),
            SecretError::TooLarge { path, .. } if path == big.display().to_string()
        ));
        // Exactly the limit is fine (a trailing newline is still trimmed).
        let mut at_limit = vec![b'k'; MAX_SECRET_FILE_BYTES as usize - 1];
        at_limit.push(b'\n');
        std::fs::write(&big, at_limit).unwrap();
        let s = SecretRef::file(&big).resolve().unwrap();
        assert_eq!(s.expose().len(), MAX_SECRET_FILE_BYTES as usize - 1);

        let binary = dir.path().join("bin");
        std::fs::write(&binary, [0xff, 0xfe, 0x00]).unwrap();
        assert!(matches!(
            SecretRef::file(&binary).resolve().unwrap_err(),
            SecretError::File { reason, .. } if reason == "not UTF-8 text"
        ));
    }

    #[test]
    fn unreadable_and_empty_secrets_are_errors_without_the_value() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        assert_eq!(
            SecretRef::file(&empty).resolve().unwrap_err(),
            SecretError::Empty(format!("file:{}", empty.display()))
        );
        let missing = dir.path().join("missing");
        assert!(matches!(
            SecretRef::file(&missing).resolve().unwrap_err(),
            SecretError::File { path, .. } if path == missing.display().to_string()
        ));
        assert_eq!(
            SecretRef::literal("").resolve().unwrap_err(),
            SecretError::Empty("literal".into())
        );
    }
}
