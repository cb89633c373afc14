//! Lifecycle tasks: Qwik's `useTask$` family, for a server.
//!
//! An app has phases: **setup → tasks → serve → visible tasks**, then shutdown. In setup
//! ([`App::setup`](crate::App::setup)) the app creates signals and registers:
//!
//! - [`use_task`](Setup::use_task): runs at startup, strictly in registration order, each
//!   awaiting the previous; the server listens only after all of them succeeded. When a
//!   value it tracked changes it runs again (one run at a time, a burst of changes coalesced
//!   into one more run, the previous run's cleanups awaited first).
//! - [`use_visible_task`](Setup::use_visible_task): the same, but first run once the server
//!   is ready, idle, or first asked for a path — never blocking it.
//! - [`use_computed`](Setup::use_computed): a signal derived synchronously from others.
//! - [`use_resource`](Setup::use_resource): an async derived value, latest run wins.
//!
//! At shutdown every outstanding cleanup runs, newest first, within the shutdown grace.
//! `GET /_tasks/lifecycle` lists every node with its runs, state and last error.
//!
//! ```no_run
//! use taskyard::lifecycle::{Cleanup, Visible};
//! use taskyard::{App, TaskError};
//!
//! # async fn demo() -> taskyard::Result<()> {
//! App::new()
//!     .setup(|cx| {
//!         let enabled = cx.signal(false);
//!         cx.state(enabled.clone()); // route handlers and tasks can flip it
//!         cx.use_task("warm-cache", |_t| async { Ok::<_, TaskError>(()) });
//!         cx.use_task("feature-watch", move |t| {
//!             let enabled = enabled.clone();
//!             async move {
//!                 if t.track(&enabled) {
//!                     return Ok(Cleanup::from_fn(|| println!("feature off")));
//!                 }
//!                 Ok(Cleanup::from_fn(|| {}))
//!             }
//!         });
//!         cx.use_visible_task("report", Visible::Ready, |_t| async { Ok::<_, TaskError>(()) });
//!     })
//!     .serve()
//!     .await
//! # }
//! ```

mod cleanup;
mod computed;
mod resource;
mod scope;
mod status;
mod task;
pub(crate) mod track;
mod visible;

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use self::cleanup::{Cleanup, IntoCleanup};
pub use self::resource::{Resource, ResourceState};
pub use self::scope::Scope;
pub use self::status::{LifecycleInfo, LifecycleKind, LifecycleState};
pub use self::track::Track;
pub use self::visible::Visible;

use self::computed::ComputedNode;
use self::resource::ResourceNode;
use self::task::TaskNode;
use self::visible::RequestActivity;
use crate::config::Config;
use crate::{AppState, Error, Runtime, Signal, TaskError};

/// The default number of runs in a row, each re-triggered during itself, after which a task
/// is stopped (Qwik warns after 20 passes; a server task is stopped, loudly).
pub const DEFAULT_MAX_RERUNS: u32 = 100;

/// Something listed by `GET /_tasks/lifecycle` and stopped at shutdown.
pub(crate) trait Node: Send + Sync {
    fn name(&self) -> Arc<str>;
    fn info(&self) -> LifecycleInfo;
    /// The outstanding cleanups, each with its place in the registration order.
    fn take_cleanups(&self) -> Vec<(u64, Cleanup)>;
    /// Stops watching and aborts a run still in flight.
    fn stop(&self);
}

/// A derived node's loop: recompute or re-run on change until shutdown.
pub(crate) trait Follow: Send + Sync {
    /// Work done before the loop is spawned (a computed's first tracked value).
    fn prepare(&self) {}
    fn follow(self: Arc<Self>, shared: Arc<Shared>) -> BoxFuture<'static, ()>;
}

/// What every run of the app's lifecycle shares.
pub(crate) struct Shared {
    runtime: Runtime,
    order: AtomicU64,
    pub(crate) stop: CancellationToken,
    pub(crate) max_reruns: u32,
    tracker: TaskTracker,
}

impl Shared {
    pub(crate) fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The next place in the app-wide order of cleanup registrations.
    pub(crate) fn next_order(&self) -> u64 {
        self.order.fetch_add(1, Ordering::SeqCst)
    }

    pub(crate) fn spawn(&self, work: impl Future<Output = ()> + Send + 'static) {
        self.tracker.spawn(work);
    }
}

/// The registered nodes: all of them in registration order, and each kind apart for
/// starting.
#[derive(Default)]
struct Nodes {
    all: Vec<Arc<dyn Node>>,
    tasks: Vec<Arc<TaskNode>>,
    visible: Vec<Arc<TaskNode>>,
    computed: Vec<Arc<dyn Follow>>,
    resources: Vec<Arc<dyn Follow>>,
}

/// The lifecycle nodes registered so far.
pub(crate) struct LifecycleBuilder {
    nodes: Nodes,
    names: HashSet<String>,
    pub(crate) errors: Vec<Error>,
    max_reruns: u32,
}

