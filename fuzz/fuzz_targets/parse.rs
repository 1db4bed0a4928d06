//! Fuzz target `parse`: arbitrary text must never panic the parser; whatever parses must print
//! to canonical text that re-parses to the same tree, and must evaluate without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scimsync_expr::{Context, eval, parse, trace};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(expr) = parse(text) else {
        return;
    };
    let printed = expr.to_string();
    let again = parse(&printed).unwrap_or_else(|e| panic!("canonical text {printed:?} fails: {e}"));
    assert!(
        expr.eq_ignore_spans(&again),
        "{printed:?} re-parses differently"
    );
    let attrs = Default::default();
    let ctx = Context {
        attrs: &attrs,
        now: chrono::DateTime::UNIX_EPOCH,
        seed: 1,
        default_domain: Some("example.com"),
    };
    let _ = eval(&expr, &ctx);
    let _ = trace(&expr, &ctx);
});
