//! The page around every dashboard view: the navigation, the linked stylesheet and script,
//! and the headers every page is sent with (a Content-Security-Policy that allows no
//! inline script or style, no framing, no caching).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use super::Ui;
use super::assets::{SCRIPT, STYLE};
use crate::http::session::UI_PATH;

/// What a page may load: its own stylesheet, script and event stream, nothing inline, no
/// frame around it, forms posted to the app only.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The dashboard's sections, as the navigation names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Section {
    Overview,
    Runs,
    Tasks,
    Schedules,
    Lifecycle,
    None,
}

impl Section {
    const ALL: [(Section, &'static str, &'static str); 5] = [
        (Section::Overview, "Overview", ""),
        (Section::Runs, "Runs", "/runs"),
        (Section::Tasks, "Tasks", "/tasks"),
        (Section::Schedules, "Schedules", "/schedules"),
        (Section::Lifecycle, "Lifecycle", "/lifecycle"),
    ];
}

/// A full page: `title`, in `section`, around `body`.
pub(super) fn page(ui: &Ui, section: Section, title: &str, body: Markup) -> Response {
    page_with_status(ui, StatusCode::OK, section, title, body)
}

/// [`page`] answered with `status`.
pub(super) fn page_with_status(
    ui: &Ui,
    status: StatusCode,
    section: Section,
    title: &str,
    body: Markup,
) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · taskyard" }
                // No icon to fetch: a browser's request for /favicon.ico would reach the app.
                link rel="icon" href="data:,";
                link rel="stylesheet" href=(STYLE.href());
                script defer src=(SCRIPT.href()) {}
            }
            body {
                header.top {
                    a.brand href=(UI_PATH) { "taskyard" }
                    nav {
                        @for (each, name, path) in Section::ALL {
                            a class=[(each == section).then_some("current")] href={ (UI_PATH) (path) } { (name) }
                        }
                    }
                    div.who {
                        span title="The instance that drew this page" { "instance " code { (ui.instance) } }
                        @if !ui.writable { span.status { "read-only" } }
                        @if ui.session {
                            form.inline method="post" action={ (UI_PATH) "/logout" } {
                                (ui.csrf_field())
                                button.quiet type="submit" { "Log out" }
                            }
                        }
                    }
                }
                main { (body) }
            }
        }
    };
    respond(status, markup)
}

/// `markup` as an HTML response with the dashboard's headers.
pub(super) fn respond(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, markup.into_string()).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CONTENT_SECURITY_POLICY, POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// A page that says what went wrong, answered with `status`.
pub(super) fn problem(ui: &Ui, status: StatusCode, message: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    let body = html! {
        h1 { (title) }
        p.problem { (message) }
        p { a href=(UI_PATH) { "Back to the overview" } }
    };
    page_with_status(ui, status, Section::None, title, body)
}

/// The page for a runtime's error, with the status the API would answer.
pub(super) fn failed(ui: &Ui, error: crate::Error) -> Response {
    let error = crate::http::HttpError::from(error);
    problem(ui, error.status, &error.message)
}

/// A `303 See Other` to `location` (a path under the dashboard), after a form's post.
pub(super) fn see_other(location: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, location.to_owned()),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
    )
        .into_response()
}
