//! One run from its turn in the gate to its final record: attempts, timeout, retry with
//! backoff, cancellation, and panics caught and turned into failures.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use serde_json::Value;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::Decoded;
use super::active::ActiveRun;
use super::gate::{GateKey, TaskSlot, Wait};
use super::{RunStatus, Runtime, TaskContext};
use crate::error::panic_message;
use crate::{Error, TaskError};

/// How one attempt ended.
pub(crate) enum AttemptEnd {
    Succeeded(Value),
    Failed(TaskError),
    Panicked(String),
    TimedOut(Duration),
    Cancelled,
}

impl AttemptEnd {
    fn retryable(&self) -> bool {
        match self {
            AttemptEnd::Failed(error) => error.is_retryable(),
            AttemptEnd::Panicked(_) | AttemptEnd::TimedOut(_) => true,
            AttemptEnd::Succeeded(_) | AttemptEnd::Cancelled => false,
        }
    }

    pub fn status(&self) -> RunStatus {
        match self {
            AttemptEnd::Succeeded(_) => RunStatus::Succeeded,
            AttemptEnd::Failed(_) | AttemptEnd::Panicked(_) => RunStatus::Failed,
            AttemptEnd::TimedOut(_) => RunStatus::TimedOut,
            AttemptEnd::Cancelled => RunStatus::Cancelled,
        }
    }

    /// The error a caller receives for this ending.
    pub fn into_result(self, run: &ActiveRun) -> Result<Value, Error> {
        let task = || run.task.to_string();
        match self {
            AttemptEnd::Succeeded(value) => Ok(value),
            AttemptEnd::Failed(error) => {
                let (message, data) = error.into_parts();
                Err(Error::TaskFailed { message, data })
            }
            AttemptEnd::Panicked(message) => Err(Error::TaskPanicked {
                task: task(),
                message,
            }),
            AttemptEnd::TimedOut(after) => Err(Error::TimedOut { task: task(), after }),
            AttemptEnd::Cancelled => Err(Error::Cancelled {
                task: task(),
                run_id: run.id,
            }),
        }
    }
}

/// Drives a launched run to its end and settles what its callers receive.
pub(crate) fn execute(
    runtime: Runtime,
    slot: Arc<TaskSlot>,
    run: Arc<ActiveRun>,
    key: GateKey,
    wait: Wait,
    decoded: Option<Decoded>,
) -> impl Future<Output = ()> + Send + 'static {
    let span = run.span.clone();
    // Owned by the future from the start, so even a future dropped before its first poll
    // settles the run.
    let unsettled = SettleOnDrop(run.clone());
    async move {
        let _unsettled = unsettled;
        let end = run_attempts(&runtime, &slot, &run, wait, decoded).await;
        slot.release(&key, run.id);
        let outcome = match end {
            Some(end) => runtime.inner.finish(&run, end).await,
            // Back in the store for its next attempt, on whichever instance claims it.
            None => Err(Error::Interrupted {
                task: run.task.to_string(),
                run_id: run.id,
            }),
        };
        run.settle(outcome);
    }
    .instrument(span)
}

/// Callers must never wait forever: a run whose executor is dropped before the end (the
/// tokio runtime shutting down under it) ends for them as `ShuttingDown`.
struct SettleOnDrop(Arc<ActiveRun>);

impl Drop for SettleOnDrop {
    fn drop(&mut self) {
        if !self.0.is_settled() {
            tracing::warn!(run_id = %self.0.id, "a run's executor stopped before the run ended");
            self.0.settle(Err(Error::ShuttingDown));
        }
    }
}

