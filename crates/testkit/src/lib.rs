//! Test kit for scimsync: in-process emulators of the systems the engine talks to.
//!
//! - [`doubles`]: in-memory `Source` and `Target` doubles for unit tests.
//! - [`graph`]: Microsoft Graph v1.0 + the Entra token endpoint (the source side).
//! - [`scim`]: an in-memory SCIM 2.0 service provider (the target side).
//! - [`faults`]: a fault-injecting HTTP proxy to put in front of a real SCIM server.

pub mod doubles;
pub mod faults;
pub mod graph;
pub mod scim;

/// Peak resident memory of this process in MiB (Linux `VmHWM`), for benchmarks that print
/// figures. `NaN` where `/proc` is not available.
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(str::to_string)
        })
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|k| k.parse::<f64>().ok())
        })
        .map(|kib| kib / 1024.0)
        .unwrap_or(f64::NAN)
}
