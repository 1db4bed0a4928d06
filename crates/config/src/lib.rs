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

use raw::{List, RawFilter, RawMapping, Secret};
use toml::Spanned;

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

const HOUR: Duration = Duration::from_secs(3_600);
const DAY: Duration = Duration::from_secs(24 * 3_600);

raw::config! {
    /// One provisioning job, validated, with defaults applied.
    #[derive(Debug, Clone, PartialEq)]
    pub struct JobConfig from RawJob at "" (cx, at, base_dir: &Path) {
        /// The file it came from (as given to [`load`]/[`parse`]).
        pub path: PathBuf = file(),
        /// The job id: `[A-Za-z0-9_-]+`.
        name: String => pub name: String = job_name(),
        schedule: String => pub schedule: Schedule = parsed(),
        /// Read by `[users]`'s rule, which refuses it in both places.
        skip_out_of_scope_deletions: bool,
        /// Entra's accidental-deletions prevention: the most users + groups a cycle may disable
        /// or delete before it holds them all back and quarantines the job. `0` turns the check
        /// off.
        deletion_threshold: i64 => pub deletion_threshold: u32 =
            int_in(0..=u32::MAX, DEFAULT_DELETION_THRESHOLD),
        /// Beyond Entra: a cycle that would disable or delete more than this share (percent) of
        /// the provisioned, active objects is held however small the job (a 40-user app is not
        /// protected by a count of 500). `0` turns it off; default 50.
        deletion_max_share: i64 => pub deletion_max_share: u32 =
            int_in(0..=100, DEFAULT_DELETION_MAX_SHARE),
        /// How long provisioning log entries are kept, in days (1..=3650).
        log_retention_days: i64 => pub log_retention_days: u32 =
            int_in(1..=3650, DEFAULT_LOG_RETENTION_DAYS),
        source: RawSource => pub source: SourceConfig = source(base_dir),
        target: RawTarget => pub target: TargetConfig = target(base_dir),
        escrow: RawEscrow => pub escrow: Escrow = table(Escrow::from_raw),
        quarantine: RawQuarantine => pub quarantine: Quarantine = table(Quarantine::from_raw),
        notifications: RawNotifications => pub notifications: Notifications =
            notifications(base_dir),
        users: RawUsers => pub users: UsersConfig = users(skip_out_of_scope_deletions),
        groups: RawGroups => pub groups: GroupsConfig = table(GroupsConfig::from_raw),
        /// Entra's `SkipOutOfScopeDeletions`: users leaving scope are left alone, not disabled.
        /// The effective value, whether written at the top level or in `[users]`.
        pub skip_out_of_scope_deletions: bool = copied(users.skip_out_of_scope_deletions),
    }
}

raw::config! {
    /// Microsoft Graph, the identity source.
    #[derive(Debug, Clone, PartialEq)]
    pub struct SourceConfig from RawSource at "source" (cx, at, base_dir: &Path) {
        tenant_id: String => pub tenant_id: String =
            required(&at, "the Entra tenant id or domain"),
        client_id: String => pub client_id: String =
            required(&at, "the app registration's client id"),
        /// Exactly one of `client_secret` and `certificate` is set (validation enforces it:
        /// this key's rule checks the three credential keys together).
        client_secret: Secret => pub client_secret: Option<SecretRef> =
            credentials(&certificate, &private_key, &at, base_dir),
        /// Client certificate (PEM) for a signed client assertion; `private_key` is then set too.
        /// Held as a reference for convenience; a certificate is not secret (so written inline
        /// it is no leak, and not warned about).
        certificate: Secret => pub certificate: Option<SecretRef> =
            optional_secret(base_dir, false),
        /// PKCS#8 PEM private key of `certificate`.
        private_key: Secret => pub private_key: Option<SecretRef> = optional_secret(base_dir, true),
        assertion_algorithm: String => pub assertion_algorithm: AssertionAlgorithm =
            assertion_algorithm(&client_secret, &certificate),
        /// The enterprise app's service principal object id; always set when `scope` is
        /// `Assigned`.
        service_principal_id: String => pub service_principal_id: Option<String> =
            service_principal_id(&scope, &at),
        scope: String => pub scope: ScopeSetting = choice(),
        /// Skip users and groups whose only assignments use the Default Access role (CybSafe's
        /// tutorial: such users are "not effectively entitled").
        exclude_default_access: bool => pub exclude_default_access: bool =
            exclude_default_access(scope),
        /// Without a trailing `/`.
        graph_url: String => pub graph_url: String = url(DEFAULT_GRAPH_URL),
        /// Without a trailing `/`.
        login_url: String => pub login_url: String = url(DEFAULT_LOGIN_URL),
        /// 1..=999.
        page_size: i64 => pub page_size: u32 = int_in(1..=999, DEFAULT_PAGE_SIZE),
    }
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

raw::spellings!(AssertionAlgorithm { "PS256" => Ps256, "RS256" => Rs256 });

/// Entra's "Scope": all users, or only those assigned to the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScopeSetting {
    All,
    #[default]
    Assigned,
}

