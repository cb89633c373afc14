//! Why the app is not up to date, as an HTML page for browsers and JSON for everything
//! else.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::compile::Diagnostic;
use super::proxy::Status;

/// What went wrong.
#[derive(Debug, Clone)]
pub enum Failure {
    /// The last build failed: its errors, or cargo's output when it named none.
    Build { errors: Vec<Diagnostic>, output: String },
    /// The app keeps exiting: why, with its last lines.
    Crash(String),
}

impl Failure {
    fn title(&self) -> &'static str {
        match self {
            Failure::Build { .. } => "The app does not build",
            Failure::Crash(_) => "The app keeps stopping",
        }
    }

    fn json(&self) -> Value {
        match self {
            Failure::Build { errors, output } => json!({
                "error": "build_failed",
                "errors": errors,
                "output": if errors.is_empty() { Value::from(output.as_str()) } else { Value::Null },
            }),
            Failure::Crash(why) => json!({ "error": "app_crashed", "message": why }),
        }
    }
}

/// `GET /_taskyard/dev`: the state of the dev server.
pub fn state_json(status: &Status) -> Value {
    json!({
        "ready": status.ready.as_ref().map(|backend| backend.addr.to_string()),
        "failure": status.failure.as_ref().map(|failure| failure.json()),
    })
}

/// The failure as a page (`html`) or as JSON, with 500 (a build error) or 503 (a crash).
pub fn failure_response(failure: &Failure, html: bool) -> Response {
    let status = match failure {
        Failure::Build { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        Failure::Crash(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    if !html {
        return (status, axum::Json(failure.json())).into_response();
    }
    let items = match failure {
        Failure::Build { errors, output } if errors.is_empty() => format!("<pre>{}</pre>", escape(output)),
        Failure::Build { errors, .. } => errors
            .iter()
            .map(|error| {
                format!(
                    "<section><h2>{}</h2><pre>{}</pre></section>",
                    escape(&error.short()),
                    escape(&error.rendered)
                )
            })
            .collect(),
        Failure::Crash(why) => format!("<pre>{}</pre>", escape(why)),
    };
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <meta http-equiv=\"refresh\" content=\"2\"></head><body style=\"font-family:system-ui;margin:2rem\">\
         <h1>{title}</h1><p>taskyard dev keeps the last good version serving; this page reloads when the \
         app builds again.</p>{items}</body></html>",
        title = failure.title()
    );
    (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response()
}

/// `text` safe inside HTML: its text and its quoted attributes.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
