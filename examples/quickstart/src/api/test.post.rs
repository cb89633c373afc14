//! `POST /api/test`: reads a JSON body into a type; a body that does not fit is a 400 naming
//! the field.

use serde::Deserialize;
use serde_json::{Value, json};
use taskyard::http::HttpError;
use taskyard::route::Event;

#[derive(Deserialize)]
struct Greeting {
    name: String,
    #[serde(default)]
    times: u32,
}

pub async fn handler(event: Event) -> Result<axum::Json<Value>, HttpError> {
    let greeting: Greeting = event.json_body()?;
    let times = greeting.times.max(1) as usize;
    Ok(axum::Json(json!({ "message": vec![format!("Hello {}!", greeting.name); times] })))
}
