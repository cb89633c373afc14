//! Custom trigger strategies: code that decides when a schedule's job runs (a channel, a
//! webhook, a message queue), in place of or besides a timer.
//!
//! The app registers a strategy by name with `App::strategy`; every schedule whose `type`
//! is that name gets its own running instance of the strategy, on every instance of the
//! app, handed a [`StrategySender`] bound to the schedule:
//!
//! - [`send_one`](StrategySender::send_one) runs the job once, on this instance (the one
//!   that received the event);
//! - [`send_all`](StrategySender::send_all) runs it once on every live instance: the
//!   sender runs it at once and writes a broadcast to the store, which the other instances
//!   pick up within a fraction of a second.
//!
//! Either way the run's trigger is `custom { strategy, schedule, args }`, so the task sees
//! the arguments in `cx.trigger()`. The strategy stops (its future is dropped) when the
//! schedule is removed or disabled and when the app shuts down.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::engine::Scheduler;
use crate::{Error, RunHandle};

/// A strategy as registered: called once per schedule of its type, each time the schedule
/// becomes active.
#[derive(Clone)]
pub(crate) struct StrategyFn(Arc<dyn Fn(StrategySender) -> BoxFuture<'static, ()> + Send + Sync>);

impl StrategyFn {
    pub fn new<F, Fut>(strategy: F) -> Self
    where
        F: Fn(StrategySender) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        StrategyFn(Arc::new(move |sender| Box::pin(strategy(sender))))
    }

    pub fn start(&self, sender: StrategySender) -> BoxFuture<'static, ()> {
        (self.0)(sender)
    }
}

impl fmt::Debug for StrategyFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StrategyFn")
    }
}

/// What a custom strategy uses to run its schedule's job. Cheap to clone.
#[derive(Clone)]
pub struct StrategySender {
    pub(crate) scheduler: Scheduler,
    pub(crate) schedule: Arc<str>,
    pub(crate) strategy: Arc<str>,
    pub(crate) options: Arc<Value>,
    pub(crate) closed: CancellationToken,
}

impl StrategySender {
    /// The schedule this sender runs.
    pub fn schedule(&self) -> &str {
        &self.schedule
    }

    /// The strategy's name (the schedule's `type`).
    pub fn strategy(&self) -> &str {
        &self.strategy
    }

    /// The schedule's options beyond the built-in ones (`[schedules.NAME]` keys,
    /// `Schedule::option`), as a JSON object.
    pub fn options(&self) -> &Value {
        &self.options
    }

    /// Runs the job once, on this instance, with `args` as the trigger's arguments, and
    /// returns the run (await [`RunHandle::outcome`] for its result). Fails with
    /// [`Error::ScheduleInactive`] while the schedule is paused, disabled or removed.
    pub async fn send_one(&self, args: Value) -> Result<RunHandle, Error> {
        self.scheduler.send_one(self, args).await
    }

    /// Runs the job once on every live instance, this one included, with `args` as the
    /// trigger's arguments; returns this instance's run.
    pub async fn send_all(&self, args: Value) -> Result<RunHandle, Error> {
        self.scheduler.send_all(self, args).await
    }

    /// True once the strategy should stop: the schedule was removed or disabled, or the
    /// app is shutting down.
    pub fn is_closed(&self) -> bool {
        self.closed.is_cancelled()
    }

    /// Resolves when [`is_closed`](Self::is_closed) turns true.
    pub async fn closed(&self) {
        self.closed.cancelled().await;
    }
}

impl fmt::Debug for StrategySender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StrategySender")
            .field("schedule", &self.schedule)
            .field("strategy", &self.strategy)
            .finish_non_exhaustive()
    }
}
