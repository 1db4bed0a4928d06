//! Microsoft Graph as the identity source of scimsync.
//!
//! [`GraphClient`] implements [`scimsync_core::Source`]: it signs in with an app registration's
//! client credentials (OAuth2, Entra v2.0 endpoint), reads `/v1.0/users` page by page with the
//! properties the mappings need, and, for "assigned users only", the enterprise app's
//! `appRoleAssignedTo` with assigned groups expanded to their direct user members. Users in the
//! directory's deleted items are reported as soft-deleted. Throttling (429) and unavailability
//! (5xx) are retried, honouring `Retry-After`.
//!
//! Attributes come back under Entra's source attribute names; [`graph_property`] holds the one
//! translation table between those names and Graph's properties.

mod attributes;
mod client;
mod read;
mod retry;
mod token;

pub use attributes::{COMPUTED_ATTRIBUTES, GraphProperty, graph_property, is_computed_attribute};
pub use client::{
    DEFAULT_GRAPH_URL, DEFAULT_LOGIN_URL, DEFAULT_MAX_CONCURRENCY, DEFAULT_MAX_RETRIES,
    DEFAULT_PAGE_SIZE, DEFAULT_RETRY_BASE, GraphClient, GraphConfig,
};
