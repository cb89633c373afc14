//! Claims and membership: a tick runs only after its claim in the store's ledger; `worker`
//! ticks are spread over the live instances by a hash of (schedule, tick), and the others wait
//! a grace period before claiming, so a dead instance's ticks still run.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use jiff::Timestamp;

use super::Scheduler;
use crate::Error;
use crate::schedule::checked::{Kind, ScheduleDef};
use crate::schedule::definition::Overlap;
use crate::store::{Batched, Store, TickClaim};
use crate::sync::lock;
use crate::{RunRecord, Trigger};

/// How often a tick whose claim failed is claimed again while that fails too.
const CLAIM_AGAIN_EVERY: Duration = Duration::from_secs(1);
/// How long a tick whose claim failed is claimed again before it is skipped.
const CLAIM_AGAIN_FOR: Duration = Duration::from_secs(30);
/// How many ticks an instance claims again at once. Past that (a store down while many
/// schedules tick) a failed claim's tick is skipped at once, so that an outage neither
/// keeps thousands of ticks waiting nor meets the store's return with as many statements.
const CLAIM_AGAIN_AT_MOST: usize = 256;

impl Scheduler {
    /// Claims `tick` for this instance in the ledger. Without a store there is only this
    /// process, and nothing to claim against.
    pub(super) async fn claim(&self, def: &ScheduleDef, tick: Timestamp) -> Result<bool, Error> {
        let Some(claims) = &self.inner.claims else {
            return Ok(true);
        };
        let claim = self.claim_when_due(def, tick).await;
        let claimed_at = claim.claimed_at;
        match claims.call(claim).await {
            // The claim went into the batch: it is made again from the definition, at its
            // time.
            Err(error) => {
                let claim = TickClaim {
                    claimed_at,
                    ..self.tick_claim(def, tick)
                };
                self.claim_again(&claim, error).await
            }
            claimed => claimed,
        }
    }

    /// This instance's claim of `tick`, once it is this instance's turn to make it.
    pub(super) async fn claim_when_due(&self, def: &ScheduleDef, tick: Timestamp) -> TickClaim {
        let inner = &self.inner;
        if def.kind != Kind::All && inner.shared {
            let members = lock(&inner.members).clone();
            // `queue` ticks all go to one instance, whose queue keeps them in order; the
            // others spread tick by tick.
            let spread_by = (def.overlap != Overlap::Queue).then_some(tick);
            let index = (spread_hash(&def.name, spread_by) % members.len() as u64) as usize;
            if members[index] != inner.instance {
                // The tick is another instance's: give it time to claim first, then take
                // over if it did not (it may have died). An instance stopping meanwhile
                // claims it at once: the one it was meant for may have started after the
                // tick and never have it on its timer.
                tokio::select! {
                    _ = inner.stop.cancelled() => {}
                    () = tokio::time::sleep(inner.settings.worker_grace) => {}
                }
            }
        }
        self.tick_claim(def, tick)
    }

    /// This instance's claim of `tick`: `all` ticks are claimed once per instance, the
    /// others once.
    fn tick_claim(&self, def: &ScheduleDef, tick: Timestamp) -> TickClaim {
        let instance = &self.inner.instance;
        TickClaim {
            schedule: String::from(&*def.name),
            tick,
            target: if def.kind == Kind::All {
                instance.clone()
            } else {
                String::new()
            },
            instance: instance.clone(),
            claimed_at: Timestamp::now(),
        }
    }

    /// Claims `claim` again after its claim failed with `error`. The store may have
    /// committed the failed claim although its caller saw an error (a connection broken
    /// after the commit); then the ledger holds the tick for this claim, nothing else will
    /// run it, and it must run here.
    pub(super) async fn claim_again(&self, claim: &TickClaim, error: Error) -> Result<bool, Error> {
        let Some(store) = &self.inner.store else {
            return Err(error);
        };
        self.again(&claim.schedule, error, || store.claim_tick_again(claim))
            .await
    }

