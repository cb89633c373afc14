//! The tasks: each with its settings and its record from history, and a form generated
//! from its payload schema that runs it now or enqueues it for later.

use axum::Extension;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::Response;
use jiff::Timestamp;
use maud::html;
use serde_json::Value;

use super::format::{self, query};
use super::layout::{self, Section};
use super::schema_form::{SchemaForm, Typed};
use super::{Form, Ui, runs};
use crate::http::session::{self, UI_PATH};
use crate::http::tasks::task_infos;
use crate::http::{Api, HttpError, Param};
use crate::{Concurrency, Error, RunFilter, RunRecord, RunRequest, RunStatus, Trigger};

/// Runs of a task its record is drawn from.
const RECORD: usize = 200;

/// Form fields that are not the payload's.
const CONTROL_FIELDS: [&str; 3] = [session::CSRF_FIELD, "delay", "at"];

/// How a task's recent runs went.
struct Record {
    finished: usize,
    succeeded: usize,
    p50_ms: Option<u64>,
    p95_ms: Option<u64>,
}

impl Record {
    fn of(runs: &[RunRecord]) -> Self {
        let finished: Vec<&RunRecord> = runs.iter().filter(|run| run.status.is_final()).collect();
        let mut durations: Vec<u64> = finished
            .iter()
            .filter(|run| run.status == RunStatus::Succeeded)
            .filter_map(|run| run.duration_ms)
            .collect();
        durations.sort_unstable();
        let at =
            |share: usize| (!durations.is_empty()).then(|| durations[(durations.len() - 1) * share / 100]);
        Record {
            finished: finished.len(),
            succeeded: finished
                .iter()
                .filter(|run| run.status == RunStatus::Succeeded)
                .count(),
            p50_ms: at(50),
            p95_ms: at(95),
        }
    }

    fn success(&self) -> String {
        match self.finished {
            0 => "—".to_owned(),
            finished => format!("{:.0} %", self.succeeded as f64 * 100.0 / finished as f64),
        }
    }
}

fn concurrency(mode: Concurrency) -> String {
    match mode {
        Concurrency::Dedupe => "dedupe".to_owned(),
        Concurrency::DedupeByPayload => "dedupe by payload".to_owned(),
        Concurrency::Serial => "serial".to_owned(),
        Concurrency::Parallel(limit) => format!("parallel, {limit} at once"),
        Concurrency::Unlimited => "unlimited".to_owned(),
    }
}

async fn recent(api: &Api, task: &str) -> Result<Vec<RunRecord>, Error> {
    api.runtime
        .list_runs(&RunFilter::default().task(task).limit(RECORD))
        .await
}

/// `GET /_tasks/ui/tasks`.
pub(super) async fn list(Extension(api): Extension<Api>) -> Response {
    let ui = Ui::of(&api);
    let mut rows = Vec::new();
    for task in task_infos(&api) {
        match recent(&api, &task.name).await {
            Ok(runs) => rows.push((Record::of(&runs), task)),
            Err(error) => return layout::failed(&ui, error),
        }
    }
    let body = html! {
        h1 { "Tasks" }
        @if rows.is_empty() { p.muted { "The app has no task." } } @else {
            table {
                thead { tr {
                    th { "task" } th { "description" } th { "concurrency" } th.num { "timeout" }
                    th.num { "attempts" } th { "durable" } th.num { "success" } th.num { "p50" } th.num { "p95" }
                } }
                tbody {
                    @for (record, task) in &rows {
                        tr data-task=(task.name) {
                            td { a href={ (UI_PATH) "/tasks/" (query(&task.name)) } { (task.name) } }
                            td { (task.description) }
                            td { (concurrency(task.concurrency)) }
                            td.num { @if let Some(ms) = task.timeout_ms { (format::duration(ms)) } }
                            td.num { (task.max_attempts) }
                            td { @if task.durable { "yes" } }
                            td.num title={ "of the last " (record.finished) " finished runs" } { (record.success()) }
                            td.num { @if let Some(ms) = record.p50_ms { (format::duration(ms)) } }
                            td.num { @if let Some(ms) = record.p95_ms { (format::duration(ms)) } }
                        }
                    }
                }
            }
            p.muted { "Success and durations over each task's last " (RECORD) " runs." }
        }
    };
    layout::page(&ui, Section::Tasks, "Tasks", body)
}

