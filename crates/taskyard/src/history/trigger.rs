//! [`Trigger`]: what started a run.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What started a run. Stored with every run record and handed to the task in its context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Trigger {
    /// `run_task` from code.
    Manual,
    /// An HTTP request.
    Http,
    /// The `taskyard` command line.
    Cli,
    /// A schedule's tick.
    Schedule {
        /// The schedule's name.
        schedule: String,
        /// The tick's instant (not when the run started).
        scheduled_at: Timestamp,
    },
    /// A lifecycle task at startup.
    Startup,
    /// A custom trigger strategy's `send_one` or `send_all`, with the arguments it sent.
    Custom {
        /// The strategy's name (the schedule's `type`).
        strategy: String,
        /// The schedule whose strategy sent it.
        schedule: String,
        /// The arguments of the send.
        args: Value,
    },
}

impl Trigger {
    /// Every `kind` a trigger may have.
    pub const KINDS: [&'static str; 6] = ["manual", "http", "cli", "schedule", "startup", "custom"];

    /// The `kind` tag as stored and filtered on.
    pub fn kind(&self) -> &'static str {
        match self {
            Trigger::Manual => "manual",
            Trigger::Http => "http",
            Trigger::Cli => "cli",
            Trigger::Schedule { .. } => "schedule",
            Trigger::Startup => "startup",
            Trigger::Custom { .. } => "custom",
        }
    }

    /// The schedule behind a run, for schedule ticks and strategy sends.
    pub fn schedule(&self) -> Option<&str> {
        match self {
            Trigger::Schedule { schedule, .. } | Trigger::Custom { schedule, .. } => Some(schedule),
            _ => None,
        }
    }
}
