//! The scheduler: one timer task over a heap of due times, and one short-lived dispatch
//! future per tick that claims the tick and starts the run.
//!
//! - **Timer.** A binary heap keyed by due time holds every schedule's next tick. The timer
//!   task sleeps until the earliest one (no polling tick), capped at a minute so a wall
//!   clock that jumps (suspend, NTP) is noticed, and wakes early when schedules change.
//!   Ticks are taken off the heap slightly ahead of time (`LEAD`) and each dispatch waits
//!   for its exact instant on tokio's timer wheel, so thousands of ticks due in the same
//!   second start together instead of one after another.
//! - **Exactly once.** A tick runs only after its claim in the store's ledger, unique on
//!   (schedule, tick, target) with `target` empty for `worker` ticks and the instance id
//!   for `all` ticks. `worker` ticks are spread over the live instances by a hash of
//!   (schedule, tick); the others wait a grace period before trying, so a dead instance's
//!   ticks still run.
//! - **Changes.** Adding, removing, pausing, resuming, disabling and enabling bump a
//!   schedule's generation; heap entries of an older generation are dropped when they come
//!   up.
//! - **Overlap across instances.** `skip` looks at this instance's previous run and, when
//!   other processes share the store, at the schedule's unfinished runs there. `queue`
//!   sends every tick of a `worker` schedule to the same instance, whose fair mutex keeps
//!   them in order, and also waits for earlier ticks still running elsewhere (after the
//!   instance it was meant for changed).
//! - **Custom strategies** run one future per active schedule of their type (see
//!   `strategy`); `send_all` reaches the other instances through the store's broadcasts,
//!   which each instance polls.
//!
//! This file holds the [`Scheduler`] API and its entries; `timer` the heap, arming and
//! catch-up; `tick` one tick from claim through overlap to its run; `claim` the ledger
//! claims, membership and the spread of `worker` ticks; `sends` custom strategies' sends and
//! broadcasts; `info` what a listing shows of a schedule.

mod claim;
mod durable;
mod fire;
mod info;
mod pauses;
mod sends;
mod tick;
mod timer;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use self::fire::{Fired, TickAt};
pub use self::info::ScheduleInfo;
use self::timer::Due;
use super::check::Checker;
use super::checked::{Kind, ScheduleDef};
use super::cron::CronExpr;
use super::definition::{CatchUp, Overlap, Schedule};
use super::log::ScheduleLog;
use super::strategy::{StrategyFn, StrategySender};
use crate::store::{Batched, Store, TickClaim};
use crate::sync::lock;
use crate::{Error, RunHandle, RunRecord, Runtime};

/// How far ahead of their instant ticks leave the heap.
const LEAD: Duration = Duration::from_millis(25);
/// The longest the timer sleeps without looking at the wall clock again.
const MAX_SLEEP: Duration = Duration::from_secs(60);
/// How often instances look for other instances' `send_all` broadcasts.
const BROADCAST_POLL: Duration = Duration::from_millis(200);
/// How far back each poll reads (covers slow polls and clocks a little apart).
const BROADCAST_WINDOW: SignedDuration = SignedDuration::from_secs(60);
/// How often a `queue` tick looks again for another instance's unfinished run.
const QUEUE_POLL: Duration = Duration::from_millis(100);

/// Scheduler settings.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// How long instances other than the one a `worker` tick is meant for wait before
    /// claiming it themselves.
    pub worker_grace: Duration,
    /// How often the list of live instances is read from the store.
    pub membership_refresh: Duration,
    pub default_zone: jiff::tz::TimeZone,
    /// Custom strategies by name.
    pub strategies: Vec<(String, StrategyFn)>,
}

impl Settings {
    /// What checks schedules against these settings and the app's tasks.
    pub fn checker<'a>(&'a self, task_exists: &'a dyn Fn(&str) -> bool) -> Checker<'a> {
        Checker {
            task_exists,
            strategies: self.strategies.iter().map(|(name, _)| name.clone()).collect(),
            default_zone: &self.default_zone,
        }
    }

