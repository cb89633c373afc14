//! # taskyard
//!
//! A framework for web services in which tasks are first-class. Drop a file in
//! `src/tasks/` and get a named task you can run from code, HTTP or the command line; every
//! run is recorded, can be retried, timed out, cancelled and watched.
//!
//! ```no_run
//! use taskyard::{App, Task, TaskContext, TaskError};
//!
//! #[tokio::main]
//! async fn main() -> taskyard::Result<()> {
//!     App::new()
//!         .task("db:migrate", Task::new(|cx: TaskContext| async move {
//!             cx.progress(0.5, "halfway");
//!             Ok::<_, TaskError>("Success")
//!         }).description("Run database migrations"))
//!         .serve()
//!         .await
//! }
//! ```
//!
//! ## Layout
//!
//! Bottom layer first; a module imports only from the layers below it (the crate's tests
//! check it, and `docs/DESIGN.md` has the table):
//!
//! - [`history`]: the run records every layer speaks (`RunRecord`, `RunId`, `RunStatus`,
//!   `Trigger`, `RunFilter`);
//! - `error`, `signal`: [`Error`] and [`Signal`];
//! - [`config`] (environment, `taskyard.toml`) and [`task`] (what a task is made of);
//! - [`store`]: where history is kept;
//! - [`run`]: the runtime, [`Task`] and [`TaskContext`];
//! - [`schedule`] (timers, exactly-once ticks) and [`lifecycle`] (startup tasks, signals);
//! - [`http`]: the front layer, the task endpoints, the server;
//! - [`route`]: server routes from files, [`route::Event`], route rules;
//! - [`app`]: [`App`] and [`RunningApp`], putting it together.
//!
//! The guides (getting started, HTTP, routes, schedules, lifecycle) are in [`guides`].

#![warn(missing_docs)]

pub mod app;
pub mod config;
mod error;
pub mod history;
pub mod http;
pub mod lifecycle;
mod pattern;
pub mod route;
pub mod run;
pub mod schedule;
mod shutdown;
mod signal;
mod state;
pub mod store;
mod sync;
pub mod task;

pub use app::{App, RunningApp};
pub use config::Dashboard;
pub use error::{Error, ErrorKind, Result};
pub use history::{RunFilter, RunId, RunRecord, RunStatus, Trigger};
pub use run::{RunEvent, RunHandle, RunRequest, Runtime, Task, TaskContext};
pub use schedule::Schedule;
pub use signal::Signal;
pub use state::AppState;
pub use store::StoreConfig;
pub use task::{Concurrency, Retry, TaskError};

/// Includes the code `taskyard-build` generated for this crate: a function
/// `fn app() -> taskyard::App` with every task found under `src/tasks/` registered.
///
/// Use it once, at the root of the binary crate (`src/main.rs`):
///
/// ```ignore
/// taskyard::include_app!();
///
/// #[tokio::main]
/// async fn main() -> taskyard::Result<()> {
///     app().serve().await
/// }
/// ```
#[macro_export]
macro_rules! include_app {
    () => {
        include!(concat!(env!("OUT_DIR"), "/taskyard_app.rs"));
    };
}

/// The guides of the repository's `docs/` folder, here so that rustdoc shows them beside the
/// API and compiles their examples as doctests. Blocks marked `ignore` need the code
/// `taskyard-build` generates; the guide's app (`examples/guide`) builds them for real.
#[cfg(any(doc, doctest))]
pub mod guides {
    #[doc = include_str!("../../../docs/guide.md")]
    pub mod guide {}
    #[doc = include_str!("../../../docs/http.md")]
    pub mod http {}
    #[doc = include_str!("../../../docs/routes.md")]
    pub mod routes {}
    #[doc = include_str!("../../../docs/schedules.md")]
    pub mod schedules {}
    #[doc = include_str!("../../../docs/lifecycle.md")]
    pub mod lifecycle {}
    #[doc = include_str!("../../../docs/queue.md")]
    pub mod queue {}
    #[doc = include_str!("../../../docs/dashboard.md")]
    pub mod dashboard {}
}

/// What the code `taskyard-build` generates and the crate's macros reach. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use axum;
    pub use serde_json;
}

/// Common imports for the files of an app: tasks (`Task`, `TaskContext`, `TaskError`,
/// `JsonSchema` for payload types), schedules and strategies (`Schedule`, `CatchUp`,
/// `Overlap`, `StrategySender`, `Signal`) and routes and middleware (`Event`, `Context`,
/// `HttpError`, `Runtime`), with `json!` and `Value`.
pub mod prelude {
    pub use crate::Signal;
    pub use crate::http::HttpError;
    pub use crate::route::{Context, Event};
    pub use crate::schedule::{CatchUp, Overlap, Schedule, StrategySender};
    pub use crate::{Concurrency, Retry, Runtime, Task, TaskContext, TaskError, Trigger};
    pub use schemars::JsonSchema;
    pub use serde_json::{Value, json};
}

/// The schemars version taskyard's payload schemas come from (1.x). A payload type's
/// `JsonSchema` must come from this version; an app that does not depend on schemars
/// itself can derive through it with `#[schemars(crate = "taskyard::schemars")]`.
pub use schemars;
