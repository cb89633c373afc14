//! Waiting for a run by id, wherever it executes: a durable run may be taken by any
//! instance, so its caller follows it through the store, woken at once by the end of a run
//! this instance executed and otherwise reading it again on a short, growing cadence.

use std::time::Duration;

use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;

use super::{RunEventKind, RunId, RunRecord, RunStatus, Runtime};
use crate::Error;

/// The first wait between two reads of a run executing elsewhere; it doubles up to
/// [`LONGEST_WAIT`].
const FIRST_WAIT: Duration = Duration::from_millis(10);

/// The longest wait between two reads of a run executing elsewhere.
const LONGEST_WAIT: Duration = Duration::from_millis(250);

impl Runtime {
    /// Waits until the run `run_id` has ended, on this instance or any other, and returns
    /// what its callers receive: its result, or the error it ended with. An unknown id is
    /// `RunNotFound`, and so is a succeeded run of a task that keeps none
    /// (`Task::keep_succeeded`) once it is gone; its handle's `outcome` knows the task and
    /// gives `null`. Once this runtime shuts down, a run still going elsewhere is
    /// `ShuttingDown` here.
    pub async fn outcome(&self, run_id: RunId) -> Result<Value, Error> {
        self.follow(run_id, true).await
    }

    /// [`Runtime::outcome`] of a run whose task keeps its succeeded runs (`kept`) or not:
    /// a run of a task that keeps none is gone from the store once it succeeded, and its
    /// callers receive `null`.
    pub(super) async fn follow(&self, run_id: RunId, kept: bool) -> Result<Value, Error> {
        let mut events = self.subscribe();
        let mut wait = FIRST_WAIT;
        loop {
            let Some(run) = self.get_run(run_id).await? else {
                return if kept {
                    Err(Error::RunNotFound(run_id.to_string()))
                } else {
                    Ok(Value::Null)
                };
            };
            if let Some(outcome) = self.outcome_of(&run) {
                return outcome;
            }
            let ended_here = async {
                loop {
                    match events.recv().await {
                        Ok(event)
                            if event.run_id == run_id
                                && matches!(event.kind, RunEventKind::Finished { .. }) =>
                        {
                            return;
                        }
                        Ok(_) | Err(RecvError::Lagged(_)) => {}
                        // The runtime is gone: the timer below decides.
                        Err(RecvError::Closed) => std::future::pending::<()>().await,
                    }
                }
            };
            tokio::select! {
                () = ended_here => {}
                () = tokio::time::sleep(wait) => wait = (wait * 2).min(LONGEST_WAIT),
                // The run goes on elsewhere; this instance no longer follows it.
                () = self.inner.queue_stop.cancelled() => return Err(Error::ShuttingDown),
            }
        }
    }

    /// What the callers of a stored run receive, once it has ended.
    fn outcome_of(&self, run: &RunRecord) -> Option<Result<Value, Error>> {
        let task = || run.task.clone();
        let message = || run.error.clone().unwrap_or_else(|| run.status.to_string());
        Some(match run.status {
            RunStatus::Queued | RunStatus::Running => return None,
            RunStatus::Succeeded => Ok(run.result.clone().unwrap_or(Value::Null)),
            RunStatus::Failed if message().starts_with("panicked: ") => Err(Error::TaskPanicked {
                task: task(),
                message: message().trim_start_matches("panicked: ").to_owned(),
            }),
            RunStatus::Failed | RunStatus::Abandoned => Err(Error::TaskFailed {
                message: message(),
                data: None,
            }),
            RunStatus::TimedOut => Err(Error::TimedOut {
                task: task(),
                after: self
                    .inner
                    .slots
                    .get(run.task.as_str())
                    .and_then(|slot| slot.entry.task.timeout)
                    .unwrap_or_default(),
            }),
            RunStatus::Cancelled => Err(Error::Cancelled {
                task: task(),
                run_id: run.id,
            }),
        })
    }
}
