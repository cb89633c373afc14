//! One tick, from claim to run: claim it in the store's ledger, apply the overlap policy
//! (this instance's earlier run, and earlier ticks' runs still going on other live
//! instances), start the run and write the schedule log as it goes.

use jiff::Timestamp;

use super::timer::duration_until;
use super::{Entry, Origin, QUEUE_POLL, Scheduler};
use crate::schedule::checked::{Kind, ScheduleDef};
use crate::schedule::definition::Overlap;
use crate::sync::lock;
use crate::{Error, RunHandle, RunRecord, Trigger};

impl Scheduler {
    pub(super) async fn run_tick(&self, entry: &Entry, tick: Timestamp, origin: Origin) {
        let inner = &self.inner;
        let def = &entry.def;
        // Until its claim is asked for, stopping the scheduler drops the tick; from then on
        // it is seen through: a tick whose claim landed starts its run even while the app
        // stops (the shutdown waits for it), or a stopping instance would lose it.
        // The slow paths' futures (a wait, a store call, the overlap policy's) are boxed:
        // thousands of ticks due together each box this future, and keeping their state
        // out of it keeps it small.
        // The timer's ticks come at their instant: their dispatch waited for it.
        let wait = match origin {
            Origin::Timer => std::time::Duration::ZERO,
            _ => duration_until(Timestamp::now(), tick),
        };
        if !wait.is_zero() {
            let stopped = Box::pin(async {
                tokio::select! {
                    _ = inner.stop.cancelled() => true,
                    () = tokio::time::sleep(wait) => false,
                }
            });
            if stopped.await {
                return;
            }
        }
        // Without a store there is no claim to see through, so no token: every tick shares
        // it, and ticks due together would pass it between threads on every take and drop.
        let claiming = inner.claims.as_ref().map(|_| inner.claiming.token());
        if claiming.is_some() && self.claims_with_run(entry) {
            Box::pin(self.run_durable_tick(entry, tick, origin)).await;
            return;
        }
        let claimed = match &inner.claims {
            Some(_) => Box::pin(self.claim(def, tick)).await,
            None => Ok(true),
        };
        match claimed {
            Ok(true) => {}
            Ok(false) => return,
            Err(error) => {
                self.log_claim_failed(def, tick, &error);
                return;
            }
        }
        // Paused or disabled while the tick waited for its time or its turn to claim
        // (another instance's pause reaches this one within a second).
        if self.inactive(entry) {
            self.log_inactive(def, tick);
            return;
        }
        lock(&entry.state).last_tick = Some(tick.as_millisecond());
        let turn = match self.take_turn(entry, tick, origin).await {
            Turn::Go(turn) => turn,
            Turn::Skipped(_) | Turn::Stopped => return,
        };
        let started = self.start_run(entry, def.request(tick)).await;
        drop(claiming);
        // A `skip` tick's hold ends once its run is the schedule's latest.
        let turn = turn.started();
        let handle = match started {
            Ok(handle) => handle,
            Err(error) => {
                inner.log.line(
                    "failed",
                    &[("schedule", &def.name), ("tick", &tick), ("error", &error)],
                );
                return;
            }
        };
        // The schedule's `queue` turn is held until the run ends; otherwise following the
        // run only writes its end to the schedule log, and without a log the tick is done
        // once its run started.
        if inner.log.is_enabled() {
            Box::pin(self.follow_run(def, handle)).await;
        } else if matches!(turn, Held::Queue(_)) {
            drop(handle.outcome().await);
        }
        drop(turn);
    }

