//! The pure steps of a cycle: **scope** (is this user in?), **map** (what should the target
//! hold?) and the hash of a representation.
//!
//! Architecture invariant: this crate does no I/O, never reads the clock and keeps no global
//! state. Time comes in as `now`; expressions and scoping regexes are compiled once into a
//! [`CompiledMappings`] / [`CompiledFilters`] that the caller owns and passes to every object.

mod filter;
mod map;
mod scope;

pub use filter::{CompiledFilters, FilterVerdict, evaluate_filters};
pub use map::{
    CompiledMappings, MapError, hash_attrs, map_user, matching_keys, source_attributes,
    unique_candidates,
};
pub use scope::{Scope, ScopeDecision, evaluate_scope};
