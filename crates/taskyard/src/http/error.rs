//! The one place where errors become HTTP responses.
//!
//! [`HttpError`] is the error type of every handler, the task endpoints' and the app's own:
//! `?` turns any error into one (a runtime [`Error`] keeps its status: 404 for an unknown
//! task, 400 for a bad payload; anything else is an unhandled 500). Its response is Nitro's
//! JSON shape, `{"error":true,"url","statusCode","statusMessage","message","data"}`, and the
//! app's front layer ([`render`]) then shapes it for the request:
//!
//! - JSON under `/api/` and `/_`, and for clients that do not accept `text/html`; a plain
//!   HTML page otherwise;
//! - in development the JSON carries `stack`, the chain of causes;
//! - in production an unhandled error, or one that names the store's or the machine's
//!   internals, says only its status (`Internal Server Error`), without `data`.

use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::{Error, ErrorKind};

/// An error response. Build one with [`HttpError::status`] (or the shortcuts), or let `?`
/// convert any error.
///
/// ```
/// use axum::http::StatusCode;
/// use taskyard::http::HttpError;
///
/// async fn handler() -> Result<String, HttpError> {
///     let id: u32 = "42".parse()?; // a failure here is an unhandled 500
///     if id == 0 {
///         return Err(HttpError::not_found("no user 0").with_data(serde_json::json!({"id": id})));
///     }
///     Ok(format!("user {id}"))
/// }
/// ```
#[derive(Debug, Clone)]
pub struct HttpError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The request's path and query; filled in by the front layer when empty.
    pub url: String,
    /// What went wrong, for a person.
    pub message: String,
    /// Extra JSON for a program (e.g. the field path of a bad payload).
    pub data: Option<Value>,
    /// True for errors nobody chose to send (converted by `?` from another error): in
    /// production their message and data are hidden.
    pub unhandled: bool,
    /// The chain of causes, outermost first; shown in development only.
    pub stack: Vec<String>,
}

impl HttpError {
    /// An error with `status` and `message`, for the request being answered.
    pub fn status(status: StatusCode, message: impl Into<String>) -> Self {
        HttpError {
            status,
            url: String::new(),
            message: message.into(),
            data: None,
            unhandled: false,
            stack: Vec::new(),
        }
    }

    /// 400 Bad Request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        HttpError::status(StatusCode::BAD_REQUEST, message)
    }

    /// 404 Not Found.
    pub fn not_found(message: impl Into<String>) -> Self {
        HttpError::status(StatusCode::NOT_FOUND, message)
    }

    /// Adds `data` to the response (hidden in production for unhandled errors).
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    fn from_runtime(error: &Error) -> Self {
        let status = match error.kind() {
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let data = match error {
            Error::InvalidPayload { path, reason, .. } => Some(json!({"path": path, "reason": reason})),
            Error::TaskFailed { data, .. } => data.clone(),
            _ => None,
        };
        HttpError {
            data,
            stack: causes(error),
            // A store or I/O failure names databases, paths and hosts: not for clients of
            // a production app.
            unhandled: error.is_internal_detail(),
            ..HttpError::status(status, error.to_string())
        }
    }

    /// The JSON body, for a request to `url` in development or production.
    fn body(&self, url: &str, production: bool) -> Value {
        let hidden = production && self.unhandled;
        let mut body = json!({
            "error": true,
            "url": url,
            "statusCode": self.status.as_u16(),
            "statusMessage": self.status.canonical_reason().unwrap_or(""),
            "message": if hidden { self.status.canonical_reason().unwrap_or("Error") } else { self.message.as_str() },
            "data": if hidden { None } else { self.data.as_ref() },
        });
        if !production && !self.stack.is_empty() {
            body["stack"] = json!(self.stack);
        }
        body
    }
}

/// `?` on any error: a runtime [`Error`] keeps its meaning (404, 400, 503 or 500); any
/// other error is an unhandled 500 whose causes make the development `stack`.
impl<E: std::error::Error + Send + Sync + 'static> From<E> for HttpError {
    fn from(error: E) -> Self {
        let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(error);
        match boxed.downcast::<Error>() {
            Ok(runtime) => HttpError::from_runtime(&runtime),
            Err(other) => HttpError {
                unhandled: true,
                stack: causes(other.as_ref()),
                ..HttpError::status(StatusCode::INTERNAL_SERVER_ERROR, other.to_string())
            },
        }
    }
}

/// A [`TaskError`](crate::TaskError) outside a task (reading app state, say): a 500 whose
/// message and data production hides.
impl From<crate::TaskError> for HttpError {
    fn from(error: crate::TaskError) -> Self {
        HttpError {
            unhandled: true,
            data: error.data().cloned(),
            ..HttpError::status(StatusCode::INTERNAL_SERVER_ERROR, error.message())
        }
    }
}

