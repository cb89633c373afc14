//! The demo's own routes, mounted by hand.

use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::{Value, json};
use taskyard::Runtime;
use taskyard::lifecycle::ResourceState;

use crate::lifecycle::{Feature, FeatureReport};

pub fn routes() -> Router {
    Router::new()
        .route("/hello/{name}", get(hello))
        .route("/api/feature", get(read_feature).post(set_feature))
}

async fn hello(axum::extract::Path(name): axum::extract::Path<String>) -> String {
    format!("Hello {name}!")
}

/// `GET /api/feature`: the flag and the report derived from it.
async fn read_feature(Extension(runtime): Extension<Runtime>) -> Json<Value> {
    let enabled = runtime
        .state()
        .get::<Feature>()
        .map(|f| f.0.get())
        .unwrap_or(false);
    let report = match runtime.state().get::<FeatureReport>().map(|r| r.0.get()) {
        Ok(ResourceState::Resolved(report)) => json!(report),
        Ok(ResourceState::Rejected(error)) => json!({ "error": error }),
        _ => Value::Null,
    };
    Json(json!({ "enabled": enabled, "report": report }))
}

/// `POST /api/feature` with `{"enabled": true|false}`: flips the flag `feature-watch` tracks.
async fn set_feature(
    Extension(runtime): Extension<Runtime>,
    body: String,
) -> (axum::http::StatusCode, Json<Value>) {
    let enabled = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|body| body.get("enabled").and_then(Value::as_bool));
    let (Some(enabled), Ok(feature)) = (enabled, runtime.state().get::<Feature>()) else {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            Json(json!({ "message": "send {\"enabled\": true} or {\"enabled\": false}" })),
        );
    };
    feature.0.set(enabled);
    (axum::http::StatusCode::OK, Json(json!({ "enabled": enabled })))
}
