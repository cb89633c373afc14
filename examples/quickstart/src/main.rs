//! The taskyard demo app.
//!
//! `cargo run -p quickstart` serves on http://127.0.0.1:3000 (`PORT` overrides) with run
//! history in `./.taskyard/taskyard.db` (`TASKYARD_DATA_DIR` overrides;
//! `TASKYARD_DATABASE_URL=postgres://…` switches to PostgreSQL). Its tasks are the files
//! under `src/tasks/`. Try:
//!
//! ```text
//! curl -X POST localhost:3000/_tasks/echo:payload/runs -H 'content-type: application/json' -d '{"payload":{"hello":"world"}}'
//! curl -X POST 'localhost:3000/_tasks/demo:slow/runs?wait=false' -H 'content-type: application/json' -d '{"payload":{"ms":5000}}'
//! curl localhost:3000/_tasks/runs/<run_id>
//! ```
//!
//! Ctrl-C stops it gracefully: running tasks get `TASKYARD_SHUTDOWN_GRACE_MS` (default
//! 10000) to finish, then are cancelled and recorded `cancelled`.

use std::time::Duration;

taskyard::include_app!();

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let grace = std::env::var("TASKYARD_SHUTDOWN_GRACE_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map(Duration::from_millis)
        .unwrap_or(Duration::from_secs(10));
    if let Err(error) = app().shutdown_grace(grace).serve().await {
        eprintln!("quickstart: {error}");
        std::process::exit(1);
    }
}
