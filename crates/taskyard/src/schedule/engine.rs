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
//! - **Changes.** Adding, removing, pausing and resuming bump a schedule's generation;
//!   heap entries of an older generation are dropped when they come up.

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
use crate::run::lock;
use crate::store::{Store, TickClaim};
use crate::{Error, RunHandle, Runtime};

/// How far ahead of their instant ticks leave the heap.
const LEAD: Duration = Duration::from_millis(25);
/// The longest the timer sleeps without looking at the wall clock again.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// Scheduler settings.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// How long instances other than the one a `worker` tick is meant for wait before
    /// claiming it themselves.
    pub worker_grace: Duration,
    /// How often the list of live instances is read from the store.
    pub membership_refresh: Duration,
    pub default_zone: jiff::tz::TimeZone,
    pub strategies: Vec<String>,
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
    entries: Mutex<HashMap<Arc<str>, Arc<Entry>>>,
    timers: Mutex<BinaryHeap<Reverse<Due>>>,
    wake: Notify,
    members: Mutex<Arc<Vec<String>>>,
    crons: Mutex<HashMap<String, Arc<CronExpr>>>,
    log: ScheduleLog,
    stop: CancellationToken,
    dispatches: TaskTracker,
}

struct Entry {
    def: ScheduleDef,
    state: Mutex<EntryState>,
    /// Held by a `queue` tick while it waits for and runs its turn; tokio's mutex is fair,
    /// so queued ticks run in order.
    queue: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct EntryState {
    paused: bool,
    generation: u64,
    next: Option<Timestamp>,
    last_run: Option<RunHandle>,
    last_tick: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Due {
    at: Timestamp,
    generation: u64,
    name: Arc<str>,
}

/// What started a dispatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Timer,
    Immediate,
    CatchUp,
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
                entries: Mutex::new(HashMap::new()),
                timers: Mutex::new(BinaryHeap::new()),
                wake: Notify::new(),
                crons: Mutex::new(HashMap::new()),
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
        let mut crons = lock(&self.inner.crons);
        let mut cx = Context {
            task_exists: &task_exists,
            strategies: &self.inner.settings.strategies,
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
        let entry = lock(&self.inner.entries)
            .remove(name)
            .ok_or_else(|| Error::ScheduleNotFound(name.to_owned()))?;
        // Bumping the generation makes its heap entry stale.
        lock(&entry.state).generation += 1;
        self.inner.log.line("removed", &[("schedule", &name)]);
        Ok(())
    }

    /// Stops a schedule's timer until [`resume`](Self::resume).
    pub fn pause(&self, name: &str) -> Result<(), Error> {
        let entry = self.entry(name)?;
        let mut state = lock(&entry.state);
        if !state.paused {
            state.paused = true;
            state.generation += 1;
            state.next = None;
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
            state.generation += 1;
            self.arm(&entry, &mut state, Timestamp::now());
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
        let entries: Vec<Arc<Entry>> = lock(&self.inner.entries).values().cloned().collect();
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
    /// and the runtime's shutdown).
    pub async fn wait(&self) {
        self.inner.dispatches.wait().await;
    }

    fn entry(&self, name: &str) -> Result<Arc<Entry>, Error> {
        lock(&self.inner.entries)
            .get(name)
            .cloned()
            .ok_or_else(|| Error::ScheduleNotFound(name.to_owned()))
    }

    fn insert(&self, def: ScheduleDef, now: Timestamp) -> Result<Arc<Entry>, Error> {
        let name = def.name.clone();
        let entry = Arc::new(Entry {
            def,
            state: Mutex::new(EntryState::default()),
            queue: tokio::sync::Mutex::new(()),
        });
        {
            let mut entries = lock(&self.inner.entries);
            if entries.contains_key(&name) {
                return Err(Error::InvalidSchedule {
                    schedule: name.to_string(),
                    message: "a schedule of this name is already registered; names must be unique".to_owned(),
                });
            }
            entries.insert(name.clone(), entry.clone());
        }
        if entry.def.disable {
            self.inner.log.line("disabled", &[("schedule", &name)]);
            return Ok(entry);
        }
        if entry.def.immediate {
            self.dispatch(entry.clone(), now, Origin::Immediate);
        }
        self.arm(&entry, &mut lock(&entry.state), now);
        Ok(entry)
    }

    /// Puts the schedule's next tick after `after` on the heap.
    fn arm(&self, entry: &Entry, state: &mut EntryState, after: Timestamp) {
        state.next = entry.def.next_tick(after);
        if let Some(at) = state.next {
            lock(&self.inner.timers).push(Reverse(Due {
                at,
                generation: state.generation,
                name: entry.def.name.clone(),
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
                while timers.peek().is_some_and(|Reverse(top)| top.at <= horizon) {
                    if let Some(Reverse(top)) = timers.pop() {
                        due.push(top);
                    }
                }
            }
            for tick in due {
                self.fire(tick, now);
            }
            let next_at = lock(&inner.timers).peek().map(|Reverse(top)| top.at);
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

    /// A tick came off the heap: re-arm the schedule and dispatch the tick.
    fn fire(&self, due: Due, now: Timestamp) {
        let Some(entry) = lock(&self.inner.entries).get(&due.name).cloned() else {
            return;
        };
        {
            let mut state = lock(&entry.state);
            if state.generation != due.generation || state.paused {
                return;
            }
            // After a suspend or a clock jump, one late tick fires and the schedule goes on
            // from now rather than replaying every tick it slept through.
            self.arm(
                &entry,
                &mut state,
                due.at.max(now - SignedDuration::from_millis(1)),
            );
        }
        self.dispatch(entry, due.at, Origin::Timer);
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
        lock(&entry.state).last_tick = Some(tick);
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
                let previous = lock(&entry.state).last_run.clone();
                if let Some(previous) = previous.filter(|run| !run.is_finished()) {
                    inner.log.line(
                        "skipped",
                        &[
                            ("schedule", &def.name),
                            ("tick", &tick),
                            ("reason", &"previous run still going"),
                            ("previous_run_id", &previous.run_id()),
                        ],
                    );
                    return;
                }
                None
            }
            Overlap::Queue => tokio::select! {
                _ = inner.stop.cancelled() => return,
                turn = entry.queue.lock() => Some(turn),
            },
            Overlap::Allow => None,
        };
        let handle = match inner.runtime.start(def.request(tick)) {
            Ok(handle) => handle,
            Err(error) => {
                inner.log.line(
                    "failed",
                    &[("schedule", &def.name), ("tick", &tick), ("error", &error)],
                );
                return;
            }
        };
        lock(&entry.state).last_run = Some(handle.clone());
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
                    let index = (spread_hash(&def.name, tick) % members.len() as u64) as usize;
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
        match store.live_instances(Timestamp::now()).await {
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
            disabled: def.disable,
            paused: state.paused,
            overlap: def.overlap,
            catch_up: def.catch_up,
            next: state.next,
            last_tick: state.last_tick,
            options: def.options.clone(),
        }
    }
}

impl Origin {
    fn as_str(self) -> &'static str {
        match self {
            Origin::Timer => "timer",
            Origin::Immediate => "immediate",
            Origin::CatchUp => "catch_up",
        }
    }
}

/// FNV-1a over the schedule name and the tick's milliseconds: every instance computes the
/// same spread, whatever its build (std's hasher may change between Rust versions).
fn spread_hash(name: &str, tick: Timestamp) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.bytes().chain(tick.as_millisecond().to_le_bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

fn duration_until(now: Timestamp, at: Timestamp) -> Duration {
    Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO)
}
