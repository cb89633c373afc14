//! Runs first: gives every request an id, in the context (handlers read
//! `event.context().get("request_id")`) and in the `x-request-id` response header.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use taskyard::route::Context;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

pub async fn middleware(mut request: Request, next: Next) -> Response {
    let id = format!("req-{}", NEXT_ID.fetch_add(1, Ordering::Relaxed));
    Context::of(request.extensions_mut()).set("request_id", &id);
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::try_from(id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}
