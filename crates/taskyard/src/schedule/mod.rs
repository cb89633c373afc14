//! Schedules: cron expressions and intervals that run tasks, on one instance of a cluster
//! (`worker`) or on every instance (`all`), exactly once per tick.
//!
//! - `definition`, `check` and `checked`: [`Schedule`] as written, how it is checked, and
//!   its checked form.
//! - [`cron`] and [`interval`]: the two ways to say when.
//! - `config`: both forms of `taskyard.toml` (`[scheduled_tasks]`, `[schedules.NAME]`).
//! - [`Scheduler`]: timers, the tick ledger, overlap and catch-up, runtime changes.
//! - [`export`]: schedules written for crontab, systemd, Kubernetes, Cloudflare and Vercel.
//! - `log`: the schedule log file.
//! - [`StrategySender`]: what custom trigger strategies run jobs with.

pub(crate) mod check;
pub(crate) mod checked;
pub(crate) mod config;
pub mod cron;
mod cron_fields;
mod cron_syntax;
mod cron_years;
pub(crate) mod definition;
mod engine;
pub mod export;
pub mod interval;
pub(crate) mod log;
pub(crate) mod strategy;

pub use self::cron::CronExpr;
pub use self::definition::{CATCH_UP_ALL_DEFAULT, CatchUp, Disable, Overlap, Schedule};
pub(crate) use self::engine::Settings;
pub use self::engine::{Fired, ScheduleInfo, Scheduler, TickAt};
pub use self::interval::IntervalSpec;
pub use self::strategy::StrategySender;
