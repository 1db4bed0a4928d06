//! Test kit for scimsync: in-process emulators of the systems the engine talks to.
//!
//! - [`doubles`]: in-memory `Source` and `Target` doubles for unit tests.
//! - [`graph`]: Microsoft Graph v1.0 + the Entra token endpoint (the source side).

pub mod graph;
pub mod doubles;
