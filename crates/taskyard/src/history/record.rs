//! [`RunRecord`]: what history keeps of a run, and its [`RunStatus`].

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{ParseError, RunId, Trigger};

/// Where a run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Waiting for a concurrency slot or for its next attempt.
    Queued,
    /// Executing an attempt.
    Running,
    /// Finished with a result.
    Succeeded,
    /// Its last attempt failed.
    Failed,
    /// Cancelled by id, or by shutdown.
    Cancelled,
    /// Its last attempt exceeded the task's timeout.
    TimedOut,
    /// Its instance died while it was queued or running.
    Abandoned,
}

impl RunStatus {
    /// Every status, in the order of a run's life.
    pub const ALL: [RunStatus; 7] = [
        RunStatus::Queued,
        RunStatus::Running,
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::Cancelled,
        RunStatus::TimedOut,
        RunStatus::Abandoned,
    ];

    /// The status as stored and sent: `queued`, `running`, …, `timed_out`, `abandoned`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
            RunStatus::TimedOut => "timed_out",
            RunStatus::Abandoned => "abandoned",
        }
    }

    /// True once the run can change no more.
    pub fn is_final(self) -> bool {
        !matches!(self, RunStatus::Queued | RunStatus::Running)
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunStatus {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RunStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| ParseError::RunStatus(s.to_owned()))
    }
}

/// The last progress a run reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// From 0 to 1.
    pub fraction: f64,
    /// What the task said with it, if anything.
    pub message: Option<String>,
}

/// An earlier, failed attempt of a run that was retried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// Its number, from 1.
    pub attempt: u32,
    /// How it ended: `failed` or `timed_out`.
    pub status: RunStatus,
    /// When it started.
    pub started_at: Timestamp,
    /// When it ended.
    pub finished_at: Timestamp,
    /// Its error.
    pub error: Option<String>,
    /// The backoff waited before the next attempt.
    pub retry_delay_ms: u64,
}

/// Everything history keeps of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Its id.
    pub id: RunId,
    /// The task it runs.
    pub task: String,
    /// What started it.
    pub trigger: Trigger,
    /// The payload it was given.
    pub payload: Value,
    /// Where it is in its life.
    pub status: RunStatus,
    /// The current (or last) attempt, from 1.
    pub attempt: u32,
    /// Earlier attempts that failed and were retried, oldest first.
    pub attempts: Vec<Attempt>,
    /// The instance that ran it.
    pub instance: String,
    /// When it was asked for.
    pub queued_at: Timestamp,
    /// When its first attempt started.
    pub started_at: Option<Timestamp>,
    /// When it ended.
    pub finished_at: Option<Timestamp>,
    /// How long it took from start to end, in milliseconds.
    pub duration_ms: Option<u64>,
    /// What the task returned, when it succeeded.
    pub result: Option<Value>,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// The last progress it reported.
    pub progress: Option<Progress>,
}

impl RunRecord {
    /// A new run of `task`, `queued` by `instance` at `queued_at`, with no attempt begun.
    pub fn queued(
        task: String,
        payload: serde_json::Value,
        trigger: Trigger,
        instance: String,
        queued_at: Timestamp,
    ) -> Self {
        RunRecord {
            id: RunId::new(),
            task,
            trigger,
            payload,
            status: RunStatus::Queued,
            attempt: 1,
            attempts: Vec::new(),
            instance,
            queued_at,
            started_at: None,
            finished_at: None,
            duration_ms: None,
            result: None,
            error: None,
            progress: None,
        }
    }
}

pub(crate) fn duration_ms(start: Timestamp, end: Timestamp) -> u64 {
    let ms = end.as_millisecond() - start.as_millisecond();
    u64::try_from(ms).unwrap_or(0)
}
