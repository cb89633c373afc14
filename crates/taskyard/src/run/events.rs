//! [`RunEvent`]: live notifications of run starts, progress and ends.
//!
//! The runtime publishes on a `tokio::sync::broadcast` channel; HTTP's event stream and the
//! dashboard are subscribers. A slow subscriber misses events (it sees `Lagged`) rather than
//! slowing runs down.

use jiff::Timestamp;
use serde::Serialize;

use super::{Progress, RunId, RunStatus};

/// One thing that happened to a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunEvent {
    /// The run it is about.
    pub run_id: RunId,
    /// The run's task.
    pub task: String,
    /// When it happened.
    pub at: Timestamp,
    /// What happened.
    #[serde(flatten)]
    pub kind: RunEventKind,
}

/// What happened to a run: an attempt started, progress, or the end.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RunEventKind {
    /// An attempt started.
    Started {
        /// Its number, from 1.
        attempt: u32,
    },
    /// The task reported progress.
    Progress(Progress),
    /// The run ended.
    Finished {
        /// How it ended.
        status: RunStatus,
        /// Why it failed, when it did.
        error: Option<String>,
    },
}
