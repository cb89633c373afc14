//! `ScheduleDef`: a schedule after every value has been checked, and the ticks it computes.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::Value;

use super::cron::CronExpr;
use super::definition::{CatchUp, Overlap};
use crate::Signal;

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
    /// Whether each tick's run is durable.
    pub durable: bool,
    /// Whether it starts disabled.
    pub disable: bool,
    /// The signal that switches it off and on, if any.
    pub disable_signal: Option<Signal<bool>>,
    pub overlap: Overlap,
    pub catch_up: CatchUp,
    pub task: Arc<str>,
    pub payload: Arc<Value>,
    /// Each tick's payload carries `scheduledTime` (see `Schedule::scheduled_time`).
    pub scheduled_time: bool,
    pub options: Arc<Value>,
}

/// A schedule's `start` and `end`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Bounds {
    pub start: Option<Timestamp>,
    pub end: Option<Timestamp>,
}

impl ScheduleDef {
    /// The run request for the tick due at `scheduled_at`.
    pub fn request(&self, scheduled_at: Timestamp) -> crate::RunRequest {
        let mut payload = Value::clone(&self.payload);
        if self.scheduled_time
            && let Value::Object(payload) = &mut payload
        {
            payload.insert(
                "scheduledTime".to_owned(),
                Value::from(scheduled_at.as_millisecond()),
            );
        }
        self.request_with(
            payload,
            crate::history::Trigger::Schedule {
                schedule: String::from(&*self.name),
                scheduled_at,
            },
        )
    }

    /// The run request for a custom strategy's send.
    pub fn request_by(&self, trigger: crate::history::Trigger) -> crate::RunRequest {
        self.request_with(Value::clone(&self.payload), trigger)
    }

    fn request_with(&self, payload: Value, trigger: crate::history::Trigger) -> crate::RunRequest {
        let request = crate::RunRequest::new(String::from(&*self.task))
            .payload(payload)
            .trigger(trigger);
        if self.durable { request.durable() } else { request }
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
