//! Cancels asked for through another instance: the store keeps the request
//! ([`Store::request_cancel`](crate::store::Store::request_cancel)) and the instance that
//! executes the run looks for requests about its runs a few times a second, while it has
//! any; a store that pushes notices (PostgreSQL) tells it at once, and wakes its claimer
//! when a run is queued.

use std::time::Duration;

use tokio::sync::mpsc::Receiver;

use super::{RunId, Runtime};
use crate::store::Notice;
use crate::sync::lock;

/// How often an instance with runs looks for cancels asked for elsewhere: a cancel reaches
/// its run within this, plus a store read.
const WATCH: Duration = Duration::from_millis(250);

impl Runtime {
    /// Cancels this instance's runs that someone asked to cancel through another instance,
    /// until the runtime stops accepting runs.
    pub(crate) async fn watch_cancels(self) {
        let inner = &self.inner;
        let Some(store) = inner.store.clone() else {
            return;
        };
        let stop = inner.queue_stop.clone();
        loop {
            tokio::select! {
                () = tokio::time::sleep(WATCH) => {}
                () = stop.cancelled() => return,
            }
            if lock(&inner.active).is_empty() {
                continue;
            }
            match self.bounded(store.cancel_requests(&inner.instance)).await {
                Ok(ids) => ids.into_iter().for_each(|id| self.cancel_here(id)),
                Err(error) => tracing::warn!(%error, "reading cancel requests failed; trying again"),
            }
        }
    }

    /// Acts on the store's notices until the runtime stops accepting runs.
    pub(crate) async fn follow_notices(self, mut notices: Receiver<Notice>) {
        let stop = self.inner.queue_stop.clone();
        loop {
            let notice = tokio::select! {
                notice = notices.recv() => notice,
                () = stop.cancelled() => return,
            };
            match notice {
                Some(Notice::Queued) => self.inner.wake_queue(),
                Some(Notice::Cancel { instance, run }) if instance == self.inner.instance => {
                    self.cancel_here(run)
                }
                Some(Notice::Cancel { .. }) => {}
                None => return,
            }
        }
    }

    /// Cancels `run` if it executes here.
    fn cancel_here(&self, run: RunId) {
        if let Some(active) = lock(&self.inner.active).get(&run) {
            tracing::info!(run_id = %run, "cancel asked for through another instance");
            active.cancel.cancel();
        }
    }
}
