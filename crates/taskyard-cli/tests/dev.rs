//! `taskyard dev` over an app from `taskyard new`, as a real process on a loopback port,
//! under a steady load of new connections: every edit of a route becomes visible, no
//! connection is refused or reset, a broken edit shows the compiler's error to a browser
//! while the old route keeps answering, fixing it recovers, and a 1 s `worker` schedule
//! neither skips nor repeats a tick across the swaps. The swaps' own time (after
//! `cargo build`) is printed for BENCHMARKS.md.
//!
//! `TASKYARD_DEV_EDITS` sets the number of edits (20).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request on a new connection: the status and the body, or what went wrong.
fn request(addr: SocketAddr, path: &str, accept: &str) -> Result<(u16, String), String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .map_err(|e| e.to_string())?;
    let head =
        format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\naccept: {accept}\r\nconnection: close\r\n\r\n");
    stream
        .write_all(head.as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(|e| format!("read: {e}"))?;
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status in {answer:?}"))?;
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    Ok((status, body.to_owned()))
}

fn until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn route(version: &str) -> String {
    format!("pub async fn handler() -> &'static str {{\n    \"{version}\\n\"\n}}\n")
}

struct Dev {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn edits_swap_in_without_refusing_a_connection() {
    let edits: usize = std::env::var("TASKYARD_DEV_EDITS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20);
    let repo = common::repository();
    let temp = tempfile::tempdir().expect("tempdir");
    let created = Command::new(env!("CARGO_BIN_EXE_taskyard"))
        .current_dir(temp.path())
        .args(["new", "devapp", "--path", &repo.display().to_string()])
        .output()
        .expect("taskyard new");
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let app = temp.path().join("devapp");
    // The guide's versions, and its target folder: only the app itself compiles.
    std::fs::copy(repo.join("examples/guide/Cargo.lock"), app.join("Cargo.lock")).expect("lockfile");
    let mut config = std::fs::read_to_string(app.join("taskyard.toml")).expect("taskyard.toml");
    config.push_str("\n[schedules.tick]\ntype = \"worker\"\ninterval = \"1s\"\ntask = \"greet\"\npayload = { name = \"tick\" }\n");
    std::fs::write(app.join("taskyard.toml"), config).expect("taskyard.toml");
    let addr = common::free_addr();
    let mut child = common::dev(&app, addr, "guide-app")
        .env_remove("TASKYARD_DATABASE_URL")
        .env_remove("TASKYARD_ENV")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("taskyard dev starts");
    let lines = Arc::new(Mutex::new(Vec::new()));
    let stderr = child.stderr.take().expect("stderr");
    let kept = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("{line}");
            kept.lock().expect("lines").push(line);
        }
    });
    let mut dev = Dev { child, lines };
    // The first build may compile the dependencies.
    until("the first build serves", Duration::from_secs(900), || {
        request(addr, "/", "*/*").is_ok_and(|(status, _)| status == 200)
    });

    // A steady load of new connections through every swap.
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let load = {
        let (stop, answered, failures) = (stop.clone(), answered.clone(), failures.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                match request(addr, "/api/status", "application/json") {
                    Ok((200, _)) => {
                        answered.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok((status, body)) => failures
                        .lock()
                        .expect("failures")
                        .push(format!("{status}: {body}")),
                    Err(error) => failures.lock().expect("failures").push(error),
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    // The versions that open pages hear of (the script `taskyard dev` adds to HTML pages
    // reloads a page when the version that served it is no longer the one serving).
    let versions = Arc::new(Mutex::new(Vec::<String>::new()));
    {
        let versions = versions.clone();
        let mut stream = TcpStream::connect(addr).expect("the events stream");
        let head = format!(
            "GET /_taskyard/dev/events HTTP/1.1\r\nhost: {addr}\r\naccept: text/event-stream\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).expect("send");
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if let Some(version) = line.strip_prefix("data: ") {
                    versions.lock().expect("versions").push(version.to_owned());
                }
            }
        });
    }
    let index = app.join("src/routes/index.get.rs");
    for edit in 1..=edits {
        let version = format!("version {edit}");
        std::fs::write(&index, route(&version)).expect("edit");
        until(
            &format!("edit {edit} is visible"),
            Duration::from_secs(180),
            || request(addr, "/", "*/*").is_ok_and(|(_, body)| body == format!("{version}\n")),
        );
    }

    // A broken edit: browsers see the compiler's error, everything else the old route.
    std::fs::write(
        &index,
        "pub async fn handler() -> &'static str {\n    \"broken\" +\n}\n",
    )
    .expect("edit");
    until("the build error is shown", Duration::from_secs(180), || {
        request(addr, "/_taskyard/dev", "*/*").is_ok_and(|(_, body)| body.contains("build_failed"))
    });
    let (status, page) = request(addr, "/", "text/html,application/xhtml+xml").expect("the error page");
    assert_eq!(status, 500, "{page}");
    assert!(
        page.contains("The app does not build") && page.contains("src/routes/index.get.rs:3:1"),
        "{page}"
    );
    let (status, state) = request(addr, "/_taskyard/dev", "application/json").expect("the state");
    assert_eq!(status, 200);
    assert!(
        state.contains(r#""file":"src/routes/index.get.rs","line":3"#),
        "{state}"
    );
    let (status, old) = request(addr, "/", "*/*").expect("the old route");
    assert_eq!(
        (status, old.as_str()),
        (200, format!("version {edits}\n").as_str())
    );
    std::fs::write(&index, route("fixed")).expect("edit");
    until("the fix is visible", Duration::from_secs(180), || {
        request(addr, "/", "text/html").is_ok_and(|(status, body)| status == 200 && body == "fixed\n")
    });
    // Every swap and the failure reached the events stream, in order, the fix last.
    until("the fix's version is heard", Duration::from_secs(10), || {
        versions.lock().expect("versions").len() >= edits + 3
    });
    let heard = versions.lock().expect("versions").clone();
    let failing = heard.iter().filter(|v| v.ends_with("failing")).count();
    assert_eq!(failing, 1, "the broken build, once: {heard:?}");
    assert!(heard[heard.len() - 2].ends_with("failing"), "{heard:?}");
    let mut served: Vec<&String> = heard.iter().filter(|v| !v.ends_with("failing")).collect();
    assert_eq!(
        served.len(),
        edits + 2,
        "the first version and one per good build: {heard:?}"
    );
    served.dedup();
    assert_eq!(served.len(), edits + 2, "each swap a new version: {heard:?}");
    // taskyard.toml reaches the app without a build.
    let mut config = std::fs::read_to_string(app.join("taskyard.toml")).expect("taskyard.toml");
    config.push_str("# edited while serving\n");
    std::fs::write(app.join("taskyard.toml"), config).expect("taskyard.toml");
    until("the config edit is seen", Duration::from_secs(30), || {
        dev.lines
            .lock()
            .expect("lines")
            .iter()
            .any(|line| line.contains("taskyard.toml changed; the app follows it without a build"))
    });
    stop.store(true, Ordering::SeqCst);
    load.join().expect("the load");
    let failures = failures.lock().expect("failures").clone();
    assert!(
        failures.is_empty(),
        "{} of {} requests failed: {failures:?}",
        failures.len(),
        answered.load(Ordering::SeqCst) + failures.len()
    );
    assert!(answered.load(Ordering::SeqCst) > 100, "the load ran");

    // Every tick of the 1 s schedule ran once, from the first to the last. (A tick meant
    // for a process that just stopped is taken by the others after their 2 s grace.)
    std::thread::sleep(Duration::from_secs(4));
    let (status, runs) =
        request(addr, "/_tasks/runs?schedule=tick&limit=500", "application/json").expect("runs");
    assert_eq!(status, 200, "{runs}");
    let runs: serde_json::Value = serde_json::from_str(&runs).expect("JSON");
    let mut ticks: Vec<jiff::Timestamp> = runs["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .filter_map(|run| run["trigger"]["scheduled_at"].as_str())
        .map(|at| at.parse().expect("a time"))
        .collect();
    ticks.sort();
    let count = ticks.len();
    ticks.dedup();
    assert_eq!(ticks.len(), count, "a tick ran twice");
    let shown: Vec<String> = ticks.iter().map(|t| t.to_string()).collect();
    assert!(ticks.len() >= 5, "{} ticks: {shown:?}", ticks.len());
    for pair in ticks.windows(2) {
        assert_eq!(
            pair[1].as_second() - pair[0].as_second(),
            1,
            "a tick is missing between {} and {}",
            pair[0],
            pair[1]
        );
    }

    let swaps: Vec<u64> = dev
        .lines
        .lock()
        .expect("lines")
        .iter()
        .filter_map(|line| line.split("swapped in ").nth(1))
        .filter_map(|rest| rest.trim_end_matches(" ms").parse().ok())
        .collect();
    let mut sorted = swaps.clone();
    sorted.sort_unstable();
    eprintln!(
        "swaps: {} (p50 {} ms, max {} ms); requests answered: {}; ticks: {}",
        sorted.len(),
        sorted.get(sorted.len() / 2).copied().unwrap_or(0),
        sorted.last().copied().unwrap_or(0),
        answered.load(Ordering::SeqCst),
        ticks.len()
    );
    assert_eq!(
        swaps.len(),
        edits + 2,
        "one swap per good build, none for taskyard.toml"
    );

    // SIGTERM stops it and its app.
    let pid = dev.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let start = Instant::now();
    loop {
        if let Some(status) = dev.child.try_wait().expect("wait") {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "taskyard dev did not stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(request(addr, "/", "*/*").is_err(), "the port is released");
}