    /// Tries `attempt` after a tick of `schedule` failed with `error`: at once, then every
    /// [`CLAIM_AGAIN_EVERY`] while it fails too, for [`CLAIM_AGAIN_FOR`] at most or until
    /// the scheduler stops. The error is the last one when no try got an answer, or
    /// `error` itself when [`CLAIM_AGAIN_AT_MOST`] ticks are being claimed again already.
    pub(super) async fn again<T, F>(
        &self,
        schedule: &str,
        mut error: Error,
        mut attempt: impl FnMut() -> F,
    ) -> Result<T, Error>
    where
        F: Future<Output = Result<T, Error>>,
    {
        let again = &self.inner.claiming_again;
        if again.fetch_add(1, Ordering::SeqCst) >= CLAIM_AGAIN_AT_MOST {
            again.fetch_sub(1, Ordering::SeqCst);
            return Err(error);
        }
        // Counted until this call ends, however it ends (a dropped future included).
        let _counted = Counted(again);
        tracing::debug!(schedule, %error, "a tick's claim failed; claiming it again");
        let began = Instant::now();
        loop {
            match attempt().await {
                Ok(answer) => return Ok(answer),
                Err(again) => error = again,
            }
            if began.elapsed() >= CLAIM_AGAIN_FOR {
                return Err(error);
            }
            tokio::select! {
                _ = self.inner.stop.cancelled() => return Err(error),
                () = tokio::time::sleep(CLAIM_AGAIN_EVERY) => {}
            }
        }
    }

    pub(super) async fn run_membership(self) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.inner.settings.membership_refresh) => {}
                _ = self.inner.stop.cancelled() => return,
            }
            self.refresh_members().await;
        }
    }

    pub(super) async fn refresh_members(&self) {
        let inner = &self.inner;
        let Some(store) = inner.store.as_ref().filter(|_| inner.shared) else {
            return;
        };
        let now = Timestamp::now();
        let window = jiff::SignedDuration::try_from(crate::store::lease::MEMBERSHIP_WINDOW)
            .unwrap_or(jiff::SignedDuration::from_secs(3));
        match store.live_instances(now, now - window).await {
            Ok(mut live) => {
                if !live.contains(&inner.instance) {
                    live.push(inner.instance.clone());
                    live.sort();
                }
                *lock(&inner.members) = Arc::new(live);
            }
            Err(error) => tracing::warn!(%error, "cannot read the live instances; keeping the last list"),
        }
    }
}

/// One of the ticks being claimed again, counted while it lives.
struct Counted<'a>(&'a AtomicUsize);

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Claims in the ledger, those asked for together in one statement.
pub(super) fn batched_claims(store: Arc<dyn Store>) -> Batched<TickClaim, bool> {
    Batched::start(move |claims: Vec<TickClaim>| {
        let store = store.clone();
        async move { store.claim_ticks(&claims).await }
    })
}

/// Schedules' unfinished runs in the cluster, those asked for together in one read: each
/// call gets the runs of its schedule.
pub(super) fn batched_unfinished(store: Arc<dyn Store>) -> Batched<String, Vec<RunRecord>> {
    Batched::start(move |schedules: Vec<String>| {
        let store = store.clone();
        async move {
            let runs = store.unfinished_of_schedules(&schedules).await?;
            let mut by_schedule: HashMap<&str, Vec<RunRecord>> =
                schedules.iter().map(|name| (name.as_str(), Vec::new())).collect();
            for run in runs {
                let (Trigger::Schedule { schedule, .. } | Trigger::Custom { schedule, .. }) = &run.trigger
                else {
                    continue;
                };
                if let Some(runs) = by_schedule.get_mut(schedule.as_str()) {
                    runs.push(run);
                }
            }
            Ok(schedules
                .iter()
                .map(|name| by_schedule.get(name.as_str()).cloned().unwrap_or_default())
                .collect())
        }
    })
}

