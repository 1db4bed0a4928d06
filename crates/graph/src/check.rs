//! What Entra's Test Connection checks on the source side, one small request each: a token, the
//! service principal, and that users, groups and app role assignments can be read.

use crate::client::GraphClient;
use crate::read::USER_READ;
use reqwest::StatusCode;
use scimsync_core::SourceError;
use serde_json::Value;

/// The permission named when `/groups` is refused: the least one that allows the read, and the
/// broader one that also does.
const GROUPS_READ: &str = "GroupMember.Read.All (or Group.Read.All)";
const APPLICATION_READ: &str = "Application.Read.All";

/// One step of [`GraphClient::check_access`].
#[derive(Debug)]
pub struct AccessCheck {
    /// `token`, `service principal`, `users`, `groups` or `assignments`.
    pub what: &'static str,
    /// What was found, or why the step failed; `None` when it was not attempted (a step it
    /// depends on failed, or no service principal is configured).
    pub outcome: Option<Result<String, AccessFailure>>,
}

/// A failed step: a sentence for people, the application permission that is missing (on a 403),
/// and the underlying error.
#[derive(Debug)]
pub struct AccessFailure {
    pub summary: String,
    /// E.g. `User.Read.All`, when Graph answered 403 `Authorization_RequestDenied`.
    pub missing_permission: Option<&'static str>,
    pub error: SourceError,
}

impl std::fmt::Display for AccessFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.summary, self.error.message)
    }
}

impl AccessCheck {
    /// The step failed.
    pub fn failed(&self) -> bool {
        matches!(self.outcome, Some(Err(_)))
    }
}

impl GraphClient {
    /// Checks the source as Entra's Test Connection checks credentials, in order: a token is
    /// issued; the service principal `service_principal_id` exists (`GET
    /// /servicePrincipals/{id}?$select=id,appId,displayName`; 404 → it does not); `/users`,
    /// `/groups` and `/servicePrincipals/{id}/appRoleAssignedTo` can be read (`$top=1`; 403 →
    /// the missing application permission is named: `User.Read.All`, `GroupMember.Read.All` /
    /// `Group.Read.All`, `Application.Read.All`). Without a token nothing else is tried;
    /// without a service principal id (or when it was not found or not readable) the
    /// assignments are not tried.
    pub async fn check_access(&self, service_principal_id: Option<&str>) -> Vec<AccessCheck> {
        let mut checks = Vec::new();
        let token = self.token().await.map(|()| "token issued".to_string());
        let token_ok = token.is_ok();
        checks.push(AccessCheck {
            what: "token",
            outcome: Some(token.map_err(|error| AccessFailure {
                summary: "no token for the app registration".into(),
                missing_permission: None,
                error,
            })),
        });
        if !token_ok {
            for what in ["service principal", "users", "groups", "assignments"] {
                checks.push(AccessCheck {
                    what,
                    outcome: None,
                });
            }
            return checks;
        }

        let sp = match service_principal_id {
            None => None,
            Some(id) => {
                let url = self.url(&["servicePrincipals", id], "$select=id,appId,displayName");
                Some(match self.get(&url, APPLICATION_READ).await {
                    Ok(body) => {
                        let text = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or("");
                        Ok(format!(
                            "service principal {id} found ({:?}, appId {})",
                            text("displayName"),
                            text("appId")
                        ))
                    }
                    Err(f) if f.status == Some(StatusCode::NOT_FOUND) => Err(AccessFailure {
                        summary: format!(
                            "service principal {id} does not exist in the tenant: \
                             source.service_principal_id must be the object id of the \
                             enterprise app (not its appId, not the app registration's object id)"
                        ),
                        missing_permission: None,
                        error: f.error,
                    }),
                    Err(f) => Err(refused(f, "the service principal", APPLICATION_READ)),
                })
            }
        };
        let sp_found = matches!(sp, Some(Ok(_)));
        checks.push(AccessCheck {
            what: "service principal",
            outcome: sp,
        });

        let users = self.url(&["users"], "$select=id&$top=1");
        checks.push(AccessCheck {
            what: "users",
            outcome: Some(match self.get(&users, USER_READ).await {
                Ok(_) => Ok("users can be read".into()),
                Err(f) => Err(refused(f, "users", USER_READ)),
            }),
        });
        let groups = self.url(&["groups"], "$select=id&$top=1");
        checks.push(AccessCheck {
            what: "groups",
            outcome: Some(match self.get(&groups, GROUPS_READ).await {
                Ok(_) => Ok("groups can be read".into()),
                Err(f) => Err(refused(f, "groups", GROUPS_READ)),
            }),
        });
        let assignments = match service_principal_id {
            Some(id) if sp_found => {
                let url = self.url(&["servicePrincipals", id, "appRoleAssignedTo"], "$top=1");
                Some(match self.get(&url, APPLICATION_READ).await {
                    Ok(_) => Ok("app role assignments can be read".into()),
                    Err(f) => Err(refused(f, "app role assignments", APPLICATION_READ)),
                })
            }
            _ => None,
        };
        checks.push(AccessCheck {
            what: "assignments",
            outcome: assignments,
        });
        checks
    }
}

/// A failed read of `what`: on 403 the summary names `permission`.
fn refused(f: crate::client::Failure, what: &str, permission: &'static str) -> AccessFailure {
    let denied = f.status == Some(StatusCode::FORBIDDEN);
    AccessFailure {
        summary: if denied {
            format!(
                "{what} cannot be read: missing application permission {permission} \
                 (not granted to the app registration, or not admin-consented)"
            )
        } else {
            format!("{what} cannot be read")
        },
        missing_permission: denied.then_some(permission),
        error: f.error,
    }
}
