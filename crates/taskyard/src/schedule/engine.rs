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

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::cron::CronExpr;
use super::definition::{CatchUp, Context, Kind, Overlap, Schedule, ScheduleDef, Timing};
use super::log::ScheduleLog;
use super::strategy::{StrategyFn, StrategySender};
use crate::store::{Broadcast, RunFilter, Store, TickClaim};
use crate::sync::lock;
use crate::{Error, RunHandle, RunRecord, Runtime, Trigger};

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
    pub fn strategy_names(&self) -> Vec<String> {
        self.strategies.iter().map(|(name, _)| name.clone()).collect()
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
}

struct Entry {
    def: ScheduleDef,
    state: Mutex<EntryState>,
    /// Cancelled when the schedule is removed or the scheduler stops; only schedules
    /// with a strategy or a `disable` signal have something to stop.
    closed: Option<CancellationToken>,
    /// Held by a `queue` tick while it waits for and runs its turn; tokio's mutex is fair,
    /// so queued ticks run in order. Only `queue` schedules have one.
    queue: Option<Box<tokio::sync::Mutex<()>>>,
}

#[derive(Default)]
struct EntryState {
    paused: bool,
    disabled: bool,
    /// The running custom strategy, cancelled to stop it.
    strategy: Option<CancellationToken>,
    /// Bumped (wrapping) by every change that makes the heap slot stale; only compared
    /// for equality.
    generation: u32,
    last_run: Option<RunHandle>,
    /// In Unix milliseconds, as the store keeps it (8 bytes smaller than a `Timestamp`).
    last_tick: Option<i64>,
}

/// A schedule's next tick on the heap, ordered by due time. It holds the entry itself (a
/// removed schedule's entry lives until its stale tick comes up), so firing needs no
/// lookup by name.
struct Due {
    /// Unix milliseconds: ticks have millisecond precision at most, and a heap slot of a
    /// million is 8 bytes smaller than with a `Timestamp`.
    at: i64,
    generation: u32,
    entry: Arc<Entry>,
}

impl Due {
    fn at(&self) -> Timestamp {
        from_millis(self.at)
    }
}

/// Rounded up, so a tick never fires early, and re-arming after it (with `after` at or
/// past the real tick) cannot find the same tick again.
fn ceil_millis(at: Timestamp) -> i64 {
    let ms = at.as_millisecond();
    if from_millis(ms) < at { ms + 1 } else { ms }
}

fn from_millis(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(Timestamp::MAX)
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}

impl Eq for Due {}

impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Due {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.generation).cmp(&(other.at, other.generation))
    }
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
}

