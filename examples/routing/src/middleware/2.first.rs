//! Runs first: starts the trail.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use taskyard::route::Context;

pub async fn middleware(mut request: Request, next: Next) -> Response {
    Context::of(request.extensions_mut()).set("trail", ["2.first"]);
    next.run(request).await
}
