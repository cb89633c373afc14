//! Reads that subscribe: while a collector is installed on this thread, every
//! [`Signal::get`](super::Signal::get) adds the signal to it as a [`Dependency`]. The lifecycle's `track(|| …)`
//! installs one to learn which signals a closure read.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;

use tokio::sync::watch;

/// Something a run depends on: resolves once it changes (never, if it can no longer
/// change).
pub trait Dependency: Send + 'static {
    fn changed(&mut self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

impl<T: Send + Sync + 'static> Dependency for watch::Receiver<T> {
    fn changed(&mut self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            if watch::Receiver::changed(self).await.is_err() {
                // Every handle of the signal is gone: it can never change again.
                std::future::pending::<()>().await;
            }
        })
    }
}

thread_local! {
    static COLLECTOR: RefCell<Option<Vec<Box<dyn Dependency>>>> = const { RefCell::new(None) };
}

/// True while a `track(|| …)` closure runs on this thread.
pub(crate) fn collecting() -> bool {
    COLLECTOR.with_borrow(Option::is_some)
}

/// Adds a subscription to the collector of this thread, if one is installed.
pub(crate) fn collect<T: Send + Sync + 'static>(receiver: watch::Receiver<T>) {
    COLLECTOR.with_borrow_mut(|collector| {
        if let Some(deps) = collector {
            deps.push(Box::new(receiver));
        }
    });
}

/// Runs `f` with a collector installed and returns what it read. Nested calls each see
/// only their own reads; a panic in `f` restores the outer collector.
pub(crate) fn collecting_in<R>(f: impl FnOnce() -> R) -> (R, Vec<Box<dyn Dependency>>) {
    struct Restore(Option<Vec<Box<dyn Dependency>>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let outer = self.0.take();
            COLLECTOR.with_borrow_mut(|collector| *collector = outer);
        }
    }
    let outer = COLLECTOR.with_borrow_mut(|collector| collector.replace(Vec::new()));
    let restore = Restore(outer);
    let value = f();
    let deps = COLLECTOR.with_borrow_mut(Option::take).unwrap_or_default();
    drop(restore);
    (value, deps)
}
