//! Counts its calls, for the stale-while-revalidate rule.

use std::sync::atomic::{AtomicU64, Ordering};

static CALLS: AtomicU64 = AtomicU64::new(0);

pub async fn handler() -> String {
    (CALLS.fetch_add(1, Ordering::SeqCst) + 1).to_string()
}
