//! The schedules: each with its timing in words, its next fire times, its last ticks, and
//! Pause, Resume and Run now.

use axum::Extension;
use axum::body::Bytes;
use axum::extract::OriginalUri;
use axum::response::Response;
use jiff::{SignedDuration, Timestamp};
use maud::{Markup, html};

use super::format::{self, query};
use super::layout::{self, Section};
use super::{Form, Ui, runs, write_refusal};
use crate::http::session::UI_PATH;
use crate::http::{Api, Param};
use crate::schedule::{CronExpr, ScheduleInfo};
use crate::{Error, RunFilter, RunRecord};

/// Fire times shown ahead.
const AHEAD: usize = 5;

/// Ticks shown in a schedule's strip.
const STRIP: usize = 30;

/// How the schedule fires, in words.
fn timing(info: &ScheduleInfo) -> Markup {
    html! {
        @if let Some(cron) = &info.cron {
            code { (cron) }
            @if let Ok(parsed) = CronExpr::parse(cron) { " — " (parsed.describe()) }
            @if let Some(tz) = &info.tz { " (" (tz) ")" }
        } @else if let Some(ms) = info.interval_ms {
            "every " (format::duration(ms))
        }
    }
}

/// `active`, `paused` or `disabled`.
fn state(info: &ScheduleInfo) -> Markup {
    let (class, text) = if info.disabled {
        ("status-cancelled", "disabled")
    } else if info.paused {
        ("status-queued", "paused")
    } else {
        ("status-succeeded", "active")
    };
    html! { span class={ "status " (class) } { (text) } }
}

/// The next `AHEAD` fire times of this instance's timer.
fn next_times(info: &ScheduleInfo) -> Vec<Timestamp> {
    let Some(first) = info.next else {
        return Vec::new();
    };
    let mut times = vec![first];
    if let Some(cron) = info.cron.as_deref().and_then(|cron| CronExpr::parse(cron).ok()) {
        let zone = info
            .tz
            .as_deref()
            .and_then(|tz| jiff::tz::TimeZone::get(tz).ok())
            .unwrap_or(jiff::tz::TimeZone::UTC);
        while times.len() < AHEAD {
            let Some(next) = times.last().and_then(|last| cron.next_after(*last, &zone)) else {
                break;
            };
            times.push(next);
        }
    } else if let Some(ms) = info.interval_ms.filter(|ms| *ms > 0) {
        let every = SignedDuration::from_millis(i64::try_from(ms).unwrap_or(i64::MAX));
        while times.len() < AHEAD {
            let Some(next) = times.last().and_then(|last| last.checked_add(every).ok()) else {
                break;
            };
            times.push(next);
        }
    }
    times
}

/// `GET /_tasks/ui/schedules`.
pub(super) async fn list(Extension(api): Extension<Api>) -> Response {
    let ui = Ui::of(&api);
    let schedules = api.scheduler.list();
    let body = html! {
        h1 { "Schedules" }
        @if schedules.is_empty() { p.muted { "The app has no schedule." } } @else {
            table {
                thead { tr { th { "schedule" } th { "task" } th { "when" } th { "type" } th { "next" } th { "last tick" } th { "state" } } }
                tbody {
                    @for info in &schedules {
                        tr data-schedule=(info.name) {
                            td { a href={ (UI_PATH) "/schedules/" (query(&info.name)) } { (info.name) } }
                            td { a href={ (UI_PATH) "/tasks/" (query(&info.task)) } { (info.task) } }
                            td { (timing(info)) }
                            td { (info.kind) @if info.durable { ", durable" } }
                            td { @if let Some(next) = info.next { (format::when(next)) } }
                            td { @if let Some(last) = info.last_tick { (format::when(last)) } }
                            td { (state(info)) }
                        }
                    }
                }
            }
        }
    };
    layout::page(&ui, Section::Schedules, "Schedules", body)
}

/// A strip of a schedule's last ticks: one badge per run, oldest first, with the instance
/// that claimed it.
fn strip(ticks: &[RunRecord]) -> Markup {
    html! {
        div.strip {
            @for run in ticks.iter().rev() {
                a class={ "tick status-" (run.status.as_str()) } href={ (UI_PATH) "/runs/" (run.id) }
                    title={ (run.queued_at) " · " (run.status.as_str()) " · " (run.instance) } {
                    (run.status.as_str().chars().next().unwrap_or('?'))
                }
            }
        }
    }
}

/// What a form's action did, shown on the page it comes back to.
fn notice(uri: &axum::http::Uri) -> Option<&'static str> {
    match crate::http::tasks::query_value(uri, "done").as_deref() {
        Some("paused") => Some("Paused on every instance: no tick fires until it is resumed."),
        Some("resumed") => Some("Resumed on every instance."),
        _ => None,
    }
}

