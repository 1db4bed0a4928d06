//! Fuzz target `graph_answer`: arbitrary bytes as a Graph answer (page, delta items with
//! `members@delta`, `$batch` responses, error envelope) or a token endpoint answer must never
//! panic the client's decoders.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    scimsync_graph::fuzz::decode_graph_answer(data);
    scimsync_graph::fuzz::decode_token_answer(data);
});
