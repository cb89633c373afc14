//! The `taskyard` command line end to end against a running quickstart app: the app is
//! this test binary re-run as a child process (`quickstart_child`, ignored in normal runs)
//! serving the real quickstart over loopback; the command line is the real binary, finding
//! the app through the `.taskyard/dev.json` the app writes.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The quickstart app in a child process, with its state in a folder of its own.
struct App {
    child: Child,
    dir: tempfile::TempDir,
    url: String,
}

impl App {
    fn start() -> App {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join(".taskyard");
        App::start_with(dir, &data)
    }

    /// The app in the folder `dir` (kept, and removed when dropped), with its state in
    /// `data`, which another app may share.
    fn start_with(dir: tempfile::TempDir, data: &Path) -> App {
        let mut child = Command::new(std::env::current_exe().expect("test binary"))
            .args(["quickstart_child", "--exact", "--ignored", "--nocapture"])
            .env("PORT", "0")
            .env("TASKYARD_DATA_DIR", data)
            .env("TASKYARD_ENV", "development")
            .env("TASKYARD_SHUTDOWN_GRACE_MS", "200")
            .env_remove("TASKYARD_DATABASE_URL")
            .env_remove("TASKYARD_TASKS_TOKEN")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .expect("the app starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
        let url = lines
            .find_map(|line| line.strip_prefix("taskyard listening on ").map(str::to_owned))
            .expect("the app reports its address");
        std::thread::spawn(move || lines.for_each(drop));
        App { child, dir, url }
    }

    /// Runs `taskyard ARGS` from the app's folder, with no URL given: it finds the app
    /// through `.taskyard/dev.json`.
    fn cli(&self, args: &[&str]) -> Output {
        taskyard_in(self.dir.path(), args)
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn taskyard_in(dir: &Path, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_taskyard"));
    command
        .args(args)
        .current_dir(dir)
        .env_remove("TASKYARD_URL")
        .env_remove("TASKYARD_DATA_DIR")
        .env_remove("TASKYARD_TASKS_TOKEN");
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("taskyard runs");
    wait_bounded(child, Duration::from_secs(60))
}

fn wait_bounded(mut child: Child, limit: Duration) -> Output {
    let began = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if began.elapsed() > limit {
            let _ = child.kill();
            panic!("taskyard took longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", stdout(output), stderr(output)))
}

#[test]
fn the_command_line_lists_runs_and_cancels_tasks_of_a_running_app() {
    let app = App::start();
    let dev_info: Value = serde_json::from_str(
        &std::fs::read_to_string(app.dir.path().join(".taskyard/dev.json")).expect("dev.json"),
    )
    .expect("dev.json is JSON");
    let entry = &dev_info["instances"][0];
    assert_eq!(entry["url"], app.url.as_str());
    assert_eq!(entry["pid"], app.child.id());

    // task list, as a table and as JSON.
    let list = app.cli(&["task", "list"]);
    assert!(list.status.success(), "{}", stderr(&list));
    let table = stdout(&list);
    assert!(table.starts_with("TASK"), "{table}");
    assert!(
        table
            .lines()
            .any(|line| line.starts_with("db:migrate") && line.contains("Run database migrations")),
        "{table}"
    );
    let names: Vec<String> = json(&app.cli(&["task", "list", "--json"]))
        .as_array()
        .expect("array")
        .iter()
        .map(|task| task["name"].as_str().expect("name").to_owned())
        .collect();
    assert!(
        names.iter().any(|n| n == "demo:slow") && names.iter().any(|n| n == "echo:payload"),
        "{names:?}"
    );

    // task run with a payload prints the result.
    let run = app.cli(&["task", "run", "echo:payload", "--payload", r#"{"hello":"world"}"#]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert_eq!(json(&run), serde_json::json!({ "hello": "world" }));

    // Progress of a slow run, in order, then its result; --json prints the record.
    let slow = app.cli(&[
        "task",
        "run",
        "demo:slow",
        "--payload",
        r#"{"ms":1000}"#,
        "--json",
    ]);
    assert!(slow.status.success(), "{}", stderr(&slow));
    let record = json(&slow);
    assert_eq!(record["status"], "succeeded");
    assert_eq!(
        record["trigger"]["kind"], "cli",
        "recorded as run from the command line"
    );
    assert_eq!(record["result"], serde_json::json!({ "slept_ms": 1000 }));
    let percents: Vec<u64> = stderr(&slow)
        .lines()
        .filter_map(|line| line.strip_prefix("progress "))
        .map(|rest| {
            rest.split('%')
                .next()
                .expect("percent")
                .trim()
                .parse()
                .expect("number")
        })
        .collect();
    assert!(percents.len() >= 5, "progress shown: {}", stderr(&slow));
    assert!(
        percents.windows(2).all(|pair| pair[0] < pair[1]),
        "in order: {percents:?}"
    );
    assert_eq!(percents.last(), Some(&100));

    // A failing task: the server's message and exit code 1.
    let fail = app.cli(&["task", "run", "demo:fail"]);
    assert_eq!(fail.status.code(), Some(1), "{}", stderr(&fail));
    assert!(
        stderr(&fail).contains("demo:fail always fails"),
        "{}",
        stderr(&fail)
    );
    // An unknown task: the server's message, exit code 1.
    let unknown = app.cli(&["task", "run", "no:such"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        stderr(&unknown).contains("Task `no:such` is not available!"),
        "{}",
        stderr(&unknown)
    );
    // Invalid --payload is refused before any request, with the parse error.
    let bad = app.cli(&["task", "run", "echo:payload", "--payload", "{oops"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("--payload is not valid JSON: key must be a string"),
        "{}",
        stderr(&bad)
    );

    // Cancel a running run, found through the runs listing.
    let background = Command::new(env!("CARGO_BIN_EXE_taskyard"))
        .args(["task", "run", "demo:slow", "--payload", r#"{"ms":60000}"#])
        .current_dir(app.dir.path())
        .env_remove("TASKYARD_DATA_DIR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("taskyard runs");
    let mut running = None;
    for _ in 0..100 {
        let runs = json(&app.cli(&[
            "task",
            "runs",
            "--task",
            "demo:slow",
            "--status",
            "running",
            "--json",
        ]));
        if let Some(run) = runs.as_array().and_then(|runs| runs.first()) {
            running = Some(run["id"].as_str().expect("id").to_owned());
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let run_id = running.expect("the slow run is listed as running");
    let cancel = app.cli(&["task", "cancel", &run_id]);
    assert!(cancel.status.success(), "{}", stderr(&cancel));
    assert_eq!(stdout(&cancel).trim(), format!("cancelled run {run_id}"));
    let waited = wait_bounded(background, Duration::from_secs(30));
    assert_eq!(waited.status.code(), Some(1), "the cancelled run's command fails");
    assert!(stderr(&waited).contains("cancelled"), "{}", stderr(&waited));
    let again = app.cli(&["task", "cancel", &run_id]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("already finished (cancelled)"),
        "{}",
        stderr(&again)
    );

    // The runs listing as a table holds every run above.
    let runs = app.cli(&["task", "runs"]);
    let table = stdout(&runs);
    assert!(table.starts_with("RUN"), "{table}");
    for expected in ["echo:payload", "succeeded", "demo:fail", "failed", "cancelled"] {
        assert!(table.contains(expected), "{expected} missing:\n{table}");
    }

    // Schedules: listed with their next times, paused and resumed.
    let schedules = json(&app.cli(&["schedule", "list", "--json"]));
    let cleandb = schedules
        .as_array()
        .expect("array")
        .iter()
        .find(|s| s["name"] == "cleandb")
        .expect("cleandb listed")
        .clone();
    assert!(
        cleandb["next"].as_str().expect("next").contains("T03:00:00"),
        "{cleandb}"
    );
    let paused = app.cli(&["schedule", "pause", "cleandb"]);
    assert_eq!(stdout(&paused).trim(), "paused schedule cleandb");
    let table = stdout(&app.cli(&["schedule", "list"]));
    let line = table
        .lines()
        .find(|line| line.starts_with("cleandb"))
        .expect("row");
    assert!(line.contains("paused"), "{line}");
    let resumed = app.cli(&["schedule", "resume", "cleandb"]);
    assert!(
        stdout(&resumed).starts_with("resumed schedule cleandb; next run"),
        "{}",
        stdout(&resumed)
    );
    let missing = app.cli(&["schedule", "pause", "nope"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("nope"), "{}", stderr(&missing));
}

/// The run of `task` the command line lists first (the newest), once `done` holds for it
/// (at most 15 s).
fn newest_run(app: &App, task: &str, done: impl Fn(&Value) -> bool) -> Value {
    let began = Instant::now();
    loop {
        let runs = json(&app.cli(&["task", "runs", "--task", task, "--all", "--json"]));
        if let Some(run) = runs
            .as_array()
            .and_then(|runs| runs.first())
            .filter(|run| done(run))
        {
            return run.clone();
        }
        assert!(began.elapsed() < Duration::from_secs(15), "{task}: {runs}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_command_line_enqueues_durable_runs_and_retries_failed_ones() {
    let app = App::start();
    let payload = r#"{"to": "ada@example.com", "subject": "hello"}"#;
    let queued = app.cli(&[
        "task",
        "enqueue",
        "email:send",
        "--payload",
        payload,
        "--in",
        "300ms",
    ]);
    assert!(queued.status.success(), "{}", stderr(&queued));
    let line = stdout(&queued);
    assert!(
        line.starts_with("queued run ") && line.contains("of email:send, in 300ms"),
        "{line}"
    );
    let run_id = line.split_whitespace().nth(2).expect("run id").to_owned();
    let run = newest_run(&app, "email:send", |run| run["status"] == "succeeded");
    assert_eq!(run["id"], run_id.as_str());
    let sent = std::fs::read_to_string(app.dir.path().join(format!(".taskyard/outbox/{run_id}.eml")))
        .expect("the e-mail is in the outbox");
    assert!(sent.starts_with("To: ada@example.com\nSubject: hello"), "{sent}");

    // With a key: the second enqueue joins the queued run.
    let later = [
        "task",
        "enqueue",
        "email:send",
        "--payload",
        payload,
        "--in",
        "1h",
        "--key",
        "k",
        "--json",
    ];
    let first = json(&app.cli(&later));
    let second = json(&app.cli(&later));
    assert_eq!(first["run_id"], second["run_id"]);
    assert_eq!(second["joined"], true);
    assert!(
        app.cli(&["task", "cancel", first["run_id"].as_str().expect("id")])
            .status
            .success()
    );

    // Bad input is refused, naming what to send, and nothing is queued.
    let bad = app.cli(&[
        "task",
        "enqueue",
        "email:send",
        "--payload",
        payload,
        "--at",
        "tomorrow",
    ]);
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("`run_at` is \"tomorrow\""),
        "{}",
        stderr(&bad)
    );
    let both = app.cli(&[
        "task",
        "enqueue",
        "email:send",
        "--at",
        "2026-01-01T00:00:00Z",
        "--in",
        "1s",
    ]);
    assert_eq!(both.status.code(), Some(2), "{}", stderr(&both));

    // A failed run, retried from history as its next attempt.
    assert!(!app.cli(&["task", "run", "demo:fail"]).status.success());
    let failed = newest_run(&app, "demo:fail", |run| run["status"] == "failed");
    let failed_id = failed["id"].as_str().expect("id");
    let retried = app.cli(&["task", "retry", failed_id]);
    assert!(retried.status.success(), "{}", stderr(&retried));
    assert_eq!(
        stdout(&retried).trim(),
        format!("queued run {failed_id} again, as attempt 4")
    );
    let again = newest_run(&app, "demo:fail", |run| {
        run["status"] == "failed" && run["attempt"] == 6
    });
    assert_eq!(again["attempts"].as_array().map(Vec::len), Some(5), "{again}");
    let twice = app.cli(&["task", "retry", "0190b6a2-0000-7000-8000-000000000000"]);
    assert!(stderr(&twice).contains("was not found"), "{}", stderr(&twice));
}

#[test]
fn the_app_is_found_by_url_env_or_dev_json_and_a_dead_one_is_named() {
    let app = App::start();
    let elsewhere = tempfile::tempdir().expect("tempdir");
    // Nothing to find: says how to start the app.
    let lost = taskyard_in(elsewhere.path(), &["task", "list"]);
    assert_eq!(lost.status.code(), Some(2));
    assert!(
        stderr(&lost).contains("no running app found"),
        "{}",
        stderr(&lost)
    );
    assert!(stderr(&lost).contains("cargo run"), "{}", stderr(&lost));
    // --url, and TASKYARD_URL.
    let by_flag = taskyard_in(elsewhere.path(), &["--url", &app.url, "task", "list", "--json"]);
    assert!(by_flag.status.success(), "{}", stderr(&by_flag));
    let by_env = Command::new(env!("CARGO_BIN_EXE_taskyard"))
        .args(["schedule", "list", "--json"])
        .current_dir(elsewhere.path())
        .env("TASKYARD_URL", &app.url)
        .output()
        .expect("runs");
    assert!(by_env.status.success(), "{}", stderr(&by_env));
    // From a folder below the app's, dev.json is found above.
    let below = app.dir.path().join("src/tasks");
    std::fs::create_dir_all(&below).expect("mkdir");
    assert!(taskyard_in(&below, &["task", "list"]).status.success());

    // A stopped app removes its file; one killed leaves it, naming a dead pid.
    let dev_json = app.dir.path().join(".taskyard/dev.json");
    let left = std::fs::read_to_string(&dev_json).expect("dev.json");
    let mut app = app;
    let _ = app.child.kill();
    let _ = app.child.wait();
    std::fs::write(&dev_json, left).expect("restore the file a crash would leave");
    let dead = app.cli(&["task", "list"]);
    assert_eq!(dead.status.code(), Some(2));
    assert!(stderr(&dead).contains("is not running"), "{}", stderr(&dead));
    assert!(
        stderr(&dead).contains(&format!("pid {}", app.child.id())),
        "{}",
        stderr(&dead)
    );
}

/// The instance that ran a run: `task run --json` prints the run's record.
fn instance_of_run(output: &Output) -> String {
    json(output)["instance"]
        .as_str()
        .expect("the record names its instance")
        .to_owned()
}

#[test]
fn two_instances_on_one_folder_are_both_found_and_one_can_be_chosen() {
    let first = App::start();
    // A second instance on the same data folder (and SQLite file).
    let mut second = App::start_with(
        tempfile::tempdir().expect("tempdir"),
        &first.dir.path().join(".taskyard"),
    );
    let dev_json = first.dir.path().join(".taskyard/dev.json");
    let listed: Value =
        serde_json::from_str(&std::fs::read_to_string(&dev_json).expect("dev.json")).expect("JSON");
    let instances: Vec<String> = listed["instances"]
        .as_array()
        .expect("instances")
        .iter()
        .map(|entry| entry["instance"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(instances.len(), 2, "{listed}");

    // Without --instance: the newest, with a note naming both.
    let newest = first.cli(&["task", "run", "echo:payload", "--payload", "{}", "--json"]);
    assert!(newest.status.success(), "{}", stderr(&newest));
    assert!(stderr(&newest).contains("2 instances"), "{}", stderr(&newest));
    assert_eq!(instance_of_run(&newest), instances[1]);
    // --instance, by a prefix of the id; and --dir from elsewhere.
    let prefix = &instances[0][..13];
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let dir = first.dir.path().to_str().expect("utf-8");
    let chosen = taskyard_in(
        elsewhere.path(),
        &[
            "--dir",
            dir,
            "--instance",
            prefix,
            "task",
            "run",
            "echo:payload",
            "--payload",
            "{}",
            "--json",
        ],
    );
    assert!(chosen.status.success(), "{}", stderr(&chosen));
    assert_eq!(instance_of_run(&chosen), instances[0]);
    let unknown = first.cli(&["--instance", "nope", "task", "list"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        stderr(&unknown).contains("no running instance `nope`"),
        "{}",
        stderr(&unknown)
    );

    // The second stops: the first is still listed and found.
    let interrupted = Command::new("kill")
        .args(["-INT", &second.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(interrupted.success());
    let began = Instant::now();
    while second.child.try_wait().expect("wait").is_none() {
        assert!(
            began.elapsed() < Duration::from_secs(20),
            "the second instance stops"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let alone = first.cli(&["task", "list", "--json"]);
    assert!(alone.status.success(), "{}", stderr(&alone));
    assert!(!stderr(&alone).contains("instances serve"), "{}", stderr(&alone));
    assert!(dev_json.is_file(), "the first instance is still listed");
}

#[test]
fn a_stopped_app_removes_its_dev_json() {
    let app = App::start();
    let dev_json = app.dir.path().join(".taskyard/dev.json");
    assert!(dev_json.is_file());
    let interrupted = Command::new("kill")
        .args(["-INT", &app.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(interrupted.success());
    let mut app = app;
    let began = Instant::now();
    while app.child.try_wait().expect("wait").is_none() {
        assert!(began.elapsed() < Duration::from_secs(20), "the app stops");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!dev_json.exists(), "dev.json removed at stop");
}

#[test]
#[ignore = "run as a child process by the tests above"]
fn quickstart_child() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime
        .block_on(quickstart::demo().schedule_log(None).serve())
        .expect("the quickstart serves");
}
