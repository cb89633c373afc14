//! Dependency tracking: which signals a lifecycle run read through `track`, and the
//! watchers that wake the task when one of them changes.
//!
//! `track(&signal)` subscribes to that signal. `track(|| …)` runs the closure with a
//! collector installed on this thread, so every [`Signal::get`] inside it subscribes too.
//! Each subscription becomes a small watcher task tagged with the run's generation; a change
//! marks the node dirty for that generation and wakes it through one [`Notify`] permit, so a
//! burst of changes becomes one wake-up.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Notify;
use tokio::task::AbortHandle;

use crate::Signal;
use crate::signal::{Dependency, collecting_in};
use crate::sync::lock;

/// The dependencies one `track` call collected.
#[doc(hidden)]
pub struct Collected(pub(crate) Vec<Box<dyn Dependency>>);

/// What `track` accepts: a signal (`track(&signal)` returns its value) or a closure
/// (`track(|| a.get() + b.get())` returns what the closure returns, and every signal it
/// reads is tracked).
pub trait Track<R>: sealed::Sealed {
    #[doc(hidden)]
    fn collect(self) -> (R, Collected);
}

mod sealed {
    pub trait Sealed {}
}

impl<T: Clone + PartialEq + Send + Sync + 'static> sealed::Sealed for &Signal<T> {}

impl<T: Clone + PartialEq + Send + Sync + 'static> Track<T> for &Signal<T> {
    fn collect(self) -> (T, Collected) {
        // Subscribe before reading, so a change right after the read is not missed.
        let mut receiver = self.subscribe();
        let value = receiver.borrow_and_update().clone();
        (value, Collected(vec![Box::new(receiver)]))
    }
}

impl<F: FnOnce() -> R, R> sealed::Sealed for F {}

impl<F: FnOnce() -> R, R> Track<R> for F {
    fn collect(self) -> (R, Collected) {
        let (value, deps) = collecting_in(self);
        (value, Collected(deps))
    }
}

/// Wakes one lifecycle node when something its current run tracked changes.
#[derive(Default)]
pub(crate) struct Rerun {
    wake: Notify,
    /// The generation of the run now current; bumped as each run begins.
    generation: AtomicU64,
    /// The highest generation one of whose dependencies changed.
    dirty: AtomicU64,
    watchers: Mutex<Vec<AbortHandle>>,
}

impl Rerun {
    /// Starts a new run: the previous runs' watchers stop, and its generation is returned.
    pub(crate) fn begin_run(&self) -> u64 {
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        for watcher in lock(&self.watchers).drain(..) {
            watcher.abort();
        }
        generation
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Watches `deps` on behalf of run `generation`.
    pub(crate) fn watch(self: &std::sync::Arc<Self>, generation: u64, deps: Vec<Box<dyn Dependency>>) {
        let mut watchers = lock(&self.watchers);
        for mut dep in deps {
            let trigger = self.clone();
            let watcher = tokio::spawn(async move {
                dep.changed().await;
                trigger.dirty.fetch_max(generation, Ordering::SeqCst);
                trigger.wake.notify_one();
            });
            watchers.push(watcher.abort_handle());
        }
    }

    /// True if a dependency of run `generation` has changed since that run tracked it.
    pub(crate) fn is_dirty(&self, generation: u64) -> bool {
        self.dirty.load(Ordering::SeqCst) >= generation
    }

    /// Waits until a dependency of run `generation` changes. Returns at once if one already
    /// has; wake-ups left over from earlier runs are ignored.
    pub(crate) async fn changed_since(&self, generation: u64) {
        loop {
            if self.is_dirty(generation) {
                return;
            }
            self.wake.notified().await;
        }
    }

    /// Stops every watcher (at shutdown).
    pub(crate) fn stop(&self) {
        self.begin_run();
    }
}
