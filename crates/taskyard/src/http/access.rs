//! Who may call the task endpoints (`/_tasks/**`, `/_nitro/tasks/**`).
//!
//! They run code on request, so by default they are closed to the outside: in development
//! they answer loopback clients only; in production they exist only when a token is set,
//! and then every request must carry it.
//!
//! A loopback client is not enough in development: the developer's browser is one, and any
//! page it shows could send requests to the app. So a request must also be addressed to a
//! loopback name (`Host`; this stops DNS rebinding), come from the app's own origin if a
//! browser says where it comes from (`Origin`, `Sec-Fetch-Site`), and a request that runs a
//! task must not have a content type a form could send (`text/plain`, form encodings)
//! unless it carries the command line's header: a page cannot send JSON or a custom header
//! to another origin without CORS, which the app never grants. Command-line clients (curl,
//! the `taskyard` CLI) send none of the browser headers and pass.

use std::convert::Infallible;
use std::future::Ready;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::connect_info::MockConnectInfo;
use axum::extract::{ConnectInfo, OriginalUri, Request};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::Route;
use futures_util::future::Either;
use subtle::ConstantTimeEq;
use tower_layer::Layer;
use tower_service::Service;

use super::tasks::CLIENT_HEADER;
use super::{HttpError, session};

/// The environment variable holding the production token.
pub const TOKEN_VAR: &str = "TASKYARD_TASKS_TOKEN";

/// Access rule of the task endpoints.
#[derive(Clone, PartialEq, Eq)]
pub enum TasksAccess {
    /// Only clients connecting from a loopback address (development).
    Loopback,
    /// Any client sending `Authorization: Bearer <token>` (production).
    Token(String),
    /// Not mounted at all: every path answers as if it did not exist.
    Off,
}

impl std::fmt::Debug for TasksAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TasksAccess::Loopback => f.write_str("Loopback"),
            // Never print the secret.
            TasksAccess::Token(_) => f.write_str("Token(..)"),
            TasksAccess::Off => f.write_str("Off"),
        }
    }
}

impl TasksAccess {
    /// The rule for this process: `Loopback` in development (`TASKYARD_ENV`, by default
    /// `development` in debug builds), otherwise `Token` when `TASKYARD_TASKS_TOKEN` is set
    /// and `Off` when it is not.
    pub fn from_env() -> Self {
        if crate::config::app_env() == "development" {
            return TasksAccess::Loopback;
        }
        match std::env::var(TOKEN_VAR) {
            Ok(token) if !token.trim().is_empty() => TasksAccess::Token(token.trim().to_owned()),
            _ => TasksAccess::Off,
        }
    }
}

/// The layer enforcing a [`TasksAccess`] on every task endpoint. A plain service rather
/// than `axum::middleware::from_fn`: the rule is decided without waiting, so a request
/// that passes goes straight to the endpoint, without the boxed future and the clone of
/// the layers below that `from_fn` makes on every request.
pub(super) fn layer(
    access: TasksAccess,
) -> impl Layer<Route, Service = Access<Route>> + Clone + Send + Sync + 'static {
    let access = Arc::new(access);
    tower_layer::layer_fn(move |inner| Access {
        access: access.clone(),
        inner,
    })
}

/// See [`layer`].
#[derive(Clone)]
pub(super) struct Access<S> {
    access: Arc<TasksAccess>,
    inner: S,
}

impl<S> Service<Request> for Access<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Ready<Result<Response, Infallible>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        match refusal(&self.access, &request) {
            None => Either::Right(self.inner.call(request)),
            Some(answer) => Either::Left(std::future::ready(Ok(answer))),
        }
    }
}

/// The answer to a request the rule refuses, or `None` when it may go on.
fn refusal(access: &TasksAccess, request: &Request) -> Option<Response> {
    let refused = match access {
        TasksAccess::Loopback => {
            let extensions = request.extensions();
            // `MockConnectInfo` stands in for the real peer when a router is served or
            // called without connection info, as in tests.
            let peer = extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|info| info.0.ip())
                .or_else(|| {
                    extensions
                        .get::<MockConnectInfo<SocketAddr>>()
                        .map(|info| info.0.ip())
                });
            match peer {
                Some(ip) if ip.to_canonical().is_loopback() => browser_refusal(request),
                _ => Some(HttpError::status(StatusCode::FORBIDDEN, "Forbidden IP")),
            }
        }
        TasksAccess::Token(expected) => match bearer_refusal(request, expected) {
            Some(refusal) if is_dashboard(request) => {
                // The dashboard's login page and assets are open; its other pages take the
                // session cookie its login sets, and send a browser without one to log in.
                if is_open_dashboard_path(request) || session::has_session(request.headers(), expected) {
                    None
                } else if matches!(*request.method(), Method::GET | Method::HEAD) {
                    return Some(to_login(request));
                } else {
                    Some(refusal)
                }
            }
            refusal => refusal,
        },
        // Not mounted; kept total so a router built by hand still refuses.
        TasksAccess::Off => Some(HttpError::status(StatusCode::NOT_FOUND, "Not Found")),
    }?;
    let unauthorized = refused.status == StatusCode::UNAUTHORIZED;
    let mut response = refused.into_response();
    if unauthorized {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    Some(response)
}

