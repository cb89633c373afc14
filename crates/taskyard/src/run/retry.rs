//! Retry from history: a run that ended without success goes back to the queue as the next
//! attempt of the same run, its earlier attempts kept.

use jiff::Timestamp;

use super::{Attempt, RunId, RunStatus, Runtime};
use crate::Error;
use crate::store::Job;

impl Runtime {
    /// Queues a run that ended `failed`, `timed_out`, `cancelled` or `abandoned` again, as a
    /// durable run: its next attempt runs on whichever instance claims it, with the task's
    /// retries on top of the attempts it had. Returns the attempt queued. A run still going,
    /// or one that succeeded, is [`Error::RunState`] (409 over HTTP); an unknown one
    /// `RunNotFound`.
    pub async fn retry(&self, run_id: RunId) -> Result<u32, Error> {
        let inner = &self.inner;
        let run = self
            .get_run(run_id)
            .await?
            .ok_or_else(|| Error::RunNotFound(run_id.to_string()))?;
        let (slot, store) = inner.queue_target(&run.task)?;
        let refuse = |message: String| Error::RunState { run_id, message };
        match run.status {
            RunStatus::Failed | RunStatus::TimedOut | RunStatus::Cancelled | RunStatus::Abandoned => {}
            RunStatus::Succeeded => {
                return Err(refuse(format!(
                    "Run `{run_id}` succeeded; only a run that failed, timed out, was cancelled or was abandoned can be retried"
                )));
            }
            RunStatus::Queued | RunStatus::Running => {
                return Err(refuse(format!(
                    "Run `{run_id}` is {} and has not ended; cancel it first, or wait for its end",
                    run.status
                )));
            }
        }
        let now = Timestamp::now();
        let mut next = run.clone();
        next.attempts.push(Attempt {
            attempt: run.attempt,
            status: run.status,
            started_at: run.started_at.unwrap_or(run.queued_at),
            finished_at: run.finished_at.unwrap_or(now),
            error: run.error.clone(),
            retry_delay_ms: 0,
        });
        next.attempt = run.attempt + 1;
        next.status = RunStatus::Queued;
        next.finished_at = None;
        next.duration_ms = None;
        next.result = None;
        next.error = None;
        next.progress = None;
        let job = Job {
            run_at: now,
            priority: 0,
            key: None,
            max_attempts: run.attempt + slot.entry.task.retry.max_attempts(),
        };
        if !self.bounded(store.requeue(&next, &job, run.status)).await? {
            return Err(refuse(format!(
                "Run `{run_id}` changed while it was being retried, or another run of `{}` holds its key; read it again",
                run.task
            )));
        }
        inner.wake_queue();
        Ok(next.attempt)
    }
}