    /// Logs a claimed tick's trigger and applies the schedule's overlap policy: `skip`
    /// gives up the tick while another tick's run goes on (here, or on another live
    /// instance; see [`going_at`]) or starts here, `queue` waits for the schedule's turn
    /// (the guard keeps it while the run starts). The timers' ticks and the fires from
    /// outside take the same path.
    pub(super) async fn take_turn<'e>(&self, entry: &'e Entry, tick: Timestamp, origin: Origin) -> Turn<'e> {
        self.log_trigger(&entry.def, tick, origin);
        let turn = self.turn(entry, tick, origin).await;
        if let Turn::Skipped(skip) = &turn {
            self.log_skipped(&entry.def, tick, skip);
        }
        turn
    }

    /// True when the schedule is paused or disabled.
    pub(super) fn inactive(&self, entry: &Entry) -> bool {
        let state = lock(&entry.state);
        state.paused || state.disabled
    }

    /// Logs a claimed tick skipped because its schedule is paused or disabled.
    pub(super) fn log_inactive(&self, def: &ScheduleDef, tick: Timestamp) {
        let reason = "paused or disabled before the tick ran";
        self.inner.log.line(
            "skipped",
            &[("schedule", &def.name), ("tick", &tick), ("reason", &reason)],
        );
    }

    /// Logs a tick whose claim failed: this instance skips it.
    pub(super) fn log_claim_failed(&self, def: &ScheduleDef, tick: Timestamp, error: &Error) {
        tracing::error!(schedule = %def.name, %error, "cannot claim a tick; it is skipped");
        self.inner.log.line(
            "claim_failed",
            &[("schedule", &def.name), ("tick", &tick), ("error", error)],
        );
    }

    /// Logs a claimed tick's trigger.
    pub(super) fn log_trigger(&self, def: &ScheduleDef, tick: Timestamp, origin: Origin) {
        let inner = &self.inner;
        inner.log.line(
            "trigger",
            &[
                ("schedule", &def.name),
                ("tick", &tick),
                ("origin", &origin.as_str()),
                ("instance", &inner.instance),
            ],
        );
    }

    /// Logs a claimed tick that the overlap policy skipped.
    pub(super) fn log_skipped(&self, def: &ScheduleDef, tick: Timestamp, skip: &Skip) {
        let reason = if skip.run_id.is_empty() {
            "another tick's run is starting here"
        } else {
            "previous run still going"
        };
        self.inner.log.line(
            "skipped",
            &[
                ("schedule", &def.name),
                ("tick", &tick),
                ("reason", &reason),
                ("previous_run_id", &skip.run_id),
                ("previous_instance", &skip.instance),
            ],
        );
    }

    /// The overlap policy's answer for `tick` (see [`Scheduler::take_turn`]), unlogged.
    pub(super) async fn turn<'e>(&self, entry: &'e Entry, tick: Timestamp, origin: Origin) -> Turn<'e> {
        let inner = &self.inner;
        let def = &entry.def;
        match def.overlap {
            Overlap::Skip => {
                let grace = inner.settings.worker_grace;
                // A tick caught up at start-up, or come to its turn a worker grace or more
                // after its instant (taken over from an instance that died or never
                // claimed it), is late: only runs that were going when it came hold it,
                // and it does not hold others while it starts.
                let on_time =
                    !matches!(origin, Origin::CatchUp) && !began_late(tick, Timestamp::now(), grace);
                let (previous, starting) = {
                    let mut state = lock(&entry.state);
                    let going = state
                        .last_run
                        .as_ref()
                        .filter(|run| {
                            !run.is_finished()
                                && going_at(run.trigger(), run.run_id().created_at(), tick, on_time, grace)
                        })
                        .map(|run| run.run_id().to_string());
                    if on_time && state.starting {
                        // Its run has no id yet: the log names none.
                        (Some((String::new(), inner.instance.clone())), None)
                    } else if let Some(run_id) = going {
                        (Some((run_id, inner.instance.clone())), None)
                    } else {
                        // From here until its run is the schedule's latest, this tick holds
                        // the others here: the check and the start are one step.
                        // (Never built to be dropped here: its drop takes this lock.)
                        state.starting |= on_time;
                        let starting = if on_time {
                            Some(Starting(&entry.state))
                        } else {
                            None
                        };
                        (None, starting)
                    }
                };
                let previous = match previous {
                    Some(previous) => Some(previous),
                    None => {
                        self.unfinished_elsewhere(entry, tick, true, Holds::GoingAt(on_time))
                            .await
                    }
                };
                match previous {
                    Some((run_id, instance)) => {
                        drop(starting);
                        Turn::Skipped(Skip { run_id, instance })
                    }
                    None => Turn::Go(starting.map_or(Held::Nothing, Held::Starting)),
                }
            }
            Overlap::Queue => tokio::select! {
                _ = inner.stop.cancelled() => Turn::Stopped,
                turn = async {
                    let turn = match &entry.queue {
                        Some(queue) => Some(queue.clone().lock_owned().await),
                        None => None,
                    };
                    // Then wait for earlier ticks' runs on other instances. A durable tick
                    // waits unclaimed, and may be another instance's by now (one that took it
                    // over after the worker grace): every other tick's run holds it, however
                    // late it is, or it would start beside the runs it queued behind.
                    let holds = if self.claims_with_run(entry) {
                        Holds::Every
                    } else {
                        Holds::GoingAt(false)
                    };
                    while self.unfinished_elsewhere(entry, tick, false, holds).await.is_some() {
                        tokio::time::sleep(QUEUE_POLL).await;
                    }
                    turn
                } => Turn::Go(turn.map_or(Held::Nothing, Held::Queue)),
            },
            Overlap::Allow => Turn::Go(Held::Nothing),
        }
    }

    /// Starts a run of the schedule's job and keeps it as the schedule's latest run (what
    /// `skip` looks at).
    pub(super) async fn start_run(
        &self,
        entry: &Entry,
        request: crate::RunRequest,
    ) -> Result<RunHandle, Error> {
        let handle = self.inner.runtime.start_here(request).await?;
        keep_latest(entry, &handle);
        Ok(handle)
    }

    /// A run of another instance of the cluster (or, for durable runs, of any) started by
    /// this schedule, not finished yet, that holds the tick `before` (see [`Holds`]; with
    /// `sends`, runs of a strategy's sends too), as (run id, instance). Only `worker` and
    /// custom schedules share runs across instances; a store error counts as none, so the
    /// tick runs.
    pub(super) async fn unfinished_elsewhere(
        &self,
        entry: &Entry,
        before: Timestamp,
        sends: bool,
        holds: Holds,
    ) -> Option<(String, String)> {
        let inner = &self.inner;
        let def = &entry.def;
        let unfinished = inner.unfinished.as_ref().filter(|_| def.kind != Kind::All)?;
        let runs = match unfinished.call(String::from(&*def.name)).await {
            Ok(runs) => runs,
            Err(error) => {
                tracing::warn!(schedule = %def.name, %error, "cannot look for runs on other instances; running the tick");
                return None;
            }
        };
        // This instance's own runs are its entry's latest run, except durable ones, which
        // any instance's claimer may have taken.
        let earlier_runs: Vec<RunRecord> = runs
            .into_iter()
            .filter(|run| entry.runs_anywhere || run.instance != inner.instance)
            .filter(|run| match &run.trigger {
                Trigger::Schedule { scheduled_at, .. } => match holds {
                    Holds::GoingAt(on_time) => going_at(
                        &run.trigger,
                        run.queued_at,
                        before,
                        on_time,
                        inner.settings.worker_grace,
                    ),
                    Holds::Every => *scheduled_at != before,
                },
                _ => sends,
            })
            .collect();
        if earlier_runs.is_empty() {
            return None;
        }
        // A run on an instance that stopped beating is not "still going", even while its
        // lease has yet to run out and mark it abandoned. The membership list may not know
        // an instance that started since it was read, so it is read again before a run
        // outside it is taken for a dead instance's.
        let mut members = lock(&inner.members).clone();
        if earlier_runs.iter().any(|run| !members.contains(&run.instance)) {
            self.refresh_members().await;
            members = lock(&inner.members).clone();
        }
        earlier_runs
            .into_iter()
            .find(|run| members.contains(&run.instance))
            .map(|run| (run.id.to_string(), run.instance))
    }

    /// Logs a run's start and end in the schedule log.
    pub(super) async fn follow_run(&self, def: &ScheduleDef, handle: RunHandle) {
        let inner = &self.inner;
        let run_id = handle.run_id();
        inner.log.line(
            "start",
            &[
                ("schedule", &def.name),
                ("run_id", &run_id),
                ("instance", &inner.instance),
                ("task", &def.task),
            ],
        );
        let started = std::time::Instant::now();
        let outcome = handle.outcome().await;
        let duration_ms = started.elapsed().as_millis();
        match outcome {
            Ok(_) => inner.log.line(
                "succeeded",
                &[
                    ("schedule", &def.name),
                    ("run_id", &run_id),
                    ("instance", &inner.instance),
                    ("duration_ms", &duration_ms),
                ],
            ),
            Err(error) => inner.log.line(
                "failed",
                &[
                    ("schedule", &def.name),
                    ("run_id", &run_id),
                    ("instance", &inner.instance),
                    ("duration_ms", &duration_ms),
                    ("error", &error),
                ],
            ),
        }
    }
}

