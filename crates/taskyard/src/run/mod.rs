//! The task runtime: starts runs, enforces concurrency, executes attempts, records history
//! and publishes events.
//!
//! Data flows one way: [`Runtime::start`] looks the task up, validates the payload, passes
//! the task's gate (`gate`) and spawns `execute::execute`; the run's state lives in an
//! `active::ActiveRun` while it executes and is written to the store through the batching
//! recorder (`store::recorder`) once its first poll is over, on progress and at the end.
//!
//! The files: `request` (what callers ask for and the handle they get), `gate` (admission
//! for every concurrency mode), `launch` (through the gate to a launched execution,
//! driven on the caller's task when it waits anyway), `active` (a live run and its
//! transitions), `execute` (the attempt loop: timeout, retries, cancellation), `cancel` (a
//! cancellation that is a flag until something waits on it), `context` (what a body sees),
//! `task` and `registry` (a task's definition and the app's tasks by name), `events` (what
//! subscribers hear), `queue` (claiming durable runs), `lost_claims` (stopping them when
//! the claim is lost).

mod active;
mod cancel;
mod cancels;
mod context;
mod enqueue;
mod events;
mod execute;
mod gate;
mod launch;
mod lost_answers;
mod lost_claims;
mod queue;
mod registry;
mod request;
mod retry;
mod stats;
mod stored;
mod task;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use foldhash::fast::RandomState;
use serde_json::Value;
use tokio::sync::broadcast;
use tokio_util::task::TaskTracker;

use self::active::ActiveRun;
pub use self::context::TaskContext;
pub use self::enqueue::Enqueue;
pub use self::events::{RunEvent, RunEventKind};
use self::gate::TaskSlot;
pub use self::registry::{Registry, TaskEntry, TaskInfo, TaskSource};
pub use self::request::{RunHandle, RunRequest};
pub(crate) use self::task::Decoded;
pub use self::task::{Task, TaskBody};
pub use crate::history::{Attempt, Progress, RunId, RunRecord, RunStatus};
use crate::store::{CancelRequest, LeaseClock, Recorder, RunFilter, Store, StoreFailure, StoreHealth};
use crate::sync::lock;
use crate::{AppState, Error, Trigger};

/// A run's execution, not started yet: [`Runtime::start`] spawns it, the calls that await
/// the result poll it first themselves ([`Runtime::wait_for`]). Detached either way: callers
/// wait on the run itself, not on a tokio task.
type Execution = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// The task runtime. Cheap to clone; every clone drives the same runs.
#[derive(Clone)]
pub struct Runtime {
    pub(crate) inner: Arc<RuntimeInner>,
}

pub(crate) struct RuntimeInner {
    /// Hashed with foldhash rather than SipHash: a run looks its task up once and goes in
    /// and out of `active`, and SipHash was a twentieth of a no-op run. The keys are task
    /// names and the runtime's own run ids, not chosen by whoever calls.
    slots: HashMap<Arc<str>, Arc<TaskSlot>, RandomState>,
    registry: Registry,
    pub(crate) state: AppState,
    instance: String,
    store: Option<Arc<dyn Store>>,
    recorder: Option<Recorder>,
    health: Arc<StoreHealth>,
    events: broadcast::Sender<RunEvent>,
    active: Mutex<HashMap<RunId, Arc<ActiveRun>, RandomState>>,
    accepting: AtomicBool,
    tracker: TaskTracker,
    /// Wakes this instance's claimer: a durable run was enqueued here, or room freed.
    queue_wake: tokio::sync::Notify,
    /// How many times runs were queued for the claimer (see `RuntimeInner::wake_queue`).
    queued: std::sync::atomic::AtomicU64,
    /// Stops the claimer, even in the middle of a store call, when the runtime stops.
    queue_stop: tokio_util::sync::CancellationToken,
    /// Until when this instance's claims hold, from its lease keeper (see `lost_claims`).
    lease: Option<LeaseClock>,
    /// How many times the lease ran out before it was renewed.
    lapses: std::sync::atomic::AtomicU64,
}

/// How the runtime is put together; built by [`App`](crate::App).
pub(crate) struct RuntimeParts {
    pub registry: Registry,
    pub state: AppState,
    pub instance: String,
    pub store: Option<Arc<dyn Store>>,
    pub recorder: Option<Recorder>,
    pub health: Arc<StoreHealth>,
    /// Until when the instance's claims hold; `None` without a lease keeper.
    pub lease: Option<LeaseClock>,
}

