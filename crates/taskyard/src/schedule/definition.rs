//! [`Schedule`]: what a schedule definition says, as written (in code, in a file under
//! `src/schedule/`, or in `taskyard.toml`), and [`ScheduleDef`], the same after every value
//! has been checked.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::cron::CronExpr;
use super::interval::IntervalSpec;
use crate::{Error, Signal, Task};

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
    Value(bool),
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
    pub(crate) disable: Disable,
    pub(crate) env: Vec<String>,
    pub(crate) overlap: Overlap,
    pub(crate) catch_up: CatchUp,
    pub(crate) job: Option<Job>,
    pub(crate) payload: Value,
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
            disable: Disable::Value(false),
            env: Vec::new(),
            overlap: Overlap::default(),
            catch_up: CatchUp::default(),
            job: None,
            payload: Value::Object(Map::new()),
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

    /// A fixed interval: milliseconds, a [`Duration`] or an `ms`-style string (`"10s"`).
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

    pub fn overlap(mut self, overlap: Overlap) -> Self {
        self.overlap = overlap;
        self
    }

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

    /// A free-form option, passed to custom strategies.
    pub fn option(mut self, key: impl Into<String>, value: Value) -> Self {
        self.options.insert(key.into(), value);
        self
    }
}

/// The built-in schedule types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    Worker,
    All,
    Custom(Arc<str>),
}

impl Kind {
    pub fn as_str(&self) -> &str {
        match self {
            Kind::Worker => "worker",
            Kind::All => "all",
            Kind::Custom(name) => name,
        }
    }
}

/// When a schedule's ticks fall.
#[derive(Debug, Clone)]
pub(crate) enum Timing {
    Cron {
        expr: Arc<CronExpr>,
        zone: TimeZone,
    },
    Interval(Duration),
    /// Only `immediate` (or only a custom strategy): no recurring ticks.
    None,
}

/// A checked schedule.
#[derive(Debug, Clone)]
pub(crate) struct ScheduleDef {
    /// Boxed rather than shared: no reference-count header, 16 bytes less per schedule.
    pub name: Box<str>,
    pub kind: Kind,
    pub timing: Timing,
    /// `start` and `end`, boxed: most schedules have neither, and a million schedules
    /// would otherwise carry 48 bytes each for them.
    pub bounds: Option<Box<Bounds>>,
    pub immediate: bool,
    /// Whether it starts disabled.
    pub disable: bool,
    /// The signal that switches it off and on, if any.
    pub disable_signal: Option<Signal<bool>>,
    pub overlap: Overlap,
    pub catch_up: CatchUp,
    pub task: Arc<str>,
    pub payload: Arc<Value>,
    pub options: Arc<Value>,
}

/// A schedule's `start` and `end`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Bounds {
    pub start: Option<Timestamp>,
    pub end: Option<Timestamp>,
}

/// `{}`, shared by every schedule without payload or options, so they cost no allocation.
fn shared_object(map: &Map<String, Value>) -> Arc<Value> {
    static EMPTY: std::sync::LazyLock<Arc<Value>> =
        std::sync::LazyLock::new(|| Arc::new(Value::Object(Map::new())));
    if map.is_empty() {
        EMPTY.clone()
    } else {
        Arc::new(Value::Object(map.clone()))
    }
}

/// The task name a schedule's own body is registered under.
pub(crate) fn body_task_name(schedule: &str) -> String {
    format!("schedule:{schedule}")
}

/// What validation needs to know about the app.
pub(crate) struct Context<'a> {
    pub task_exists: &'a dyn Fn(&str) -> bool,
    pub strategies: &'a [String],
    pub default_zone: &'a TimeZone,
    pub now: Timestamp,
    /// Parsed cron expressions shared between schedules that use the same one.
    pub crons: &'a mut HashMap<String, Arc<CronExpr>>,
}

