//! The native task API under `/_tasks`: tasks with their payload schemas, runs (start,
//! list, read, cancel), schedules (list, read, pause, resume), health, the live event
//! stream ([`events`](super::events)) and the OpenAPI document ([`openapi`](super::openapi)).

use axum::body::Body;
use axum::extract::OriginalUri;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::{Value, json};

use super::run_options::{self, RunOptions};
use super::{Api, HttpError, Param, request};
use crate::{Error, RunFilter, RunId, RunRequest, RunStatus, Trigger};

/// The header the `taskyard` command line sends so its runs are recorded as `cli`.
pub const CLIENT_HEADER: &str = "x-taskyard-client";

/// Most runs one listing returns.
const MAX_LIMIT: usize = 1000;

pub(super) fn routes() -> Router {
    Router::new()
        .route("/_tasks", get(list_tasks))
        .route("/_tasks/health", get(health))
        .route("/_tasks/{name}/runs", post(start_run))
        .route("/_tasks/runs", get(list_runs))
        .route("/_tasks/runs/{id}", get(get_run))
        .route("/_tasks/runs/{id}/cancel", post(cancel_run))
        .route("/_tasks/runs/{id}/retry", post(retry_run))
        .route("/_tasks/schedules", get(list_schedules))
        .route("/_tasks/schedules/{name}", get(get_schedule))
        .route("/_tasks/schedules/{name}/pause", post(pause_schedule))
        .route("/_tasks/schedules/{name}/resume", post(resume_schedule))
        .route(
            "/_tasks/schedules/{name}/tick",
            get(fire_schedule).post(fire_schedule),
        )
        .route("/_tasks/lifecycle", get(super::lifecycle::list))
        .route("/_tasks/events", get(super::events::stream))
        .route("/_tasks/openapi.json", get(super::openapi::document))
}

async fn list_tasks(Extension(api): Extension<Api>) -> Json<Value> {
    Json(json!({ "tasks": task_infos(&api) }))
}

/// Every task as the API lists it, by name.
pub(super) fn task_infos(api: &Api) -> Vec<crate::run::TaskInfo> {
    let mut tasks: Vec<_> = api
        .runtime
        .tasks()
        .into_iter()
        .map(|entry| entry.info())
        .collect();
    tasks.sort_by(|a, b| a.name.cmp(&b.name));
    tasks
}

/// `200` with `"status": "ok"`, or `503` with `"status": "failing"` and the store's
/// error while the store does not take writes, so a load balancer sends requests elsewhere.
async fn health(Extension(api): Extension<Api>) -> Response {
    let runtime = &api.runtime;
    let failure = runtime.store_failure();
    let status = if failure.is_some() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let body = json!({
        "status": if failure.is_some() { "failing" } else { "ok" },
        "instance": runtime.instance(),
        "tasks": runtime.tasks().len(),
        "store": runtime.store().map(|store| store.backend()),
        "store_failure": failure,
        "active_runs": runtime.active_runs(),
    });
    (status, Json(body)).into_response()
}