/// An error's message and its sources' messages, outermost first.
pub(crate) fn causes(error: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut stack = Vec::new();
    let mut next = Some(error);
    while let Some(error) = next {
        stack.push(error.to_string());
        next = error.source();
    }
    stack
}

/// The error behind a response, kept in its extensions for the front layer to render.
#[derive(Debug, Clone)]
pub(crate) struct ErrorReport(pub Arc<HttpError>);

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        // Rendered for development here, so the response is whole without the front
        // layer; the front layer renders it again for the request (HTML, production).
        let body = self.body(&self.url, false);
        let mut response = (self.status, axum::Json(body)).into_response();
        response.extensions_mut().insert(ErrorReport(Arc::new(self)));
        response
    }
}

/// What the front layer knows of the request an error answers.
pub(crate) struct ErrorRequest<'a> {
    pub url: &'a str,
    pub path: &'a str,
    pub accepts_html: bool,
    pub production: bool,
}

impl ErrorRequest<'_> {
    /// JSON under `/api` and `/_`, and for clients that do not take HTML.
    fn wants_json(&self) -> bool {
        !self.accepts_html
            || self.path == "/api"
            || self.path.starts_with("/api/")
            || self.path.starts_with("/_")
    }
}

/// True if an `Accept` header value names `text/html`.
pub(crate) fn accepts_html(accept: &HeaderValue) -> bool {
    accept.to_str().is_ok_and(|v| v.contains("text/html"))
}

/// Re-renders `response`, which carries `report`, for the request: its status and headers
/// stay, its body and content type are replaced.
pub(crate) fn render(response: Response, report: &HttpError, request: &ErrorRequest<'_>) -> Response {
    let url = if report.url.is_empty() {
        request.url
    } else {
        &report.url
    };
    let (mut parts, _) = response.into_parts();
    let (content_type, body) = if request.wants_json() {
        let text = serde_json::to_string(&report.body(url, request.production)).unwrap_or_default();
        ("application/json", text)
    } else {
        ("text/html; charset=utf-8", html_page(report, request.production))
    };
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !parts.headers.contains_key(header::CACHE_CONTROL) {
        parts
            .headers
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    Response::from_parts(parts, axum::body::Body::from(body))
}

/// A plain error page: the status, the message, and in development the causes.
fn html_page(report: &HttpError, production: bool) -> String {
    let status = report.status.as_u16();
    let reason = report.status.canonical_reason().unwrap_or("Error");
    let message = if production && report.unhandled {
        reason
    } else {
        &report.message
    };
    let mut stack = String::new();
    if !production && !report.stack.is_empty() {
        stack.push_str("<ol class=\"stack\">");
        for cause in &report.stack {
            stack.push_str("<li>");
            stack.push_str(&escape(cause));
            stack.push_str("</li>");
        }
        stack.push_str("</ol>");
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{status} {reason}</title>\n<style>\n\
         body{{font-family:system-ui,sans-serif;margin:0;min-height:100vh;display:grid;place-items:center;background:#fafafa;color:#222}}\n\
         main{{max-width:40rem;padding:2rem}}h1{{font-size:4rem;margin:0}}p{{font-size:1.25rem}}\n\
         .stack{{font-family:ui-monospace,monospace;font-size:.9rem;color:#666}}\n\
         </style>\n</head>\n<body>\n<main>\n<h1>{status}</h1>\n<p>{}</p>\n{stack}\n</main>\n</body>\n</html>\n",
        escape(message),
    )
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("config is broken")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn question_mark_keeps_runtime_statuses_and_makes_other_errors_unhandled() {
        let missing = HttpError::from(Error::TaskNotFound("x".into()));
        assert_eq!(
            (missing.status, missing.unhandled),
            (StatusCode::NOT_FOUND, false)
        );
        assert_eq!(missing.message, "Task `x` is not available!");
        let other = HttpError::from(Outer(std::io::Error::other("disk <full>")));
        assert_eq!(
            (other.status, other.unhandled),
            (StatusCode::INTERNAL_SERVER_ERROR, true)
        );
        assert_eq!(other.stack, ["config is broken", "disk <full>"]);
        assert_eq!(other.body("/a", true)["message"], "Internal Server Error");
        assert!(other.body("/a", true).get("stack").is_none());
        assert_eq!(other.body("/a", false)["stack"][1], "disk <full>");
        assert!(html_page(&other, false).contains("disk &lt;full&gt;"));
        assert!(!html_page(&other, true).contains("disk"));
    }
}
