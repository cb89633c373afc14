//! Custom strategies' sends: `send_one` runs the schedule's task here, `send_all` here and,
//! through the store's broadcasts that every instance polls, on the other instances too.

use std::collections::HashMap;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

use super::{BROADCAST_POLL, BROADCAST_WINDOW, Entry, Origin, Scheduler, inactive};
use crate::schedule::strategy::StrategySender;
use crate::store::Broadcast;
use crate::sync::lock;
use crate::{Error, RunHandle, Trigger};

impl Scheduler {
    /// A strategy's `send_one`.
    pub(crate) async fn send_one(&self, sender: &StrategySender, args: Value) -> Result<RunHandle, Error> {
        let entry = self.sender_entry(sender)?;
        self.start_custom(&entry, args, Origin::SendOne).await
    }

    /// A strategy's `send_all`: the broadcast is written first, so the other instances run
    /// their share even if this one's fails.
    pub(crate) async fn send_all(&self, sender: &StrategySender, args: Value) -> Result<RunHandle, Error> {
        let entry = self.sender_entry(sender)?;
        let inner = &self.inner;
        if let Some(store) = inner.store.as_ref().filter(|_| inner.shared) {
            store
                .broadcast(&Broadcast {
                    id: uuid::Uuid::now_v7().to_string(),
                    schedule: entry.def.name.to_string(),
                    args: args.clone(),
                    origin: inner.instance.clone(),
                    sent_at: Timestamp::now(),
                })
                .await?;
        }
        self.start_custom(&entry, args, Origin::SendAll).await
    }

    pub(super) fn sender_entry(&self, sender: &StrategySender) -> Result<Arc<Entry>, Error> {
        let inactive = |state| inactive(&sender.schedule, state);
        if self.inner.stop.is_cancelled() {
            return Err(inactive("stopped"));
        }
        if sender.closed.is_cancelled() {
            return Err(inactive("disabled or removed"));
        }
        self.entry(&sender.schedule).map_err(|_| inactive("removed"))
    }

    /// Starts a run for a strategy's send (or another instance's broadcast).
    pub(super) async fn start_custom(
        &self,
        entry: &Arc<Entry>,
        args: Value,
        origin: Origin,
    ) -> Result<RunHandle, Error> {
        let def = &entry.def;
        {
            let state = lock(&entry.state);
            if state.disabled {
                return Err(inactive(&def.name, "disabled"));
            }
            if state.paused {
                return Err(inactive(&def.name, "paused"));
            }
        }
        let handle = self
            .start_run(
                entry,
                def.request_by(Trigger::Custom {
                    strategy: def.kind.as_str().to_owned(),
                    schedule: def.name.to_string(),
                    args,
                }),
            )
            .await?;
        self.inner.log.line(
            "trigger",
            &[
                ("schedule", &def.name),
                ("origin", &origin.as_str()),
                ("instance", &self.inner.instance),
            ],
        );
        let this = self.clone();
        let entry = entry.clone();
        let followed = handle.clone();
        self.inner
            .dispatches
            .spawn(async move { this.follow_run(&entry.def, followed).await });
        Ok(handle)
    }

    /// Runs other instances' `send_all` broadcasts here, each once.
    pub(super) async fn run_broadcasts(self, started: Timestamp) {
        let inner = &self.inner;
        let Some(store) = inner.store.clone() else {
            return;
        };
        // Broadcasts sent before this instance started are not its to run. The store keeps
        // whole milliseconds, so the start is rounded down to match.
        let started = Timestamp::from_millisecond(started.as_millisecond()).unwrap_or(started);
        let mut seen: HashMap<String, Timestamp> = HashMap::new();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(BROADCAST_POLL) => {}
                _ = inner.stop.cancelled() => return,
            }
            let since = started.max(Timestamp::now() - BROADCAST_WINDOW);
            let broadcasts = match store.broadcasts_since(since).await {
                Ok(broadcasts) => broadcasts,
                Err(error) => {
                    tracing::warn!(%error, "cannot read strategy broadcasts; trying again");
                    continue;
                }
            };
            for broadcast in broadcasts {
                if broadcast.origin == inner.instance || seen.contains_key(&broadcast.id) {
                    continue;
                }
                seen.insert(broadcast.id.clone(), broadcast.sent_at);
                let started = match self.entry(&broadcast.schedule) {
                    Ok(entry) => self.start_custom(&entry, broadcast.args, Origin::Broadcast).await,
                    Err(error) => Err(error),
                };
                if let Err(error) = started {
                    inner.log.line(
                        "skipped",
                        &[
                            ("schedule", &broadcast.schedule),
                            ("origin", &Origin::Broadcast.as_str()),
                            ("reason", &error),
                        ],
                    );
                }
            }
            // Kept a second longer than a poll can return them (the store keeps whole
            // milliseconds), so none is seen as new twice.
            let forget_before = since - SignedDuration::from_secs(1);
            seen.retain(|_, sent_at| *sent_at >= forget_before);
        }
    }
}
