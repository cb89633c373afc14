//! A stand-in for the app's process in the dev server's tests: an axum server on a
//! loopback port of its own, and one request at a time to the held port.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::proxy::Backend;

/// Serves `router` on a loopback port of its own.
pub(super) async fn serve(router: axum::Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let addr = listener.local_addr().expect("its address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

/// An app process's stand-in: a page, a page without `</body>`, JSON, and `POST /upload`,
/// which answers the length of the body it read.
pub(super) async fn app(name: &'static str) -> Backend {
    let router = axum::Router::new()
        .route(
            "/",
            axum::routing::get(move || async move {
                axum::response::Html(format!("<html><BODY><p>{name}</p></BODY></html>"))
            }),
        )
        .route(
            "/bare",
            axum::routing::get(|| async { axum::response::Html("<p>bare</p>") }),
        )
        .route(
            "/data",
            axum::routing::get(|| async { axum::Json(serde_json::json!({ "body": "</body>" })) }),
        )
        .route("/upload", axum::routing::post(length));
    Backend {
        addr: serve(router).await,
        in_flight: Arc::new(AtomicUsize::new(0)),
    }
}

/// The length of a body, read as it comes.
async fn length(body: axum::body::Body) -> String {
    let mut chunks = body.into_data_stream();
    let mut read = 0;
    while let Some(chunk) = chunks.next().await {
        read += chunk.map_or(0, |chunk| chunk.len());
    }
    read.to_string()
}

/// One GET on a new connection: the head and the body.
pub(super) async fn get(addr: SocketAddr, path: &str, accept: &str) -> (String, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let head =
        format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\naccept: {accept}\r\nconnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await.expect("send");
    answer(stream).await
}

/// One `POST` of `length` zero bytes on a new connection, its length given, or in chunks
/// of 1 MiB without it when `chunked`: the head and the body of the answer. The body is
/// sent beside the read, so that an answer given before the body was taken is read too.
pub(super) async fn post(addr: SocketAddr, path: &str, length: usize, chunked: bool) -> (String, String) {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (reading, mut writing) = stream.into_split();
    let framing = if chunked {
        "transfer-encoding: chunked".to_owned()
    } else {
        format!("content-length: {length}")
    };
    let head = format!("POST {path} HTTP/1.1\r\nhost: {addr}\r\n{framing}\r\nconnection: close\r\n\r\n");
    writing.write_all(head.as_bytes()).await.expect("send");
    let sending = tokio::spawn(async move {
        let chunk = vec![0u8; 1 << 20];
        let mut left = length;
        while left > 0 {
            let part = left.min(chunk.len());
            let mut frame = Vec::with_capacity(part + 16);
            if chunked {
                frame.extend_from_slice(format!("{part:x}\r\n").as_bytes());
            }
            frame.extend_from_slice(&chunk[..part]);
            if chunked {
                frame.extend_from_slice(b"\r\n");
            }
            // A server that answered without the body may close before it is all sent.
            if writing.write_all(&frame).await.is_err() {
                return;
            }
            left -= part;
        }
        if chunked && writing.write_all(b"0\r\n\r\n").await.is_err() {
            return;
        }
        // Held open until the answer is read: a closed write side ends the request.
        std::future::pending::<()>().await;
    });
    let answer = answer(reading).await;
    sending.abort();
    answer
}

/// The answer on `stream`, once the server closes it: its head and its body.
async fn answer(mut stream: impl tokio::io::AsyncRead + Unpin) -> (String, String) {
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(60), stream.read_to_string(&mut answer))
        .await
        .expect("an answer in time")
        .expect("read");
    let (head, body) = answer.split_once("\r\n\r\n").expect("a head");
    (head.to_owned(), body.to_owned())
}
