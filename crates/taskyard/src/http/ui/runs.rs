//! The runs: a list filtered through the URL and paged by keyset (`before` = the last run
//! of the page), one run in full, and its cancel and retry.

use axum::Extension;
use axum::body::Bytes;
use axum::extract::OriginalUri;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use maud::{Markup, html};

use super::format::{self, query};
use super::layout::{self, Section};
use super::{Form, Ui, write_refusal};
use crate::http::session::UI_PATH;
use crate::http::{Api, Param};
use crate::{Error, RunFilter, RunId, RunRecord, RunStatus, Trigger};

/// Runs on one page unless the URL asks for another number.
pub(super) const PAGE: usize = 50;

/// Most runs on one page.
pub(super) const MOST: usize = 500;

/// A table of runs, or `empty` when there are none.
pub(super) fn table(runs: &[RunRecord], empty: &str) -> Markup {
    html! {
        @if runs.is_empty() {
            p.muted { (empty) }
        } @else {
            table.runs {
                thead { tr {
                    th { "run" } th { "task" } th { "status" } th { "trigger" } th { "instance" }
                    th { "queued" } th.num { "duration" } th.num { "attempt" }
                } }
                tbody {
                    @for run in runs {
                        tr data-run=(run.id) {
                            td { a href={ (UI_PATH) "/runs/" (run.id) } { code { (short_id(run.id)) } } }
                            td { a href={ (UI_PATH) "/runs?task=" (query(&run.task)) } { (run.task) } }
                            td { (format::status(run.status)) }
                            td { (format::trigger(&run.trigger)) }
                            td { code { (run.instance) } }
                            td { (format::when(run.queued_at)) }
                            td.num { @if let Some(ms) = run.duration_ms { (format::duration(ms)) } }
                            td.num { (run.attempt) }
                        }
                    }
                }
            }
        }
    }
}

/// The last part of a run id, which tells runs of one moment apart.
fn short_id(id: RunId) -> String {
    let id = id.to_string();
    id[id.len().saturating_sub(12)..].to_owned()
}

/// The filter the URL asks for, or what is wrong with it.
fn filter_of(uri: &Uri) -> Result<RunFilter, String> {
    RunFilter::default()
        .limit(PAGE)
        .from_query(uri.query().unwrap_or(""), MOST)
        .map_err(|bad| bad.to_string())
}

/// The URL of the runs list under `filter`, starting after `before`.
pub(super) fn list_url(filter: &RunFilter, before: Option<RunId>) -> String {
    format!("{UI_PATH}/runs?{}", list_query(filter, before))
}

/// The query string of [`list_url`].
pub(super) fn list_query(filter: &RunFilter, before: Option<RunId>) -> String {
    let mut url = form_urlencoded::Serializer::new(String::new());
    if let Some(task) = &filter.task {
        url.append_pair("task", task);
    }
    if let Some(status) = filter.status {
        url.append_pair("status", status.as_str());
    }
    if let Some(schedule) = &filter.schedule {
        url.append_pair("schedule", schedule);
    }
    if filter.unfinished {
        url.append_pair("unfinished", "true");
    }
    if let Some(kind) = &filter.trigger {
        url.append_pair("trigger", kind);
    }
    if let Some(instance) = &filter.instance {
        url.append_pair("instance", instance);
    }
    if let Some(since) = filter.since {
        url.append_pair("since", &since.to_string());
    }
    if let Some(until) = filter.until {
        url.append_pair("until", &until.to_string());
    }
    if let Some(text) = &filter.text {
        url.append_pair("q", text);
    }
    if filter.limit != PAGE {
        url.append_pair("limit", &filter.limit.to_string());
    }
    if let Some(before) = before {
        url.append_pair("before", &before.to_string());
    }
    url.finish()
}