async fn start_run(
    Extension(api): Extension<Api>,
    Param(name): Param,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, HttpError> {
    let body = request::read_body(body, api.body_limit).await?;
    let (payload, beside) = request::body_payload_and_options(&body)?;
    if beside.is_none() && api.runtime.has_task(&name) {
        run_options::no_option_in_payload(&name, &payload, api.runtime.payload_schema(&name))?;
    }
    let options = RunOptions::read(&beside.unwrap_or_default(), &uri)?;
    let wait = match query_value(&uri, "wait").as_deref() {
        // A run for later answers at once, with its id.
        None => !options.deferred(),
        Some("true") | Some("1") if options.deferred() => {
            return Err(HttpError::bad_request(
                "`wait=true` cannot wait for a run due later within one request; drop `wait` and follow the run at GET /_tasks/runs/ID",
            )
            .with_data(json!({ "path": "wait" })));
        }
        Some("true") | Some("1") => true,
        Some("false") | Some("0") => false,
        Some(other) => {
            return Err(bad_query("wait", other, "`true` or `false`"));
        }
    };
    let trigger = match headers.get(CLIENT_HEADER).and_then(|value| value.to_str().ok()) {
        Some("cli") => Trigger::Cli,
        _ => Trigger::Http,
    };
    let runtime = &api.runtime;
    let handle = if options.asks_for_queue() {
        let mut enqueue = runtime.enqueue(&name, Value::Object(payload)).trigger(trigger);
        if let Some(at) = options.run_at {
            enqueue = enqueue.at(at);
        }
        if let Some(delay) = options.delay {
            enqueue = enqueue.after(delay);
        }
        if let Some(key) = options.key {
            enqueue = enqueue.key(key);
        }
        if let Some(priority) = options.priority {
            enqueue = enqueue.priority(priority);
        }
        if let Some(attempts) = options.max_attempts {
            enqueue = enqueue.max_attempts(attempts);
        }
        enqueue.handle().await?
    } else {
        let mut request = RunRequest::new(name)
            .payload(Value::Object(payload))
            .trigger(trigger);
        if options.durable() {
            request = request.durable();
        }
        runtime.start(request).await?
    };
    let run_id = handle.run_id();
    // A start that joined a live run due later (one run per key, or a `Dedupe` task's)
    // answers as a run for later does: nothing it could wait for ends within a request.
    if !wait || handle.joined_later() {
        // `202` acknowledges the run: its queued record is in the store first.
        runtime.flush_records().await?;
        let body = json!({ "run_id": run_id, "joined": handle.joined(), "durable": handle.is_durable() });
        return Ok((StatusCode::ACCEPTED, Json(body)).into_response());
    }
    match handle.outcome().await {
        Ok(result) => Ok(Json(json!({ "run_id": run_id, "result": result })).into_response()),
        Err(error) => {
            let mut error = HttpError::from(error);
            // The run id lets a client read the whole record of what failed.
            let data = error.data.take();
            error.data = Some(json!({ "run_id": run_id, "error": data }));
            Err(error)
        }
    }
}

async fn list_runs(
    Extension(api): Extension<Api>,
    OriginalUri(uri): OriginalUri,
) -> Result<Json<Value>, HttpError> {
    let filter = RunFilter::default()
        .from_query(uri.query().unwrap_or(""), MAX_LIMIT)
        .map_err(|bad| bad_query(bad.name, &bad.value, &bad.expected))?;
    let runs = api.runtime.list_runs(&filter).await?;
    Ok(Json(json!({ "runs": runs })))
}

fn parse_run_id(id: &str) -> Result<RunId, HttpError> {
    id.parse()
        .map_err(|_| HttpError::from(Error::RunNotFound(id.to_owned())))
}

async fn get_run(Extension(api): Extension<Api>, Param(id): Param) -> Result<Response, HttpError> {
    let run_id = parse_run_id(&id)?;
    match api.runtime.get_run(run_id).await? {
        Some(run) => Ok(Json(run).into_response()),
        None => Err(HttpError::from(Error::RunNotFound(id))),
    }
}

async fn cancel_run(Extension(api): Extension<Api>, Param(id): Param) -> Result<Json<Value>, HttpError> {
    let run_id = parse_run_id(&id)?;
    let runtime = &api.runtime;
    let cancelled = runtime.cancel(run_id).await?;
    if cancelled {
        return Ok(Json(json!({ "run_id": run_id, "cancelled": true })));
    }
    let run = runtime
        .get_run(run_id)
        .await?
        .ok_or_else(|| HttpError::from(Error::RunNotFound(id.clone())))?;
    let message = format!("Run `{id}` has already finished ({})", run.status.as_str());
    Err(HttpError {
        data: Some(json!({ "run_id": run_id, "status": run.status, "instance": run.instance })),
        ..HttpError::status(StatusCode::CONFLICT, message)
    })
}

/// Queues a run that ended without success again, as its next attempt.
async fn retry_run(Extension(api): Extension<Api>, Param(id): Param) -> Result<Response, HttpError> {
    let run_id = parse_run_id(&id)?;
    let attempt = api.runtime.retry(run_id).await?;
    let body = json!({ "run_id": run_id, "attempt": attempt, "status": RunStatus::Queued });
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

async fn list_schedules(Extension(api): Extension<Api>) -> Json<Value> {
    Json(json!({ "schedules": api.scheduler.list() }))
}

async fn get_schedule(Extension(api): Extension<Api>, Param(name): Param) -> Result<Response, HttpError> {
    let info = api.scheduler.get(&name)?;
    Ok(Json(info).into_response())
}

async fn pause_schedule(api: Extension<Api>, name: Param) -> Result<Response, HttpError> {
    change_schedule(api, name, true).await
}

async fn resume_schedule(api: Extension<Api>, name: Param) -> Result<Response, HttpError> {
    change_schedule(api, name, false).await
}

async fn change_schedule(
    Extension(api): Extension<Api>,
    Param(name): Param,
    pause: bool,
) -> Result<Response, HttpError> {
    let scheduler = &api.scheduler;
    let changed = if pause {
        scheduler.pause(&name).await
    } else {
        scheduler.resume(&name).await
    };
    let info = changed.and_then(|()| scheduler.get(&name))?;
    Ok(Json(info).into_response())
}

/// A platform's scheduler fires a tick (`?at=auto`, the default, or the tick's time):
/// claimed in the ledger, so a duplicate fire starts nothing. 202 with the run when this
/// fire's claim landed, else 200 saying why nothing started. GET too, as Vercel's cron
/// jobs call with GET.
async fn fire_schedule(
    Extension(api): Extension<Api>,
    Param(name): Param,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, HttpError> {
    use crate::schedule::{Fired, TickAt};
    let at = TickAt::parse(query_value(&uri, "at").as_deref().unwrap_or("auto"))?;
    let answer = match api.scheduler.fire(&name, at).await? {
        Fired::Started { tick, handle } => {
            let body = json!({ "schedule": name, "tick": tick, "status": "started", "run_id": handle.run_id().to_string() });
            return Ok((StatusCode::ACCEPTED, Json(body)).into_response());
        }
        Fired::Claimed { tick } => json!({ "schedule": name, "tick": tick, "status": "claimed" }),
        Fired::Inactive { tick, state } => json!({ "schedule": name, "tick": tick, "status": state }),
        Fired::Skipped { tick, previous_run } => {
            json!({ "schedule": name, "tick": tick, "status": "skipped", "previous_run": previous_run })
        }
        Fired::NoTick => json!({ "schedule": name, "tick": null, "status": "no_tick" }),
    };
    Ok(Json(answer).into_response())
}

/// The last value of a query parameter.
pub(super) fn query_value(uri: &Uri, name: &str) -> Option<String> {
    form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .filter(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
        .last()
}

pub(super) fn bad_query(name: &str, value: &str, expected: &str) -> HttpError {
    HttpError {
        data: Some(json!({ "path": name })),
        ..HttpError::status(
            StatusCode::BAD_REQUEST,
            format!("query parameter `{name}={value}` is not valid; expected {expected}"),
        )
    }
}
