//! The pure steps of a cycle: **scope** (is this user in?), **map** (what should the target
//! hold?) and the hash of a representation.
//!
//! Architecture invariant: this crate does no I/O and never reads the clock.

mod filter;
mod map;
mod scope;

pub use filter::{FilterVerdict, evaluate_filters};
pub use map::{
    MapError, hash_attrs, map_user, matching_keys, source_attributes, unique_candidates,
};
pub use scope::{Scope, ScopeDecision, evaluate_scope};
