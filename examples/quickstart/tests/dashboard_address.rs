//! The quickstart says where its dashboard is when it starts, and its welcome page links
//! it.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::raw;

#[test]
fn the_dashboard_address_is_printed_at_startup_and_linked_from_the_welcome_page() {
    let data = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_quickstart"))
        .env("PORT", "0")
        .env("TASKYARD_DATA_DIR", data.path())
        .env_remove("TASKYARD_ENV")
        .env_remove("TASKYARD_TASKS_TOKEN")
        .env_remove("TASKYARD_UI")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("quickstart starts");
    let stdout = child.stdout.take().expect("stdout");
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut listening = None;
    let dashboard = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = received
            .recv_timeout(left)
            .expect("the app prints its addresses in 30 s");
        if let Some(addr) = line.strip_prefix("taskyard listening on http://") {
            listening = Some(addr.to_owned());
        }
        if let Some(url) = line.strip_prefix("dashboard on ") {
            break url.to_owned();
        }
    };
    let addr = listening.expect("the address comes first");
    assert_eq!(dashboard, format!("http://{addr}/_tasks/ui"));
    let page = raw(&addr, "GET", "/_tasks/ui", "", &[]);
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("<title>Overview · taskyard</title>"),
        "{}",
        page.body
    );
    let welcome = raw(&addr, "GET", "/", "", &[]);
    assert!(
        welcome.body.contains(r#"<a href="/_tasks/ui">/_tasks/ui</a>"#),
        "{}",
        welcome.body
    );
    let _ = child.kill();
    let _ = child.wait();
}
