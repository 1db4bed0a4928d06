//! The shared vocabulary of scimsync.
//!
//! Every other crate speaks in these types: what the source gave ([`SourceUser`]), what the
//! target holds ([`TargetUser`], [`Attrs`]), what changed ([`Change`]), what we remember
//! ([`ObjectState`]), what went wrong ([`ErrorCode`]) and the three traits that sit at the I/O
//! seams ([`Source`], [`Target`], [`StateStore`]), plus the one retry policy ([`Backoff`]).
//! This crate does no I/O.

mod attrs;
mod backoff;
mod clock;
mod code;
pub mod defaults;
mod log;
mod secret;
mod source;
mod state;
mod target;
pub mod text;

pub use attrs::{Attrs, Change, ChangeOp};
pub use backoff::Backoff;
pub use clock::{Clock, ManualClock, SystemClock};
pub use code::ErrorCode;
pub use log::{LogAction, LogEntry, LogStatus, LogStep, ModifiedProperty};
pub use secret::Secret;
pub use source::{
    AppRoleAssignment, Assignments, GroupQuery, GroupRead, MemberKind, Source, SourceError,
    SourceGroup, SourceSnapshot, SourceUser, UserQuery, UserRead, UserScope,
};
pub use state::{
    ObjectState, ObjectTarget, Outcome, StateChange, StateStore, StoreError, record_key,
};
pub use target::{Target, TargetError, TargetGroup, TargetUser};
