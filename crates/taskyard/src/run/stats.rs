//! What the store knows about the cluster and its history as a whole: the instances'
//! leases and the runs counted over time, for the dashboard.

use jiff::Timestamp;

use super::Runtime;
use crate::Error;
use crate::store::{InstanceLease, RunCount};

impl Runtime {
    /// Every instance's last lease as the store keeps it (live or run out), by id; without
    /// a store, none.
    pub async fn instances(&self) -> Result<Vec<InstanceLease>, Error> {
        match &self.inner.store {
            Some(store) => self.bounded(store.instances()).await,
            None => Ok(Vec::new()),
        }
    }

    /// The runs that finished since `since`, counted by status in buckets of `bucket_ms`
    /// (see [`Store::run_counts`](crate::store::Store::run_counts)); without a store,
    /// none.
    pub async fn run_counts(&self, since: Timestamp, bucket_ms: i64) -> Result<Vec<RunCount>, Error> {
        match &self.inner.store {
            Some(store) => self.bounded(store.run_counts(since, bucket_ms)).await,
            None => Ok(Vec::new()),
        }
    }

    /// How many succeeded durable runs of `task` that were not kept
    /// (`Task::keep_succeeded(false)`) ended since `since`, by the minute (see
    /// [`Store::forgotten_runs`](crate::store::Store::forgotten_runs)); without a store, 0.
    pub async fn forgotten_runs(&self, task: &str, since: Timestamp) -> Result<u64, Error> {
        match &self.inner.store {
            Some(store) => self.bounded(store.forgotten_runs(task, since)).await,
            None => Ok(0),
        }
    }
}
