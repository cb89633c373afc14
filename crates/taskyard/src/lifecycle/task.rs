//! `use_task` and `use_visible_task`: a body that runs, then runs again whenever what it
//! tracked changes — one run at a time, a burst of changes coalesced into one more run, the
//! previous run's cleanups awaited before the next body.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::task::AbortHandle;

use super::cleanup::{Cleanup, Cleanups, IntoCleanup, join_failure};
use super::status::{LifecycleKind, LifecycleState, Status};
use super::track::Rerun;
use super::visible::Visible;
use super::{Node, Scope, Shared};
use crate::TaskError;
use crate::sync::lock;

type BodyFuture = Pin<Box<dyn Future<Output = Result<Option<Cleanup>, TaskError>> + Send>>;
pub(crate) type Body = Box<dyn Fn(Scope) -> BodyFuture + Send + Sync>;

pub(crate) fn body<F, Fut, C>(body: F) -> Body
where
    F: Fn(Scope) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<C, TaskError>> + Send + 'static,
    C: IntoCleanup,
{
    Box::new(move |scope| {
        let run = body(scope);
        Box::pin(async move { run.await.map(IntoCleanup::into_cleanup) })
    })
}

pub(crate) struct TaskNode {
    pub(crate) status: Status,
    /// `None` for a `use_task`; when a visible task runs for a first time otherwise.
    pub(crate) visible: Option<Visible>,
    body: Body,
    trigger: Arc<Rerun>,
    /// The cleanups of the latest run.
    cleanups: Mutex<Arc<Cleanups>>,
    /// The body in flight, to abort if shutdown's deadline passes.
    running: Mutex<Option<AbortHandle>>,
    /// Set once a visible task has been started.
    started: AtomicBool,
}

impl TaskNode {
    pub(crate) fn new(name: &str, visible: Option<Visible>, body: Body) -> Self {
        let kind = match visible {
            None => LifecycleKind::Task,
            Some(_) => LifecycleKind::VisibleTask,
        };
        TaskNode {
            status: Status::new(name.into(), kind),
            visible,
            body,
            trigger: Arc::default(),
            cleanups: Mutex::default(),
            running: Mutex::default(),
            started: AtomicBool::new(false),
        }
    }

    /// One run: the previous run's cleanups, awaited in order, then the body. Failures are
    /// recorded in the status and returned.
    pub(crate) async fn run_once(&self, shared: &Arc<Shared>) -> Result<(), String> {
        let generation = self.trigger.begin_run();
        let previous = std::mem::take(&mut *lock(&self.cleanups));
        for (_, cleanup) in previous.take() {
            if let Err(error) = cleanup.run().await {
                self.status.report(format!("a cleanup failed: {error}"));
            }
        }
        let cleanups = lock(&self.cleanups).clone();
        let run = self.status.begin();
        let scope = Scope {
            name: self.status.name().clone(),
            generation,
            run,
            trigger: self.trigger.clone(),
            cleanups,
            shared: shared.clone(),
        };
        let body = tokio::spawn((self.body)(scope.clone()));
        *lock(&self.running) = Some(body.abort_handle());
        let outcome = body.await;
        *lock(&self.running) = None;
        let error = match outcome {
            Ok(Ok(returned)) => {
                if let Some(cleanup) = returned {
                    scope.add_cleanup(cleanup);
                }
                self.status.set(LifecycleState::Idle);
                return Ok(());
            }
            Ok(Err(error)) => error.to_string(),
            Err(join) => join_failure(join),
        };
        self.status.fail(error.clone());
        Err(error)
    }

    /// Re-runs the task each time what its last run tracked changes, until shutdown. A task
    /// whose dependencies changed during each of `max_reruns` runs in a row is re-triggering
    /// itself (it writes what it tracks) and is stopped.
    pub(crate) async fn follow(self: Arc<Self>, shared: Arc<Shared>) {
        let mut in_a_row = 0;
        loop {
            let generation = self.trigger.generation();
            if self.trigger.is_dirty(generation) {
                in_a_row += 1;
                if in_a_row >= shared.max_reruns {
                    self.status.report(format!(
                        "lifecycle task `{}` re-triggered itself {in_a_row} times in a row and was stopped; \
                         a task must not set a value it tracks (read it without `track`, or move the write elsewhere)",
                        self.status.name()
                    ));
                    self.status.set(LifecycleState::Stopped);
                    return;
                }
            } else {
                in_a_row = 0;
            }
            tokio::select! {
                _ = shared.stop.cancelled() => return,
                () = self.trigger.changed_since(generation) => {}
            }
            if shared.stop.is_cancelled() {
                return;
            }
            // A failure is in the status; the task runs again on the next change.
            let _ = self.run_once(&shared).await;
        }
    }

    /// Starts a visible task once: its first run, then its re-runs. False if it had started.
    pub(crate) fn start_visible(self: &Arc<Self>, shared: &Arc<Shared>) -> bool {
        if self.started.swap(true, Ordering::SeqCst) || shared.stop.is_cancelled() {
            return false;
        }
        let (node, shared_for_task) = (self.clone(), shared.clone());
        shared.spawn(async move {
            let _ = node.run_once(&shared_for_task).await;
            node.follow(shared_for_task).await;
        });
        true
    }
}

impl Node for TaskNode {
    fn name(&self) -> Arc<str> {
        self.status.name().clone()
    }

    fn info(&self) -> super::LifecycleInfo {
        self.status.info()
    }

    fn take_cleanups(&self) -> Vec<(u64, Cleanup)> {
        lock(&self.cleanups).take()
    }

    fn stop(&self) {
        self.trigger.stop();
        if let Some(body) = lock(&self.running).take() {
            body.abort();
        }
        self.status.set(LifecycleState::Stopped);
    }
}