/// Keeps `handle` as `entry`'s latest run, what `skip` looks at. A run that already ended
/// holds no tick, so it is not kept: freed by this tick, while its memory is in the cache,
/// not by the next one a second later, which had to read it back first (BENCHMARKS.md,
/// "Ticks due together").
pub(super) fn keep_latest(entry: &Entry, handle: &RunHandle) {
    // A durable run's handle learns of its end only when someone awaits it, so kept here
    // it would hold every later tick of the schedule on this instance; `skip` finds the
    // schedule's durable runs in the store instead, wherever they run.
    if entry.runs_anywhere {
        return;
    }
    lock(&entry.state).last_run = (!handle.is_finished()).then(|| handle.clone());
}

/// What the overlap policy lets a claimed tick do.
pub(super) enum Turn<'e> {
    /// Start its run, holding what the policy asks.
    Go(Held<'e>),
    /// Skipped: another tick's run still goes on.
    Skipped(Skip),
    /// The scheduler stopped while the tick waited for its turn.
    Stopped,
}

/// Why a `skip` tick was skipped.
pub(super) struct Skip {
    /// The run of another tick still going (empty while it is starting here).
    pub run_id: String,
    /// The instance it goes on.
    pub instance: String,
}

/// Which unfinished runs of a schedule's other ticks hold a tick.
#[derive(Clone, Copy)]
pub(super) enum Holds {
    /// Those going when it came (see [`going_at`]); `true` for a tick come to its turn on
    /// time.
    GoingAt(bool),
    /// Every one.
    Every,
}

