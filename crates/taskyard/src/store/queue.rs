//! What the store keeps of a durable run beyond its record: when it may start, its place
//! in the queue, its unique key, how many attempts it gets, and the fencing token of the
//! attempt that holds it.
//!
//! The run record is the job row: a durable run is a `queued` record any live instance may
//! claim once `run_at` has come. A claim bumps the run's fence; every later write of that
//! attempt (progress, the end) carries the fence it was claimed with, and the store refuses
//! a write whose fence is no longer the run's, so an attempt that lost its claim (its
//! instance was presumed dead and the run handed on) never writes over the live one.

use jiff::Timestamp;

use crate::history::{RunId, RunRecord};

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
    /// A run of the same task and key was already queued or running: this is its id, and
    /// nothing was written.
    Existing(RunId),
}

impl Enqueued {
    /// The id of the run that will do the work.
    pub fn run_id(self) -> RunId {
        match self {
            Enqueued::New(id) | Enqueued::Existing(id) => id,
        }
    }
}

/// A durable run an instance claimed: now `running` there.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    /// The run, as it stands after the claim.
    pub run: RunRecord,
    /// The fencing token of this claim; writes of this attempt carry it.
    pub fence: i64,
    /// How many attempts the run gets in all.
    pub max_attempts: u32,
}