impl Default for LifecycleBuilder {
    fn default() -> Self {
        LifecycleBuilder {
            nodes: Nodes::default(),
            names: HashSet::new(),
            errors: Vec::new(),
            max_reruns: DEFAULT_MAX_RERUNS,
        }
    }
}

impl LifecycleBuilder {
    fn claim(&mut self, name: &str) {
        if !self.names.insert(name.to_owned()) {
            self.errors.push(Error::InvalidName {
                name: name.to_owned(),
                message: format!(
                    "lifecycle task `{name}` is registered twice; lifecycle names must be unique"
                ),
            });
        }
    }
}

/// The setup phase: create signals, register lifecycle tasks. Given to the closure of
/// [`App::setup`](crate::App::setup).
pub struct Setup<'a> {
    pub(crate) lifecycle: &'a mut LifecycleBuilder,
    pub(crate) state: &'a mut AppState,
    pub(crate) config: &'a Config,
}

impl Setup<'_> {
    /// A new signal. Share it with `state` or by cloning it into closures.
    pub fn signal<T: Clone + PartialEq + Send + Sync + 'static>(&self, value: T) -> Signal<T> {
        Signal::new(value)
    }

    /// Shares a value (often a [`Signal`]) with every task (`cx.state::<T>()`) and route
    /// handler (a `Runtime` argument, then `runtime.state().get::<T>()`).
    pub fn state<T: Send + Sync + 'static>(&mut self, value: T) -> &mut Self {
        self.state.insert(value);
        self
    }

    /// The app's `taskyard.toml` values as signals that follow the file.
    pub fn config(&self) -> &Config {
        self.config
    }

    /// After how many runs in a row, each re-triggered by a change made while it ran, a task
    /// counts as re-triggering itself and is stopped (default [`DEFAULT_MAX_RERUNS`]).
    pub fn max_reruns(&mut self, runs: u32) -> &mut Self {
        self.lifecycle.max_reruns = runs.max(1);
        self
    }

    /// Registers a startup task. Startup tasks run in registration order, each awaiting the
    /// previous, before the server listens; a failure stops the start with the task's name
    /// and error. The body runs again whenever a value it tracked changes. It may return a
    /// [`Cleanup`] (or register several with [`Scope::cleanup`]).
    pub fn use_task<F, Fut, C>(&mut self, name: &str, body: F) -> &mut Self
    where
        F: Fn(Scope) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<C, TaskError>> + Send + 'static,
        C: IntoCleanup,
    {
        self.add_task(name, None, task::body(body))
    }

    /// Registers a task that first runs when `visible` says — after the server is ready —
    /// without blocking the server or any request. Afterwards it behaves like a
    /// [`use_task`](Setup::use_task): it re-runs when what it tracked changes.
    pub fn use_visible_task<F, Fut, C>(&mut self, name: &str, visible: Visible, body: F) -> &mut Self
    where
        F: Fn(Scope) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<C, TaskError>> + Send + 'static,
        C: IntoCleanup,
    {
        self.add_task(name, Some(visible), task::body(body))
    }

    fn add_task(&mut self, name: &str, visible: Option<Visible>, body: task::Body) -> &mut Self {
        self.lifecycle.claim(name);
        let node = Arc::new(TaskNode::new(name, visible, body));
        let nodes = &mut self.lifecycle.nodes;
        nodes.all.push(node.clone());
        match node.visible {
            None => nodes.tasks.push(node),
            Some(_) => nodes.visible.push(node),
        }
        self
    }

    /// A signal computed from others: every signal `compute` reads is tracked, and the
    /// result is recomputed when one changes (notifying only if it differs).
    ///
    /// ```
    /// # fn demo(cx: &mut taskyard::lifecycle::Setup<'_>) {
    /// let price = cx.signal(10);
    /// let with_tax = cx.use_computed("with-tax", move || price.get() * 12 / 10);
    /// assert_eq!(with_tax.get(), 12);
    /// # }
    /// ```
    pub fn use_computed<T, F>(&mut self, name: &str, compute: F) -> Signal<T>
    where
        T: Clone + PartialEq + Send + Sync + 'static,
        F: Fn() -> T + Send + Sync + 'static,
    {
        self.lifecycle.claim(name);
        let (node, output) = ComputedNode::new(name, compute);
        let node = Arc::new(node);
        self.lifecycle.nodes.all.push(node.clone());
        self.lifecycle.nodes.computed.push(node);
        output
    }

    /// An async value derived from what `body` tracks. It first runs once the startup
    /// tasks are done (without delaying the server) and again, at once, when a tracked value
    /// changes; a superseded run's cleanups run and its late result is dropped.
    pub fn use_resource<T, F, Fut>(&mut self, name: &str, body: F) -> Resource<T>
    where
        T: Clone + PartialEq + Send + Sync + 'static,
        F: Fn(Scope) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, TaskError>> + Send + 'static,
    {
        self.lifecycle.claim(name);
        let (node, resource) = ResourceNode::new(name, body);
        self.lifecycle.nodes.all.push(node.clone());
        self.lifecycle.nodes.resources.push(node);
        resource
    }
}