/// What a tick let through by the overlap policy holds while its run starts; the guards
/// are held for their drop.
#[allow(dead_code)]
pub(super) enum Held<'e> {
    /// Nothing to hold (`allow`, or a late `skip` tick).
    Nothing,
    /// A `queue` schedule's turn, held until the run ends.
    Queue(tokio::sync::OwnedMutexGuard<()>),
    /// A `skip` tick's hold on the schedule here, until its run is the schedule's latest.
    Starting(Starting<'e>),
}

impl Held<'_> {
    /// What is still held once the run started: a `skip` tick's hold ends.
    pub(super) fn started(self) -> Self {
        match self {
            Held::Starting(_) => Held::Nothing,
            held => held,
        }
    }
}

/// Marks a `skip` schedule's entry as having a tick between its check and its run's start;
/// dropped, the mark goes.
pub(super) struct Starting<'e>(&'e std::sync::Mutex<super::EntryState>);

impl Drop for Starting<'_> {
    fn drop(&mut self) {
        lock(self.0).starting = false;
    }
}

/// True for a tick's run begun at `began`, or a tick come to its turn then, a worker grace
/// (`grace`) or more after the tick's instant: its instance died or never claimed it, and
/// another took it over (or it was caught up at start-up).
fn began_late(tick: Timestamp, began: Timestamp, grace: std::time::Duration) -> bool {
    jiff::SignedDuration::try_from(grace)
        .ok()
        .and_then(|grace| tick.checked_add(grace).ok())
        .is_some_and(|deadline| began >= deadline)
}

