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
        let claiming = inner.claiming.token();
        let claimed = match &inner.claims {
            Some(_) => Box::pin(self.claim(def, tick)).await,
            None => Ok(true),
        };
        match claimed {
            Ok(true) => {}
            Ok(false) => return,
            Err(error) => {
                tracing::error!(schedule = %def.name, %error, "cannot claim a tick; it is skipped");
                inner.log.line(
                    "claim_failed",
                    &[("schedule", &def.name), ("tick", &tick), ("error", &error)],
                );
                return;
            }
        }
        {
            let mut state = lock(&entry.state);
            // Paused or disabled while the tick waited for its time or its turn to claim
            // (another instance's pause reaches this one within a second).
            if state.paused || state.disabled {
                drop(state);
                let reason = "paused or disabled before the tick ran";
                inner.log.line(
                    "skipped",
                    &[("schedule", &def.name), ("tick", &tick), ("reason", &reason)],
                );
                return;
            }
            state.last_tick = Some(tick.as_millisecond());
        }
        let turn = match self.take_turn(entry, tick, origin).await {
            Turn::Go(turn) => turn,
            Turn::Skipped(_) | Turn::Stopped => return,
        };
        let started = self.start_run(entry, def.request(tick)).await;
        drop(claiming);
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
        } else if turn.is_some() {
            drop(handle.outcome().await);
        }
        drop(turn);
    }

    /// Logs a claimed tick's trigger and applies the schedule's overlap policy: `skip`
    /// gives up the tick while an earlier tick's run goes on (here, or on another live
    /// instance), `queue` waits for the schedule's turn (the guard keeps it while the run
    /// starts). The timers' ticks and the fires from outside take the same path.
    pub(super) async fn take_turn<'e>(&self, entry: &'e Entry, tick: Timestamp, origin: Origin) -> Turn<'e> {
        let inner = &self.inner;
        let def = &entry.def;
        inner.log.line(
            "trigger",
            &[
                ("schedule", &def.name),
                ("tick", &tick),
                ("origin", &origin.as_str()),
                ("instance", &inner.instance),
            ],
        );
        match def.overlap {
            Overlap::Skip => {
                // Only an earlier tick's run that began before this tick counts: a dead
                // instance's tick, taken over late, may start at or after this schedule's
                // next tick, and did not overlap it when it came.
                let previous = lock(&entry.state)
                    .last_run
                    .as_ref()
                    .filter(|run| {
                        !run.is_finished()
                            && earlier(run.trigger(), tick)
                            && run.run_id().created_at() <= tick
                    })
                    .map(|run| (run.run_id().to_string(), inner.instance.clone()));
                let previous = match previous {
                    Some(previous) => Some(previous),
                    None => self.unfinished_elsewhere(def, tick, true).await,
                };
                match previous {
                    Some((run_id, instance)) => {
                        inner.log.line(
                            "skipped",
                            &[
                                ("schedule", &def.name),
                                ("tick", &tick),
                                ("reason", &"previous run still going"),
                                ("previous_run_id", &run_id),
                                ("previous_instance", &instance),
                            ],
                        );
                        Turn::Skipped(run_id)
                    }
                    None => Turn::Go(None),
                }
            }
            Overlap::Queue => tokio::select! {
                _ = inner.stop.cancelled() => Turn::Stopped,
                turn = async {
                    let turn = match &entry.queue {
                        Some(queue) => Some(queue.lock().await),
                        None => None,
                    };
                    // Then wait for earlier ticks' runs on other instances.
                    while self.unfinished_elsewhere(def, tick, false).await.is_some() {
                        tokio::time::sleep(QUEUE_POLL).await;
                    }
                    turn
                } => Turn::Go(turn),
            },
            Overlap::Allow => Turn::Go(None),
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
        lock(&entry.state).last_run = Some(handle.clone());
        Ok(handle)
    }

    /// A run of another instance of the cluster started by this schedule by a tick before
    /// `before`, and itself begun by then (or, with `sends`, by a strategy's send), and not
    /// finished yet, as (run id,
    /// instance). Only `worker` and custom schedules share runs across instances; a store
    /// error counts as none, so the tick runs.
    pub(super) async fn unfinished_elsewhere(
        &self,
        def: &ScheduleDef,
        before: Timestamp,
        sends: bool,
    ) -> Option<(String, String)> {
        let inner = &self.inner;
        let unfinished = inner.unfinished.as_ref().filter(|_| def.kind != Kind::All)?;
        let runs = match unfinished.call(String::from(&*def.name)).await {
            Ok(runs) => runs,
            Err(error) => {
                tracing::warn!(schedule = %def.name, %error, "cannot look for runs on other instances; running the tick");
                return None;
            }
        };
        let earlier_runs: Vec<RunRecord> = runs
            .into_iter()
            .filter(|run| run.instance != inner.instance)
            .filter(|run| match &run.trigger {
                Trigger::Schedule { .. } => earlier(&run.trigger, before) && run.queued_at <= before,
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

/// What the overlap policy lets a claimed tick do.
pub(super) enum Turn<'e> {
    /// Start its run (holding the schedule's queue while a `queue` tick starts).
    Go(Option<tokio::sync::MutexGuard<'e, ()>>),
    /// Skipped: this run of an earlier tick still goes on.
    Skipped(String),
    /// The scheduler stopped while the tick waited for its turn.
    Stopped,
}

/// True for a run started before `tick`: by an earlier tick, or by a strategy's send.
fn earlier(trigger: &Trigger, tick: Timestamp) -> bool {
    match trigger {
        Trigger::Schedule { scheduled_at, .. } => *scheduled_at < tick,
        _ => true,
    }
}
