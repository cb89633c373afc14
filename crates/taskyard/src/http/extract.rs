//! What handlers take from a request beside its body: the app's [`Runtime`] as an argument,
//! and the [`BodyLimit`] the front layer puts in each request's extensions.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;

use super::HttpError;
use crate::Runtime;

/// The largest body a request may carry, set by the app (`App::body_limit`) and read by
/// every extractor that reads a body.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyLimit(pub usize);

/// The runtime of the app serving the request: the front layer's, or one a router built by
/// hand put in the extensions.
pub(crate) fn request_runtime(parts: &Parts) -> Option<Runtime> {
    super::front::serving_runtime().or_else(|| parts.extensions.get::<Runtime>().cloned())
}

pub(crate) fn unreachable_runtime() -> HttpError {
    HttpError::status(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the task runtime is not reachable from this request; serve the app with App::serve, RunningApp::service or RunningApp::router",
    )
}

/// The app's task runtime as a handler argument:
/// `async fn handler(runtime: taskyard::Runtime) -> ..`.
impl<S: Send + Sync> FromRequestParts<S> for Runtime {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        request_runtime(parts).ok_or_else(unreachable_runtime)
    }
}
