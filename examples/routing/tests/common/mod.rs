//! What the routing example's tests share: the example served on loopback, and one HTTP
//! request at a time through a blocking client.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use taskyard::{App, StoreConfig};
use tokio_util::sync::CancellationToken;

pub const RULES: &str = include_str!("../../taskyard.toml");

pub struct Served {
    pub base: String,
    stop: CancellationToken,
    done: tokio::task::JoinHandle<()>,
}

impl Served {
    pub async fn stop(self) {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.done)
            .await
            .expect("the app stops in time")
            .expect("server task");
    }
}

pub async fn serve(app: App) -> Served {
    let running = app.store(StoreConfig::Memory).start().await.expect("app starts");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let stop = CancellationToken::new();
    let router = running.router();
    let shutdown = stop.clone().cancelled_owned();
    let done = tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
        .expect("serves");
        running.shutdown().await;
    });
    Served { base, stop, done }
}

/// The example app with `extra` route rules after those of its `taskyard.toml`.
pub fn example(extra: &str) -> App {
    routing_example::routing_app().config_toml("taskyard.toml", &format!("{RULES}\n{extra}"))
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// One request, redirects not followed; blocking I/O on a blocking thread.
pub async fn call(method: &str, url: String, body: Option<&str>, headers: &[(&str, &str)]) -> Reply {
    let method = method.to_owned();
    let body = body.map(str::to_owned);
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(20)))
            .build()
            .into();
        let mut request = ureq::http::Request::builder().method(method.as_str()).uri(&url);
        for (key, value) in &headers {
            request = request.header(key, value);
        }
        let response = match body {
            Some(body) => agent.run(
                request
                    .header("content-type", "application/json")
                    .body(body)
                    .expect("request"),
            ),
            None => agent.run(request.body(()).expect("request")),
        };
        let mut response = response.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        Reply {
            status,
            headers,
            text,
        }
    })
    .await
    .expect("request thread")
}

pub async fn get(served: &Served, path: &str) -> Reply {
    call("GET", format!("{}{path}", served.base), None, &[]).await
}

/// A server's routes answering with what they received: the `host` and
/// `x-forwarded-host` headers, the path and the body, as JSON.
pub fn echo() -> axum::Router {
    axum::Router::new().fallback(|request: axum::extract::Request| async move {
        let (host, forwarded) = (header(&request, "host"), header(&request, "x-forwarded-host"));
        let path = request.uri().path().to_owned();
        let body = axum::body::to_bytes(request.into_body(), 1 << 20)
            .await
            .unwrap_or_default();
        axum::Json(serde_json::json!({
            "host": host, "forwarded_host": forwarded, "path": path,
            "body": String::from_utf8_lossy(&body),
        }))
    })
}

/// A request's header as text, empty when absent.
fn header(request: &axum::extract::Request, name: &str) -> String {
    let value = request.headers().get(name).and_then(|h| h.to_str().ok());
    value.unwrap_or("").to_owned()
}
