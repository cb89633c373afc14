//! Counts its calls; `?ms=N` makes a call take N ms. The headers it saw come back, so a
//! test can tell which reached it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use taskyard::route::Event;

static CALLS: AtomicU64 = AtomicU64::new(0);

pub async fn handler(event: Event) -> axum::Json<serde_json::Value> {
    let call = CALLS.fetch_add(1, Ordering::SeqCst) + 1;
    if let Some(ms) = event.query().get("ms").and_then(|v| v.as_str()?.parse().ok()) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let mut headers: Vec<&str> = event.headers().keys().map(|k| k.as_str()).collect();
    headers.sort();
    axum::Json(serde_json::json!({ "call": call, "headers": headers, "lang": event.header("accept-language") }))
}
