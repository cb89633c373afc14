//! One run from its turn in the gate to its final record: attempts, timeout, retry with
//! backoff, cancellation, and panics caught and turned into failures.

use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::WaitForCancellationFuture;

use super::Decoded;
use super::active::{ActiveRun, in_span};
use super::cancel::Cancel;
use super::gate::{GateKey, TaskSlot, Wait};
use super::{Execution, RunStatus, Runtime, TaskContext};
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

/// Drives a launched run to its end and settles what its callers receive. `launched_at`,
/// when the caller read the clock as it launched the run, is the run's start if it waits
/// for nothing: the time until its first poll is part of the run, as on any busy executor.
pub(crate) fn execute(
    runtime: Runtime,
    slot: Arc<TaskSlot>,
    run: Arc<ActiveRun>,
    key: GateKey,
    wait: Wait,
    decoded: Option<Decoded>,
    launched_at: Option<jiff::Timestamp>,
) -> Execution {
    // Owned by the future from the start, so even a future dropped before its first poll
    // settles the run.
    let unsettled = SettleOnDrop(run.clone());
    // Not wrapped in the run's span: the body is polled in it (`run_attempt`) and the
    // runtime's own events about the run enter it; a wrapper would cost every run a copy
    // of this future and its checks on every poll, with or without a subscriber.
    // Boxed here, where the future is made: boxed by the caller it was copied twice on
    // its way to the heap (measured: ~280 instructions a run).
    Box::pin(async move {
        let _unsettled = unsettled;
        let end = run_attempts(&runtime, &slot, &run, wait, decoded, launched_at).await;
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
    })
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
    launched_at: Option<jiff::Timestamp>,
) -> Option<AttemptEnd> {
    // Wait for our turn; a run cancelled while it waits never starts. The waiting and the
    // retry delay below are boxed: they are the slow paths, and keeping their state out of
    // this future keeps every spawned run small (the runtime copies it on spawn). A run
    // whose turn was free at once started when it was launched.
    let (turn, mut start_at) = match turn_now(run, wait) {
        Ok(turn) => (turn, launched_at),
        Err(wait) => (Box::pin(wait_turn(run, wait)).await, None),
    };
    let _permit = match turn {
        Turn::Go(permit) => permit,
        Turn::Cancelled => return Some(AttemptEnd::Cancelled),
    };

    let task = &slot.entry.task;
    // A claimed durable run goes on from its stored attempt, against its own limit.
    let (max_attempts, mut attempt) = match run.claim {
        Some(claim) => (claim.max_attempts, run.live().attempt),
        None => (task.retry.max_attempts(), 1),
    };
    loop {
        // A claimed run's start too: the claim took its job, and its record says
        // `running` on this instance once this write lands (with its end, if it ends
        // before the recorder's next batch).
        runtime.inner.mark_started(run, attempt, start_at.take());
        // A run with one attempt is its attempt: it shares the run's cancellation rather
        // than making a child (a token, an allocation and the parent's lock), and
        // cancelling it at the end touches nothing that outlives the run.
        let own = (max_attempts > 1).then(|| Arc::new(run.cancel.child()));
        let cx = TaskContext {
            run: run.clone(),
            runtime: runtime.clone(),
            attempt,
            cancel: own.clone(),
        };
        let cancel = own.as_deref().unwrap_or(&run.cancel);
        let end = run_attempt(task, cx, decoded.take(), cancel, &run.span).await;
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

/// The turn, if it is free at once: no wait, and no cancellation token to wait on.
/// Otherwise the wait, handed back.
fn turn_now(run: &ActiveRun, wait: Wait) -> Result<Turn, Wait> {
    match wait {
        Wait::Nothing => Ok(Turn::Go(None)),
        _ if run.cancel.is_cancelled() => Ok(Turn::Cancelled),
        Wait::After(previous) if previous.is_settled() => Ok(Turn::Go(None)),
        Wait::Permit(semaphore) => match semaphore.clone().try_acquire_owned() {
            Ok(permit) => Ok(Turn::Go(Some(permit))),
            Err(_) => Err(Wait::Permit(semaphore)),
        },
        wait => Err(wait),
    }
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

/// One attempt of the body: cancelled, timed out, panicked, failed or succeeded. One poll
/// function over the boxed body rather than a stack of wrapper futures: the attempt's state
/// is small (every run's future holds it), and the timer and the cancellation's waiter are
/// made only once the body waits, so a body that ends on its first poll makes neither.
async fn run_attempt(
    task: &crate::Task,
    cx: TaskContext,
    decoded: Option<Decoded>,
    cancel: &Cancel,
    span: &tracing::Span,
) -> AttemptEnd {
    // The body's synchronous part can panic as well as its future; both run in the run's
    // span.
    let made = in_span(span, || {
        std::panic::catch_unwind(AssertUnwindSafe(|| (task.body)(cx, decoded)))
    });
    let mut body = match made {
        Ok(body) => body,
        Err(panic) => return AttemptEnd::Panicked(panic_message(panic.as_ref())),
    };
    let deadline = task
        .timeout
        .map(|limit| (tokio::time::Instant::now() + limit, limit));
    let mut timer: Option<Pin<Box<tokio::time::Sleep>>> = None;
    let mut waiting: Option<Pin<Box<WaitForCancellationFuture<'_>>>> = None;
    std::future::poll_fn(|poll_cx| {
        // A cancellation asked for wins, then the body, then the timeout, as a biased
        // select over the three would.
        if cancel.is_cancelled() {
            return Poll::Ready(AttemptEnd::Cancelled);
        }
        let polled = in_span(span, || {
            std::panic::catch_unwind(AssertUnwindSafe(|| body.as_mut().poll(poll_cx)))
        });
        match polled {
            Ok(Poll::Ready(Ok(value))) => return Poll::Ready(AttemptEnd::Succeeded(value)),
            Ok(Poll::Ready(Err(error))) => return Poll::Ready(AttemptEnd::Failed(error)),
            Err(panic) => return Poll::Ready(AttemptEnd::Panicked(panic_message(panic.as_ref()))),
            Ok(Poll::Pending) => {}
        }
        if let Some((at, limit)) = deadline {
            let timer = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
            if timer.as_mut().poll(poll_cx).is_ready() {
                return Poll::Ready(AttemptEnd::TimedOut(limit));
            }
        }
        let cancelled = waiting.get_or_insert_with(|| Box::pin(cancel.token().cancelled()));
        match cancelled.as_mut().poll(poll_cx) {
            Poll::Ready(()) => Poll::Ready(AttemptEnd::Cancelled),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}
