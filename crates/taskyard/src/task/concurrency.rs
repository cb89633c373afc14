//! [`Concurrency`]: how runs of one task may overlap.

use serde::Serialize;

/// How concurrent requests to run the same task are handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(tag = "mode", content = "limit", rename_all = "snake_case")]
pub enum Concurrency {
    /// One run per task name at a time; callers arriving while it runs share that run and
    /// its result (their payloads are ignored). Nitro's rule, without its start-up race.
    #[default]
    Dedupe,
    /// Like `Dedupe`, but only callers with an equal payload share a run.
    DedupeByPayload,
    /// Every call gets its own run; runs execute one at a time, in arrival order.
    Serial,
    /// Every call gets its own run; at most `limit` execute at once, the rest wait.
    Parallel(usize),
}
