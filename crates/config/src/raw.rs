//! The file as written: every key optional and spanned, so the semantic pass can report a
//! missing or invalid value at its own line:column and apply defaults itself.

use serde::Deserialize;
use toml::Spanned;

type S<T> = Option<Spanned<T>>;
type List<T> = Option<Vec<Spanned<T>>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawJob {
    pub name: S<String>,
    pub schedule: S<String>,
    pub skip_out_of_scope_deletions: S<bool>,
    pub deletion_threshold: S<i64>,
    pub deletion_max_share: S<i64>,
    pub log_retention_days: S<i64>,
    pub source: S<RawSource>,
    pub target: S<RawTarget>,
    pub escrow: S<RawEscrow>,
    pub quarantine: S<RawQuarantine>,
    pub notifications: S<RawNotifications>,
    pub users: S<RawUsers>,
    pub groups: S<RawGroups>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSource {
    pub tenant_id: S<String>,
    pub client_id: S<String>,
    pub client_secret: S<String>,
    pub certificate: S<String>,
    pub private_key: S<String>,
    pub assertion_algorithm: S<String>,
    pub service_principal_id: S<String>,
    pub scope: S<String>,
    pub exclude_default_access: S<bool>,
    pub graph_url: S<String>,
    pub login_url: S<String>,
    pub page_size: S<i64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTarget {
    pub url: S<String>,
    pub token: S<String>,
    pub dialect: S<String>,
    pub max_concurrency: S<i64>,
    pub timeout_secs: S<i64>,
    pub membership_batch_size: S<i64>,
    pub group_members_removal: S<String>,
    pub manager_format: S<String>,
    pub clear_on_null: S<bool>,
    pub actions: S<RawActions>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawActions {
    pub create: S<bool>,
    pub update: S<bool>,
    pub delete: S<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEscrow {
    pub retry_delays: List<String>,
    pub daily_after: S<String>,
    pub give_up_after: S<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawQuarantine {
    pub threshold_min_failures: S<i64>,
    pub threshold_ratio: S<f64>,
    pub threshold_non_reference: S<i64>,
    pub threshold_total: S<i64>,
    pub backoff_max: S<String>,
    pub disable_after: S<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNotifications {
    pub webhook_url: S<String>,
    pub webhook_token: S<String>,
    pub smtp: S<RawSmtp>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSmtp {
    pub host: S<String>,
    pub port: S<i64>,
    pub tls: S<String>,
    pub starttls: S<bool>,
    pub username: S<String>,
    pub password: S<String>,
    pub from: S<String>,
    pub to: List<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUsers {
    pub mappings: List<RawMapping>,
    pub scoping: List<RawFilter>,
    pub skip_out_of_scope_deletions: S<bool>,
    pub deprovision: S<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGroups {
    pub enabled: S<bool>,
    pub nested: S<String>,
    pub out_of_scope: S<String>,
    pub reconcile: S<String>,
    pub mappings: List<RawMapping>,
    pub scoping: List<RawFilter>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMapping {
    pub target: S<String>,
    pub source: S<String>,
    pub constant: S<String>,
    pub expression: S<String>,
    pub matching: S<i64>,
    pub apply: S<String>,
    pub default: S<String>,
    pub required: S<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFilter {
    pub name: S<String>,
    pub clauses: List<RawClause>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawClause {
    pub attribute: S<String>,
    pub operator: S<String>,
    pub value: S<String>,
}

/// `scimsync.toml`, the service file next to the job files.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawService {
    pub admin: S<RawAdmin>,
    pub store: S<RawStore>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStore {
    pub url: S<String>,
    pub password: S<String>,
    pub lease_ttl: S<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAdmin {
    pub bind: S<String>,
    pub token: S<String>,
    pub tls_cert: S<String>,
    pub tls_key: S<String>,
    pub allow_plain_http: S<bool>,
}
