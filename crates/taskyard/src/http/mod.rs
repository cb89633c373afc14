//! The HTTP surface: the app's own routes plus the task endpoints — Nitro's under
//! `/_nitro/tasks` (`nitro`) and the native API under `/_tasks` (`tasks`).
//!
//! The HTTP layer is a client of the runtime and the scheduler, like the command line: it
//! turns requests into [`RunRequest`](crate::RunRequest)s and errors into JSON responses
//! in one shape ([`HttpError`]). Access to the task endpoints follows [`TasksAccess`].

mod access;
mod error;
mod events;
mod extract;
pub(crate) mod front;
pub(crate) mod lifecycle;
mod nitro;
mod openapi;
mod request;
mod run_options;
mod server;
mod session;
mod tasks;
mod ui;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, OriginalUri};
use axum::http::{Method, StatusCode};
use axum::{Extension, Router};
use tokio_util::sync::CancellationToken;

use crate::Runtime;
use crate::schedule::Scheduler;

pub use self::access::{TOKEN_VAR, TasksAccess};
pub use self::error::HttpError;
pub(crate) use self::extract::{BodyLimit, request_runtime, unreachable_runtime};
pub(crate) use self::front::FrontService;
pub use self::front::{AppService, RouteRules};
pub(crate) use self::request::{decode, json, query_object, read_body};
pub(crate) use self::server::serve;
pub use self::tasks::CLIENT_HEADER;
pub use crate::config::ServerLimits;

/// The default largest request body the task endpoints accept: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1 << 20;

/// What the task endpoints reach, shared: each request clones the endpoints' layers, this
/// one's included, and a clone is one reference count.
#[derive(Clone)]
pub(crate) struct Api(Arc<ApiParts>);

impl Api {
    pub(crate) fn new(parts: ApiParts) -> Api {
        Api(Arc::new(parts))
    }
}

impl std::ops::Deref for Api {
    type Target = ApiParts;

    fn deref(&self) -> &ApiParts {
        &self.0
    }
}

/// See [`Api`].
pub(crate) struct ApiParts {
    pub runtime: Runtime,
    pub scheduler: Scheduler,
    pub lifecycle: crate::lifecycle::Lifecycle,
    /// Cancelled when the app shuts down: open event streams end.
    pub closing: CancellationToken,
    pub body_limit: usize,
    /// The task endpoints' access rule, which the dashboard's sessions and forms follow.
    pub access: TasksAccess,
    /// What the dashboard offers.
    pub dashboard: crate::Dashboard,
}

/// The full router: the app's routes plus the task endpoints, unless `access` is
/// [`TasksAccess::Off`].
pub(crate) fn router(api: Api, access: TasksAccess, routes: Router) -> Router {
    if access == TasksAccess::Off {
        tracing::info!("task endpoints are off in production; set {TOKEN_VAR} to turn them on");
        return routes;
    }
    let body_limit = api.body_limit;
    // The endpoints at their full paths, not nested: a nested router's routes each carry
    // two more layers (the prefix stripped, the nested path set) that a request clones at
    // every level it passes. Each prefix's fallback is nested (unknown paths under it
    // answer in the error shape; handlers read the full path with `OriginalUri`), and so
    // is the dashboard, with its own.
    let under_tasks = match api.dashboard {
        crate::Dashboard::Off => Router::new(),
        crate::Dashboard::On | crate::Dashboard::ReadOnly => Router::new()
            .nest("/ui", ui::routes())
            .route("/ui/", axum::routing::get(ui::to_overview)),
    };
    // The three layers as one: each `Router::layer` boxes every route once more, and a
    // request clones the boxes below each level it passes (measured: 44 boxed clones a
    // task request with them apart).
    let endpoints = Router::new()
        .merge(nitro::routes())
        .merge(tasks::routes())
        .nest("/_nitro", Router::new().fallback(not_found))
        .nest("/_tasks", under_tasks.fallback(not_found))
        .method_not_allowed_fallback(method_not_allowed)
        .layer(
            tower::ServiceBuilder::new()
                .layer(Extension(api))
                .layer(DefaultBodyLimit::max(body_limit))
                .layer(access::layer(access)),
        );
    routes.merge(endpoints)
}

/// The one path parameter of a task endpoint (a task, run or schedule name). A bad one
/// (percent-encoded bytes that are not UTF-8) is answered in the error shape, where
/// axum's own extractor answers plain text.
pub(crate) struct Param(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Param {
    type Rejection = HttpError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, HttpError> {
        match axum::extract::Path::<String>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Param(value)),
            Err(rejection) => Err(HttpError::status(StatusCode::BAD_REQUEST, rejection.body_text())),
        }
    }
}

async fn not_found(OriginalUri(uri): OriginalUri) -> HttpError {
    let message = format!(
        "`{}` is not a task endpoint; see GET /_tasks/openapi.json for the list",
        uri.path()
    );
    HttpError::status(StatusCode::NOT_FOUND, message)
}

/// The app's 404, for paths no route or endpoint declares (h3's message).
pub(crate) async fn route_not_found(OriginalUri(uri): OriginalUri) -> HttpError {
    let message = format!("Cannot find any path matching {}.", uri.path());
    HttpError::status(StatusCode::NOT_FOUND, message)
}

pub(crate) async fn method_not_allowed(method: Method, OriginalUri(uri): OriginalUri) -> HttpError {
    let message = format!(
        "{method} is not allowed on `{}`; the Allow header lists what is",
        uri.path()
    );
    HttpError::status(StatusCode::METHOD_NOT_ALLOWED, message)
}
