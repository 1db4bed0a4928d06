//! An in-process emulator of Microsoft Graph v1.0 and the Entra token endpoint.
//!
//! It follows `shared/docs/graph-wire-contract.md`: flat OAuth errors on the token endpoint and
//! the `{"error":{…,"innerError":{…}}}` envelope on Graph, absolute `@odata.nextLink`s that
//! repeat the query options and vanish on the last page, explicit `null`/`[]` for selected
//! properties on plain reads (but omitted never-set properties in delta), soft-delete semantics,
//! `appRoleAssignedTo` rows with the all-zero Default Access role, fractional `Retry-After`.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use scimsync_testkit::graph::{GraphEmulator, Tenant};
//! let graph = GraphEmulator::start(Tenant::generate("contoso.onmicrosoft.com", 250, 5, 42)).await?;
//! // graph.url() is both the Graph base URL and the login (authority host) URL;
//! // tokens come from POST {url}/{tenant}/oauth2/v2.0/token.
//! graph.throttle_next(1, 2.128);
//! # Ok(()) }
//! ```
//!
//! Served endpoints (GET unless noted):
//! - `POST /{tenant}/oauth2/v2.0/token` (tenant by domain or GUID; secret in the form or HTTP
//!   Basic, or a `client_assertion` JWT, whose signature is verified when the app has a
//!   certificate registered with `Tenant::register_certificate`; [`test_only`] has key pairs).
//! - `/v1.0/users` (`$select`, `$top`, `$filter`, `$count` + `ConsistencyLevel`, `$expand=manager`),
//!   `/v1.0/users/{id|upn}`, `/users/{id}/manager`, `/users/{id}/memberOf`, `/users/$count`,
//!   `/v1.0/users/delta`.
//! - `/v1.0/groups`, `/groups/{id}`, `/groups/{id}/members` (typed `directoryObject`s),
//!   `/v1.0/groups/delta` with `members@delta` in chunks.
//! - `POST /v1.0/$batch`: up to 20 relative GETs, answers in random order, injectable inner 429s.
//! - `/v1.0/servicePrincipals/{id}`, `/servicePrincipals?$filter=appId eq '…'`,
//!   `/servicePrincipals(appId='…')`, `/servicePrincipals/{id}/appRoleAssignedTo`.
//! - `/v1.0/directory/deletedItems/microsoft.graph.user`, `/directory/deletedItems/{id}`,
//!   `/v1.0/organization`.

mod access;
mod batch;
mod cert;
mod delta;
mod generate;
mod group_delta;
mod handlers;
mod model;
mod query;
mod schema;
mod server;
mod tenant;
mod token;

pub use cert::test_only;
pub use model::DEFAULT_ACCESS_ROLE;
pub use server::{GraphEmulator, RecordedRequest};
pub use tenant::{Tenant, TenantError};
