//! Test kit for scimsync: in-process emulators of the systems the engine talks to.
//!
//! - [`doubles`]: in-memory `Source` and `Target` doubles for unit tests.
//! - [`graph`]: Microsoft Graph v1.0 + the Entra token endpoint (the source side).
//! - [`scim`]: an in-memory SCIM 2.0 service provider (the target side).

pub mod doubles;
pub mod graph;
pub mod scim;
