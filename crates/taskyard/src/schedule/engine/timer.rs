//! The timer: one task over a heap of due times. It sleeps until the earliest tick (capped at
//! a minute, so a wall clock that jumps is noticed), takes ticks off the heap slightly ahead
//! of time and hands each to a dispatch future that waits for its exact instant; missed ticks
//! are caught up by the schedule's `catch_up` policy.

use std::cmp::Reverse;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::{Entry, EntryState, LEAD, MAX_SLEEP, Origin, Scheduler};
use crate::schedule::definition::{CatchUp, Overlap};
use crate::sync::lock;

impl Scheduler {
    /// Puts the schedule's next tick after `after` on the heap.
    /// A schedule past its `end` stops, and says so in the schedule log (egg-schedule's
    /// "reach endDate, will stop").
    pub(super) fn arm(&self, entry: &Arc<Entry>, state: &mut EntryState, after: Timestamp) {
        match entry.def.next_tick(after) {
            Some(at) => lock(&self.inner.timers).push(Reverse(Due {
                at: ceil_millis(at),
                generation: state.generation,
                entry: entry.clone(),
            })),
            None => {
                if let Some(end) = entry.def.end()
                    && !state.ended
                {
                    state.ended = true;
                    self.inner.log.line(
                        "ended",
                        &[
                            ("schedule", &entry.def.name),
                            ("end", &end),
                            ("message", &"reached its end, will stop"),
                        ],
                    );
                    tracing::info!(schedule = %entry.def.name, %end, "the schedule reached its end and stops");
                }
            }
        }
    }

    /// Runs the ticks missed since `last` as the schedule's catch-up policy says, one
    /// after the other, oldest first.
    pub(super) fn catch_up(&self, entry: Arc<Entry>, last: Timestamp, now: Timestamp) {
        let def = &entry.def;
        let limit = match def.catch_up {
            CatchUp::Skip => return,
            CatchUp::Once => 1,
            CatchUp::All(limit) => limit.max(1) as usize,
        };
        let mut missed = VecDeque::with_capacity(limit + 1);
        let mut tick = last;
        while let Some(next) = def.next_tick(tick).filter(|next| *next < now) {
            missed.push_back(next);
            if missed.len() > limit {
                missed.pop_front();
            }
            tick = next;
        }
        if missed.is_empty() {
            return;
        }
        self.inner.log.line(
            "catch_up",
            &[
                ("schedule", &def.name),
                ("missed", &missed.len()),
                ("since", &last),
            ],
        );
        let this = self.clone();
        self.inner.dispatches.spawn(async move {
            for tick in missed {
                this.run_tick(&entry, tick, Origin::CatchUp).await;
            }
        });
    }

