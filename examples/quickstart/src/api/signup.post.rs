//! `POST /api/signup` with `{"email": "ada@example.com"}`: answers at once and enqueues the
//! welcome e-mail (`email:send`) to go out two seconds later, durably: the run is in the
//! store before the answer, and the key sends one welcome per address while one is pending.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use taskyard::http::HttpError;
use taskyard::route::Event;

#[derive(Deserialize)]
struct Signup {
    email: String,
}

pub async fn handler(event: Event) -> Result<(axum::http::StatusCode, axum::Json<Value>), HttpError> {
    let signup: Signup = event.json_body()?;
    let run_id = event
        .runtime()?
        .enqueue("email:send", json!({ "to": signup.email, "subject": "Welcome to taskyard" }))
        .after(Duration::from_secs(2))
        .key(format!("welcome:{}", signup.email))
        .await?;
    Ok((
        axum::http::StatusCode::ACCEPTED,
        axum::Json(json!({ "welcome_email_run": run_id })),
    ))
}
