//! [`StoreHealth`]: whether the store is taking writes, as the record writer and the
//! lease keeper last found it.
//!
//! Nothing polls the store for this: the writes the instance makes anyway (run records,
//! heartbeats) say whether it works. `GET /_tasks/health` reads it, so a load balancer
//! stops sending requests to an instance whose store is failing and sends them again once
//! it recovers.

use std::sync::Mutex;

use jiff::Timestamp;
use serde::Serialize;

use crate::Error;

/// Since when the store has been failing, and its latest error.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoreFailure {
    /// When the first of the failing writes failed.
    pub since: Timestamp,
    /// The latest error, as text.
    pub error: String,
}

/// Which of the instance's writes found the store failing. Each clears only its own
/// failure, so a heartbeat that gets through does not hide run records that do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Writer {
    /// The record writer (run records).
    Records = 0,
    /// The lease keeper (heartbeats, the file check).
    Lease = 1,
}

/// Whether the store takes writes; shared by everything that writes to it.
#[derive(Debug, Default)]
pub struct StoreHealth {
    failing: Mutex<[Option<StoreFailure>; 2]>,
}

impl StoreHealth {
    /// A write of `writer` failed with `error`.
    pub(crate) fn failed(&self, writer: Writer, error: &Error) {
        let mut failing = self.lock();
        let slot = &mut failing[writer as usize];
        let since = slot.as_ref().map_or_else(Timestamp::now, |failure| failure.since);
        *slot = Some(StoreFailure {
            since,
            error: error.to_string(),
        });
    }

    /// A write of `writer` succeeded.
    pub(crate) fn recovered(&self, writer: Writer) {
        let mut failing = self.lock();
        if let Some(failure) = failing[writer as usize].take() {
            tracing::info!(since = %failure.since, ?writer, "the store takes writes again");
        }
    }

    /// `None` while the store works, else since when and why it fails (the longest
    /// failing writer's).
    pub fn failure(&self) -> Option<StoreFailure> {
        self.lock()
            .iter()
            .flatten()
            .min_by_key(|failure| failure.since)
            .cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, [Option<StoreFailure>; 2]> {
        // Held for an assignment only; nothing can panic while it is held.
        self.failing
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
