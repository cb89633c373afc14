//! [`lock`]: the one way the crate takes a `std::sync::Mutex`.

use std::sync::{Mutex, MutexGuard};

/// Locks a mutex whose critical sections are a few field updates or pointer swaps that
/// never panic while held, so a poisoned lock is still consistent and is taken as it is.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
