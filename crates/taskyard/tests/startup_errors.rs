//! What an app that cannot start tells its developer: `fn main() -> taskyard::Result<()>`
//! prints the returned error with `Debug`, so that must read as the documented sentence.

use taskyard::{App, Error, TaskError};

#[tokio::test]
async fn a_failed_startup_task_prints_as_a_sentence_from_main() {
    let app = App::new().setup(|cx| {
        cx.use_task("prepare", |_t| async {
            Err::<(), _>(TaskError::new("the cache folder is missing"))
        });
    });
    let Err(error) = app.start().await else {
        panic!("the app started");
    };
    assert!(matches!(error, Error::Lifecycle { .. }), "{error}");
    // What the standard library's `main` prints for an `Err`.
    assert_eq!(
        format!("Error: {error:?}"),
        "Error: Lifecycle task `prepare` failed, so the app did not start: the cache folder is missing"
    );
}

#[tokio::test]
async fn a_schedule_without_a_type_says_which_types_there_are() {
    let app = App::new().config_toml(
        "taskyard.toml",
        "[schedules.nightly]\ncron = \"0 3 * * *\"\ntask = \"db:backup\"\n",
    );
    let Err(error) = app.start().await else {
        panic!("the app started");
    };
    let text = format!("{error:?}");
    assert!(text.contains("`nightly`"), "{text}");
    assert!(text.contains("has no `type`"), "{text}");
    assert!(text.contains("type = \"worker\""), "{text}");
}

/// An app that installs no subscriber of its own, as the README's `main` is: what it
/// prints after "listening" when a task fails and when it stops.
#[test]
fn an_app_without_a_subscriber_of_its_own_still_logs_failures_and_shutdown() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    let data = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args(["serving_child", "--exact", "--ignored", "--nocapture"])
        .env("TASKYARD_STARTUP_CHILD", "1")
        .env("TASKYARD_DATA_DIR", data.path())
        .env("PORT", "0")
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .spawn()
        .expect("child starts");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    let mut until = |wanted: &dyn Fn(&str) -> bool| loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|error| panic!("the child stopped talking ({error}); it said {seen:?}"));
        seen.push(line.clone());
        if wanted(&line) {
            return line;
        }
    };
    let listening = until(&|line| line.starts_with("taskyard listening on http://"));
    let addr = listening
        .trim_start_matches("taskyard listening on http://")
        .to_owned();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let status = agent
        .post(&format!("http://{addr}/_tasks/boom/runs"))
        .header("content-type", "application/json")
        .send("{}")
        .expect("answered")
        .status();
    assert_eq!(status.as_u16(), 500);
    let failure = until(&|line| line.contains("run did not succeed"));
    assert!(
        failure.contains("WARN") && failure.contains("the disk is on fire"),
        "{failure}"
    );
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let stopping = until(&|line| line.contains("shutting down"));
    assert!(stopping.contains("INFO"), "{stopping}");
    let exit = child.wait().expect("exits");
    assert!(exit.success(), "{exit:?}");
    let listening_lines = seen.iter().filter(|line| line.contains("listening")).count();
    assert_eq!(listening_lines, 1, "one listening line: {seen:?}");
}

/// The app of the test above, run as a child process; it stops on SIGTERM.
#[tokio::test]
#[ignore = "run as a child process by the test above"]
async fn serving_child() {
    if std::env::var("TASKYARD_STARTUP_CHILD").is_err() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let app = App::new()
        .task(
            "boom",
            taskyard::Task::new(|_cx: taskyard::TaskContext| async {
                Err::<(), _>(TaskError::new("the disk is on fire"))
            }),
        )
        .store(taskyard::StoreConfig::Sqlite(dir.path().join("taskyard.db")))
        .schedule_log(None)
        .shutdown_grace(std::time::Duration::from_millis(200));
    app.serve().await.expect("serves");
}
