use axum::http::StatusCode;
use taskyard::http::HttpError;

pub async fn handler() -> Result<String, HttpError> {
    Err(HttpError::status(StatusCode::IM_A_TEAPOT, "short and stout").with_data(serde_json::json!({ "spout": true })))
}
