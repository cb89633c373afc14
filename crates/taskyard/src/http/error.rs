//! The one place where errors become HTTP responses, in Nitro's JSON shape:
//! `{"error":true,"url","statusCode","statusMessage","message","data"}`.

use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::{Error, ErrorKind};

/// An error response for a request to `url`.
#[derive(Debug)]
pub struct HttpError {
    pub status: StatusCode,
    pub url: String,
    pub message: String,
    pub data: Option<Value>,
}

impl HttpError {
    pub fn new(status: StatusCode, uri: &Uri, message: impl Into<String>) -> Self {
        HttpError {
            status,
            url: uri.path_and_query().map(|p| p.as_str()).unwrap_or("/").to_owned(),
            message: message.into(),
            data: None,
        }
    }

    /// Maps a runtime error to its status: 404 for unknown tasks and runs, 400 for bad
    /// payloads (with the field in `data`), 503 while shutting down, 500 otherwise.
    pub fn from_error(uri: &Uri, error: Error) -> Self {
        let status = match error.kind() {
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let data = match &error {
            Error::InvalidPayload { path, reason, .. } => Some(json!({"path": path, "reason": reason})),
            Error::TaskFailed { data, .. } => data.clone(),
            _ => None,
        };
        HttpError {
            data,
            ..HttpError::new(status, uri, error.to_string())
        }
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let body = json!({
            "error": true,
            "url": self.url,
            "statusCode": self.status.as_u16(),
            "statusMessage": self.status.canonical_reason().unwrap_or(""),
            "message": self.message,
            "data": self.data,
        });
        (self.status, axum::Json(body)).into_response()
    }
}
