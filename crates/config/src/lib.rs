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
//! - Likewise SMTP credentials need TLS (`tls = "starttls"`, the default, or `"implicit"`, the
//!   default on port 465); `tls = "none"` (or `starttls = false`) only without a username, or to
//!   a loopback host (localhost, 127.0.0.0/8, ::1).
//! - `load` only parses secret references; [`Loaded::unreadable_secrets`] reads each one (as
//!   `scimsync validate` does unless `--offline`) and reports those that cannot be read at
//!   their own key, never with their value.
//! - Target attribute names are compared case-insensitively (SCIM attribute names are), so
//!   `ID` is as forbidden as `id`, and `userName`/`username` are duplicates.
//! - `matching` is refused on constant and None mappings: every user would match one object.
//! - `default` on a constant mapping is a warning (it can never apply), not an error.
//! - `deletion_threshold` defaults to 500 (Entra's portal offers the check with 500; §2.6).
//! - `group_members_removal` follows the dialect unless set: `rfc` → `members[value eq "id"]`
//!   paths, `entra` → Entra's `members` path with a value list.
//! - `[admin]` lives in the service file `scimsync.toml`, not in job files: it is one per
//!   config directory, and [`load_dir`] skips that file.

mod dir;
pub mod entra_schema;
mod error;
mod fingerprint;
mod operator;
mod raw;
mod schedule;
mod schema;
mod scim_names;
mod secret_ref;
mod secrets;
mod smtp;
mod validate;

pub use dir::{AdminTls, AdminTlsPem, SERVICE_FILE, load_dir, load_service};
pub use error::ConfigError;
pub use operator::Operator;
pub use schedule::{DEFAULT_INTERVAL, Schedule};
pub use secret_ref::{SecretError, SecretRef};
pub use secrets::SecretSite;

use scimsync_core::UserScope;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

// The defaults the clients and the engine apply as well are declared in core; these names
// are the job file's.
pub use scimsync_core::defaults::{
    DELETION_MAX_SHARE as DEFAULT_DELETION_MAX_SHARE,
    DELETION_THRESHOLD as DEFAULT_DELETION_THRESHOLD, GRAPH_PAGE_SIZE as DEFAULT_PAGE_SIZE,
    GRAPH_URL as DEFAULT_GRAPH_URL, LOGIN_URL as DEFAULT_LOGIN_URL,
    MEMBERSHIP_BATCH_SIZE as DEFAULT_MEMBERSHIP_BATCH_SIZE,
    TARGET_MAX_CONCURRENCY as DEFAULT_MAX_CONCURRENCY, TARGET_TIMEOUT as DEFAULT_TIMEOUT,
};
pub const DEFAULT_LOG_RETENTION_DAYS: u32 = 30;
/// `[admin] bind`: loopback only, so a default install exposes nothing.
pub const DEFAULT_ADMIN_BIND: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::LOCALHOST,
    8787,
));
/// `[notifications.smtp] port` (submission); 465 when `tls = "implicit"` is meant.
pub const DEFAULT_SMTP_PORT: u16 = 587;

const HOUR: u64 = 3_600;
const DAY: u64 = 24 * HOUR;

/// One provisioning job, validated, with defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct JobConfig {
    /// The file it came from (as given to [`load`]/[`parse`]).
    pub path: PathBuf,
    /// The job id: `[A-Za-z0-9_-]+`.
    pub name: String,
    pub schedule: Schedule,
    /// Entra's `SkipOutOfScopeDeletions`: users leaving scope are left alone, not disabled.
    /// The effective value, whether written at the top level or in `[users]`.
    pub skip_out_of_scope_deletions: bool,
    /// Entra's accidental-deletions prevention: the most users + groups a cycle may disable or
    /// delete before it holds them all back and quarantines the job. `0` turns the check off.
    pub deletion_threshold: u32,
    /// Beyond Entra: a cycle that would disable or delete more than this share (percent) of
    /// the provisioned, active objects is held however small the job (a 40-user app is not
    /// protected by a count of 500). `0` turns it off; default 50.
    pub deletion_max_share: u32,
    /// How long provisioning log entries are kept, in days (1..=3650).
    pub log_retention_days: u32,
    pub source: SourceConfig,
    pub target: TargetConfig,
    pub escrow: Escrow,
    pub quarantine: Quarantine,
    pub notifications: Notifications,
    pub users: UsersConfig,
    pub groups: GroupsConfig,
}

/// Microsoft Graph, the identity source.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceConfig {
    pub tenant_id: String,
    pub client_id: String,
    /// Exactly one of `client_secret` and `certificate` is set (validation enforces it).
    pub client_secret: Option<SecretRef>,
    /// Client certificate (PEM) for a signed client assertion; `private_key` is then set too.
    /// Held as a reference for convenience; a certificate is not secret.
    pub certificate: Option<SecretRef>,
    /// PKCS#8 PEM private key of `certificate`.
    pub private_key: Option<SecretRef>,
    pub assertion_algorithm: AssertionAlgorithm,
    /// The enterprise app's service principal object id; always set when `scope` is `Assigned`.
    pub service_principal_id: Option<String>,
    pub scope: ScopeSetting,
    /// Skip users and groups whose only assignments use the Default Access role (CybSafe's
    /// tutorial: such users are "not effectively entitled").
    pub exclude_default_access: bool,
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

