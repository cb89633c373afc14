//! The app's front layer: the outermost code of every route and of the fallback. It applies
//! the route rules (CORS preflights, redirects, proxies, the cache), renders every
//! [`HttpError`](super::HttpError) for the request that got it (JSON or an HTML page,
//! development or production), and sets the rules' CORS and extra headers on whatever
//! answers — error responses included.
//!
//! It is a tower service written out by hand around the app's whole router, rather than an
//! `axum::middleware::from_fn` or a layer on each route: a request that no rule matches
//! costs one extension and no boxed future here, which the file-route benchmark showed to
//! matter (each of those adds a boxed service clone and a boxed future per request).

mod cache;
mod cors;
mod proxy;
mod rules;

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

pub(crate) use self::cache::ResponseCache;
pub(crate) use self::proxy::ProxyClient;
pub use self::rules::RouteRules;
use super::BodyLimit;
use super::error::{ErrorReport, ErrorRequest, accepts_html, render};
use crate::Runtime;
use crate::sync::lock;

tokio::task_local! {
    /// The runtime of the app whose request this task is serving: what the `Runtime`
    /// extractor and `Event::run_task` reach. A task-local rather than a request extension,
    /// because a fourth extension makes the request's extension map grow and rehash, which
    /// the file-route benchmark counted at a third of what the front layer cost.
    static SERVING: Runtime;
}

/// The runtime of the app serving the current request, if any.
pub(crate) fn serving_runtime() -> Option<Runtime> {
    SERVING.try_with(Runtime::clone).ok()
}

/// `future` with `runtime` as the serving runtime (for work spawned for a request).
pub(crate) fn serving<F: Future>(runtime: Runtime, future: F) -> impl Future<Output = F::Output> {
    SERVING.scope(runtime, future)
}

/// The rest of the stack below the front layer, as the rules call it.
pub(crate) type Inner = BoxCloneSyncService<Request, Response, Infallible>;

/// What the front layer holds.
pub(crate) struct Front {
    pub rules: RouteRules,
    /// The `cache` rule's responses.
    pub cache: ResponseCache,
    /// The `proxy` rule's client for external targets.
    pub proxy: ProxyClient,
    /// Unhandled errors hide their details.
    pub production: bool,
    pub body_limit: usize,
    pub tasks: Runtime,
    /// The whole app, for proxies to internal paths (which go through every rule and
    /// middleware again, as Nitro's local fetch does). Emptied at shutdown.
    pub app: Mutex<Option<AppService>>,
}

impl Front {
    /// The app as it serves, for an internal proxy.
    pub(crate) fn app(&self) -> Option<AppService> {
        lock(&self.app).clone()
    }
}

/// The app as one tower service: what [`RunningApp::serve_on`](crate::RunningApp::serve_on)
/// serves ([`RunningApp::service`](crate::RunningApp::service)).
pub type AppService = FrontService<Router>;

/// The front layer around the app's router (see the module documentation).
#[derive(Clone)]
pub struct FrontService<S> {
    inner: S,
    front: Arc<Front>,
}

impl<S> FrontService<S> {
    pub(crate) fn new(inner: S, front: Arc<Front>) -> Self {
        FrontService { inner, front }
    }
}

/// What rendering an error needs of the request.
pub struct Asked {
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
        // Each extension costs an allocation; the default limit needs none.
        if front.body_limit != super::DEFAULT_BODY_LIMIT {
            request.extensions_mut().insert(BodyLimit(front.body_limit));
        }
        let asked = Asked {
            uri: request.uri().clone(),
            accept: request.headers().get(header::ACCEPT).cloned(),
        };
        match front.rules.resolve(request.method(), request.uri().path()) {
            // No user code runs in `call` (axum's services start on first poll), so the
            // runtime only needs to be in scope while the future is polled.
            None => FrontFuture::Plain {
                future: SERVING.scope(front.tasks.clone(), self.inner.call(request)),
                asked: Some(asked),
                front,
            },
            Some(rules) => {
                // The readied service goes to this request; a clone stays (tower's rule).
                let clone = self.inner.clone();
                let inner = Inner::new(std::mem::replace(&mut self.inner, clone));
                let origin = request.headers().get(header::ORIGIN).cloned();
                let runtime = front.tasks.clone();
                let answer = Box::pin(SERVING.scope(runtime, async move {
                    let mut response = rules.handle(&front, request, inner).await;
                    rules.finish(&mut response, origin.as_ref());
                    finish(response, &asked, &front)
                }));
                FrontFuture::Rules { answer }
            }
        }
    }
}

pin_project_lite::pin_project! {
    #[project = FrontProjection]
    /// The answer of [`FrontService`].
    pub enum FrontFuture<F> {
        Plain {
            #[pin] future: tokio::task::futures::TaskLocalFuture<Runtime, F>,
            asked: Option<Asked>,
            front: Arc<Front>,
        },
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
