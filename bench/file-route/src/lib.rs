//! The app of the file-route benchmark: one file route, `src/routes/hello/[name].get.rs`,
//! and nothing else (no middleware, no route rules), so what the benchmark measures against
//! a hand-mounted axum route is what file routing adds: the front layer (route rules, error
//! rendering), the task endpoints beside the route, and the route's registration.

use axum::extract::Path;

taskyard::include_app!();

/// `Hello {name}!`
pub async fn hello(Path(name): Path<String>) -> String {
    format!("Hello {name}!")
}

/// The app, with every file under `src/`.
pub fn file_routed_app() -> taskyard::App {
    app()
}