    pub(super) async fn run_timer(self) {
        let inner = &self.inner;
        loop {
            let wake = inner.wake.notified();
            let mut wake = std::pin::pin!(wake);
            wake.as_mut().enable();
            let now = Timestamp::now();
            let horizon = now + LEAD;
            let mut due = Vec::new();
            {
                let mut timers = lock(&inner.timers);
                let horizon = horizon.as_millisecond();
                while timers.peek().is_some_and(|Reverse(top)| top.at <= horizon) {
                    if let Some(Reverse(top)) = timers.pop() {
                        due.push(top);
                    }
                }
            }
            if !due.is_empty() {
                self.fire_due(due, now);
            }
            let next_at = lock(&inner.timers).peek().map(|Reverse(top)| top.at());
            let sleep = match next_at {
                Some(at) => duration_until(now, at).saturating_sub(LEAD).min(MAX_SLEEP),
                None => MAX_SLEEP,
            };
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = wake => {}
                _ = inner.stop.cancelled() => return,
            }
        }
    }

    /// Ticks came off the heap (in due order): dispatch them, then re-arm their schedules.
    ///
    /// Ticks due at the same instant share one dispatch that sleeps once and then starts
    /// one task per tick, so thousands of schedules due together cost one timer, and the
    /// dispatch is under way before the (slower) computation of every next tick.
    pub(super) fn fire_due(&self, due: Vec<Due>, now: Timestamp) {
        // A removed, paused or disabled schedule's generation has moved on.
        let live: Vec<(Arc<Entry>, Due)> = due
            .into_iter()
            .filter(|due| lock(&due.entry.state).generation == due.generation)
            .map(|due| (due.entry.clone(), due))
            .collect();
        for same_instant in live.chunk_by(|(_, a), (_, b)| a.at == b.at) {
            // Thousands due together are dispatched in parts, each from a task of its own,
            // so that every worker thread takes part.
            for part in same_instant.chunks(DISPATCH_PART) {
                self.dispatch_together(part, part[0].1.at());
            }
        }
        for (entry, due) in live {
            let mut state = lock(&entry.state);
            if state.generation == due.generation {
                // After a suspend or a clock jump, one late tick fires and the schedule goes
                // on from now rather than replaying every tick it slept through.
                self.arm(
                    &entry,
                    &mut state,
                    due.at().max(now - SignedDuration::from_millis(1)),
                );
            }
        }
    }

    /// One task that sleeps until `at` and then takes the ticks of `due`.
    fn dispatch_together(&self, due: &[(Arc<Entry>, Due)], at: Timestamp) {
        let group: Vec<Arc<Entry>> = due.iter().map(|(entry, _)| entry.clone()).collect();
        let this = self.clone();
        self.inner.dispatches.spawn(async move {
            // Until the instant on the wall clock, which the ticks are of (tokio's timers
            // follow the monotonic clock, which the wall clock may be set against): checked
            // here once for the group, so each tick need not read the clock again.
            loop {
                let wait = duration_until(Timestamp::now(), at);
                if wait.is_zero() {
                    break;
                }
                tokio::select! {
                    _ = this.inner.stop.cancelled() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
            for entry in group {
                if this.never_waits(&entry) {
                    this.run_tick(&entry, at, Origin::Timer).await;
                } else {
                    this.dispatch_now(entry, at, Origin::Timer);
                }
            }
        });
    }

    /// True when a timer's tick of `entry` goes from its instant to its run's start
    /// without waiting (no claim in a store, no `queue` turn, no schedule log following the
    /// run): the group's dispatch then takes it in place, with no task, box or handles of
    /// its own. Were it to wait after all, the dispatch would wait with it; nothing is lost.
    fn never_waits(&self, entry: &Entry) -> bool {
        // Without claims there is no store, so no look at other instances' runs either.
        let inner = &self.inner;
        inner.claims.is_none() && !inner.log.is_enabled() && !matches!(entry.def.overlap, Overlap::Queue)
    }

    /// Takes the tick on the caller's task as far as it goes without waiting, and hands
    /// it to a task of its own only if it has to wait: a tick whose claim needs no store
    /// round trip and whose run starts at once (the run's own task does the rest) costs no
    /// task, so ticks due together start at the pace of the runs themselves.
    pub(super) fn dispatch_now(&self, entry: Arc<Entry>, tick: Timestamp, origin: Origin) {
        let this = self.clone();
        let mut tick = Box::pin(async move { this.run_tick(&entry, tick, origin).await });
        // The spawned task polls again at once with its own waker, which replaces this.
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        if tick.as_mut().poll(&mut cx).is_pending() {
            self.inner.dispatches.spawn(tick);
        }
    }

    pub(super) fn dispatch(&self, entry: Arc<Entry>, tick: Timestamp, origin: Origin) {
        let this = self.clone();
        self.inner
            .dispatches
            .spawn(async move { this.run_tick(&entry, tick, origin).await });
    }
}

/// How many ticks due at the same instant one task dispatches.
const DISPATCH_PART: usize = 256;

/// A schedule's next tick on the heap, ordered by due time. It holds the entry itself (a
/// removed schedule's entry lives until its stale tick comes up), so firing needs no
/// lookup by name.
pub(super) struct Due {
    /// Unix milliseconds: ticks have millisecond precision at most, and a heap slot of a
    /// million is 8 bytes smaller than with a `Timestamp`.
    at: i64,
    generation: u32,
    entry: Arc<Entry>,
}

impl Due {
    fn at(&self) -> Timestamp {
        from_millis(self.at)
    }
}

/// Rounded up, so a tick never fires early, and re-arming after it (with `after` at or
/// past the real tick) cannot find the same tick again.
pub(super) fn ceil_millis(at: Timestamp) -> i64 {
    let ms = at.as_millisecond();
    if from_millis(ms) < at { ms + 1 } else { ms }
}

pub(super) fn from_millis(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(Timestamp::MAX)
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}

impl Eq for Due {}

impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Due {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.generation).cmp(&(other.at, other.generation))
    }
}

pub(super) fn duration_until(now: Timestamp, at: Timestamp) -> Duration {
    Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO)
}
