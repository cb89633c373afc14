//! The crate's one error type.
//!
//! Every fallible public function returns [`Error`]. It is `Clone` because a deduplicated run
//! hands the same outcome to every caller that shared it; sources that are not `Clone`
//! (database and I/O errors) are kept behind an `Arc`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::history::RunId;

/// What went wrong, in a form callers can match on and HTTP can map to a status.
#[derive(Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No task of that name is registered.
    #[error("Task `{0}` is not available!")]
    TaskNotFound(String),

    /// No run with that id is known to this runtime or its store.
    #[error("Run `{0}` was not found")]
    RunNotFound(String),

    /// The run is not in a state that allows what was asked (retrying a run that is still
    /// going, or that succeeded).
    #[error("{message}")]
    RunState {
        /// The run.
        run_id: RunId,
        /// What is wrong, and what to do instead.
        message: String,
    },

    /// The payload does not fit the task's payload type.
    #[error("Invalid payload for task `{task}` at `{path}`: {reason}")]
    InvalidPayload {
        /// The task the payload was for.
        task: String,
        /// Where the value does not fit: `user.age`, `items[2].id`, or `.` for the payload
        /// itself.
        path: String,
        /// What is wrong there.
        reason: String,
    },

    /// The task body returned an error.
    #[error("{message}")]
    TaskFailed {
        /// The error's text.
        message: String,
        /// The JSON the body attached to it, if any.
        data: Option<Value>,
    },

    /// The task body panicked; the panic was caught and the runtime kept going.
    #[error("Task `{task}` panicked: {message}")]
    TaskPanicked {
        /// The task.
        task: String,
        /// The panic's text.
        message: String,
    },

    /// The last attempt did not finish within the task's timeout.
    #[error("Task `{task}` timed out after {}ms", .after.as_millis())]
    TimedOut {
        /// The task.
        task: String,
        /// The timeout it exceeded.
        after: Duration,
    },

    /// The run was cancelled by id or by shutdown before it finished.
    #[error("Run `{run_id}` of task `{task}` was cancelled")]
    Cancelled {
        /// The task.
        task: String,
        /// The run.
        run_id: RunId,
    },

    /// The run was cancelled because the app shut down before it finished (after the
    /// shutdown grace period).
    #[error("Run `{run_id}` of task `{task}` was cancelled: the app shut down before it finished")]
    Interrupted {
        /// The task.
        task: String,
        /// The run.
        run_id: RunId,
    },

    /// A claimed durable run was stopped on this instance because its claim could no
    /// longer be counted on: the instance's lease ran out before it could renew it, or the
    /// store refused a write of the attempt because another instance had taken the run
    /// over. The run is not over: it goes on as its next attempt on a live instance.
    #[error(
        "Run `{run_id}` of task `{task}` was stopped on this instance: its claim on the run was lost (the instance's lease ran out, or another instance took the run over); the run goes on elsewhere"
    )]
    ClaimLost {
        /// The task.
        task: String,
        /// The run.
        run_id: RunId,
    },

    /// The runtime is shutting down and takes no new runs.
    #[error("The task runtime is shutting down and accepts no new runs")]
    ShuttingDown,

    /// Two definitions claim one task name.
    #[error(
        "Task `{name}` is defined twice: in {first} and in {second}. Task names must be unique; rename or remove one of them"
    )]
    DuplicateTask {
        /// The name given twice.
        name: String,
        /// Where it was defined first.
        first: String,
        /// Where it was defined again.
        second: String,
    },

    /// A schedule definition is invalid; the message names the bad value and what is
    /// accepted.
    #[error("Invalid schedule `{schedule}`: {message}")]
    InvalidSchedule {
        /// The schedule.
        schedule: String,
        /// What is wrong with it.
        message: String,
    },

    /// No schedule of that name is registered (or it was filtered out by `env`).
    #[error("Schedule `{0}` is not defined")]
    ScheduleNotFound(String),

    /// A custom strategy sent while its schedule was paused, disabled, removed or stopped.
    #[error("Schedule `{schedule}` is {state}; the send was dropped")]
    ScheduleInactive {
        /// The schedule.
        schedule: String,
        /// Why it takes no sends: `paused`, `disabled`, `removed` or `stopped`.
        state: &'static str,
    },

    /// An argument on the app's command line is not valid.
    #[error("{message}")]
    Usage {
        /// What is wrong, naming the argument, and what to write instead.
        message: String,
    },

    /// An environment variable the app reads is malformed.
    #[error("Invalid configuration: {message}")]
    Env {
        /// The variable, e.g. `PORT`.
        var: &'static str,
        /// What is wrong and what to write instead.
        message: String,
    },

    /// `taskyard.toml` (or the text given as the app's configuration) cannot be read or
    /// holds a value of the wrong shape.
    #[error("Invalid configuration: {message}")]
    ConfigFile {
        /// Where the configuration came from: its path, or the name given in code.
        origin: String,
        /// What is wrong, naming the origin and the key.
        message: String,
    },

    /// A name given in code is not valid or already taken: a task, a strategy, a
    /// lifecycle task.
    #[error("Invalid configuration: {message}")]
    InvalidName {
        /// The name.
        name: String,
        /// What is wrong and how to fix it.
        message: String,
    },

    /// A setting given in code is not valid (a time zone, a store URL).
    #[error("Invalid configuration: {message}")]
    Setting {
        /// The setting, e.g. `time_zone`.
        setting: &'static str,
        /// What is wrong and what to write instead.
        message: String,
    },

    /// The app's routes cannot be served: a route file's metadata is wrong, or routes
    /// cannot share one router.
    #[error("Invalid configuration: {message}")]
    Routes {
        /// What is wrong, naming the files involved.
        message: String,
    },

    /// A lifecycle task failed while the app was starting, so the app did not start.
    #[error("Lifecycle task `{task}` failed, so the app did not start: {message}")]
    Lifecycle {
        /// The lifecycle task.
        task: String,
        /// Its error.
        message: String,
    },

    /// The run history store failed.
    #[error("Store error ({backend}): {source}")]
    Store {
        /// `sqlite` or `postgres`.
        backend: &'static str,
        /// The database driver's error.
        #[source]
        source: Arc<dyn std::error::Error + Send + Sync>,
    },

    /// The store did not answer in time, or keeps failing: the caller was not answered
    /// with a result, and what was queued for the store is written when it is back.
    #[error("The run history store ({backend}) is unavailable: {message}")]
    StoreUnavailable {
        /// `sqlite` or `postgres`.
        backend: &'static str,
        /// What happened: a timeout, or the last failure.
        message: String,
    },

    /// The SQLite file this instance opened was deleted or replaced while it ran. Going on
    /// would split the cluster (this instance on the old file, the others on the new), so
    /// the instance stops.
    #[error(
        "The SQLite file {path} was deleted or replaced while the app ran; this instance stops so that it does not split from the instances using the new file. Restart it to use the file now at that path"
    )]
    StoreReplaced {
        /// The file's path.
        path: String,
    },

    /// A stored row could not be decoded (written by a newer or foreign version).
    #[error("Store error ({backend}): {message}")]
    StoreData {
        /// `sqlite` or `postgres`.
        backend: &'static str,
        /// What could not be decoded.
        message: String,
    },

    /// Binding or serving failed.
    #[error("I/O error: {context}: {source}")]
    Io {
        /// What was being done, e.g. `binding 127.0.0.1:3000`.
        context: String,
        /// The operating system's error.
        #[source]
        source: Arc<std::io::Error>,
    },
}