impl Runtime {
    pub(crate) fn new(parts: RuntimeParts) -> Self {
        let slots = parts
            .registry
            .entries()
            .into_iter()
            .map(|entry| (entry.name.clone(), Arc::new(TaskSlot::new(entry.clone()))))
            .collect();
        let (events, _) = broadcast::channel(1024);
        Runtime {
            inner: Arc::new(RuntimeInner {
                slots,
                registry: parts.registry,
                state: parts.state,
                instance: parts.instance,
                store: parts.store,
                recorder: parts.recorder,
                health: parts.health,
                events,
                active: Mutex::new(HashMap::default()),
                accepting: AtomicBool::new(true),
                tracker: TaskTracker::new(),
                queue_wake: tokio::sync::Notify::new(),
                queued: std::sync::atomic::AtomicU64::new(0),
                queue_stop: tokio_util::sync::CancellationToken::new(),
                lease: parts.lease,
                lapses: std::sync::atomic::AtomicU64::new(0),
            }),
        }
    }

    /// Runs `task` with `payload` and returns its result, like Nitro's `runTask`.
    ///
    /// An unknown name fails with ``Task `x` is not available!``; a payload that does not fit
    /// the task's payload type fails before anything runs, naming the field.
    pub async fn run_task(&self, task: &str, payload: Value) -> Result<Value, Error> {
        let slot = self.slot(task)?;
        if slot.entry.task.durable {
            return Box::pin(self.run_stored(RunRequest::new(task).payload(payload))).await;
        }
        let started = self.start_in_process(slot, payload, Trigger::Manual)?;
        self.wait_for(started).await
    }

    /// Runs a request and returns its result.
    pub async fn run(&self, request: RunRequest) -> Result<Value, Error> {
        let slot = self.slot(&request.task)?;
        if request.durable || slot.entry.task.durable {
            return Box::pin(self.run_stored(request)).await;
        }
        let started = self.start_in_process(slot, request.payload, request.trigger)?;
        self.wait_for(started).await
    }

    /// A durable run of `request`, waited for. Callers box it: its state (a store write,
    /// then following the run) inline would make every in-process run's future several
    /// times larger (measured: `run_task`'s 304 bytes were 1,968).
    async fn run_stored(&self, request: RunRequest) -> Result<Value, Error> {
        self.start(request).await?.outcome().await
    }

    /// The task's slot, or `TaskNotFound`.
    fn slot(&self, task: &str) -> Result<&Arc<TaskSlot>, Error> {
        self.inner
            .slots
            .get(task)
            .ok_or_else(|| Error::TaskNotFound(task.to_owned()))
    }

    /// A durable run of `task` with `payload`: written to the store before the caller is
    /// answered, executed by whichever live instance of the app claims it first, and run
    /// again elsewhere if that instance dies. Set when and how with the returned
    /// [`Enqueue`], then `.await` it for the run's id.
    ///
    /// Fails, storing nothing, for an unknown task, a payload that does not fit, or an app
    /// without a store.
    ///
    /// ```no_run
    /// # async fn demo(runtime: taskyard::Runtime) -> taskyard::Result<()> {
    /// use std::time::Duration;
    /// use serde_json::json;
    ///
    /// let run_id = runtime
    ///     .enqueue("email:send", json!({ "to": "ada@example.com" }))
    ///     .after(Duration::from_secs(600))
    ///     .key("welcome:ada")
    ///     .await?;
    /// # let _ = run_id;
    /// # Ok(())
    /// # }
    /// ```
    pub fn enqueue(&self, task: &str, payload: Value) -> Enqueue {
        Enqueue::new(self.clone(), task, payload)
    }

    /// Starts this instance's claimer of durable runs, its watch for cancels asked for
    /// through other instances and its watch over its claims; they end when the runtime
    /// stops accepting runs. Does nothing without a store.
    pub(crate) fn start_queue(&self) {
        if let Some(store) = &self.inner.store {
            drop(self.inner.tracker.spawn(self.clone().run_queue()));
            drop(self.inner.tracker.spawn(self.clone().watch_cancels()));
            drop(self.inner.tracker.spawn(self.clone().watch_claims()));
            if let Some(notices) = store.notices() {
                drop(self.inner.tracker.spawn(self.clone().follow_notices(notices)));
            }
        }
    }