/// True when a run with `trigger`, begun at `began`, holds a `skip` tick `tick` (or makes
/// a `queue` tick wait): a run of a strategy's send, or of an earlier tick, begun by `tick`'s
/// instant.
///
/// A tick come to its turn `on_time` (not late, see [`Scheduler::take_turn`]) is held by
/// more: by an earlier tick's run begun after its instant, as a slow instance's run is, and
/// by a later tick's run, since a tick whose claim or check was slowed may come to its turn
/// after the next tick's run started; but not by a run taken over late (see
/// [`began_late`]), which did not overlap `tick` when `tick` came.
fn going_at(
    trigger: &Trigger,
    began: Timestamp,
    tick: Timestamp,
    on_time: bool,
    grace: std::time::Duration,
) -> bool {
    match trigger {
        Trigger::Schedule { scheduled_at, .. } => {
            let on_time_too = || on_time && *scheduled_at != tick && !began_late(*scheduled_at, began, grace);
            (*scheduled_at < tick && began <= tick) || on_time_too()
        }
        _ => began <= tick,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use jiff::Timestamp;

    use super::{began_late, going_at};
    use crate::Trigger;

    const GRACE: Duration = Duration::from_secs(2);

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millisecond(1_795_000_000_000 + ms).expect("timestamp")
    }

    fn tick(ms: i64) -> Trigger {
        Trigger::Schedule {
            schedule: "s".into(),
            scheduled_at: at(ms),
        }
    }

    #[test]
    fn an_earlier_ticks_run_begun_by_the_tick_holds_every_tick() {
        for on_time in [true, false] {
            assert!(going_at(&tick(0), at(5), at(150), on_time, GRACE));
            assert!(going_at(&tick(0), at(2_010), at(3_000), on_time, GRACE));
        }
    }

    #[test]
    fn a_slow_instances_run_begun_after_the_tick_holds_a_tick_on_time() {
        // Begun after this tick's instant, but within the grace of its own.
        assert!(going_at(&tick(0), at(160), at(150), true, GRACE));
        assert!(going_at(&tick(0), at(1_999), at(1_000), true, GRACE));
        // A late tick (caught up, or taken over) is held only by what went on when it came.
        assert!(!going_at(&tick(0), at(160), at(150), false, GRACE));
    }

    #[test]
    fn a_run_taken_over_late_holds_no_tick_that_came_before_it_began() {
        assert!(!going_at(&tick(0), at(2_000), at(1_000), true, GRACE));
        assert!(!going_at(&tick(0), at(2_010), at(2_000), true, GRACE));
        assert!(!going_at(&tick(3_000), at(5_100), at(2_000), true, GRACE));
    }

    #[test]
    fn a_later_ticks_run_holds_a_tick_on_time_only() {
        // A slowed tick comes to its turn after the next tick's run started.
        assert!(going_at(&tick(300), at(305), at(150), true, GRACE));
        assert!(!going_at(&tick(300), at(305), at(150), false, GRACE));
        // A run of this very tick is not another tick's.
        assert!(!going_at(&tick(150), at(150), at(150), true, GRACE));
    }

    #[test]
    fn a_sends_run_holds_ticks_that_came_after_it_began() {
        let send = Trigger::Custom {
            strategy: "bus".into(),
            schedule: "s".into(),
            args: serde_json::Value::Null,
        };
        for on_time in [true, false] {
            assert!(going_at(&send, at(100), at(150), on_time, GRACE));
            assert!(!going_at(&send, at(200), at(150), on_time, GRACE));
        }
    }

    #[test]
    fn late_means_a_worker_grace_or_more_after_the_tick() {
        assert!(!began_late(at(0), at(1_999), GRACE));
        assert!(began_late(at(0), at(2_000), GRACE));
    }
}
