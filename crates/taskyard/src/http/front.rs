//! The app's front layer: the first code every request meets, before middleware and
//! routing. It applies the route rules (CORS preflights, redirects, proxies, the cache),
//! renders every [`HttpError`](super::HttpError) for the request that got it (JSON or an
//! HTML page, development or production), and sets the rules' CORS and extra headers on
//! whatever answers — error responses included.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;

use super::error::{ErrorReport, ErrorRequest, accepts_html, render};
use crate::route::BodyLimit;
use crate::route::RouteRules;
use crate::route::rules::RulesRuntime;

/// What the front layer holds.
pub(crate) struct Front {
    pub rules: RouteRules,
    pub runtime: RulesRuntime,
    /// Unhandled errors hide their details.
    pub production: bool,
    pub body_limit: usize,
}

pub(crate) async fn front(State(front): State<Arc<Front>>, mut request: Request, next: Next) -> Response {
    request.extensions_mut().insert(BodyLimit(front.body_limit));
    let uri = request.uri().clone();
    let html = accepts_html(request.headers());
    let resolved = front.rules.resolve(uri.path());
    let mut response = match &resolved {
        None => next.run(request).await,
        Some(rules) => {
            let origin = request.headers().get(header::ORIGIN).cloned();
            let mut response = rules.handle(&front.runtime, request, next).await;
            rules.finish(&mut response, origin.as_ref());
            response
        }
    };
    if let Some(ErrorReport(report)) = response.extensions().get::<ErrorReport>().cloned() {
        let url = uri.path_and_query().map_or("/", |p| p.as_str());
        let request = ErrorRequest {
            url,
            path: uri.path(),
            accepts_html: html,
            production: front.production,
        };
        // The rule headers set above stay: only the body and its type change.
        response = render(response, &report, &request);
    }
    response
}
