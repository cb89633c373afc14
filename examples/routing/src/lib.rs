//! Server routes from files, one of each kind: `cargo run -p routing-example` serves them on
//! http://127.0.0.1:3000 (`PORT` overrides).
//!
//! | file | route |
//! |---|---|
//! | `src/routes/index.get.rs` | `GET /` |
//! | `src/routes/hello/[name].get.rs` | `GET /hello/{name}` |
//! | `src/routes/hello/static.get.rs` | `GET /hello/static` (beats `[name]`) |
//! | `src/routes/hello/[...path].rs` | `/hello/**`, every method |
//! | `src/routes/orgs/[org]/repos/[repo].get.rs` | `GET /orgs/{org}/repos/{repo}` |
//! | `src/routes/(pages)/about.get.rs` | `GET /about` (groups leave no trace) |
//! | `src/routes/item.get.rs`, `item.post.rs` | `GET` and `POST /item`; others get 405 |
//! | `src/routes/build.get.dev.rs`, `build.get.prod.rs` | `GET /build`, one per build |
//! | `src/routes/trail.get.rs` | `GET /trail`: what the middleware left in the context |
//! | `src/routes/cached.get.rs`, `counter.get.rs` | count their calls, for the cache rules |
//! | `src/routes/page-error.get.rs` | `GET /page-error`: an error page (HTML for browsers) |
//! | `src/routes/[...].rs` | everything else |
//! | `src/api/users/[id].get.rs` | `GET /api/users/{id}`, with `route_meta!` |
//! | `src/api/echo.post.rs` | `POST /api/echo`: the JSON body, typed |
//! | `src/api/fail.get.rs` | `GET /api/fail`: an unhandled error |
//! | `src/api/teapot.get.rs` | `GET /api/teapot`: a chosen error with data |
//!
//! Middleware: `src/middleware/2.first.rs` then `src/middleware/10.second.rs` (numbers sort
//! as numbers); the second answers `/blocked` itself. The route rules are in
//! `taskyard.toml`.

taskyard::include_app!();

/// The example app: every file under `src/`, and `taskyard.toml`.
pub fn routing_app() -> taskyard::App {
    app()
}
