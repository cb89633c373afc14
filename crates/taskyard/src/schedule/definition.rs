//! [`Schedule`]: what a schedule definition says, as written (in code, in a file under
//! `src/schedule/`, or in `taskyard.toml`). `check` turns it into a `ScheduleDef`.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::interval::IntervalSpec;
use crate::{Signal, Task};

/// What a tick that finds the schedule's previous run still going does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Overlap {
    /// The tick is skipped (logged as such), like Nitro's scheduler.
    #[default]
    Skip,
    /// The tick's run waits for the previous run to end.
    Queue,
    /// The tick's run starts at once (the task's own concurrency mode still applies).
    Allow,
}

/// What happens at start-up to ticks that fell due while no instance was running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CatchUp {
    /// Missed ticks are dropped.
    #[default]
    Skip,
    /// The latest missed tick runs once.
    Once,
    /// Every missed tick runs, oldest first, up to this many (the most recent ones).
    All(u32),
}

/// Whether a schedule is switched off: a fixed value, or a [`Signal`] that starts and
/// stops it while the app runs.
#[derive(Debug, Clone)]
pub enum Disable {
    /// Switched off (`true`) or on (`false`) for good.
    Value(bool),
    /// Switched off while the signal is `true`.
    Signal(Signal<bool>),
}

impl From<bool> for Disable {
    fn from(value: bool) -> Self {
        Disable::Value(value)
    }
}

impl From<Signal<bool>> for Disable {
    fn from(signal: Signal<bool>) -> Self {
        Disable::Signal(signal)
    }
}

impl From<&Signal<bool>> for Disable {
    fn from(signal: &Signal<bool>) -> Self {
        Disable::Signal(signal.clone())
    }
}

/// The default bound of [`CatchUp::All`] when written without one (`catch_up = "all"`).
pub const CATCH_UP_ALL_DEFAULT: u32 = 100;

/// What a schedule runs.
#[derive(Clone)]
pub(crate) enum Job {
    /// A task registered by name.
    Task(String),
    /// A body of its own, registered as the task `schedule:NAME`.
    Body(Task),
}

/// A schedule as written. Every value is checked when the app starts; an invalid one stops
/// the start with a message that names the schedule, the value and what is accepted.
///
/// ```
/// use taskyard::schedule::{Overlap, Schedule};
///
/// let nightly = Schedule::worker()
///     .cron("0 0 3 * * *")
///     .tz("Europe/Paris")
///     .overlap(Overlap::Skip)
///     .task("db:cleanup");
/// let heartbeat = Schedule::all().interval("1s").task("demo:heartbeat-all");
/// # let _ = (nightly, heartbeat);
/// ```
#[derive(Clone)]
pub struct Schedule {
    pub(crate) kind: String,
    pub(crate) cron: Option<String>,
    pub(crate) tz: Option<String>,
    pub(crate) start: Option<Timestamp>,
    pub(crate) end: Option<Timestamp>,
    pub(crate) interval: Option<IntervalSpec>,
    pub(crate) immediate: bool,
    pub(crate) durable: bool,
    pub(crate) disable: Disable,
    pub(crate) env: Vec<String>,
    pub(crate) overlap: Overlap,
    pub(crate) catch_up: CatchUp,
    pub(crate) job: Option<Job>,
    pub(crate) payload: Value,
    pub(crate) scheduled_time: bool,
    pub(crate) options: Map<String, Value>,
}

impl Schedule {
    /// A schedule of type `kind`: `worker`, `all`, or the name of a custom strategy.
    pub fn new(kind: impl Into<String>) -> Self {
        Schedule {
            kind: kind.into(),
            cron: None,
            tz: None,
            start: None,
            end: None,
            interval: None,
            immediate: false,
            durable: false,
            disable: Disable::Value(false),
            env: Vec::new(),
            overlap: Overlap::default(),
            catch_up: CatchUp::default(),
            job: None,
            payload: Value::Object(Map::new()),
            scheduled_time: false,
            options: Map::new(),
        }
    }

    /// Each tick runs on exactly one live instance.
    pub fn worker() -> Self {
        Schedule::new("worker")
    }

