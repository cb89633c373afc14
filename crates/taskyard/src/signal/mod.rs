//! [`Signal`]: a value that tasks, route handlers and schedules share and react to.
//!
//! Built on `tokio::sync::watch`: one current value, any number of readers, and a change
//! notification that never blocks the writer. A write that leaves the value equal
//! notifies no one, so a `set` of the same value triggers nothing.

use std::fmt;
use std::sync::Arc;

use tokio::sync::watch;

mod reads;

pub use reads::Dependency;
pub(crate) use reads::collecting_in;
use reads::{collect, collecting};

/// A shared value with change notification. Cheap to clone; clones are the same signal.
///
/// ```
/// use taskyard::Signal;
///
/// let maintenance = Signal::new(false);
/// let seen = maintenance.clone();
/// maintenance.set(true);
/// assert!(seen.get());
/// ```
pub struct Signal<T> {
    sender: Arc<watch::Sender<T>>,
}

impl<T> Clone for Signal<T> {
    fn clone(&self) -> Self {
        Signal {
            sender: self.sender.clone(),
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for Signal<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Signal").field(&*self.sender.borrow()).finish()
    }
}

impl<T: Clone + PartialEq + Send + Sync + 'static> Signal<T> {
    /// A signal holding `value`.
    pub fn new(value: T) -> Self {
        Signal {
            sender: Arc::new(watch::Sender::new(value)),
        }
    }

    /// The current value. Read inside a lifecycle task's `track(|| …)`, the signal becomes
    /// one of that task's dependencies.
    pub fn get(&self) -> T {
        if collecting() {
            // Subscribe before reading, so a change right after the read is not missed.
            let mut receiver = self.sender.subscribe();
            let value = receiver.borrow_and_update().clone();
            collect(receiver);
            return value;
        }
        self.sender.borrow().clone()
    }

    /// Sets the value; subscribers are told only if it differs from the current one.
    pub fn set(&self, value: T) {
        self.sender.send_if_modified(|current| {
            if *current == value {
                false
            } else {
                *current = value;
                true
            }
        });
    }

    /// Changes the value in place; subscribers are told only if it ends up different.
    pub fn update(&self, change: impl FnOnce(&mut T)) {
        self.sender.send_if_modified(|current| {
            let before = current.clone();
            change(current);
            *current != before
        });
    }

    /// A receiver that sees every later change (`changed().await`, then `borrow()`).
    pub fn subscribe(&self) -> watch::Receiver<T> {
        self.sender.subscribe()
    }

    /// True if both handles are the same signal.
    pub fn same_as(&self, other: &Signal<T>) -> bool {
        Arc::ptr_eq(&self.sender, &other.sender)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_real_changes_notify() {
        let signal = Signal::new(1);
        let mut rx = signal.subscribe();
        signal.set(1);
        signal.update(|v| *v = 1);
        assert!(!rx.has_changed().expect("open"), "same value notified");
        signal.update(|v| *v += 1);
        assert!(rx.has_changed().expect("open"));
        rx.changed().await.expect("open");
        assert_eq!(*rx.borrow_and_update(), 2);
        assert_eq!(signal.clone().get(), 2);
        assert!(signal.same_as(&signal.clone()));
        assert!(!signal.same_as(&Signal::new(2)));
    }
}