/// `GET /_tasks/ui/tasks/NAME`.
pub(super) async fn detail(Extension(api): Extension<Api>, Param(name): Param) -> Response {
    let ui = Ui::of(&api);
    task_page(&api, &ui, &name, &Typed::new(), None).await
}

/// Why a posted form comes back: the status, the errors by field, what to say above.
struct Refused {
    status: StatusCode,
    errors: Typed,
    problem: String,
}

/// The task's page; after a refused form, with what was typed and why it was refused.
async fn task_page(api: &Api, ui: &Ui, name: &str, typed: &Typed, refused: Option<Refused>) -> Response {
    let (status, errors, problem) = match refused {
        Some(refused) => (refused.status, refused.errors, Some(refused.problem)),
        None => (StatusCode::OK, Typed::new(), None),
    };
    let errors = &errors;
    let Some(task) = task_infos(api).into_iter().find(|task| task.name == name) else {
        return layout::failed(ui, Error::TaskNotFound(name.to_owned()));
    };
    let runs = match recent(api, name).await {
        Ok(runs) => runs,
        Err(error) => return layout::failed(ui, error),
    };
    let record = Record::of(&runs);
    // A task that keeps no succeeded runs: how many ended so over the last day.
    let since = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24);
    // Read like the runs above: a store that cannot answer fails the page, rather than
    // have it say that no run ended.
    let forgotten = match task.keep_succeeded {
        true => 0,
        false => match api.runtime.forgotten_runs(name, since).await {
            Ok(count) => count,
            Err(error) => return layout::failed(ui, error),
        },
    };
    let durable_store = api.runtime.store().is_some();
    let body = html! {
        h1 { "Task " (task.name) }
        @if !task.description.is_empty() { p { (task.description) } }
        div.card {
            dl.facts {
                dt { "concurrency" } dd { (concurrency(task.concurrency)) }
                dt { "timeout" } dd { @if let Some(ms) = task.timeout_ms { (format::duration(ms)) } @else { "none" } }
                dt { "attempts" } dd { (task.max_attempts) }
                dt { "durable" } dd { @if task.durable { "every run goes through the store" } @else { "when asked" } }
                @if !task.keep_succeeded {
                    dt { "history" } dd { "succeeded durable runs are not kept, nor counted below: " (forgotten) " in the last day (in the overview's charts too)" }
                }
                dt { "defined in" } dd { code { (task.source) } }
                dt { "success" } dd {
                    @if record.finished == 0 { "no finished run yet" } @else { (record.success()) " of the last " (record.finished) " finished runs" }
                }
                dt { "duration" } dd {
                    @if let (Some(p50), Some(p95)) = (record.p50_ms, record.p95_ms) {
                        "p50 " (format::duration(p50)) ", p95 " (format::duration(p95))
                    } @else { "—" }
                }
            }
        }
        @if ui.writable {
            h2 { "Run it" }
            @if let Some(problem) = &problem { p.problem { (problem) } }
            form.run-task.card method="post" action={ (UI_PATH) "/tasks/" (query(&task.name)) "/run" } {
                (ui.csrf_field())
                @if let Some(schema) = &task.payload_schema {
                    (SchemaForm::new(schema).render(typed, errors))
                } @else {
                    p.muted { "This task takes no payload." }
                }
                @if durable_store {
                    fieldset {
                        legend { "Later, through the store (optional)" }
                        div.field {
                            label for="field-delay" { "in seconds" }
                            input id="field-delay" type="number" min="0" step="1" name="delay" value=[typed.get("delay")];
                            @if let Some(error) = errors.get("delay") { p.problem.field-error { (error) } }
                        }
                        div.field {
                            label for="field-at" { "or at (RFC 3339)" }
                            input id="field-at" type="text" name="at" placeholder="2030-01-01T09:00:00Z" value=[typed.get("at")];
                            @if let Some(error) = errors.get("at") { p.problem.field-error { (error) } }
                        }
                    }
                }
                div.actions { button type="submit" { "Run" } }
            }
        }
        h2 { "Recent runs" " " a href={ (UI_PATH) "/runs?task=" (query(&task.name)) } { "all" } }
        div data-live-region="runs" data-live-task=(task.name) { (runs::table(&runs[..runs.len().min(20)], "No run yet.")) }
    };
    layout::page_with_status(ui, status, Section::Tasks, &format!("Task {}", task.name), body)
}

