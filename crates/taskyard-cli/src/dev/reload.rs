//! Pages that reload themselves after a swap: every HTML page the app serves through the
//! held port gets a small script that listens to `GET /_taskyard/dev/events` and reloads
//! the page once the version it came from is no longer the one serving (a new process
//! swapped in, or a build failed and its errors are to be shown), its scroll position and
//! form fields kept (in the tab's `sessionStorage`) for the page that comes next. The
//! script is a file of the held port's own (`GET /_taskyard/dev/reload.js`, `reload.js`
//! beside this file), not inline, so that a page whose Content-Security-Policy allows only
//! its own origin's scripts (the dashboard's) runs it.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt};
use tokio::sync::watch;

use super::page::escape;
use super::proxy::{Status, content_length};

/// The path of the events stream.
pub const EVENTS: &str = "/_taskyard/dev/events";

/// The path of the script.
pub const SCRIPT: &str = "/_taskyard/dev/reload.js";

/// The script: it reloads the page when a version other than its tag's serves, keeping
/// the page's scroll position and form fields across the reload. (An `EventSource`
/// connects again by itself when the dev server restarts, and is told the version then.)
const RELOAD_JS: &str = include_str!("reload.js");

/// `GET /_taskyard/dev/reload.js`.
pub fn script_file() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        RELOAD_JS,
    )
        .into_response()
}

/// The largest page the script is added to; a larger one is passed on as it is.
const PAGE_LIMIT: usize = 16 << 20;

/// Which version serves pages: the address of the process answering (each swap starts a
/// process on a new port), and whether a failure's page is shown instead. `None` while no
/// process is ready: a page asked for then waits for the next one.
pub fn version(status: &Status) -> Option<String> {
    match (&status.ready, &status.failure) {
        (Some(backend), None) => Some(backend.addr.to_string()),
        (Some(backend), Some(_)) => Some(format!("{} failing", backend.addr)),
        (None, Some(_)) => Some("failing".to_owned()),
        (None, None) => None,
    }
}

/// `GET /_taskyard/dev/events`: the serving version now, and again each time it changes.
pub fn events(status: watch::Receiver<Status>) -> impl IntoResponse {
    let events = versions(status).filter_map(|version| async move {
        version.map(|version| Ok::<_, Infallible>(Event::default().event("version").data(version)))
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}

/// The serving version now, then after each change of the status (`None` while no process
/// is ready); ends when the dev server stops.
fn versions(status: watch::Receiver<Status>) -> impl Stream<Item = Option<String>> {
    futures_util::stream::unfold((status, true), |(mut status, first)| async move {
        if !first {
            status.changed().await.ok()?;
        }
        let version = version(&status.borrow_and_update());
        Some((version, (status, false)))
    })
}

/// The tag added to a page that `version` served.
fn script(version: &str) -> String {
    let version = escape(version);
    format!("<script src=\"{SCRIPT}\" data-version=\"{version}\"></script>")
}

/// Whether an answer is a page the script is added to: HTML, not compressed, and not said
/// to be over 16 MiB.
pub fn is_page(headers: &HeaderMap) -> bool {
    let html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.trim_start().to_ascii_lowercase().starts_with("text/html"));
    let small = content_length(headers).is_none_or(|length| length <= PAGE_LIMIT);
    html && small && !headers.contains_key(header::CONTENT_ENCODING)
}

/// The page with the script before its last `</body>` (or at its end). A page whose body
/// cannot be read whole (the app failed while sending it, or sent over 16 MiB without
/// saying so) becomes a `502` that says why.
pub async fn add_script(response: Response, version: &str) -> Response {
    let (mut parts, body) = response.into_parts();
    let page: Bytes = match axum::body::to_bytes(body, PAGE_LIMIT).await {
        Ok(page) => page,
        Err(error) => {
            let message = format!("taskyard dev: the page could not be read: {error}\n");
            return (axum::http::StatusCode::BAD_GATEWAY, message).into_response();
        }
    };
    let script = script(version);
    let at = find_last_body_end(&page).unwrap_or(page.len());
    let mut with = Vec::with_capacity(page.len() + script.len());
    with.extend_from_slice(&page[..at]);
    with.extend_from_slice(script.as_bytes());
    with.extend_from_slice(&page[at..]);
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(with))
}