    fn strategy(&self, name: &str) -> Option<&StrategyFn> {
        self.strategies
            .iter()
            .find_map(|(known, strategy)| (known == name).then_some(strategy))
    }
}

/// The scheduler. Cheap to clone.
#[derive(Clone)]
pub struct Scheduler {
    inner: Arc<Inner>,
}

struct Inner {
    runtime: Runtime,
    store: Option<Arc<dyn Store>>,
    /// Claims ticks in the store's ledger, those asked for together in one write.
    claims: Option<Batched<TickClaim, bool>>,
    /// Reads the unfinished runs of schedules in the cluster, for ticks' overlap policies
    /// (only when other processes share the store), those asked for together in one read.
    unfinished: Option<Batched<String, Vec<RunRecord>>>,
    /// True when other processes may share the store (SQLite file, PostgreSQL).
    shared: bool,
    instance: String,
    settings: Settings,
    entries: Mutex<std::collections::HashSet<Keyed>>,
    timers: Mutex<BinaryHeap<Reverse<Due>>>,
    wake: Notify,
    members: Mutex<Arc<Vec<String>>>,
    crons: Mutex<HashMap<String, Arc<CronExpr>>>,
    /// One shared copy of each task name schedules run.
    task_names: Mutex<std::collections::HashSet<Arc<str>>>,
    log: ScheduleLog,
    stop: CancellationToken,
    dispatches: TaskTracker,
    /// Ticks from their claim to their run's start, seen through at shutdown (never dropped).
    claiming: TaskTracker,
    /// How many ticks are claimed again after a failed claim (`Scheduler::again`).
    claiming_again: std::sync::atomic::AtomicUsize,
}

struct Entry {
    def: ScheduleDef,
    state: Mutex<EntryState>,
    /// Cancelled when the schedule is removed or the scheduler stops; only schedules
    /// with a strategy or a `disable` signal have something to stop.
    closed: Option<CancellationToken>,
    /// Held by a `queue` tick while it waits for and runs its turn; tokio's mutex is fair,
    /// so queued ticks run in order. Only `queue` schedules have one. Shared, so that a
    /// fired tick's turn can be held by the task that follows its run.
    queue: Option<Arc<tokio::sync::Mutex<()>>>,
    /// Its runs are durable (the schedule's or its task's): any instance may run them.
    runs_anywhere: bool,
}

#[derive(Default)]
struct EntryState {
    paused: bool,
    disabled: bool,
    /// Past its `end`: logged once.
    ended: bool,
    /// A `skip` tick here is between its overlap check and its run's start.
    starting: bool,
    /// The running custom strategy, cancelled to stop it.
    strategy: Option<CancellationToken>,
    /// Bumped (wrapping) by every change that makes the heap slot stale; only compared
    /// for equality.
    generation: u32,
    last_run: Option<RunHandle>,
    /// In Unix milliseconds, as the store keeps it (8 bytes smaller than a `Timestamp`).
    last_tick: Option<i64>,
}

/// An entry in the set of schedules, found by its name. A set of `Arc<Entry>` costs 8
/// bytes a slot where a map from name to entry costs 24.
#[derive(Clone)]
struct Keyed(Arc<Entry>);

impl std::borrow::Borrow<str> for Keyed {
    fn borrow(&self) -> &str {
        &self.0.def.name
    }
}

impl std::hash::Hash for Keyed {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.def.name.hash(state);
    }
}

impl PartialEq for Keyed {
    fn eq(&self, other: &Self) -> bool {
        self.0.def.name == other.0.def.name
    }
}

impl Eq for Keyed {}

/// What started a dispatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Timer,
    Immediate,
    CatchUp,
    SendOne,
    SendAll,
    /// Another instance's `send_all`.
    Broadcast,
    /// A platform's scheduler, through [`Scheduler::fire`].
    Platform,
}