/// `POST /_tasks/ui/tasks/NAME/run`: the payload from the form, run now or enqueued.
pub(super) async fn run(Extension(api): Extension<Api>, Param(name): Param, body: Bytes) -> Response {
    let ui = Ui::of(&api);
    let form = Form::parse(&body);
    if let Some(refused) = super::write_refusal(&api, &ui, &form) {
        return refused;
    }
    let Some(task) = task_infos(&api).into_iter().find(|task| task.name == name) else {
        return layout::failed(&ui, Error::TaskNotFound(name));
    };
    let typed: Typed = form
        .pairs()
        .filter(|(key, _)| *key != session::CSRF_FIELD)
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect();
    let payload_fields: Typed = typed
        .iter()
        .filter(|(key, _)| !CONTROL_FIELDS.contains(&key.as_str()))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    let payload = match &task.payload_schema {
        Some(schema) => SchemaForm::new(schema).read(&payload_fields),
        None => Ok(Value::Object(serde_json::Map::new())),
    };
    let (when, when_errors) = later(&typed);
    let payload = match (payload, when_errors.is_empty()) {
        (Ok(payload), true) => payload,
        (payload, _) => {
            let mut errors = payload.err().unwrap_or_default();
            errors.extend(when_errors);
            let problem = "Some values are not valid: see the fields marked below.".to_owned();
            let refused = Refused {
                status: StatusCode::BAD_REQUEST,
                errors,
                problem,
            };
            return task_page(&api, &ui, &name, &typed, Some(refused)).await;
        }
    };
    let started = match when {
        None => {
            let request = RunRequest::new(name.clone())
                .payload(payload)
                .trigger(Trigger::Http);
            api.runtime.start(request).await.map(|handle| handle.run_id())
        }
        Some(Later::After(delay)) => {
            api.runtime
                .enqueue(&name, payload)
                .trigger(Trigger::Http)
                .after(delay)
                .send()
                .await
        }
        Some(Later::At(at)) => {
            api.runtime
                .enqueue(&name, payload)
                .trigger(Trigger::Http)
                .at(at)
                .send()
                .await
        }
    };
    match started {
        Ok(run_id) => {
            // The run is acknowledged once its record is in the store, as over the API.
            if let Err(error) = api.runtime.flush_records().await {
                return layout::failed(&ui, error);
            }
            layout::see_other(&format!("{UI_PATH}/runs/{run_id}"))
        }
        Err(Error::InvalidPayload { path, reason, .. }) => {
            let errors = Typed::from([(path, reason)]);
            let problem = "The task refused the payload: see the field marked below.".to_owned();
            let refused = Refused {
                status: StatusCode::BAD_REQUEST,
                errors,
                problem,
            };
            task_page(&api, &ui, &name, &typed, Some(refused)).await
        }
        Err(error) => {
            let problem = HttpError::from(error).message;
            let refused = Refused {
                status: StatusCode::CONFLICT,
                errors: Typed::new(),
                problem,
            };
            task_page(&api, &ui, &name, &typed, Some(refused)).await
        }
    }
}

/// When the form asks for a run later.
enum Later {
    After(std::time::Duration),
    At(Timestamp),
}

/// The form's `delay` or `at`, or the errors by field.
fn later(typed: &Typed) -> (Option<Later>, Typed) {
    let mut errors = Typed::new();
    let field = |name: &str| {
        typed
            .get(name)
            .map(|value| value.trim())
            .filter(|value| !value.is_empty())
    };
    let later = match (field("delay"), field("at")) {
        (None, None) => None,
        (Some(_), Some(_)) => {
            errors.insert("at".to_owned(), "give a delay or a time, not both".to_owned());
            None
        }
        (Some(delay), None) => match delay.parse::<u64>() {
            Ok(seconds) => Some(Later::After(std::time::Duration::from_secs(seconds))),
            Err(_) => {
                errors.insert(
                    "delay".to_owned(),
                    format!("`{delay}` is not a whole number of seconds"),
                );
                None
            }
        },
        (None, Some(at)) => match at.parse::<Timestamp>() {
            Ok(at) => Some(Later::At(at)),
            Err(_) => {
                errors.insert(
                    "at".to_owned(),
                    format!("`{at}` is not an RFC 3339 instant such as 2030-01-01T09:00:00Z"),
                );
                None
            }
        },
    };
    (later, errors)
}