/// The app's lifecycle nodes, started. Cheap to clone.
#[derive(Clone)]
pub struct Lifecycle {
    inner: Arc<Inner>,
}

struct Inner {
    nodes: Nodes,
    shared: Arc<Shared>,
    activity: RequestActivity,
}

impl Lifecycle {
    pub(crate) fn new(builder: LifecycleBuilder, runtime: Runtime) -> Self {
        Lifecycle {
            inner: Arc::new(Inner {
                nodes: builder.nodes,
                shared: Arc::new(Shared {
                    runtime,
                    order: AtomicU64::new(0),
                    stop: CancellationToken::new(),
                    max_reruns: builder.max_reruns,
                    tracker: TaskTracker::new(),
                }),
                activity: RequestActivity::default(),
            }),
        }
    }

    /// Runs the startup tasks in order, each awaited, and starts following what they
    /// tracked; then starts the resources. The first failure is returned, naming the task.
    pub(crate) async fn start(&self) -> Result<(), Error> {
        let shared = &self.inner.shared;
        for computed in &self.inner.nodes.computed {
            computed.prepare();
            shared.spawn(computed.clone().follow(shared.clone()));
        }
        for task in &self.inner.nodes.tasks {
            let name = task.status.name().to_string();
            tracing::info!(task = %name, "lifecycle task starting");
            task.run_once(shared)
                .await
                .map_err(|message| Error::Lifecycle { task: name, message })?;
            shared.spawn(task.clone().follow(shared.clone()));
        }
        for resource in &self.inner.nodes.resources {
            shared.spawn(resource.clone().follow(shared.clone()));
        }
        Ok(())
    }

    /// The server listens: starts the `Ready` visible tasks and waits for idleness for the
    /// `Idle` ones.
    pub(crate) fn ready(&self) {
        let shared = &self.inner.shared;
        let mut idle = Vec::new();
        for task in &self.inner.nodes.visible {
            match task.visible {
                Some(Visible::Ready) => {
                    task.start_visible(shared);
                }
                Some(Visible::Idle) => idle.push(task.clone()),
                _ => {}
            }
        }
        if !idle.is_empty() {
            let this = self.clone();
            shared.spawn(async move {
                tokio::select! {
                    _ = this.inner.shared.stop.cancelled() => {}
                    () = this.inner.activity.idle() => {
                        for task in idle {
                            task.start_visible(&this.inner.shared);
                        }
                    }
                }
            });
        }
    }

    /// True if requests must be watched (a visible task waits for idleness or a path).
    pub(crate) fn watches_requests(&self) -> bool {
        self.inner
            .nodes
            .visible
            .iter()
            .any(|task| matches!(task.visible, Some(Visible::Idle | Visible::FirstRequest(_))))
    }

    /// A request for `path` begins: the first-request tasks it matches start beside it.
    pub(crate) fn request_begins(&self, path: &str) {
        self.inner.activity.begin();
        for task in &self.inner.nodes.visible {
            if let Some(Visible::FirstRequest(pattern)) = &task.visible
                && pattern.matches(path)
            {
                task.start_visible(&self.inner.shared);
            }
        }
    }

    pub(crate) fn request_ends(&self) {
        self.inner.activity.end();
    }

    /// Every node, in registration order.
    pub fn list(&self) -> Vec<LifecycleInfo> {
        self.inner.nodes.all.iter().map(|node| node.info()).collect()
    }

    /// Stops re-runs, lets runs in flight finish until `deadline`, then runs every
    /// outstanding cleanup, newest first, within what is left of it.
    pub(crate) async fn shutdown(&self, deadline: Duration) {
        let until = tokio::time::Instant::now() + deadline;
        let shared = &self.inner.shared;
        shared.stop.cancel();
        shared.tracker.close();
        if tokio::time::timeout_at(until, shared.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("lifecycle runs still going at the shutdown deadline were stopped");
        }
        let mut cleanups = Vec::new();
        for node in &self.inner.nodes.all {
            node.stop();
            let name = node.name();
            cleanups.extend(
                node.take_cleanups()
                    .into_iter()
                    .map(|(order, c)| (order, name.clone(), c)),
            );
        }
        cleanups.sort_by_key(|cleanup| std::cmp::Reverse(cleanup.0));
        let total = cleanups.len();
        for (done, (_, name, cleanup)) in cleanups.into_iter().enumerate() {
            match tokio::time::timeout_at(until, cleanup.run()).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    tracing::error!(task = %name, %error, "a lifecycle cleanup failed at shutdown")
                }
                Err(_) => {
                    tracing::error!(
                        task = %name,
                        skipped = total - done - 1,
                        "a lifecycle cleanup did not finish by the shutdown deadline; the rest were skipped"
                    );
                    return;
                }
            }
        }
    }
}
