//! [`Cancel`]: a run's (or an attempt's) cancellation, which costs a flag until something
//! waits on it.
//!
//! Most runs end without anyone waiting for their cancellation: a body that never awaits, or
//! one that finishes on its first poll. A `CancellationToken` for each would be an
//! allocation, a lock when it is cancelled at the attempt's end and another when it is
//! dropped (measured: about a tenth of a no-op run). The token is made the first time a
//! body or the runtime has to wait on it, and cancelled at once if the flag was set first.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio_util::sync::CancellationToken;

/// A cancellation made of a flag and, once something waits on it, a token.
#[derive(Debug, Default)]
pub(crate) struct Cancel {
    cancelled: AtomicBool,
    token: OnceLock<CancellationToken>,
}

impl Cancel {
    /// A cancellation that follows `token` (a child of the run's, for one attempt of
    /// several): cancelling the token's parent cancels this one.
    pub fn with_token(token: CancellationToken) -> Self {
        Cancel {
            cancelled: AtomicBool::new(false),
            token: OnceLock::from(token),
        }
    }

    /// Cancels, waking whatever waits on the token.
    pub fn cancel(&self) {
        // Both sides use `SeqCst`: either `token` sees the flag after making the token, or
        // this sees the token after setting the flag; never neither.
        self.cancelled.store(true, Ordering::SeqCst);
        if let Some(token) = self.token.get() {
            token.cancel();
        }
    }

    /// True once cancelled, here or through the token's parent.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst) || self.token.get().is_some_and(CancellationToken::is_cancelled)
    }

    /// The token, made now if nothing asked for it before.
    pub fn token(&self) -> &CancellationToken {
        let token = self.token.get_or_init(CancellationToken::new);
        if self.cancelled.load(Ordering::SeqCst) {
            token.cancel();
        }
        token
    }

    /// A child token of this cancellation, for one attempt among several.
    pub fn child(&self) -> Cancel {
        Cancel::with_token(self.token().child_token())
    }

    /// Completes once cancelled.
    pub async fn cancelled(&self) {
        if self.is_cancelled() {
            return;
        }
        self.token().cancelled().await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_flag_set_before_the_token_is_made_cancels_the_token() {
        let cancel = Cancel::default();
        cancel.cancel();
        assert!(cancel.is_cancelled());
        assert!(cancel.token().is_cancelled());
    }

    #[test]
    fn a_token_made_first_is_cancelled_with_the_flag() {
        let cancel = Cancel::default();
        let token = cancel.token().clone();
        assert!(!token.is_cancelled());
        cancel.cancel();
        assert!(token.is_cancelled());
    }

    #[test]
    fn a_child_follows_its_parent_and_not_the_other_way() {
        let parent = Cancel::default();
        let child = parent.child();
        child.cancel();
        assert!(!parent.is_cancelled());
        let second = parent.child();
        parent.cancel();
        assert!(second.is_cancelled());
        assert!(second.token().is_cancelled());
    }

    #[tokio::test]
    async fn a_waiter_wakes_when_cancelled_from_another_task() {
        let cancel = std::sync::Arc::new(Cancel::default());
        let waiter = tokio::spawn({
            let cancel = cancel.clone();
            async move { cancel.cancelled().await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!waiter.is_finished());
        cancel.cancel();
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .expect("joined");
    }
}
