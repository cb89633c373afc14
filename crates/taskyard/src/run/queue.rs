//! The claimer: each instance takes due durable runs from the store and executes them.
//!
//! One task per instance claims what its room allows, woken by this instance's enqueues
//! and polling otherwise, so runs enqueued by other instances start within a poll. A
//! claimed run executes like any other, except that its records are fenced writes of its
//! claim (see `store::queue`).
//!
//! While its runs are short, an instance claims ahead of its room: the next runs wait here
//! for a free place instead of for the store's next answer. It holds ahead only what its
//! room gets through in [`AHEAD_WAIT`], by how long its runs take, so slow runs are not
//! held back here while another instance could run them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::active::ActiveRun;
use super::gate::{GateKey, Wait};
use super::lost_answers::{ClaimClock, Giver, LostAnswer, LostAnswers};
use super::{Runtime, execute};
use crate::Concurrency;
use crate::store::{ClaimTask, Claimed, Store};
use crate::sync::lock;

/// How often an instance looks for runs enqueued elsewhere.
const POLL: Duration = Duration::from_millis(200);

/// Claimed runs one instance executes at once.
const ROOM: usize = 64;

/// At most this many claimed runs wait here beyond the room (see [`AHEAD_WAIT`]): 2,048
/// held in all. Runs that end at once are claimed in halves of that, and a claim's cost
/// in the store grows with its runs while its round trip, plan and commit do not: with
/// 512 held, a burn-down of no-op runs was 10 % slower on PostgreSQL and 15 % on SQLite.
const AHEAD: usize = 1984;

/// How long a run claimed ahead of the room should wait here for its place: an instance
/// claims ahead only as many runs as its room gets through in this long, by how long its
/// recent runs took.
const AHEAD_WAIT: Duration = Duration::from_millis(20);

/// Claimed runs' ends an instance lets wait for the store before it claims less, for each
/// of the recorder's lanes: two of its largest batches, the one being written and the next
/// one forming. With one batch for all lanes, claims waited on every write of ends.
const UNWRITTEN_ENDS_A_LANE: usize = 2 * crate::store::MAX_BATCH;

