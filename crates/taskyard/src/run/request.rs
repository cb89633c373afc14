//! [`RunRequest`]: what a caller asks to run; [`RunHandle`]: the run it got, to await.

use std::sync::{Arc, OnceLock};

use jiff::Timestamp;
use serde_json::Value;

use super::Runtime;
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
    /// Through the store, as a durable run, even if the task is not declared durable.
    pub durable: bool,
}

impl RunRequest {
    /// A manual run of `task` with an empty object as payload.
    pub fn new(task: impl Into<String>) -> Self {
        RunRequest {
            task: task.into(),
            payload: Value::Object(Default::default()),
            trigger: Trigger::Manual,
            durable: false,
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

    /// Runs it through the store, as a durable run (see [`Task::durable`](crate::Task::durable)),
    /// even if the task is not declared durable.
    pub fn durable(mut self) -> Self {
        self.durable = true;
        self
    }
}

/// A started run: its id, and its outcome to await.
#[derive(Clone)]
pub struct RunHandle {
    run: Started,
    joined: bool,
}

/// Where a started run lives.
#[derive(Clone)]
enum Started {
    /// Executing in this process.
    Local(Arc<ActiveRun>),
    /// A durable run, in the store: any instance may execute it.
    Stored(Arc<StoredRun>),
}

/// A durable run a caller waits for, and its outcome once someone saw it.
pub(super) struct StoredRun {
    pub id: RunId,
    pub trigger: Trigger,
    /// Whether the run's task keeps its succeeded durable runs: when it does not, a run
    /// gone from the store succeeded.
    pub kept: bool,
    /// When the run is due (not before), as the call that made this handle found it: the
    /// time it was queued for, or the run joined's (once claimed, its claim's time).
    pub due: Timestamp,
    pub runtime: Runtime,
    pub outcome: OnceLock<Result<Value, Error>>,
}

impl std::fmt::Debug for RunHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunHandle")
            .field("run_id", &self.run_id())
            .field("joined", &self.joined)
            .field("finished", &self.is_finished())
            .finish()
    }
}

impl RunHandle {
    /// The run, when it executes in this process.
    pub(super) fn local(&self) -> Option<&Arc<ActiveRun>> {
        match &self.run {
            Started::Local(run) => Some(run),
            Started::Stored(_) => None,
        }
    }

    /// The run's id.
    pub fn run_id(&self) -> RunId {
        match &self.run {
            Started::Local(run) => run.id,
            Started::Stored(run) => run.id,
        }
    }

    /// What started the run (for a durable run this call joined, what started this call).
    pub fn trigger(&self) -> &Trigger {
        match &self.run {
            Started::Local(run) => &run.trigger,
            Started::Stored(run) => &run.trigger,
        }
    }

    /// True once the run has ended (for a durable run, once a clone of this handle saw its
    /// outcome).
    pub fn is_finished(&self) -> bool {
        match &self.run {
            Started::Local(run) => run.is_settled(),
            Started::Stored(run) => run.outcome.get().is_some(),
        }
    }

    /// True when this call joined a run already in flight instead of starting one.
    pub fn joined(&self) -> bool {
        self.joined
    }

    /// True when the run is durable: kept in the store, executed by any instance.
    pub fn is_durable(&self) -> bool {
        matches!(self.run, Started::Stored(_))
    }

    /// For a durable run, when it is due (it starts no earlier), as the call that made
    /// this handle found it: the time it was queued for, or, for a run it joined, that
    /// run's (once claimed, its claim's time). `None` for a run in this process, which
    /// starts at once.
    pub fn due_at(&self) -> Option<Timestamp> {
        match &self.run {
            Started::Local(_) => None,
            Started::Stored(run) => Some(run.due),
        }
    }

    /// True when this call joined a durable run that is not due yet: its result comes
    /// then, not within a request.
    pub(crate) fn joined_later(&self) -> bool {
        self.joined && self.due_at().is_some_and(|due| due > Timestamp::now())
    }

    /// Waits for the run to end and returns its result. Dropping this future does not
    /// cancel the run: the runtime owns it (or, for a durable run, the store).
    pub async fn outcome(self) -> Result<Value, Error> {
        match self.run {
            Started::Local(run) => run.outcome().await.clone(),
            Started::Stored(run) => {
                if let Some(outcome) = run.outcome.get() {
                    return outcome.clone();
                }
                // Boxed: following a stored run is the slow path, and its state inline
                // would grow every local run's wait.
                let outcome = Box::pin(run.runtime.follow(run.id, run.kept)).await;
                // Only the run's own end is kept, not a failure to follow it.
                if !matches!(
                    outcome,
                    Err(Error::Store { .. } | Error::StoreUnavailable { .. } | Error::ShuttingDown)
                ) {
                    let _ = run.outcome.set(outcome.clone());
                }
                outcome
            }
        }
    }
}

pub(super) fn joined(in_flight: &InFlight) -> RunHandle {
    RunHandle {
        run: Started::Local(in_flight.clone()),
        joined: true,
    }
}

pub(super) fn started(run: Arc<ActiveRun>) -> RunHandle {
    RunHandle {
        run: Started::Local(run),
        joined: false,
    }
}

/// The handle of a durable run of `task` in the store, due at `due`; `joined` when the
/// call found it there.
pub(super) fn stored(
    runtime: Runtime,
    (id, task): (RunId, &str),
    trigger: Trigger,
    (joined, due): (bool, Timestamp),
) -> RunHandle {
    RunHandle {
        run: Started::Stored(Arc::new(StoredRun {
            id,
            kept: runtime.inner.keeps_succeeded(task),
            due,
            trigger,
            runtime,
            outcome: OnceLock::new(),
        })),
        joined,
    }
}
