//! A tick fired from outside: a platform's scheduler (crontab, systemd, Kubernetes,
//! Cloudflare, Vercel) runs `APP task run TASK --schedule NAME --tick auto` or calls
//! `POST /_tasks/schedules/NAME/tick`. The tick is claimed in the same ledger as the
//! timers' ticks, so a platform's duplicate fire, or this app's own timer, runs it once.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::durable::Claimed;
use super::tick::{Held, Turn};
use super::{Origin, Scheduler};
use crate::schedule::checked::{Kind, ScheduleDef};
use crate::store::TickClaim;
use crate::sync::lock;
use crate::{Error, RunHandle};

/// A platform may fire a little before the tick by its own clock: ticks this far after
/// now still count as due.
const EARLY: SignedDuration = SignedDuration::from_secs(2);

/// Which tick a fire is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TickAt {
    /// The latest tick due now (a tick up to 2 s ahead counts, for a platform whose clock
    /// runs a little ahead).
    Auto,
    /// This tick, which must be one of the schedule's (a platform that says which time it
    /// fires for: Cloudflare's `scheduledTime`).
    At(Timestamp),
}

impl TickAt {
    /// `auto`, a time with its offset (RFC 3339), or Unix milliseconds (Cloudflare's
    /// `scheduledTime`).
    pub fn parse(text: &str) -> Result<TickAt, Error> {
        if text == "auto" {
            return Ok(TickAt::Auto);
        }
        let parsed = match text.parse::<i64>() {
            Ok(ms) => Timestamp::from_millisecond(ms).ok(),
            Err(_) => text.parse::<Timestamp>().ok(),
        };
        parsed.map(TickAt::At).ok_or_else(|| Error::Usage {
            message: format!(
                "the tick `{text}` is not `auto`, a time with its offset (2026-12-01T03:00:00Z) or Unix milliseconds"
            ),
        })
    }
}

/// What a fire did.
#[derive(Debug)]
pub enum Fired {
    /// The tick was claimed here and its run started.
    Started {
        /// The tick.
        tick: Timestamp,
        /// Its run.
        handle: RunHandle,
    },
    /// The tick was claimed before (a duplicate fire, or an instance's own timer): nothing
    /// ran.
    Claimed {
        /// The tick.
        tick: Timestamp,
    },
    /// The schedule is paused or disabled (nothing was claimed), or the app stopped while
    /// a `queue` tick waited for its turn: nothing ran.
    Inactive {
        /// The tick.
        tick: Timestamp,
        /// `paused`, `disabled` or `stopped`.
        state: &'static str,
    },
    /// `overlap = "skip"` and an earlier tick's run still goes on: the tick is claimed and
    /// skipped.
    Skipped {
        /// The tick.
        tick: Timestamp,
        /// The run still going.
        previous_run: String,
    },
    /// No tick is due: the schedule has not started yet (`start`) or has ended.
    NoTick,
}

