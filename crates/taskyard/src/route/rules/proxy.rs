//! The `proxy` rule: a request answered by another path of the app, or by another server.
//!
//! An internal target (`/api/**`) is served in-process by the app's middleware and routes,
//! with the path rewritten (the rules of the new path are not applied again). An
//! `http://` target is forwarded with hyper: the method, headers and body go out, minus
//! hop-by-hop headers and with `host` set to the target and `x-forwarded-*` added; the
//! answer comes back as it is. An unreachable target answers 502.

use axum::body::Body;
use axum::extract::Request;
use axum::http::uri::PathAndQuery;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::http::HttpError;

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
    pub(crate) async fn forward(&self, target: String, mut request: Request, next: Next) -> Response {
        if target.starts_with('/') {
            let Ok(path) = PathAndQuery::try_from(target.as_str()) else {
                return HttpError::bad_request(format!("the proxy target `{target}` is not a valid path"))
                    .into_response();
            };
            let mut parts = request.uri().clone().into_parts();
            parts.path_and_query = Some(path);
            if let Ok(uri) = Uri::from_parts(parts) {
                *request.uri_mut() = uri;
            }
            return next.run(request).await;
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
