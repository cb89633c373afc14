//! Who may call the task endpoints (`/_tasks/**`, `/_nitro/tasks/**`).
//!
//! They run code on request, so by default they are closed to the outside: in development
//! they answer loopback clients only; in production they exist only when a token is set,
//! and then every request must carry it.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::connect_info::MockConnectInfo;
use axum::extract::{ConnectInfo, OriginalUri, Request, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::HttpError;

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

/// The middleware enforcing a [`TasksAccess`] on every task endpoint.
pub(super) async fn check(State(access): State<Arc<TasksAccess>>, request: Request, next: Next) -> Response {
    let uri = match request.extensions().get::<OriginalUri>() {
        Some(OriginalUri(uri)) => uri.clone(),
        None => request.uri().clone(),
    };
    let refused = match access.as_ref() {
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
                Some(ip) if ip.is_loopback() => None,
                _ => Some(HttpError::new(StatusCode::FORBIDDEN, &uri, "Forbidden IP")),
            }
        }
        TasksAccess::Token(expected) => bearer_refusal(&request, &uri, expected),
        // Not mounted; kept total so a router built by hand still refuses.
        TasksAccess::Off => Some(HttpError::new(StatusCode::NOT_FOUND, &uri, "Not Found")),
    };
    match refused {
        None => next.run(request).await,
        Some(error) => {
            let unauthorized = error.status == StatusCode::UNAUTHORIZED;
            let mut response = error.into_response();
            if unauthorized {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            response
        }
    }
}

fn bearer_refusal(request: &Request, uri: &Uri, expected: &str) -> Option<HttpError> {
    let Some(value) = request.headers().get(header::AUTHORIZATION) else {
        return Some(HttpError::new(
            StatusCode::UNAUTHORIZED,
            uri,
            format!(
                "the task endpoints need `Authorization: Bearer <token>`, with the token set in {TOKEN_VAR}"
            ),
        ));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim);
    match token {
        None => Some(HttpError::new(
            StatusCode::UNAUTHORIZED,
            uri,
            "the Authorization header must be `Bearer <token>`",
        )),
        // Constant time, so the comparison's duration tells nothing about the token.
        Some(token) if bool::from(token.as_bytes().ct_eq(expected.as_bytes())) => None,
        Some(_) => Some(HttpError::new(
            StatusCode::FORBIDDEN,
            uri,
            format!("the bearer token does not match {TOKEN_VAR}"),
        )),
    }
}
