//! Provisioning log entries, shaped like Entra's `provisioningObjectSummary` so admins and
//! their log tooling recognise the fields.

use crate::ErrorCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LogAction {
    Create,
    Update,
    Delete,
    Disable,
    StagedDelete,
    /// Nothing was written (no change, a skip, a failure before any action).
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LogStatus {
    Success,
    Warning,
    Failure,
    Skipped,
}

/// One step, as Entra's `provisioningStep` (`import`, `scoping`, `matching`, `processing`,
/// `referenceResolution`, `export`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogStep {
    pub name: String,
    pub provisioning_step_type: String,
    pub status: LogStatus,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModifiedProperty {
    pub display_name: String,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEntry {
    pub id: String,
    pub activity_date_time: DateTime<Utc>,
    pub job_id: String,
    pub cycle_id: String,
    pub change_id: String,
    pub provisioning_action: LogAction,
    pub status: LogStatus,
    pub error_code: Option<ErrorCode>,
    pub reason: Option<String>,
    pub source_id: String,
    pub source_display_name: String,
    pub target_id: Option<String>,
    pub provisioning_steps: Vec<LogStep>,
    pub modified_properties: Vec<ModifiedProperty>,
    pub duration_in_milliseconds: u64,
}