/// A schedule as listed by [`Scheduler::list`].
#[derive(Debug, Clone, Serialize)]
pub struct ScheduleInfo {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub task: String,
    pub cron: Option<String>,
    pub tz: Option<String>,
    pub interval_ms: Option<u64>,
    pub immediate: bool,
    pub disabled: bool,
    pub paused: bool,
    pub overlap: Overlap,
    pub catch_up: CatchUp,
    /// The next tick this instance's timer will fire, if any.
    pub next: Option<Timestamp>,
    pub last_tick: Option<Timestamp>,
    /// Options beyond the built-in ones (for custom strategies).
    pub options: Value,
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
            }),
        }
    }

    /// Checks a schedule against this app (its tasks, strategies and zone).
    pub(crate) fn check(&self, name: &str, schedule: &Schedule) -> Result<ScheduleDef, Error> {
        let runtime = &self.inner.runtime;
        let task_exists = |task: &str| runtime.has_task(task);
        let strategies = self.inner.settings.strategy_names();
        let mut crons = lock(&self.inner.crons);
        let mut cx = Context {
            task_exists: &task_exists,
            strategies: &strategies,
            default_zone: &self.inner.settings.default_zone,
            now: Timestamp::now(),
            crons: &mut crons,
        };
        schedule.check(name, &mut cx)
    }

    /// Registers checked schedules, runs catch-up and `immediate` ticks, and starts the
    /// timer and the membership refresh.
    pub(crate) async fn start(&self, defs: Vec<ScheduleDef>) -> Result<(), Error> {
        let now = Timestamp::now();
        self.refresh_members().await;
        for def in defs {
            let last = match &self.inner.store {
                Some(store) if !def.disable && def.catch_up != CatchUp::Skip => {
                    store.last_tick(&def.name).await?
                }
                _ => None,
            };
            let entry = self.insert(def, now)?;
            if let Some(last) = last {
                self.catch_up(entry, last, now);
            }
        }
        self.inner.wake.notify_one();
        let timer = self.clone();
        tokio::spawn(async move { timer.run_timer().await });
        if self.inner.shared {
            let refresher = self.clone();
            tokio::spawn(async move { refresher.run_membership().await });
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
        self.insert(def, Timestamp::now())?;
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

    /// Stops a schedule's timer until [`resume`](Self::resume).
    pub fn pause(&self, name: &str) -> Result<(), Error> {
        let entry = self.entry(name)?;
        let mut state = lock(&entry.state);
        if !state.paused {
            state.paused = true;
            state.generation = state.generation.wrapping_add(1);
            self.inner.log.line("paused", &[("schedule", &name)]);
        }
        Ok(())
    }

    /// Restarts a paused schedule's timer from now (ticks missed while paused are not run).
    pub fn resume(&self, name: &str) -> Result<(), Error> {
        let entry = self.entry(name)?;
        {
            let mut state = lock(&entry.state);
            if !state.paused {
                return Ok(());
            }
            state.paused = false;
            state.generation = state.generation.wrapping_add(1);
            if !state.disabled {
                self.arm(&entry, &mut state, Timestamp::now());
            }
        }
        self.inner.log.line("resumed", &[("schedule", &name)]);
        self.inner.wake.notify_one();
        Ok(())
    }

    /// Runs a schedule's job once, here and now, ignoring its type, `disable` and pause
    /// state, and returns the result (egg's `app.runSchedule`). For tests and tools.
    pub async fn run_schedule(&self, name: &str) -> Result<Value, Error> {
        let entry = self.entry(name)?;
        self.inner.runtime.run(entry.def.request(Timestamp::now())).await
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

    fn insert(&self, mut def: ScheduleDef, now: Timestamp) -> Result<Arc<Entry>, Error> {
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
            queue: (def.overlap == Overlap::Queue).then(|| Box::new(tokio::sync::Mutex::new(()))),
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

    /// A strategy's `send_one`.
    pub(crate) fn send_one(&self, sender: &StrategySender, args: Value) -> Result<RunHandle, Error> {
        let entry = self.sender_entry(sender)?;
        self.start_custom(&entry, args, Origin::SendOne)
    }

    /// A strategy's `send_all`: the broadcast is written first, so the other instances run
    /// their share even if this one's fails.
    pub(crate) async fn send_all(&self, sender: &StrategySender, args: Value) -> Result<RunHandle, Error> {
        let entry = self.sender_entry(sender)?;
        let inner = &self.inner;
        if let Some(store) = inner.store.as_ref().filter(|_| inner.shared) {
            store
                .broadcast(&Broadcast {
                    id: uuid::Uuid::now_v7().to_string(),
                    schedule: entry.def.name.to_string(),
                    args: args.clone(),
                    origin: inner.instance.clone(),
                    sent_at: Timestamp::now(),
                })
                .await?;
        }
        self.start_custom(&entry, args, Origin::SendAll)
    }

    fn sender_entry(&self, sender: &StrategySender) -> Result<Arc<Entry>, Error> {
        let inactive = |state| inactive(&sender.schedule, state);
        if self.inner.stop.is_cancelled() {
            return Err(inactive("stopped"));
        }
        if sender.closed.is_cancelled() {
            return Err(inactive("disabled or removed"));
        }
        self.entry(&sender.schedule).map_err(|_| inactive("removed"))
    }

    /// Starts a run for a strategy's send (or another instance's broadcast).
    fn start_custom(&self, entry: &Arc<Entry>, args: Value, origin: Origin) -> Result<RunHandle, Error> {
        let def = &entry.def;
        {
            let state = lock(&entry.state);
            if state.disabled {
                return Err(inactive(&def.name, "disabled"));
            }
            if state.paused {
                return Err(inactive(&def.name, "paused"));
            }
        }
        let handle = self.start_run(
            entry,
            def.request_by(Trigger::Custom {
                strategy: def.kind.as_str().to_owned(),
                schedule: def.name.to_string(),
                args,
            }),
        )?;
        self.inner.log.line(
            "trigger",
            &[
                ("schedule", &def.name),
                ("origin", &origin.as_str()),
                ("instance", &self.inner.instance),
            ],
        );
        let this = self.clone();
        let entry = entry.clone();
        let followed = handle.clone();
        self.inner
            .dispatches
            .spawn(async move { this.follow_run(&entry.def, followed).await });
        Ok(handle)
    }

    /// Runs other instances' `send_all` broadcasts here, each once.
    async fn run_broadcasts(self, started: Timestamp) {
        let inner = &self.inner;
        let Some(store) = inner.store.clone() else {
            return;
        };
        // Broadcasts sent before this instance started are not its to run. The store keeps
        // whole milliseconds, so the start is rounded down to match.
        let started = Timestamp::from_millisecond(started.as_millisecond()).unwrap_or(started);
        let mut seen: HashMap<String, Timestamp> = HashMap::new();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(BROADCAST_POLL) => {}
                _ = inner.stop.cancelled() => return,
            }
            let since = started.max(Timestamp::now() - BROADCAST_WINDOW);
            let broadcasts = match store.broadcasts_since(since).await {
                Ok(broadcasts) => broadcasts,
                Err(error) => {
                    tracing::warn!(%error, "cannot read strategy broadcasts; trying again");
                    continue;
                }
            };
            for broadcast in broadcasts {
                if broadcast.origin == inner.instance || seen.contains_key(&broadcast.id) {
                    continue;
                }
                seen.insert(broadcast.id.clone(), broadcast.sent_at);
                let started = self
                    .entry(&broadcast.schedule)
                    .and_then(|entry| self.start_custom(&entry, broadcast.args, Origin::Broadcast));
                if let Err(error) = started {
                    inner.log.line(
                        "skipped",
                        &[
                            ("schedule", &broadcast.schedule),
                            ("origin", &Origin::Broadcast.as_str()),
                            ("reason", &error),
                        ],
                    );
                }
            }
            // Kept a second longer than a poll can return them (the store keeps whole
            // milliseconds), so none is seen as new twice.
            let forget_before = since - SignedDuration::from_secs(1);
            seen.retain(|_, sent_at| *sent_at >= forget_before);
        }
    }

    /// Puts the schedule's next tick after `after` on the heap.
    fn arm(&self, entry: &Arc<Entry>, state: &mut EntryState, after: Timestamp) {
        if let Some(at) = entry.def.next_tick(after) {
            lock(&self.inner.timers).push(Reverse(Due {
                at: ceil_millis(at),
                generation: state.generation,
                entry: entry.clone(),
            }));
        }
    }

    /// Runs the ticks missed since `last` as the schedule's catch-up policy says, one
    /// after the other, oldest first.
    fn catch_up(&self, entry: Arc<Entry>, last: Timestamp, now: Timestamp) {
        let def = &entry.def;
        let limit = match def.catch_up {
            CatchUp::Skip => return,
            CatchUp::Once => 1,
            CatchUp::All(limit) => limit.max(1) as usize,
        };
        let mut missed = VecDeque::with_capacity(limit + 1);
        let mut tick = last;
        while let Some(next) = def.next_tick(tick).filter(|next| *next < now) {
            missed.push_back(next);
            if missed.len() > limit {
                missed.pop_front();
            }
            tick = next;
        }
        if missed.is_empty() {
            return;
        }
        self.inner.log.line(
            "catch_up",
            &[
                ("schedule", &def.name),
                ("missed", &missed.len()),
                ("since", &last),
            ],
        );
        let this = self.clone();
        self.inner.dispatches.spawn(async move {
            for tick in missed {
                this.run_tick(&entry, tick, Origin::CatchUp).await;
            }
        });
    }

    async fn run_timer(self) {
        let inner = &self.inner;
        loop {
            let wake = inner.wake.notified();
            let mut wake = std::pin::pin!(wake);
            wake.as_mut().enable();
            let now = Timestamp::now();
            let horizon = now + LEAD;
            let mut due = Vec::new();
            {
                let mut timers = lock(&inner.timers);
                let horizon = horizon.as_millisecond();
                while timers.peek().is_some_and(|Reverse(top)| top.at <= horizon) {
                    if let Some(Reverse(top)) = timers.pop() {
                        due.push(top);
                    }
                }
            }
            if !due.is_empty() {
                self.fire(due, now);
            }
            let next_at = lock(&inner.timers).peek().map(|Reverse(top)| top.at());
            let sleep = match next_at {
                Some(at) => duration_until(now, at).saturating_sub(LEAD).min(MAX_SLEEP),
                None => MAX_SLEEP,
            };
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = wake => {}
                _ = inner.stop.cancelled() => return,
            }
        }
    }

    /// Ticks came off the heap (in due order): dispatch them, then re-arm their schedules.
    ///
    /// Ticks due at the same instant share one dispatch that sleeps once and then starts
    /// one task per tick, so thousands of schedules due together cost one timer, and the
    /// dispatch is under way before the (slower) computation of every next tick.
    fn fire(&self, due: Vec<Due>, now: Timestamp) {
        // A removed, paused or disabled schedule's generation has moved on.
        let live: Vec<(Arc<Entry>, Due)> = due
            .into_iter()
            .filter(|due| lock(&due.entry.state).generation == due.generation)
            .map(|due| (due.entry.clone(), due))
            .collect();
        for same_instant in live.chunk_by(|(_, a), (_, b)| a.at == b.at) {
            let at = same_instant[0].1.at();
            let group: Vec<Arc<Entry>> = same_instant.iter().map(|(entry, _)| entry.clone()).collect();
            let this = self.clone();
            self.inner.dispatches.spawn(async move {
                tokio::select! {
                    _ = this.inner.stop.cancelled() => return,
                    _ = tokio::time::sleep(duration_until(Timestamp::now(), at)) => {}
                }
                for entry in group {
                    this.dispatch(entry, at, Origin::Timer);
                }
            });
        }
        for (entry, due) in live {
            let mut state = lock(&entry.state);
            if state.generation == due.generation {
                // After a suspend or a clock jump, one late tick fires and the schedule goes
                // on from now rather than replaying every tick it slept through.
                self.arm(
                    &entry,
                    &mut state,
                    due.at().max(now - SignedDuration::from_millis(1)),
                );
            }
        }
    }

    fn dispatch(&self, entry: Arc<Entry>, tick: Timestamp, origin: Origin) {
        let this = self.clone();
        self.inner
            .dispatches
            .spawn(async move { this.run_tick(&entry, tick, origin).await });
    }

    async fn run_tick(&self, entry: &Entry, tick: Timestamp, origin: Origin) {
        let inner = &self.inner;
        let def = &entry.def;
        // Until the run starts, stopping the scheduler drops the tick.
        let claimed = tokio::select! {
            _ = inner.stop.cancelled() => return,
            claimed = async {
                let wait = duration_until(Timestamp::now(), tick);
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
                self.claim(def, tick).await
            } => claimed,
        };
        match claimed {
            Ok(true) => {}
            Ok(false) => return,
            Err(error) => {
                tracing::error!(schedule = %def.name, %error, "cannot claim a tick; it is skipped");
                inner.log.line(
                    "claim_failed",
                    &[("schedule", &def.name), ("tick", &tick), ("error", &error)],
                );
                return;
            }
        }
        lock(&entry.state).last_tick = Some(tick.as_millisecond());
        inner.log.line(
            "trigger",
            &[
                ("schedule", &def.name),
                ("tick", &tick),
                ("origin", &origin.as_str()),
                ("instance", &inner.instance),
            ],
        );
        let _turn = match def.overlap {
            Overlap::Skip => {
                // Only an earlier tick's run counts: a dead instance's tick, taken over
                // late, may come after this schedule's next tick has started.
                let previous = lock(&entry.state)
                    .last_run
                    .as_ref()
                    .filter(|run| !run.is_finished() && earlier(run.trigger(), tick))
                    .map(|run| (run.run_id().to_string(), inner.instance.clone()));
                let previous = match previous {
                    Some(previous) => Some(previous),
                    None => self.unfinished_elsewhere(def, tick, true).await,
                };
                if let Some((run_id, instance)) = previous {
                    inner.log.line(
                        "skipped",
                        &[
                            ("schedule", &def.name),
                            ("tick", &tick),
                            ("reason", &"previous run still going"),
                            ("previous_run_id", &run_id),
                            ("previous_instance", &instance),
                        ],
                    );
                    return;
                }
                None
            }
            Overlap::Queue => tokio::select! {
                _ = inner.stop.cancelled() => return,
                turn = async {
                    let turn = match &entry.queue {
                        Some(queue) => Some(queue.lock().await),
                        None => None,
                    };
                    // Then wait for earlier ticks' runs on other instances.
                    while self.unfinished_elsewhere(def, tick, false).await.is_some() {
                        tokio::time::sleep(QUEUE_POLL).await;
                    }
                    turn
                } => Some(turn),
            },
            Overlap::Allow => None,
        };
        let handle = match self.start_run(entry, def.request(tick)) {
            Ok(handle) => handle,
            Err(error) => {
                inner.log.line(
                    "failed",
                    &[("schedule", &def.name), ("tick", &tick), ("error", &error)],
                );
                return;
            }
        };
        self.follow_run(def, handle).await;
    }

    /// Starts a run of the schedule's job and keeps it as the schedule's latest run (what
    /// `skip` looks at).
    fn start_run(&self, entry: &Entry, request: crate::RunRequest) -> Result<RunHandle, Error> {
        let handle = self.inner.runtime.start(request)?;
        lock(&entry.state).last_run = Some(handle.clone());
        Ok(handle)
    }

    /// A run of another instance of the cluster started by this schedule by a tick before
    /// `before` (or, with `sends`, by a strategy's send) and not finished yet, as (run id,
    /// instance). Only `worker` and custom schedules share runs across instances; a store
    /// error counts as none, so the tick runs.
    async fn unfinished_elsewhere(
        &self,
        def: &ScheduleDef,
        before: Timestamp,
        sends: bool,
    ) -> Option<(String, String)> {
        let inner = &self.inner;
        let store = inner
            .store
            .as_ref()
            .filter(|_| inner.shared && def.kind != Kind::All)?;
        let filter = RunFilter::default()
            .schedule(def.name.to_string())
            .unfinished()
            .limit(20);
        let runs = match store.list_runs(&filter).await {
            Ok(runs) => runs,
            Err(error) => {
                tracing::warn!(schedule = %def.name, %error, "cannot look for runs on other instances; running the tick");
                return None;
            }
        };
        let earlier_runs: Vec<RunRecord> = runs
            .into_iter()
            .filter(|run| run.instance != inner.instance)
            .filter(|run| match &run.trigger {
                Trigger::Schedule { .. } => earlier(&run.trigger, before),
                _ => sends,
            })
            .collect();
        if earlier_runs.is_empty() {
            return None;
        }
        // A run on an instance that stopped beating is not "still going", even while its
        // lease has yet to run out and mark it abandoned. The membership list may not know
        // an instance that started since it was read, so it is read again before a run
        // outside it is taken for a dead instance's.
        let mut members = lock(&inner.members).clone();
        if earlier_runs.iter().any(|run| !members.contains(&run.instance)) {
            self.refresh_members().await;
            members = lock(&inner.members).clone();
        }
        earlier_runs
            .into_iter()
            .find(|run| members.contains(&run.instance))
            .map(|run| (run.id.to_string(), run.instance))
    }

    /// Logs a run's start and end in the schedule log.
    async fn follow_run(&self, def: &ScheduleDef, handle: RunHandle) {
        let inner = &self.inner;
        let run_id = handle.run_id();
        inner.log.line(
            "start",
            &[
                ("schedule", &def.name),
                ("run_id", &run_id),
                ("instance", &inner.instance),
                ("task", &def.task),
            ],
        );
        let started = std::time::Instant::now();
        let outcome = handle.outcome().await;
        let duration_ms = started.elapsed().as_millis();
        match outcome {
            Ok(_) => inner.log.line(
                "succeeded",
                &[
                    ("schedule", &def.name),
                    ("run_id", &run_id),
                    ("instance", &inner.instance),
                    ("duration_ms", &duration_ms),
                ],
            ),
            Err(error) => inner.log.line(
                "failed",
                &[
                    ("schedule", &def.name),
                    ("run_id", &run_id),
                    ("instance", &inner.instance),
                    ("duration_ms", &duration_ms),
                    ("error", &error),
                ],
            ),
        }
    }

    /// Claims `tick` for this instance in the ledger. Without a store there is only this
    /// process, and nothing to claim against.
    async fn claim(&self, def: &ScheduleDef, tick: Timestamp) -> Result<bool, Error> {
        let inner = &self.inner;
        let Some(store) = &inner.store else {
            return Ok(true);
        };
        let target = match def.kind {
            Kind::All => inner.instance.clone(),
            Kind::Worker | Kind::Custom(_) => {
                if inner.shared {
                    let members = lock(&inner.members).clone();
                    // `queue` ticks all go to one instance, whose queue keeps them in
                    // order; the others spread tick by tick.
                    let spread_by = (def.overlap != Overlap::Queue).then_some(tick);
                    let index = (spread_hash(&def.name, spread_by) % members.len() as u64) as usize;
                    if members[index] != inner.instance {
                        // The tick is another instance's: give it time to claim first, then
                        // take over if it did not (it may have died).
                        tokio::time::sleep(inner.settings.worker_grace).await;
                    }
                }
                String::new()
            }
        };
        store
            .claim_tick(&TickClaim {
                schedule: def.name.to_string(),
                tick,
                target,
                instance: inner.instance.clone(),
            })
            .await
    }

    async fn run_membership(self) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.inner.settings.membership_refresh) => {}
                _ = self.inner.stop.cancelled() => return,
            }
            self.refresh_members().await;
        }
    }

    async fn refresh_members(&self) {
        let inner = &self.inner;
        let Some(store) = inner.store.as_ref().filter(|_| inner.shared) else {
            return;
        };
        let now = Timestamp::now();
        let window = jiff::SignedDuration::try_from(crate::store::lease::MEMBERSHIP_WINDOW)
            .unwrap_or(jiff::SignedDuration::from_secs(3));
        match store.live_instances(now, now - window).await {
            Ok(mut live) => {
                if !live.contains(&inner.instance) {
                    live.push(inner.instance.clone());
                    live.sort();
                }
                *lock(&inner.members) = Arc::new(live);
            }
            Err(error) => tracing::warn!(%error, "cannot read the live instances; keeping the last list"),
        }
    }
}

