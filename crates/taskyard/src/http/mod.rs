//! The HTTP surface: the app's own routes plus the task endpoints under `/_tasks`.
//!
//! The HTTP layer is a client of the runtime, like the command line: it turns requests into
//! [`RunRequest`](crate::RunRequest)s and runtime errors into JSON responses ([`error`]).

mod error;
mod tasks;

use axum::Extension;

use crate::Runtime;

pub use self::error::HttpError;

/// The full router: the app's routes, the task endpoints, and the runtime as an extension.
pub(crate) fn router(runtime: Runtime, routes: axum::Router) -> axum::Router {
    routes.merge(tasks::routes()).layer(Extension(runtime))
}
