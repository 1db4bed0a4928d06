//! Secrets (client secrets, bearer tokens) and where they come from.
//!
//! A [`Secret`] never prints its value: `Debug` and `Display` show only its origin
//! (`env:NAME`, `file:PATH`, `literal`), and it has no `Serialize`, so it cannot reach state,
//! logs or previews by accident. The one way out is [`Secret::expose`].

use secrecy::{ExposeSecret, SecretString};
use std::fmt;

#[derive(Clone)]
pub struct Secret {
    value: SecretString,
    origin: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("environment variable {0} is not set")]
    MissingEnv(String),
    #[error("cannot read secret file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("secret is empty ({0})")]
    Empty(String),
}

impl Secret {
    /// Resolve a secret reference: `env:NAME`, `file:PATH`, or (discouraged) a literal.
    /// Returns the secret and whether it was a literal, so the caller can warn.
    pub fn resolve(reference: &str) -> Result<(Secret, bool), SecretError> {
        let (value, origin, literal) = if let Some(name) = reference.strip_prefix("env:") {
            let v = std::env::var(name).map_err(|_| SecretError::MissingEnv(name.to_string()))?;
            (v, format!("env:{name}"), false)
        } else if let Some(path) = reference.strip_prefix("file:") {
            let v = std::fs::read_to_string(path).map_err(|e| SecretError::File {
                path: path.to_string(),
                reason: e.to_string(),
            })?;
            (
                v.trim_end_matches(['\r', '\n']).to_string(),
                format!("file:{path}"),
                false,
            )
        } else {
            (reference.to_string(), "literal".to_string(), true)
        };
        if value.is_empty() {
            return Err(SecretError::Empty(origin));
        }
        Ok((
            Secret {
                value: SecretString::from(value),
                origin,
            },
            literal,
        ))
    }

    /// A secret made in code (tests, the demo). Its origin reads `inline`.
    pub fn inline(value: impl Into<String>) -> Secret {
        Secret {
            value: SecretString::from(value.into()),
            origin: "inline".into(),
        }
    }

    /// The value, for the one place that must send it (an HTTP header or a token request).
    pub fn expose(&self) -> &str {
        self.value.expose_secret()
    }

    /// Where the value came from, safe to show.
    pub fn origin(&self) -> &str {
        &self.origin
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret([REDACTED] from {})", self.origin)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[REDACTED] ({})", self.origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = Secret::inline("hunter2-very-secret");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(!format!("{s}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2-very-secret");
    }

    #[test]
    fn env_reference_resolves_and_reports_origin() {
        // PATH is set wherever tests run; edition 2024 makes set_var unsafe, which we forbid.
        let (s, literal) = Secret::resolve("env:PATH").unwrap();
        assert!(!literal);
        assert_eq!(s.expose(), std::env::var("PATH").unwrap());
        assert_eq!(s.origin(), "env:PATH");
        assert_eq!(
            Secret::resolve("env:SCIMSYNC_TEST_SECRET_MISSING").unwrap_err(),
            SecretError::MissingEnv("SCIMSYNC_TEST_SECRET_MISSING".into())
        );
    }

    #[test]
    fn file_reference_strips_the_trailing_newline() {
        let dir = std::env::temp_dir().join(format!("scimsync-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("tok");
        std::fs::write(&p, "tok-123\n").unwrap();
        let (s, literal) = Secret::resolve(&format!("file:{}", p.display())).unwrap();
        assert!(!literal);
        assert_eq!(s.expose(), "tok-123");
    }

    #[test]
    fn literal_is_flagged() {
        let (_, literal) = Secret::resolve("plain-text").unwrap();
        assert!(literal);
    }
}
