//! Task endpoints under `/_tasks`: health, start a run, read a run.
//!
//! They run tasks on request, so they answer loopback clients only; anything else gets
//! `403 Forbidden IP`.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, Query, Request};
use axum::http::{StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::HttpError;
use crate::{RunId, RunRequest, Runtime, Trigger};

pub(super) fn routes() -> Router {
    Router::new()
        .route("/_tasks/health", get(health))
        .route("/_tasks/{name}/runs", post(start_run))
        .route("/_tasks/runs/{id}", get(get_run))
        .layer(middleware::from_fn(loopback_only))
}

async fn loopback_only(request: Request, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    match peer {
        Some(ip) if ip.is_loopback() => next.run(request).await,
        _ => HttpError::new(StatusCode::FORBIDDEN, request.uri(), "Forbidden IP").into_response(),
    }
}

async fn health(Extension(runtime): Extension<Runtime>) -> Json<Value> {
    Json(json!({
        "status": "ok",
        "instance": runtime.instance(),
        "tasks": runtime.tasks().len(),
        "store": runtime.store().map(|s| s.backend()),
        "active_runs": runtime.active_runs(),
    }))
}

#[derive(Deserialize)]
struct StartQuery {
    wait: Option<bool>,
}

#[derive(Deserialize, Default)]
struct StartBody {
    #[serde(default)]
    payload: Option<Value>,
}

async fn start_run(
    Extension(runtime): Extension<Runtime>,
    Path(name): Path<String>,
    Query(query): Query<StartQuery>,
    uri: Uri,
    body: Option<Json<StartBody>>,
) -> Result<Response, HttpError> {
    let payload = body
        .and_then(|Json(body)| body.payload)
        .unwrap_or_else(|| Value::Object(Default::default()));
    let request = RunRequest::new(name).payload(payload).trigger(Trigger::Http);
    let handle = runtime
        .start(request)
        .map_err(|e| HttpError::from_error(&uri, e))?;
    let run_id = handle.run_id();
    if query.wait == Some(false) {
        return Ok((StatusCode::ACCEPTED, Json(json!({"run_id": run_id}))).into_response());
    }
    let result = handle
        .outcome()
        .await
        .map_err(|e| HttpError::from_error(&uri, e))?;
    Ok(Json(json!({"run_id": run_id, "result": result})).into_response())
}

async fn get_run(
    Extension(runtime): Extension<Runtime>,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Response, HttpError> {
    let not_found = || HttpError::from_error(&uri, crate::Error::RunNotFound(id.clone()));
    let run_id: RunId = id.parse().map_err(|_| not_found())?;
    match runtime
        .get_run(run_id)
        .await
        .map_err(|e| HttpError::from_error(&uri, e))?
    {
        Some(run) => Ok(Json(run).into_response()),
        None => Err(not_found()),
    }
}
