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
    ScimClient::new(scim_config(cfg, token)).map_err(|e| anyhow!("{e}"))
}

/// The SCIM client's settings from the job's `[target]`.
fn scim_config(cfg: &JobConfig, token: scimsync_core::Secret) -> ScimClientConfig {
    let mut sc = ScimClientConfig::new(&cfg.target.url, token);
    sc.dialect = dialect(cfg);
    sc.max_concurrency = cfg.target.max_concurrency;
    sc.timeout = cfg.target.timeout;
    sc.member_removal = Some(member_removal(cfg));
    sc.manager_format = match cfg.target.manager_format {
        ManagerFormat::Complex => scimsync_scim::ManagerFormat::Complex,
        ManagerFormat::String => scimsync_scim::ManagerFormat::String,
    };
    sc
}

/// The job's state store: its sled directory under `state_dir`, or the PostgreSQL database
/// selected with `--store` / `[store]` (see `store_select`).
pub fn store(state_dir: &Path, job: &str) -> Result<crate::store_select::Store> {
    crate::store_select::open(state_dir, job)
}

#[cfg(test)]
mod tests {
    use super::*;
    use scimsync_engine::JobSpec;

    /// Issue 15: a default is declared once. A job file that leaves every optional key out
    /// gets what the clients and the engine use when built with their own `new`, so a job
    /// file and an embedding (or a test double) cannot drift apart.
    #[test]
    fn a_job_without_optional_keys_gets_the_clients_and_engines_defaults() {
        let text = r#"
            name = "app"
            [source]
            tenant_id = "t"
            client_id = "c"
            client_secret = "env:S"
            scope = "all"
            [target]
            url = "https://app.example/scim"
            token = "env:T"
            [[users.mappings]]
            target = "userName"
            source = "userPrincipalName"
            matching = 1
        "#;
        let cfg = scimsync_config::parse(Path::new("app.toml"), text)
            .expect("a minimal job")
            .job;

        let token = scimsync_core::Secret::inline("x");
        let built = scim_config(&cfg, token.clone());
        let plain = ScimClientConfig::new(&cfg.target.url, token);
        assert_eq!(built.max_concurrency, plain.max_concurrency);
        assert_eq!(built.timeout, plain.timeout);

        let graph = GraphConfig::new("t", "c", scimsync_core::Secret::inline("x"));
        assert_eq!(cfg.source.graph_url, graph.graph_url);
        assert_eq!(cfg.source.login_url, graph.login_url);
        assert_eq!(cfg.source.page_size, graph.page_size);

        let spec = JobSpec::from_config(&cfg);
        let new = JobSpec::new("app", spec.scope.clone(), spec.mappings.clone());
        assert_eq!(spec.concurrency, new.concurrency);
        assert_eq!(spec.deletion_threshold, new.deletion_threshold);
        assert_eq!(spec.deletion_max_share, new.deletion_max_share);
        assert_eq!(spec.actions, new.actions);
        assert_eq!(spec.escrow, new.escrow);
        assert_eq!(spec.reconcile, new.reconcile);
        assert_eq!(spec.clear_on_null, new.clear_on_null);
        assert_eq!(
            spec.skip_out_of_scope_deletions,
            new.skip_out_of_scope_deletions
        );
    }
}
