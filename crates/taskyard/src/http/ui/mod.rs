//! The dashboard at `/_tasks/ui`: server-rendered pages over the same runtime, store and
//! scheduler as the JSON API, readable with JavaScript off (forms post and redirect).
//!
//! It answers under the task endpoints' access rule (see `access`), with a login form
//! for the production token (see `session`), a CSRF token on every write, and
//! [`Dashboard::ReadOnly`](crate::Dashboard::ReadOnly) hiding and refusing every write.
//! Templates are [maud](https://maud.lambda.xyz) macros: values are escaped unless marked
//! otherwise, and nothing is marked otherwise.

mod assets;
mod bulk;
mod charts;
mod format;
mod layout;
mod lifecycle;
mod login;
mod overview;
mod runs;
mod schedules;
mod schema_form;
mod tasks;
mod timeline;

use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use maud::{Markup, html};

use super::Api;
use super::session::{self, CSRF_FIELD};

/// The dashboard's routes, nested under `/_tasks/ui`.
pub(super) fn routes() -> Router {
    Router::new()
        .route("/", get(overview::page))
        .route("/runs", get(runs::list))
        .route("/runs/bulk", get(bulk::confirm).post(bulk::act))
        .route("/runs/{id}", get(runs::detail))
        .route("/runs/{id}/cancel", post(runs::cancel))
        .route("/runs/{id}/retry", post(runs::retry))
        .route("/tasks", get(tasks::list))
        .route("/tasks/{name}", get(tasks::detail))
        .route("/tasks/{name}/run", post(tasks::run))
        .route("/schedules", get(schedules::list))
        .route("/schedules/{name}", get(schedules::detail))
        .route("/schedules/{name}/pause", post(schedules::pause))
        .route("/schedules/{name}/resume", post(schedules::resume))
        .route("/schedules/{name}/run", post(schedules::run_now))
        .route("/lifecycle", get(lifecycle::page))
        .route("/charts/{name}", get(charts::chart))
        // The event stream, where the dashboard's session reaches it.
        .route("/events", get(super::events::stream))
        .route("/login", get(login::form).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/assets/{name}", get(assets::serve))
        .fallback(not_found)
}

/// What every page needs to know about the request it answers.
#[derive(Clone)]
pub(super) struct Ui {
    /// The token every form carries.
    pub csrf: String,
    /// Writes are offered and taken.
    pub writable: bool,
    /// The production token guards the dashboard: a session exists, and can end.
    pub session: bool,
    /// The instance answering.
    pub instance: String,
}

impl Ui {
    pub fn of(api: &Api) -> Self {
        Ui {
            csrf: session::csrf_token(&api.access),
            writable: api.dashboard.writable(),
            session: matches!(api.access, super::TasksAccess::Token(_)),
            instance: api.runtime.instance().to_owned(),
        }
    }

    /// The hidden field that carries the CSRF token.
    pub fn csrf_field(&self) -> Markup {
        html! { input type="hidden" name=(CSRF_FIELD) value=(self.csrf); }
    }
}

/// A posted form's fields.
pub(super) struct Form(Vec<(String, String)>);

impl Form {
    pub fn parse(body: &Bytes) -> Self {
        Form(
            form_urlencoded::parse(body)
                .map(|(key, value)| (key.into_owned(), value.into_owned()))
                .collect(),
        )
    }

    /// Every field, in the order posted.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(key, value)| (key.as_str(), value.as_str()))
    }

    /// The last value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Why a form without this deployment's CSRF token is refused.
const CSRF_REFUSAL: &str =
    "The form's CSRF token is missing or does not match: reload the page and try again.";

/// A write from a form is taken only when the dashboard takes writes and the form carries
/// this deployment's CSRF token; otherwise this is the page that says why.
pub(super) fn write_refusal(api: &Api, ui: &Ui, form: &Form) -> Option<Response> {
    if !ui.writable {
        return Some(layout::problem(
            ui,
            StatusCode::FORBIDDEN,
            "The dashboard is read-only (TASKYARD_UI=readonly): it takes no action.",
        ));
    }
    match form.get(CSRF_FIELD) {
        Some(token) if session::csrf_matches(&api.access, token) => None,
        _ => Some(layout::problem(ui, StatusCode::FORBIDDEN, CSRF_REFUSAL)),
    }
}

/// `GET /_tasks/ui/`: the overview's address has no slash.
pub(super) async fn to_overview() -> Response {
    layout::see_other(session::UI_PATH)
}

async fn not_found(
    axum::Extension(api): axum::Extension<Api>,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
) -> Response {
    let ui = Ui::of(&api);
    let message = format!("The dashboard has no page at `{}`.", uri.path());
    layout::problem(&ui, StatusCode::NOT_FOUND, &message)
}
