//! Fuzz target `scim_path`: arbitrary text as a mapping target path and a matching value (split
//! at the first NUL) must never panic the path parser, the filter, POST and PATCH builders, and
//! every value must escape into a filter string literal that is JSON decoding back to it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        scimsync_scim::fuzz::path_and_value(text);
    }
});