impl Entry {
    fn info(&self) -> ScheduleInfo {
        let def = &self.def;
        let state = lock(&self.state);
        let (cron, tz, interval_ms) = match &def.timing {
            Timing::Cron { expr, zone } => (
                Some(expr.as_str().to_owned()),
                Some(zone.iana_name().unwrap_or("UTC").to_owned()),
                None,
            ),
            Timing::Interval(every) => (None, None, Some(every.as_millis() as u64)),
            Timing::None => (None, None, None),
        };
        ScheduleInfo {
            name: def.name.to_string(),
            kind: def.kind.as_str().to_owned(),
            task: def.task.to_string(),
            cron,
            tz,
            interval_ms,
            immediate: def.immediate,
            disabled: state.disabled,
            paused: state.paused,
            overlap: def.overlap,
            catch_up: def.catch_up,
            // Computed rather than kept: 24 bytes less for each of a million schedules.
            next: (!state.paused && !state.disabled)
                .then(|| def.next_tick(Timestamp::now()))
                .flatten(),
            last_tick: state.last_tick.map(from_millis),
            options: Value::clone(&def.options),
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
        }
    }
}

/// FNV-1a over the schedule name and the tick's milliseconds: every instance computes the
/// same spread, whatever its build (std's hasher may change between Rust versions).
fn spread_hash(name: &str, tick: Option<Timestamp>) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let tick = tick.map(|tick| tick.as_millisecond().to_le_bytes());
    for byte in name.bytes().chain(tick.into_iter().flatten()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// True for a run started before `tick`: by an earlier tick, or by a strategy's send.
fn earlier(trigger: &Trigger, tick: Timestamp) -> bool {
    match trigger {
        Trigger::Schedule { scheduled_at, .. } => *scheduled_at < tick,
        _ => true,
    }
}

fn inactive(schedule: &str, state: &'static str) -> Error {
    Error::ScheduleInactive {
        schedule: schedule.to_owned(),
        state,
    }
}

fn duration_until(now: Timestamp, at: Timestamp) -> Duration {
    Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Share of `ticks` (every `every`-th of a 150 ms schedule) that go to member 0 of
    /// `members`, and the longest run of ticks in a row sent to one member.
    fn spread(members: u64, every: i64) -> (f64, usize) {
        let base = Timestamp::from_millisecond(1_795_000_000_000).expect("ts");
        let picks: Vec<u64> = (0..3000)
            .map(|k| base + SignedDuration::from_millis(150 * every * k))
            .map(|tick| spread_hash("slow", Some(tick)) % members)
            .collect();
        let share = picks.iter().filter(|&&pick| pick == 0).count() as f64 / picks.len() as f64;
        let longest = picks.chunk_by(|a, b| a == b).map(<[u64]>::len).max().unwrap_or(0);
        (share, longest)
    }

    #[test]
    fn ticks_spread_evenly_over_the_members() {
        for members in [2, 3] {
            for every in [1, 3, 4] {
                let (share, longest) = spread(members, every);
                let fair = 1.0 / members as f64;
                assert!(
                    (share - fair).abs() < 0.05,
                    "{members} members, every {every}: {share}"
                );
                // Random picks out of 3000 make runs longer than 16 very unlikely.
                assert!(
                    longest <= 16,
                    "{members} members, every {every}: {longest} in a row"
                );
            }
        }
    }
}
