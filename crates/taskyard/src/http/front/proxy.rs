//! The `proxy` rule: a request answered by another path of the app, or by another server.
//!
//! An internal target (`/api/**`) is served in-process by the whole app again, path
//! rewritten, so the rules and middleware of the new path apply (Nitro's local fetch); a
//! chain of more than 8 internal proxies is a loop and answers 508. An
//! `http://` target is forwarded with hyper: the method, headers and body go out, minus
//! hop-by-hop headers and with `host` set to the target and `x-forwarded-*` added; the
//! answer comes back as it is. An unreachable target answers 502.

use axum::body::Body;
use axum::extract::Request;
use axum::http::uri::PathAndQuery;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tower::ServiceExt;

use super::Front;
use crate::http::HttpError;

/// How many internal proxies one request may pass through.
const MAX_HOPS: u8 = 8;

/// The internal proxies a request has passed through.
#[derive(Debug, Clone, Copy, Default)]
struct Hops(u8);

/// Checks a proxy target when the rules are read.
pub(crate) fn check_target(to: &str) -> Result<(), String> {
    if to.starts_with("https://") {
        return Err(format!(
            "the target `{to}` is https, which the proxy does not speak yet; use an http:// target (such as a local TLS-terminating proxy)"
        ));
    }
    if to.starts_with("http://") && to.replace("/**", "").parse::<Uri>().is_err() {
        return Err(format!("the target `{to}` is not a valid URL"));
    }
    Ok(())
}

/// The client external targets are reached with; it keeps connections alive between
/// requests.
pub(crate) struct ProxyClient {
    client: Client<HttpConnector, Body>,
}

impl Default for ProxyClient {
    fn default() -> Self {
        ProxyClient {
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }
}

/// Headers that belong to one connection, not to the message (RFC 9110 §7.6.1).
const HOP_BY_HOP: [header::HeaderName; 7] = [
    header::CONNECTION,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    headers.remove("keep-alive");
}

impl ProxyClient {
    pub(crate) async fn forward(&self, front: &Front, target: String, mut request: Request) -> Response {
        if target.starts_with('/') {
            let hops = request.extensions().get::<Hops>().copied().unwrap_or_default();
            if hops.0 >= MAX_HOPS {
                return HttpError::status(
                    StatusCode::LOOP_DETECTED,
                    format!("the proxy rules sent this request through {MAX_HOPS} internal paths; check them for a loop"),
                )
                .into_response();
            }
            request.extensions_mut().insert(Hops(hops.0 + 1));
            let Ok(path) = PathAndQuery::try_from(target.as_str()) else {
                return HttpError::bad_request(format!("the proxy target `{target}` is not a valid path"))
                    .into_response();
            };
            let mut parts = request.uri().clone().into_parts();
            parts.path_and_query = Some(path);
            if let Ok(uri) = Uri::from_parts(parts) {
                *request.uri_mut() = uri;
            }
            return match front.app() {
                Some(app) => match app.oneshot(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                },
                None => HttpError::status(StatusCode::SERVICE_UNAVAILABLE, "the app is shutting down")
                    .into_response(),
            };
        }
        let uri = match target.parse::<Uri>() {
            Ok(uri) => uri,
            Err(error) => {
                return HttpError::bad_request(format!(
                    "the proxy target `{target}` is not a valid URL: {error}"
                ))
                .into_response();
            }
        };
        let original_host = request.headers().get(header::HOST).cloned();
        let client_ip = request
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|info| info.0.ip().to_string());
        let headers = request.headers_mut();
        strip_hop_by_hop(headers);
        if let Some(authority) = uri
            .authority()
            .and_then(|a| HeaderValue::try_from(a.as_str()).ok())
        {
            headers.insert(header::HOST, authority);
        }
        if let Some(host) = original_host {
            headers.insert("x-forwarded-host", host);
        }
        headers.insert("x-forwarded-proto", HeaderValue::from_static("http"));
        if let Some(ip) = client_ip.and_then(|ip| HeaderValue::try_from(ip).ok()) {
            headers.append("x-forwarded-for", ip);
        }
        *request.uri_mut() = uri;
        match self.client.request(request).await {
            Ok(response) => {
                let mut response = response.map(Body::new);
                strip_hop_by_hop(response.headers_mut());
                response
            }
            Err(error) => HttpError::status(
                StatusCode::BAD_GATEWAY,
                format!("the proxy target `{target}` did not answer: {error}"),
            )
            .into_response(),
        }
    }
}
