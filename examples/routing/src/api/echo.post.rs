use serde::{Deserialize, Serialize};
use taskyard::http::HttpError;
use taskyard::route::Event;

#[derive(Serialize, Deserialize)]
pub struct Person {
    pub name: String,
    pub age: u8,
}

pub async fn handler(event: Event) -> Result<axum::Json<Person>, HttpError> {
    Ok(axum::Json(event.json_body()?))
}
