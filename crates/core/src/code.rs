//! Stable error codes. Where Entra has a name for a failure we use Entra's name, so an admin
//! reads the same word in our log, our API and Microsoft's documentation.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorCode {
    // --- target (SCIM) failures, Entra's names ---
    /// The matching query found more than one target object.
    DuplicateTargetEntries,
    /// A target id we cached answered 404.
    InvalidAnchor,
    /// 409 that matching again could not resolve.
    EntryConflict,
    /// 429.
    TooManyRequests,
    /// 5xx.
    InternalServerError,
    /// No answer in time.
    Timeout,
    /// The connection failed or the answer was not HTTP we understand.
    WebExceptionProtocolError,
    /// 401.
    Unauthorized,
    /// 403.
    InsufficientRights,
    /// 405.
    MethodNotAllowed,
    /// 422.
    UnprocessableEntity,
    /// 501.
    NotImplemented,
    /// 400 (schema violation, bad value). Entra logs these under the SCIM error's `scimType`.
    SchemaViolation,
    /// The body could not be understood as SCIM.
    SystemForCrossDomainIdentityManagementServiceIncompatible,
    /// A filter query answered 404: the target is not SCIM compliant (a quarantine cause).
    ScimComplianceIssue,
    /// A matching attribute has no value for this object.
    ImportSkipped,
    /// A required target attribute has no value for this object.
    MandatoryFieldsMissing,
    /// An attribute-mapping expression failed for this object (e.g. `IIF` on a null value).
    ExpressionFailed,
    /// A reference (`manager`) names a user the target does not have yet; the reference is
    /// tried again at every cycle.
    UnableToResolveReferenceAttributeValue,

    // --- source (Graph) failures ---
    /// The token endpoint refused our credentials (AADSTS…).
    GraphAuthenticationFailed,
    /// Graph refused or failed a read.
    GraphRequestFailed,

    // --- our own ---
    /// The job configuration is invalid.
    ConfigInvalid,
    /// A secret could not be resolved (missing environment variable or file).
    SecretUnavailable,
    /// The state store failed.
    StateStoreFailed,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::DuplicateTargetEntries => "DuplicateTargetEntries",
            ErrorCode::InvalidAnchor => "InvalidAnchor",
            ErrorCode::EntryConflict => "EntryConflict",
            ErrorCode::TooManyRequests => "TooManyRequests",
            ErrorCode::InternalServerError => "InternalServerError",
            ErrorCode::Timeout => "Timeout",
            ErrorCode::WebExceptionProtocolError => "WebExceptionProtocolError",
            ErrorCode::Unauthorized => "Unauthorized",
            ErrorCode::InsufficientRights => "InsufficientRights",
            ErrorCode::MethodNotAllowed => "MethodNotAllowed",
            ErrorCode::UnprocessableEntity => "UnprocessableEntity",
            ErrorCode::NotImplemented => "NotImplemented",
            ErrorCode::SchemaViolation => "SchemaViolation",
            ErrorCode::SystemForCrossDomainIdentityManagementServiceIncompatible => {
                "SystemForCrossDomainIdentityManagementServiceIncompatible"
            }
            ErrorCode::ScimComplianceIssue => "ScimComplianceIssue",
            ErrorCode::ImportSkipped => "ImportSkipped",
            ErrorCode::MandatoryFieldsMissing => "MandatoryFieldsMissing",
            ErrorCode::ExpressionFailed => "ExpressionFailed",
            ErrorCode::UnableToResolveReferenceAttributeValue => {
                "UnableToResolveReferenceAttributeValue"
            }
            ErrorCode::GraphAuthenticationFailed => "GraphAuthenticationFailed",
            ErrorCode::GraphRequestFailed => "GraphRequestFailed",
            ErrorCode::ConfigInvalid => "ConfigInvalid",
            ErrorCode::SecretUnavailable => "SecretUnavailable",
            ErrorCode::StateStoreFailed => "StateStoreFailed",
        }
    }

    /// Whether trying the same request again later can succeed without an admin.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorCode::TooManyRequests
                | ErrorCode::InternalServerError
                | ErrorCode::Timeout
                | ErrorCode::WebExceptionProtocolError
                | ErrorCode::GraphRequestFailed
        )
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