/// `GET /_tasks/ui/runs`.
pub(super) async fn list(Extension(api): Extension<Api>, OriginalUri(uri): OriginalUri) -> Response {
    let ui = Ui::of(&api);
    let filter = match filter_of(&uri) {
        Ok(filter) => filter,
        Err(message) => return layout::problem(&ui, StatusCode::BAD_REQUEST, &message),
    };
    let runs = match api.runtime.list_runs(&filter).await {
        Ok(runs) => runs,
        Err(error) => return layout::failed(&ui, error),
    };
    let mut tasks: Vec<String> = api
        .runtime
        .tasks()
        .into_iter()
        .map(|entry| entry.name.to_string())
        .collect();
    tasks.sort();
    let older = (runs.len() == filter.limit)
        .then(|| runs.last().map(|run| list_url(&filter, Some(run.id))))
        .flatten();
    let body = html! {
        h1 { "Runs" }
        @if let Some(notice) = super::bulk::notice(&uri) { p.notice { (notice) } }
        form.filters method="get" action={ (UI_PATH) "/runs" } {
            label { "task" select name="task" {
                option value="" { "any" }
                @for task in &tasks {
                    option value=(task) selected[filter.task.as_deref() == Some(task.as_str())] { (task) }
                }
            } }
            label { "status" select name="status" {
                option value="" { "any" }
                @for status in RunStatus::ALL {
                    option value=(status.as_str()) selected[filter.status == Some(status)] { (status.as_str()) }
                }
            } }
            label { "trigger" select name="trigger" {
                option value="" { "any" }
                @for kind in Trigger::KINDS {
                    option value=(kind) selected[filter.trigger.as_deref() == Some(kind)] { (kind) }
                }
            } }
            label { "schedule" input type="text" name="schedule" value=[filter.schedule.as_deref()]; }
            label { "instance" input type="text" name="instance" value=[filter.instance.as_deref()]; }
            label { "queued since" input type="text" name="since" placeholder="2026-11-30T09:00Z" value=[filter.since.map(|at| at.to_string())]; }
            label { "until" input type="text" name="until" placeholder="RFC 3339" value=[filter.until.map(|at| at.to_string())]; }
            label { "text in payload, result, error" input type="search" name="q" value=[filter.text.as_deref()]; }
            label { "unfinished only" input type="checkbox" name="unfinished" value="true" checked[filter.unfinished]; }
            button type="submit" { "Filter" }
            a href={ (UI_PATH) "/runs" } { "clear" }
        }
        @if ui.writable {
            @let query = list_query(&filter, None);
            div.actions {
                a href={ (UI_PATH) "/runs/bulk?action=cancel&" (query) } { "Cancel every matching run…" }
                a href={ (UI_PATH) "/runs/bulk?action=retry&" (query) } { "Retry every matching run…" }
            }
        }
        // The first page follows new runs; an older page stays as it was drawn.
        @let live = filter.before.is_none().then_some("runs");
        div data-live-region=[live] data-live-task=[filter.task.as_deref()] {
            (table(&runs, "No run matches."))
            div.pager {
                @if filter.before.is_some() { a href=(list_url(&filter, None)) { "← newest" } }
                @if let Some(older) = older { a href=(older) rel="next" { "older →" } }
            }
        }
    };
    layout::page(&ui, Section::Runs, "Runs", body)
}

/// What a form's action did, shown on the page it comes back to.
fn notice(uri: &Uri) -> Option<&'static str> {
    match crate::http::tasks::query_value(uri, "done").as_deref() {
        Some("cancelled") => Some("Cancel asked: the run ends cancelled within a second wherever it runs."),
        Some("already-ended") => Some("The run had already ended: nothing was cancelled."),
        Some("retried") => Some("Queued again as its next attempt."),
        _ => None,
    }
}

