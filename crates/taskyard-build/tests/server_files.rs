//! Route and middleware files on disk: scanning, ordering, the generated code, and a real
//! `cargo build` that a clash stops with both files named.

use std::path::Path;
use std::process::Command;

use taskyard_build::{middleware_order, read_sources, render_app, route_conflicts};

fn write(root: &Path, file: &str, text: &str) {
    let path = root.join(file);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

#[test]
fn numbered_middleware_sorts_by_number_then_by_name() {
    let mut names = vec![
        "log.rs",
        "10.cache.rs",
        "2.auth.rs",
        "1.id.rs",
        "auth.rs",
        "02.b.rs",
    ];
    names.sort_by(|a, b| middleware_order(a, b));
    assert_eq!(
        names,
        [
            "1.id.rs",
            "02.b.rs",
            "2.auth.rs",
            "10.cache.rs",
            "auth.rs",
            "log.rs"
        ]
    );
}

#[test]
fn route_and_middleware_files_are_found_and_generated_with_their_builds() {
    let root = tempfile::tempdir().expect("tempdir");
    let root = root.path();
    write(
        root,
        "src/routes/hello/[name].get.rs",
        "pub async fn handler() {}",
    );
    write(root, "src/routes/debug.get.dev.rs", "pub async fn handler() {}");
    write(root, "src/routes/report.prod.rs", "pub async fn handler() {}");
    write(root, "src/routes/notes.md", "not a route");
    write(
        root,
        "src/api/users/[id].get.rs",
        "taskyard::route_meta!({ \"openapi\": {} });\npub async fn handler() {}",
    );
    write(root, "src/middleware/10.log.rs", "");
    write(root, "src/middleware/2.auth.rs", "");
    let app = read_sources(root).expect("sources");
    let routes: Vec<(&str, &str, bool)> = app
        .routes
        .iter()
        .map(|r| (r.route.file.as_str(), r.route.spec.path.as_str(), r.has_meta))
        .collect();
    assert_eq!(
        routes,
        [
            ("src/api/users/[id].get.rs", "/api/users/{id}", true),
            ("src/routes/debug.get.dev.rs", "/debug", false),
            ("src/routes/hello/[name].get.rs", "/hello/{name}", false),
            ("src/routes/report.prod.rs", "/report", false),
        ]
    );
    let middleware: Vec<&str> = app.middleware.iter().map(|m| m.file.as_str()).collect();
    assert_eq!(
        middleware,
        ["src/middleware/2.auth.rs", "src/middleware/10.log.rs"]
    );

    let code = render_app(root, &app);
    let base = root.canonicalize().expect("root").display().to_string();
    assert!(
        code.contains(&format!("#[path = \"{base}/src/api/users/[id].get.rs\"]")),
        "{code}"
    );
    assert!(
        code.contains("path: \"/api/users/{id}\", method: Some(\"GET\"), params: &[\"id\"], meta: Some(__route_0_src_api_users_id_get_rs::route_meta)"),
        "{code}"
    );
    assert!(
        code.contains("MethodFilter::GET), __route_0_src_api_users_id_get_rs::handler)"),
        "{code}"
    );
    // `.dev` files exist in debug builds, `.prod` ones in release builds, module and call.
    assert!(
        code.contains(&format!(
            "#[cfg(debug_assertions)]\n#[path = \"{base}/src/routes/debug.get.dev.rs\"]"
        )),
        "{code}"
    );
    assert!(
        code.contains("#[cfg(not(debug_assertions))]\n    {\n        app = app.file_route("),
        "{code}"
    );
    assert!(
        code.contains("method_router(None, __route_3_src_routes_report_prod_rs::handler)"),
        "{code}"
    );
    let auth = code
        .find("from_fn(__middleware_0_src_middleware_2_auth_rs::middleware)")
        .expect("auth");
    let log = code
        .find("from_fn(__middleware_1_src_middleware_10_log_rs::middleware)")
        .expect("log");
    assert!(auth < log, "middleware out of order: {code}");
}

#[test]
fn parameters_named_differently_at_one_place_clash_even_on_different_paths() {
    let root = tempfile::tempdir().expect("tempdir");
    let root = root.path();
    write(root, "src/routes/users/[id].get.rs", "");
    write(root, "src/routes/users/[uid]/posts.get.rs", "");
    write(root, "src/routes/files/[name].get.rs", "");
    write(root, "src/routes/files/[...path].get.rs", "");
    let app = read_sources(root).expect("sources");
    let files: Vec<_> = app.routes.iter().map(|r| r.route.clone()).collect();
    let clashes: Vec<String> = route_conflicts(&files, true)
        .iter()
        .map(ToString::to_string)
        .collect();
    // A parameter beside a catch-all is fine (they go on separate routers).
    assert_eq!(clashes.len(), 1, "{clashes:?}");
    assert!(
        clashes[0].starts_with("src/routes/users/[id].get.rs and src/routes/users/[uid]/posts.get.rs name the parameter at the same place differently"),
        "{clashes:?}"
    );
}

/// A real build of a crate whose `build.rs` calls `generate()`: two files declaring one
/// route stop it, and the error names both.
#[test]
fn a_build_with_clashing_route_files_fails_naming_both() {
    let crate_dir = build_script_crate("clash");
    let root = crate_dir.path();
    write(root, "src/api/users.get.rs", "pub async fn handler() {}");
    write(root, "src/routes/api/users.get.rs", "pub async fn handler() {}");
    let (built, stderr) = cargo_build(root);
    assert!(!built, "the build passed: {stderr}");
    assert!(
        stderr.contains("src/api/users.get.rs and src/routes/api/users.get.rs both declare GET /api/users"),
        "{stderr}"
    );
}

#[test]
fn an_app_without_most_source_folders_builds_once_and_then_is_fresh() {
    let crate_dir = build_script_crate("fresh-app");
    let root = crate_dir.path();
    let build = || {
        let (built, stderr) = cargo_build(root);
        assert!(built, "{stderr}");
        stderr
    };
    build();
    let again = build();
    assert!(
        again.contains("Fresh fresh-app") && !again.contains("Compiling fresh-app"),
        "the second build did work: {again}"
    );
    // A source folder created later is noticed.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    write(root, "src/tasks/hello.rs", "pub fn task() {}");
    let after = build();
    assert!(
        after.contains("Compiling fresh-app"),
        "the new folder went unnoticed: {after}"
    );
    let settled = build();
    assert!(settled.contains("Fresh fresh-app"), "{settled}");
}

#[test]
fn a_build_with_a_misnamed_or_private_task_function_fails_naming_the_file_and_the_fix() {
    let crate_dir = build_script_crate("misnamed");
    let root = crate_dir.path();
    write(root, "src/tasks/tick.rs", "pub fn tick_task() {}\n");
    write(root, "src/tasks/greet/person.rs", "fn task() {}\n");
    write(
        root,
        "src/routes/hello.get.rs",
        "pub async fn handler() -> &'static str { \"hi\" }\n",
    );
    let (built, stderr) = cargo_build(root);
    assert!(!built, "the build passed: {stderr}");
    assert!(
        stderr.contains(
            "src/tasks/tick.rs: expected `pub fn task() -> Task`; found `tick_task`, rename it to `task`"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("src/tasks/greet/person.rs: `fn task` must be public for the app to call it: write `pub fn task() -> Task`"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("hello.get.rs"),
        "a good file is not named: {stderr}"
    );
    assert!(
        !stderr.contains("taskyard_app.rs"),
        "no word of generated code: {stderr}"
    );
}

/// A crate in a new folder whose `build.rs` calls `generate()` and whose `main` is empty,
/// named `name`; tests add its source files.
fn build_script_crate(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let build_crate = Path::new(env!("CARGO_MANIFEST_DIR"));
    write(
        dir.path(),
        "Cargo.toml",
        &format!(
            "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[workspace]\n\n[build-dependencies]\ntaskyard-build = {{ path = {:?} }}\n",
            build_crate.display().to_string()
        ),
    );
    write(
        dir.path(),
        "build.rs",
        "fn main() { taskyard_build::generate(); }",
    );
    write(dir.path(), "src/main.rs", "fn main() {}");
    dir
}

/// `cargo build -v` of the crate at `root`: whether it built, and what cargo printed. One
/// target folder for every such build, beside the workspace's, so the build crate is
/// compiled once.
fn cargo_build(root: &Path) -> (bool, String) {
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/build-script-tests");
    let output = Command::new(env!("CARGO"))
        .args(["build", "--offline", "-v"])
        .arg("--manifest-path")
        .arg(root.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .expect("cargo runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
