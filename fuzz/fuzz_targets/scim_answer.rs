//! Fuzz target `scim_answer`: arbitrary bytes as a SCIM target's answer (ListResponse, single
//! resource, SCIM Error, error status body) must never panic the client's decoders.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    scimsync_scim::fuzz::decode_answer(data);
});