/// FNV-1a over the schedule name and the tick's milliseconds: every instance computes the
/// same spread, whatever its build (std's hasher may change between Rust versions).
fn spread_hash(name: &str, tick: Option<Timestamp>) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let tick = tick.map(|tick| tick.as_millisecond().to_le_bytes());
    for byte in name.bytes().chain(tick.into_iter().flatten()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;

    use super::*;

    /// Share of `ticks` (every `every`-th of a 150 ms schedule) that go to member 0 of
    /// `members`, and the longest run of ticks in a row sent to one member.
    fn spread(members: u64, every: i64) -> (f64, usize) {
        let base = Timestamp::from_millisecond(1_795_000_000_000).expect("ts");
        let picks: Vec<u64> = (0..3000)
            .map(|k| base + SignedDuration::from_millis(150 * every * k))
            .map(|tick| spread_hash("slow", Some(tick)) % members)
            .collect();
        let share = picks.iter().filter(|&&pick| pick == 0).count() as f64 / picks.len() as f64;
        let longest = picks.chunk_by(|a, b| a == b).map(<[u64]>::len).max().unwrap_or(0);
        (share, longest)
    }

    #[test]
    fn ticks_spread_evenly_over_the_members() {
        for members in [2, 3] {
            for every in [1, 3, 4] {
                let (share, longest) = spread(members, every);
                let fair = 1.0 / members as f64;
                assert!(
                    (share - fair).abs() < 0.05,
                    "{members} members, every {every}: {share}"
                );
                // Random picks out of 3000 make runs longer than 16 very unlikely.
                assert!(
                    longest <= 16,
                    "{members} members, every {every}: {longest} in a row"
                );
            }
        }
    }
}

#[cfg(test)]
mod again_tests {
    use super::*;
    use crate::run::{Registry, Runtime, RuntimeParts};
    use crate::schedule::engine::Settings;
    use crate::schedule::log::ScheduleLog;
    use crate::store::{MemoryStore, StoreHealth};

    fn scheduler() -> Scheduler {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let runtime = Runtime::new(RuntimeParts {
            registry: Registry::new(),
            state: Default::default(),
            instance: "a".into(),
            store: Some(store.clone()),
            recorder: None,
            health: Arc::new(StoreHealth::default()),
            lease: None,
        });
        let settings = Settings {
            worker_grace: Duration::from_secs(2),
            membership_refresh: Duration::from_secs(1),
            default_zone: jiff::tz::TimeZone::UTC,
            strategies: Vec::new(),
        };
        Scheduler::new(runtime, Some(store), settings, ScheduleLog::disabled())
    }

    fn down() -> Error {
        Error::StoreUnavailable {
            backend: "memory",
            message: "down".into(),
        }
    }

    #[tokio::test]
    async fn a_failed_claim_is_tried_again_within_the_bound_and_not_past_it() {
        let scheduler = scheduler();
        let tries = AtomicUsize::new(0);
        let attempt = || async {
            tries.fetch_add(1, Ordering::SeqCst);
            Ok::<_, Error>(true)
        };
        let counted = || scheduler.inner.claiming_again.load(Ordering::SeqCst);
        assert!(matches!(scheduler.again("beat", down(), attempt).await, Ok(true)));
        assert_eq!(
            (tries.load(Ordering::SeqCst), counted()),
            (1, 0),
            "tried, then uncounted"
        );
        // As many ticks as the bound are being claimed again: this one is skipped, with
        // its own error, and not tried.
        scheduler
            .inner
            .claiming_again
            .store(CLAIM_AGAIN_AT_MOST, Ordering::SeqCst);
        let skipped = scheduler.again("beat", down(), attempt).await;
        assert!(
            matches!(skipped, Err(Error::StoreUnavailable { .. })),
            "{skipped:?}"
        );
        assert_eq!(
            (tries.load(Ordering::SeqCst), counted()),
            (1, CLAIM_AGAIN_AT_MOST)
        );
    }
}
