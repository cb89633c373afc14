//! Claims whose answer never came: the store may have committed them all the same (a claim
//! answered after the store timeout, or one whose connection broke after the commit), their
//! runs then held by this instance and executed by none until it stopped. Each claim of an
//! instance is made at a millisecond of its own, which the claim writes as its runs'
//! `run_at`, so that its runs can be found and given back to the queue
//! (`Store::release_claim`) by one task of the instance, claim after claim.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::store::{ClaimTask, Store};

/// How long the giver waits after a give-back the store did not take.
const AGAIN: Duration = Duration::from_secs(1);

/// A time for each claim of an instance, each in a later millisecond than the one before
/// (the stores keep milliseconds): a claim writes it as its runs' `run_at`, so that it
/// names them in the store if the claim's answer is lost. The clock's time, or the next
/// millisecond for a claim made in the same one as the last.
#[derive(Default)]
pub(super) struct ClaimClock {
    last: i64,
}

impl ClaimClock {
    pub(super) fn next(&mut self) -> Timestamp {
        let now = Timestamp::now();
        if now.as_millisecond() > self.last {
            self.last = now.as_millisecond();
            return now;
        }
        self.last += 1;
        Timestamp::from_millisecond(self.last).unwrap_or(now)
    }
}

/// A claim whose answer never came, for the giver.
pub(super) struct LostAnswer {
    /// The claim's time ([`ClaimClock::next`]).
    pub(super) now: Timestamp,
    /// The claim answered an error (after its time, or at once): the server may commit it
    /// after its client saw the error, so it is given back once more a store timeout later.
    pub(super) erred: bool,
}

/// Where an instance's claimer sends its claims whose answers never came.
pub(super) type LostAnswers = mpsc::UnboundedSender<LostAnswer>;

/// What the giver needs of the instance: its store and name, its tasks' names (`tasks`),
/// the store timeout that bounds each give-back, and the queue's stop, past which this
/// instance's lease is released and a live instance queues its claimed runs again.
pub(super) struct Giver {
    pub(super) store: Arc<dyn Store>,
    pub(super) instance: String,
    pub(super) tasks: Vec<ClaimTask>,
    pub(super) timeout: Duration,
    pub(super) stop: CancellationToken,
}

impl Giver {
    /// Gives back the runs of each lost answer `lost` brings, in order, until the queue
    /// stops; an erred claim once more a store timeout later.
    pub(super) async fn run(self, mut lost: mpsc::UnboundedReceiver<LostAnswer>) {
        let mut again: VecDeque<(Instant, Timestamp)> = VecDeque::new();
        loop {
            let next_again = again.front().map(|(at, _)| *at);
            let now = tokio::select! {
                answer = lost.recv() => {
                    let Some(answer) = answer else { return };
                    if answer.erred {
                        again.push_back((Instant::now() + self.timeout, answer.now));
                    }
                    answer.now
                }
                () = sleep_until(next_again), if next_again.is_some() => match again.pop_front() {
                    Some((_, now)) => now,
                    None => continue,
                },
                () = self.stop.cancelled() => return,
            };
            if !self.give_back(now).await {
                return;
            }
        }
    }

    /// Gives back the runs of this instance's claim at `now`, tried until the store takes
    /// it; false when the queue stopped first.
    async fn give_back(&self, now: Timestamp) -> bool {
        loop {
            let release = self.store.release_claim(&self.instance, &self.tasks, now);
            let error = match tokio::time::timeout(self.timeout, release).await {
                Ok(Ok(released)) => {
                    if released > 0 {
                        tracing::info!(
                            runs = released,
                            "the runs of a claim whose answer was lost went back to the queue"
                        );
                    }
                    return true;
                }
                Ok(Err(error)) => error.to_string(),
                Err(_) => format!("not answered within {} ms", self.timeout.as_millis()),
            };
            tracing::warn!(
                %error,
                "the runs of a claim whose answer was lost could not go back to the queue; trying again"
            );
            tokio::select! {
                () = tokio::time::sleep(AGAIN) => {}
                () = self.stop.cancelled() => return false,
            }
        }
    }
}

/// Sleeps until `at`; forever for `None` (the branch is off then).
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_claim_has_a_millisecond_of_its_own() {
        let mut clock = ClaimClock::default();
        let times: Vec<i64> = (0..1_000).map(|_| clock.next().as_millisecond()).collect();
        assert!(times.windows(2).all(|pair| pair[0] < pair[1]), "{times:?}");
        // Never far ahead of the clock: one millisecond a claim at most.
        assert!(times[999] <= Timestamp::now().as_millisecond() + 1_000);
    }
}
