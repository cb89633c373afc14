//! Runs second (numbers sort as numbers: `2.admin` before a `10.…`): under `/api/admin`
//! a request needs `Authorization: Bearer demo`, or it is answered 401 here and never
//! reaches a route.

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use taskyard::http::HttpError;
use taskyard::route::Context;

pub async fn middleware(mut request: Request, next: Next) -> Response {
    if !request.uri().path().starts_with("/api/admin") {
        return next.run(request).await;
    }
    let authorized = request
        .headers()
        .get("authorization")
        .is_some_and(|value| value == "Bearer demo");
    if !authorized {
        return HttpError::status(StatusCode::UNAUTHORIZED, "send Authorization: Bearer demo").into_response();
    }
    Context::of(request.extensions_mut()).set("admin", "demo");
    next.run(request).await
}