/// The JWS algorithm of the client assertion signed with `certificate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AssertionAlgorithm {
    /// RSASSA-PSS with SHA-256: what Microsoft recommends.
    #[default]
    Ps256,
    Rs256,
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
    /// The most members per group PATCH, 1..=1000 (the engine adapts below it).
    pub membership_batch_size: usize,
    pub group_members_removal: MembersRemoval,
    pub manager_format: ManagerFormat,
    /// Opt-in beyond Entra (which never sends nulls): clear a target value when the source
    /// value is cleared.
    pub clear_on_null: bool,
    pub actions: TargetActions,
}

/// How members are removed from a group in a PATCH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MembersRemoval {
    /// `"path": "members[value eq \"id\"]"`, one operation per member (RFC 7644).
    Rfc,
    /// `"path": "members"` with a `value` list of `{"value": id}` (Entra's default dialect).
    ValueList,
}

/// How `manager` is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ManagerFormat {
    /// `{"value": "<id>"}` (the enterprise extension's complex attribute).
    #[default]
    Complex,
    /// The id as a plain string (apps that typed it as a string).
    String,
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

/// Retries of a failed per-object write (Entra's escrow, reference §2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Escrow {
    /// The first retries' delays, in order.
    pub retry_delays: Vec<Duration>,
    /// The delay between retries once `retry_delays` are used up.
    pub daily_after: Duration,
    /// After this long since the first failure the escrow is dropped.
    pub give_up_after: Duration,
}

impl Default for Escrow {
    fn default() -> Self {
        Escrow {
            retry_delays: [6, 12, 24].map(|h| Duration::from_secs(h * HOUR)).to_vec(),
            daily_after: Duration::from_secs(DAY),
            give_up_after: Duration::from_secs(28 * DAY),
        }
    }
}

/// When a job is quarantined for failing writes, and what quarantine does (reference §2.4).
/// Thresholds are evaluated only once `threshold_min_failures` failures have been seen.
#[derive(Debug, Clone, PartialEq)]
pub struct Quarantine {
    pub threshold_min_failures: u64,
    /// Failed / attempted, 0..=1; quarantine when exceeded.
    pub threshold_ratio: f64,
    /// Failures not counting manager/member reference failures.
    pub threshold_non_reference: u64,
    /// All failures, references included.
    pub threshold_total: u64,
    /// The longest wait between cycles while quarantined (Entra: once a day).
    pub backoff_max: Duration,
    /// A job quarantined this long is disabled.
    pub disable_after: Duration,
}

impl Default for Quarantine {
    fn default() -> Self {
        Quarantine {
            threshold_min_failures: 5_000,
            threshold_ratio: 0.4,
            threshold_non_reference: 40_000,
            threshold_total: 60_000,
            backoff_max: Duration::from_secs(DAY),
            disable_after: Duration::from_secs(28 * DAY),
        }
    }
}

/// Where quarantine and deletion-threshold notices go (Entra's Notification Email).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Notifications {
    /// POSTed a JSON body; https, or http to a loopback host. Without a trailing `/`.
    pub webhook_url: Option<String>,
    /// Sent as `Authorization: Bearer`; only set together with `webhook_url`.
    pub webhook_token: Option<SecretRef>,
    pub smtp: Option<Smtp>,
}

/// Mail delivery for notifications.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Smtp {
    pub host: String,
    /// Default 587.
    pub port: u16,
    /// How the connection is secured; never [`SmtpTls::None`] with credentials to a host that
    /// is not loopback (validation enforces it, and so does the notifier).
    pub tls: SmtpTls,
    /// Set together with `password`.
    pub username: Option<String>,
    pub password: Option<SecretRef>,
    pub from: String,
    /// At least one address.
    pub to: Vec<String>,
}

/// How the SMTP connection is secured (`tls`, or the older `starttls = true|false`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SmtpTls {
    /// Upgrade with STARTTLS before anything else, and fail if the server does not offer it
    /// (never fall back to plain text). The default, for port 587.
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS); the default on port 465.
    Implicit,
    /// Plain TCP: only without credentials, or to a loopback host.
    None,
}

/// `[users]`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UsersConfig {
    pub mappings: Vec<Mapping>,
    /// Entra's scoping filters: clauses AND'ed within a filter, filters OR'ed; none = all in.
    pub scoping: Vec<ScopingFilter>,
    /// Same as [`JobConfig::skip_out_of_scope_deletions`].
    pub skip_out_of_scope_deletions: bool,
    pub deprovision: Deprovision,
}

