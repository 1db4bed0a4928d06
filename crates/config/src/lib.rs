//! Job configuration: one TOML file per provisioning job (one target app).
//!
//! Admins write these files by hand and keep them for years, so the key names are a contract
//! and unknown keys are errors, not silently ignored. [`load`] and [`parse`] report every
//! problem they can find in one go, each as a [`ConfigError`] naming file, line, column and key
//! (`users.mappings[2].apply`, indices 0-based). Secrets are held as [`SecretRef`]s and never
//! appear in errors, warnings or `Debug` output.
//!
//! Choices where the reference leaves room (documented here because admins will hit them):
//! - Relative `file:` secret paths are relative to the job file's directory, not the process's.
//! - Trailing `/` on URLs is dropped; plain `http` is accepted only for loopback hosts.
//! - Target attribute names are compared case-insensitively (SCIM attribute names are), so
//!   `ID` is as forbidden as `id`, and `userName`/`username` are duplicates.
//! - `matching` is refused on constant and None mappings: every user would match one object.
//! - `default` on a constant mapping is a warning (it can never apply), not an error.

mod error;
mod raw;
mod schedule;
mod schema;
mod secret_ref;
mod validate;

pub use error::ConfigError;
pub use schedule::{DEFAULT_INTERVAL, Schedule};
pub use secret_ref::SecretRef;

use scimsync_core::UserScope;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_GRAPH_URL: &str = "https://graph.microsoft.com";
pub const DEFAULT_LOGIN_URL: &str = "https://login.microsoftonline.com";
/// Graph's largest page for `/users`.
pub const DEFAULT_PAGE_SIZE: u32 = 999;
pub const DEFAULT_MAX_CONCURRENCY: usize = 4;
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// One provisioning job, validated, with defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct JobConfig {
    /// The file it came from (as given to [`load`]/[`parse`]).
    pub path: PathBuf,
    /// The job id: `[A-Za-z0-9_-]+`.
    pub name: String,
    pub schedule: Schedule,
    /// Entra's `SkipOutOfScopeDeletions`: users leaving scope are left alone, not disabled.
    pub skip_out_of_scope_deletions: bool,
    pub source: SourceConfig,
    pub target: TargetConfig,
    pub users: UsersConfig,
}

/// Microsoft Graph, the identity source.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceConfig {
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: SecretRef,
    /// The enterprise app's service principal object id; always set when `scope` is `Assigned`.
    pub service_principal_id: Option<String>,
    pub scope: ScopeSetting,
    /// Without a trailing `/`.
    pub graph_url: String,
    /// Without a trailing `/`.
    pub login_url: String,
    /// 1..=999.
    pub page_size: u32,
}

impl SourceConfig {
    /// The scope as the source trait wants it.
    pub fn user_scope(&self) -> UserScope {
        match self.scope {
            ScopeSetting::All => UserScope::All,
            ScopeSetting::Assigned => UserScope::Assigned {
                service_principal_id: self.service_principal_id.clone().unwrap_or_default(),
            },
        }
    }
}

/// Entra's "Scope": all users, or only those assigned to the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScopeSetting {
    All,
    #[default]
    Assigned,
}

/// The app's SCIM endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetConfig {
    /// Entra's "Tenant URL", without a trailing `/`.
    pub url: String,
    /// Entra's "Secret Token".
    pub token: SecretRef,
    pub dialect: DialectSetting,
    /// 1..=64.
    pub max_concurrency: usize,
    pub timeout: Duration,
    pub actions: TargetActions,
}

/// Which SCIM PATCH dialect to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DialectSetting {
    /// RFC 7644 (Entra with the `aadOptscim062020` flag).
    #[default]
    Rfc,
    /// Entra's default dialect.
    Entra,
}

/// Entra's "Target Object Actions".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetActions {
    pub create: bool,
    pub update: bool,
    /// `DELETE` on a hard delete at the source.
    pub delete: bool,
}

impl Default for TargetActions {
    fn default() -> Self {
        TargetActions {
            create: true,
            update: true,
            delete: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct UsersConfig {
    pub mappings: Vec<Mapping>,
}

/// One attribute mapping (`[[users.mappings]]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    /// The SCIM attribute path written to, e.g. `userName` or
    /// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department`.
    pub target: String,
    pub value: MappingValue,
    /// Matching precedence: 1 is tried first. Unique across mappings.
    pub matching: Option<u32>,
    pub apply: Apply,
    /// Used on create only, when the value is null.
    pub default: Option<String>,
    pub required: bool,
    /// 1-based line of this entry in the file, for later errors.
    pub line: usize,
}

/// Where a mapping's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MappingValue {
    /// An Entra source attribute, copied as is.
    Direct {
        source: String,
    },
    Constant {
        value: String,
    },
    /// Reserved: accepted by the parser, refused by validation until expressions land.
    Expression {
        text: String,
    },
    /// Nothing flows, except the `default` on create.
    None,
}

/// Entra's "Apply this mapping".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Apply {
    #[default]
    Always,
    /// Only during object creation.
    CreateOnly,
}

/// A valid job and the warnings it raised (e.g. a literal secret in the file).
#[derive(Debug, Clone)]
pub struct Loaded {
    pub job: JobConfig,
    pub warnings: Vec<ConfigError>,
}

/// Read and validate a job file, reporting all problems found.
pub fn load(path: &Path) -> Result<Loaded, Vec<ConfigError>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![ConfigError {
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            key: String::new(),
            message: format!("cannot read the job file: {e}"),
        }]
    })?;
    parse(path, &text)
}

/// Validate job file text; `path` is used in errors and to anchor relative `file:` secrets.
pub fn parse(path: &Path, text: &str) -> Result<Loaded, Vec<ConfigError>> {
    validate::parse(path, text)
}
