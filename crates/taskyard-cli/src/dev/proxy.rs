//! The port `taskyard dev` holds: every request goes to the app's current process; while
//! none is ready a request waits (up to a minute) instead of being refused; while the last
//! build is broken a browser's page shows the compiler's errors, and everything else still
//! reaches the old process.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::watch;

use super::{page, reload};

/// How long a request waits for a ready process.
const WAIT_FOR_READY: Duration = Duration::from_secs(60);
/// The largest request body read whole before it is passed on, so that the request can be
/// sent again when its process went away under it. A larger body is passed on as it comes
/// (one of unknown length once this much of it was read), and such a request is not sent
/// again.
const BODY_LIMIT: usize = 64 << 20;

/// The `content-length` a message gives, if any.
pub fn content_length(headers: &axum::http::HeaderMap) -> Option<usize> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|length| length.to_str().ok()?.parse().ok())
}

/// A request's body on its way to the app.
enum Outgoing {
    /// Read whole: sent again as often as it takes.
    Whole(axum::body::Bytes),
    /// Passed on as it comes (over [`BODY_LIMIT`]): sent once.
    Stream(Option<Body>),
}

impl Outgoing {
    /// `body` read whole if it ends within [`BODY_LIMIT`]; otherwise what was read of it,
    /// then the rest as it comes.
    async fn read(body: Body) -> Result<Outgoing, axum::Error> {
        let mut rest = body.into_data_stream();
        let mut read = Vec::new();
        let mut size = 0;
        while let Some(chunk) = rest.next().await {
            let chunk = chunk?;
            size += chunk.len();
            read.push(chunk);
            if size > BODY_LIMIT {
                let head = futures_util::stream::iter(read.into_iter().map(Ok::<_, axum::Error>));
                return Ok(Outgoing::Stream(Some(Body::from_stream(head.chain(rest)))));
            }
        }
        Ok(Outgoing::Whole(match read.len() {
            // One piece (the usual case) is kept as it is, without a copy.
            1 => read.swap_remove(0),
            _ => read.concat().into(),
        }))
    }

    /// The body for the next try; `None` once a streamed body went out.
    fn next(&mut self) -> Option<Body> {
        match self {
            Outgoing::Whole(bytes) => Some(Body::from(bytes.clone())),
            Outgoing::Stream(body) => body.take(),
        }
    }
}

/// A ready process of the app and the requests it is answering.
#[derive(Clone)]
pub struct Backend {
    pub addr: SocketAddr,
    pub in_flight: Arc<AtomicUsize>,
}

/// What the proxy serves from.
#[derive(Clone, Default)]
pub struct Status {
    /// The process requests go to.
    pub ready: Option<Backend>,
    /// Why the app is not up to date: a failed build, or a process that keeps crashing.
    pub failure: Option<Arc<page::Failure>>,
}

#[derive(Clone)]
struct Proxy {
    status: watch::Receiver<Status>,
    client: Client<HttpConnector, Body>,
}

/// The router of the held port.
pub fn router(status: watch::Receiver<Status>) -> axum::Router {
    let client = Client::builder(TokioExecutor::new()).build_http();
    axum::Router::new()
        .fallback(forward)
        .with_state(Proxy { status, client })
}

