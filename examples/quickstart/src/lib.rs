//! The taskyard demo app.
//!
//! `cargo run -p quickstart` serves on http://127.0.0.1:3000 (`PORT` overrides) with run
//! history in `./.taskyard/taskyard.db` (`TASKYARD_DATA_DIR` overrides;
//! `TASKYARD_DATABASE_URL=postgres://…` switches to PostgreSQL). Its tasks are the files
//! under `src/tasks/`, its schedules `src/schedule/` and `taskyard.toml`. Try, in a second
//! terminal:
//!
//! ```text
//! taskyard task list                                  # cargo run -p taskyard-cli -- task list
//! taskyard task run demo:slow --payload '{"ms":3000}'  # a progress bar, then the result
//! taskyard task run demo:fail                         # the error, exit code 1
//! taskyard task runs --task demo:slow
//! taskyard schedule list
//! curl 'localhost:3000/_nitro/tasks/echo:payload?field=value&array=1&array=2'
//! curl -X POST localhost:3000/_tasks/echo:payload/runs -H 'content-type: application/json' -d '{"payload":{"hello":"world"}}'
//! curl -N 'localhost:3000/_tasks/events'              # live run events
//! ```
//!
//! Server routes (`src/routes/`, `src/api/`, `src/middleware/`, `[route_rules]` in
//! `taskyard.toml`; open http://127.0.0.1:3000/ for the list):
//!
//! ```text
//! curl localhost:3000/hello/nitro                     # Hello nitro!
//! curl localhost:3000/hello/nitro/is/hot              # the catch-all
//! curl localhost:3000/api/users/1                     # JSON; see /_openapi.json
//! curl -X POST localhost:3000/api/test -d '{"name":"Ada"}'
//! curl -X POST localhost:3000/api/migrate -d '{"dry_run":true}'   # runs db:migrate
//! curl -H 'Authorization: Bearer demo' localhost:3000/api/admin/stats
//! curl -i localhost:3000/old-hello/taskyard           # 307 to /hello/taskyard
//! curl localhost:3000/proxy/users/2                   # served by /api/users/2
//! curl -i localhost:3000/api/time                     # cached 5 s, then refreshed
//! ```
//!
//! Lifecycle (`src/lifecycle.rs`): the `prepare` task runs before the server listens;
//! `feature-watch` re-runs, after its cleanup, each time the flag changes; `warm-hello` runs
//! on the first request under `/hello/`; `feature-report` is a resource derived from the flag:
//!
//! ```text
//! curl localhost:3000/hello/nitro                                # starts warm-hello
//! curl -X POST localhost:3000/api/feature -d '{"enabled":true}'   # feature-watch re-runs
//! curl localhost:3000/api/feature
//! curl localhost:3000/_tasks/lifecycle
//! ```
//!
//! Set `reports_paused = true` in `taskyard.toml` while the app runs: the `report` schedule
//! stops (`taskyard schedule list`), and resumes when it is set back.
//!
//! The command line finds the app through `.taskyard/dev.json`, which the app writes while
//! it serves.
//!
//! **Who may call the task endpoints** (`/_tasks/**`, `/_nitro/tasks/**`): in development
//! (`cargo run`, a debug build, or `TASKYARD_ENV=development`) only clients on this machine
//! (loopback); any other client gets `403 Forbidden IP`. In production (a release build, or
//! `TASKYARD_ENV=production`) they do not exist unless `TASKYARD_TASKS_TOKEN` is set, and then
//! every request needs `Authorization: Bearer $TASKYARD_TASKS_TOKEN` (the command line sends
//! it when that variable is set):
//!
//! ```text
//! TASKYARD_ENV=production TASKYARD_TASKS_TOKEN=change-me cargo run -p quickstart
//! curl -H 'Authorization: Bearer change-me' localhost:3000/_tasks
//! ```
//!
//! Ctrl-C stops it gracefully: running tasks get `TASKYARD_SHUTDOWN_GRACE_MS` (default
//! 10000) to finish, then are cancelled and recorded `cancelled`.
//!
//! When the store stops taking writes (a full disk, a database that went away), a caller
//! waits at most `TASKYARD_STORE_TIMEOUT_MS` (default 5000) and gets `503`; `GET
//! /_tasks/health` answers `503` with the store's error until it recovers by itself.

use std::time::Duration;

pub mod lifecycle;

taskyard::include_app!();

/// The demo app, with the shutdown grace period from `TASKYARD_SHUTDOWN_GRACE_MS` and
/// the store timeout from `TASKYARD_STORE_TIMEOUT_MS`.
pub fn demo() -> taskyard::App {
    let millis = |name: &str, default: Duration| {
        std::env::var(name)
            .ok()
            .and_then(|ms| ms.parse().ok())
            .map_or(default, Duration::from_millis)
    };
    app()
        .setup(lifecycle::setup)
        .shutdown_grace(millis("TASKYARD_SHUTDOWN_GRACE_MS", Duration::from_secs(10)))
        .store_timeout(millis("TASKYARD_STORE_TIMEOUT_MS", Duration::from_secs(5)))
}
