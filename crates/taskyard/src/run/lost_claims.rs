//! Claims this instance gives up: a durable run it claimed must stop here once its claim
//! can no longer be counted on, or it would run on two instances at once.
//!
//! Two things end a claim without the run ending:
//! - **the lease runs out.** An instance cut off from the store cannot renew its lease;
//!   once the lease has ended, a live instance takes its claimed runs over as a dead
//!   instance's. Its lease keeper tells until when its claims hold (`LeaseClock`: the
//!   lease's end less one beat), and at that time this instance stops every run it
//!   claimed and claims no more until the lease is renewed.
//! - **the store refuses a write of the attempt.** A fenced write refused means the run
//!   is another attempt's already (the clocks of two hosts disagreed, or this instance
//!   was paused); the attempt the write came from stops at once.
//!
//! A run given up is cancelled here and its end is not written: the store keeps it
//! `running` under the lost claim until an instance queues it again as its next attempt
//! (see `store::lease`), and its fence refuses anything this attempt still sends. Its body
//! stops at its next await; a body that never awaits runs on, as with any cancel.

use std::sync::atomic::Ordering;
use std::time::Duration;

use jiff::Timestamp;

use super::{ActiveRun, Runtime};
use crate::sync::lock;

impl Runtime {
    /// Gives up this instance's claims when its lease runs out and when the store refuses
    /// a write of one of its attempts, until the runtime stops accepting runs.
    pub(crate) async fn watch_claims(self) {
        let inner = &self.inner;
        let (Some(mut lease), Some(recorder)) = (inner.lease.clone(), inner.recorder.as_ref()) else {
            return;
        };
        let refused = recorder.refused();
        let stop = inner.queue_stop.clone();
        // The lease end whose runs were given up already.
        let mut given_up: Option<Timestamp> = None;
        loop {
            let holds_until = *lease.borrow_and_update();
            let left = holds_until.duration_since(Timestamp::now());
            if !left.is_positive() && given_up != Some(holds_until) {
                given_up = Some(holds_until);
                self.lease_ran_out(holds_until);
            }
            let left = Duration::try_from(left).unwrap_or(Duration::ZERO);
            tokio::select! {
                () = tokio::time::sleep(left), if !left.is_zero() => {}
                renewed = lease.changed() => {
                    // The lease keeper stopped: so does the instance.
                    if renewed.is_err() {
                        return;
                    }
                }
                () = refused.told() => {
                    for (run_id, fence) in refused.take() {
                        let run = lock(&inner.active).get(&run_id).cloned();
                        // Only the attempt the refused write came from: this instance may
                        // hold the run again under a newer claim.
                        if let Some(run) = run.filter(|run| run.claim.is_some_and(|claim| claim.fence == fence)) {
                            run.span.in_scope(|| {
                                tracing::warn!(
                                    "the store refused a write of this attempt: another instance took the run over; it stops here"
                                );
                            });
                            run.give_up();
                        }
                    }
                }
                () = stop.cancelled() => return,
            }
        }
    }

    /// Stops every run this instance claimed: its lease ran out at `holds_until` (less a
    /// beat) without being renewed.
    fn lease_ran_out(&self, holds_until: Timestamp) {
        let inner = &self.inner;
        // Before the runs are read: a run claimed before this and not yet among them sees
        // the count moved when it is (see `Runtime::give_up_if_lapsed`).
        inner.lapses.fetch_add(1, Ordering::AcqRel);
        let claimed: Vec<_> = lock(&inner.active)
            .values()
            .filter(|run| run.claim.is_some())
            .cloned()
            .collect();
        tracing::error!(
            %holds_until,
            runs = claimed.len(),
            "this instance could not renew its lease in time: it stops the durable runs it claimed, for a live instance to run them"
        );
        claimed.iter().for_each(|run| run.give_up());
    }

    /// Whether this instance may claim runs now: its lease holds (or it has none to keep).
    pub(super) fn lease_holds(&self) -> bool {
        self.inner
            .lease
            .as_ref()
            .is_none_or(|lease| *lease.borrow() > Timestamp::now())
    }

    /// How many times this instance's lease ran out: read before a claim, compared once
    /// its runs are among the active ones (see [`Runtime::give_up_if_lapsed`]).
    pub(super) fn lapses(&self) -> u64 {
        self.inner.lapses.load(Ordering::Acquire)
    }

    /// Gives `run` up if the lease ran out since its claim was asked for, when
    /// [`Runtime::lapses`] read `lapses`; `run` is among the active runs by now. The
    /// lease's end stopped the active runs as they were then, so a run added after that
    /// must look for itself.
    pub(super) fn give_up_if_lapsed(&self, run: &ActiveRun, lapses: u64) {
        if self.lapses() != lapses {
            run.give_up();
        }
    }
}