raw::spellings!(ScopeSetting { "assigned" => Assigned, "all" => All });

raw::config! {
    /// The app's SCIM endpoint.
    #[derive(Debug, Clone, PartialEq)]
    pub struct TargetConfig from RawTarget at "target" (cx, at, base_dir: &Path) {
        /// Entra's "Tenant URL", without a trailing `/`.
        url: String => pub url: String = target_url(&at),
        /// Entra's "Secret Token".
        token: Secret => pub token: SecretRef = secret(&at, base_dir),
        dialect: String => pub dialect: DialectSetting = choice(),
        /// 1..=64.
        max_concurrency: i64 => pub max_concurrency: usize =
            int_in(1..=64, DEFAULT_MAX_CONCURRENCY),
        /// 1..=3600 s.
        timeout_secs: i64 => pub timeout: Duration = secs_in(1..=3600, DEFAULT_TIMEOUT),
        /// The most members per group PATCH, 1..=1000 (the engine adapts below it).
        membership_batch_size: i64 => pub membership_batch_size: usize =
            int_in(1..=1000, DEFAULT_MEMBERSHIP_BATCH_SIZE),
        /// Follows `dialect` unless set.
        group_members_removal: String => pub group_members_removal: MembersRemoval =
            choice_or(MembersRemoval::of(dialect)),
        manager_format: String => pub manager_format: ManagerFormat = choice(),
        /// Opt-in beyond Entra (which never sends nulls): clear a target value when the source
        /// value is cleared.
        clear_on_null: bool => pub clear_on_null: bool = flag(false),
        actions: RawActions => pub actions: TargetActions = table(TargetActions::from_raw),
    }
}

impl MembersRemoval {
    /// The dialect's way, when `group_members_removal` is not set.
    fn of(dialect: DialectSetting) -> Self {
        match dialect {
            DialectSetting::Rfc => MembersRemoval::Rfc,
            DialectSetting::Entra => MembersRemoval::ValueList,
        }
    }
}

/// How members are removed from a group in a PATCH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MembersRemoval {
    /// `"path": "members[value eq \"id\"]"`, one operation per member (RFC 7644).
    Rfc,
    /// `"path": "members"` with a `value` list of `{"value": id}` (Entra's default dialect).
    ValueList,
}

raw::spellings!(MembersRemoval { "rfc" => Rfc, "value-list" => ValueList });

/// How `manager` is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ManagerFormat {
    /// `{"value": "<id>"}` (the enterprise extension's complex attribute).
    #[default]
    Complex,
    /// The id as a plain string (apps that typed it as a string).
    String,
}

raw::spellings!(ManagerFormat { "complex" => Complex, "string" => String });

/// Which SCIM PATCH dialect to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DialectSetting {
    /// RFC 7644 (Entra with the `aadOptscim062020` flag).
    #[default]
    Rfc,
    /// Entra's default dialect.
    Entra,
}

raw::spellings!(DialectSetting { "rfc" => Rfc, "entra" => Entra });

raw::config! {
    /// Entra's "Target Object Actions".
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct TargetActions from RawActions at "target.actions" (cx, at) {
        create: bool => pub create: bool = flag(true),
        update: bool => pub update: bool = flag(true),
        /// `DELETE` on a hard delete at the source.
        delete: bool => pub delete: bool = flag(true),
    }
}

/// What an empty `[target.actions]` means.
impl Default for TargetActions {
    fn default() -> Self {
        validate::empty_table(Self::from_raw)
    }
}

