//! `GET /api/time`: cached by the `swr` rule in `taskyard.toml`: served from memory for 5 s,
//! then served stale while one call refreshes it. `calls` counts the handler's calls.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

static CALLS: AtomicU64 = AtomicU64::new(0);

pub async fn handler() -> axum::Json<Value> {
    let calls = CALLS.fetch_add(1, Ordering::Relaxed) + 1;
    axum::Json(json!({ "time": jiff_now(), "calls": calls }))
}

fn jiff_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}.{:03}", now.as_secs(), now.subsec_millis())
}
