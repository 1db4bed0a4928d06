//! Build the engine's parts from a job file: the Graph source, the SCIM target, the store.

use anyhow::{Context, Result, anyhow};
use scimsync_config::{DialectSetting, JobConfig};
use scimsync_graph::{GraphClient, GraphConfig};
use scimsync_scim::{Dialect, ScimClient, ScimClientConfig};
use scimsync_store::SledStore;
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

pub fn graph(cfg: &JobConfig) -> Result<GraphClient> {
    let secret = cfg
        .source
        .client_secret
        .resolve()
        .map_err(|e| anyhow!("source.client_secret: {e}"))?;
    let mut gc = GraphConfig::new(&cfg.source.tenant_id, &cfg.source.client_id, secret);
    gc.graph_url = cfg.source.graph_url.clone();
    gc.login_url = cfg.source.login_url.clone();
    gc.page_size = cfg.source.page_size;
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
    ScimClient::new(sc).map_err(|e| anyhow!("{e}"))
}

pub fn store(state_dir: &Path, job: &str) -> Result<SledStore> {
    let dir = state_dir.join(job);
    std::fs::create_dir_all(state_dir)
        .with_context(|| format!("cannot create state directory {}", state_dir.display()))?;
    let (store, report) = SledStore::open(&dir).map_err(|e| anyhow!("{e}"))?;
    if let Some(moved) = report.moved_aside {
        eprintln!(
            "warning: the state of job {job} was unreadable and was moved to {}; \
             the next cycle re-matches every object (no duplicates are created)",
            moved.display()
        );
    }
    Ok(store)
}