raw::config! {
    /// Retries of a failed per-object write (Entra's escrow, reference §2.3).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Escrow from RawEscrow at "escrow" (cx, at) {
        /// The first retries' delays, in order.
        retry_delays: List<String> => pub retry_delays: Vec<Duration> =
            durations_or(&[HOUR * 6, HOUR * 12, HOUR * 24]),
        /// The delay between retries once `retry_delays` are used up.
        daily_after: String => pub daily_after: Duration = duration_or(DAY),
        /// After this long since the first failure the escrow is dropped (never before the
        /// first retry).
        give_up_after: String => pub give_up_after: Duration =
            give_up_after(&retry_delays, daily_after, DAY * 28),
    }
}

/// What an empty `[escrow]` means.
impl Default for Escrow {
    fn default() -> Self {
        validate::empty_table(Self::from_raw)
    }
}

raw::config! {
    /// When a job is quarantined for failing writes, and what quarantine does (reference §2.4).
    /// Thresholds are evaluated only once `threshold_min_failures` failures have been seen.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Quarantine from RawQuarantine at "quarantine" (cx, at) {
        threshold_min_failures: i64 => pub threshold_min_failures: u64 = count(5_000),
        /// Failed / attempted, 0..=1; quarantine when exceeded.
        threshold_ratio: f64 => pub threshold_ratio: f64 = share(0.4),
        /// Failures not counting manager/member reference failures.
        threshold_non_reference: i64 => pub threshold_non_reference: u64 = count(40_000),
        /// All failures, references included.
        threshold_total: i64 => pub threshold_total: u64 = count(60_000),
        /// The longest wait between cycles while quarantined (Entra: once a day).
        backoff_max: String => pub backoff_max: Duration = duration_or(DAY),
        /// A job quarantined this long is disabled.
        disable_after: String => pub disable_after: Duration = duration_or(DAY * 28),
    }
}

/// What an empty `[quarantine]` means.
impl Default for Quarantine {
    fn default() -> Self {
        validate::empty_table(Self::from_raw)
    }
}

raw::config! {
    /// Where quarantine and deletion-threshold notices go (Entra's Notification Email).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct Notifications from RawNotifications at "notifications" (cx, at, base_dir: &Path) {
        /// POSTed a JSON body; https, or http to a loopback host. Without a trailing `/`.
        webhook_url: String => pub webhook_url: Option<String> = optional_url(),
        /// Sent as `Authorization: Bearer`; only set together with `webhook_url`.
        webhook_token: Secret => pub webhook_token: Option<SecretRef> =
            webhook_token(&webhook_url, base_dir),
        smtp: RawSmtp => pub smtp: Option<Smtp> = smtp(base_dir),
    }
}

raw::config! {
    /// Mail delivery for notifications.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Smtp from RawSmtp at "notifications.smtp" (cx, at, base_dir: &Path) {
        host: String => pub host: String = smtp_host(&at),
        /// Default 587.
        port: i64 => pub port: u16 = int_in(1..=65535, DEFAULT_SMTP_PORT),
        /// How the connection is secured; never [`SmtpTls::None`] with credentials to a host
        /// that is not loopback (validation enforces it, and so does the notifier).
        tls: String => pub tls: SmtpTls = smtp_tls(starttls, port, &host, &username, &password),
        /// The older spelling of `tls` (`false` is plain SMTP, or implicit TLS on 465).
        starttls: bool,
        /// Set together with `password`.
        username: String => pub username: Option<String> = optional_nonempty(),
        password: Secret => pub password: Option<SecretRef> =
            smtp_password(&username, &at, base_dir),
        from: String => pub from: String =
            address(&at, "the sender address, e.g. scimsync@example.com"),
        /// At least one address.
        to: List<String> => pub to: Vec<String> =
            addresses(&at, "the recipients, e.g. to = [\"idadmins@example.com\"]"),
    }
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

raw::spellings!(SmtpTls { "starttls" => Starttls, "implicit" => Implicit, "none" => None });

