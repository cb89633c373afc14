//! Cleanups: what a lifecycle run leaves to be undone before its next run and at shutdown.
//!
//! A run registers them with [`Scope::cleanup`](super::Scope::cleanup) or returns one. Before
//! the next run's body they run awaited, in the order they were registered; a failing (or
//! panicking) cleanup is reported and the task still re-runs. At shutdown every outstanding
//! cleanup of the app runs, newest first.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use crate::TaskError;
use crate::sync::lock;

type CleanupFuture = Pin<Box<dyn Future<Output = Result<(), TaskError>> + Send>>;

/// Work to undo a lifecycle run: close what it opened, stop what it started.
///
/// ```
/// use taskyard::lifecycle::Cleanup;
///
/// let cleanup = Cleanup::new(async {
///     // close the connection the run opened
///     Ok(())
/// });
/// # drop(cleanup);
/// ```
pub struct Cleanup(CleanupFuture);

impl Cleanup {
    /// A cleanup that runs `cleanup` once.
    pub fn new(cleanup: impl Future<Output = Result<(), TaskError>> + Send + 'static) -> Self {
        Cleanup(Box::pin(cleanup))
    }

    /// A cleanup that cannot fail, from a plain closure.
    pub fn from_fn(cleanup: impl FnOnce() + Send + 'static) -> Self {
        Cleanup::new(async move {
            cleanup();
            Ok(())
        })
    }

    /// Runs it in a task of its own, so a panic is caught and reported like an error.
    pub(crate) async fn run(self) -> Result<(), String> {
        match tokio::spawn(self.0).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(error.to_string()),
            Err(join) => Err(join_failure(join)),
        }
    }
}

/// What a lifecycle body may return: `()` for nothing to undo, or a [`Cleanup`].
pub trait IntoCleanup: Send + 'static {
    /// The cleanup to run later, if any.
    fn into_cleanup(self) -> Option<Cleanup>;
}

impl IntoCleanup for () {
    fn into_cleanup(self) -> Option<Cleanup> {
        None
    }
}

impl IntoCleanup for Cleanup {
    fn into_cleanup(self) -> Option<Cleanup> {
        Some(self)
    }
}

impl IntoCleanup for Option<Cleanup> {
    fn into_cleanup(self) -> Option<Cleanup> {
        self
    }
}

/// The cleanups of one run, each with its place in the app-wide registration order.
#[derive(Default)]
pub(crate) struct Cleanups {
    inner: Mutex<CleanupList>,
}

#[derive(Default)]
struct CleanupList {
    items: Vec<(u64, Cleanup)>,
    /// Set once they have been taken to run; a cleanup registered later runs at once.
    closed: bool,
}

impl Cleanups {
    /// Adds one; if this run's cleanups have already run, it is handed back to run now.
    pub(crate) fn push(&self, order: u64, cleanup: Cleanup) -> Option<Cleanup> {
        let mut list = lock(&self.inner);
        if list.closed {
            return Some(cleanup);
        }
        list.items.push((order, cleanup));
        None
    }

    /// Takes them all, in registration order, and closes the list.
    pub(crate) fn take(&self) -> Vec<(u64, Cleanup)> {
        let mut list = lock(&self.inner);
        list.closed = true;
        std::mem::take(&mut list.items)
    }
}

/// The message of a task that failed to join: its panic payload, or why it stopped.
pub(crate) fn join_failure(join: tokio::task::JoinError) -> String {
    if join.is_cancelled() {
        return "it was cancelled".to_owned();
    }
    format!("panicked: {}", crate::error::panic_message(&*join.into_panic()))
}
