//! [`ScheduleInfo`]: a schedule as the API, the CLI and the dashboard list it.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Entry;
use super::timer::from_millis;
use crate::schedule::checked::Timing;
use crate::schedule::definition::{CatchUp, Overlap};
use crate::sync::lock;

/// A schedule as listed by [`Scheduler::list`](super::Scheduler::list).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScheduleInfo {
    /// Its name.
    pub name: String,
    /// `worker`, `all` or a custom strategy's name.
    #[serde(rename = "type")]
    pub kind: String,
    /// The task its ticks run.
    pub task: String,
    /// Its cron expression, for cron schedules.
    pub cron: Option<String>,
    /// The time zone of its cron expression.
    pub tz: Option<String>,
    /// Its interval in milliseconds, for interval schedules.
    pub interval_ms: Option<u64>,
    /// Whether it also runs once at start.
    pub immediate: bool,
    /// Whether each tick's run is durable.
    #[serde(default)]
    pub durable: bool,
    /// Whether it is switched off by `disable`.
    pub disabled: bool,
    /// Whether it is paused.
    pub paused: bool,
    /// What a tick does when the previous run is still going.
    pub overlap: Overlap,
    /// What happens to missed ticks.
    pub catch_up: CatchUp,
    /// The next tick this instance's timer will fire, if any.
    pub next: Option<Timestamp>,
    /// The last tick this instance fired.
    pub last_tick: Option<Timestamp>,
    /// Options beyond the built-in ones (for custom strategies).
    pub options: Value,
}

impl Entry {
    pub(super) fn info(&self) -> ScheduleInfo {
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
            durable: def.durable,
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