/// The full path a request was sent to, before any nesting.
fn full_path(request: &Request) -> &str {
    match request.extensions().get::<OriginalUri>() {
        Some(OriginalUri(uri)) => uri.path(),
        None => request.uri().path(),
    }
}

/// A request for the dashboard (`/_tasks/ui/**`).
fn is_dashboard(request: &Request) -> bool {
    let path = full_path(request);
    path == session::UI_PATH
        || path
            .strip_prefix(session::UI_PATH)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The dashboard's paths that need no session: its login form and its assets.
fn is_open_dashboard_path(request: &Request) -> bool {
    full_path(request)
        .strip_prefix(session::UI_PATH)
        .is_some_and(|rest| rest == "/login" || rest.starts_with("/assets/"))
}

/// A redirect to the dashboard's login form, coming back to this page after it.
fn to_login(request: &Request) -> Response {
    let uri = match request.extensions().get::<OriginalUri>() {
        Some(OriginalUri(uri)) => uri,
        None => request.uri(),
    };
    let back = uri.path_and_query().map_or("/_tasks/ui", |path| path.as_str());
    let next: String = form_urlencoded::byte_serialize(back.as_bytes()).collect();
    let location = format!("{}/login?next={next}", session::UI_PATH);
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, location),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
    )
        .into_response()
}

/// Why a request from a loopback client is still refused in development, if it is: it
/// is addressed to another host, comes from another site's page, or runs a task with a
/// body a page could send without CORS.
fn browser_refusal(request: &Request) -> Option<HttpError> {
    let headers = request.headers();
    let host = headers.get(header::HOST).and_then(|value| value.to_str().ok());
    if let Some(host) = host
        && !is_loopback_host(host)
    {
        return Some(HttpError::status(
            StatusCode::FORBIDDEN,
            format!(
                "Forbidden Host: `{host}` is not a loopback name; in development the task endpoints answer requests to localhost, 127.0.0.1 or [::1] only"
            ),
        ));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let own = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .is_some_and(|authority| Some(authority) == host && is_loopback_host(authority));
        if !own {
            return Some(HttpError::status(
                StatusCode::FORBIDDEN,
                format!(
                    "Forbidden Origin: a page from `{origin}` may not call the task endpoints; only the app's own pages may"
                ),
            ));
        }
    }
    let site = headers
        .get("sec-fetch-site")
        .and_then(|value| value.to_str().ok());
    if let Some(site @ ("cross-site" | "same-site")) = site {
        return Some(HttpError::status(
            StatusCode::FORBIDDEN,
            format!("Forbidden: a {site} page may not call the task endpoints"),
        ));
    }
    if runs_a_task(request) && is_simple_content_type(request) && !headers.contains_key(CLIENT_HEADER) {
        return Some(HttpError::status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "a request that runs a task must send its body as JSON: add `Content-Type: application/json` (with curl: -H 'content-type: application/json')",
        ));
    }
    None
}

/// `localhost`, a name under `.localhost`, or a loopback address, with or without a port.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        // `[::1]:3000`
        Some(rest) => rest.split_once(']').map_or(rest, |(address, _)| address),
        None => host.rsplit_once(':').map_or(host, |(name, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                name
            } else {
                host
            }
        }),
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// `GET|POST /_nitro/tasks/NAME` and `POST /_tasks/NAME/runs`.
fn runs_a_task(request: &Request) -> bool {
    if is_dashboard(request) {
        // The dashboard's forms carry a CSRF token instead.
        return false;
    }
    let path = full_path(request);
    let nitro = path
        .strip_prefix("/_nitro/tasks/")
        .is_some_and(|name| !name.is_empty());
    let native = request.method() == Method::POST
        && path
            .strip_prefix("/_tasks/")
            .and_then(|rest| rest.strip_suffix("/runs"))
            .is_some_and(|name| !name.is_empty() && !name.contains('/'));
    nitro || native
}

/// A content type a page may send to another origin without a CORS preflight (the
/// Fetch standard's CORS-safelisted ones). Browsers send one of these with every form and
/// every string body.
fn is_simple_content_type(request: &Request) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|value| value.to_str().unwrap_or(""))
        .map(|value| value.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .is_some_and(|essence| {
            matches!(
                essence.as_str(),
                "text/plain" | "application/x-www-form-urlencoded" | "multipart/form-data"
            )
        })
}

fn bearer_refusal(request: &Request, expected: &str) -> Option<HttpError> {
    let Some(value) = request.headers().get(header::AUTHORIZATION) else {
        return Some(HttpError::status(
            StatusCode::UNAUTHORIZED,
            format!(
                "the task endpoints need `Authorization: Bearer <token>`, with the token set in {TOKEN_VAR}"
            ),
        ));
    };
    // The scheme is case-insensitive (RFC 9110 §11.1): `bearer` is `Bearer`.
    let token = value
        .to_str()
        .ok()
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    match token {
        None => Some(HttpError::status(
            StatusCode::UNAUTHORIZED,
            "the Authorization header must be `Bearer <token>`",
        )),
        // Constant time, so the comparison's duration tells nothing about the token.
        Some(token) if bool::from(token.as_bytes().ct_eq(expected.as_bytes())) => None,
        Some(_) => Some(HttpError::status(
            StatusCode::FORBIDDEN,
            format!("the bearer token does not match {TOKEN_VAR}"),
        )),
    }
}
