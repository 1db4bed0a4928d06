//! SCIM 2.0 client: the engine's [`scimsync_core::Target`] over HTTP, behaving on the wire like
//! the Microsoft Entra provisioning service (see `entra-provisioning-reference.md` §1).
//!
//! Only this crate speaks SCIM JSON. The pure functions ([`user_resource`], [`flatten_user`],
//! [`group_resource`], [`flatten_group`], [`patch_body`], [`add_members_body`],
//! [`remove_members_body`], [`match_filter`], [`PlannedRequest`]) build exactly what
//! [`ScimClient`] sends, so a preview can print requests without sending them.
//!
//! Choices where Entra is unspecified or where real servers are stricter than Entra:
//! - Enterprise `manager` is sent as the complex `{"value": id}` in POST and PATCH, in both
//!   dialects: RFC 7643 defines it so, strict servers (scim2-server) reject a plain string, and
//!   Entra itself fails on non-complex managers in answers. [`ManagerFormat::String`] sends the
//!   bare id for targets built against what the live Entra client is reported to send.
//! - Groups are created empty and members follow in one PATCH per call; member removal is
//!   `members[value eq "id"]` ops ([`MemberRemoval::Filter`], the `Rfc` default and the only
//!   form scim2-server accepts) or Entra's default value list ([`MemberRemoval::ValueList`]).
//! - A group read that carries `members` although they were excluded is tolerated (members
//!   ignored, one warning per client) where Entra fails it with
//!   `SystemForCrossDomainIdentityManagementMultipleEntriesInResponse`.
//! - Custom extension URNs are listed in `schemas` by default
//!   ([`ScimClientConfig::list_custom_schemas`]).
//! - `Add` of a typed multi-valued path adds a collection entry (see [`patch_body`]): the engine
//!   should use `Replace` for a sub-attribute of an entry it already sent.
//! - A filtered query's 404 is `ScimComplianceIssue`, never "no match"; redirects are not
//!   followed (reported as `WebExceptionProtocolError` with the new location).
//! - 429/503/504 are retried within the call (honouring `Retry-After`, capped at 60 s);
//!   timeouts and connection errors are not, because a POST may have been applied.

mod client;
pub mod fuzz;
mod limit;
mod members;
mod patch;
mod path;
mod resource;

pub use client::{DEFAULT_MAX_RESPONSE_BYTES, PlannedRequest, ScimClient, ScimClientConfig};
pub use members::{MemberRemoval, add_members_body, remove_members_body};
pub use patch::{Dialect, patch_body, patch_body_with_manager};
pub use path::{
    CORE_GROUP_SCHEMA, CORE_USER_SCHEMA, ENTERPRISE_USER_SCHEMA, ERROR_SCHEMA,
    LIST_RESPONSE_SCHEMA, PATCH_OP_SCHEMA, match_filter,
};
pub use resource::{
    ManagerFormat, flatten_group, flatten_user, group_resource, group_resource_with, user_resource,
    user_resource_with, user_resource_with_manager,
};
