//! The lease keeper: proves this instance is alive, and notices instances that are not.
//!
//! Every [`HEARTBEAT`] (or `ttl / 3`, if shorter) it renews this instance's lease and checks
//! that the store is still the one it opened ([`Store::verify`]); schedules spread their
//! ticks over the instances seen within [`MEMBERSHIP_WINDOW`], so a dead instance stops
//! being given ticks within seconds. Beside that beat, on the same period but never
//! delaying it, it asks the store to queue again the durable runs of instances whose lease
//! has expired (a process that was killed, or a machine that vanished), as their next
//! attempt, and to mark `abandoned` their other queued or running runs. About once a
//! minute it also deletes runs older than the retention period.

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

/// How often runs past the retention period are deleted.
const PRUNE: Duration = Duration::from_secs(60);

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
        self.sweeper().reap().await
    }

    fn sweeper(&self) -> Sweeper {
        Sweeper {
            store: self.store.clone(),
            retention: self.settings.retention,
        }
    }

    /// Renews the lease, after checking the store is still the one opened.
    async fn beat(&mut self) -> Result<(), Error> {
        self.store.verify().await?;
        let now = Timestamp::now();
        self.lease.heartbeat_at = now;
        self.lease.lease_until = now + signed(self.settings.ttl);
        self.store.heartbeat(&self.lease).await
    }

    /// Runs until `stop`, then releases the lease. The heartbeat keeps its own beat: the
    /// sweep of dead instances' runs and the pruning of old ones run beside it, so a slow
    /// sweep on a busy store never makes this instance look dead.
    pub async fn run(mut self, stop: CancellationToken) {
        // Sweeping as often as beating: a dead instance's runs go on elsewhere within a
        // beat of its lease's end, not a third of the lease later.
        let period = HEARTBEAT
            .min(self.settings.ttl / 3)
            .max(Duration::from_millis(50));
        let sweeping = self.sweeper().run(period, stop.clone());
        let beating = async {
            let mut beats = every(period);
            loop {
                tokio::select! {
                    _ = beats.tick() => {}
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
            }
            if let Err(error) = self.store.release_instance(&self.lease.instance).await {
                tracing::warn!(%error, "releasing the instance lease failed");
            }
        };
        tokio::join!(beating, sweeping);
    }
}

/// Sweeps up after dead instances and deletes runs past the retention period.
struct Sweeper {
    store: Arc<dyn Store>,
    retention: Option<Duration>,
}

impl Sweeper {
    /// Every `period` until `stop`: queues again the durable runs of dead instances and marks
    /// their other runs abandoned; about once a minute, prunes old runs.
    async fn run(self, period: Duration, stop: CancellationToken) {
        let mut sweeps = every(period);
        let prune_every = (PRUNE.as_millis() / period.as_millis()).max(1);
        let mut count = 0u128;
        loop {
            tokio::select! {
                _ = sweeps.tick() => {}
                _ = stop.cancelled() => return,
            }
            if let Err(error) = self.reap().await {
                tracing::error!(%error, "marking runs of dead instances abandoned failed");
            }
            if count.is_multiple_of(prune_every)
                && let Err(error) = self.prune().await
            {
                tracing::error!(%error, "deleting old runs failed");
            }
            count += 1;
        }
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
        if let Some(retention) = self.retention {
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
}

/// A steady beat of `period` whose first tick is one period away; a late tick delays the
/// next rather than bunching them.
fn every(period: Duration) -> tokio::time::Interval {
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval
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