impl Scheduler {
    pub(crate) fn new(
        runtime: Runtime,
        store: Option<Arc<dyn Store>>,
        settings: Settings,
        log: ScheduleLog,
    ) -> Self {
        let shared = store
            .as_ref()
            .is_some_and(|store| matches!(store.backend(), "sqlite" | "postgres"));
        let instance = runtime.instance().to_owned();
        Scheduler {
            inner: Arc::new(Inner {
                members: Mutex::new(Arc::new(vec![instance.clone()])),
                runtime,
                claims: store.clone().map(claim::batched_claims),
                unfinished: store.clone().filter(|_| shared).map(claim::batched_unfinished),
                store,
                shared,
                instance,
                settings,
                entries: Mutex::new(std::collections::HashSet::new()),
                timers: Mutex::new(BinaryHeap::new()),
                wake: Notify::new(),
                crons: Mutex::new(HashMap::new()),
                task_names: Mutex::new(std::collections::HashSet::new()),
                log,
                stop: CancellationToken::new(),
                dispatches: TaskTracker::new(),
                claiming: TaskTracker::new(),
                claiming_again: std::sync::atomic::AtomicUsize::new(0),
            }),
        }
    }

    /// Checks a schedule against this app (its tasks, strategies and zone).
    pub(crate) fn check(&self, name: &str, schedule: &Schedule) -> Result<ScheduleDef, Error> {
        let runtime = &self.inner.runtime;
        let task_exists = |task: &str| runtime.has_task(task);
        let checker = self.inner.settings.checker(&task_exists);
        let mut crons = lock(&self.inner.crons);
        checker.check(name, schedule, &mut crons)
    }

    /// Registers checked schedules, runs catch-up and `immediate` ticks, and starts the
    /// timer and the membership refresh.
    pub(crate) async fn start(&self, defs: Vec<ScheduleDef>) -> Result<(), Error> {
        let now = Timestamp::now();
        self.refresh_members().await;
        let paused = self.stored_pauses().await?;
        for def in defs {
            let is_paused = paused.contains(def.name.as_ref());
            let last = match &self.inner.store {
                Some(store) if !def.disable && def.catch_up != CatchUp::Skip => {
                    store.last_tick(&def.name).await?
                }
                _ => None,
            };
            let entry = self.insert(def, now, true)?;
            if is_paused {
                // Paused through some instance, before or during this one's downtime: it
                // catches up when it is resumed.
                self.pause_here(&entry, None);
            } else if let Some(last) = last {
                self.catch_up(entry, last, now);
            }
        }
        self.inner.wake.notify_one();
        let timer = self.clone();
        tokio::spawn(async move { timer.run_timer().await });
        if self.inner.shared {
            let refresher = self.clone();
            tokio::spawn(async move { refresher.run_membership().await });
            let pauses = self.clone();
            tokio::spawn(async move { pauses.follow_pauses().await });
            if !self.inner.settings.strategies.is_empty() {
                // Taken here, not in the poller: a broadcast sent right after `start`
                // returns must count as sent after this instance started.
                let started = Timestamp::now();
                let poller = self.clone();
                tokio::spawn(async move { poller.run_broadcasts(started).await });
            }
        }
        Ok(())
    }

    /// Knows `defs` without arming their timers: they fire only through
    /// [`Scheduler::fire`] (a one-off command that a platform's scheduler runs).
    pub(crate) fn load(&self, defs: Vec<ScheduleDef>) -> Result<(), Error> {
        let now = Timestamp::now();
        for def in defs {
            self.insert(def, now, false)?;
        }
        Ok(())
    }

    /// Adds a schedule while the app runs; its timer starts at once. A schedule added
    /// this way must name a task (`.task(..)`).
    pub fn add(&self, name: &str, schedule: Schedule) -> Result<(), Error> {
        if matches!(schedule.job, Some(super::definition::Job::Body(_))) {
            return Err(Error::InvalidSchedule {
                schedule: name.to_owned(),
                message: "a schedule added at runtime must name a task with `.task(..)`; bodies are \
                          registered when the app starts"
                    .to_owned(),
            });
        }
        let def = self.check(name, &schedule)?;
        self.insert(def, Timestamp::now(), true)?;
        self.inner.wake.notify_one();
        Ok(())
    }

