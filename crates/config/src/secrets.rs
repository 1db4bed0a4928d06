//! Checking that a job's secrets can be read: every reference keeps the place it is written,
//! so an unset `env:` variable or a missing `file:` is reported at its own file:line:column and
//! key, like any other config error — and never with the value.

use crate::{ConfigError, Loaded, SecretRef};
use std::path::PathBuf;

/// One secret reference and where the job file writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSite {
    /// The dotted key, e.g. `source.client_secret` or `notifications.smtp.password`.
    pub key: String,
    pub file: PathBuf,
    /// 1-based position of the value.
    pub line: usize,
    pub column: usize,
    /// As parsed (a relative `file:` already anchored at the job file's directory).
    pub reference: SecretRef,
}

impl SecretSite {
    /// Read the secret now and drop it: `Err` (at this key) when it cannot be read.
    pub fn check(&self) -> Result<(), ConfigError> {
        match self.reference.resolve() {
            Ok(_) => Ok(()),
            // `SecretError` names the variable or the file and the reason, never the value.
            Err(e) => Err(ConfigError {
                file: self.file.clone(),
                line: self.line,
                column: self.column,
                key: self.key.clone(),
                message: format!("cannot read the secret: {e}"),
            }),
        }
    }
}

impl Loaded {
    /// Resolve every secret reference of the job (the values are dropped at once) and return
    /// one error per reference that cannot be read, in file order.
    pub fn unreadable_secrets(&self) -> Vec<ConfigError> {
        self.secrets
            .iter()
            .filter_map(|s| s.check().err())
            .collect()
    }
}
