//! `use_resource`: a value computed by an async body from what it tracks. When a tracked
//! value changes a new run starts at once; the superseded run's cleanups run and its result,
//! whenever it comes, is dropped — the latest run wins. An optional timeout rejects a run
//! that takes too long and runs its cleanups.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::task::AbortHandle;

use super::cleanup::{Cleanup, Cleanups, join_failure};
use super::status::{LifecycleKind, LifecycleState, Status};
use super::track::Rerun;
use super::{Follow, LifecycleInfo, Node, Scope, Shared};
use crate::sync::lock;
use crate::{Signal, TaskError};

/// The value of a [`Resource`].
#[derive(Debug, Clone, PartialEq)]
pub enum ResourceState<T> {
    /// A run is in flight (or none has finished yet).
    Pending,
    /// The latest run returned this.
    Resolved(T),
    /// The latest run failed, panicked or timed out; the message says which.
    Rejected(String),
}

impl<T> ResourceState<T> {
    /// True while its first value is not there yet.
    pub fn is_pending(&self) -> bool {
        matches!(self, ResourceState::Pending)
    }
}

type BodyFuture<T> = Pin<Box<dyn Future<Output = Result<T, TaskError>> + Send>>;

/// An async derived value (`cx.use_resource(…)`). Cheap to clone.
///
/// Read it with [`get`](Resource::get), wait for it with [`settled`](Resource::settled), or
/// track its [`signal`](Resource::signal) from another lifecycle task.
pub struct Resource<T> {
    node: Arc<ResourceNode<T>>,
}

impl<T> Clone for Resource<T> {
    fn clone(&self) -> Self {
        Resource {
            node: self.node.clone(),
        }
    }
}

impl<T: Clone + PartialEq + Send + Sync + 'static> Resource<T> {
    /// Rejects a run that takes longer than `limit` (its cleanups run, its body is
    /// dropped). Set it while setting up, before the app starts.
    pub fn timeout(self, limit: Duration) -> Self {
        *lock(&self.node.timeout) = Some(limit);
        self
    }

    /// The current state.
    pub fn get(&self) -> ResourceState<T> {
        self.node.value.get()
    }

    /// The state as a signal, to `track` from a lifecycle task.
    pub fn signal(&self) -> &Signal<ResourceState<T>> {
        &self.node.value
    }

    /// Waits until the current run settles and returns its outcome.
    pub async fn settled(&self) -> ResourceState<T> {
        let mut changes = self.node.value.subscribe();
        loop {
            let state = changes.borrow_and_update().clone();
            if !state.is_pending() {
                return state;
            }
            if changes.changed().await.is_err() {
                return state;
            }
        }
    }
}

pub(crate) struct ResourceNode<T> {
    status: Status,
    body: Box<dyn Fn(Scope) -> BodyFuture<T> + Send + Sync>,
    value: Signal<ResourceState<T>>,
    trigger: Arc<Rerun>,
    timeout: Mutex<Option<Duration>>,
    /// Runs whose cleanups have not run yet, with their bodies (aborted at shutdown).
    runs: Mutex<Vec<(Arc<Cleanups>, AbortHandle)>>,
    /// Held while a run publishes its result or a new run begins, so a superseded result
    /// can never land after a newer run's `Pending`.
    publish: Mutex<()>,
}

impl<T: Clone + PartialEq + Send + Sync + 'static> ResourceNode<T> {
    pub(crate) fn new<F, Fut>(name: &str, body: F) -> (Arc<Self>, Resource<T>)
    where
        F: Fn(Scope) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, TaskError>> + Send + 'static,
    {
        let node = Arc::new(ResourceNode {
            status: Status::new(name.into(), LifecycleKind::Resource),
            body: Box::new(move |scope| Box::pin(body(scope))),
            value: Signal::new(ResourceState::Pending),
            trigger: Arc::default(),
            timeout: Mutex::new(None),
            runs: Mutex::default(),
            publish: Mutex::new(()),
        });
        let resource = Resource { node: node.clone() };
        (node, resource)
    }

    /// Supersedes the runs before it (their cleanups run, awaited in order) and starts a
    /// new one. Returns its generation.
    async fn start_run(self: &Arc<Self>, shared: &Arc<Shared>) -> u64 {
        let generation = {
            let _publishing = lock(&self.publish);
            self.value.set(ResourceState::Pending);
            self.trigger.begin_run()
        };
        let superseded = std::mem::take(&mut *lock(&self.runs));
        for (cleanups, _) in superseded {
            for (_, cleanup) in cleanups.take() {
                if let Err(error) = cleanup.run().await {
                    self.status.report(format!("a cleanup failed: {error}"));
                }
            }
        }
        let cleanups = Arc::new(Cleanups::default());
        let scope = Scope {
            name: self.status.name().clone(),
            generation,
            run: self.status.begin(),
            trigger: self.trigger.clone(),
            cleanups: cleanups.clone(),
            shared: shared.clone(),
        };
        let body = tokio::spawn((self.body)(scope));
        lock(&self.runs).push((cleanups.clone(), body.abort_handle()));
        let (node, limit) = (self.clone(), *lock(&self.timeout));
        tokio::spawn(async move {
            let abort = body.abort_handle();
            let joined = match limit {
                None => body.await,
                Some(limit) => match tokio::time::timeout(limit, body).await {
                    Ok(joined) => joined,
                    Err(_) => {
                        abort.abort();
                        for (_, cleanup) in cleanups.take() {
                            if let Err(error) = cleanup.run().await {
                                node.status.report(format!("a cleanup failed: {error}"));
                            }
                        }
                        Ok(Err(TaskError::new(format!(
                            "timed out after {}ms",
                            limit.as_millis()
                        ))))
                    }
                },
            };
            let state = match joined {
                Ok(Ok(value)) => ResourceState::Resolved(value),
                Ok(Err(error)) => ResourceState::Rejected(error.to_string()),
                Err(join) => ResourceState::Rejected(join_failure(join)),
            };
            let _publishing = lock(&node.publish);
            if node.trigger.generation() != generation {
                return; // superseded: a newer run owns the value
            }
            match &state {
                ResourceState::Rejected(error) => node.status.fail(error.clone()),
                _ => node.status.set(LifecycleState::Idle),
            }
            node.value.set(state);
        });
        generation
    }
}

impl<T: Clone + PartialEq + Send + Sync + 'static> Follow for ResourceNode<T> {
    fn follow(self: Arc<Self>, shared: Arc<Shared>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            loop {
                let generation = self.start_run(&shared).await;
                tokio::select! {
                    _ = shared.stop.cancelled() => return,
                    () = self.trigger.changed_since(generation) => {}
                }
            }
        })
    }
}

impl<T: Send + Sync + 'static> Node for ResourceNode<T> {
    fn name(&self) -> Arc<str> {
        self.status.name().clone()
    }

    fn info(&self) -> LifecycleInfo {
        self.status.info()
    }

    fn take_cleanups(&self) -> Vec<(u64, Cleanup)> {
        lock(&self.runs)
            .iter()
            .flat_map(|(cleanups, _)| cleanups.take())
            .collect()
    }

    fn stop(&self) {
        self.trigger.stop();
        for (_, body) in lock(&self.runs).iter() {
            body.abort();
        }
        self.status.set(LifecycleState::Stopped);
    }
}
