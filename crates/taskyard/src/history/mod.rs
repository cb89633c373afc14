//! What every layer says about runs: their ids, records, statuses, triggers and the filter
//! that lists them. These types depend on nothing else in the crate, so the store below the
//! runtime and the runtime above it speak the same language without importing each other.

mod filter;
mod filter_query;
mod id;
mod record;
mod trigger;

pub use filter::RunFilter;
pub use filter_query::BadParam;
pub use id::RunId;
pub(crate) use record::duration_ms;
pub use record::{Attempt, Progress, RunRecord, RunStatus};
pub use trigger::Trigger;

/// Text that is not a run id or a run status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not a run id (a UUID).
    #[error("`{0}` is not a run id (a UUID such as 0192f0c4-5e6b-7a3c-8d1e-2f3a4b5c6d7e)")]
    RunId(String),
    /// Not one of the run statuses.
    #[error(
        "unknown run status `{0}`; expected one of queued, running, succeeded, failed, cancelled, timed_out, abandoned"
    )]
    RunStatus(String),
}
