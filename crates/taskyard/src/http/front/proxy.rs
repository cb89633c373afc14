//! The `proxy` rule: a request answered by another path of the app, or by another server.
//!
//! An internal target (`/api/**`) is served in-process by the whole app again, path
//! rewritten, so the rules and middleware of the new path apply (Nitro's local fetch); a
//! chain of more than 8 internal proxies is a loop and answers 508. An `http://` or
//! `https://` target is forwarded with hyper: the method, headers and body go out, minus
//! hop-by-hop headers and with `host` set to the target and `x-forwarded-*` added; the
//! answer comes back as it is. An unreachable target, or one whose certificate is not
//! trusted, answers 502 with the reason.
//!
//! An `https://` target's certificate is checked against Mozilla's roots (those Node
//! ships, so what Nitro's proxy trusts) and the system's store, read as OpenSSL reads it:
//! `SSL_CERT_FILE` and `SSL_CERT_DIR` name other files, which is how a private CA is
//! trusted. The roots are read when the first `https://` target is reached.

use axum::body::Body;
use axum::extract::Request;
use axum::http::uri::PathAndQuery;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use std::sync::{Arc, OnceLock};

use hyper_rustls::HttpsConnector;
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
    let external = to.starts_with("http://") || to.starts_with("https://");
    if external && to.replace("/**", "").parse::<Uri>().is_err() {
        return Err(format!("the target `{to}` is not a valid URL"));
    }
    Ok(())
}

/// The clients external targets are reached with; each keeps connections alive between
/// requests.
#[derive(Default)]
pub(crate) struct ProxyClient {
    /// For `http://` targets.
    plain: OnceLock<Client<HttpConnector, Body>>,
    /// For `https://` targets, made with the roots when the first one is reached.
    tls: OnceLock<Result<Client<HttpsConnector<HttpConnector>, Body>, String>>,
}

impl ProxyClient {
    fn plain(&self) -> &Client<HttpConnector, Body> {
        self.plain
            .get_or_init(|| Client::builder(TokioExecutor::new()).build_http())
    }

    /// The client for `https://` targets, or why TLS could not be set up.
    fn tls(&self) -> Result<&Client<HttpsConnector<HttpConnector>, Body>, &str> {
        self.tls
            .get_or_init(|| {
                let provider = Arc::new(rustls::crypto::ring::default_provider());
                let config = rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map_err(|error| format!("TLS could not be set up: {error}"))?
                    .with_root_certificates(trusted_roots())
                    .with_no_client_auth();
                let connector = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_tls_config(config)
                    .https_only()
                    .enable_http1()
                    .build();
                Ok(Client::builder(TokioExecutor::new()).build(connector))
            })
            .as_ref()
            .map_err(String::as_str)
    }
}

/// The roots an `https://` target's certificate may chain to: Mozilla's and the system's
/// (see the module docs). A certificate of the system's store that cannot be read is
/// logged and skipped.
fn trusted_roots() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let system = rustls_native_certs::load_native_certs();
    for error in &system.errors {
        tracing::warn!(%error, "the proxy could not read a certificate of the system's store; it is not trusted");
    }
    let (_, unparsable) = roots.add_parsable_certificates(system.certs);
    if unparsable > 0 {
        tracing::warn!(
            unparsable,
            "the proxy skipped certificates of the system's store that are not valid"
        );
    }
    roots
}

/// Whether `error` comes from a target's certificate that TLS refused: rustls's error, as
/// a source or inside I/O errors (the connector wraps the TLS stream's I/O error in one of
/// its own).
fn certificate_refused(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(error) = next {
        let mut inner: &(dyn std::error::Error + 'static) = error;
        while let Some(wrapped) = inner.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            inner = wrapped;
        }
        if matches!(
            inner.downcast_ref::<rustls::Error>(),
            Some(rustls::Error::InvalidCertificate(_))
        ) {
            return true;
        }
        next = error.source();
    }
    false
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
        let tls = uri.scheme() == Some(&axum::http::uri::Scheme::HTTPS);
        *request.uri_mut() = uri;
        let answer = if tls {
            match self.tls() {
                Ok(client) => client.request(request).await,
                Err(reason) => {
                    return HttpError::status(
                        StatusCode::BAD_GATEWAY,
                        format!("the proxy target `{target}` was not reached: {reason}"),
                    )
                    .into_response();
                }
            }
        } else {
            self.plain().request(request).await
        };
        match answer {
            Ok(response) => {
                let mut response = response.map(Body::new);
                strip_hop_by_hop(response.headers_mut());
                response
            }
            // hyper's own message is only its kind ("client error (Connect)"): the reason,
            // a refused connection or a certificate not trusted, is in its sources.
            Err(error) => {
                let hint = if certificate_refused(&error) {
                    "; to trust the CA that signed it, add it to the system's certificates or name a PEM file of it in SSL_CERT_FILE"
                } else {
                    ""
                };
                HttpError::status(
                    StatusCode::BAD_GATEWAY,
                    format!(
                        "the proxy target `{target}` did not answer: {}{hint}",
                        crate::http::error::causes(&error).join(": ")
                    ),
                )
                .into_response()
            }
        }
    }
}
