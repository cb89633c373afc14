//! schemathesis (PyPI) against the task API, from its own OpenAPI document: thousands of
//! generated requests, valid and not, to every operation; none may answer `500`, a status
//! the document does not list, or a body outside the documented shape.
//!
//! `scripts/setup-schemathesis.sh` installs it into `target/schemathesis`. Without it the
//! test is skipped loudly, unless `TASKYARD_REQUIRE_SCHEMATHESIS=1` (set by `.ci/run`).
//! The app's tasks all succeed: a task that fails answers `500` by design (Nitro's shape).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use taskyard::http::TasksAccess;
use taskyard::schedule::Schedule;
use taskyard::{App, Concurrency, StoreConfig, Task, TaskContext, TaskError};

/// The schemathesis command line, or `None` (with a notice) when it is not installed.
fn schemathesis() -> Option<PathBuf> {
    let installed = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/schemathesis/bin/st");
    if installed.exists() {
        return Some(installed);
    }
    if std::env::var("TASKYARD_REQUIRE_SCHEMATHESIS").as_deref() == Ok("1") {
        panic!(
            "TASKYARD_REQUIRE_SCHEMATHESIS=1 but {} is missing: run scripts/setup-schemathesis.sh",
            installed.display()
        );
    }
    eprintln!("\n*** SKIPPED the OpenAPI fuzz test: run scripts/setup-schemathesis.sh ***\n");
    None
}

#[derive(Deserialize, schemars::JsonSchema)]
struct Resize {
    width: u32,
    #[serde(default)]
    height: Option<u32>,
    format: Format,
    image: Image,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
enum Format {
    Png,
    Jpeg,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct Image {
    url: String,
}

fn app() -> App {
    App::new()
        .task(
            "echo:payload",
            Task::new(|_cx: TaskContext, payload: Value| async move { Ok::<_, TaskError>(payload) })
                .description("Returns the provided payload")
                .concurrency(Concurrency::Parallel(16)),
        )
        .task(
            "image:resize",
            Task::new(|_cx: TaskContext, resize: Resize| async move {
                let format = match resize.format {
                    Format::Png => "png",
                    Format::Jpeg => "jpeg",
                };
                Ok::<_, TaskError>(serde_json::json!({
                    "width": resize.width,
                    "height": resize.height,
                    "format": format,
                    "url": resize.image.url,
                }))
            })
            .description("Resizes an image"),
        )
        .task(
            "db:migrate",
            Task::new(|cx: TaskContext| async move {
                cx.progress(0.5, "halfway");
                Ok::<_, TaskError>("Success")
            })
            .description("Run database migrations"),
        )
        .schedule("hourly", Schedule::worker().cron("0 * * * *").task("db:migrate"))
        .tasks_access(TasksAccess::Loopback)
        .shutdown_grace(Duration::from_millis(300))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_undocumented_response() {
    let Some(st) = schemathesis() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let running = app()
        .store(StoreConfig::Sqlite(dir.path().join("taskyard.db")))
        .schedule_log(None)
        .start()
        .await
        .expect("starts");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let local = listener.local_addr().expect("addr");
    let stop = tokio_util::sync::CancellationToken::new();
    let signal = stop.clone().cancelled_owned();
    let served = tokio::spawn(async move { running.serve_on(listener, local, signal).await });
    let report = dir.path().join("report");
    let output = tokio::task::spawn_blocking({
        let report = report.clone();
        move || {
            Command::new(st)
                .args([
                    "run",
                    &format!("http://{local}/_tasks/openapi.json"),
                    "--checks",
                    "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
                    // The event stream never ends by itself; its shapes are tested in http_api.rs.
                    "--exclude-path",
                    "/_tasks/events",
                    "--max-time",
                    "40",
                    // One worker: Python 3.11's parser is not safe across the threads
                    // of several (it fails inside hypothesis, not in the app).
                    "--workers",
                    "1",
                    "--seed",
                    "20261130",
                    "--report-dir",
                ])
                .arg(&report)
                // Its caches (.hypothesis, .schemathesis) go there, not into the sources.
                .current_dir(report.parent().expect("report folder"))
                .env("NO_COLOR", "1")
                .output()
                .expect("schemathesis runs")
        }
    })
    .await
    .expect("schemathesis");
    stop.cancel();
    served.await.expect("server task").expect("serves");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: Vec<&str> = text.lines().rev().take(30).collect();
    eprintln!("{}", summary.into_iter().rev().collect::<Vec<_>>().join("\n"));
    assert!(output.status.success(), "schemathesis found failures:\n{text}");
}
