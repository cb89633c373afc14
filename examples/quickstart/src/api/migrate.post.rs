//! `POST /api/migrate`: runs the `db:migrate` task from a route (Nitro's `runTask`), with
//! the JSON body as its payload.

use serde_json::Value;
use taskyard::http::HttpError;
use taskyard::route::Event;

pub async fn handler(event: Event) -> Result<axum::Json<Value>, HttpError> {
    let payload: Value = event.json_body::<Option<Value>>()?.unwrap_or_else(|| serde_json::json!({}));
    let result = event.run_task("db:migrate", payload).await?;
    Ok(axum::Json(result))
}
