//! End-to-end tests: the `scimsync` binary against the Graph emulator and (a) the built-in
//! SCIM app, (b) the real third-party `scim2-server` from PyPI. One test binary, as linking
//! is the expensive part on a 2-core machine.

mod apps;
mod builtin;
mod cli_ux;
mod demo;
mod entra;
mod graph_sdk;
mod groups;
mod identity;
mod logs;
mod manager;
mod packaging;
mod postgres;
mod replicas;
mod scim2;
mod scimmy;
mod serve;
mod support;
mod test_connection;
mod tidy;
mod tmux;
