//! SCIM 2.0 client: the engine's [`scimsync_core::Target`] over HTTP, behaving on the wire like
//! the Microsoft Entra provisioning service (see `entra-provisioning-reference.md` §1).
//!
//! Only this crate speaks SCIM JSON. The pure functions ([`user_resource`], [`flatten_user`],
//! [`patch_body`], [`match_filter`], [`PlannedRequest`]) build exactly what [`ScimClient`] sends,
//! so a preview can print requests without sending them.
//!
//! Choices where Entra is unspecified or where real servers are stricter than Entra:
//! - Enterprise `manager` is sent as the complex `{"value": id}` in POST and PATCH, in both
//!   dialects: RFC 7643 defines it so, strict servers (scim2-server) reject a plain string, and
//!   Entra itself fails on non-complex managers in answers.
//! - Custom extension URNs are listed in `schemas` by default
//!   ([`ScimClientConfig::list_custom_schemas`]).
//! - `Add` of a typed multi-valued path adds a collection entry (see [`patch_body`]): the engine
//!   should use `Replace` for a sub-attribute of an entry it already sent.
//! - A filtered query's 404 is `ScimComplianceIssue`, never "no match"; redirects are not
//!   followed (reported as `WebExceptionProtocolError` with the new location).
//! - 429/503/504 are retried within the call (honouring `Retry-After`, capped at 60 s);
//!   timeouts and connection errors are not, because a POST may have been applied.

mod client;
mod patch;
mod path;
mod resource;

pub use client::{PlannedRequest, ScimClient, ScimClientConfig};
pub use patch::{Dialect, patch_body};
pub use path::{
    CORE_USER_SCHEMA, ENTERPRISE_USER_SCHEMA, ERROR_SCHEMA, LIST_RESPONSE_SCHEMA, PATCH_OP_SCHEMA,
    match_filter,
};
pub use resource::{flatten_user, user_resource, user_resource_with};
