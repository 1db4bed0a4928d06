//! Defaults that crates which do not depend on one another apply: the job file's (`config`)
//! and the clients' own (`graph`, `scim`) and the engine's. Each is written here once, so a
//! job file that leaves a key out and a client built with `new` behave the same.
//!
//! Defaults only the job file has (retention, SMTP port, the admin bind, escrow and
//! quarantine) live in `scimsync_config`, next to the types they fill.

use std::time::Duration;

/// `[source] graph_url`: Microsoft Graph in the public cloud.
pub const GRAPH_URL: &str = "https://graph.microsoft.com";
/// `[source] login_url`: the Microsoft identity platform in the public cloud.
pub const LOGIN_URL: &str = "https://login.microsoftonline.com";
/// `[source] page_size`: Graph's largest page for `/users` (`$top`).
pub const GRAPH_PAGE_SIZE: u32 = 999;
/// `[target] max_concurrency`: SCIM requests in flight at once (the adaptive limit's ceiling).
pub const TARGET_MAX_CONCURRENCY: usize = 4;
/// `[target] timeout_secs`: one SCIM request, body included.
pub const TARGET_TIMEOUT: Duration = Duration::from_secs(30);
/// `[target] membership_batch_size`: the most group members per PATCH; the engine starts at
/// 100 and grows toward it while the target answers as fast (issue 16), halving on a refusal.
pub const MEMBERSHIP_BATCH_SIZE: usize = 1000;
/// `deletion_threshold`: Entra's accidental-deletions threshold as the portal suggests it.
pub const DELETION_THRESHOLD: u32 = 500;
/// `deletion_max_share`: percent of the provisioned objects one cycle may deprovision.
pub const DELETION_MAX_SHARE: u32 = 50;
