//! The quickstart on a full disk: callers get `503` within the store timeout instead of
//! hanging, health says the store is failing, the app recovers by itself once space
//! returns, SIGTERM still stops it within the grace, and every run that was answered
//! `200` or `202` is in the store after a restart. Its SQLite file deleted under it, it
//! stops with an error naming the file; a dev-info file it cannot remove is reported.
//!
//! The disk is a small tmpfs mounted for the test, which needs root: without it the test
//! is skipped loudly, unless `TASKYARD_REQUIRE_TMPFS=1` (set by `.ci/run`) makes that a
//! failure.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::Quickstart;
use serde_json::Value;

const STORE_TIMEOUT_MS: u64 = 1000;
const GRACE_MS: u64 = 1500;

/// A tmpfs mounted on a new folder; unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(megabytes: u32) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().expect("tempdir");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|status| status.success());
        if mounted {
            return Some(Tmpfs { dir });
        }
        if std::env::var("TASKYARD_REQUIRE_TMPFS").as_deref() == Ok("1") {
            panic!("TASKYARD_REQUIRE_TMPFS=1 but a tmpfs cannot be mounted here (run as root)");
        }
        eprintln!("\n*** SKIPPED the full-disk tests: mounting a tmpfs needs root ***\n");
        None
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file until the file system is full; returns its path.
    fn fill(&self) -> PathBuf {
        let path = self.path().join("filler");
        let mut file = std::fs::File::create(&path).expect("filler");
        let chunk = vec![0u8; 64 * 1024];
        while file.write_all(&chunk).is_ok() {}
        // The last partial chunk, byte by byte, so not a page is left.
        while file.write_all(&[0]).is_ok() {}
        let _ = file.sync_all();
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

fn start(data: &Path) -> Quickstart {
    let data = data.to_str().expect("utf-8 path");
    Quickstart::start(&[
        ("TASKYARD_DATA_DIR", data),
        ("TASKYARD_STORE_TIMEOUT_MS", &STORE_TIMEOUT_MS.to_string()),
        ("TASKYARD_SHUTDOWN_GRACE_MS", &GRACE_MS.to_string()),
    ])
}

/// One echo run, timed: (status, body, how long the answer took).
fn echo(quickstart: &Quickstart, query: &str, n: usize) -> (u16, Value, Duration) {
    echo_with(quickstart, query, &format!(r#"{{"payload":{{"n":{n}}}}}"#))
}

/// One durable echo run (enqueued, claimed, run and ended in the store), timed.
fn durable_echo(quickstart: &Quickstart, n: usize) -> (u16, Value, Duration) {
    echo_with(
        quickstart,
        "",
        &format!(r#"{{"payload":{{"n":{n}}},"durable":true}}"#),
    )
}

fn echo_with(quickstart: &Quickstart, query: &str, body: &str) -> (u16, Value, Duration) {
    let began = Instant::now();
    let (status, body) = quickstart.http("POST", &format!("/_tasks/echo:payload/runs{query}"), body);
    (status, body, began.elapsed())
}

fn sigterm_and_wait(quickstart: &mut Quickstart, within: Duration) {
    let began = Instant::now();
    let sent = Command::new("kill")
        .args(["-TERM", &quickstart.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    loop {
        if let Some(exit) = quickstart.child.try_wait().expect("wait") {
            assert!(exit.success(), "graceful exit: {exit:?}");
            return;
        }
        assert!(
            began.elapsed() < within,
            "the app did not stop within {within:?} of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_full_disk_answers_503_in_time_recovers_by_itself_and_loses_no_acknowledged_run() {
    let Some(disk) = Tmpfs::mount(24) else {
        return;
    };
    let bound = Duration::from_millis(STORE_TIMEOUT_MS) + Duration::from_secs(3);
    let mut acknowledged: Vec<String> = Vec::new();
    let mut quickstart = start(disk.path());
    let (status, body, _) = echo(&quickstart, "", 0);
    assert_eq!(status, 200, "{body}");
    acknowledged.push(body["run_id"].as_str().expect("id").to_owned());

    // Full: every request is answered in time, the first few maybe from space SQLite
    // still had, then 503.
    let filler = disk.fill();
    let began = Instant::now();
    let refused = loop {
        let (status, body, took) = echo(&quickstart, "", acknowledged.len());
        assert!(took < bound, "answered after {took:?}: {body}");
        match status {
            200 => acknowledged.push(body["run_id"].as_str().expect("id").to_owned()),
            503 => break body,
            other => panic!("unexpected {other}: {body}"),
        }
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "the full disk was never noticed"
        );
    };
    let message = refused["message"].as_str().unwrap_or("");
    assert!(message.contains("unavailable"), "{refused}");
    assert!(message.contains("full"), "the cause is named: {refused}");
    let (status, _, took) = echo(&quickstart, "?wait=false", 99);
    assert_eq!(
        status, 503,
        "a 202 would acknowledge a run the store does not hold"
    );
    assert!(took < bound);
    let (status, body, took) = durable_echo(&quickstart, 98);
    assert_eq!(status, 503, "a durable run the store cannot take: {body}");
    assert!(took < bound);
    let (status, health) = quickstart.http("GET", "/_tasks/health", "");
    assert_eq!(
        (status, health["status"].as_str()),
        (503, Some("failing")),
        "{health}"
    );
    assert!(
        health["store_failure"]["error"]
            .as_str()
            .unwrap_or("")
            .contains("full")
    );
    let (status, _) = quickstart.http("GET", "/_tasks/runs?limit=5", "");
    assert_eq!(
        status, 503,
        "a listing waits for queued records, at most the timeout"
    );

    // Space returns: the app recovers by itself.
    std::fs::remove_file(&filler).expect("free the disk");
    let began = Instant::now();
    loop {
        let (status, body, took) = echo(&quickstart, "", 1000 + acknowledged.len());
        assert!(took < bound, "answered after {took:?}");
        if status == 200 {
            acknowledged.push(body["run_id"].as_str().expect("id").to_owned());
            break;
        }
        assert!(
            began.elapsed() < Duration::from_secs(20),
            "never recovered: {status} {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (status, body, _) = echo(&quickstart, "?wait=false", 2000);
    assert_eq!(status, 202, "{body}");
    acknowledged.push(body["run_id"].as_str().expect("id").to_owned());
    // The queue's writes (enqueue, claim, end) work again too.
    let (status, body, took) = durable_echo(&quickstart, 2001);
    assert_eq!(status, 200, "a durable run after the disk's recovery: {body}");
    assert_eq!(body["result"]["n"], 2001, "{body}");
    assert!(took < bound, "answered after {took:?}");
    acknowledged.push(body["run_id"].as_str().expect("id").to_owned());
    // Health follows at the next write of each writer (a heartbeat comes every second).
    let began = Instant::now();
    loop {
        let (status, health) = quickstart.http("GET", "/_tasks/health", "");
        if (status, health["status"].as_str()) == (200, Some("ok")) {
            break;
        }
        assert!(
            began.elapsed() < Duration::from_secs(5),
            "health stays failing: {health}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    sigterm_and_wait(
        &mut quickstart,
        Duration::from_millis(GRACE_MS) + Duration::from_secs(8),
    );
    drop(quickstart);

    // Every acknowledged run is in the store after a restart.
    let quickstart = start(disk.path());
    for id in &acknowledged {
        let (status, run) = quickstart.http("GET", &format!("/_tasks/runs/{id}"), "");
        assert_eq!(status, 200, "acknowledged run {id} was lost: {run}");
        assert_eq!(run["status"], "succeeded", "{run}");
    }
    eprintln!(
        "{} acknowledged runs, all in the store after a restart",
        acknowledged.len()
    );

    // SIGTERM stops it within the grace while the disk is full.
    let mut quickstart = quickstart;
    let _filler = disk.fill();
    let began = Instant::now();
    loop {
        let (status, _, _) = echo(&quickstart, "", 3000);
        if status == 503 {
            break;
        }
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "the full disk was never noticed"
        );
    }
    sigterm_and_wait(
        &mut quickstart,
        Duration::from_millis(GRACE_MS) + Duration::from_secs(8),
    );
}

/// The quickstart with its state in `data`, a short grace, and its standard error captured.
fn start_capturing(data: &Path, envs: &[(&str, &str)]) -> (Quickstart, std::sync::mpsc::Receiver<String>) {
    let data = data.to_str().expect("utf-8 path");
    let mut all = vec![("TASKYARD_DATA_DIR", data), ("TASKYARD_SHUTDOWN_GRACE_MS", "500")];
    all.extend_from_slice(envs);
    Quickstart::start_capturing(&all)
}

/// Waits up to `limit` for the child to exit on its own.
fn exits_within(child: &mut std::process::Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let began = Instant::now();
    while began.elapsed() < limit {
        if let Some(status) = child.try_wait().expect("wait") {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[test]
fn an_sqlite_file_deleted_under_the_running_app_stops_it_loudly() {
    let data = tempfile::tempdir().expect("tempdir");
    let (mut quickstart, stderr) = start_capturing(data.path(), &[]);
    let (status, _) = quickstart.http("GET", "/_tasks/health", "");
    assert_eq!(status, 200);
    let db = data.path().join("taskyard.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let exit = exits_within(&mut quickstart.child, Duration::from_secs(10));
    let _ = quickstart.child.kill();
    let exit = exit.expect("the app kept running on a deleted file");
    assert!(!exit.success(), "it stops with an error: {exit:?}");
    let said: Vec<String> = stderr.try_iter().collect();
    let said = said.join("\n");
    assert!(said.contains("was deleted or replaced"), "{said}");
    assert!(
        said.contains(&db.display().to_string()),
        "the file is named: {said}"
    );
}

/// A folder made immutable (`chattr +i`: even root cannot add or remove entries); made
/// mutable again when dropped.
struct Immutable<'a>(&'a Path);

impl Immutable<'_> {
    fn set(path: &Path) -> Option<Immutable<'_>> {
        let done = Command::new("chattr")
            .arg("+i")
            .arg(path)
            .status()
            .is_ok_and(|status| status.success());
        if done {
            return Some(Immutable(path));
        }
        if std::env::var("TASKYARD_REQUIRE_TMPFS").as_deref() == Ok("1") {
            panic!("TASKYARD_REQUIRE_TMPFS=1 but `chattr +i` failed here (run as root on ext4)");
        }
        eprintln!("\n*** SKIPPED the dev-info test: `chattr +i` needs root and ext4 ***\n");
        None
    }
}

impl Drop for Immutable<'_> {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(self.0).status();
    }
}

#[test]
fn a_dev_info_file_that_cannot_be_removed_is_reported() {
    let root = tempfile::tempdir().expect("tempdir");
    let data = root.path().join("data");
    std::fs::create_dir(&data).expect("data folder");
    let db = root.path().join("taskyard.db");
    let url = format!("sqlite://{}", db.display());
    let (mut quickstart, stderr) = start_capturing(&data, &[("TASKYARD_DATABASE_URL", &url)]);
    assert!(data.join("dev.json").exists());
    let Some(_frozen) = Immutable::set(&data) else {
        let _ = quickstart.child.kill();
        return;
    };
    let sent = Command::new("kill")
        .args(["-TERM", &quickstart.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let exit = exits_within(&mut quickstart.child, Duration::from_secs(15));
    let _ = quickstart.child.kill();
    assert!(exit.is_some(), "the app stops");
    let said: Vec<String> = stderr.try_iter().collect();
    let said = said.join("\n");
    assert!(
        said.contains("cannot remove") && said.contains("dev.json"),
        "{said}"
    );
}

/// `TASKYARD_SQLITE_SYNCHRONOUS` is read when the store opens: a value it does not take
/// stops the app at start-up, naming the variable and the values it takes.
#[test]
fn an_unknown_sqlite_sync_setting_stops_the_app_naming_it() {
    let data = tempfile::tempdir().expect("a folder");
    let output = Command::new(env!("CARGO_BIN_EXE_quickstart"))
        .env("PORT", "0")
        .env("TASKYARD_DATA_DIR", data.path())
        .env_remove("TASKYARD_DATABASE_URL")
        .env("TASKYARD_SQLITE_SYNCHRONOUS", "sometimes")
        .output()
        .expect("the app runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("TASKYARD_SQLITE_SYNCHRONOUS `sometimes` is not a setting; use `normal`"),
        "{stderr}"
    );
}
