//! [`Scope`]: the handle a lifecycle body gets for one run — track, clean up, reach the
//! runtime.

use std::future::Future;
use std::sync::Arc;

use super::Shared;
use super::cleanup::{Cleanup, Cleanups};
use super::track::{Collected, Rerun, Track};
use crate::{Runtime, TaskError};

/// One run of a lifecycle task, resource or visible task.
///
/// ```
/// use taskyard::lifecycle::Scope;
/// use taskyard::{Signal, TaskError};
///
/// async fn body(t: Scope, enabled: Signal<bool>) -> Result<(), TaskError> {
///     if t.track(&enabled) {
///         t.cleanup(async { /* stop what this run started */ Ok(()) });
///     }
///     Ok(())
/// }
/// # let _ = body;
/// ```
#[derive(Clone)]
pub struct Scope {
    pub(crate) name: Arc<str>,
    pub(crate) generation: u64,
    pub(crate) run: u64,
    pub(crate) trigger: Arc<Rerun>,
    pub(crate) cleanups: Arc<Cleanups>,
    pub(crate) shared: Arc<Shared>,
}

impl Scope {
    /// Reads a signal (`track(&signal)`) or runs a closure (`track(|| a.get() + b.get())`)
    /// and makes what it read a dependency: when it changes, the task runs again.
    /// Dependencies are collected anew on every run, so a branch that no longer reads a
    /// signal no longer re-runs on it.
    pub fn track<R>(&self, what: impl Track<R>) -> R {
        let (value, Collected(deps)) = what.collect();
        self.trigger.watch(self.generation, deps);
        value
    }

    /// Registers work that undoes this run; it runs, awaited, before the next run's body
    /// and at shutdown. A failing cleanup is reported and the task still re-runs.
    pub fn cleanup(&self, cleanup: impl Future<Output = Result<(), TaskError>> + Send + 'static) {
        self.add_cleanup(Cleanup::new(cleanup));
    }

    pub(crate) fn add_cleanup(&self, cleanup: Cleanup) {
        let order = self.shared.next_order();
        if let Some(late) = self.cleanups.push(order, cleanup) {
            // This run's cleanups already ran (the next run started, or shutdown): run it now.
            let name = self.name.clone();
            tokio::spawn(async move {
                if let Err(error) = late.run().await {
                    tracing::error!(task = %name, %error, "a lifecycle cleanup failed");
                }
            });
        }
    }

    /// The task runtime: run tasks, read shared state.
    pub fn runtime(&self) -> &Runtime {
        self.shared.runtime()
    }

    /// The name the task, resource or visible task was registered with.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Which run this is: 1 for the first.
    pub fn run_number(&self) -> u64 {
        self.run
    }
}