/// Claims one instance has in flight at once: the next is on its way while the store
/// answers the one before.
const CLAIMS_IN_FLIGHT: usize = 2;

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
        // Every claimed run holds a place in `held` until it ends, and one in `executing`
        // while it executes.
        let held = Arc::new(Semaphore::new(ROOM + AHEAD));
        let executing = Arc::new(Semaphore::new(ROOM));
        let mut pace = Pace::new();
        let mut clock = ClaimClock::default();
        let (lost, answers) = tokio::sync::mpsc::unbounded_channel();
        let giver = Giver {
            store: store.clone(),
            instance: inner.instance.clone(),
            tasks: tasks.clone(),
            timeout: inner.store_timeout(),
            stop: inner.queue_stop.clone(),
        };
        drop(inner.tracker.spawn(giver.run(answers)));
        let claims = Arc::new(Semaphore::new(CLAIMS_IN_FLIGHT));
        // Ends are written after their runs' room is free: a claim that found a task at
        // its limit tries again once they are in.
        let written = recorder.claimed_written();
        let stop = inner.queue_stop.clone();
        let unwritten_ends = UNWRITTEN_ENDS_A_LANE * store.write_lanes().max(1);
        while !stop.is_cancelled() {
            // All the free room in one claim (a statement per run's slot would cost a
            // round trip each), its permits held by the claim until its runs take them.
            // Ends on their way to the store past two batches a lane count as held: claims
            // never outpace what the store takes, so unwritten ends cannot pile up here.
            let holding = ROOM + AHEAD - held.available_permits()
                + recorder.ends_unwritten().saturating_sub(unwritten_ends);
            let target = ROOM + pace.ahead();
            let free = target.saturating_sub(holding);
            // Refilled by halves while runs wait here, so that a stream of short runs is
            // claimed in groups, not one statement per run that ended; at once when the
            // runs executing here would otherwise run out.
            // Nothing while this instance's lease has run out: its claims would not hold.
            let worth = free > 0 && (holding < ROOM || free >= target / 2) && self.lease_holds();
            // A claim takes at most half the runs held here (a room at least), so that a
            // second claim can be out while the first one's runs execute: under a limit
            // across the cluster, a burn-down ran ~1.6× as fast (five rounds of five),
            // and the others as fast as before.
            let asked = free.min((target / 2).max(ROOM));
            let reserved = worth
                .then(|| {
                    Some((
                        claims.clone().try_acquire_owned().ok()?,
                        held.clone().try_acquire_many_owned(asked as u32).ok()?,
                    ))
                })
                .flatten();
            if let Some((claiming, reserved)) = reserved {
                // Runs that ended here leave room under their task's limit at once, not
                // when their ends reach the store.
                for task in tasks.iter_mut().filter(|task| task.limit.is_some()) {
                    task.ended = recorder.ended_unwritten(&task.name);
                }
                drop(inner.tracker.spawn(self.clone().claim_into(
                    store.clone(),
                    (tasks.clone(), clock.next(), lost.clone()),
                    (executing.clone(), pace.took.clone()),
                    reserved,
                    claiming,
                )));
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
        }
    }

    /// One claim of `tasks` at `now` for as many runs as `reserved` holds permits, each
    /// claimed run held under one of them and executed under one of `executing`'s, its
    /// time added to `took`; `claiming` is this claim's place among those in flight. A
    /// claim whose answer never comes goes to `lost`, whose task gives its runs back.
    async fn claim_into(
        self,
        store: Arc<dyn Store>,
        (tasks, now, lost): (Vec<ClaimTask>, Timestamp, LostAnswers),
        (executing, took): (Arc<Semaphore>, Arc<Took>),
        mut reserved: OwnedSemaphorePermit,
        claiming: OwnedSemaphorePermit,
    ) {
        let inner = &self.inner;
        let asked = reserved.num_permits();
        let queued = inner.queued.load(Ordering::Acquire);
        let lapses = self.lapses();
        let mut claim: ClaimAnswer = {
            let instance = inner.instance.clone();
            Box::pin(async move { store.claim(&instance, &tasks, now, asked).await })
        };
        let limit = inner.store_timeout();
        let claimed = tokio::select! {
            claimed = &mut claim => claimed,
            () = tokio::time::sleep(limit) => {
                // Dropped now, the claim could still commit in the store, its runs
                // claimed by this instance and run by none until it stops.
                tracing::warn!(
                    limit_ms = limit.as_millis() as u64,
                    "a claim of durable runs was not answered in time; the runs it takes, if any, go back to the queue"
                );
                let stop = inner.queue_stop.clone();
                drop(inner.tracker.spawn(async move {
                    // Past the queue's stop this instance's lease is released, and a live
                    // instance queues its claimed runs again.
                    let erred = tokio::select! {
                        answer = claim => answer.is_err(),
                        () = stop.cancelled() => return,
                    };
                    // The giver stops with the queue: nothing to give back then.
                    let _ = lost.send(LostAnswer { now, erred });
                }));
                return;
            }
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
                    let execution = self.execute_claimed(run, (executing.clone(), took.clone()), lapses);
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
                // More may be due: look again at once. So too when a run was queued while
                // this claim was out: the claim may have missed it, and the wake-up came
                // while this claim held the room, so the claimer let it go.
                if full || inner.queued.load(Ordering::Acquire) != queued {
                    inner.queue_wake.notify_one();
                }
            }
            // The store may have committed the claim all the same (its connection broke
            // after the commit, or a limited task's statement failed after others took
            // their runs). The claimer looks again at its next poll or wake-up.
            Err(error) => {
                tracing::warn!(%error, "claiming durable runs failed; the runs it took, if any, go back to the queue");
                let _ = lost.send(LostAnswer { now, erred: true });
            }
        }
    }

    /// The execution of a run this instance claimed, once `executing` has room for it; it
    /// can be cancelled while it waits. `lapses` is how many times the lease had run out
    /// when the claim was asked for.
    fn execute_claimed(
        &self,
        claimed: Claimed,
        (executing, took): (Arc<Semaphore>, Arc<Took>),
        lapses: u64,
    ) -> impl Future<Output = ()> + Send + 'static {
        let inner = &self.inner;
        let slot = inner.slots.get(claimed.run.task.as_str()).cloned();
        let runtime = self.clone();
        async move {
            // Only this instance's own tasks are claimed, so the slot is there.
            let Some(slot) = slot else {
                return;
            };
            let run = Arc::new(ActiveRun::claimed(&claimed, slot.entry.name.clone()));
            // A cancel asked for while the run was between claims: it never starts.
            if claimed.cancel_requested {
                run.cancel.cancel();
            }
            lock(&runtime.inner.active).insert(run.id, run.clone());
            // The lease ran out while the claim was out: the run never starts here.
            runtime.give_up_if_lapsed(&run, lapses);
            let mut execution = execute::execute(
                runtime.clone(),
                slot,
                run.clone(),
                GateKey::None,
                Wait::Permit(executing),
                None,
                None,
            );
            // The claim wrote nothing to the run's record: a run that ends in the poll
            // that starts it is written once, by its end; one that goes on is written as
            // it is when that poll returns. (A run waiting for its place is not written.)
            std::future::poll_fn(|cx| {
                let poll = execution.as_mut().poll(cx);
                // Once released, a poll takes no lock.
                if poll.is_pending() && run.records_held() && run.live().attempt_started_at.is_some() {
                    runtime.inner.release_records(&run);
                }
                poll
            })
            .await;
            // From its last attempt's start, not its claim: the wait for a place is not
            // the run's.
            let live = run.live();
            if let (Some(start), Some(end)) = (live.attempt_started_at, live.finished_at) {
                took.add(end.duration_since(start).unsigned_abs());
            }
        }
    }
}