/// The sentence, then any cause it does not already state. `fn main() ->
/// taskyard::Result<()>` prints a returned error with `Debug`, so this is what a person
/// reads when an app fails to start: `Error: Lifecycle task `prepare` failed, so the app
/// did not start: …`, not the variant's fields.
impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let message = self.to_string();
        f.write_str(&message)?;
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            let cause_text = cause.to_string();
            if !message.contains(&cause_text) {
                write!(f, "\n  caused by: {cause_text}")?;
            }
            source = cause.source();
        }
        Ok(())
    }
}

/// The broad class of an [`Error`], stable across versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Nothing of that name or id (HTTP 404).
    NotFound,
    /// The input is wrong: a payload, a definition, a setting (HTTP 400).
    InvalidInput,
    /// The task itself failed (HTTP 500, with the task's message).
    Failed,
    /// It took longer than allowed (HTTP 504).
    TimedOut,
    /// It was cancelled (HTTP 409).
    Cancelled,
    /// The run's state does not allow it (HTTP 409).
    Conflict,
    /// Not now: shutting down, or the store is away (HTTP 503).
    Unavailable,
    /// A fault of what the app runs on (HTTP 500).
    Internal,
}

impl Error {
    /// The broad class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::TaskNotFound(_) | Error::RunNotFound(_) | Error::ScheduleNotFound(_) => {
                ErrorKind::NotFound
            }
            Error::InvalidPayload { .. }
            | Error::Env { .. }
            | Error::ConfigFile { .. }
            | Error::InvalidName { .. }
            | Error::Setting { .. }
            | Error::Routes { .. }
            | Error::DuplicateTask { .. }
            | Error::InvalidSchedule { .. }
            | Error::Usage { .. } => ErrorKind::InvalidInput,
            Error::TaskFailed { .. } | Error::TaskPanicked { .. } | Error::Lifecycle { .. } => {
                ErrorKind::Failed
            }
            Error::TimedOut { .. } => ErrorKind::TimedOut,
            Error::Cancelled { .. } => ErrorKind::Cancelled,
            Error::RunState { .. } => ErrorKind::Conflict,
            Error::ShuttingDown
            | Error::Interrupted { .. }
            | Error::ClaimLost { .. }
            | Error::ScheduleInactive { .. }
            | Error::Store { .. }
            | Error::StoreUnavailable { .. }
            | Error::StoreReplaced { .. } => ErrorKind::Unavailable,
            Error::StoreData { .. } | Error::Io { .. } => ErrorKind::Internal,
        }
    }

    /// True for failures of the infrastructure under the app (the store, I/O) rather than
    /// of the request: their text may carry database names, paths or hosts, so production
    /// answers hide it.
    pub fn is_internal_detail(&self) -> bool {
        matches!(
            self,
            Error::Store { .. }
                | Error::StoreUnavailable { .. }
                | Error::StoreReplaced { .. }
                | Error::StoreData { .. }
                | Error::Io { .. }
        )
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source: Arc::new(source),
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The text of a caught panic: its message when it carries one (`panic!` with a string or
/// a format), else a note that it does not.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}
