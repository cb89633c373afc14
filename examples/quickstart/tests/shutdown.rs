//! The quickstart as a real process: it serves, runs tasks over HTTP, and on Ctrl-C
//! (SIGINT) gives running tasks a deadline, then cancels and records them.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use taskyard::{RunRecord, RunStatus};

fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let status = response[9..12].parse().expect("status");
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (
        status,
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

#[test]
fn ctrl_c_cancels_running_tasks_after_the_grace_period_and_records_them() {
    let data = tempfile::tempdir().expect("tempdir");
    let mut app = Command::new(env!("CARGO_BIN_EXE_quickstart"))
        .env("PORT", "0")
        .env("TASKYARD_DATA_DIR", data.path())
        .env("TASKYARD_SHUTDOWN_GRACE_MS", "300")
        .env_remove("TASKYARD_DATABASE_URL")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("quickstart starts");
    let stdout = app.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
    let addr = lines
        .find_map(|line| {
            line.strip_prefix("taskyard listening on http://")
                .map(str::to_owned)
        })
        .expect("the app reports its address");
    // Keep reading so the app's logging never hits a closed pipe.
    std::thread::spawn(move || lines.for_each(drop));

    let (status, body) = http(
        &addr,
        "POST",
        "/_tasks/echo:payload/runs",
        r#"{"payload":{"hello":"world"}}"#,
    );
    assert_eq!(
        (status, &body["result"]),
        (200, &serde_json::json!({"hello": "world"}))
    );
    let (status, body) = http(
        &addr,
        "POST",
        "/_tasks/demo:slow/runs?wait=false",
        r#"{"payload":{"ms":60000}}"#,
    );
    assert_eq!(status, 202);
    let run_id = body["run_id"].as_str().expect("run id").to_owned();
    std::thread::sleep(Duration::from_millis(200));
    let (_, running) = http(&addr, "GET", &format!("/_tasks/runs/{run_id}"), "");
    assert_eq!(running["status"], "running");

    let began = Instant::now();
    let interrupted = Command::new("kill")
        .args(["-INT", &app.id().to_string()])
        .status()
        .expect("kill");
    assert!(interrupted.success());
    let exit = loop {
        if let Some(exit) = app.try_wait().expect("wait") {
            break exit;
        }
        if began.elapsed() > Duration::from_secs(20) {
            let _ = app.kill();
            panic!("the app did not stop within 20 s of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "graceful exit: {exit:?}");
    assert!(
        began.elapsed() >= Duration::from_millis(300),
        "the grace period was given"
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let run: RunRecord = rt.block_on(async {
        let store = taskyard::store::SqliteStore::open(data.path().join("taskyard.db"))
            .await
            .expect("open");
        let id = run_id.parse().expect("id");
        taskyard::store::Store::get_run(&store, id)
            .await
            .expect("get")
            .expect("recorded")
    });
    assert_eq!(run.status, RunStatus::Cancelled);
    assert_eq!(run.task, "demo:slow");
}