/// A claim's answer, on its way.
type ClaimAnswer = std::pin::Pin<Box<dyn Future<Output = Result<Vec<Claimed>, crate::Error>> + Send>>;

impl super::RuntimeInner {
    /// Wakes the claimer for runs just queued, and counts them: a claim already out may
    /// have read the queue before they were in it, and looks again when it ends.
    pub(super) fn wake_queue(&self) {
        self.queued.fetch_add(1, Ordering::Release);
        self.queue_wake.notify_one();
    }
}

/// How long this instance's claimed runs took: their count and total time, added as
/// each ends.
#[derive(Default)]
struct Took {
    runs: AtomicU64,
    nanos: AtomicU64,
}

impl Took {
    fn add(&self, took: Duration) {
        self.nanos.fetch_add(
            u64::try_from(took.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        self.runs.fetch_add(1, Ordering::Relaxed);
    }
}

/// How long this instance's claimed runs take, smoothed over the claimer's turns.
struct Pace {
    took: Arc<Took>,
    /// `took`'s runs and time at the last update.
    seen: (u64, u64),
    /// The runs' mean time, in seconds; unknown until a run ended.
    mean: Option<f64>,
}

impl Pace {
    fn new() -> Pace {
        Pace {
            took: Arc::default(),
            seen: (0, 0),
            mean: None,
        }
    }

    /// How many claimed runs may wait here beyond the room now: as many as the room gets
    /// through in [`AHEAD_WAIT`], at most [`AHEAD`]. By the runs' mean time, not the pace
    /// of their ends: slow runs that end together would look fast by that.
    fn ahead(&mut self) -> usize {
        let (runs, nanos) = (
            self.took.runs.load(Ordering::Relaxed),
            self.took.nanos.load(Ordering::Relaxed),
        );
        if runs > self.seen.0 {
            let latest = (nanos - self.seen.1) as f64 / 1e9 / (runs - self.seen.0) as f64;
            self.mean = Some(self.mean.map_or(latest, |mean| (mean + latest) / 2.0));
            self.seen = (runs, nanos);
        }
        match self.mean {
            Some(mean) => ((ROOM as f64 * AHEAD_WAIT.as_secs_f64() / mean.max(1e-9)) as usize).min(AHEAD),
            None => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ahead_after(took: &[Duration]) -> usize {
        let mut pace = Pace::new();
        for run in took {
            pace.took.add(*run);
        }
        pace.ahead()
    }

    #[test]
    fn runs_are_claimed_ahead_by_how_long_they_take() {
        // Nothing ended here yet: nothing ahead.
        assert_eq!(ahead_after(&[]), 0);
        // Runs that end at once: all the room ahead allows.
        assert_eq!(ahead_after(&[Duration::from_micros(5); 100]), AHEAD);
        // 10 ms runs: what 64 places get through in 20 ms.
        assert_eq!(ahead_after(&[Duration::from_millis(10); 100]), 128);
        // Slow runs: next to nothing, however many end together.
        assert_eq!(ahead_after(&[Duration::from_millis(300); 64]), 4);
        assert_eq!(ahead_after(&[Duration::from_secs(2); 64]), 0);
    }

    #[test]
    fn the_pace_follows_the_latest_runs() {
        let mut pace = Pace::new();
        pace.took.add(Duration::from_micros(5));
        assert_eq!(pace.ahead(), AHEAD);
        for _ in 0..8 {
            for _ in 0..64 {
                pace.took.add(Duration::from_millis(300));
            }
            pace.ahead();
        }
        assert!(pace.ahead() <= 5, "{}", pace.ahead());
    }
}

#[cfg(test)]
#[path = "queue_wake_tests.rs"]
mod wake_tests;
