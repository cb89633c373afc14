//! `GET /_tasks/events`: run events as server-sent events.
//!
//! Each event's name is its kind (`started`, `progress`, `finished`) and its data the
//! [`RunEvent`] as JSON. `?task=NAME` keeps one task's events; `?run=ID` follows one run:
//! the stream opens with a `run` event holding the run's record as it is now, so a client
//! that subscribes late misses nothing, and it ends after that run's `finished` event (at
//! once if the run had already finished). A client too slow to keep up gets a `lagged`
//! event with the number of events it missed. A followed run that executes on another
//! instance sends its events there; its record is read every second, so the stream still
//! ends with `finished`. Every stream ends when the app shuts down.

use std::convert::Infallible;
use std::time::Duration;

use axum::Extension;
use axum::extract::OriginalUri;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use futures_util::stream;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::sync::CancellationToken;

use super::tasks::query_value;
use super::{Api, HttpError};
use crate::run::RunEventKind;
use crate::{Error, RunEvent, RunId, Runtime};

/// How often a followed run's record is read again, for runs whose events this instance
/// does not see (they execute on another instance).
const RECHECK: Duration = Duration::from_secs(1);

struct Follow {
    runtime: Runtime,
    events: broadcast::Receiver<RunEvent>,
    closing: CancellationToken,
    task: Option<String>,
    run: Option<RunId>,
    first: Option<Event>,
    done: bool,
    /// When the followed run's record is read next: a fixed cadence, which events of
    /// other runs arriving in between do not push back.
    next_check: tokio::time::Instant,
}

impl Follow {
    /// The followed run's `finished` event, made from its record, once the record says it
    /// has finished.
    async fn finished_elsewhere(&self) -> Option<RunEvent> {
        let record = self.runtime.get_run(self.run?).await.ok()??;
        if !record.status.is_final() {
            return None;
        }
        Some(RunEvent {
            run_id: record.id,
            task: record.task,
            at: record.finished_at.unwrap_or_else(jiff::Timestamp::now),
            kind: RunEventKind::Finished {
                status: record.status,
                error: record.error,
            },
        })
    }

    fn wants(&self, event: &RunEvent) -> bool {
        self.run.is_none_or(|run| run == event.run_id)
            && self.task.as_deref().is_none_or(|task| task == event.task)
    }
}

pub(super) async fn stream(
    Extension(api): Extension<Api>,
    OriginalUri(uri): OriginalUri,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, HttpError> {
    // Subscribed before the run is read, so nothing falls between the two.
    let events = api.runtime.subscribe();
    let task = query_value(&uri, "task");
    let mut follow = Follow {
        runtime: api.runtime.clone(),
        events,
        closing: api.closing.clone(),
        task,
        run: None,
        first: None,
        done: false,
        next_check: tokio::time::Instant::now() + RECHECK,
    };
    if let Some(id) = query_value(&uri, "run") {
        let not_found = || HttpError::from(Error::RunNotFound(id.clone()));
        let run_id: RunId = id.parse().map_err(|_| not_found())?;
        let record = api.runtime.get_run(run_id).await?.ok_or_else(not_found)?;
        follow.done = record.status.is_final();
        follow.first = Some(json_event("run", &record));
        follow.run = Some(run_id);
    }
    let stream = stream::unfold(follow, |mut follow| async move {
        if let Some(first) = follow.first.take() {
            return Some((Ok(first), follow));
        }
        if follow.done {
            return None;
        }
        loop {
            let received = tokio::select! {
                _ = follow.closing.cancelled() => return None,
                received = follow.events.recv() => received,
                _ = tokio::time::sleep_until(follow.next_check), if follow.run.is_some() => {
                    follow.next_check = tokio::time::Instant::now() + RECHECK;
                    match follow.finished_elsewhere().await {
                        Some(event) => {
                            follow.done = true;
                            return Some((Ok(json_event("finished", &event)), follow));
                        }
                        None => continue,
                    }
                }
            };
            match received {
                Ok(event) if follow.wants(&event) => {
                    let name = match &event.kind {
                        RunEventKind::Started { .. } => "started",
                        RunEventKind::Progress(_) => "progress",
                        RunEventKind::Finished { .. } => {
                            follow.done = follow.run.is_some();
                            "finished"
                        }
                    };
                    return Some((Ok(json_event(name, &event)), follow));
                }
                Ok(_) => continue,
                Err(RecvError::Lagged(missed)) => {
                    let event = Event::default().event("lagged").data(missed.to_string());
                    return Some((Ok(event), follow));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

fn json_event(name: &str, data: &impl serde::Serialize) -> Event {
    // Serialising these types cannot fail (string keys, no custom serialisers that error).
    let data = serde_json::to_string(data).unwrap_or_else(|_| "null".to_owned());
    Event::default().event(name).data(data)
}
