//! The provisioning service behind `scimsync serve`: every job on its own schedule in its own
//! task, Entra's quarantine with notifications, accidental-deletion holds that wait for an
//! admin, and a handle the admin API steers jobs through.
//!
//! - [`schedule`]: interval slots and cron expressions, quarantine back-off (pure).
//! - [`quarantine`]: Entra's triggers and reason names, entering and leaving (pure).
//! - [`events`]: the one line per finished cycle `serve` prints.
//! - [`notify`]: webhook and SMTP notifications.
//! - [`forward`]: admin actions on a job another replica runs, through the database.
//! - [`runner`]: the job tasks, [`Service`] and [`ServiceHandle`].
//! - [`time`]: the [`Sleeper`] abstraction and [`ManualTime`] for tests.
//!
//! On sled, a job's state is locked by the process that opened it, so a second process
//! configured with the same job fails at once. On PostgreSQL, replicas share jobs by lease:
//! [`Service::add_job_leased`] runs a job's cycles only while its lease flag is set.

pub mod events;
pub mod forward;
pub mod notify;
pub mod quarantine;
pub mod runner;
pub mod schedule;
pub mod time;

pub use forward::{Action, Forward, Forwarding};
pub use notify::{Notification, NotificationEvent, Notifier};
pub use quarantine::{QuarantineReason, QuarantineState};
pub use runner::{
    CommandError, HeldSummary, JobDef, JobState, JobStatus, LeaseStatus, LeaseView, PlainRender,
    Render, Service, ServiceHandle, ServiceOptions, Subject,
};
pub use time::{ManualTime, Sleeper, SystemSleeper};
