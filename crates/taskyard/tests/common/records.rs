//! Run records for the store tests: times near a fixed instant, plain and queued runs.

use jiff::Timestamp;
use serde_json::json;
use taskyard::store::{InstanceLease, Job};
use taskyard::{RunId, RunRecord, RunStatus, Trigger};

/// `ms` after a fixed instant in 2027.
pub fn at(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(1_800_000_000_000 + ms).expect("timestamp")
}

/// A run of `task` queued `offset_ms` after [`at`]`(0)`, started a millisecond later, ended
/// 10 ms after it was queued when `status` is final.
pub fn record(task: &str, status: RunStatus, instance: &str, offset_ms: i64) -> RunRecord {
    RunRecord {
        id: new_id(),
        task: task.into(),
        trigger: Trigger::Manual,
        payload: json!({}),
        status,
        attempt: 1,
        attempts: vec![],
        instance: instance.into(),
        queued_at: at(offset_ms),
        started_at: Some(at(offset_ms + 1)),
        finished_at: status.is_final().then(|| at(offset_ms + 10)),
        duration_ms: status.is_final().then_some(9),
        result: None,
        error: None,
        progress: None,
    }
}

/// A fresh run id.
pub fn new_id() -> RunId {
    RunId::new()
}

/// A queued run of `task`, as an enqueuer writes it.
pub fn queued(task: &str) -> RunRecord {
    RunRecord {
        status: RunStatus::Queued,
        started_at: None,
        instance: "enqueuer".into(),
        ..record(task, RunStatus::Queued, "enqueuer", 0)
    }
}

/// How a durable run waits: due at `run_at_ms`, three attempts.
pub fn job(run_at_ms: i64, priority: i32, key: Option<&str>) -> Job {
    Job {
        run_at: at(run_at_ms),
        priority,
        key: key.map(str::to_owned),
        max_attempts: 3,
    }
}

/// The lease of `instance`, alive until `until`, its last heartbeat at [`at`]`(100)`.
pub fn lease(instance: &str, until: Timestamp) -> InstanceLease {
    InstanceLease {
        instance: instance.into(),
        hostname: "h".into(),
        pid: 1,
        started_at: at(0),
        heartbeat_at: at(100),
        lease_until: until,
    }
}
