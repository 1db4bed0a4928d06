//! The file as written: every key optional and spanned, so the semantic pass can report a
//! missing or invalid value at its own line:column and apply defaults itself.

use serde::Deserialize;
use toml::Spanned;

type S<T> = Option<Spanned<T>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawJob {
    pub name: S<String>,
    pub schedule: S<String>,
    pub skip_out_of_scope_deletions: S<bool>,
    pub source: S<RawSource>,
    pub target: S<RawTarget>,
    pub users: S<RawUsers>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSource {
    pub tenant_id: S<String>,
    pub client_id: S<String>,
    pub client_secret: S<String>,
    pub service_principal_id: S<String>,
    pub scope: S<String>,
    pub graph_url: S<String>,
    pub login_url: S<String>,
    pub page_size: S<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTarget {
    pub url: S<String>,
    pub token: S<String>,
    pub dialect: S<String>,
    pub max_concurrency: S<i64>,
    pub timeout_secs: S<i64>,
    pub actions: S<RawActions>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawActions {
    pub create: S<bool>,
    pub update: S<bool>,
    pub delete: S<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUsers {
    pub mappings: Option<Vec<Spanned<RawMapping>>>,
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
