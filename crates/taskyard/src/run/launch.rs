//! Starting a run in this process: the task's gate (join the run in flight, wait behind
//! the previous one, take a permit) and the launch of its execution: spawned, polled once
//! on the caller's task, or driven to its end there when the caller waits for it anyway.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use serde_json::Value;
use tokio_util::task::task_tracker::TrackedFuture;

use super::active::ActiveRun;
use super::gate::{self, Found, Gate, GateKey, TaskSlot, Wait};
use super::request::{joined, started};
use super::{Decoded, Execution, RunHandle, RunId, Runtime, execute};
use crate::sync::lock;
use crate::{Error, Trigger};

/// What `launch` needs of a request once the task is found.
struct Submitted {
    payload: Value,
    trigger: Trigger,
}

impl Runtime {
    /// Polls a run's execution once on the caller's task, and hands it to a task of its
    /// own only if it did not end there; then it is recorded as it is (its records were
    /// held back until then, see `ActiveRun::records_held`).
    pub(super) fn begin(&self, handle: &RunHandle, mut execution: Execution) {
        // The spawned task polls again at once with its own waker, which replaces this.
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        if execution.as_mut().poll(&mut cx).is_pending() {
            self.spawn(handle, execution);
        }
    }

    /// Drives a run just started to its end on the caller's task, which waits for it
    /// anyway: no task of its own, and no wake-up passed from the run's task to the
    /// caller's when it ends (or when the store confirms its end). It is recorded as it
    /// is once its first poll is over. The caller cannot cancel the run by dropping this
    /// future: what is left of the run then goes on in a task of its own, as with
    /// [`Runtime::start`]; the runtime's shutdown waits for it either way.
    pub(super) async fn drive(&self, handle: &RunHandle, mut execution: Execution) {
        let first = std::future::poll_fn(|cx| Poll::Ready(execution.as_mut().poll(cx))).await;
        if first.is_pending() {
            // The rest is boxed: a run that ends in its first poll, the common case without
            // a store, keeps its caller's future small.
            Box::pin(self.drive_rest(handle, execution)).await;
        }
    }

    /// What `drive` does once the run's first poll is over and it goes on.
    async fn drive_rest(&self, handle: &RunHandle, execution: Execution) {
        if let Some(run) = handle.local() {
            self.inner.release_records(run);
        }
        let mut driven = Driven {
            execution: Some(self.inner.tracker.track_future(execution)),
            waiting: true,
        };
        std::future::poll_fn(|cx| driven.poll(cx)).await;
    }

    /// Hands a run's execution to a task of its own, recorded as it is.
    pub(super) fn spawn(&self, handle: &RunHandle, execution: Execution) {
        if let Some(run) = handle.local() {
            self.inner.release_records(run);
        }
        drop(self.inner.tracker.spawn(execution));
    }

    /// The handle, and the execution to start unless the call joined a run in flight.
    pub(super) fn start_in_process(
        &self,
        slot: &Arc<TaskSlot>,
        payload: Value,
        trigger: Trigger,
    ) -> Result<(RunHandle, Option<Execution>), Error> {
        let inner = &self.inner;
        if !inner.accepting.load(Ordering::Acquire) {
            return Err(Error::ShuttingDown);
        }
        let decoded = (slot.entry.task.validate)(&slot.entry.name, &payload)?;
        let request = Submitted { payload, trigger };
        match &slot.gate {
            Gate::Dedupe(cell) => {
                let mut current = lock(cell);
                if let Some(in_flight) = current.as_ref() {
                    if !another_tick(&request.trigger, &in_flight.trigger) {
                        return Ok((joined(in_flight), None));
                    }
                    return Ok(self.launch_outside_gate(slot, request, decoded));
                }
                let (run, execution) = self.launch(slot, request, GateKey::Single, Wait::Nothing, decoded);
                *current = Some(run.clone());
                Ok((started(run), Some(execution)))
            }
            Gate::DedupeByPayload(by_payload) => {
                let key = by_payload.key(&request.payload);
                let mut runs = lock(&by_payload.runs);
                let key = match gate::find(&runs, key, &request.payload) {
                    Found::Free(key) => key,
                    Found::Same(in_flight) if !another_tick(&request.trigger, &in_flight.trigger) => {
                        return Ok((joined(in_flight), None));
                    }
                    Found::Same(_) | Found::Other => {
                        return Ok(self.launch_outside_gate(slot, request, decoded));
                    }
                };
                let (run, execution) =
                    self.launch(slot, request, GateKey::Payload(key), Wait::Nothing, decoded);
                runs.insert(key, run.clone());
                Ok((started(run), Some(execution)))
            }
            Gate::Serial(tail) => {
                let mut tail = lock(tail);
                let wait = match tail.take() {
                    Some(previous) => Wait::After(previous),
                    None => Wait::Nothing,
                };
                let (run, execution) = self.launch(slot, request, GateKey::Single, wait, decoded);
                *tail = Some(run.clone());
                Ok((started(run), Some(execution)))
            }
            Gate::Parallel(semaphore) => {
                let wait = Wait::Permit(semaphore.clone());
                let (run, execution) = self.launch(slot, request, GateKey::None, wait, decoded);
                Ok((started(run), Some(execution)))
            }
            Gate::Unlimited => {
                let (run, execution) = self.launch(slot, request, GateKey::None, Wait::Nothing, decoded);
                Ok((started(run), Some(execution)))
            }
        }
    }

