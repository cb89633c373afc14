//! Starting the peers and the apps as child processes on loopback, and stopping them.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process killed when dropped.
pub struct Server {
    child: Child,
    pub base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}

/// Waits until `base` answers TCP connections, or panics naming the server.
fn wait_listening(name: &str, addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "{name} did not start listening on {addr} within 30 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A script of `bench/peers`, copied beside the packages `bench/peers/setup.sh` installed
/// (Node resolves `import "croner"` from the script's own folder upwards).
pub fn script(root: &Path, name: &str) -> PathBuf {
    let copy = root.join("target/bench-peers").join(name);
    std::fs::copy(root.join("bench/peers").join(name), &copy).unwrap_or_else(|e| {
        panic!(
            "cannot copy bench/peers/{name} to {} ({e}): run bench/peers/setup.sh (bench/run does)",
            copy.display()
        )
    });
    copy
}

/// The Nitro node-server built by `bench/peers/setup.sh`.
pub fn nitro(root: &Path) -> Server {
    let entry = root.join("target/bench-peers/nitro/.output/server/index.mjs");
    assert!(
        entry.is_file(),
        "{} is missing: run bench/peers/setup.sh (bench/run does)",
        entry.display()
    );
    let port = free_port();
    let child = Command::new("node")
        .arg(&entry)
        .env("PORT", port.to_string())
        .env("HOST", "127.0.0.1")
        .env("NODE_ENV", "production")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("node starts");
    let addr = format!("127.0.0.1:{port}");
    wait_listening("Nitro", &addr);
    Server {
        child,
        base: format!("http://{addr}"),
    }
}

/// The quickstart's release binary in production, its task endpoints open with the
/// bearer token `bench`, its history in a new SQLite file unless `env` says otherwise.
pub fn quickstart(root: &Path, data: &Path, env: &[(&str, &str)]) -> Server {
    let binary = root.join("target/release/quickstart");
    assert!(
        binary.is_file(),
        "{} is missing: cargo build --release -p quickstart (bench/run does)",
        binary.display()
    );
    let mut child = Command::new(binary)
        .current_dir(root.join("examples/quickstart"))
        .env("PORT", "0")
        .env("TASKYARD_DATA_DIR", data)
        .env("TASKYARD_ENV", "production")
        .env("TASKYARD_TASKS_TOKEN", "bench")
        .env("RUST_LOG", "warn")
        .env_remove("TASKYARD_DATABASE_URL")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the quickstart starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
    let addr = lines
        .find_map(|line| {
            line.strip_prefix("taskyard listening on http://")
                .map(str::to_owned)
        })
        .expect("the quickstart reports its address");
    std::thread::spawn(move || lines.for_each(drop));
    Server {
        child,
        base: format!("http://{addr}"),
    }
}
