//! Concurrency gates: where a task's [`Concurrency`](crate::Concurrency) mode is enforced.
//!
//! Every decision happens under a short synchronous lock taken before the run is spawned,
//! so two calls arriving in the same instant cannot both start a deduplicated run, and
//! serial runs queue in exactly the order `start` was called.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};

use foldhash::fast::RandomState;
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::sync::lock;

use super::TaskEntry;
use super::active::ActiveRun;
use crate::Concurrency;
use crate::history::RunId;

/// A run in flight that later callers can join or queue behind.
pub(crate) type InFlight = Arc<ActiveRun>;

pub(crate) enum Gate {
    Dedupe(Mutex<Option<InFlight>>),
    DedupeByPayload(ByPayload),
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
    /// The payload's hash in its gate (see [`ByPayload`]).
    Payload(u64),
}

/// The runs in flight of a `dedupe_by_payload` task, by their payload's hash. A caller
/// joins the run under its payload's hash only if that run's payload equals its own; a
/// different payload under the same hash (a 64-bit collision of a keyed hash) runs on its
/// own, not deduplicated, rather than joining the wrong run. Hashing the parsed payload
/// costs a fraction of printing it as a key (measured on a small object: ~1,050
/// instructions a run for the printed key and its allocation). Hashed with foldhash, like
/// the active runs: a run's lookup, insertion and removal each hash its key, and SipHash
/// cost ~400 instructions a time there. The payloads are the callers' own; a collision one
/// of them forces costs only that run's deduplication, never a wrong result.
pub(crate) struct ByPayload<S = RandomState> {
    hasher: S,
    pub runs: Mutex<PayloadRuns>,
}

/// The runs in flight by their payload's hash, itself hashed again by foldhash.
pub(crate) type PayloadRuns = HashMap<u64, InFlight, RandomState>;

/// What a `dedupe_by_payload` gate holds for a payload.
pub(crate) enum Found<'a> {
    /// No run in flight under the payload's hash: a new run goes there.
    Free(u64),
    /// The run in flight with an equal payload.
    Same(&'a InFlight),
    /// A run in flight with another payload under the same hash.
    Other,
}

impl<S: BuildHasher> ByPayload<S> {
    fn with_hasher(hasher: S) -> Self {
        ByPayload {
            hasher,
            runs: Mutex::new(PayloadRuns::default()),
        }
    }

    /// The key of `payload`'s runs, taken before the gate's lock. `serde_json::Value`
    /// hashes objects by their sorted keys, so equal payloads hash alike.
    pub fn key(&self, payload: &Value) -> u64 {
        self.hasher.hash_one(payload)
    }
}

/// Looks `payload`, whose [`ByPayload::key`] is `key`, up among `runs` (a
/// `dedupe_by_payload` gate's, locked by the caller).
pub(crate) fn find<'a>(runs: &'a PayloadRuns, key: u64, payload: &Value) -> Found<'a> {
    match runs.get(&key) {
        None => Found::Free(key),
        Some(run) if run.payload == *payload => Found::Same(run),
        Some(_) => Found::Other,
    }
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
            Concurrency::DedupeByPayload => {
                Gate::DedupeByPayload(ByPayload::with_hasher(RandomState::default()))
            }
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
            (Gate::DedupeByPayload(gate), GateKey::Payload(key)) => {
                let mut runs = lock(&gate.runs);
                if runs.get(key).is_some_and(|f| f.id == run_id) {
                    runs.remove(key);
                }
            }
            _ => {}
        }
    }
}

/// A payload's canonical text, for the store's key of a durable `dedupe_by_payload` run.
/// `serde_json::Value` keeps object keys sorted, so equal payloads serialize identically.
pub(crate) fn canonical_payload(payload: &Value) -> String {
    payload.to_string()
}

#[cfg(test)]
mod tests {
    use std::hash::{BuildHasherDefault, Hasher};

    use serde_json::json;

    use super::*;
    use crate::Trigger;

    /// Every payload hashes to 0: each lookup after the first is a collision.
    #[derive(Default)]
    struct Colliding;

    impl Hasher for Colliding {
        fn finish(&self) -> u64 {
            0
        }
        fn write(&mut self, _bytes: &[u8]) {}
    }

    fn run(payload: Value) -> InFlight {
        let id = RunId::at(jiff::Timestamp::now());
        Arc::new(ActiveRun::new(id, Arc::from("t"), payload, Trigger::Manual))
    }

    #[test]
    fn a_payload_joins_only_a_run_of_an_equal_payload_even_when_hashes_collide() {
        let gate = ByPayload::with_hasher(BuildHasherDefault::<Colliding>::default());
        let mut runs = PayloadRuns::default();
        let payload = json!({"a": 1, "b": 2});
        let Found::Free(key) = find(&runs, gate.key(&payload), &payload) else {
            panic!("an empty gate holds nothing");
        };
        let first = run(payload);
        runs.insert(key, first.clone());
        let look = |payload: Value| find(&runs, gate.key(&payload), &payload);
        // Key order is not part of a payload.
        let same = look(json!({"b": 2, "a": 1}));
        assert!(matches!(same, Found::Same(found) if Arc::ptr_eq(found, &first)));
        // Another payload under the same hash never joins it.
        assert!(matches!(look(json!({"a": 2, "b": 2})), Found::Other));
        assert!(matches!(look(json!(1.0)), Found::Other));
    }

    #[test]
    fn the_keyed_hash_tells_payloads_apart() {
        let gate = ByPayload::with_hasher(RandomState::default());
        let key = |payload: Value| gate.key(&payload);
        assert_eq!(
            key(json!({"a": 1, "b": [1, 2]})),
            key(json!({"b": [1, 2], "a": 1}))
        );
        assert_ne!(key(json!({"a": 1})), key(json!({"a": 2})));
        assert_ne!(key(json!(1)), key(json!(1.0)));
    }
}