/// What happens in the target to a user who is unassigned or leaves scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Deprovision {
    /// `PATCH active=false`: Entra's behaviour for custom SCIM apps.
    #[default]
    Disable,
    /// `DELETE`, as some gallery apps do.
    Delete,
}

/// `[groups]`: group provisioning (Atmos, Klaxoon, CybSafe provision groups).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GroupsConfig {
    pub enabled: bool,
    pub nested: Nested,
    pub out_of_scope: GroupOutOfScope,
    pub reconcile: Reconcile,
    /// Same shape as user mappings; with `enabled`, at least one sets `matching`.
    pub mappings: Vec<Mapping>,
    pub scoping: Vec<ScopingFilter>,
}

/// Members that are themselves groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Nested {
    /// Entra: only direct user members are provisioned.
    #[default]
    Ignore,
    /// Nested groups are sent as members and provisioned as groups themselves.
    Include,
}

/// What happens to a group that leaves scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GroupOutOfScope {
    /// `DELETE` (Entra's default).
    #[default]
    Delete,
    /// Leave it in the target.
    Skip,
}

/// Reading the target's groups back to repair drift (Entra never does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reconcile {
    #[default]
    Off,
    Daily,
    EveryCycle,
}

/// One scoping filter (`[[users.scoping]]`): true when all its clauses are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopingFilter {
    pub name: Option<String>,
    /// At least one.
    pub clauses: Vec<Clause>,
    /// 1-based line of the entry.
    pub line: usize,
}

/// One clause: `attribute operator value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    /// The source attribute name, case-sensitive (directory extensions are).
    pub attribute: String,
    pub operator: Operator,
    /// `None` exactly for the unary operators (IS TRUE/FALSE/NULL/NOT NULL). An integer for
    /// `Greater_Than*`; a pattern that compiles for the regex operators; a comma-separated
    /// list for `&`/`!&`.
    pub value: Option<String>,
    /// 1-based line of the clause.
    pub line: usize,
}

/// The service file (`scimsync.toml` in the config directory), used by `serve`.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceConfig {
    pub path: PathBuf,
    pub admin: AdminConfig,
    /// `[store]`: a PostgreSQL database for every job's state instead of sled directories.
    pub store: Option<StoreConfig>,
    /// E.g. a literal admin token.
    pub warnings: Vec<ConfigError>,
}

/// `[store]` in the service file: `url = "postgres://user@host/db"` (or `env:NAME` /
/// `file:PATH` holding the URL) and optionally `password = "env:NAME"` or `file:PATH`, which
/// replaces a password in the URL. Both are secret references: never shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    pub url: SecretRef,
    pub password: Option<SecretRef>,
    /// `lease_ttl = "30s"`: how long a replica's job lease lasts without renewal, so how soon
    /// another replica takes a job over after its owner died.
    pub lease_ttl: Duration,
}

/// `[store] lease_ttl` when not given.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(30);

/// `[admin]`: the admin HTTP API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminConfig {
    pub bind: SocketAddr,
    /// Bearer token the API requires. Optional only on a loopback `bind`.
    pub token: Option<SecretRef>,
    /// `tls_cert` and `tls_key`: the API speaks HTTPS with this certificate and key.
    pub tls: Option<AdminTls>,
    /// `allow_plain_http = true`: a `bind` beyond loopback without TLS is accepted (the token
    /// crosses the network in clear). Without it such a `bind` is a configuration error.
    pub allow_plain_http: bool,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            bind: DEFAULT_ADMIN_BIND,
            token: None,
            tls: None,
            allow_plain_http: false,
        }
    }
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
    /// Every secret reference of the file where it is written, to resolve (check) them.
    pub secrets: Vec<SecretSite>,
}

/// Read and validate a job file, reporting all problems found.
pub fn load(path: &Path) -> Result<Loaded, Vec<ConfigError>> {
    let text = read_bounded(path).map_err(|why| {
        vec![ConfigError {
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            key: String::new(),
            message: format!("cannot read the job file: {why}"),
        }]
    })?;
    parse(path, &text)
}

/// The largest job or service file read: real ones are a few KiB; a bigger one is a mistake
/// (or `/dev/zero`), refused before it is held in memory.
pub const MAX_CONFIG_FILE_BYTES: u64 = 1024 * 1024;

/// A configuration file's text, read with [`MAX_CONFIG_FILE_BYTES`] as the limit.
pub(crate) fn read_bounded(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut text = String::new();
    file.take(MAX_CONFIG_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    if text.len() as u64 > MAX_CONFIG_FILE_BYTES {
        return Err(format!(
            "it is larger than {} KiB, which no configuration file is",
            MAX_CONFIG_FILE_BYTES / 1024
        ));
    }
    Ok(text)
}

/// Validate job file text; `path` is used in errors and to anchor relative `file:` secrets.
pub fn parse(path: &Path, text: &str) -> Result<Loaded, Vec<ConfigError>> {
    validate::parse(path, text)
}
