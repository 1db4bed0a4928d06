//! Flat target attributes and the changes between two versions of them.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Target attributes keyed by their SCIM path, exactly as a mapping names them:
/// `userName`, `name.givenName`, `emails[type eq "work"].value`, `active`,
/// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department`.
///
/// Values are never JSON `null`: a null is "not sent" and is simply absent.
pub type Attrs = BTreeMap<String, Value>;

/// How one attribute changes on the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeOp {
    /// The target had no value we know of: the value is added.
    Add,
    /// The target had a value we sent or matched: the value is replaced.
    Replace,
    /// Clear the target's value (only with the job's `clear_on_null` opt-in: Entra never
    /// clears a target value). The change's `value` is `null`.
    Remove,
}

/// One attribute to change on the target. Only the scim crate turns these into PatchOp JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub op: ChangeOp,
    pub path: String,
    pub value: Value,
}
