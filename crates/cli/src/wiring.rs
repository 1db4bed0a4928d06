//! Build the engine's parts from a job file: the Graph source, the SCIM target, the store.

use anyhow::{Result, anyhow};
use scimsync_config::{
    AssertionAlgorithm, DialectSetting, JobConfig, ManagerFormat, MembersRemoval,
};
use scimsync_graph::{CertificateAlgorithm, GraphClient, GraphConfig};
use scimsync_scim::{Dialect, ScimClient, ScimClientConfig};
use std::path::Path;

/// Load and validate a job file, printing warnings; errors are printed one per line.
pub fn load(path: &Path) -> Result<JobConfig, u8> {
    match scimsync_config::load(path) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                eprintln!("warning: {w}");
            }
            Ok(loaded.job)
        }
        Err(errors) => {
            for e in &errors {
                eprintln!("error: {e}");
            }
            Err(2)
        }
    }
}

pub fn dialect(cfg: &JobConfig) -> Dialect {
    match cfg.target.dialect {
        DialectSetting::Rfc => Dialect::Rfc,
        DialectSetting::Entra => Dialect::EntraDefault,
    }
}

/// The request shapes this job's target gets, for rendering previews.
pub fn shapes(cfg: &JobConfig) -> crate::render::Shapes {
    crate::render::Shapes {
        dialect: dialect(cfg),
        removal: member_removal(cfg),
        batch: cfg.target.membership_batch_size,
    }
}

pub fn member_removal(cfg: &JobConfig) -> scimsync_scim::MemberRemoval {
    match cfg.target.group_members_removal {
        MembersRemoval::Rfc => scimsync_scim::MemberRemoval::Filter,
        MembersRemoval::ValueList => scimsync_scim::MemberRemoval::ValueList,
    }
}

pub fn graph(cfg: &JobConfig) -> Result<GraphClient> {
    let src = &cfg.source;
    let mut gc = match (&src.client_secret, &src.certificate, &src.private_key) {
        (Some(secret), _, _) => {
            let secret = secret
                .resolve()
                .map_err(|e| anyhow!("source.client_secret: {e}"))?;
            GraphConfig::new(&src.tenant_id, &src.client_id, secret)
        }
        (None, Some(cert), Some(key)) => {
            let cert = cert
                .resolve()
                .map_err(|e| anyhow!("source.certificate: {e}"))?;
            let key = key
                .resolve()
                .map_err(|e| anyhow!("source.private_key: {e}"))?;
            let algorithm = match src.assertion_algorithm {
                AssertionAlgorithm::Ps256 => CertificateAlgorithm::Ps256,
                AssertionAlgorithm::Rs256 => CertificateAlgorithm::Rs256,
            };
            GraphConfig::with_certificate(
                &src.tenant_id,
                &src.client_id,
                cert.expose(),
                key,
                algorithm,
            )
        }
        _ => {
            return Err(anyhow!(
                "source: give client_secret, or certificate and private_key"
            ));
        }
    };
    gc.graph_url = src.graph_url.clone();
    gc.login_url = src.login_url.clone();
    gc.page_size = src.page_size;
    GraphClient::new(gc).map_err(|e| anyhow!("{e}"))
}

pub fn scim(cfg: &JobConfig) -> Result<ScimClient> {
    let token = cfg
        .target
        .token
        .resolve()
        .map_err(|e| anyhow!("target.token: {e}"))?;
    let mut sc = ScimClientConfig::new(&cfg.target.url, token);
    sc.dialect = dialect(cfg);
    sc.max_concurrency = cfg.target.max_concurrency;
    sc.timeout = cfg.target.timeout;
    sc.member_removal = Some(member_removal(cfg));
    sc.manager_format = match cfg.target.manager_format {
        ManagerFormat::Complex => scimsync_scim::ManagerFormat::Complex,
        ManagerFormat::String => scimsync_scim::ManagerFormat::String,
    };
    ScimClient::new(sc).map_err(|e| anyhow!("{e}"))
}

/// The job's state store: its sled directory under `state_dir`, or the PostgreSQL database
/// selected with `--store` / `[store]` (see `store_select`).
pub fn store(state_dir: &Path, job: &str) -> Result<crate::store_select::Store> {
    crate::store_select::open(state_dir, job)
}
