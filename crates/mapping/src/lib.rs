//! The pure steps of a cycle: **scope** (is this user in?), **map** (what should the target
//! hold?) and the hash of a representation.
//!
//! Architecture invariant: this crate does no I/O and never reads the clock.

mod map;
mod scope;

pub use map::{MapError, hash_attrs, map_user, matching_keys, source_attributes};
pub use scope::{ScopeDecision, evaluate_scope};
