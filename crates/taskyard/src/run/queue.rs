//! The claimer: each instance takes due durable runs from the store and executes them.
//!
//! One task per instance claims what its room allows, woken by this instance's enqueues
//! and polling otherwise, so runs enqueued by other instances start within a poll. A
//! claimed run executes like any other, except that its records are fenced writes of its
//! claim (see `store::queue`).

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::active::ActiveRun;
use super::gate::{GateKey, Wait};
use super::{Runtime, execute};
use crate::Concurrency;
use crate::store::{ClaimTask, Claimed, Store};
use crate::sync::lock;

/// How often an instance looks for runs enqueued elsewhere.
const POLL: Duration = Duration::from_millis(200);

/// Claimed runs one instance executes at once.
const ROOM: usize = 64;

/// Claims one instance has in flight at once: the next is on its way while the store
/// answers the one before.
const CLAIMS_IN_FLIGHT: usize = 2;

/// How long a busy instance lets room gather before it claims into less than half of it:
/// under a stream of short runs, a claim per ended run would cost the store a statement
/// and a commit per run; this bounds the wait a run due meanwhile may add.
const GATHER: Duration = Duration::from_millis(2);

impl Runtime {
    /// Claims and executes due durable runs until the runtime stops accepting runs.
    pub(crate) async fn run_queue(self) {
        let inner = &self.inner;
        // A store comes with its recorder: without both there is nothing to claim.
        let (Some(store), Some(recorder)) = (inner.store.clone(), inner.recorder.as_ref()) else {
            return;
        };
        let mut tasks: Vec<ClaimTask> = inner
            .slots
            .values()
            .map(|slot| ClaimTask {
                name: slot.entry.name.to_string(),
                limit: match slot.entry.task.concurrency {
                    Concurrency::Serial => Some(1),
                    Concurrency::Parallel(limit) => Some(u32::try_from(limit.max(1)).unwrap_or(u32::MAX)),
                    // One live run per task (and payload) is the unique key's job.
                    Concurrency::Dedupe | Concurrency::DedupeByPayload | Concurrency::Unlimited => None,
                },
                ended: Vec::new(),
            })
            .collect();
        let room = Arc::new(Semaphore::new(ROOM));
        let claims = Arc::new(Semaphore::new(CLAIMS_IN_FLIGHT));
        // Ends are written after their runs' room is free: a claim that found a task at
        // its limit tries again once they are in.
        let written = recorder.claimed_written();
        let stop = inner.queue_stop.clone();
        while !stop.is_cancelled() {
            // All the free room in one claim (a statement per run's slot would cost a
            // round trip each), its permits held by the claim until its runs take them.
            let free = room.available_permits();
            let reserved = (free > 0)
                .then(|| {
                    Some((
                        claims.clone().try_acquire_owned().ok()?,
                        room.clone().try_acquire_many_owned(free as u32).ok()?,
                    ))
                })
                .flatten();
            if let Some((claiming, reserved)) = reserved {
                // Runs that ended here leave room under their task's limit at once, not
                // when their ends reach the store.
                for task in tasks.iter_mut().filter(|task| task.limit.is_some()) {
                    task.ended = recorder.ended_unwritten(&task.name);
                }
                drop(
                    inner.tracker.spawn(self.clone().claim_into(
                        store.clone(),
                        tasks.clone(),
                        reserved,
                        claiming,
                    )),
                );
                // No `continue`: this loop must reach an await after every claim. A claim
                // that returns at once on another worker frees its room again, and a loop
                // going straight back to claim would never yield its worker (seen: a
                // memory store's empty claims, forever). A full claim, or a run ending
                // here, wakes it at once.
            }
            tokio::select! {
                _ = inner.queue_wake.notified() => {}
                _ = written.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
                _ = stop.cancelled() => break,
            }
            if room.available_permits() < ROOM / 2 {
                tokio::select! {
                    _ = tokio::time::sleep(GATHER) => {}
                    _ = stop.cancelled() => break,
                }
            }
        }
    }

    /// One claim for as many runs as `reserved` holds permits, each claimed run executed
    /// under one of them; `claiming` is this claim's place among those in flight.
    async fn claim_into(
        self,
        store: Arc<dyn Store>,
        tasks: Vec<ClaimTask>,
        mut reserved: OwnedSemaphorePermit,
        claiming: OwnedSemaphorePermit,
    ) {
        let inner = &self.inner;
        let asked = reserved.num_permits();
        let claim = self.bounded(store.claim(&inner.instance, &tasks, Timestamp::now(), asked));
        let claimed = tokio::select! {
            claimed = claim => claimed,
            _ = inner.queue_stop.cancelled() => return,
        };
        drop(claiming);
        match claimed {
            Ok(claimed) => {
                let full = claimed.len() == asked;
                for run in claimed {
                    let Some(permit) = reserved.split(1) else {
                        break;
                    };
                    let execution = self.execute_claimed(run);
                    let runtime = self.clone();
                    drop(inner.tracker.spawn(async move {
                        execution.await;
                        drop(permit);
                        // Its end is on its way to the store: room here for the next run
                        // at once.
                        runtime.inner.queue_wake.notify_one();
                    }));
                }
                drop(reserved);
                if full {
                    // More may be due: look again at once.
                    inner.queue_wake.notify_one();
                }
            }
            // The claimer looks again at its next poll or wake-up.
            Err(error) => tracing::warn!(%error, "claiming durable runs failed; trying again"),
        }
    }

    /// The execution of a run this instance claimed.
    fn execute_claimed(&self, claimed: Claimed) -> impl Future<Output = ()> + Send + 'static {
        let inner = &self.inner;
        let slot = inner.slots.get(claimed.run.task.as_str()).cloned();
        let runtime = self.clone();
        async move {
            // Only this instance's own tasks are claimed, so the slot is there.
            let Some(slot) = slot else {
                return;
            };
            let run = Arc::new(ActiveRun::claimed(&claimed, slot.entry.name.clone()));
            lock(&runtime.inner.active).insert(run.id, run.clone());
            execute::execute(runtime, slot, run, GateKey::None, Wait::Nothing, None, None).await;
        }
    }
}
