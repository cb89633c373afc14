//! `GET /_tasks/ui`: the state of the app at a glance — its store, what runs now, what
//! failed lately.

use axum::Extension;
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;

use super::charts::Window;
use super::layout::{self, Section};
use super::{Ui, format, runs};
use crate::http::Api;
use crate::http::session::UI_PATH;
use crate::{RunFilter, RunStatus};

/// Runs shown in each list of the overview.
const SHOWN: usize = 10;

pub(super) async fn page(Extension(api): Extension<Api>) -> Response {
    let ui = Ui::of(&api);
    let runtime = &api.runtime;
    let unfinished = runtime
        .list_runs(&RunFilter::default().unfinished().limit(SHOWN))
        .await;
    let failed = runtime
        .list_runs(&RunFilter::default().status(RunStatus::Failed).limit(SHOWN))
        .await;
    let (unfinished, failed) = match (unfinished, failed) {
        (Ok(unfinished), Ok(failed)) => (unfinished, failed),
        (Err(error), _) | (_, Err(error)) => {
            let message = format!("The run history cannot be read: {error}");
            return layout::problem(&ui, StatusCode::SERVICE_UNAVAILABLE, &message);
        }
    };
    let instances = match runtime.instances().await {
        Ok(instances) => instances,
        Err(error) => {
            let message = format!("The instances cannot be read: {error}");
            return layout::problem(&ui, StatusCode::SERVICE_UNAVAILABLE, &message);
        }
    };
    let now = jiff::Timestamp::now();
    let failure = runtime.store_failure();
    let body = html! {
        h1 { "Overview" }
        @if let Some(failure) = &failure {
            p.problem { "The store does not take writes: " (failure.error) }
        }
        div.grid data-live-region="counts" {
            div.card.stat { div.value { (runtime.tasks().len()) } div.label { "tasks" } }
            div.card.stat { div.value { (api.scheduler.list().len()) } div.label { "schedules" } }
            div.card.stat { div.value { (runtime.active_runs()) } div.label { "runs active on this instance" } }
            div.card.stat {
                div.value { (runtime.store().map_or("none", |store| store.backend())) }
                div.label { "store" @if failure.is_none() { ", taking writes" } }
            }
        }
        h2 { "Finished runs" }
        div.charts data-live-region="charts" {
            @for window in [Window::Hour, Window::Day] {
                img src=(window.href(now)) data-chart=(window.name()) width="720" height="160"
                    alt="Runs finished, by bucket of time: succeeded, failed and cancelled, and the failure rate";
            }
        }
        h2 { "Queued and running" " " a href={ (UI_PATH) "/runs?unfinished=true" } { "all" } }
        div data-live-region="unfinished" { (runs::table(&unfinished, "Nothing is queued or running.")) }
        h2 { "Recent failures" " " a href={ (UI_PATH) "/runs?status=failed" } { "all" } }
        div data-live-region="failures" { (runs::table(&failed, "No run has failed.")) }
        h2 { "Instances" }
        div data-live-region="instances" {
            @if instances.is_empty() { p.muted { "No store: this instance alone, and no lease." } } @else {
                table {
                    thead { tr { th { "instance" } th { "host" } th.num { "pid" } th { "started" } th { "last heartbeat" } th { "lease until" } th { "state" } } }
                    tbody {
                        @for lease in &instances {
                            tr data-instance=(lease.instance) {
                                td { code { (lease.instance) } @if lease.instance == ui.instance { " (this one)" } }
                                td { (lease.hostname) }
                                td.num { (lease.pid) }
                                td { (format::when(lease.started_at)) }
                                td { (format::when(lease.heartbeat_at)) }
                                td { (format::when(lease.lease_until)) }
                                td {
                                    @if lease.lease_until >= now { span.status.status-succeeded { "live" } }
                                    @else { span.status.status-cancelled { "lease run out" } }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    layout::page(&ui, Section::Overview, "Overview", body)
}
