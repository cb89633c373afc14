//! `GET /api/users/{id}`: a JSON route with OpenAPI metadata.

use serde_json::{Value, json};
use taskyard::http::HttpError;
use taskyard::route::Event;

taskyard::route_meta!({
    "openapi": {
        "tags": ["users"],
        "summary": "One user",
        "parameters": [
            { "name": "id", "in": "path", "required": true, "description": "The user's number", "schema": { "type": "integer" } }
        ]
    }
});

pub async fn handler(event: Event) -> Result<axum::Json<Value>, HttpError> {
    let id: u64 = event
        .param("id")
        .unwrap_or_default()
        .parse()
        .map_err(|_| HttpError::bad_request("the user id is a number, like /api/users/1"))?;
    let request_id = event.context().get("request_id");
    Ok(axum::Json(json!({ "id": id, "name": format!("user {id}"), "request_id": request_id })))
}
