//! Helpers shared by the engine's unit tests.

use scimsync_config::{Apply, Mapping, MappingValue};

/// A direct mapping `source` → `target`, matching with precedence `matching` when given.
pub(crate) fn mapping(target: &str, source: &str, matching: Option<u32>) -> Mapping {
    Mapping {
        target: target.into(),
        value: MappingValue::Direct {
            source: source.into(),
        },
        matching,
        apply: Apply::Always,
        default: None,
        required: false,
        line: 1,
    }
}
