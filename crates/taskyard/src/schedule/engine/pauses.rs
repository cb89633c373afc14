//! Pausing and resuming schedules for the whole cluster: a pause or resume through any
//! instance is written to the store before it takes effect there, every instance applies
//! the store's state within [`FOLLOW`], and an instance starting up begins from it, so a
//! pause survives restarts. A resumed schedule applies its catch-up policy to the ticks it
//! missed while paused (once across the cluster, through the tick ledger).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;

use super::{Entry, Scheduler};
use crate::Error;
use crate::schedule::definition::CatchUp;
use crate::store::SchedulePause;
use crate::sync::lock;

/// How often an instance reads the pauses stored through the other instances.
const FOLLOW: Duration = Duration::from_millis(500);

impl Scheduler {
    /// Stops a schedule's timer, on every instance sharing this app's store (within a
    /// second), until [`resume`](Self::resume); the pause is stored, so it survives restarts.
    pub async fn pause(&self, name: &str) -> Result<(), Error> {
        self.set_paused(name, true).await
    }

    /// Restarts a paused schedule's timer from now, on every instance; the ticks missed
    /// while it was paused are handled by its catch-up policy (dropped by default).
    pub async fn resume(&self, name: &str) -> Result<(), Error> {
        self.set_paused(name, false).await
    }

    async fn set_paused(&self, name: &str, paused: bool) -> Result<(), Error> {
        let entry = self.entry(name)?;
        let inner = &self.inner;
        if let Some(store) = inner.store.as_ref().filter(|_| inner.shared) {
            let pause = SchedulePause {
                schedule: name.to_owned(),
                paused,
                changed_at: Timestamp::now(),
                instance: inner.instance.clone(),
            };
            store.set_schedule_paused(&pause).await?;
        }
        if paused {
            self.pause_here(&entry, None);
        } else {
            self.resume_here(&entry, None).await;
        }
        Ok(())
    }

    /// Pauses the schedule on this instance; `through` names the instance it was paused
    /// through, when another.
    pub(super) fn pause_here(&self, entry: &Entry, through: Option<&str>) {
        let mut state = lock(&entry.state);
        if state.paused {
            return;
        }
        state.paused = true;
        state.generation = state.generation.wrapping_add(1);
        drop(state);
        self.log_change("paused", entry, through);
    }

    /// Resumes the schedule on this instance and catches up the ticks it missed.
    async fn resume_here(&self, entry: &Arc<Entry>, through: Option<&str>) {
        let now = Timestamp::now();
        {
            let mut state = lock(&entry.state);
            if !state.paused {
                return;
            }
            state.paused = false;
            state.generation = state.generation.wrapping_add(1);
            if !state.disabled {
                self.arm(entry, &mut state, now);
            }
        }
        self.log_change("resumed", entry, through);
        self.inner.wake.notify_one();
        let def = &entry.def;
        let Some(store) = &self.inner.store else {
            return;
        };
        if def.catch_up == CatchUp::Skip || def.disable {
            return;
        }
        match store.last_tick(&def.name).await {
            Ok(Some(last)) => self.catch_up(entry.clone(), last, now),
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(schedule = %def.name, %error, "cannot read the last tick; the ticks missed while paused are dropped")
            }
        }
    }

    fn log_change(&self, event: &str, entry: &Entry, through: Option<&str>) {
        match through {
            Some(instance) => self
                .inner
                .log
                .line(event, &[("schedule", &entry.def.name), ("through", &instance)]),
            None => self.inner.log.line(event, &[("schedule", &entry.def.name)]),
        }
    }

    /// The schedules paused in the store, for a starting instance; none without a store
    /// shared with other instances.
    pub(super) async fn stored_pauses(&self) -> Result<HashSet<String>, Error> {
        let inner = &self.inner;
        let Some(store) = inner.store.as_ref().filter(|_| inner.shared) else {
            return Ok(HashSet::new());
        };
        Ok(store
            .schedule_pauses()
            .await?
            .into_iter()
            .filter(|pause| pause.paused)
            .map(|pause| pause.schedule)
            .collect())
    }

    /// Applies the pauses and resumes stored through other instances until the scheduler
    /// stops.
    pub(super) async fn follow_pauses(self) {
        let inner = &self.inner;
        let Some(store) = inner.store.clone() else {
            return;
        };
        loop {
            tokio::select! {
                () = tokio::time::sleep(FOLLOW) => {}
                () = inner.stop.cancelled() => return,
            }
            let pauses = match store.schedule_pauses().await {
                Ok(pauses) => pauses,
                Err(error) => {
                    tracing::warn!(%error, "cannot read schedule pauses; trying again");
                    continue;
                }
            };
            for pause in pauses {
                let Ok(entry) = self.entry(&pause.schedule) else {
                    continue;
                };
                let here = lock(&entry.state).paused;
                let through = Some(pause.instance.as_str());
                match (pause.paused, here) {
                    (true, false) => self.pause_here(&entry, through),
                    (false, true) => self.resume_here(&entry, through).await,
                    _ => {}
                }
            }
        }
    }
}
