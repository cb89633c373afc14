//! Checking schedules against the app before they run: their task exists, their type is a
//! built-in or a registered strategy, their times parse. One context serves the app's start
//! and the schedules added at runtime.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::cron::CronExpr;
use super::definition::{Context, Schedule, ScheduleDef};
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
        let mut cx = Context {
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
