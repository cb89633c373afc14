//! A durable tick: its claim in the ledger and its run's job are one write. An instance
//! that dies around that write leaves both (the run waits in the queue, and any live
//! instance runs it) or neither (the tick is unclaimed, and another instance claims it
//! after the worker grace), never a tick claimed with no run.
//!
//! Since the claim is now the run's start, the overlap policy is asked before it, and the
//! trigger (and a skip) are logged only by the instance whose claim landed. A tick the
//! policy skips is claimed alone, so that no other instance runs it. A `queue` tick waits
//! for its turn unclaimed, on every instance whose timer has it (the others after the
//! worker grace): an instance that dies while its tick waits leaves the tick to the
//! others, and the first whose turn comes claims it with its run.

use jiff::Timestamp;

use super::tick::{Held, Skip, Turn, keep_latest};
use super::{Entry, Origin, Scheduler};
use crate::store::TickClaim;
use crate::sync::lock;
use crate::{Error, RunHandle};

/// What a durable tick's claim did.
pub(super) enum Claimed<'e> {
    /// Claimed here, its run queued in the same write.
    Started(RunHandle, Held<'e>),
    /// Claimed here and skipped by the overlap policy.
    Skipped(Skip),
    /// Claimed before, by another instance or call: nothing was written here.
    Elsewhere,
    /// The app stopped while a `queue` tick waited for its turn: nothing was written.
    Stopped,
}

impl Scheduler {
    /// True when `entry`'s ticks are claimed with their runs in one write: their runs are
    /// durable (the schedule's or its task's) and there is a store.
    pub(super) fn claims_with_run(&self, entry: &Entry) -> bool {
        self.inner.store.is_some() && entry.runs_anywhere
    }

    /// Asks the overlap policy about `claim`'s tick, then claims it: with its run in one
    /// write when the tick goes, alone when the policy skips it.
    pub(super) async fn claim_with_run<'e>(
        &self,
        entry: &'e Entry,
        claim: &TickClaim,
        origin: Origin,
    ) -> Result<Claimed<'e>, Error> {
        let def = &entry.def;
        let tick = claim.tick;
        match self.turn(entry, tick, origin).await {
            Turn::Go(held) => {
                let started = self
                    .inner
                    .runtime
                    .start_with_tick(def.request(tick), &made_now(claim))
                    .await?;
                let Some(handle) = started else {
                    return Ok(Claimed::Elsewhere);
                };
                self.claimed_here(entry, tick, origin);
                keep_latest(entry, &handle);
                Ok(Claimed::Started(handle, held.started()))
            }
            Turn::Skipped(skip) => {
                if !self.claim_alone(&made_now(claim)).await? {
                    return Ok(Claimed::Elsewhere);
                }
                self.claimed_here(entry, tick, origin);
                self.log_skipped(def, tick, &skip);
                Ok(Claimed::Skipped(skip))
            }
            Turn::Stopped => Ok(Claimed::Stopped),
        }
    }

    /// One tick of a schedule whose ticks are claimed with their runs (see
    /// [`Scheduler::claims_with_run`]), from its claim to its run's end in the log.
    pub(super) async fn run_durable_tick(&self, entry: &Entry, tick: Timestamp, origin: Origin) {
        let def = &entry.def;
        let claim = self.claim_when_due(def, tick).await;
        if self.inactive(entry) {
            // Claimed alone, so that the skip is logged once in the cluster.
            if matches!(self.claim_alone(&claim).await, Ok(true)) {
                self.log_inactive(def, tick);
            }
            return;
        }
        let claimed = match self.claim_with_run(entry, &claim, origin).await {
            // The failed write either landed (the run is queued, and the claim made again
            // finds the tick claimed) or did not (and the claim made again lands).
            Err(error) => {
                self.again(def.name.as_ref(), error, || {
                    self.claim_with_run(entry, &claim, origin)
                })
                .await
            }
            claimed => claimed,
        };
        match claimed {
            Ok(Claimed::Started(handle, held)) => {
                // A `queue` schedule's turn is held until the run ends, so that its next
                // tick here waits behind this one; the others' holds end with the start.
                let queue = matches!(held, Held::Queue(_));
                if !queue {
                    drop(held);
                }
                if self.inner.log.is_enabled() {
                    Box::pin(self.follow_run(def, handle)).await;
                } else if queue {
                    drop(handle.outcome().await);
                }
            }
            Ok(Claimed::Skipped(_) | Claimed::Elsewhere | Claimed::Stopped) => {}
            Err(error) => self.log_claim_failed(def, tick, &error),
        }
    }

    /// Claims `claim`'s tick with no run: true when this call made the claim.
    async fn claim_alone(&self, claim: &TickClaim) -> Result<bool, Error> {
        match &self.inner.store {
            Some(store) => store.claim_tick(claim).await,
            None => Ok(true),
        }
    }

    /// Notes a tick claimed here: the schedule's last tick, and its trigger in the log.
    fn claimed_here(&self, entry: &Entry, tick: Timestamp, origin: Origin) {
        lock(&entry.state).last_tick = Some(tick.as_millisecond());
        self.log_trigger(&entry.def, tick, origin);
    }
}

/// `claim` as it is made now, after its turn came (a `queue` tick's may come long after
/// the claim was drawn up): the ledger's `claimed_at` says when the tick was claimed.
fn made_now(claim: &TickClaim) -> TickClaim {
    TickClaim {
        claimed_at: Timestamp::now(),
        ..claim.clone()
    }
}
