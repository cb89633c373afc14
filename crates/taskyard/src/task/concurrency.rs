//! [`Concurrency`]: how runs of one task may overlap.

use serde::{Deserialize, Serialize};

/// How concurrent requests to run the same task are handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "mode", content = "limit", rename_all = "snake_case")]
pub enum Concurrency {
    /// One run per task name at a time; callers arriving while it runs share that run and
    /// its result. Nitro's rule, without its start-up race, and the default of tasks that
    /// take no payload.
    ///
    /// **Their payloads are ignored**: a caller arriving while a run of another payload is
    /// going gets that run's result. Choose it for a task with a payload only when any run
    /// answers every caller (a cache refresh, say).
    #[default]
    Dedupe,
    /// Like `Dedupe`, but only callers with an equal payload share a run. The default of
    /// tasks that take a payload.
    DedupeByPayload,
    /// Every call gets its own run; runs execute one at a time, in arrival order.
    Serial,
    /// Every call gets its own run; at most `limit` execute at once, the rest wait.
    Parallel(usize),
    /// Every call gets its own run and none waits for another. A durable run is limited only
    /// by the room of the instance that claims it, as a job in River, Oban or graphile-worker
    /// is by its worker's concurrency; nothing is counted across the cluster, so an instance
    /// may claim ahead what it will run next.
    Unlimited,
}