impl Scheduler {
    /// Fires a schedule's tick from outside the app's timers: claims it in the ledger and,
    /// when this call's claim landed, starts its run under the schedule's overlap policy.
    pub async fn fire(&self, name: &str, at: TickAt) -> Result<Fired, Error> {
        let entry = self.entry(name)?;
        let def = &entry.def;
        let invalid = |message: String| Error::InvalidSchedule {
            schedule: name.to_owned(),
            message,
        };
        if def.kind == Kind::All {
            return Err(invalid(
                "`type = \"all\"` runs each tick on every instance; only the instances' own timers fire it"
                    .to_owned(),
            ));
        }
        let tick = match at {
            TickAt::At(tick) => {
                let previous = def.next_tick(tick - SignedDuration::from_nanos(1));
                if previous != Some(tick) {
                    let next = previous.map_or_else(|| "none".to_owned(), |next| next.to_string());
                    return Err(invalid(format!(
                        "{tick} is not one of its ticks (the next one from then: {next})"
                    )));
                }
                tick
            }
            // Past its `end` (by more than a late platform's minute), nothing is due.
            TickAt::Auto
                if def
                    .end()
                    .is_some_and(|end| Timestamp::now() - SignedDuration::from_mins(1) > end) =>
            {
                return Ok(Fired::NoTick);
            }
            TickAt::Auto => match latest_tick(def, Timestamp::now() + EARLY) {
                Some(tick) => tick,
                None => return Ok(Fired::NoTick),
            },
        };
        if self.inner.shared {
            self.refresh_members().await;
        }
        let paused = lock(&entry.state).paused || self.stored_pauses().await?.contains(name);
        let disabled = lock(&entry.state).disabled;
        if paused || disabled {
            let state = if paused { "paused" } else { "disabled" };
            return Ok(Fired::Inactive { tick, state });
        }
        if let Some(store) = &self.inner.store {
            let claim = TickClaim {
                schedule: def.name.to_string(),
                tick,
                target: String::new(),
                instance: self.inner.instance.clone(),
                claimed_at: Timestamp::now(),
            };
            if self.claims_with_run(&entry) {
                return match self.claim_with_run(&entry, &claim, Origin::Platform).await? {
                    Claimed::Started(handle, turn) => {
                        self.follow_fired(def, &handle, turn);
                        Ok(Fired::Started { tick, handle })
                    }
                    Claimed::Skipped(skip) => Ok(Fired::Skipped {
                        tick,
                        previous_run: skip.run_id,
                    }),
                    Claimed::Elsewhere => Ok(Fired::Claimed { tick }),
                    Claimed::Stopped => Ok(Fired::Inactive {
                        tick,
                        state: "stopped",
                    }),
                };
            }
            let claimed = match store.claim_tick(&claim).await {
                Ok(claimed) => claimed,
                Err(error) => self.claim_again(&claim, error).await?,
            };
            if !claimed {
                return Ok(Fired::Claimed { tick });
            }
        }
        let turn = match self.take_turn(&entry, tick, Origin::Platform).await {
            Turn::Go(turn) => turn,
            Turn::Skipped(skip) => {
                return Ok(Fired::Skipped {
                    tick,
                    previous_run: skip.run_id,
                });
            }
            Turn::Stopped => {
                return Ok(Fired::Inactive {
                    tick,
                    state: "stopped",
                });
            }
        };
        let handle = self.start_run(&entry, def.request(tick)).await?;
        self.follow_fired(def, &handle, turn.started());
        Ok(Fired::Started { tick, handle })
    }

    /// Follows a fired tick's run on a task of its own, since the fire answers once it has
    /// started: writes its start and end to the schedule log, and holds a `queue`
    /// schedule's turn until it ends, so that the schedule's next tick here waits for it.
    fn follow_fired(&self, def: &ScheduleDef, handle: &RunHandle, turn: Held<'_>) {
        let queue = match turn {
            Held::Queue(turn) => Some(turn),
            Held::Nothing | Held::Starting(_) => None,
        };
        let follower = self.clone();
        let followed = handle.clone();
        let def = def.clone();
        tokio::spawn(async move {
            follower.follow_run(&def, followed).await;
            drop(queue);
        });
    }
}

/// The latest tick at or before `now`, or `None` when there is none (before `start`).
fn latest_tick(def: &ScheduleDef, now: Timestamp) -> Option<Timestamp> {
    // Look back over widening windows until one holds a tick, then take its last.
    let mut window = Duration::from_secs(2);
    loop {
        let from = now.checked_sub(SignedDuration::try_from(window).ok()?).ok()?;
        let mut latest = None;
        let mut at = from;
        while let Some(next) = def.next_tick(at) {
            if next > now {
                break;
            }
            latest = Some(next);
            at = next;
        }
        if latest.is_some() {
            return latest;
        }
        if window > Duration::from_secs(400 * 86_400) {
            return None;
        }
        window *= 4;
    }
}
