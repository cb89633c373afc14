//! The lease keeper: proves this instance is alive, and notices instances that are not.
//!
//! Every [`HEARTBEAT`] (or `ttl / 3`, if shorter) it renews this instance's lease and checks
//! that the store is still the one it opened ([`Store::verify`]); schedules spread their
//! ticks over the instances seen within [`MEMBERSHIP_WINDOW`], so a dead instance stops
//! being given ticks within seconds. Every `ttl / 3` it asks the store to queue again the
//! durable runs of instances whose lease has expired (a process that was killed, or a
//! machine that vanished), as their next attempt, and to mark `abandoned` their other
//! queued or running runs. About once a minute it also deletes runs older
//! than the retention period.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio_util::sync::CancellationToken;

use super::health::Writer;
use super::{InstanceLease, Store, StoreHealth};
use crate::Error;

/// How often an instance renews its lease.
pub(crate) const HEARTBEAT: Duration = Duration::from_secs(1);

/// An instance counts for the schedules' spread while its last heartbeat is at most this
/// old: three beats, so one slow write does not drop it.
pub(crate) const MEMBERSHIP_WINDOW: Duration = Duration::from_secs(3);

/// The instance must stop: set once, with the reason, by whoever finds out first.
#[derive(Debug, Default)]
pub(crate) struct Halt {
    pub token: CancellationToken,
    reason: OnceLock<Error>,
}

impl Halt {
    pub fn halt(&self, reason: Error) {
        let _ = self.reason.set(reason);
        self.token.cancel();
    }

    pub fn reason(&self) -> Option<&Error> {
        self.reason.get()
    }
}

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
    health: Arc<StoreHealth>,
    halt: Arc<Halt>,
}

impl LeaseKeeper {
    pub fn new(
        store: Arc<dyn Store>,
        instance: String,
        settings: LeaseSettings,
        health: Arc<StoreHealth>,
        halt: Arc<Halt>,
    ) -> Self {
        let now = Timestamp::now();
        LeaseKeeper {
            store,
            lease: InstanceLease {
                instance,
                hostname: hostname(),
                pid: std::process::id(),
                started_at: now,
                heartbeat_at: now,
                lease_until: now,
            },
            settings,
            health,
            halt,
        }
    }

    /// Renews the lease and reaps dead instances' runs.
    pub async fn tick(&mut self) -> Result<(), Error> {
        self.beat().await?;
        self.reap().await
    }

    /// Renews the lease, after checking the store is still the one opened.
    async fn beat(&mut self) -> Result<(), Error> {
        self.store.verify().await?;
        let now = Timestamp::now();
        self.lease.heartbeat_at = now;
        self.lease.lease_until = now + signed(self.settings.ttl);
        self.store.heartbeat(&self.lease).await
    }

    async fn reap(&self) -> Result<(), Error> {
        let now = Timestamp::now();
        // Durable runs first, while the dead instances' last heartbeats are still known.
        let (requeued, out_of_attempts) = self.store.requeue_orphans(now).await?;
        if !requeued.is_empty() {
            tracing::warn!(
                runs = requeued.len(),
                "queued the durable runs of dead instances again"
            );
        }
        let abandoned = self.store.mark_abandoned(now).await?;
        if !abandoned.is_empty() || !out_of_attempts.is_empty() {
            tracing::warn!(
                runs = abandoned.len() + out_of_attempts.len(),
                "marked runs of dead instances abandoned"
            );
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
        let reap_period = (self.settings.ttl / 3).max(Duration::from_millis(50));
        let period = HEARTBEAT.min(reap_period);
        let every = |of: Duration| (of.as_millis() / period.as_millis()).max(1) as u64;
        let (reap_every, prune_every) = (every(reap_period), every(Duration::from_secs(60)));
        let mut ticks = 0u64;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(period) => {}
                _ = stop.cancelled() => break,
            }
            match self.beat().await {
                Ok(()) => self.health.recovered(Writer::Lease),
                Err(error @ Error::StoreReplaced { .. }) => {
                    tracing::error!(%error, "stopping this instance");
                    self.health.failed(Writer::Lease, &error);
                    self.halt.halt(error);
                    return;
                }
                Err(error) => {
                    tracing::error!(%error, "renewing the instance lease failed");
                    self.health.failed(Writer::Lease, &error);
                }
            }
            if ticks.is_multiple_of(reap_every)
                && let Err(error) = self.reap().await
            {
                tracing::error!(%error, "marking runs of dead instances abandoned failed");
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
