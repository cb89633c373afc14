//! Checking schedules against the app before they run: their task exists, their type is a
//! built-in or a registered strategy, their times parse. One context serves the app's start
//! and the schedules added at runtime.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::{Map, Value};

use super::checked::{Bounds, Kind, ScheduleDef, Timing};
use super::cron::CronExpr;
use super::definition::{Disable, Job, Schedule, body_task_name};
use crate::Error;

/// What checking a schedule needs to know about the app.
pub(crate) struct Checker<'a> {
    /// True for the name of a task the app has.
    pub task_exists: &'a dyn Fn(&str) -> bool,
    /// The names of the app's custom strategies.
    pub strategies: Vec<String>,
    /// The time zone of cron schedules that name none.
    pub default_zone: &'a TimeZone,
}

impl Checker<'_> {
    /// Checks one schedule; `crons` shares parsed cron expressions between schedules.
    pub(crate) fn check(
        &self,
        name: &str,
        schedule: &Schedule,
        crons: &mut HashMap<String, Arc<CronExpr>>,
    ) -> Result<ScheduleDef, Error> {
        let mut cx = CheckContext {
            task_exists: self.task_exists,
            strategies: &self.strategies,
            default_zone: self.default_zone,
            now: Timestamp::now(),
            crons,
        };
        schedule.check(name, &mut cx)
    }

    /// Checks every schedule that applies in the environment `env` (`TASKYARD_ENV`); the
    /// others are left out, as egg-schedule does. A name given twice is refused.
    pub(crate) fn check_all(
        &self,
        schedules: &[(String, Schedule)],
        env: &str,
    ) -> Result<Vec<ScheduleDef>, Error> {
        let mut crons = HashMap::new();
        let mut defs = Vec::new();
        let mut seen = HashSet::new();
        for (name, schedule) in schedules {
            if !seen.insert(name.as_str()) {
                return Err(Error::InvalidSchedule {
                    schedule: name.clone(),
                    message:
                        "it is defined twice (in code, src/schedule/ or taskyard.toml); names must be unique"
                            .to_owned(),
                });
            }
            if !schedule.env.is_empty() && !schedule.env.iter().any(|e| e == env) {
                tracing::info!(schedule = %name, %env, only = ?schedule.env, "schedule ignored in this environment");
                continue;
            }
            defs.push(self.check(name, schedule, &mut crons)?);
        }
        Ok(defs)
    }
}

/// What validation needs to know about the app.
pub(crate) struct CheckContext<'a> {
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
    pub(crate) fn check(&self, name: &str, cx: &mut CheckContext<'_>) -> Result<ScheduleDef, Error> {
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
                            "cron `{cron}` can never fire (no date matches it up to the year 9999)"
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
        if self.durable && kind != Kind::Worker {
            return Err(fail(format!(
                "`durable` ticks are for `worker` schedules (one run per tick in the cluster), and this one is `{}`; drop `durable` or make it a `worker` schedule",
                kind.as_str()
            )));
        }
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
            durable: self.durable,
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
            scheduled_time: self.scheduled_time,
            payload: match &self.payload {
                Value::Object(map) => shared_object(map),
                other => Arc::new(other.clone()),
            },
            options: shared_object(&self.options),
        })
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn check(schedule: Schedule) -> Result<ScheduleDef, String> {
        let mut crons = HashMap::new();
        let mut cx = CheckContext {
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
