//! Concurrency gates: where a task's [`Concurrency`](crate::Concurrency) mode is enforced.
//!
//! Every decision happens under a short synchronous lock taken before the run is spawned,
//! so two calls arriving in the same instant cannot both start a deduplicated run, and
//! serial runs queue in exactly the order `start` was called.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::sync::lock;

use serde_json::Value;
use tokio::sync::Semaphore;

use super::TaskEntry;
use super::active::ActiveRun;
use crate::Concurrency;
use crate::history::RunId;

/// A run in flight that later callers can join or queue behind.
pub(crate) type InFlight = Arc<ActiveRun>;

pub(crate) enum Gate {
    Dedupe(Mutex<Option<InFlight>>),
    DedupeByPayload(Mutex<HashMap<String, InFlight>>),
    /// The last queued run; the next one waits for it.
    Serial(Mutex<Option<InFlight>>),
    Parallel(Arc<Semaphore>),
    Unlimited,
}

/// What a launched run waits for before its first attempt.
pub(crate) enum Wait {
    Nothing,
    After(Arc<ActiveRun>),
    Permit(Arc<Semaphore>),
}

/// Where a run is registered in its gate, so it can remove itself when it ends.
#[derive(Clone)]
pub(crate) enum GateKey {
    None,
    Single,
    Payload(String),
}

/// A task with its gate: what the runtime looks up by name on every run.
pub(crate) struct TaskSlot {
    pub entry: Arc<TaskEntry>,
    pub gate: Gate,
}

impl TaskSlot {
    pub fn new(entry: Arc<TaskEntry>) -> Self {
        let gate = match entry.task.concurrency {
            Concurrency::Dedupe => Gate::Dedupe(Mutex::new(None)),
            Concurrency::DedupeByPayload => Gate::DedupeByPayload(Mutex::new(HashMap::new())),
            Concurrency::Serial => Gate::Serial(Mutex::new(None)),
            // A limit past what a semaphore holds is no limit in practice.
            Concurrency::Parallel(limit) => {
                Gate::Parallel(Arc::new(Semaphore::new(limit.clamp(1, Semaphore::MAX_PERMITS))))
            }
            Concurrency::Unlimited => Gate::Unlimited,
        };
        TaskSlot { entry, gate }
    }

    /// Forgets `run_id` once it has ended, unless a newer run has taken its place.
    pub fn release(&self, key: &GateKey, run_id: RunId) {
        match (&self.gate, key) {
            (Gate::Dedupe(cell) | Gate::Serial(cell), GateKey::Single) => {
                let mut current = lock(cell);
                if current.as_ref().is_some_and(|f| f.id == run_id) {
                    *current = None;
                }
            }
            (Gate::DedupeByPayload(map), GateKey::Payload(key)) => {
                let mut map = lock(map);
                if map.get(key).is_some_and(|f| f.id == run_id) {
                    map.remove(key);
                }
            }
            _ => {}
        }
    }
}

/// The payload key under which `dedupe_by_payload` runs are shared. `serde_json::Value`
/// keeps object keys sorted, so equal payloads serialize identically.
pub(crate) fn payload_key(payload: &Value) -> String {
    payload.to_string()
}
