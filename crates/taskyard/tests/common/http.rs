//! A served app over real HTTP on loopback, and blocking requests to it.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::connect_info::MockConnectInfo;
use serde_json::Value;
use taskyard::{App, RunningApp, StoreConfig};
use tokio_util::sync::CancellationToken;

/// A served app: its address, and a way to stop it.
pub struct Served {
    pub base: String,
    stop: CancellationToken,
    done: tokio::task::JoinHandle<()>,
}

impl Served {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn stop(self) {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.done)
            .await
            .expect("the app stops in time")
            .expect("server task");
    }
}

/// Serves `app` on a free loopback port. With `peer`, the app sees every client as that
/// address (the traffic itself stays on loopback).
pub async fn serve(app: App, peer: Option<SocketAddr>) -> Served {
    serve_on_store(app, peer, StoreConfig::Memory).await
}

/// [`serve`] with history in `store`.
pub async fn serve_on_store(app: App, peer: Option<SocketAddr>, store: StoreConfig) -> Served {
    let running: RunningApp = app
        .store(store)
        .shutdown_grace(Duration::from_millis(300))
        .start()
        .await
        .expect("app starts");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let stop = CancellationToken::new();
    let router = running.router();
    let server_stop = stop.clone();
    let done = tokio::spawn(async move {
        let shutdown = server_stop.clone().cancelled_owned();
        let served = match peer {
            Some(peer) => {
                axum::serve(listener, router.layer(MockConnectInfo(peer)).into_make_service())
                    .with_graceful_shutdown(shutdown)
                    .into_future()
                    .await
            }
            None => {
                axum::serve(
                    listener,
                    router.into_make_service_with_connect_info::<SocketAddr>(),
                )
                .with_graceful_shutdown(shutdown)
                .into_future()
                .await
            }
        };
        served.expect("serves");
        running.shutdown().await;
    });
    Served { base, stop, done }
}

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

/// One request; blocking I/O on a blocking thread so the server keeps both workers.
pub async fn call(method: &str, url: String, body: Option<&str>, headers: &[(&str, &str)]) -> Reply {
    send(
        method,
        url,
        body.map(|body| ("application/json", body)),
        headers,
        true,
    )
    .await
}

/// [`call`] with a body of any content type (`(type, body)`), following redirects or not.
pub async fn send(
    method: &str,
    url: String,
    body: Option<(&str, &str)>,
    headers: &[(&str, &str)],
    follow_redirects: bool,
) -> Reply {
    let method = method.to_owned();
    let body = body.map(|(kind, body)| (kind.to_owned(), body.to_owned()));
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(20)));
        if !follow_redirects {
            config = config.max_redirects(0);
        }
        let agent: ureq::Agent = config.build().into();
        let mut request = ureq::http::Request::builder().method(method.as_str()).uri(&url);
        for (key, value) in &headers {
            request = request.header(key, value);
        }
        let response = match body {
            Some((kind, body)) => {
                agent.run(request.header("content-type", kind).body(body).expect("request"))
            }
            None => agent.run(request.body(()).expect("request")),
        };
        let mut response = response.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let text = response
            .body_mut()
            .with_config()
            .limit(16 << 20)
            .read_to_string()
            .expect("body");
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
    call("GET", served.url(path), None, &[]).await
}

pub async fn post(served: &Served, path: &str, body: &str) -> Reply {
    call("POST", served.url(path), Some(body), &[]).await
}

/// Checks the one error shape and returns the body.
pub fn assert_error(reply: &Reply, status: u16, reason: &str, url: &str) -> Value {
    assert_eq!(reply.status, status, "{}", reply.text);
    let body = reply.json();
    assert_eq!(body["error"], true, "{body}");
    assert_eq!(body["statusCode"], status, "{body}");
    assert_eq!(body["statusMessage"], reason, "{body}");
    assert_eq!(body["url"], url, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    assert!(body.get("data").is_some(), "{body}");
    assert!(
        reply
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/json")),
        "{:?}",
        reply.headers
    );
    body
}
