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
//!
//! It also says, through a [`LeaseClock`], until when this instance's claims on durable
//! runs hold: an instance cut off from the store for longer than its lease must stop the
//! runs it claimed before a live instance takes them over, or both would run them at once.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::watch;
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

/// Until when this instance's claims on durable runs hold: the end of its lease as last
/// renewed, less one beat. Other instances take a run over once its instance's lease has
/// ended (by their clocks, at their next sweep), so the runs stopped at this time have
/// stopped before then, unless the clocks of the two hosts are a beat apart. Updated at
/// every renewal; `Timestamp::MIN` before the first.
pub(crate) type LeaseClock = watch::Receiver<Timestamp>;

pub(crate) struct LeaseKeeper {
    store: Arc<dyn Store>,
    lease: InstanceLease,
    settings: LeaseSettings,
    health: Arc<StoreHealth>,
    halt: Arc<Halt>,
    /// Where the claims' time is told (see [`LeaseClock`]).
    claims_hold: watch::Sender<Timestamp>,
    /// The end of the lease as last renewed (`lease.lease_until` is the last one asked
    /// for, written or not); `None` before the first renewal.
    renewed_until: Option<Timestamp>,
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
            claims_hold: watch::Sender::new(Timestamp::MIN),
            renewed_until: None,
        }
    }

    /// Until when this instance's claims hold, as each renewal moves it.
    pub fn clock(&self) -> LeaseClock {
        self.claims_hold.subscribe()
    }

    /// How often the lease is renewed and dead instances' runs swept: every
    /// [`HEARTBEAT`], or a third of the lease if shorter.
    fn period(&self) -> Duration {
        HEARTBEAT
            .min(self.settings.ttl / 3)
            .max(Duration::from_millis(50))
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
        let mut now = Timestamp::now();
        // The claims stopped holding before this renewal (the store could not be reached,
        // or this beat came late): this instance stopped the runs it claimed (see
        // `LeaseClock`). Those no live instance took over yet go back to the queue, as
        // their next attempt, before the lease is renewed: renewed first, they would stay
        // `running` here with nothing running them. The lease is let run out first, so that
        // the store sees them as a dead instance's.
        if let Some(expired_at) = self
            .renewed_until
            .filter(|until| now >= *until - signed(self.period()))
        {
            if now < expired_at {
                tokio::time::sleep(Duration::try_from(expired_at.duration_since(now)).unwrap_or_default())
                    .await;
                now = Timestamp::now();
            }
            tracing::warn!(
                %expired_at,
                "this instance's lease ran out before it could renew it; its claimed runs go back to the queue"
            );
            self.sweeper().requeue().await?;
        }
        self.lease.heartbeat_at = now;
        self.lease.lease_until = now + signed(self.settings.ttl);
        self.store.heartbeat(&self.lease).await?;
        self.renewed_until = Some(self.lease.lease_until);
        self.claims_hold
            .send_replace(self.lease.lease_until - signed(self.period()));
        Ok(())
    }

    /// Runs until `stop`, then releases the lease. The heartbeat keeps its own beat: the
    /// sweep of dead instances' runs and the pruning of old ones run beside it, so a slow
    /// sweep on a busy store never makes this instance look dead.
    pub async fn run(mut self, stop: CancellationToken) {
        // Sweeping as often as beating: a dead instance's runs go on elsewhere within a
        // beat of its lease's end, not a third of the lease later.
        let period = self.period();
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
        // Durable runs first, while the dead instances' last heartbeats are still known.
        self.requeue().await?;
        let abandoned = self.store.mark_abandoned(Timestamp::now()).await?;
        if !abandoned.is_empty() {
            tracing::warn!(runs = abandoned.len(), "marked runs of dead instances abandoned");
        }
        Ok(())
    }

    /// Queues again the claimed durable runs of instances whose lease has ended; those
    /// with no attempt left end `abandoned`.
    async fn requeue(&self) -> Result<(), Error> {
        let (requeued, out_of_attempts) = self.store.requeue_orphans(Timestamp::now()).await?;
        if !requeued.is_empty() {
            tracing::warn!(
                runs = requeued.len(),
                "queued the durable runs of dead instances again"
            );
        }
        if !out_of_attempts.is_empty() {
            tracing::warn!(
                runs = out_of_attempts.len(),
                "marked durable runs of dead instances abandoned: no attempt left"
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{RunRecord, RunStatus, Trigger};
    use crate::store::{ClaimTask, Job, MemoryStore};

    /// An instance whose claims stopped holding before it renewed its lease gives the
    /// runs it claimed back to the queue before it renews, whether its lease ran out or
    /// its renewal came within the last beat of the lease: renewed first, they would stay
    /// `running` under a live lease, with nothing running them.
    #[tokio::test]
    async fn claims_that_stopped_holding_go_back_to_the_queue_before_the_lease_is_renewed() {
        // The lease is 300 ms and its beat 100 ms: the claims hold 200 ms after a renewal.
        for (unrenewed, when) in [(350, "after the lease ran out"), (230, "in its last beat")] {
            let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
            let settings = LeaseSettings {
                ttl: Duration::from_millis(300),
                retention: None,
            };
            let mut keeper = LeaseKeeper::new(
                store.clone(),
                "a".into(),
                settings,
                Arc::default(),
                Arc::default(),
            );
            let clock = keeper.clock();
            keeper.beat().await.expect("renewed");
            let now = Timestamp::now();
            assert!(*clock.borrow() > now, "the claims hold once the lease is renewed");
            let run = RunRecord::queued(
                "noop".into(),
                serde_json::Value::Null,
                Trigger::Manual,
                "a".into(),
                now,
            );
            let job = Job {
                run_at: now,
                priority: 0,
                key: None,
                max_attempts: 3,
            };
            store.enqueue(&run, &job).await.expect("enqueued");
            let task = ClaimTask {
                name: "noop".into(),
                limit: None,
                ended: Vec::new(),
            };
            let claimed = store.claim("a", &[task], now, 1).await.expect("claimed");
            assert_eq!(claimed.len(), 1);
            // No renewal meanwhile, as while the store could not be reached.
            tokio::time::sleep(Duration::from_millis(unrenewed)).await;
            assert!(*clock.borrow() < Timestamp::now(), "the claims no longer hold");
            keeper.beat().await.expect("renewed again");
            let run = store.get_run(run.id).await.expect("read").expect("stored");
            assert_eq!(
                (run.status, run.attempt),
                (RunStatus::Queued, 2),
                "renewed {when}: {run:?}"
            );
            assert!(*clock.borrow() > Timestamp::now(), "the claims hold again");
        }
    }
}
