//! `scimsync-expr`: the Microsoft Entra attribute-mapping expression language.
//!
//! Admins paste the expressions they use in Entra (`Join(" ", [givenName], [surname])`,
//! `Switch([IsSoftDeleted], , "False", "True", "True", "False")`, …); this crate parses them with
//! exact `line:column` errors, checks them against the known source attributes, evaluates them
//! with Entra's null handling, and traces every step for `scimsync eval`.
//!
//! Architecture invariant: this crate does no I/O and never reads the clock. `Now()` is
//! [`Context::now`]; `Guid()`/`RandomString()` derive from [`Context::seed`] and the call's
//! position, so the same input always gives the same output.
//!
//! # Decisions where Entra's documentation is silent or loose
//! - Function names are case-sensitive, as Entra's are: `join(…)` is "unknown function 'join';
//!   function names are case-sensitive, did you mean 'Join'?".
//! - Attribute names are taken verbatim between `[` and `]` (surrounding blanks trimmed) and
//!   looked up exactly; a missing attribute is null.
//! - Decimal literals such as `42568.75` parse as [`Expr::Word`] holding their text and
//!   evaluate to that text, so `Len(42568.75)` is 8. Enum words (`vbTextCompare`) are also
//!   words; `&HF7` and `-3` are [`Expr::Int`].
//! - In strings, `\"` and `\\` are escapes; any other backslash is kept literally.
//! - Null in: `Left`, `Mid`, `Word` give `""` and `Len` gives 0 (as documented); `Append` treats
//!   a null side as `""` (both null → null); `Join` skips null and empty values and gives null
//!   when nothing is left; the other string functions give null, so the attribute is not sent.
//! - `IIF` fails (an error) when any source attribute in its condition is null or empty, as
//!   Entra documents; `Switch` with a `""` key catches null and empty.
//! - `IgnoreFlowIfNullOrEmpty` anywhere in the expression turns the whole result into
//!   [`Outcome::Ignore`]. `SelectUniqueValue` must be the whole expression; its null/empty
//!   candidates are dropped.
//! - App roles: `[appRoleAssignments]` is a JSON array of `{appRoleId, principalType,
//!   principalId, displayName?, value?}`. The all-zero "Default Access" role is skipped and
//!   duplicates removed. `AppRoleAssignmentsComplex` and `AssertiveAppRoleAssignmentsComplex`
//!   give a list of SCIM roles `{"primary": false, "type": "WindowsAzureActiveDirectoryRole",
//!   "display": displayName ?? value ?? appRoleId, "value": value ?? displayName ?? appRoleId}`
//!   (no assignments: null for the first, an empty list for the assertive one, which replaces
//!   the target's list); `SingleAppRoleAssignment` gives the first role's `value` as a string.
//! - `Split` does not trim the parts (like .NET's `String.Split`); `Item` is 1-based and 0 is an
//!   error; `Not` gives `True` for anything that is not true (including null).
//! - Dates are UTC; `FormatDateTime`'s `dateTimeStyles` is accepted and has no effect, and an
//!   empty `inputFormat` reads the source like `CDate` does (ISO-8601 and friends).
//! - Comparisons: `=`/`<>` compare text case-sensitively (numerically when one side is a
//!   number, as booleans when one side is a boolean); `< <= > >=` compare numbers, then dates,
//!   then text. `Replace` uses Rust's `regex` syntax, which covers .NET's named groups
//!   (`(?<name>…)`, `${name}`) but not look-around or back-references.
//! - `check` also flags bare words other than `vbBinaryCompare`, `vbTextCompare`, `True`,
//!   `False` and numbers: `Join(" ", givenName)` almost always means `[givenName]`.
//!
//! # Fuzzing
//! A cargo-fuzz target lives outside the workspace in `fuzz/`:
//! `cd fuzz && cargo fuzz run parse --sanitizer none`. It parses arbitrary text and checks that
//! printing and re-parsing gives the same tree and that evaluation never panics.

mod ast;
mod check;
mod dates;
mod error;
mod eval;
mod parse;
mod text;
mod value;

pub use ast::{CompareOp, Expr, Span};
pub use check::{FUNCTIONS, FunctionSpec, attributes, check, function, redacts};
pub use error::ExprError;
pub use eval::{Context, Outcome, ROLE_TYPE, eval, trace};
pub use parse::{MAX_DEPTH, MAX_LEN, parse};
pub use value::Value;

/// Entra's date text for a UTC instant: `M/d/yyyy h:mm:ss tt`.
pub fn entra_date_text(d: &chrono::DateTime<chrono::Utc>) -> String {
    dates::entra_text(d)
}
