//! `GET /api/admin/stats`: reached only through `src/middleware/2.admin.rs`, which put the
//! caller in the context.

use serde_json::{Value, json};
use taskyard::route::Event;

pub async fn handler(event: Event) -> axum::Json<Value> {
    axum::Json(json!({ "admin": event.context().get("admin"), "tasks": event.runtime().map(|r| r.tasks().len()).unwrap_or(0) }))
}
