//! The lifecycle over HTTP: `GET /_tasks/lifecycle`, and the middleware that tells the
//! lifecycle about requests (for `first_request` and `idle` visible tasks).

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::{Extension, Json};

use super::Api;
use crate::lifecycle::{Lifecycle, LifecycleInfo};

/// `GET /_tasks/lifecycle`: `{"lifecycle": [...]}`, every lifecycle node in registration
/// order.
pub(super) async fn list(Extension(api): Extension<Api>) -> Json<serde_json::Value> {
    let nodes: Vec<LifecycleInfo> = api.lifecycle.list();
    Json(serde_json::json!({ "lifecycle": nodes }))
}

/// Reports each request to the lifecycle. A first-request task the path matches starts
/// beside the request, which goes on at once.
pub(crate) async fn watch_requests(
    State(lifecycle): State<Lifecycle>,
    request: Request,
    next: Next,
) -> Response {
    struct Ends(Lifecycle);
    impl Drop for Ends {
        fn drop(&mut self) {
            self.0.request_ends();
        }
    }
    lifecycle.request_begins(request.uri().path());
    let _ends = Ends(lifecycle);
    next.run(request).await
}
