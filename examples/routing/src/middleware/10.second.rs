//! Runs second (after `2.first`, though `10` sorts first as text): extends the trail, and
//! answers `/blocked` itself, ending the chain.

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use taskyard::route::Context;

pub async fn middleware(mut request: Request, next: Next) -> Response {
    if request.uri().path() == "/blocked" {
        return (StatusCode::FORBIDDEN, "blocked by 10.second").into_response();
    }
    let context = Context::of(request.extensions_mut());
    let mut trail: Vec<String> = context.get_as("trail").unwrap_or_default();
    trail.push("10.second".to_owned());
    context.set("trail", trail);
    next.run(request).await
}