    /// Each tick runs once on every live instance.
    pub fn all() -> Self {
        Schedule::new("all")
    }

    /// Runs when the custom strategy `strategy` says so (see `App::strategy`).
    pub fn custom(strategy: impl Into<String>) -> Self {
        Schedule::new(strategy)
    }

    /// A cron expression in croner's syntax (5, 6 or 7 fields).
    pub fn cron(mut self, expr: impl Into<String>) -> Self {
        self.cron = Some(expr.into());
        self
    }

    /// The IANA time zone the cron expression is read in (default: the app's zone).
    pub fn tz(mut self, zone: impl Into<String>) -> Self {
        self.tz = Some(zone.into());
        self
    }

    /// No tick before this instant.
    pub fn start(mut self, at: Timestamp) -> Self {
        self.start = Some(at);
        self
    }

    /// No tick after this instant.
    pub fn end(mut self, at: Timestamp) -> Self {
        self.end = Some(at);
        self
    }

    /// A fixed interval: milliseconds, a [`Duration`](std::time::Duration) or an `ms`-style string (`"10s"`).
    /// Ticks fall on whole multiples of the interval since the Unix epoch (or since
    /// `start`), so every instance agrees on them and they never drift.
    pub fn interval(mut self, every: impl Into<IntervalSpec>) -> Self {
        self.interval = Some(every.into());
        self
    }

    /// Also run once as soon as the instance starts.
    pub fn immediate(mut self, immediate: bool) -> Self {
        self.immediate = immediate;
        self
    }

    /// Each tick's run is a durable run (`worker` schedules only): still once per tick
    /// through the tick ledger, written to the store before it starts, and run again on
    /// another instance if the one running it dies. See `docs/queue.md`.
    pub fn durable(mut self, durable: bool) -> Self {
        self.durable = durable;
        self
    }

    /// Registered but never fired (it can still be run with `run_schedule`). Given a
    /// [`Signal<bool>`](Signal), the schedule stops while the signal is `true` and starts
    /// again, from the next tick after now, when it turns `false`.
    pub fn disable(mut self, disable: impl Into<Disable>) -> Self {
        self.disable = disable.into();
        self
    }

    /// Only in these app environments (`TASKYARD_ENV`); elsewhere it is not registered.
    pub fn env<I, S>(mut self, envs: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.env = envs.into_iter().map(Into::into).collect();
        self
    }

    /// What a tick does when the previous run is still going (default `skip`).
    pub fn overlap(mut self, overlap: Overlap) -> Self {
        self.overlap = overlap;
        self
    }

    /// What happens to ticks missed while the app was down (default `skip`).
    pub fn catch_up(mut self, catch_up: CatchUp) -> Self {
        self.catch_up = catch_up;
        self
    }

    /// Runs the task of this name on each tick.
    pub fn task(mut self, name: impl Into<String>) -> Self {
        self.job = Some(Job::Task(name.into()));
        self
    }

    /// Runs this body on each tick; it is registered as the task `schedule:NAME`, so its
    /// runs are recorded, retried and timed out like any task's.
    pub fn run(mut self, body: Task) -> Self {
        self.job = Some(Job::Body(body));
        self
    }

    /// The payload each tick's run gets (default `{}`).
    pub fn payload(mut self, payload: Value) -> Self {
        self.payload = payload;
        self
    }

    /// Each tick's payload (an object) also carries `scheduledTime`, the tick's time in
    /// Unix milliseconds, as Nitro's cron runner passes `{ scheduledTime }` to a task.
    /// Schedules of `[scheduled_tasks]`, Nitro's form, have it.
    pub fn scheduled_time(mut self, carry: bool) -> Self {
        self.scheduled_time = carry;
        self
    }

    /// A free-form option, passed to custom strategies.
    pub fn option(mut self, key: impl Into<String>, value: Value) -> Self {
        self.options.insert(key.into(), value);
        self
    }
}

/// The task name a schedule's own body is registered under.
pub(crate) fn body_task_name(schedule: &str) -> String {
    format!("schedule:{schedule}")
}