raw::config! {
    /// `[users]`.
    #[derive(Debug, Clone, PartialEq, Default)]
    pub struct UsersConfig from RawUsers at "users" (cx, at, top_skip: Option<Spanned<bool>>) {
        mappings: List<RawMapping> => pub mappings: Vec<Mapping> = mappings(at.clone(), true),
        /// Entra's scoping filters: clauses AND'ed within a filter, filters OR'ed; none = all in.
        scoping: List<RawFilter> => pub scoping: Vec<ScopingFilter> = scoping(),
        /// Same as [`JobConfig::skip_out_of_scope_deletions`].
        skip_out_of_scope_deletions: bool => pub skip_out_of_scope_deletions: bool =
            skip_out_of_scope_deletions(top_skip),
        deprovision: String => pub deprovision: Deprovision = choice(),
    }
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

raw::spellings!(Deprovision { "disable" => Disable, "delete" => Delete });

raw::config! {
    /// `[groups]`: group provisioning (Atmos, Klaxoon, CybSafe provision groups).
    #[derive(Debug, Clone, PartialEq, Default)]
    pub struct GroupsConfig from RawGroups at "groups" (cx, at) {
        enabled: bool => pub enabled: bool = flag(false),
        nested: String => pub nested: Nested = choice(),
        out_of_scope: String => pub out_of_scope: GroupOutOfScope = choice(),
        reconcile: String => pub reconcile: Reconcile = choice(),
        /// Same shape as user mappings; with `enabled`, at least one sets `matching` (disabled
        /// groups keep their mappings checked, but need no matching yet).
        mappings: List<RawMapping> => pub mappings: Vec<Mapping> = mappings(at.clone(), enabled),
        scoping: List<RawFilter> => pub scoping: Vec<ScopingFilter> = scoping(),
    }
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

raw::spellings!(Nested { "ignore" => Ignore, "include" => Include });

/// What happens to a group that leaves scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GroupOutOfScope {
    /// `DELETE` (Entra's default).
    #[default]
    Delete,
    /// Leave it in the target.
    Skip,
}

raw::spellings!(GroupOutOfScope { "delete" => Delete, "skip" => Skip });

/// Reading the target's groups back to repair drift (Entra never does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reconcile {
    #[default]
    Off,
    Daily,
    EveryCycle,
}

raw::spellings!(Reconcile { "off" => Off, "daily" => Daily, "every-cycle" => EveryCycle });

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

raw::config! {
    /// `[store]` in the service file: `url = "postgres://user@host/db"` (or `env:NAME` /
    /// `file:PATH` holding the URL) and optionally `password = "env:NAME"` or `file:PATH`, which
    /// replaces a password in the URL. Both are secret references: never shown.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct StoreConfig from RawStore at "store" (cx, at, base_dir: &Path) {
        url: Secret => pub url: SecretRef = store_url(&at, base_dir),
        password: Secret => pub password: Option<SecretRef> = optional_secret(base_dir, true),
        /// `lease_ttl = "30s"`: how long a replica's job lease lasts without renewal, so how
        /// soon another replica takes a job over after its owner died.
        lease_ttl: String => pub lease_ttl: Duration = duration_or(DEFAULT_LEASE_TTL),
    }
}

/// `[store] lease_ttl` when not given.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(30);

raw::config! {
    /// `[admin]`: the admin HTTP API.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct AdminConfig from RawAdmin at "admin" (cx, at, base_dir: &Path) {
        /// Loopback by default. Its rule checks what a `bind` beyond loopback needs: a `token`,
        /// and TLS or `allow_plain_http`.
        bind: String => pub bind: SocketAddr =
            admin_bind(&token, &tls_cert, &tls_key, &allow_plain_http),
        /// Bearer token the API requires. Optional only on a loopback `bind`.
        token: Secret => pub token: Option<SecretRef> = optional_secret(base_dir, true),
        /// `tls_cert` and `tls_key`: the API speaks HTTPS with this certificate and key.
        tls_cert: Secret => pub tls: Option<AdminTls> = admin_tls(tls_key, base_dir),
        /// Read by `tls_cert`'s rule: both or neither.
        tls_key: Secret,
        /// `allow_plain_http = true`: a `bind` beyond loopback without TLS is accepted (the token
        /// crosses the network in clear). Without it such a `bind` is a configuration error.
        allow_plain_http: bool => pub allow_plain_http: bool = flag(false),
    }
}

/// What an empty `[admin]` means.
impl Default for AdminConfig {
    fn default() -> Self {
        validate::empty_table(|cx, at, raw| Self::from_raw(cx, at, raw, Path::new("")))
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

raw::spellings!(Apply { "always" => Always, "create" => CreateOnly });

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
