//! Application permissions and the service principal's existence, as test knobs: a revoked
//! permission makes the reads that need it answer Graph's 403 `Authorization_RequestDenied`, a
//! removed service principal answers 404 `Request_ResourceNotFound` (graph-wire-contract §1.5,
//! §6.1). By default every permission a provisioning engine needs is granted and the service
//! principal exists, so nothing changes unless a test asks.

use axum::http::StatusCode;
use std::collections::BTreeSet;

use super::server::GraphError;

/// What the emulated app registration may do, and whether its service principal exists.
#[derive(Debug, Clone)]
pub(crate) struct Access {
    /// Application permissions granted (with admin consent).
    pub granted: BTreeSet<String>,
    /// The app's service principal was deleted: every `/servicePrincipals/{id}…` read is a 404.
    pub service_principal_missing: bool,
}

impl Default for Access {
    fn default() -> Self {
        Access {
            granted: [
                "User.Read.All",
                "GroupMember.Read.All",
                "Group.Read.All",
                "Application.Read.All",
                "Directory.Read.All",
            ]
            .into_iter()
            .map(str::to_string)
            .collect(),
            service_principal_missing: false,
        }
    }
}

/// The application permissions any one of which allows reading under `first` (a path's first
/// segment after `/v1.0`); empty when none is needed.
fn allowing(first: &str) -> &'static [&'static str] {
    match first {
        "users" | "directory" => &["User.Read.All", "Directory.Read.All"],
        "groups" => &[
            "GroupMember.Read.All",
            "Group.Read.All",
            "Directory.Read.All",
        ],
        _ if first == "servicePrincipals" || first.starts_with("servicePrincipals(") => {
            &["Application.Read.All", "Directory.Read.All"]
        }
        _ => &[],
    }
}

impl Access {
    /// The error a read of `segs` gets, if any: the service principal first (Graph resolves the
    /// resource before authorising), then the permission.
    pub(crate) fn refuse(&self, segs: &[&str]) -> Option<GraphError> {
        let first = *segs.first()?;
        if self.service_principal_missing && first == "servicePrincipals" && segs.len() >= 2 {
            return Some(GraphError::not_found(segs[1]));
        }
        let allowed = allowing(first);
        if allowed.is_empty() || allowed.iter().any(|p| self.granted.contains(*p)) {
            return None;
        }
        Some(GraphError::new(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        ))
    }
}
