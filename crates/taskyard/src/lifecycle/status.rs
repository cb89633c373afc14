//! What `GET /_tasks/lifecycle` shows of each lifecycle node: its run count, state and last
//! error.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::sync::lock;

/// The kind of a lifecycle node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LifecycleKind {
    /// `use_task`: runs before the server listens, again when what it tracks changes.
    Task,
    /// `use_visible_task`: runs after the server is ready, without blocking it.
    VisibleTask,
    /// `use_resource`: an async derived value.
    Resource,
    /// `use_computed`: a synchronous derived signal.
    Computed,
}

/// Where a lifecycle node stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LifecycleState {
    /// Not run yet (a visible task waiting for its moment, or before startup).
    Waiting,
    /// A run is in flight.
    Running,
    /// The last run succeeded; waiting for a tracked value to change.
    Idle,
    /// The last run failed; it runs again when a tracked value changes.
    Failed,
    /// It no longer runs: it kept re-triggering itself, or the app is stopping.
    Stopped,
}

/// One row of the lifecycle listing.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LifecycleInfo {
    /// Its name.
    pub name: String,
    /// A task, a resource or a computed value.
    pub kind: LifecycleKind,
    /// How many runs have started.
    pub runs: u64,
    /// Where it is now.
    pub state: LifecycleState,
    /// The last failure of a run or a cleanup, if any.
    pub last_error: Option<String>,
}

pub(crate) struct Status {
    name: std::sync::Arc<str>,
    kind: LifecycleKind,
    runs: AtomicU64,
    inner: Mutex<(LifecycleState, Option<String>)>,
}

impl Status {
    pub(crate) fn new(name: std::sync::Arc<str>, kind: LifecycleKind) -> Self {
        Status {
            name,
            kind,
            runs: AtomicU64::new(0),
            inner: Mutex::new((LifecycleState::Waiting, None)),
        }
    }

    /// A run starts; returns its number (1 for the first).
    pub(crate) fn begin(&self) -> u64 {
        lock(&self.inner).0 = LifecycleState::Running;
        self.runs.fetch_add(1, Ordering::SeqCst) + 1
    }

    pub(crate) fn set(&self, state: LifecycleState) {
        lock(&self.inner).0 = state;
    }

    /// Records a failure (of a run or a cleanup) and logs it.
    pub(crate) fn report(&self, error: String) {
        tracing::error!(task = %self.name, kind = ?self.kind, %error, "lifecycle failure");
        lock(&self.inner).1 = Some(error);
    }

    pub(crate) fn fail(&self, error: String) {
        self.report(error);
        self.set(LifecycleState::Failed);
    }

    pub(crate) fn info(&self) -> LifecycleInfo {
        let (state, last_error) = lock(&self.inner).clone();
        LifecycleInfo {
            name: self.name.to_string(),
            kind: self.kind,
            runs: self.runs.load(Ordering::SeqCst),
            state,
            last_error,
        }
    }

    pub(crate) fn name(&self) -> &std::sync::Arc<str> {
        &self.name
    }
}
