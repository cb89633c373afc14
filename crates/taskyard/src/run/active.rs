//! [`ActiveRun`]: the live state of a run this instance is executing, and its transitions
//! (started, retrying, progress, finished), each recorded and published as it happens.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use jiff::Timestamp;
use serde_json::Value;
use tokio::sync::Notify;

use super::cancel::Cancel;
use super::execute::AttemptEnd;
use super::{Attempt, Progress, RunEvent, RunEventKind, RunId, RunRecord, RunStatus, RuntimeInner};
use crate::history::duration_ms;
use crate::store::Claimed;
use crate::sync::lock;
use crate::{Error, Trigger};

pub(crate) struct ActiveRun {
    pub id: RunId,
    pub task: Arc<str>,
    pub payload: Value,
    pub trigger: Trigger,
    pub cancel: Cancel,
    pub span: tracing::Span,
    pub queued_at: Timestamp,
    /// For a durable run this instance claimed: the claim's fence and the run's attempts.
    pub claim: Option<Claim>,
    /// Whether the run's records are held back (see [`ActiveRun::records_held`]).
    records_held: AtomicBool,
    /// Set when this instance gave up its claim on the run (see [`ActiveRun::give_up`]).
    claim_lost: AtomicBool,
    live: Mutex<Live>,
    /// What every caller of the run receives, set once when it ends.
    outcome: OnceLock<Result<Value, Error>>,
    ended: Notify,
}