    /// Starts a run (or joins one in flight, per the task's concurrency mode) without
    /// waiting for it. A durable run (see [`RunRequest::durable`] and
    /// [`Task::durable`]) is in the store when this returns.
    pub async fn start(&self, request: RunRequest) -> Result<RunHandle, Error> {
        let slot = self.slot(&request.task)?;
        if request.durable || slot.entry.task.durable {
            // Boxed, like `run_stored`: the store write's state stays out of this future.
            let enqueue = self
                .enqueue(&request.task, request.payload)
                .trigger(request.trigger);
            return Box::pin(enqueue.handle()).await;
        }
        let (handle, execution) = self.start_in_process(slot, request.payload, request.trigger)?;
        if let Some(execution) = execution {
            self.spawn(&handle, execution);
        }
        Ok(handle)
    }

    /// True when `task` is declared durable: every run of it goes through the store. An
    /// unknown task is not.
    pub(crate) fn is_durable(&self, task: &str) -> bool {
        self.slot(task).is_ok_and(|slot| slot.entry.task.durable)
    }

    /// Claims `claim`'s tick and writes `request`'s durable run with it, in one
    /// transaction: the run's handle when the claim landed, `None` when the tick was
    /// claimed before (nothing written).
    pub(crate) async fn start_with_tick(
        &self,
        request: RunRequest,
        claim: &crate::store::TickClaim,
    ) -> Result<Option<RunHandle>, Error> {
        self.enqueue(&request.task, request.payload)
            .trigger(request.trigger)
            .submit_with_tick(claim)
            .await
    }

    /// Starts a run like [`Runtime::start`], except that the run's first poll happens
    /// here, on the caller's task, and the run gets a task of its own only if it did not
    /// end there: for the scheduler's ticks due together, whose runs then start at the
    /// pace of the loop that takes them rather than of as many spawns.
    pub(crate) async fn start_here(&self, request: RunRequest) -> Result<RunHandle, Error> {
        let slot = self.slot(&request.task)?;
        if request.durable || slot.entry.task.durable {
            return Box::pin(self.start(request)).await;
        }
        let (handle, execution) = self.start_in_process(slot, request.payload, request.trigger)?;
        if let Some(execution) = execution {
            self.begin(&handle, execution);
        }
        Ok(handle)
    }

    /// Waits for a run just started, driving it on the caller's task (see
    /// [`Runtime::drive`]): a run costs no spawn, whether it ends at once or waits.
    async fn wait_for(&self, (handle, execution): (RunHandle, Option<Execution>)) -> Result<Value, Error> {
        if let Some(execution) = execution {
            self.drive(&handle, execution).await;
        }
        handle.outcome().await
    }

    /// Cancels a run by id, wherever it is. Returns `true` if it was queued or running and
    /// is now cancelled (a run executing here at once; a queued durable run at once, in the
    /// store; a run on another instance within a second, when that instance sees the
    /// request), `false` if it had already ended; an unknown id is `RunNotFound`.
    pub async fn cancel(&self, run_id: RunId) -> Result<bool, Error> {
        let active = lock(&self.inner.active).get(&run_id).cloned();
        if let Some(run) = active {
            run.cancel.cancel();
            return Ok(true);
        }
        let Some(store) = &self.inner.store else {
            return Err(Error::RunNotFound(run_id.to_string()));
        };
        // A run that just ended here may still be in the recorder's queue.
        self.flush_records().await?;
        match self
            .bounded(store.request_cancel(run_id, jiff::Timestamp::now()))
            .await?
        {
            Some(CancelRequest::Cancelled(_) | CancelRequest::Requested(_)) => Ok(true),
            Some(CancelRequest::Finished(_)) => Ok(false),
            None => Err(Error::RunNotFound(run_id.to_string())),
        }
    }

    /// One run: live state if it is executing here, otherwise from the store.
    pub async fn get_run(&self, run_id: RunId) -> Result<Option<RunRecord>, Error> {
        let active = lock(&self.inner.active).get(&run_id).cloned();
        if let Some(run) = active {
            return Ok(Some(run.snapshot(&self.inner.instance)));
        }
        match &self.inner.store {
            Some(store) => {
                // A run that just left the active set may still be in the recorder's
                // queue: read-your-writes, or a reader would see it unfinished.
                self.flush_records().await?;
                self.bounded(store.get_run(run_id)).await
            }
            None => Ok(None),
        }
    }

    /// Waits until every record queued so far is in the store, for at most the store
    /// timeout: what a run started without waiting needs before it is acknowledged.
    pub async fn flush_records(&self) -> Result<(), Error> {
        match &self.inner.recorder {
            Some(recorder) => recorder.flush().await,
            None => Ok(()),
        }
    }

    /// `None` while the store takes writes (or there is none); otherwise since when and
    /// why it fails.
    pub fn store_failure(&self) -> Option<StoreFailure> {
        self.inner.health.failure()
    }

