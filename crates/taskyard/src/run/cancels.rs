//! Cancels asked for through another instance: the store keeps the request
//! ([`Store::request_cancel`](crate::store::Store::request_cancel)) and the instance that
//! executes the run looks for requests about its runs a few times a second, while it has any.

use std::time::Duration;

use super::Runtime;
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
                Ok(ids) => {
                    let active = lock(&inner.active);
                    for id in ids {
                        if let Some(run) = active.get(&id) {
                            tracing::info!(run_id = %id, "cancel asked for through another instance");
                            run.cancel.cancel();
                        }
                    }
                }
                Err(error) => tracing::warn!(%error, "reading cancel requests failed; trying again"),
            }
        }
    }
}
