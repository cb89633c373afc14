//! [`TaskContext`]: what a task body knows about its run and can do with it.

use std::sync::Arc;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::active::ActiveRun;
use super::cancel::Cancel;
use crate::history::RunId;
use crate::{AppState, Runtime, TaskError, Trigger};

/// Handed to every attempt of a task body.
#[derive(Clone)]
pub struct TaskContext {
    pub(crate) run: Arc<ActiveRun>,
    pub(crate) runtime: Runtime,
    pub(crate) attempt: u32,
    /// The attempt's own cancellation, for one attempt among several; `None` when the
    /// run has one attempt, which shares the run's.
    pub(crate) cancel: Option<Arc<Cancel>>,
}

impl TaskContext {
    /// The task's name, e.g. `db:migrate`.
    pub fn task(&self) -> &str {
        &self.run.task
    }

    /// The run's id.
    pub fn run_id(&self) -> RunId {
        self.run.id
    }

    /// The payload as JSON (typed tasks also get it decoded as their second argument).
    pub fn payload(&self) -> &Value {
        &self.run.payload
    }

    /// What started the run.
    pub fn trigger(&self) -> &Trigger {
        &self.run.trigger
    }

    /// The attempt number, from 1.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Cancelled when the run is cancelled, timed out or the app shuts down. The runtime
    /// drops the task's future at its next `.await` in any case; long synchronous work can
    /// poll this to stop early.
    pub fn cancellation(&self) -> &CancellationToken {
        self.cancel().token()
    }

    /// True once this attempt is cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.cancel().is_cancelled()
    }

    /// Completes when this attempt is cancelled (see [`cancellation`](Self::cancellation)).
    pub async fn cancelled(&self) {
        self.cancel().cancelled().await
    }

    fn cancel(&self) -> &Cancel {
        self.cancel.as_deref().unwrap_or(&self.run.cancel)
    }

    /// Reports progress: `fraction` from 0 to 1 (clamped) and a message. Recorded in history
    /// and published as a [`RunEvent`](super::RunEvent).
    pub fn progress(&self, fraction: f64, message: impl Into<String>) {
        let message = message.into();
        self.runtime
            .inner
            .report_progress(&self.run, fraction, (!message.is_empty()).then_some(message));
    }

    /// The tracing span every event of this run is recorded in.
    pub fn span(&self) -> &tracing::Span {
        &self.run.span
    }

    /// A shared value added with `App::state`.
    pub fn state<T: Send + Sync + 'static>(&self) -> Result<&T, TaskError> {
        self.runtime.inner.state.get::<T>()
    }

    /// Every shared value added with `App::state`.
    pub fn app_state(&self) -> &AppState {
        &self.runtime.inner.state
    }

    /// The runtime, to run other tasks from this one.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }
}

impl std::fmt::Debug for TaskContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskContext")
            .field("task", &self.task())
            .field("run_id", &self.run_id())
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}
