//! `docs/guide.md` cannot rot: every file it shows is `examples/guide/`, an app outside
//! taskyard's workspace, which this test builds with cargo (twice: the second build must
//! do nothing), starts, and calls over HTTP on loopback.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The guide's files: each fenced block preceded by `<!-- file: PATH -->`.
fn guide_files() -> Vec<(String, String)> {
    let guide = std::fs::read_to_string(repository().join("docs/guide.md")).expect("docs/guide.md");
    let mut files = Vec::new();
    let mut lines = guide.lines();
    while let Some(line) = lines.next() {
        let Some(path) = line
            .strip_prefix("<!-- file: ")
            .and_then(|rest| rest.strip_suffix(" -->"))
        else {
            continue;
        };
        let fence = lines.next().expect("a code block after the marker");
        assert!(fence.starts_with("```"), "{path}: no code block after the marker");
        let body: Vec<&str> = lines.by_ref().take_while(|line| *line != "```").collect();
        files.push((path.to_owned(), body.join("\n") + "\n"));
    }
    files
}

#[test]
fn every_file_the_guide_shows_is_the_example_app() {
    let app = repository().join("examples/guide");
    let files = guide_files();
    assert!(files.len() >= 6, "the guide shows {} files", files.len());
    for (path, shown) in &files {
        let actual = std::fs::read_to_string(app.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        if path == "Cargo.toml" {
            // The example takes taskyard by path and is a workspace of its own; the guide
            // takes it from crates.io. Every other line is the same.
            fn kept(text: &str) -> Vec<&str> {
                text.lines()
                    .filter(|line| !line.trim().is_empty())
                    .filter(|line| {
                        !(line.starts_with('#') || *line == "[workspace]" || line.starts_with("taskyard"))
                    })
                    .collect()
            }
            assert_eq!(kept(shown), kept(&actual), "Cargo.toml differs");
            assert!(shown.contains("taskyard = \"0.1\"") && shown.contains("taskyard-build = \"0.1\""));
        } else {
            assert_eq!(
                shown, &actual,
                "{path} differs between the guide and examples/guide"
            );
        }
    }
}

fn build(target: &Path) -> String {
    let output = Command::new(env!("CARGO"))
        .args(["build", "--offline", "-v"])
        .arg("--manifest-path")
        .arg(repository().join("examples/guide/Cargo.toml"))
        .env("CARGO_TARGET_DIR", target)
        .output()
        .expect("cargo runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "the guide's app does not build:\n{stderr}"
    );
    stderr
}

fn request(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
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
    let body = response.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    (status, body.to_owned())
}

#[test]
fn the_guides_app_builds_from_outside_the_workspace_once_and_answers_a_task() {
    let target = repository().join("target/guide-app");
    build(&target);
    let again = build(&target);
    assert!(
        again.contains("Fresh guide-app") && !again.contains("Compiling guide-app"),
        "the second build did work:\n{again}"
    );

    let data = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(target.join("debug/guide-app"))
        .env("PORT", "0")
        .env("TASKYARD_DATA_DIR", data.path())
        .env_remove("TASKYARD_DATABASE_URL")
        .env_remove("TASKYARD_ENV")
        .stdout(Stdio::piped())
        .spawn()
        .expect("the app starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
    let addr = lines
        .find_map(|line| {
            line.strip_prefix("taskyard listening on http://")
                .map(str::to_owned)
        })
        .expect("the app says where it listens");
    std::thread::spawn(move || lines.for_each(drop));
    let (status, body) = request(
        &addr,
        "POST",
        "/_tasks/greet/runs",
        r#"{"payload":{"name":"Ada","times":2}}"#,
    );
    let (index_status, index) = request(&addr, "GET", "/", "");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(r#""result":{"greeting":["Hello, Ada!","Hello, Ada!"]}"#),
        "{body}"
    );
    assert_eq!(index_status, 200);
    assert!(index.starts_with("Hello from taskyard!"), "{index}");
}
