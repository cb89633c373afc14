//! The quickstart as a real process, and plain HTTP/1.1 requests to it over loopback.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running quickstart; killed when dropped.
pub struct Quickstart {
    pub child: Child,
    pub addr: String,
    pub data: tempfile::TempDir,
}

impl Quickstart {
    /// Starts the quickstart binary on a free port with its state in a new folder and
    /// `envs` set, and waits until it listens.
    pub fn start(envs: &[(&str, &str)]) -> Quickstart {
        Quickstart::spawn(envs, false).0
    }

    /// [`Quickstart::start`], with the app's standard error as a channel of lines.
    pub fn start_capturing(envs: &[(&str, &str)]) -> (Quickstart, std::sync::mpsc::Receiver<String>) {
        let (quickstart, stderr) = Quickstart::spawn(envs, true);
        (quickstart, stderr.expect("stderr is captured"))
    }

    fn spawn(
        envs: &[(&str, &str)],
        capture_stderr: bool,
    ) -> (Quickstart, Option<std::sync::mpsc::Receiver<String>>) {
        let data = tempfile::tempdir().expect("tempdir");
        let mut command = Command::new(env!("CARGO_BIN_EXE_quickstart"));
        command
            .env("PORT", "0")
            .env("TASKYARD_DATA_DIR", data.path())
            .env_remove("TASKYARD_DATABASE_URL")
            .env_remove("TASKYARD_TASKS_TOKEN")
            .env_remove("TASKYARD_ENV")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped());
        for (key, value) in envs {
            command.env(key, value);
        }
        if capture_stderr {
            command.stderr(Stdio::piped());
        }
        let mut child = command.spawn().expect("quickstart starts");
        let stderr = child.stderr.take().map(|stderr| {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
            rx
        });
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
        let addr = lines
            .find_map(|line| {
                line.strip_prefix("taskyard listening on http://")
                    .map(str::to_owned)
            })
            .expect("the app reports its address");
        // Keep reading so the app's logging never hits a closed pipe.
        std::thread::spawn(move || lines.for_each(drop));
        (Quickstart { child, addr, data }, stderr)
    }

    pub fn http(&self, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
        http(&self.addr, method, path, body, &[])
    }
}

impl Drop for Quickstart {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request with `Connection: close`; returns the status and the body as JSON (or
/// `Null` when it is not JSON).
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> (u16, serde_json::Value) {
    let reply = raw(addr, method, path, body, headers);
    (
        reply.status,
        serde_json::from_str(&reply.body).unwrap_or(serde_json::Value::Null),
    )
}

/// A response as it came.
pub struct Reply {
    pub status: u16,
    /// Header lines, names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// One request with `Connection: close`, the whole response returned.
pub fn raw(addr: &str, method: &str, path: &str, body: &str, headers: &[(&str, &str)]) -> Reply {
    let extra: String = headers
        .iter()
        .map(|(key, value)| format!("{key}: {value}\r\n"))
        .collect();
    send(
        addr,
        &format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{body}",
            body.len()
        ),
    )
}

/// Sends `request` exactly as written (it should ask for `Connection: close`) and returns
/// the whole response.
pub fn send(addr: &str, request: &str) -> Reply {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    stream.write_all(request.as_bytes()).expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let status = response[9..12].parse().expect("status");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let headers = head
        .lines()
        .skip(1)
        .filter_map(|line| line.split_once(": "))
        .map(|(key, value)| (key.to_ascii_lowercase(), value.to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_owned(),
    }
}
