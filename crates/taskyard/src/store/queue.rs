//! What the store keeps of a durable run beyond its record: when it may start, its place
//! in the queue, its unique key, how many attempts it gets, and the fencing token of the
//! attempt that holds it.
//!
//! A durable run is a job while it is queued or running (in the SQL stores, a row of
//! `taskyard_jobs` that also holds the run's record until it ends): any live instance may claim it once
//! `run_at` has come. A claim marks the job as the instance's, bumps its fence and sets
//! `run_at` to the claim's time, which is when the attempt began should its instance die;
//! every later write of that attempt (progress, the end) carries the fence it was claimed
//! with, and the store refuses a write whose fence is no longer the job's, so an attempt
//! that lost its claim (its instance was presumed dead and the run handed on) never writes
//! over the live one. The run's end deletes its job and writes its record to the history,
//! in one transaction.

use jiff::Timestamp;

use crate::history::{Attempt, RunId, RunRecord, RunStatus, duration_ms};

/// How a durable run waits in the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The earliest time it may start.
    pub run_at: Timestamp,
    /// Higher runs first among the runs that are due.
    pub priority: i32,
    /// At most one queued or running run per task and key; enqueuing another while one is
    /// live hands back the live one's id.
    pub key: Option<String>,
    /// How many attempts it gets in all.
    pub max_attempts: u32,
}

/// What [`Store::enqueue`](super::Store::enqueue) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// The run is in the queue, committed.
    New(RunId),
    /// A run of the same task and key was already queued or running: this is its id and
    /// the time it is due (once claimed, its claim's time), and nothing was written.
    Existing(RunId, Timestamp),
}

impl Enqueued {
    /// The id of the run that will do the work.
    pub fn run_id(self) -> RunId {
        match self {
            Enqueued::New(id) | Enqueued::Existing(id, _) => id,
        }
    }
}

/// Succeeded durable runs of one task that were not kept (`Task::keep_succeeded(false)`),
/// counted by the minute they ended in, as
/// [`Store::count_forgotten`](super::Store::count_forgotten) adds them up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForgottenCount {
    /// The minute's start, in Unix milliseconds: a multiple of 60,000.
    pub minute: i64,
    /// The task.
    pub task: String,
    /// How many of its runs ended in that minute.
    pub runs: u64,
}

/// The start of the minute `at` falls in, in Unix milliseconds.
pub(crate) fn minute_of(at: Timestamp) -> i64 {
    at.as_millisecond().div_euclid(MINUTE_MS) * MINUTE_MS
}

/// The span that the ends of runs not kept are counted by, in milliseconds.
pub(crate) const MINUTE_MS: i64 = 60_000;

/// A durable run an instance claimed: now `running` there.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    /// The run, as it stands after the claim.
    pub run: RunRecord,
    /// The fencing token of this claim; writes of this attempt carry it.
    pub fence: i64,
    /// How many attempts the run gets in all.
    pub max_attempts: u32,
    /// A cancel was asked for before the claim (while its last attempt ended, or while the
    /// run of a dead instance was rescued): the run ends `cancelled` without starting.
    pub cancel_requested: bool,
}

/// A task whose durable runs an instance claims, and how many of them may run at once
/// across the cluster (`None`: no limit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimTask {
    /// The task's name.
    pub name: String,
    /// At most this many of its durable runs `running` at once, on all instances together.
    pub limit: Option<u32>,
    /// Of the runs the claiming instance took, those that ended and whose end is on its
    /// way to the store: perhaps still `running` there, but no longer holding room under
    /// the limit. Named by id, so that an end written meanwhile is not counted out twice.
    pub ended: Vec<RunId>,
}

/// What [`Store::request_cancel`](super::Store::request_cancel) did.
#[derive(Debug, Clone, PartialEq)]
pub enum CancelRequest {
    /// The run was a queued durable run: it is `cancelled` now, before any instance took it.
    Cancelled(RunRecord),
    /// The run is queued or running on an instance: it is flagged, and that instance
    /// cancels it when it sees the flag.
    Requested(RunRecord),
    /// The run had already ended: nothing changed.
    Finished(RunRecord),
}

/// A schedule paused or resumed through some instance, as the store keeps it for all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedulePause {
    /// The schedule's name.
    pub schedule: String,
    /// Paused (`true`) or resumed.
    pub paused: bool,
    /// When it was changed.
    pub changed_at: Timestamp,
    /// The instance it was changed through.
    pub instance: String,
}

/// A claimed durable run whose instance stopped renewing its lease.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Orphan {
    /// The run as its last write left it (`running`).
    pub run: RunRecord,
    /// The fence of the lost claim.
    pub fence: i64,
    /// How many attempts the run gets in all.
    pub max_attempts: u32,
    /// When the lost attempt was claimed (a running run's `run_at`), if known.
    pub claimed_at: Option<Timestamp>,
    /// The instance's last heartbeat, if its lease row is still there.
    pub seen: Option<Timestamp>,
    /// Someone asked to cancel the run: it ends `cancelled` instead of running again.
    pub cancel_requested: bool,
}

/// When a rescued run is due again: at its queueing time, so that it goes ahead of the
/// runs queued after it and runs again within the lease even behind a long queue (due
/// `now`, it waited behind every run already queued: 10 s behind 2,000 runs of a task
/// with a limit).
pub(crate) fn rescued_due(run: &RunRecord, now: Timestamp) -> Timestamp {
    run.queued_at.min(now)
}

/// What becomes of an orphan at `now`: its lost attempt ends at its instance's last sign
/// of life and is kept among the attempts; the run goes back to the queue (due as
/// [`rescued_due`] says) as its next attempt, or ends `abandoned` when it had its last
/// (`cancelled` when a cancel was asked for). Returns the run and whether it was queued
/// again.
pub(crate) fn rescue(orphan: &Orphan, now: Timestamp) -> (RunRecord, bool) {
    let mut run = orphan.run.clone();
    let started = orphan.claimed_at.or(run.started_at).unwrap_or(run.queued_at);
    let ended = orphan.seen.map_or(now, |seen| seen.max(started).min(now));
    let error = format!(
        "abandoned: instance {} stopped renewing its lease while the run was running",
        run.instance
    );
    let again = run.attempt < orphan.max_attempts && !orphan.cancel_requested;
    if orphan.cancel_requested {
        run.status = RunStatus::Cancelled;
        run.finished_at = Some(ended);
        run.duration_ms = run.started_at.map(|start| duration_ms(start, ended));
        run.error = Some("cancelled".to_owned());
    } else if again {
        run.attempts.push(Attempt {
            attempt: run.attempt,
            status: RunStatus::Abandoned,
            started_at: started,
            finished_at: ended,
            error: Some(error),
            retry_delay_ms: 0,
        });
        run.attempt += 1;
        run.status = RunStatus::Queued;
        run.progress = None;
    } else {
        run.status = RunStatus::Abandoned;
        run.finished_at = Some(ended);
        run.duration_ms = run.started_at.map(|start| duration_ms(start, ended));
        run.error = Some(error);
    }
    (run, again)
}
