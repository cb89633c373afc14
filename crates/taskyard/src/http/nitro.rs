//! Nitro's task endpoints, in Nitro's shapes, so Nitro's tools and habits carry over:
//!
//! - `GET /_nitro/tasks` → `{"tasks":{"name":{"description":…}},"scheduledTasks":[{"cron","tasks"}]|false}`
//! - `GET|POST /_nitro/tasks/{name}` → `{"result":…}`; the payload is the query string (a
//!   repeated key becomes an array) merged with the body's `payload` object, body keys
//!   winning.

use axum::body::Body;
use axum::extract::OriginalUri;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::{Map, Value, json};

use super::{Api, HttpError, Param, request};
use crate::{Error, RunHandle, RunRequest, Trigger};

pub(super) fn routes() -> Router {
    Router::new()
        .route("/_nitro/tasks", get(list))
        .route("/_nitro/tasks/{name}", get(run).post(run))
}

async fn list(Extension(api): Extension<Api>) -> Json<Value> {
    let tasks: Map<String, Value> = api
        .runtime
        .tasks()
        .into_iter()
        .map(|entry| {
            let description = entry.task().get_description();
            let meta = if description.is_empty() {
                json!({})
            } else {
                json!({ "description": description })
            };
            (entry.name().to_owned(), meta)
        })
        .collect();
    // Nitro's schedules are cron → tasks; schedules sharing an expression are listed
    // together (in the order of schedule names). Interval and custom schedules have no cron
    // and appear in `GET /_tasks/schedules` only.
    let mut scheduled: Vec<(String, Vec<String>)> = Vec::new();
    for schedule in api.scheduler.list() {
        let Some(cron) = schedule.cron else { continue };
        match scheduled.iter_mut().find(|(known, _)| *known == cron) {
            Some((_, tasks)) => tasks.push(schedule.task),
            None => scheduled.push((cron, vec![schedule.task])),
        }
    }
    let scheduled_tasks = if scheduled.is_empty() {
        Value::Bool(false)
    } else {
        scheduled
            .into_iter()
            .map(|(cron, tasks)| json!({ "cron": cron, "tasks": tasks }))
            .collect()
    };
    Json(json!({ "tasks": tasks, "scheduledTasks": scheduled_tasks }))
}

async fn run(
    Extension(api): Extension<Api>,
    Param(name): Param,
    OriginalUri(uri): OriginalUri,
    body: Body,
) -> Result<Json<NitroResult>, HttpError> {
    let body = request::read_body(body, api.body_limit).await?;
    let mut payload = request::query_object(&uri);
    if let Some(schema) = api.runtime.payload_schema(&name) {
        request::coerce_query(&mut payload, schema);
    }
    // Kept for the hint below; a body-only request (the usual one) keeps nothing.
    let from_query: Vec<String> = payload.keys().cloned().collect();
    let from_body = request::body_payload(&body)?;
    let from_body_keys: Vec<String> = if from_query.is_empty() {
        Vec::new()
    } else {
        from_body.keys().cloned().collect()
    };
    // The body's keys win over the query's.
    if payload.is_empty() {
        payload = from_body;
    } else {
        payload.extend(from_body);
    }
    let request = RunRequest::new(name.clone())
        .payload(Value::Object(payload))
        .trigger(Trigger::Http);
    let outcome = if api.runtime.is_durable(&name) {
        match api.runtime.start(request).await {
            Ok(handle) if handle.joined_later() => return Err(joined_later(&name, &handle)),
            Ok(handle) => handle.outcome().await,
            Err(error) => Err(error),
        }
    } else {
        api.runtime.run(request).await
    };
    let result = outcome.map_err(|error| {
        // A field that came from the query string failed its type: say how to send it.
        let hint = match &error {
            Error::InvalidPayload { path, .. } => {
                let root = path.split(['.', '[']).next().unwrap_or("");
                from_query.iter().any(|key| key == root) && !from_body_keys.iter().any(|key| key == root)
            }
            _ => false,
        };
        let mut error = HttpError::from(error);
        if hint {
            error.message.push_str(
                ". Query values are text; send this field in a JSON body instead: -H 'content-type: application/json' -d '{\"payload\":{…}}'",
            );
        }
        error
    })?;
    Ok(Json(NitroResult { result }))
}

/// 409 for a start of a durable task that joined its live run due later (a `Dedupe` task's
/// run queued with a delay): Nitro's answer is the run's result, which comes then, not
/// within this request.
fn joined_later(task: &str, handle: &RunHandle) -> HttpError {
    let run_id = handle.run_id();
    let due = handle.due_at().map(|due| due.to_string()).unwrap_or_default();
    HttpError::status(
        StatusCode::CONFLICT,
        format!(
            "this start of `{task}` joined its live run {run_id}, which is due at {due}: its result comes then, not within this request; follow it at GET /_tasks/runs/{run_id}"
        ),
    )
    .with_data(json!({ "run_id": run_id, "run_at": due }))
}

/// Nitro's answer to a task run: `{"result": …}`, written straight from the run's result.
#[derive(serde::Serialize)]
struct NitroResult {
    result: Value,
}
