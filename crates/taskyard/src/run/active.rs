//! [`ActiveRun`]: the live state of a run this instance is executing.

use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use jiff::Timestamp;
use serde_json::Value;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{Attempt, Progress, RunId, RunRecord, RunStatus};
use crate::{Error, Trigger};

pub(crate) struct ActiveRun {
    pub id: RunId,
    pub task: Arc<str>,
    pub payload: Value,
    pub trigger: Trigger,
    pub cancel: CancellationToken,
    pub span: tracing::Span,
    pub queued_at: Timestamp,
    live: Mutex<Live>,
    /// What every caller of the run receives, set once when it ends.
    outcome: OnceLock<Result<Value, Error>>,
    ended: Notify,
}

/// The parts of a run that change while it executes.
#[derive(Debug, Clone)]
pub(crate) struct Live {
    pub status: RunStatus,
    pub attempt: u32,
    pub attempts: Vec<Attempt>,
    pub started_at: Option<Timestamp>,
    pub attempt_started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    pub result: Option<Value>,
    pub error: Option<String>,
    pub progress: Option<Progress>,
}

impl ActiveRun {
    pub fn new(id: RunId, task: Arc<str>, payload: Value, trigger: Trigger, span: tracing::Span) -> Self {
        ActiveRun {
            id,
            task,
            payload,
            trigger,
            cancel: CancellationToken::new(),
            span,
            queued_at: id.created_at(),
            outcome: OnceLock::new(),
            ended: Notify::new(),
            live: Mutex::new(Live {
                status: RunStatus::Queued,
                attempt: 1,
                attempts: Vec::new(),
                started_at: None,
                attempt_started_at: None,
                finished_at: None,
                result: None,
                error: None,
                progress: None,
            }),
        }
    }

    /// The live state. The lock is only ever held for a few field updates, never across an
    /// `.await`, and a panic cannot happen while it is held, so poisoning is impossible.
    pub fn live(&self) -> MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Ends the run for its callers. Only the first outcome counts.
    pub fn settle(&self, outcome: Result<Value, Error>) {
        if self.outcome.set(outcome).is_ok() {
            self.ended.notify_waiters();
        }
    }

    pub fn is_settled(&self) -> bool {
        self.outcome.get().is_some()
    }

    /// Waits until the run has ended and returns what its callers receive.
    pub async fn outcome(&self) -> &Result<Value, Error> {
        loop {
            if let Some(outcome) = self.outcome.get() {
                return outcome;
            }
            // Registered before the second check, so a `settle` in between still wakes us.
            let ended = self.ended.notified();
            let mut ended = std::pin::pin!(ended);
            ended.as_mut().enable();
            if let Some(outcome) = self.outcome.get() {
                return outcome;
            }
            ended.await;
        }
    }

    pub fn snapshot(&self, instance: &str) -> RunRecord {
        let live = self.live().clone();
        let duration_ms = match (live.started_at, live.finished_at) {
            (Some(start), Some(end)) => Some(duration_ms(start, end)),
            _ => None,
        };
        RunRecord {
            id: self.id,
            task: self.task.to_string(),
            trigger: self.trigger.clone(),
            payload: self.payload.clone(),
            status: live.status,
            attempt: live.attempt,
            attempts: live.attempts,
            instance: instance.to_owned(),
            queued_at: self.queued_at,
            started_at: live.started_at,
            finished_at: live.finished_at,
            duration_ms,
            result: live.result,
            error: live.error,
            progress: live.progress,
        }
    }
}

pub(crate) fn duration_ms(start: Timestamp, end: Timestamp) -> u64 {
    let ms = end.as_millisecond() - start.as_millisecond();
    u64::try_from(ms).unwrap_or(0)
}
