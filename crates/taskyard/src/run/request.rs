//! [`RunRequest`]: what a caller asks to run; [`RunHandle`]: the run it got, to await.

use std::sync::Arc;

use serde_json::Value;

use super::active::ActiveRun;
use super::gate::InFlight;
use crate::{Error, RunId, Trigger};

/// A request to run a task, with everything that describes the run.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// The task to run.
    pub task: String,
    /// Its payload.
    pub payload: Value,
    /// What starts it.
    pub trigger: Trigger,
}

impl RunRequest {
    /// A manual run of `task` with an empty object as payload.
    pub fn new(task: impl Into<String>) -> Self {
        RunRequest {
            task: task.into(),
            payload: Value::Object(Default::default()),
            trigger: Trigger::Manual,
        }
    }

    /// Runs it with `payload`.
    pub fn payload(mut self, payload: Value) -> Self {
        self.payload = payload;
        self
    }

    /// Records `trigger` as what started it.
    pub fn trigger(mut self, trigger: Trigger) -> Self {
        self.trigger = trigger;
        self
    }
}

/// A started run: its id, and its outcome to await.
#[derive(Clone)]
pub struct RunHandle {
    run: Arc<ActiveRun>,
    joined: bool,
}

impl std::fmt::Debug for RunHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunHandle")
            .field("run_id", &self.run.id)
            .field("joined", &self.joined)
            .field("finished", &self.is_finished())
            .finish()
    }
}

impl RunHandle {
    /// The run's id.
    pub fn run_id(&self) -> RunId {
        self.run.id
    }

    /// What started the run.
    pub fn trigger(&self) -> &Trigger {
        &self.run.trigger
    }

    /// True once the run has ended.
    pub fn is_finished(&self) -> bool {
        self.run.is_settled()
    }

    /// True when this call joined a run already in flight instead of starting one.
    pub fn joined(&self) -> bool {
        self.joined
    }

    /// Waits for the run to end and returns its result. Dropping this future does not
    /// cancel the run: the runtime owns it.
    pub async fn outcome(self) -> Result<Value, Error> {
        self.run.outcome().await.clone()
    }
}

pub(super) fn joined(in_flight: &InFlight) -> RunHandle {
    RunHandle {
        run: in_flight.clone(),
        joined: true,
    }
}

pub(super) fn started(run: Arc<ActiveRun>) -> RunHandle {
    RunHandle { run, joined: false }
}
