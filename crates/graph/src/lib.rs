//! Microsoft Graph as the identity source of scimsync.
//!
//! [`GraphClient`] implements [`scimsync_core::Source`]: it signs in with an app registration's
//! client credentials (OAuth2, Entra v2.0 endpoint), reads `/v1.0/users` page by page with the
//! properties the mappings need, and, for "assigned users only", the enterprise app's
//! `appRoleAssignedTo` with assigned groups expanded to their direct user members. Users in the
//! directory's deleted items are reported as soft-deleted. Throttling (429) and unavailability
//! (5xx) are retried, honouring `Retry-After`.
//!
//! Change tracking: [`Source::read_user_changes`](scimsync_core::Source::read_user_changes) and
//! [`Source::read_groups`](scimsync_core::Source::read_groups) use Graph delta queries
//! (`/users/delta`, `/groups/delta` with `members@delta`) and keep the `@odata.deltaLink` as the
//! watermark; an expired or rejected one falls back to a full round. Changed users and groups
//! are re-read whole through `$batch`, because delta items omit unchanged properties.
//!
//! Credentials: a client secret, or a certificate whose key signs a `client_assertion`
//! ([`Credential`]).
//!
//! Attributes come back under Entra's source attribute names; [`graph_property`] and
//! [`graph_group_property`] hold the one translation table between those names and Graph's
//! properties.

mod assignment_page;
mod attributes;
mod batch;
mod check;
mod client;
mod credential;
mod delta;
pub mod fuzz;
mod groups;
mod read;
mod retry;
mod token;

pub use attributes::{
    COMPUTED_ATTRIBUTES, GraphProperty, graph_group_property, graph_property,
    is_computed_attribute, is_directory_extension, is_reference_attribute,
};
pub use check::{AccessCheck, AccessFailure};
pub use client::{
    DEFAULT_GRAPH_URL, DEFAULT_LOGIN_URL, DEFAULT_MAX_CONCURRENCY, DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_MAX_RETRIES, DEFAULT_MAX_TOKEN_RESPONSE_BYTES, DEFAULT_PAGE_SIZE, DEFAULT_RETRY_BASE,
    GraphClient, GraphConfig,
};
pub use credential::{CertificateAlgorithm, Credential};
