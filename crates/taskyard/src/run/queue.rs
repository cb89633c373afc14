//! The claimer: each instance takes due durable runs from the store and executes them.
//!
//! One task per instance claims what its room allows, woken by this instance's enqueues
//! and polling otherwise, so runs enqueued by other instances start within a poll. A
//! claimed run executes like any other, except that its records are fenced writes of its
//! claim (see `store::queue`).

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::Semaphore;

use super::active::ActiveRun;
use super::gate::{GateKey, Wait};
use super::{Runtime, execute};
use crate::Concurrency;
use crate::store::{ClaimTask, Claimed};
use crate::sync::lock;

/// How often an instance looks for runs enqueued elsewhere.
const POLL: Duration = Duration::from_millis(200);

/// Claimed runs one instance executes at once.
const ROOM: usize = 64;

impl Runtime {
    /// Claims and executes due durable runs until the runtime stops accepting runs.
    pub(crate) async fn run_queue(self) {
        let inner = &self.inner;
        // A store comes with its recorder: without both there is nothing to claim.
        let (Some(store), Some(recorder)) = (inner.store.clone(), inner.recorder.as_ref()) else {
            return;
        };
        let tasks: Vec<ClaimTask> = inner
            .slots
            .values()
            .map(|slot| ClaimTask {
                name: slot.entry.name.to_string(),
                limit: match slot.entry.task.concurrency {
                    Concurrency::Serial => Some(1),
                    Concurrency::Parallel(limit) => Some(u32::try_from(limit.max(1)).unwrap_or(u32::MAX)),
                    // One live run per task (and payload) is the unique key's job.
                    Concurrency::Dedupe | Concurrency::DedupeByPayload => None,
                },
            })
            .collect();
        let room = Arc::new(Semaphore::new(ROOM));
        // Ends are written after their runs' room is free: a claim that found a task at
        // its limit tries again once they are in.
        let written = recorder.claimed_written();
        let stop = inner.queue_stop.clone();
        while !stop.is_cancelled() {
            // All the room in one claim: a statement per run's slot would cost a round trip
            // each.
            let free = room.available_permits();
            if free > 0 {
                let claim = self.bounded(store.claim(&inner.instance, &tasks, Timestamp::now(), free));
                let claimed = tokio::select! {
                    claimed = claim => claimed,
                    _ = stop.cancelled() => break,
                };
                match claimed {
                    Ok(claimed) => {
                        let full = claimed.len() == free;
                        for run in claimed {
                            let Ok(permit) = room.clone().try_acquire_owned() else {
                                break;
                            };
                            let execution = self.execute_claimed(run);
                            let runtime = self.clone();
                            drop(inner.tracker.spawn(async move {
                                execution.await;
                                drop(permit);
                                // Its end is on its way to the store: room here for the next
                                // run at once.
                                runtime.inner.queue_wake.notify_one();
                            }));
                        }
                        if full {
                            // More may be due: look again at once.
                            continue;
                        }
                    }
                    Err(error) => tracing::warn!(%error, "claiming durable runs failed; trying again"),
                }
            }
            tokio::select! {
                _ = inner.queue_wake.notified() => {}
                _ = written.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
                _ = stop.cancelled() => break,
            }
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
            let span = tracing::info_span!("task", name = %slot.entry.name, run_id = %claimed.run.id);
            let run = Arc::new(ActiveRun::claimed(&claimed, slot.entry.name.clone(), span));
            lock(&runtime.inner.active).insert(run.id, run.clone());
            execute::execute(runtime, slot, run, GateKey::None, Wait::Nothing, None).await;
        }
    }
}