    /// Recorded runs, newest first. Without a store, only runs executing now are listed.
    pub async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, Error> {
        if let Some(store) = &self.inner.store {
            // Runs still in the recorder's queue are not lost, only not visible yet: make
            // listing read-your-writes.
            self.flush_records().await?;
            return self.bounded(store.list_runs(filter)).await;
        }
        let active: Vec<_> = lock(&self.inner.active).values().cloned().collect();
        let mut runs: Vec<RunRecord> = active
            .iter()
            .map(|run| run.snapshot(&self.inner.instance))
            .filter(|run| filter.matches(run))
            .collect();
        runs.sort_by_key(|run| std::cmp::Reverse(run.id));
        runs.truncate(filter.limit);
        Ok(runs)
    }

    /// A store read, cut off after the store timeout: a locked table or an unreachable
    /// server answers the caller with 503 rather than never.
    async fn bounded<T>(&self, read: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
        let Some(recorder) = &self.inner.recorder else {
            return read.await;
        };
        tokio::time::timeout(recorder.timeout(), read)
            .await
            .unwrap_or_else(|_| Err(recorder.unavailable("a read", recorder.timeout())))
    }

    /// Live run events. Subscribers that fall behind skip events rather than slow runs.
    pub fn subscribe(&self) -> broadcast::Receiver<RunEvent> {
        self.inner.events.subscribe()
    }

    /// The JSON schema of a task's payload; `None` for an unknown task or one without a
    /// payload.
    pub fn payload_schema(&self, task: &str) -> Option<&Value> {
        self.inner.slots.get(task)?.entry.task.payload_schema()
    }

    /// True when a task of this name is registered.
    pub fn has_task(&self, name: &str) -> bool {
        self.inner.slots.contains_key(name)
    }

    /// The app's tasks.
    pub fn tasks(&self) -> Vec<&Arc<TaskEntry>> {
        self.inner.registry.entries()
    }

    /// Every shared value added with `App::state`.
    pub fn state(&self) -> &AppState {
        &self.inner.state
    }

    /// This process's instance id, recorded with each of its runs.
    pub fn instance(&self) -> &str {
        &self.inner.instance
    }

    /// The history store, unless history is disabled.
    pub fn store(&self) -> Option<&Arc<dyn Store>> {
        self.inner.store.as_ref()
    }

    /// Number of runs queued or running in this instance.
    pub fn active_runs(&self) -> usize {
        lock(&self.inner.active).len()
    }

    /// Stops taking new runs, lets running ones finish for up to `grace`, then cancels the
    /// rest (recorded `cancelled`) and waits until every record is written.
    pub async fn shutdown(&self, grace: Duration) {
        let inner = &self.inner;
        inner.accepting.store(false, Ordering::Release);
        inner.queue_stop.cancel();
        inner.tracker.close();
        if tokio::time::timeout(grace, inner.tracker.wait()).await.is_err() {
            let pending: Vec<_> = lock(&inner.active).values().cloned().collect();
            tracing::warn!(
                runs = pending.len(),
                grace_ms = grace.as_millis() as u64,
                "shutdown deadline reached: cancelling runs still going"
            );
            for run in pending {
                run.cancel.cancel();
            }
            inner.tracker.wait().await;
        }
        if let Some(recorder) = &inner.recorder {
            if let Err(error) = recorder.flush_within(grace).await {
                tracing::error!(%error, "run records are still unwritten at shutdown");
            }
            recorder.close();
        }
    }
}

impl RuntimeInner {
    /// Whether `task`'s succeeded durable runs are kept (`Task::keep_succeeded`); an
    /// unknown task's are.
    pub(super) fn keeps_succeeded(&self, task: &str) -> bool {
        self.slots
            .get(task)
            .is_none_or(|slot| slot.entry.task.keep_succeeded)
    }

    /// The slot of `task` and the store its durable runs go to, or why there are none.
    fn queue_target(&self, task: &str) -> Result<(&Arc<TaskSlot>, &Arc<dyn Store>), Error> {
        if !self.accepting.load(Ordering::Acquire) {
            return Err(Error::ShuttingDown);
        }
        let slot = self
            .slots
            .get(task)
            .ok_or_else(|| Error::TaskNotFound(task.to_owned()))?;
        let store = self.store.as_ref().ok_or_else(|| Error::Setting {
            setting: "store",
            message: "durable runs are kept in the store, and this app's history is disabled; use SQLite (the default) or PostgreSQL".to_owned(),
        })?;
        Ok((slot, store))
    }
}
