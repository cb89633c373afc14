//! When a visible task first runs: once the server is ready, once it is idle, or on the
//! first request to a matching path. None of them delays the server or a request.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use crate::pattern::PathPattern;

/// When a [`use_visible_task`](super::Setup::use_visible_task) runs for the first time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visible {
    /// As soon as the server listens (Qwik's `document-ready`).
    Ready,
    /// Once the server listens and has had no request in flight for a moment (Qwik's
    /// `document-idle`). A server that is never idle never runs it.
    Idle,
    /// The first time a request's path matches the pattern (Qwik's default, "when
    /// visible"). The request is not delayed: the task starts beside it.
    FirstRequest(PathPattern),
}

impl Visible {
    /// [`Visible::FirstRequest`] for a pattern such as `/hello/**` (`*` is one segment,
    /// `**` any number).
    pub fn first_request(pattern: &str) -> Self {
        Visible::FirstRequest(PathPattern::new(pattern))
    }
}

/// How long the server must have had no request in flight to count as idle.
pub(crate) const IDLE_QUIET: Duration = Duration::from_millis(100);

/// Requests in flight and seen, for `Visible::Idle`.
#[derive(Default)]
pub(crate) struct RequestActivity {
    in_flight: AtomicUsize,
    seen: AtomicU64,
}

impl RequestActivity {
    pub(crate) fn begin(&self) {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.seen.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn end(&self) {
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
    }

    /// Resolves once no request was in flight or started during a whole quiet period.
    pub(crate) async fn idle(&self) {
        loop {
            let seen = self.seen.load(Ordering::SeqCst);
            tokio::time::sleep(IDLE_QUIET).await;
            if self.in_flight.load(Ordering::SeqCst) == 0 && self.seen.load(Ordering::SeqCst) == seen {
                return;
            }
        }
    }
}
