//! # taskyard-build
//!
//! Turns the files of a taskyard app into code, at build time. Add it as a build
//! dependency and give the app a one-line `build.rs`:
//!
//! ```text
//! // build.rs
//! fn main() {
//!     taskyard_build::generate();
//! }
//! ```
//!
//! then `taskyard::include_app!();` in `src/main.rs` brings in `fn app() -> taskyard::App`
//! with every task under `src/tasks/` registered. New and removed files are picked up by
//! the next `cargo build`.
//!
//! ## Naming
//!
//! A file's task name is its path below `src/tasks/` without `.rs`, folders joined with
//! `:`; a file named `index.rs` names its folder:
//!
//! | file | task |
//! |---|---|
//! | `src/tasks/cleanup.rs` | `cleanup` |
//! | `src/tasks/db/migrate.rs` | `db:migrate` |
//! | `src/tasks/db/index.rs` | `db` |
//! | `src/tasks/a/b/c.rs` | `a:b:c` |
//!
//! Each task file defines `pub fn task() -> taskyard::Task`.
//!
//! ## Schedules
//!
//! Each file under `src/schedule/` defines one schedule, named by the same rules
//! (`src/schedule/cleandb.rs` → `cleandb`), with `pub fn schedule() -> taskyard::Schedule`.
//! A `taskyard.toml` beside `Cargo.toml` is embedded too: its `[scheduled_tasks]` and
//! `[schedules.NAME]` tables are read when the app starts.
//!
//! ## Server routes and middleware
//!
//! Files under `src/routes/` (at `/`) and `src/api/` (at `/api`) become routes, named by
//! Nitro's rules ([`route_from_file`]); each defines `pub async fn handler(..)`, any axum
//! handler, and may declare `taskyard::route_meta!({ "openapi": { .. } })`. Files under
//! `src/middleware/` run for every request in the order of [`middleware_order`]; each
//! defines `pub async fn middleware(request, next)`, an axum `from_fn` middleware. Two route
//! files that declare the same route, or a file whose name cannot be a route, stop the
//! build with the files named.

#![warn(missing_docs)]

mod definition;
mod error;
mod middleware;
mod render;
mod route;
mod scan;

pub use definition::check_definitions;
pub use error::BuildError;
pub use middleware::{MiddlewareFile, middleware_order, scan_middleware};
pub use render::render_app;
pub use route::{
    METHODS, RouteConflict, RouteEnv, RouteFile, RouteSource, RouteSpec, route_conflicts, route_from_file,
    scan_routes,
};
pub use scan::{ScanError, TaskFile, scan_schedules, scan_tasks, task_name};

use std::path::{Path, PathBuf};

/// Tells cargo what to re-run the build script for: the source folders that exist, and
/// `taskyard.toml` if it exists. A path that does not exist would leave the build stale
/// forever (cargo re-runs the script on every build), so while a folder is missing, `src`
/// as a whole is watched instead: creating the folder (or a file in it) is noticed.
fn watch(src: &Path, config: &Path) {
    let mut missing = false;
    for folder in ["tasks", "schedule", "routes", "api", "middleware"] {
        let folder = src.join(folder);
        if folder.is_dir() {
            println!("cargo:rerun-if-changed={}", folder.display());
        } else {
            missing = true;
        }
    }
    if missing && src.is_dir() {
        println!("cargo:rerun-if-changed={}", src.display());
    }
    if config.is_file() {
        println!("cargo:rerun-if-changed={}", config.display());
    }
}

/// Generates `$OUT_DIR/taskyard_app.rs` for the crate being built. Call it from `build.rs`.
///
/// # Panics
///
/// When run outside a build script (no `CARGO_MANIFEST_DIR` or `OUT_DIR`), when the
/// source folders cannot be read, or when route files clash or are misnamed; the panic
/// message is shown as the build error.
pub fn generate() {
    let manifest_dir = env_path("CARGO_MANIFEST_DIR");
    let out_dir = env_path("OUT_DIR");
    let src = manifest_dir.join("src");
    let config = manifest_dir.join("taskyard.toml");
    watch(&src, &config);
    let app = match read_sources(&manifest_dir) {
        Ok(app) => app,
        Err(error) => panic!("taskyard-build: {error}"),
    };
    for (a, b) in duplicates(&app.schedules) {
        println!(
            "cargo:warning=schedule `{}` is defined by both {} and {}; the app will refuse to start until one is renamed",
            a.name,
            a.display_path(),
            b.display_path()
        );
    }
    for (a, b) in duplicates(&app.tasks) {
        println!(
            "cargo:warning=task `{}` is defined by both {} and {}; the app will refuse to start until one is renamed",
            a.name,
            a.display_path(),
            b.display_path()
        );
    }
    let missing = check_definitions(&manifest_dir, &app);
    if !missing.is_empty() {
        panic!(
            "taskyard-build: these files do not define what the app calls:\n  {}",
            missing.join("\n  ")
        );
    }
    // A clash in this build's profile stops it; one in the other profile is a warning.
    let debug = std::env::var_os("CARGO_CFG_DEBUG_ASSERTIONS").is_some();
    let files: Vec<RouteFile> = app.routes.iter().map(|r| r.route.clone()).collect();
    let clashes = route_conflicts(&files, debug);
    if !clashes.is_empty() {
        let list: Vec<String> = clashes.iter().map(ToString::to_string).collect();
        panic!("taskyard-build: route files clash:\n  {}", list.join("\n  "));
    }
    for clash in route_conflicts(&files, !debug) {
        let profile = if debug { "release" } else { "debug" };
        println!("cargo:warning=in a {profile} build, {clash}");
    }
    let code = render_app(&manifest_dir, &app);
    let target = out_dir.join("taskyard_app.rs");
    if let Err(error) = std::fs::write(&target, code) {
        panic!("taskyard-build: cannot write {}: {error}", target.display());
    }
}

/// Everything the crate at `manifest_dir` defines in its source folders.
pub fn read_sources(manifest_dir: &Path) -> Result<AppSources, BuildError> {
    let src = manifest_dir.join("src");
    let config = manifest_dir.join("taskyard.toml");
    Ok(AppSources {
        tasks: scan_tasks(&src.join("tasks"))?,
        schedules: scan_schedules(&src.join("schedule"))?,
        routes: scan_routes(manifest_dir).map_err(BuildError::Routes)?,
        middleware: scan_middleware(manifest_dir).map_err(BuildError::Middleware)?,
        config: config.is_file().then_some(config),
    })
}

fn env_path(name: &str) -> PathBuf {
    match std::env::var_os(name) {
        Some(value) => PathBuf::from(value),
        None => panic!("taskyard-build: `{name}` is not set; call taskyard_build::generate() from build.rs"),
    }
}

/// Pairs of files that map to the same task name.
pub fn duplicates(files: &[TaskFile]) -> Vec<(&TaskFile, &TaskFile)> {
    let mut pairs = Vec::new();
    for (i, a) in files.iter().enumerate() {
        for b in &files[i + 1..] {
            if a.name == b.name {
                pairs.push((a, b));
            }
        }
    }
    pairs
}

/// What an app's folder defines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppSources {
    /// The task files under `src/tasks/`.
    pub tasks: Vec<TaskFile>,
    /// The schedule files under `src/schedule/`.
    pub schedules: Vec<TaskFile>,
    /// The route files under `src/routes/` and `src/api/`.
    pub routes: Vec<RouteSource>,
    /// In the order they run.
    pub middleware: Vec<MiddlewareFile>,
    /// The app's `taskyard.toml`, when it has one.
    pub config: Option<PathBuf>,
}
