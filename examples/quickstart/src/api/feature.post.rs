//! `POST /api/feature` with `{"enabled": true|false}`: flips the flag `feature-watch` tracks.

use serde::Deserialize;
use serde_json::{Value, json};
use taskyard::http::HttpError;
use taskyard::route::Event;

use crate::lifecycle::Feature;

#[derive(Deserialize)]
struct Flip {
    enabled: bool,
}

pub async fn handler(event: Event) -> Result<axum::Json<Value>, HttpError> {
    let flip: Flip = event.json_body()?;
    let feature = event.runtime()?.state().get::<Feature>()?;
    feature.0.set(flip.enabled);
    Ok(axum::Json(json!({ "enabled": flip.enabled })))
}