/// Where the last `</body>` starts, in any case.
fn find_last_body_end(page: &[u8]) -> Option<usize> {
    const END: &[u8] = b"</body";
    page.windows(END.len())
        .rposition(|window| window.eq_ignore_ascii_case(END))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpStream;

    use super::*;
    use crate::dev::page::Failure;
    use crate::dev::proxy;
    use crate::dev::stand_in::{app, get, serve};

    /// The next `version` event's data on an open events stream.
    async fn next_version(lines: &mut BufReader<TcpStream>) -> String {
        let mut line = String::new();
        loop {
            line.clear();
            let read = tokio::time::timeout(Duration::from_secs(10), lines.read_line(&mut line))
                .await
                .expect("an event in time")
                .expect("read");
            assert!(read > 0, "the events stream ended");
            if let Some(data) = line.trim_end().strip_prefix("data: ") {
                return data.to_owned();
            }
        }
    }

    #[tokio::test]
    async fn pages_get_the_script_and_hear_of_each_new_version() {
        let (one, two) = (app("one").await, app("two").await);
        let (status, watched) = watch::channel(Status {
            ready: Some(one.clone()),
            failure: None,
        });
        let held = serve(proxy::router(watched)).await;

        // A page gets the script before its `</body>`, naming the version that served it.
        let (head, page) = get(held, "/", "text/html,*/*").await;
        let script = script(&one.addr.to_string());
        assert_eq!(
            page,
            format!("<html><BODY><p>one</p>{script}</BODY></html>"),
            "{head}"
        );
        let length = head.lines().find_map(|line| {
            line.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(str::to_owned)
        });
        assert_eq!(
            length,
            Some(page.len().to_string()),
            "the length follows the page: {head}"
        );
        let (_, bare) = get(held, "/bare", "text/html").await;
        assert_eq!(
            bare,
            format!("<p>bare</p>{script}"),
            "at the end without `</body>`"
        );
        // Anything else is passed on as it is.
        let (_, data) = get(held, "/data", "text/html").await;
        assert_eq!(data, r#"{"body":"</body>"}"#);
        let (_, fetched) = get(held, "/", "*/*").await;
        assert_eq!(
            fetched, "<html><BODY><p>one</p></BODY></html>",
            "not asked for as a page"
        );

        // The events: the version now, then each new one.
        let mut stream = TcpStream::connect(held).await.expect("connect");
        let head = format!("GET {EVENTS} HTTP/1.1\r\nhost: {held}\r\naccept: text/event-stream\r\n\r\n");
        stream.write_all(head.as_bytes()).await.expect("send");
        let mut events = BufReader::new(stream);
        assert_eq!(next_version(&mut events).await, one.addr.to_string());
        status.send_modify(|s| s.ready = Some(two.clone()));
        assert_eq!(next_version(&mut events).await, two.addr.to_string(), "a swap");
        status.send_modify(|s| {
            s.failure = Some(Arc::new(Failure::Crash("it stopped".into())));
        });
        assert_eq!(
            next_version(&mut events).await,
            format!("{} failing", two.addr),
            "a failure's page to show"
        );
        // No process ready: nothing is sent until one is.
        status.send_modify(|s| s.ready = None);
        status.send_modify(|s| {
            s.ready = Some(one.clone());
            s.failure = None;
        });
        assert_eq!(next_version(&mut events).await, one.addr.to_string());
        // The new page names the version that served it.
        let (_, page) = get(held, "/", "text/html").await;
        assert!(page.contains(&format!("data-version=\"{}\"", one.addr)), "{page}");
        // The script itself.
        let (head, js) = get(held, SCRIPT, "*/*").await;
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: text/javascript"),
            "{head}"
        );
        assert!(js.contains(EVENTS) && js.contains("dataset.version"), "{js}");
    }

    #[test]
    fn the_script_is_inert_text_and_goes_before_the_last_body_end() {
        assert_eq!(find_last_body_end(b"<body></body><p></BoDy >"), Some(16));
        assert_eq!(find_last_body_end(b"<p>no end</p>"), None);
        let script = script("\"></script><script>alert(1)</script>");
        assert!(!script.contains("<script>alert"), "{script}");
        assert_eq!(script.matches('"').count(), 4, "{script}");
    }
}
