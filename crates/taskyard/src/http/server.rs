//! The HTTP server: the accept loop that [`RunningApp::serve_on`](crate::RunningApp::serve_on)
//! runs, with the limits a server facing the open network needs.
//!
//! - **A connection limit.** Past [`ServerLimits::max_connections`] open connections, the
//!   loop stops accepting until one closes; new clients wait in the kernel's backlog
//!   instead of costing memory each.
//! - **A header-read timeout.** A client has [`ServerLimits::header_read_timeout`] to send
//!   a request's head, counted from when the server is ready to read it: a slowloris client
//!   sending a byte at a time, and a keep-alive connection idle for that long, are closed.
//! - **Shutdown in two steps.** While the runtime gives running tasks their grace period,
//!   the listener stays open and every new request is answered `503` with `Retry-After`, so
//!   clients and load balancers learn why; then the listener closes and open connections
//!   finish the request they are on.
//!
//! axum's own `serve` has neither limit, hence this loop over hyper's connection builder.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::future::Either;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::{AppService, HttpError};
use crate::config::ServerLimits;

/// How long open connections get to finish after the listener closes.
const DRAIN: Duration = Duration::from_secs(5);

/// Serves `service` on `listener` until `close` is cancelled. Requests that arrive after
/// `draining` is cancelled are answered `503`.
pub(crate) async fn serve(
    listener: TcpListener,
    service: AppService,
    limits: ServerLimits,
    draining: CancellationToken,
    close: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    loop {
        let accepted = tokio::select! {
            () = close.cancelled() => break,
            accepted = async {
                // A slot first: at the limit, clients wait in the backlog, not in memory.
                let slot = slots.clone().acquire_owned().await;
                (slot, listener.accept().await)
            } => accepted,
        };
        let (slot, (stream, peer)) = match accepted {
            (Ok(slot), Ok(connection)) => (slot, connection),
            (_, Err(error)) => {
                // Out of file descriptors and the like: pause rather than spin.
                tracing::warn!(%error, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            (Err(_), _) => break,
        };
        let _ = stream.set_nodelay(true);
        let service = service.clone();
        let draining = draining.clone();
        let handler = hyper::service::service_fn(move |request: axum::http::Request<Incoming>| {
            let mut request = request.map(axum::body::Body::new);
            request.extensions_mut().insert(ConnectInfo(peer));
            if draining.is_cancelled() {
                return Either::Left(std::future::ready(Ok::<_, Infallible>(shutting_down(&request))));
            }
            Either::Right(service.clone().oneshot(request))
        });
        let connection = builder.serve_connection(TokioIo::new(stream), handler);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, %peer, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown()).await.is_err() {
        tracing::warn!(
            drain_ms = DRAIN.as_millis() as u64,
            "connections still open after the drain period; closing them"
        );
    }
}

/// The answer to a request that arrives while the app shuts down.
fn shutting_down(request: &axum::extract::Request) -> Response {
    // Outside the front layer, which would otherwise fill in the URL.
    let error = HttpError {
        url: request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned(),
        ..HttpError::status(
            StatusCode::SERVICE_UNAVAILABLE,
            "The app is shutting down; retry on another instance or once it is back",
        )
    };
    let mut response = error.into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    response
}