    /// A run of its own that leaves the gate to the run in flight: for a schedule's tick
    /// that finds another tick's run of the same schedule going (see [`another_tick`]), and
    /// for a payload whose hash is another payload's (see [`Found::Other`]).
    fn launch_outside_gate(
        &self,
        slot: &Arc<TaskSlot>,
        request: Submitted,
        decoded: Option<Decoded>,
    ) -> (RunHandle, Option<Execution>) {
        let (run, execution) = self.launch(slot, request, GateKey::None, Wait::Nothing, decoded);
        (started(run), Some(execution))
    }

    fn launch(
        &self,
        slot: &Arc<TaskSlot>,
        request: Submitted,
        key: GateKey,
        wait: Wait,
        decoded: Option<Decoded>,
    ) -> (Arc<ActiveRun>, Execution) {
        let inner = &self.inner;
        // One clock read for the id, the queued time and, for a run that waits for
        // nothing, its start.
        let now = jiff::Timestamp::now();
        let id = RunId::at(now);
        let run = Arc::new(ActiveRun::new(
            id,
            slot.entry.name.clone(),
            request.payload,
            request.trigger,
        ));
        lock(&inner.active).insert(id, run.clone());
        let execution = execute::execute(
            self.clone(),
            slot.clone(),
            run.clone(),
            key,
            wait,
            decoded,
            Some(now),
        );
        // Started by the caller once any gate lock is released. Boxed (by `execute`)
        // because spawning copies the future several times on its way into the task cell,
        // and a pointer is cheaper to copy than the executor's state (measured: ~70 ns a run).
        (run, execution)
    }
}

/// A run driven by its caller past its first poll (see [`Runtime::drive`]), tracked for
/// the shutdown's wait.
struct Driven {
    /// Until it ends.
    execution: Option<TrackedFuture<Execution>>,
    /// True until it is polled again: its first poll, in the same poll of the caller's
    /// task, left the task's waker with whatever it waits for.
    waiting: bool,
}

impl Driven {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if std::mem::take(&mut self.waiting) {
            return Poll::Pending;
        }
        let Some(execution) = self.execution.as_mut() else {
            return Poll::Ready(());
        };
        let polled = Pin::new(execution).poll(cx);
        if polled.is_ready() {
            self.execution = None;
        }
        polled
    }
}

impl Drop for Driven {
    /// The caller left before the run ended: the rest of the run goes on in a task of its
    /// own. Outside a runtime (it is being dropped) the execution's own guard settles the
    /// run as `ShuttingDown` for its callers.
    fn drop(&mut self) {
        if let Some(execution) = self.execution.take()
            && let Ok(tokio) = tokio::runtime::Handle::try_current()
        {
            drop(tokio.spawn(execution));
        }
    }
}

/// True when `new` is a schedule's tick and `in_flight` a run of another tick of the same
/// schedule. Such a tick never joins that run: each tick has a run of its own. Whether a
/// tick may overlap its schedule's earlier run is the schedule's overlap policy, decided
/// before the tick reaches the runtime; a tick reaching it while a run of a *later* tick
/// is going (a dead instance's tick taken over late) must still run.
fn another_tick(new: &Trigger, in_flight: &Trigger) -> bool {
    match (new, in_flight) {
        (
            Trigger::Schedule {
                schedule,
                scheduled_at,
            },
            Trigger::Schedule {
                schedule: other,
                scheduled_at: other_at,
            },
        ) => schedule == other && scheduled_at != other_at,
        _ => false,
    }
}
