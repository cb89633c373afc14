//! One run from its turn in the gate to its final record: attempts, timeout, retry with
//! backoff, cancellation, and panics caught and turned into failures.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::active::ActiveRun;
use super::gate::{GateKey, TaskSlot, Wait};
use super::{RunStatus, Runtime, TaskContext};
use crate::task::Decoded;
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
        let task = run.task.to_string();
        match self {
            AttemptEnd::Succeeded(value) => Ok(value),
            AttemptEnd::Failed(error) => {
                let (message, data) = error.into_parts();
                Err(Error::TaskFailed { message, data })
            }
            AttemptEnd::Panicked(message) => Err(Error::TaskPanicked { task, message }),
            AttemptEnd::TimedOut(after) => Err(Error::TimedOut { task, after }),
            AttemptEnd::Cancelled => Err(Error::Cancelled { task, run_id: run.id }),
        }
    }
}

/// Drives a launched run to its end and returns what its callers receive.
pub(crate) async fn execute(
    runtime: Runtime,
    slot: Arc<TaskSlot>,
    run: Arc<ActiveRun>,
    key: GateKey,
    wait: Wait,
    decoded: Option<Decoded>,
) -> Result<Value, Error> {
    let span = run.span.clone();
    async move {
        let end = run_attempts(&runtime, &slot, &run, wait, decoded).await;
        slot.release(&key, run.id);
        runtime.inner.finish(&run, end).await
    }
    .instrument(span)
    .await
}

async fn run_attempts(
    runtime: &Runtime,
    slot: &TaskSlot,
    run: &Arc<ActiveRun>,
    wait: Wait,
    mut decoded: Option<Decoded>,
) -> AttemptEnd {
    // Wait for our turn; a run cancelled while it waits never starts.
    let _permit = match wait {
        Wait::Nothing => None,
        Wait::After(previous) => {
            tokio::select! {
                _ = previous => None,
                _ = run.cancel.cancelled() => return AttemptEnd::Cancelled,
            }
        }
        Wait::Permit(semaphore) => {
            tokio::select! {
                permit = semaphore.acquire_owned() => permit.ok(),
                _ = run.cancel.cancelled() => return AttemptEnd::Cancelled,
            }
        }
    };

    let task = &slot.entry.task;
    let max_attempts = task.retry.max_attempts();
    let mut attempt = 1;
    loop {
        runtime.inner.mark_started(run, attempt);
        let cancel = run.cancel.child_token();
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
            return end;
        }
        let delay = task.retry.delay(attempt);
        runtime.inner.mark_retrying(run, &end, delay);
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = run.cancel.cancelled() => return AttemptEnd::Cancelled,
        }
        attempt += 1;
    }
}

async fn run_attempt(
    task: &crate::Task,
    cx: TaskContext,
    decoded: Option<Decoded>,
    cancel: &CancellationToken,
) -> AttemptEnd {
    // The body's synchronous part can panic as well as its future.
    let body = task.body.clone();
    let future = match std::panic::catch_unwind(AssertUnwindSafe(move || body(cx, decoded))) {
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
            Some(limit) => tokio::time::timeout(limit, guarded)
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

fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}
