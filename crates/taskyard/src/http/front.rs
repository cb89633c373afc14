//! The app's front layer: the outermost code of every route and of the fallback. It applies
//! the route rules (CORS preflights, redirects, proxies, the cache), renders every
//! [`HttpError`](super::HttpError) for the request that got it (JSON or an HTML page,
//! development or production), and sets the rules' CORS and extra headers on whatever
//! answers — error responses included.
//!
//! It is a tower service written out by hand rather than an `axum::middleware::from_fn`:
//! a request that no rule matches costs no allocation here, which the file-route benchmark
//! showed to matter (`from_fn` boxes the future and clones the rest of the stack per
//! request).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, Uri, header};
use axum::response::Response;
use tower::ServiceExt;
use tower::util::BoxCloneSyncService;
use tower_service::Service;

use super::error::{ErrorReport, ErrorRequest, accepts_html, render};
use crate::Runtime;
use crate::route::rules::RulesRuntime;
use crate::route::{BodyLimit, RouteRules};
use crate::run::lock;

/// The rest of the stack below the front layer, as the rules call it.
pub(crate) type Inner = BoxCloneSyncService<Request, Response, Infallible>;

/// What the front layer holds.
pub(crate) struct Front {
    pub rules: RouteRules,
    pub runtime: RulesRuntime,
    /// Unhandled errors hide their details.
    pub production: bool,
    pub body_limit: usize,
    pub tasks: Runtime,
    /// The whole app, for proxies to internal paths (which go through every rule and
    /// middleware again, as Nitro's local fetch does). Emptied at shutdown.
    pub app: Mutex<Option<Router>>,
}

impl Front {
    /// The app as it serves, for an internal proxy.
    pub(crate) fn app(&self) -> Option<Router> {
        lock(&self.app).clone()
    }
}

#[derive(Clone)]
pub(crate) struct FrontLayer(pub Arc<Front>);

impl<S> tower_layer::Layer<S> for FrontLayer {
    type Service = FrontService<S>;

    fn layer(&self, inner: S) -> FrontService<S> {
        FrontService {
            inner,
            front: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub(crate) struct FrontService<S> {
    inner: S,
    front: Arc<Front>,
}

/// What rendering an error needs of the request.
struct Asked {
    uri: Uri,
    accept: Option<HeaderValue>,
}

impl<S> Service<Request> for FrontService<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = FrontFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let front = self.front.clone();
        let extensions = request.extensions_mut();
        // Each extension costs an allocation; the default limit needs none.
        if front.body_limit != super::DEFAULT_BODY_LIMIT {
            extensions.insert(BodyLimit(front.body_limit));
        }
        extensions.insert(front.tasks.clone());
        let asked = Asked {
            uri: request.uri().clone(),
            accept: request.headers().get(header::ACCEPT).cloned(),
        };
        match front.rules.resolve(request.uri().path()) {
            None => FrontFuture::Plain {
                future: self.inner.call(request),
                asked: Some(asked),
                front,
            },
            Some(rules) => {
                // The readied service goes to this request; a clone stays (tower's rule).
                let clone = self.inner.clone();
                let inner = Inner::new(std::mem::replace(&mut self.inner, clone));
                let origin = request.headers().get(header::ORIGIN).cloned();
                let answer = Box::pin(async move {
                    let mut response = rules.handle(&front, request, inner).await;
                    rules.finish(&mut response, origin.as_ref());
                    finish(response, &asked, &front)
                });
                FrontFuture::Rules { answer }
            }
        }
    }
}

pin_project_lite::pin_project! {
    #[project = FrontProjection]
    pub(crate) enum FrontFuture<F> {
        Plain { #[pin] future: F, asked: Option<Asked>, front: Arc<Front> },
        Rules { answer: Pin<Box<dyn Future<Output = Response> + Send>> },
    }
}

impl<F> Future for FrontFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            FrontProjection::Plain { future, asked, front } => match future.poll(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Ok(response)) => match asked.take() {
                    Some(asked) => Poll::Ready(Ok(finish(response, &asked, front))),
                    None => Poll::Ready(Ok(response)),
                },
                Poll::Ready(Err(never)) => match never {},
            },
            FrontProjection::Rules { answer } => answer.as_mut().poll(cx).map(Ok),
        }
    }
}

/// Renders the error a response carries, if any, for the request that got it; the headers
/// already set stay, only the body and its type change.
fn finish(response: Response, asked: &Asked, front: &Front) -> Response {
    let Some(ErrorReport(report)) = response.extensions().get::<ErrorReport>().cloned() else {
        return response;
    };
    let request = ErrorRequest {
        url: asked.uri.path_and_query().map_or("/", |p| p.as_str()),
        path: asked.uri.path(),
        accepts_html: asked.accept.as_ref().is_some_and(accepts_html),
        production: front.production,
    };
    render(response, &report, &request)
}

/// Calls `inner` with `request`.
pub(crate) async fn call(inner: Inner, request: Request) -> Response {
    match inner.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}
