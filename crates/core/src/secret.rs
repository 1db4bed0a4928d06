//! Secrets (client secrets, bearer tokens): the wrapper that keeps them out of sight.
//!
//! A [`Secret`] never prints its value: `Debug` and `Display` show only its origin
//! (`env:NAME`, `file:PATH`, `literal`, `inline`), and it has no `Serialize`, so it cannot reach
//! state, logs or previews by accident. The one way out is [`Secret::expose`].
//!
//! This crate does no I/O: reading a secret from the environment or a file is
//! `scimsync_config::SecretRef::resolve`'s job, which hands the value over with
//! [`Secret::new`].

use secrecy::{ExposeSecret, SecretString};
use std::fmt;

#[derive(Clone)]
pub struct Secret {
    value: SecretString,
    origin: String,
}

impl Secret {
    /// A secret read from `origin` (`env:NAME`, `file:PATH`, `literal`). The origin is shown
    /// wherever the secret is printed, so it must never contain the value.
    pub fn new(value: impl Into<String>, origin: impl Into<String>) -> Secret {
        Secret {
            value: SecretString::from(value.into()),
            origin: origin.into(),
        }
    }

    /// A secret made in code (tests, the demo). Its origin reads `inline`.
    pub fn inline(value: impl Into<String>) -> Secret {
        Secret::new(value, "inline")
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
        assert_eq!(s.origin(), "inline");
    }

    #[test]
    fn the_origin_is_shown_and_the_value_is_not() {
        let s = Secret::new("tok-123", "env:API_TOKEN");
        assert_eq!(s.origin(), "env:API_TOKEN");
        assert_eq!(format!("{s:?}"), "Secret([REDACTED] from env:API_TOKEN)");
        assert_eq!(s.to_string(), "[REDACTED] (env:API_TOKEN)");
        assert_eq!(s.expose(), "tok-123");
    }
}