/// The run's attempts until one ends it; `None` when a claimed durable run went back to
/// the store to wait for its next attempt there.
async fn run_attempts(
    runtime: &Runtime,
    slot: &TaskSlot,
    run: &Arc<ActiveRun>,
    wait: Wait,
    mut decoded: Option<Decoded>,
) -> Option<AttemptEnd> {
    // Wait for our turn; a run cancelled while it waits never starts. The waiting and the
    // retry delay below are boxed: they are the slow paths, and keeping their state out of
    // this future keeps every spawned run small (the runtime copies it on spawn).
    let _permit = match wait {
        Wait::Nothing => None,
        wait => match Box::pin(wait_turn(run, wait)).await {
            Turn::Go(permit) => permit,
            Turn::Cancelled => return Some(AttemptEnd::Cancelled),
        },
    };

    let task = &slot.entry.task;
    // A claimed durable run goes on from its stored attempt, against its own limit.
    let (max_attempts, mut attempt) = match run.claim {
        Some(claim) => (claim.max_attempts, run.live().attempt),
        None => (task.retry.max_attempts(), 1),
    };
    // The claim itself stored a claimed run as `running` on this instance: its first
    // attempt's start needs no write of its own.
    let mut record_start = run.claim.is_none();
    loop {
        runtime.inner.mark_started(run, attempt, record_start);
        record_start = true;
        // A run with one attempt is its attempt: it shares the run's token rather than
        // making a child (an allocation and the parent's lock), and cancelling it at the
        // end touches nothing that outlives the run.
        let cancel = if max_attempts == 1 {
            run.cancel.clone()
        } else {
            run.cancel.child_token()
        };
        let cx = TaskContext {
            run: run.clone(),
            runtime: runtime.clone(),
            attempt,
            cancel: cancel.clone(),
        };
        let end = run_attempt(task, cx, decoded.take(), &cancel).await;
        // Anything the attempt left waiting on its token learns that the attempt is over.
        cancel.cancel();
        if attempt >= max_attempts || !end.retryable() || run.cancel.is_cancelled() {
            return Some(end);
        }
        let delay = task.retry.delay(attempt);
        // A claimed run waits for its retry in the store, where a restart cannot forget
        // it; if the store does not take it, it waits here, still claimed.
        if run.claim.is_some() && Box::pin(runtime.inner.requeue(run, &end, delay)).await {
            return None;
        }
        runtime.inner.mark_retrying(run, &end, delay);
        let cancelled = Box::pin(async {
            tokio::select! {
                _ = tokio::time::sleep(delay) => false,
                _ = run.cancel.cancelled() => true,
            }
        });
        if cancelled.await {
            return Some(AttemptEnd::Cancelled);
        }
        attempt += 1;
    }
}

enum Turn {
    Go(Option<OwnedSemaphorePermit>),
    Cancelled,
}

async fn wait_turn(run: &ActiveRun, wait: Wait) -> Turn {
    match wait {
        Wait::Nothing => Turn::Go(None),
        Wait::After(previous) => {
            tokio::select! {
                _ = previous.outcome() => Turn::Go(None),
                _ = run.cancel.cancelled() => Turn::Cancelled,
            }
        }
        Wait::Permit(semaphore) => {
            tokio::select! {
                permit = semaphore.acquire_owned() => Turn::Go(permit.ok()),
                _ = run.cancel.cancelled() => Turn::Cancelled,
            }
        }
    }
}

async fn run_attempt(
    task: &crate::Task,
    cx: TaskContext,
    decoded: Option<Decoded>,
    cancel: &CancellationToken,
) -> AttemptEnd {
    // The body's synchronous part can panic as well as its future.
    let future = match std::panic::catch_unwind(AssertUnwindSafe(|| (task.body)(cx, decoded))) {
        Ok(future) => future,
        Err(panic) => return AttemptEnd::Panicked(panic_message(panic.as_ref())),
    };
    let guarded = async move {
        match AssertUnwindSafe(future).catch_unwind().await {
            Ok(Ok(value)) => AttemptEnd::Succeeded(value),
            Ok(Err(error)) => AttemptEnd::Failed(error),
            Err(panic) => AttemptEnd::Panicked(panic_message(panic.as_ref())),
        }
    };
    let timed = async {
        match task.timeout {
            Some(limit) => Box::pin(tokio::time::timeout(limit, guarded))
                .await
                .unwrap_or(AttemptEnd::TimedOut(limit)),
            None => guarded.await,
        }
    };
    tokio::select! {
        biased;
        _ = cancel.cancelled() => AttemptEnd::Cancelled,
        end = timed => end,
    }
}
