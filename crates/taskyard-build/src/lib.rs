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

mod definition;
mod middleware;
mod route;
mod scan;

pub use definition::check_definitions;
pub use middleware::{MiddlewareFile, middleware_order, scan_middleware};
pub use route::{
    METHODS, RouteConflict, RouteEnv, RouteFile, RouteSource, RouteSpec, route_conflicts, route_from_file,
    scan_routes,
};
pub use scan::{ScanError, TaskFile, scan_schedules, scan_tasks, task_name};

use std::fmt::Write as _;
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
pub fn read_sources(manifest_dir: &Path) -> Result<AppSources, String> {
    let src = manifest_dir.join("src");
    let config = manifest_dir.join("taskyard.toml");
    Ok(AppSources {
        tasks: scan_tasks(&src.join("tasks")).map_err(|e| e.to_string())?,
        schedules: scan_schedules(&src.join("schedule")).map_err(|e| e.to_string())?,
        routes: scan_routes(manifest_dir)?,
        middleware: scan_middleware(manifest_dir)?,
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
    pub tasks: Vec<TaskFile>,
    pub schedules: Vec<TaskFile>,
    pub routes: Vec<RouteSource>,
    /// In the order they run.
    pub middleware: Vec<MiddlewareFile>,
    /// The app's `taskyard.toml`, when it has one.
    pub config: Option<PathBuf>,
}

/// The generated source for the crate at `manifest_dir`: one module per file and `fn
/// app()` registering them and reading the embedded `taskyard.toml`. Modules name their
/// files by absolute paths, so the compiler's messages about a file read
/// `/…/my-app/src/tasks/greet.rs` rather than a walk up from `target/…/out`.
pub fn render_app(manifest_dir: &Path, app: &AppSources) -> String {
    let mut code = String::from(
        "// Generated by taskyard-build from src/tasks/, src/schedule/, src/routes/, src/api/,\n\
         // src/middleware/ and taskyard.toml. Do not edit.\n\n",
    );
    let base = manifest_dir
        .canonicalize()
        .unwrap_or_else(|_| manifest_dir.to_owned());
    let mut module = |kind: &str, index: usize, name: &str, path: &Path, cfg: Option<&str>| -> String {
        let module = module_name(kind, index, name);
        if let Some(cfg) = cfg {
            let _ = writeln!(code, "#[cfg({cfg})]");
        }
        let _ = writeln!(
            code,
            "#[path = {:?}]\n#[doc(hidden)]\nmod {module};",
            base.join(path).to_string_lossy().replace('\\', "/"),
        );
        module
    };
    let mut calls = Vec::new();
    for (index, file) in app.tasks.iter().enumerate() {
        let m = module("task", index, &file.name, &file.path, None);
        calls.push((
            None,
            format!(
                ".file_task({:?}, {:?}, {m}::task())",
                file.name,
                file.display_path()
            ),
        ));
    }
    for (index, file) in app.schedules.iter().enumerate() {
        let m = module("schedule", index, &file.name, &file.path, None);
        calls.push((
            None,
            format!(
                ".file_schedule({:?}, {:?}, {m}::schedule())",
                file.name,
                file.display_path()
            ),
        ));
    }
    for (index, file) in app.middleware.iter().enumerate() {
        let m = module("middleware", index, &file.file, &file.path, None);
        calls.push((
            None,
            format!(".middleware(::taskyard::__private::axum::middleware::from_fn({m}::middleware))"),
        ));
    }
    for (index, source) in app.routes.iter().enumerate() {
        let spec = &source.route.spec;
        let cfg = match spec.env {
            RouteEnv::Any => None,
            RouteEnv::Dev => Some("debug_assertions"),
            RouteEnv::Prod => Some("not(debug_assertions)"),
        };
        let m = module("route", index, &source.route.file, &source.path, cfg);
        let filter = match &spec.method {
            Some(method) => format!("Some(::taskyard::__private::axum::routing::MethodFilter::{method})"),
            None => "None".to_owned(),
        };
        let meta = match source.has_meta {
            true => format!("Some({m}::route_meta)"),
            false => "None".to_owned(),
        };
        calls.push((
            cfg,
            format!(
                ".file_route(::taskyard::route::FileRoute {{ file: {:?}, path: {:?}, method: {:?}, params: &{:?}, meta: {meta} }}, \
                 ::taskyard::route::method_router({filter}, {m}::handler))",
                source.route.file, spec.path, spec.method, spec.params,
            ),
        ));
    }
    code.push_str("\n/// The app with every file under `src/tasks/`, `src/schedule/`, `src/routes/`,\n");
    code.push_str("/// `src/api/` and `src/middleware/`.\n");
    code.push_str("#[allow(dead_code, unused_mut)]\nfn app() -> ::taskyard::App {\n");
    code.push_str("    let mut app = ::taskyard::App::new()\n        .package(env!(\"CARGO_PKG_NAME\"), env!(\"CARGO_PKG_VERSION\"));\n");
    for (cfg, call) in &calls {
        match cfg {
            Some(cfg) => {
                let _ = writeln!(
                    code,
                    "    #[cfg({cfg})]\n    {{\n        app = app{call};\n    }}"
                );
            }
            None => {
                let _ = writeln!(code, "    app = app{call};");
            }
        }
    }
    if app.config.is_some() {
        // Paths from `CARGO_MANIFEST_DIR`, so the generated code names no folder of the
        // machine that built it.
        code.push_str(
            "    app = app.app_config(\n        \"taskyard.toml\",\n        include_str!(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/taskyard.toml\")),\n        concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/taskyard.toml\"),\n    );\n",
        );
    }
    code.push_str("    app\n}\n");
    code
}

fn module_name(kind: &str, index: usize, name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    // Runs of `_` collapse, so the name stays snake case.
    let mut name = String::new();
    for part in clean.split('_').filter(|p| !p.is_empty()) {
        name.push('_');
        name.push_str(part);
    }
    format!("__{kind}_{index}{name}")
}