/// `GET /_tasks/ui/runs/ID`.
pub(super) async fn detail(
    Extension(api): Extension<Api>,
    Param(id): Param,
    OriginalUri(uri): OriginalUri,
) -> Response {
    let ui = Ui::of(&api);
    let run = match read_run(&api, &id).await {
        Ok(run) => run,
        Err(error) => return layout::failed(&ui, error),
    };
    let title = format!("Run {}", short_id(run.id));
    let body = html! {
        @if let Some(notice) = notice(&uri) { p.notice { (notice) } }
        div data-live-region="run" data-live-run=(run.id) {
        h1 { "Run of " a href={ (UI_PATH) "/runs?task=" (query(&run.task)) } { (run.task) } " " (format::status(run.status)) }
        @if ui.writable {
            div.actions {
                @if !run.status.is_final() {
                    form.inline method="post" action={ (UI_PATH) "/runs/" (run.id) "/cancel" }
                        data-confirm="Cancel this run?" {
                        (ui.csrf_field())
                        button.danger type="submit" { "Cancel" }
                    }
                }
                @if run.status.is_final() && run.status != RunStatus::Succeeded {
                    form.inline method="post" action={ (UI_PATH) "/runs/" (run.id) "/retry" } {
                        (ui.csrf_field())
                        button type="submit" { "Retry" }
                    }
                }
            }
        }
        div.card {
            dl.facts {
                dt { "id" } dd { code { (run.id) } }
                dt { "trigger" } dd { (format::trigger(&run.trigger)) }
                dt { "instance" } dd { code { (run.instance) } }
                dt { "queued" } dd { (format::when(run.queued_at)) }
                dt { "started" } dd { @if let Some(at) = run.started_at { (format::when(at)) } @else { span.muted { "not yet" } } }
                dt { "ended" } dd { @if let Some(at) = run.finished_at { (format::when(at)) } @else { span.muted { "not yet" } } }
                dt { "duration" } dd { @if let Some(ms) = run.duration_ms { (format::duration(ms)) } }
                dt { "attempt" } dd { (run.attempt) }
                @if let Some(progress) = &run.progress {
                    dt { "progress" }
                    dd {
                        progress data-run-progress max="1" value=(progress.fraction) { (format!("{:.0} %", progress.fraction * 100.0)) }
                        " "
                        span data-run-progress-message {
                            (format!("{:.0} %", progress.fraction * 100.0))
                            @if let Some(message) = &progress.message { " — " (message) }
                        }
                    }
                }
            }
        }
        h2 { "Payload" }
        (format::json(&run.payload))
        @if let Some(result) = &run.result { h2 { "Result" } (format::json(result)) }
        @if let Some(error) = &run.error { h2 { "Error" } pre { (error) } }
        @if run.status != RunStatus::Queued || !run.attempts.is_empty() {
            h2 { "Attempts" }
            (super::timeline::attempts(&run))
        }
        }
    };
    layout::page(&ui, Section::Runs, &title, body)
}

async fn read_run(api: &Api, id: &str) -> Result<RunRecord, Error> {
    let run_id: RunId = id.parse().map_err(|_| Error::RunNotFound(id.to_owned()))?;
    api.runtime
        .get_run(run_id)
        .await?
        .ok_or_else(|| Error::RunNotFound(id.to_owned()))
}

/// `POST /_tasks/ui/runs/ID/cancel`.
pub(super) async fn cancel(Extension(api): Extension<Api>, Param(id): Param, body: Bytes) -> Response {
    act(api, id, body, Action::Cancel).await
}

/// `POST /_tasks/ui/runs/ID/retry`.
pub(super) async fn retry(Extension(api): Extension<Api>, Param(id): Param, body: Bytes) -> Response {
    act(api, id, body, Action::Retry).await
}

enum Action {
    Cancel,
    Retry,
}

async fn act(api: Api, id: String, body: Bytes, action: Action) -> Response {
    let ui = Ui::of(&api);
    if let Some(refused) = write_refusal(&api, &ui, &Form::parse(&body)) {
        return refused;
    }
    let run = match read_run(&api, &id).await {
        Ok(run) => run,
        Err(error) => return layout::failed(&ui, error),
    };
    let done = match action {
        Action::Cancel => api
            .runtime
            .cancel(run.id)
            .await
            .map(|cancelled| if cancelled { "cancelled" } else { "already-ended" }),
        Action::Retry => api.runtime.retry(run.id).await.map(|_| "retried"),
    };
    match done {
        Ok(done) => layout::see_other(&format!("{UI_PATH}/runs/{}?done={done}", run.id)),
        Err(error) => layout::failed(&ui, error),
    }
}
