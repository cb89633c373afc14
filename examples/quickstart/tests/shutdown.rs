//! The quickstart as a real process: it serves, runs tasks over HTTP, and on Ctrl-C
//! (SIGINT) gives running tasks a deadline, then cancels and records them.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use taskyard::{RunRecord, RunStatus};

use common::Quickstart;

#[test]
fn ctrl_c_cancels_running_tasks_after_the_grace_period_and_records_them() {
    let quickstart = Quickstart::start(&[("TASKYARD_SHUTDOWN_GRACE_MS", "300")]);
    let addr = quickstart.addr.clone();
    let http = |addr: &str, method, path, body| common::http(addr, method, path, body, &[]);
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
        .args(["-INT", &quickstart.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(interrupted.success());
    let mut quickstart = quickstart;
    let exit = loop {
        if let Some(exit) = quickstart.child.try_wait().expect("wait") {
            break exit;
        }
        if began.elapsed() > Duration::from_secs(20) {
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
        let store = taskyard::store::SqliteStore::open(quickstart.data.path().join("taskyard.db"))
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
