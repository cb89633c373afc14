//! [`Enqueue`]: a durable run, written to the store before the caller is answered, that any
//! live instance of the app may take.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

use super::{RunHandle, Runtime};
use crate::history::{RunId, RunRecord, Trigger};
use crate::store::{Enqueued, Job, Store, TickClaim};
use crate::{Concurrency, Error};

/// A durable run being described; `.await` it to write it to the queue.
#[must_use = "an enqueue does nothing until it is awaited"]
pub struct Enqueue {
    runtime: Runtime,
    task: String,
    payload: Value,
    trigger: Trigger,
    run_at: Option<Timestamp>,
    delay: Duration,
    key: Option<String>,
    priority: i32,
    max_attempts: Option<u32>,
}

impl Enqueue {
    pub(super) fn new(runtime: Runtime, task: &str, payload: Value) -> Self {
        Enqueue {
            runtime,
            task: task.to_owned(),
            payload,
            trigger: Trigger::Manual,
            run_at: None,
            delay: Duration::ZERO,
            key: None,
            priority: 0,
            max_attempts: None,
        }
    }

    /// Not before `time`; a time in the past runs now.
    pub fn at(mut self, time: Timestamp) -> Self {
        self.run_at = Some(time);
        self
    }

    /// Not before `delay` from now.
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// At most one queued or running run of the task per `key`: while one is, enqueuing
    /// another returns its id and writes nothing.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Among the runs that are due, higher priorities start first (default 0).
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    /// How many attempts the run gets in all (default: the task's `Retry`).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = Some(attempts.max(1));
        self
    }

    /// What the run's record says started it (default `manual`).
    pub fn trigger(mut self, trigger: Trigger) -> Self {
        self.trigger = trigger;
        self
    }

    /// Checks the task and payload, then writes the run to the queue: it is committed when
    /// this returns its id (with a key, the id of the live run it joined).
    pub async fn send(self) -> Result<RunId, Error> {
        self.submit().await.map(|(enqueued, _)| enqueued.run_id())
    }

    /// [`Enqueue::send`], with the run's handle to await its result (joined when the run
    /// was already live under the same key).
    pub async fn handle(self) -> Result<RunHandle, Error> {
        let runtime = self.runtime.clone();
        let trigger = self.trigger.clone();
        let task = self.task.clone();
        let (enqueued, due) = self.submit().await?;
        let joined = matches!(enqueued, Enqueued::Existing(..));
        Ok(super::request::stored(
            runtime,
            (enqueued.run_id(), &task),
            trigger,
            (joined, due),
        ))
    }

    /// [`Enqueue::send`], saying whether the run is new or a live one it joined, and when
    /// it is due. Without an explicit key, a `Dedupe` task's run joins the task's live
    /// durable run, and a `DedupeByPayload` task's the live one of the same payload; a
    /// schedule's tick never joins (the tick ledger already runs each tick once).
    pub(crate) async fn submit(self) -> Result<(Enqueued, Timestamp), Error> {
        let runtime = self.runtime.clone();
        let (store, run, job) = self.prepared()?;
        let enqueued = runtime.bounded(store.enqueue(&run, &job)).await?;
        match enqueued {
            Enqueued::New(_) => {
                runtime.inner.wake_queue();
                Ok((enqueued, job.run_at))
            }
            Enqueued::Existing(_, due) => Ok((enqueued, due)),
        }
    }

    /// Claims `claim`'s tick and writes this run with it, in one transaction (see
    /// `Store::claim_tick_and_enqueue`): the run's handle when this call claimed the tick,
    /// `None` when the tick was claimed before and nothing was written.
    pub(crate) async fn submit_with_tick(self, claim: &TickClaim) -> Result<Option<RunHandle>, Error> {
        let runtime = self.runtime.clone();
        let trigger = self.trigger.clone();
        let task = self.task.clone();
        let (store, run, job) = self.prepared()?;
        if !runtime
            .bounded(store.claim_tick_and_enqueue(claim, &run, &job))
            .await?
        {
            return Ok(None);
        }
        runtime.inner.wake_queue();
        Ok(Some(super::request::stored(
            runtime,
            (run.id, &task),
            trigger,
            (false, job.run_at),
        )))
    }

    /// The run as this enqueue describes it (its payload checked against the task's
    /// type), its place in the queue, and the store they go to.
    fn prepared(self) -> Result<(Arc<dyn Store>, RunRecord, Job), Error> {
        let inner = &self.runtime.inner;
        let (slot, store) = inner.queue_target(&self.task)?;
        (slot.entry.task.validate)(&slot.entry.name, &self.payload)?;
        let now = Timestamp::now();
        let after = SignedDuration::try_from(self.delay).unwrap_or(SignedDuration::MAX);
        let run_at = self
            .run_at
            .unwrap_or(now)
            .max(now.checked_add(after).unwrap_or(now));
        let run = RunRecord::queued(self.task, self.payload, self.trigger, inner.instance.clone(), now);
        let key = match (self.key, slot.entry.task.concurrency, &run.trigger) {
            (Some(key), _, _) => Some(key),
            (None, _, Trigger::Schedule { .. }) => None,
            (None, Concurrency::Dedupe, _) => Some(DEDUPE_KEY.to_owned()),
            (None, Concurrency::DedupeByPayload, _) => Some(payload_key(&run.payload)),
            (None, Concurrency::Serial | Concurrency::Parallel(_) | Concurrency::Unlimited, _) => None,
        };
        let job = Job {
            run_at,
            priority: self.priority,
            key,
            max_attempts: self
                .max_attempts
                .unwrap_or_else(|| slot.entry.task.retry.max_attempts()),
        };
        Ok((store.clone(), run, job))
    }
}

impl IntoFuture for Enqueue {
    type Output = Result<RunId, Error>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}

/// The key of a `Dedupe` task's durable runs: one live run per task.
const DEDUPE_KEY: &str = "dedupe";

/// The key of a `DedupeByPayload` task's durable runs: a digest of the canonical payload
/// (object keys sorted), short enough for the store's unique index whatever the payload.
fn payload_key(payload: &Value) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(super::gate::canonical_payload(payload).as_bytes());
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("payload:{hex}")
}
