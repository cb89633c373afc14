//! The lease keeper: proves this instance is alive, and notices instances that are not.
//!
//! Every `ttl / 3` it renews this instance's lease in the store and asks the store to mark
//! `abandoned` the queued or running runs of instances whose lease has expired (a process
//! that was killed, or a machine that vanished). About once a minute it also deletes runs
//! older than the retention period.

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio_util::sync::CancellationToken;

use super::{InstanceLease, Store};
use crate::Error;

/// Lease and retention settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LeaseSettings {
    /// How long an instance counts as alive after its last heartbeat.
    pub ttl: Duration,
    /// Finished runs older than this are deleted; `None` keeps them forever.
    pub retention: Option<Duration>,
}

impl Default for LeaseSettings {
    fn default() -> Self {
        LeaseSettings {
            ttl: Duration::from_secs(30),
            retention: Some(Duration::from_secs(7 * 24 * 3600)),
        }
    }
}

pub(crate) struct LeaseKeeper {
    store: Arc<dyn Store>,
    lease: InstanceLease,
    settings: LeaseSettings,
}

impl LeaseKeeper {
    pub fn new(store: Arc<dyn Store>, instance: String, settings: LeaseSettings) -> Self {
        let now = Timestamp::now();
        LeaseKeeper {
            store,
            lease: InstanceLease {
                instance,
                hostname: hostname(),
                pid: std::process::id(),
                started_at: now,
                lease_until: now,
            },
            settings,
        }
    }

    /// Renews the lease and reaps dead instances' runs.
    pub async fn tick(&mut self) -> Result<(), Error> {
        let now = Timestamp::now();
        self.lease.lease_until = now + signed(self.settings.ttl);
        self.store.heartbeat(&self.lease).await?;
        let abandoned = self.store.mark_abandoned(now).await?;
        if !abandoned.is_empty() {
            tracing::warn!(runs = abandoned.len(), "marked runs of dead instances abandoned");
        }
        Ok(())
    }

    async fn prune(&self) -> Result<(), Error> {
        if let Some(retention) = self.settings.retention {
            let pruned = self
                .store
                .prune_runs(Timestamp::now() - signed(retention))
                .await?;
            if pruned > 0 {
                tracing::info!(runs = pruned, "deleted runs past the retention period");
            }
        }
        Ok(())
    }

    /// Runs until `stop`, then releases the lease.
    pub async fn run(mut self, stop: CancellationToken) {
        let period = (self.settings.ttl / 3).max(Duration::from_millis(50));
        let prune_every = (Duration::from_secs(60).as_millis() / period.as_millis()).max(1) as u64;
        let mut ticks = 0u64;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(period) => {}
                _ = stop.cancelled() => break,
            }
            if let Err(error) = self.tick().await {
                tracing::error!(%error, "renewing the instance lease failed");
            }
            if ticks.is_multiple_of(prune_every)
                && let Err(error) = self.prune().await
            {
                tracing::error!(%error, "deleting old runs failed");
            }
            ticks += 1;
        }
        if let Err(error) = self.store.release_instance(&self.lease.instance).await {
            tracing::warn!(%error, "releasing the instance lease failed");
        }
    }
}

fn signed(duration: Duration) -> SignedDuration {
    SignedDuration::try_from(duration).unwrap_or(SignedDuration::MAX)
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}