    /// Removes a schedule; its timer stops. Runs already started go on.
    pub fn remove(&self, name: &str) -> Result<(), Error> {
        let Keyed(entry) = lock(&self.inner.entries)
            .take(name)
            .ok_or_else(|| Error::ScheduleNotFound(name.to_owned()))?;
        Self::deactivate(&mut lock(&entry.state));
        if let Some(closed) = &entry.closed {
            closed.cancel();
        }
        self.inner.log.line("removed", &[("schedule", &name)]);
        Ok(())
    }

    /// Runs a schedule's job once, here and now, ignoring its type, `disable` and pause
    /// state, and returns the result (egg's `app.runSchedule`). For tests and tools.
    pub async fn run_schedule(&self, name: &str) -> Result<Value, Error> {
        let entry = self.entry(name)?;
        self.inner.runtime.run(entry.def.request(Timestamp::now())).await
    }

    /// Starts a schedule's job once, here and now, as [`Scheduler::run_schedule`] does,
    /// and returns its handle at once instead of waiting for the result (the dashboard's
    /// Run now).
    pub async fn start_schedule(&self, name: &str) -> Result<crate::RunHandle, Error> {
        let entry = self.entry(name)?;
        self.inner
            .runtime
            .start(entry.def.request(Timestamp::now()))
            .await
    }

    /// [`Scheduler::run_schedule`] with `args` as the run's payload in place of the
    /// schedule's own, as egg-schedule's `app.runSchedule(name, ...args)` passes arguments
    /// to the job (several as an array).
    pub async fn run_schedule_with(&self, name: &str, args: Value) -> Result<Value, Error> {
        let entry = self.entry(name)?;
        self.inner
            .runtime
            .run(entry.def.request(Timestamp::now()).payload(args))
            .await
    }

    /// Every schedule, sorted by name.
    pub fn list(&self) -> Vec<ScheduleInfo> {
        let entries: Vec<Arc<Entry>> = lock(&self.inner.entries)
            .iter()
            .map(|Keyed(entry)| entry.clone())
            .collect();
        let mut infos: Vec<ScheduleInfo> = entries.iter().map(|entry| entry.info()).collect();
        infos.sort_by(|a, b| a.name.cmp(&b.name));
        infos
    }

    /// One schedule.
    pub fn get(&self, name: &str) -> Result<ScheduleInfo, Error> {
        Ok(self.entry(name)?.info())
    }

    /// Stops every timer; ticks not yet started are dropped. Runs already started go on
    /// until the runtime's shutdown ends them.
    pub fn stop(&self) {
        self.inner.stop.cancel();
        self.inner.dispatches.close();
    }

    /// Waits until every tick whose claim was asked for has started its run or been given
    /// up (call after [`stop`](Self::stop), before the runtime stops taking runs).
    pub(crate) async fn settle(&self) {
        self.inner.claiming.close();
        self.inner.claiming.wait().await;
    }

    /// Waits until every started tick has logged its end (call after [`stop`](Self::stop)
    /// and the runtime's shutdown), then closes the schedule log.
    pub async fn wait(&self) {
        self.inner.dispatches.wait().await;
        self.inner.log.close();
    }

    fn entry(&self, name: &str) -> Result<Arc<Entry>, Error> {
        lock(&self.inner.entries)
            .get(name)
            .map(|Keyed(entry)| entry.clone())
            .ok_or_else(|| Error::ScheduleNotFound(name.to_owned()))
    }