impl Schedule {
    /// Checks every value; the error names the schedule, the bad value and what is
    /// accepted.
    pub(crate) fn check(&self, name: &str, cx: &mut Context<'_>) -> Result<ScheduleDef, Error> {
        let fail = |message: String| Error::InvalidSchedule {
            schedule: name.to_owned(),
            message,
        };
        let kind = match self.kind.as_str() {
            "worker" => Kind::Worker,
            "all" => Kind::All,
            other if cx.strategies.iter().any(|s| s == other) => Kind::Custom(Arc::from(other)),
            other => {
                let mut accepted = vec!["worker".to_owned(), "all".to_owned()];
                accepted.extend(cx.strategies.iter().cloned());
                return Err(fail(format!(
                    "schedule type [{other}] is not defined; use one of: {}",
                    accepted.join(", ")
                )));
            }
        };
        let zone = match &self.tz {
            Some(tz) => crate::config::time_zone(tz).map_err(fail)?,
            None => cx.default_zone.clone(),
        };
        if let (Some(start), Some(end)) = (self.start, self.end)
            && end <= start
        {
            return Err(fail(format!("`end` ({end}) is not after `start` ({start})")));
        }
        let timing = match (&self.cron, &self.interval) {
            (Some(cron), Some(interval)) => {
                return Err(fail(format!(
                    "both `cron` ({cron}) and `interval` ({interval}) are set; keep one of them"
                )));
            }
            (Some(cron), None) => {
                let expr = match cx.crons.get(cron.trim()) {
                    Some(expr) => expr.clone(),
                    None => {
                        let expr = Arc::new(CronExpr::parse(cron).map_err(|e| fail(format!("cron {e}")))?);
                        cx.crons.insert(cron.trim().to_owned(), expr.clone());
                        expr
                    }
                };
                let from = self.start.map_or(cx.now, |start| start.max(cx.now));
                match expr.next_after(from, &zone) {
                    Some(next) if self.end.is_none_or(|end| next <= end) => {}
                    Some(_) => {
                        return Err(fail(format!(
                            "cron `{cron}` has no fire time between now and `end`"
                        )));
                    }
                    None => {
                        return Err(fail(format!(
                            "cron `{cron}` can never fire (no date matches it before the year 5000)"
                        )));
                    }
                }
                Timing::Cron { expr, zone }
            }
            (None, Some(interval)) => {
                Timing::Interval(interval.resolve().map_err(|e| fail(format!("interval {e}")))?)
            }
            (None, None) => {
                if !self.immediate && !matches!(kind, Kind::Custom(_)) {
                    return Err(fail(
                        "none of `cron`, `interval` or `immediate` is set, so it would never run; \
                         set one of them"
                            .to_owned(),
                    ));
                }
                Timing::None
            }
        };
        let task = match &self.job {
            Some(Job::Task(task)) => {
                if !(cx.task_exists)(task) {
                    return Err(fail(format!(
                        "task `{task}` is not defined; define it under src/tasks/ or with App::task"
                    )));
                }
                task.clone()
            }
            Some(Job::Body(_)) => body_task_name(name),
            None => {
                return Err(fail(
                    "it has no job: name a task (`task = \"db:cleanup\"`, `.task(..)`) or give it \
                     a body (`.run(Task::new(..))`)"
                        .to_owned(),
                ));
            }
        };
        Ok(ScheduleDef {
            name: Box::from(name),
            kind,
            timing,
            bounds: (self.start.is_some() || self.end.is_some()).then(|| {
                Box::new(Bounds {
                    start: self.start,
                    end: self.end,
                })
            }),
            immediate: self.immediate,
            disable: match &self.disable {
                Disable::Value(disable) => *disable,
                Disable::Signal(signal) => signal.get(),
            },
            disable_signal: match &self.disable {
                Disable::Value(_) => None,
                Disable::Signal(signal) => Some(signal.clone()),
            },
            overlap: self.overlap,
            catch_up: self.catch_up,
            task: Arc::from(task),
            payload: match &self.payload {
                Value::Object(map) => shared_object(map),
                other => Arc::new(other.clone()),
            },
            options: shared_object(&self.options),
        })
    }
}

impl ScheduleDef {
    /// The run request for the tick due at `scheduled_at`.
    pub fn request(&self, scheduled_at: Timestamp) -> crate::RunRequest {
        self.request_by(crate::history::Trigger::Schedule {
            schedule: self.name.to_string(),
            scheduled_at,
        })
    }

    /// The run request for a custom strategy's send.
    pub fn request_by(&self, trigger: crate::history::Trigger) -> crate::RunRequest {
        crate::RunRequest::new(self.task.to_string())
            .payload(Value::clone(&self.payload))
            .trigger(trigger)
    }

    /// The first tick strictly after `after`, within `start`/`end`.
    pub fn start(&self) -> Option<Timestamp> {
        self.bounds.as_ref().and_then(|bounds| bounds.start)
    }

    pub fn end(&self) -> Option<Timestamp> {
        self.bounds.as_ref().and_then(|bounds| bounds.end)
    }

    pub fn next_tick(&self, after: Timestamp) -> Option<Timestamp> {
        let after = match self.start() {
            // The first tick may fall exactly on `start`.
            Some(start) if start > after => start - jiff::SignedDuration::from_nanos(1),
            _ => after,
        };
        let next = match &self.timing {
            Timing::Cron { expr, zone } => expr.next_after(after, zone)?,
            Timing::Interval(every) => next_multiple(after, *every, self.start())?,
            Timing::None => return None,
        };
        match self.end() {
            Some(end) if next > end => None,
            _ => Some(next),
        }
    }
}

