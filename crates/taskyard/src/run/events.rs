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
    pub run_id: RunId,
    pub task: String,
    pub at: Timestamp,
    #[serde(flatten)]
    pub kind: RunEventKind,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RunEventKind {
    Started {
        attempt: u32,
    },
    Progress(Progress),
    Finished {
        status: RunStatus,
        error: Option<String>,
    },
}