async fn forward(State(proxy): State<Proxy>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    if parts.uri.path() == "/_taskyard/dev" {
        return axum::Json(page::state_json(&proxy.status.borrow())).into_response();
    }
    if parts.uri.path() == reload::EVENTS {
        return reload::events(proxy.status.clone()).into_response();
    }
    if parts.uri.path() == reload::SCRIPT {
        return reload::script_file();
    }
    let wants_page = parts.method == axum::http::Method::GET
        && parts
            .headers
            .get(header::ACCEPT)
            .and_then(|accept| accept.to_str().ok())
            .is_some_and(|accept| accept.contains("text/html"));
    let large = content_length(&parts.headers).is_some_and(|length| length > BODY_LIMIT);
    let mut body = if large {
        Outgoing::Stream(Some(body))
    } else {
        match Outgoing::read(body).await {
            Ok(body) => body,
            Err(error) => {
                return (
                    StatusCode::BAD_REQUEST,
                    format!("taskyard dev: the request body could not be read: {error}\n"),
                )
                    .into_response();
            }
        }
    };
    let mut status = proxy.status.clone();
    let deadline = tokio::time::Instant::now() + WAIT_FOR_READY;
    let mut last_error = None;
    for _ in 0..3 {
        let current = status.borrow_and_update().clone();
        if let Some(failure) = &current.failure
            && (wants_page || current.ready.is_none())
        {
            return page::failure_response(failure, wants_page);
        }
        let Some(backend) = current.ready.clone() else {
            // No process yet (the first build) or none between a crash and its restart.
            if tokio::time::timeout_at(deadline, status.changed()).await.is_err() {
                break;
            }
            continue;
        };
        let uri = format!(
            "http://{}{}",
            backend.addr,
            parts.uri.path_and_query().map_or("/", |pq| pq.as_str())
        );
        let mut outgoing = axum::http::Request::builder()
            .method(parts.method.clone())
            .uri(uri);
        for (name, value) in &parts.headers {
            outgoing = outgoing.header(name, value);
        }
        let Some(sent) = body.next() else {
            // A body passed on as it came cannot be sent again.
            return (
                StatusCode::BAD_GATEWAY,
                "taskyard dev: the app's process went away before it took the request, whose body was over 64 MiB; send it again\n",
            )
                .into_response();
        };
        let Ok(outgoing) = outgoing.body(sent) else {
            return (
                StatusCode::BAD_REQUEST,
                "taskyard dev: the request cannot be passed on\n",
            )
                .into_response();
        };
        backend.in_flight.fetch_add(1, Ordering::SeqCst);
        let answered = proxy.client.request(outgoing).await;
        backend.in_flight.fetch_sub(1, Ordering::SeqCst);
        match answered {
            Ok(response) => {
                let mut response = response.map(Body::new);
                response
                    .headers_mut()
                    .insert("x-taskyard-dev", HeaderValue::from_static("proxied"));
                if wants_page && reload::is_page(response.headers()) {
                    // The version that answered: the page reloads once another serves.
                    let version = reload::version(&current).unwrap_or_default();
                    return reload::add_script(response, &version).await;
                }
                return response;
            }
            // The process was gone before the request reached it (a swap or a crash): send
            // it again to whichever is current, once it is not that one. A request that
            // reached a process is never sent twice.
            Err(error) if error.is_connect() => {
                last_error = Some(error.to_string());
                let gone = backend.addr;
                let moved = status.wait_for(|s| s.ready.as_ref().is_none_or(|b| b.addr != gone));
                let _ = tokio::time::timeout_at(deadline, moved).await;
            }
            Err(error) => {
                return (
                    StatusCode::BAD_GATEWAY,
                    format!("taskyard dev: the app did not answer: {error}\n"),
                )
                    .into_response();
            }
        }
    }
    let why = last_error.unwrap_or_else(|| "no process of the app became ready within 60 s".to_owned());
    (StatusCode::BAD_GATEWAY, format!("taskyard dev: {why}\n")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dev::stand_in::{app, post, serve};

    /// A body of any size, its length given or not, reaches the app: a small one read
    /// whole first (so that it can be sent again), one over 64 MiB passed on as it comes.
    #[tokio::test]
    async fn bodies_small_and_over_64_mib_reach_the_app() {
        let backend = app("one").await;
        let (_status, watched) = watch::channel(Status {
            ready: Some(backend),
            failure: None,
        });
        let held = serve(router(watched)).await;
        for chunked in [false, true] {
            for length in [1024, (3 << 20) + 5, BODY_LIMIT + 1] {
                let (head, body) = post(held, "/upload", length, chunked).await;
                assert!(
                    head.starts_with("HTTP/1.1 200"),
                    "{length} bytes, chunked {chunked}: {head}"
                );
                assert_eq!(body, length.to_string(), "the app read every byte");
            }
        }
    }

    /// A body over 64 MiB goes out once: when the process it was sent to was gone, the
    /// caller is told to send it again rather than the body being lost on the way to the
    /// next process.
    #[tokio::test]
    async fn a_large_body_whose_process_was_gone_is_answered_502() {
        // A port nothing listens on any more.
        let gone = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a port");
        let (status, watched) = watch::channel(Status {
            ready: Some(Backend {
                addr: gone,
                in_flight: std::sync::Arc::default(),
            }),
            failure: None,
        });
        let held = serve(router(watched)).await;
        // Without a length, 64 MiB are read before the first try: the next process comes
        // after that try, as it does after a length's stream went out.
        for (chunked, after) in [(false, 300), (true, 3_000)] {
            let next = app("next").await;
            let swapping = status.clone();
            let swap = tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(after)).await;
                swapping.send_modify(|s| s.ready = Some(next));
            });
            let (head, body) = post(held, "/upload", BODY_LIMIT + 1, chunked).await;
            assert!(head.starts_with("HTTP/1.1 502"), "chunked {chunked}: {head}");
            assert!(body.contains("send it again"), "{body}");
            drop(swap.await);
            status.send_modify(|s| {
                s.ready = Some(Backend {
                    addr: gone,
                    in_flight: std::sync::Arc::default(),
                });
            });
        }
    }
}