/// What an instance holds of a durable run it claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Claim {
    /// The claim's fencing token; every write of the run carries it.
    pub fence: i64,
    /// How many attempts the run gets in all.
    pub max_attempts: u32,
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
    pub fn new(id: RunId, task: Arc<str>, payload: Value, trigger: Trigger) -> Self {
        ActiveRun {
            id,
            span: run_span(&task, id),
            task,
            payload,
            trigger,
            cancel: Cancel::default(),
            queued_at: id.created_at(),
            claim: None,
            // Its `queued` record waits for the end of its first poll.
            records_held: AtomicBool::new(true),
            claim_lost: AtomicBool::new(false),
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

    /// A durable run as this instance claimed it: it goes on from its stored attempt.
    pub fn claimed(claimed: &Claimed, task: Arc<str>) -> Self {
        let record = &claimed.run;
        ActiveRun {
            id: record.id,
            span: run_span(&task, record.id),
            task,
            payload: record.payload.clone(),
            trigger: record.trigger.clone(),
            cancel: Cancel::default(),
            queued_at: record.queued_at,
            claim: Some(Claim {
                fence: claimed.fence,
                max_attempts: claimed.max_attempts,
            }),
            // Its `running` record waits for the end of its body's first poll, as a run
            // launched here waits for its first poll (see `Runtime::execute_claimed`).
            records_held: AtomicBool::new(true),
            claim_lost: AtomicBool::new(false),
            outcome: OnceLock::new(),
            ended: Notify::new(),
            live: Mutex::new(Live {
                status: RunStatus::Running,
                attempt: record.attempt,
                attempts: record.attempts.clone(),
                started_at: record.started_at,
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

    /// Stops a claimed run whose claim this instance can no longer count on (its lease ran
    /// out, or the store refused a write of its attempt): it is cancelled here, and its end
    /// is not written, so the store keeps it for the instance that takes it over.
    pub(super) fn give_up(&self) {
        self.claim_lost.store(true, Ordering::Release);
        self.cancel.cancel();
    }

    /// Whether [`ActiveRun::give_up`] stopped the run.
    pub(super) fn claim_lost(&self) -> bool {
        self.claim_lost.load(Ordering::Acquire)
    }

    /// True while the run's records are held back: a run launched here is not recorded
    /// during its first poll, on the caller's task. A run that ends there is written once,
    /// by its end, instead of as `queued`, `running` and its end, states nobody could read
    /// in between; one that goes on is written as it is when the poll returns
    /// ([`RuntimeInner::release_records`]). A record asked for meanwhile (a progress report
    /// from another task) is part of that state: the run's state lock orders the two.
    pub(super) fn records_held(&self) -> bool {
        self.records_held.load(Ordering::Acquire)
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
        self.snapshot_of(live, instance)
    }

    /// The record of the run in state `live`.
    fn snapshot_of(&self, live: Live, instance: &str) -> RunRecord {
        let duration_ms = match (live.started_at, live.finished_at) {
            (Some(start), Some(end)) => Some(duration_ms(start, end)),
            _ => None,
        };
        RunRecord {
            id: self.id,
            task: String::from(&*self.task),
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

/// The span a run's events are recorded in, or none when nothing listens: a disabled span
/// still costs, at its start and on every poll of the run, the `log` records that tracing's
/// `log` feature (which sqlx turns on) makes for it.
fn run_span(task: &str, id: RunId) -> tracing::Span {
    if tracing::enabled!(kind: tracing::metadata::Kind::SPAN, tracing::Level::INFO) {
        tracing::info_span!("task", name = %task, run_id = %id)
    } else {
        tracing::Span::none()
    }
}

/// Runs `f` in `span`; with no span (nothing listens) not even the span's checks.
pub(super) fn in_span<T>(span: &tracing::Span, f: impl FnOnce() -> T) -> T {
    if span.is_none() { f() } else { span.in_scope(f) }
}

impl RuntimeInner {
    pub(super) fn publish(&self, run: &ActiveRun, kind: impl FnOnce() -> RunEventKind) {
        if self.events.receiver_count() == 0 {
            return;
        }
        let _ = self.events.send(RunEvent {
            run_id: run.id,
            task: String::from(&*run.task),
            at: Timestamp::now(),
            kind: kind(),
        });
    }

    /// Queues the run's current state for the store, without waiting; a claimed run's
    /// write is fenced by its claim.
    pub(super) fn record(&self, run: &ActiveRun) {
        if let Some(recorder) = &self.recorder {
            if run.records_held() {
                return;
            }
            let snapshot = run.snapshot(&self.instance);
            match run.claim {
                Some(claim) => recorder.put_claimed(snapshot, claim.fence),
                None => recorder.put(snapshot),
            }
        }
    }

    /// Stops holding back the run's records and writes its state: its first poll is over
    /// and it goes on. Nothing when they were not held (a run that reached its end).
    pub(super) fn release_records(&self, run: &ActiveRun) {
        if run.records_held.swap(false, Ordering::AcqRel) {
            self.record(run);
        }
    }

    /// The attempt began, `at` or now; the run's new state is recorded.
    pub(super) fn mark_started(&self, run: &ActiveRun, attempt: u32, at: Option<Timestamp>) {
        {
            let now = at.unwrap_or_else(Timestamp::now);
            let mut live = run.live();
            live.status = RunStatus::Running;
            live.attempt = attempt;
            live.started_at.get_or_insert(now);
            live.attempt_started_at = Some(now);
        }
        in_span(&run.span, || tracing::debug!(attempt, "run started"));
        self.publish(run, || RunEventKind::Started { attempt });
        self.record(run);
    }

    /// Keeps the attempt that just ended among the run's attempts; returns its error.
    fn end_attempt(live: &mut Live, end: &AttemptEnd, delay: Duration) -> Option<String> {
        let error = end_error(end);
        let now = Timestamp::now();
        let attempt = Attempt {
            attempt: live.attempt,
            status: end.status(),
            started_at: live.attempt_started_at.unwrap_or(now),
            finished_at: now,
            error: error.clone(),
            retry_delay_ms: delay.as_millis() as u64,
        };
        live.attempts.push(attempt);
        error
    }

    /// How long the runtime waits for a store call of a claimed run (a claim, a retry put
    /// back): the store timeout. Claimed runs come with a store and its recorder; 5 s
    /// stands in without one.
    pub(super) fn store_timeout(&self) -> Duration {
        self.recorder
            .as_ref()
            .map_or(Duration::from_secs(5), |recorder| recorder.timeout())
    }

    /// Puts a claimed run whose attempt failed back in the store as its next attempt, due
    /// after `delay`, and lets it go here. `false` when the store did not take it (the run
    /// then waits for its retry here).
    pub(super) async fn requeue(&self, run: &ActiveRun, end: &AttemptEnd, delay: Duration) -> bool {
        let (Some(store), Some(claim)) = (&self.store, run.claim) else {
            return false;
        };
        let (snapshot, error) = {
            // The next attempt's state, for the store only: here the run keeps its own.
            let mut next = run.live().clone();
            let error = Self::end_attempt(&mut next, end, delay);
            next.status = RunStatus::Queued;
            next.attempt += 1;
            next.attempt_started_at = None;
            next.progress = None;
            (run.snapshot_of(next, &self.instance), error)
        };
        let run_at = Timestamp::now()
            .checked_add(jiff::SignedDuration::try_from(delay).unwrap_or(jiff::SignedDuration::MAX))
            .unwrap_or(Timestamp::MAX);
        let requeued = tokio::time::timeout(
            self.store_timeout(),
            store.requeue_claimed(&snapshot, claim.fence, run_at),
        )
        .await;
        let _entered = run.span.enter();
        match requeued {
            Ok(Ok(requeued)) => {
                if requeued {
                    tracing::warn!(
                        error = error.as_deref().unwrap_or(""),
                        delay_ms = delay.as_millis() as u64,
                        "attempt failed; the run waits in the store for its retry"
                    );
                } else {
                    tracing::warn!(run_id = %run.id, "the run lost its claim; its retry was not recorded");
                }
                lock(&self.active).remove(&run.id);
                true
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, "the store did not take the retry; it waits here");
                false
            }
            Err(_) => {
                tracing::warn!("the store did not take the retry in time; it waits here");
                false
            }
        }
    }

    pub(super) fn mark_retrying(&self, run: &ActiveRun, end: &AttemptEnd, delay: Duration) {
        let _entered = run.span.enter();
        let error;
        {
            let mut live = run.live();
            error = Self::end_attempt(&mut live, end, delay);
            // A claimed run stays `running` in the store while it waits here: `queued`
            // would let another instance claim it meanwhile.
            live.status = if run.claim.is_some() {
                RunStatus::Running
            } else {
                RunStatus::Queued
            };
        }
        tracing::warn!(
            error = error.as_deref().unwrap_or(""),
            delay_ms = delay.as_millis() as u64,
            "attempt failed; retrying"
        );
        self.record(run);
    }

    pub(crate) fn report_progress(&self, run: &ActiveRun, fraction: f64, message: Option<String>) {
        let fraction = if fraction.is_finite() {
            fraction.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let progress = Progress { fraction, message };
        run.live().progress = Some(progress.clone());
        self.publish(run, || RunEventKind::Progress(progress));
        self.record(run);
    }

    /// Records the run's end (waiting until the store has it, for at most the store
    /// timeout; a claimed durable run's end is only queued) and returns its result, or
    /// the store's error when it did not confirm.
    pub(super) async fn finish(&self, run: &ActiveRun, end: AttemptEnd) -> Result<Value, Error> {
        // The end's record takes the place of any state held back.
        run.records_held.store(false, Ordering::Release);
        let status = end.status();
        let error = end_error(&end);
        in_span(&run.span, || {
            let mut live = run.live();
            let now = Timestamp::now();
            live.status = status;
            live.finished_at = Some(now);
            live.error = error.clone();
            if let AttemptEnd::Succeeded(value) = &end {
                live.result = Some(value.clone());
            }
            let duration_ms = live.started_at.map(|started| duration_ms(started, now));
            match &error {
                // Visible at the default level: a failure nobody waits for is otherwise
                // found only in the history.
                Some(error) if status != RunStatus::Cancelled => {
                    tracing::warn!(task = %run.task, %status, ?duration_ms, %error, "run did not succeed");
                }
                _ => tracing::debug!(%status, ?duration_ms, "run finished"),
            }
        });
        lock(&self.active).remove(&run.id);
        // Stopped because its claim was lost: the run is not over, it goes on elsewhere.
        let lost = matches!(end, AttemptEnd::Cancelled) && run.claim_lost();
        if !lost {
            self.publish(run, || RunEventKind::Finished { status, error });
        }
        let interrupted =
            matches!(end, AttemptEnd::Cancelled) && (lost || !self.accepting.load(Ordering::Acquire));
        match (&self.recorder, run.claim) {
            // A durable run the shutdown interrupted keeps its claim's `running` row: once
            // this instance's lease is gone, a live instance queues it again. So does one
            // whose claim was lost: its instance's lease ran out, or the run is already
            // another attempt's.
            (Some(_), Some(_)) if interrupted => {}
            // Queued, not awaited: the claim's fence keeps a late write from landing over
            // another attempt, and a run whose end never reaches the store is queued again
            // once this instance's lease is gone. Its room is free at once.
            (Some(recorder), Some(claim)) => {
                let kept = status != RunStatus::Succeeded || self.keeps_succeeded(&run.task);
                recorder.put_claimed_end(run.snapshot(&self.instance), claim.fence, kept)
            }
            (Some(recorder), None) => {
                if let Err(error) = Box::pin(recorder.put_durable(run.snapshot(&self.instance))).await {
                    // Not acknowledged: a caller must not take a result the store may not hold.
                    run.span.in_scope(|| {
                        tracing::error!(%error, run_id = %run.id, "the run's final record is not confirmed");
                    });
                    return Err(error);
                }
            }
            (None, _) => {}
        }
        match end.into_result(run) {
            Err(Error::Cancelled { task, run_id }) if lost => Err(Error::ClaimLost { task, run_id }),
            // Cancelled by the shutdown, not by anyone's choice: the caller may retry
            // elsewhere (503), rather than read it as a failure of the task (500).
            Err(Error::Cancelled { task, run_id }) if !self.accepting.load(Ordering::Acquire) => {
                Err(Error::Interrupted { task, run_id })
            }
            result => result,
        }
    }
}

fn end_error(end: &AttemptEnd) -> Option<String> {
    match end {
        AttemptEnd::Succeeded(_) => None,
        AttemptEnd::Failed(error) => Some(error.message().to_owned()),
        AttemptEnd::Panicked(message) => Some(format!("panicked: {message}")),
        AttemptEnd::TimedOut(after) => Some(format!("timed out after {}ms", after.as_millis())),
        AttemptEnd::Cancelled => Some("cancelled".to_owned()),
    }
}