/// `GET /_tasks/ui/schedules/NAME`.
pub(super) async fn detail(
    Extension(api): Extension<Api>,
    Param(name): Param,
    OriginalUri(uri): OriginalUri,
) -> Response {
    let ui = Ui::of(&api);
    let info = match api.scheduler.get(&name) {
        Ok(info) => info,
        Err(error) => return layout::failed(&ui, error),
    };
    let ticks = match api
        .runtime
        .list_runs(&RunFilter::default().schedule(&name).limit(STRIP))
        .await
    {
        Ok(ticks) => ticks,
        Err(error) => return layout::failed(&ui, error),
    };
    let path = format!("{UI_PATH}/schedules/{}", query(&info.name));
    let body = html! {
        h1 { "Schedule " (info.name) " " (state(&info)) }
        @if let Some(notice) = notice(&uri) { p.notice { (notice) } }
        @if ui.writable {
            div.actions {
                @if info.paused {
                    form.inline method="post" action={ (path) "/resume" } { (ui.csrf_field()) button type="submit" { "Resume" } }
                } @else {
                    form.inline method="post" action={ (path) "/pause" } { (ui.csrf_field()) button.quiet type="submit" { "Pause" } }
                }
                form.inline method="post" action={ (path) "/run" } { (ui.csrf_field()) button type="submit" { "Run now" } }
            }
        }
        div.card {
            dl.facts {
                dt { "task" } dd { a href={ (UI_PATH) "/tasks/" (query(&info.task)) } { (info.task) } }
                dt { "when" } dd { (timing(&info)) }
                dt { "type" } dd { (info.kind) }
                dt { "durable" } dd { @if info.durable { "yes" } @else { "no" } }
                dt { "overlap" } dd { (format::name_of(info.overlap)) }
                dt { "catch-up" } dd { (format::name_of(info.catch_up)) }
                dt { "last tick here" } dd { @if let Some(last) = info.last_tick { (format::when(last)) } @else { "none" } }
            }
        }
        h2 { "Next fire times" }
        @let times = next_times(&info);
        @if times.is_empty() { p.muted { "None: it is paused, disabled or past its end." } } @else {
            ol.next { @for time in &times { li { (format::when(*time)) } } }
        }
        h2 { "Last ticks" " " a href={ (UI_PATH) "/runs?schedule=" (query(&info.name)) } { "all" } }
        div data-live-region="ticks" data-live-task=(info.task) {
            @if ticks.is_empty() { p.muted { "No tick yet." } } @else {
                (strip(&ticks))
                (runs::table(&ticks, ""))
            }
        }
    };
    layout::page(&ui, Section::Schedules, &format!("Schedule {}", info.name), body)
}

/// `POST /_tasks/ui/schedules/NAME/pause`.
pub(super) async fn pause(Extension(api): Extension<Api>, Param(name): Param, body: Bytes) -> Response {
    act(api, name, body, Action::Pause).await
}

/// `POST /_tasks/ui/schedules/NAME/resume`.
pub(super) async fn resume(Extension(api): Extension<Api>, Param(name): Param, body: Bytes) -> Response {
    act(api, name, body, Action::Resume).await
}

/// `POST /_tasks/ui/schedules/NAME/run`: a run of its job now, shown at once.
pub(super) async fn run_now(Extension(api): Extension<Api>, Param(name): Param, body: Bytes) -> Response {
    act(api, name, body, Action::RunNow).await
}

enum Action {
    Pause,
    Resume,
    RunNow,
}

async fn act(api: Api, name: String, body: Bytes, action: Action) -> Response {
    let ui = Ui::of(&api);
    if let Some(refused) = write_refusal(&api, &ui, &Form::parse(&body)) {
        return refused;
    }
    let path = format!("{UI_PATH}/schedules/{}", query(&name));
    let done: Result<String, Error> = match action {
        Action::Pause => api
            .scheduler
            .pause(&name)
            .await
            .map(|()| format!("{path}?done=paused")),
        Action::Resume => api
            .scheduler
            .resume(&name)
            .await
            .map(|()| format!("{path}?done=resumed")),
        Action::RunNow => match api.scheduler.start_schedule(&name).await {
            Ok(handle) => api
                .runtime
                .flush_records()
                .await
                .map(|()| format!("{UI_PATH}/runs/{}", handle.run_id())),
            Err(error) => Err(error),
        },
    };
    match done {
        Ok(location) => layout::see_other(&location),
        Err(error) => layout::failed(&ui, error),
    }
}
