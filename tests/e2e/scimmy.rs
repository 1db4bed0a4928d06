//! The binary against a second real SCIM server: SCIMMY (npm, `tests/scimmy/server.js`), beside
//! scim2-server (PyPI). The same flows as `scim2.rs`, `groups.rs` and `apps.rs`, run on both,
//! all in the `rfc` dialect. Without SCIMMY's packages installed (`npm ci` in `tests/scimmy`)
//! and outside CI, each test says it is skipped and passes.
//!
//! Where the two servers disagree (probed by hand and by these tests; the `rfc` dialect passes
//! on both, so none of it needs a change in our client):
//! - Member removal: scim2-server rejects Entra's `{"op":"Remove","path":"members","value":[…]}`
//!   (400) and takes only `members[value eq "id"]`; SCIMMY takes both. `rfc` sends the
//!   filtered path (golden `remove_members.json`).
//! - Group filters: SCIMMY answers 400 to `members eq "id"` (scim2-server takes it);
//!   `members[value eq "id"]` works on both.
//! - Unknown extension URNs: scim2-server refuses them (400); SCIMMY drops their attributes
//!   silently and answers 201, so a missing schema shows only as missing values (the enterprise
//!   extension is declared in `server.js` for that reason).
//! - PATCH: scim2-server answers 204 with no body, SCIMMY 200 with the resource.
//! - `If-Match` with a stale version: scim2-server answers 412, SCIMMY ignores it (200).
//! - Filters compare with case in SCIMMY (`eq` is exact); `server.js` folds case for userName
//!   and displayName as RFC 7643 asks, since matching depends on it.
//! - Both agree on: strict booleans (`"active":"False"` is a 400 on SCIMMY), `manager` only in
//!   the complex form, a replace of `emails[type eq "work"].value` with no work email is a 400
//!   (`noTarget`), dangling member ids accepted, userName unique ignoring case (409).
//! - Custom extension schemas (Klaxoon's group licence) are served by scim2-server from a file;
//!   this SCIMMY server declares none, so the Klaxoon template runs against scim2-server only.

use crate::support::*;

macro_rules! on_scimmy {
    ($flow:expr) => {
        let Some(server) = Scimmy::start() else {
            return;
        };
        $flow(&server).await;
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_lifecycle_against_scimmy() {
    on_scimmy!(crate::scim2::lifecycle_flow);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_against_scimmy() {
    on_scimmy!(crate::groups::groups_flow);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_template_against_scimmy() {
    on_scimmy!(crate::apps::chaos_flow);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tribeloo_template_against_scimmy() {
    on_scimmy!(crate::apps::tribeloo_flow);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn atmos_template_against_scimmy() {
    on_scimmy!(crate::apps::atmos_flow);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cybsafe_template_against_scimmy() {
    on_scimmy!(crate::apps::cybsafe_flow);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scim_template_against_scimmy() {
    on_scimmy!(crate::apps::scim_flow);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_connection_against_scimmy() {
    let Some(server) = Scimmy::start() else {
        return;
    };
    let graph = tenant(2).await;
    let job = write_job(&graph, server.base(), server.token(), JobOptions::default());
    let out = scimsync(&["test-connection", "--config", job.config.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
}