    /// Registers a schedule; with `arm`, its timer (and strategy) starts.
    fn insert(&self, mut def: ScheduleDef, now: Timestamp, arm: bool) -> Result<Arc<Entry>, Error> {
        let name = def.name.to_string();
        {
            let mut tasks = lock(&self.inner.task_names);
            match tasks.get(&def.task) {
                Some(shared) => def.task = shared.clone(),
                None => {
                    tasks.insert(def.task.clone());
                }
            }
        }
        let entry = Arc::new(Entry {
            state: Mutex::new(EntryState {
                disabled: def.disable,
                ..EntryState::default()
            }),
            closed: (def.disable_signal.is_some() || matches!(def.kind, Kind::Custom(_)))
                .then(|| self.inner.stop.child_token()),
            queue: (def.overlap == Overlap::Queue).then(|| Arc::new(tokio::sync::Mutex::new(()))),
            runs_anywhere: def.durable || self.inner.runtime.is_durable(&def.task),
            def,
        });
        {
            let mut entries = lock(&self.inner.entries);
            if entries.contains(name.as_str()) {
                return Err(Error::InvalidSchedule {
                    schedule: name.to_string(),
                    message: "a schedule of this name is already registered; names must be unique".to_owned(),
                });
            }
            entries.insert(Keyed(entry.clone()));
        }
        if let Some(signal) = &entry.def.disable_signal {
            let this = self.clone();
            let watched = entry.clone();
            let changes = signal.subscribe();
            tokio::spawn(async move { this.follow_disable(watched, changes).await });
        }
        if entry.def.disable {
            self.inner.log.line("disabled", &[("schedule", &name)]);
            return Ok(entry);
        }
        if !arm {
            return Ok(entry);
        }
        if entry.def.immediate {
            self.dispatch(entry.clone(), now, Origin::Immediate);
        }
        self.activate(&entry, &mut lock(&entry.state), now);
        Ok(entry)
    }

    /// Starts the schedule's timer and, for a custom type, its strategy.
    fn activate(&self, entry: &Arc<Entry>, state: &mut EntryState, now: Timestamp) {
        self.arm(entry, state, now);
        let Kind::Custom(name) = &entry.def.kind else {
            return;
        };
        let Some(strategy) = self.inner.settings.strategy(name) else {
            return;
        };
        let Some(closed) = entry.closed.as_ref().map(CancellationToken::child_token) else {
            return;
        };
        state.strategy = Some(closed.clone());
        let running = strategy.start(StrategySender {
            scheduler: self.clone(),
            schedule: Arc::from(&*entry.def.name),
            strategy: name.clone(),
            options: entry.def.options.clone(),
            closed: closed.clone(),
        });
        self.inner.dispatches.spawn(async move {
            tokio::select! {
                _ = closed.cancelled() => {}
                _ = running => {}
            }
        });
    }

    /// Stops the schedule's timer and strategy.
    fn deactivate(state: &mut EntryState) {
        // Bumping the generation makes its heap entry stale.
        state.generation = state.generation.wrapping_add(1);
        if let Some(strategy) = state.strategy.take() {
            strategy.cancel();
        }
    }

    /// Follows a `disable` signal: stops the schedule while it is `true`, starts it again
    /// (from the next tick after now) when it turns `false`.
    async fn follow_disable(self, entry: Arc<Entry>, mut changes: tokio::sync::watch::Receiver<bool>) {
        let Some(closed) = entry.closed.clone() else {
            return;
        };
        loop {
            tokio::select! {
                changed = changes.changed() => if changed.is_err() { return },
                _ = closed.cancelled() => return,
            }
            let disable = *changes.borrow_and_update();
            let mut state = lock(&entry.state);
            if disable == state.disabled {
                continue;
            }
            state.disabled = disable;
            if disable {
                Self::deactivate(&mut state);
            } else if !state.paused {
                state.generation = state.generation.wrapping_add(1);
                self.activate(&entry, &mut state, Timestamp::now());
            }
            drop(state);
            let event = if disable { "disabled" } else { "enabled" };
            self.inner.log.line(event, &[("schedule", &entry.def.name)]);
            self.inner.wake.notify_one();
        }
    }
}

impl Origin {
    fn as_str(self) -> &'static str {
        match self {
            Origin::Timer => "timer",
            Origin::Immediate => "immediate",
            Origin::CatchUp => "catch_up",
            Origin::SendOne => "send_one",
            Origin::SendAll => "send_all",
            Origin::Broadcast => "broadcast",
            Origin::Platform => "platform",
        }
    }
}

fn inactive(schedule: &str, state: &'static str) -> Error {
    Error::ScheduleInactive {
        schedule: schedule.to_owned(),
        state,
    }
}
