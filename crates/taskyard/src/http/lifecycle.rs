//! The lifecycle over HTTP: `GET /_tasks/lifecycle`, and the middleware that tells the
//! lifecycle about requests (for `first_request` and `idle` visible tasks).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::routing::Route;
use axum::{Extension, Json};
use tower_layer::Layer;
use tower_service::Service;

use super::Api;
use crate::lifecycle::{Lifecycle, LifecycleInfo};

/// `GET /_tasks/lifecycle`: `{"lifecycle": [...]}`, every lifecycle node in registration
/// order.
pub(super) async fn list(Extension(api): Extension<Api>) -> Json<serde_json::Value> {
    let nodes: Vec<LifecycleInfo> = api.lifecycle.list();
    Json(serde_json::json!({ "lifecycle": nodes }))
}

/// Reports each request to the lifecycle: a layer of plain services, not
/// `axum::middleware::from_fn`, which boxes a future and clones the stack below it on
/// every request; this one passes the request on and counts it until its response is
/// done. A first-request task the path matches starts beside the request, which goes on
/// at once.
pub(crate) fn watch_requests(
    lifecycle: Lifecycle,
) -> impl Layer<Route, Service = Watched<Route>> + Clone + Send + Sync + 'static {
    tower_layer::layer_fn(move |inner| Watched {
        lifecycle: lifecycle.clone(),
        inner,
    })
}

/// See [`watch_requests`].
#[derive(Clone)]
pub(crate) struct Watched<S> {
    lifecycle: Lifecycle,
    inner: S,
}

impl<S: Service<Request>> Service<Request> for Watched<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = WatchedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        self.lifecycle.request_begins(request.uri().path());
        WatchedFuture {
            inner: self.inner.call(request),
            _ends: Ends(self.lifecycle.clone()),
        }
    }
}

pin_project_lite::pin_project! {
    /// A watched request's response on its way; the request ends, for the lifecycle, when
    /// this is dropped (answered, or given up by the client).
    pub(crate) struct WatchedFuture<F> {
        #[pin]
        inner: F,
        _ends: Ends,
    }
}

impl<F: Future> Future for WatchedFuture<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.project().inner.poll(cx)
    }
}

/// Tells the lifecycle a request ended when dropped.
struct Ends(Lifecycle);

impl Drop for Ends {
    fn drop(&mut self) {
        self.0.request_ends();
    }
}