/// The first instant strictly after `after` that is `anchor + k × every` (anchor: `start`,
/// or the Unix epoch). Whole multiples keep intervals free of drift and make every
/// instance compute the same ticks.
fn next_multiple(after: Timestamp, every: Duration, anchor: Option<Timestamp>) -> Option<Timestamp> {
    let every_ns = i128::try_from(every.as_nanos()).ok()?.max(1);
    let anchor_ns = anchor.map_or(0, |a| a.as_nanosecond());
    let since = after.as_nanosecond() - anchor_ns;
    let k = since.div_euclid(every_ns) + 1;
    Timestamp::from_nanosecond(anchor_ns + k * every_ns).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(schedule: Schedule) -> Result<ScheduleDef, String> {
        let mut crons = HashMap::new();
        let mut cx = Context {
            task_exists: &|name| name == "db:cleanup",
            strategies: &["queue".to_owned()],
            default_zone: &TimeZone::UTC,
            now: "2026-01-01T00:00:00Z".parse().expect("ts"),
            crons: &mut crons,
        };
        schedule.check("nightly", &mut cx).map_err(|e| e.to_string())
    }

    #[test]
    fn invalid_definitions_name_the_schedule_and_the_value() {
        let err = |s: Schedule| check(s).expect_err("invalid");
        assert_eq!(
            err(Schedule::new("cluster").interval("1s").task("db:cleanup")),
            "Invalid schedule `nightly`: schedule type [cluster] is not defined; use one of: worker, all, queue"
        );
        assert!(err(Schedule::worker().cron("61 * * * *").task("db:cleanup")).contains("field 1 (minute)"));
        assert!(err(Schedule::worker().interval("0").task("db:cleanup")).contains("must be positive"));
        assert!(err(Schedule::worker().interval(-5i64).task("db:cleanup")).contains("must be positive"));
        assert!(err(Schedule::worker().interval("soon").task("db:cleanup")).contains("is not an interval"));
        assert!(
            err(Schedule::worker()
                .cron("* * * * *")
                .interval("1s")
                .task("db:cleanup"))
            .contains("both `cron`")
        );
        assert!(
            err(Schedule::worker().task("db:cleanup")).contains("none of `cron`, `interval` or `immediate`")
        );
        assert!(err(Schedule::worker().interval("1s").task("nope")).contains("task `nope` is not defined"));
        assert!(err(Schedule::worker().interval("1s")).contains("no job"));
        assert!(err(Schedule::worker().cron("0 0 30 2 *").task("db:cleanup")).contains("can never fire"));
        assert!(
            err(Schedule::worker()
                .cron("* * * * *")
                .tz("Mars/Olympus")
                .task("db:cleanup"))
            .contains("time zone `Mars/Olympus` is not known")
        );
    }

    #[test]
    fn custom_strategies_need_no_timing_and_immediate_alone_is_enough() {
        assert!(check(Schedule::custom("queue").task("db:cleanup")).is_ok());
        assert!(check(Schedule::worker().immediate(true).task("db:cleanup")).is_ok());
    }

    #[test]
    fn intervals_tick_on_multiples_of_the_interval_without_drift() {
        let def = check(Schedule::worker().interval("10s").task("db:cleanup")).expect("valid");
        let t = |s: &str| s.parse::<Timestamp>().expect("ts");
        assert_eq!(
            def.next_tick(t("2026-01-01T00:00:03.5Z")),
            Some(t("2026-01-01T00:00:10Z"))
        );
        assert_eq!(
            def.next_tick(t("2026-01-01T00:00:10Z")),
            Some(t("2026-01-01T00:00:20Z"))
        );
        let def = check(
            Schedule::worker()
                .interval(1500u64)
                .start(t("2026-01-01T00:00:00.2Z"))
                .end(t("2026-01-01T00:00:03Z"))
                .task("db:cleanup"),
        )
        .expect("valid");
        assert_eq!(
            def.next_tick(t("2025-12-31T00:00:00Z")),
            Some(t("2026-01-01T00:00:00.2Z"))
        );
        assert_eq!(
            def.next_tick(t("2026-01-01T00:00:00.2Z")),
            Some(t("2026-01-01T00:00:01.7Z"))
        );
        assert_eq!(def.next_tick(t("2026-01-01T00:00:01.7Z")), None, "past `end`");
    }
}
