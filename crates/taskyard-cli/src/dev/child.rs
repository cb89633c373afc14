//! One process of the app: started on a private loopback port, ready once its health
//! endpoint answers, stopped with SIGTERM so it gets its shutdown grace.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long a new process has to listen and answer its health endpoint.
const READY_WITHIN: Duration = Duration::from_secs(60);
/// Lines of the app's output kept for a crash's message.
const KEPT_LINES: usize = 20;

/// A running process of the app.
pub struct AppProcess {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its last lines of output.
    pub tail: Arc<Mutex<VecDeque<String>>>,
}

/// The app's command: in `dir`, on a free loopback port, as `development` and following
/// the app's `taskyard.toml` unless `TASKYARD_ENV` and `TASKYARD_CONFIG` say otherwise. A
/// debug build does both by itself; a `--release` build would run as `production` on the
/// copy of the file built into it.
fn command(binary: &Path, dir: &Path) -> Command {
    let mut command = Command::new(binary);
    command.current_dir(dir).env("HOST", "127.0.0.1").env("PORT", "0");
    if std::env::var_os("TASKYARD_ENV").is_none() {
        command.env("TASKYARD_ENV", "development");
    }
    let config = dir.join("taskyard.toml");
    if std::env::var_os("TASKYARD_CONFIG").is_none() && config.is_file() {
        command.env("TASKYARD_CONFIG", config);
    }
    command
}

impl AppProcess {
    /// Starts `binary` in `dir` on a free loopback port and waits until it answers
    /// `GET /_tasks/health`.
    pub async fn start(binary: &Path, dir: &Path) -> Result<AppProcess, String> {
        let mut child = command(binary, dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| format!("cannot start {}: {error}", binary.display()))?;
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let (addr_tx, mut addr_rx) = tokio::sync::mpsc::channel::<SocketAddr>(1);
        if let Some(stdout) = child.stdout.take() {
            tokio::spawn(pass_on(
                BufReader::new(stdout),
                tail.clone(),
                Some(addr_tx),
                false,
            ));
        }
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(pass_on(BufReader::new(stderr), tail.clone(), None, true));
        }
        let started = Instant::now();
        let addr = tokio::select! {
            addr = addr_rx.recv() => addr,
            status = child.wait() => {
                let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
                return Err(crash_text(&format!("the app exited ({status}) before it listened"), &tail));
            }
            () = tokio::time::sleep(READY_WITHIN) => None,
        };
        let Some(addr) = addr else {
            let _ = child.start_kill();
            return Err(crash_text(
                "the app did not say where it listens within 60 s",
                &tail,
            ));
        };
        let mut process = AppProcess { child, addr, tail };
        while started.elapsed() < READY_WITHIN {
            if healthy(addr).await {
                return Ok(process);
            }
            if let Ok(Some(status)) = process.child.try_wait() {
                return Err(crash_text(
                    &format!("the app exited ({status}) before it was ready"),
                    &process.tail,
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let tail = process.tail.clone();
        process.stop().await;
        Err(crash_text(
            "the app's health endpoint did not answer within 60 s",
            &tail,
        ))
    }

    /// Waits until the process exits by itself.
    pub async fn exited(&mut self) -> ExitStatus {
        match self.child.wait().await {
            Ok(status) => status,
            // The process can no longer be waited for: as good as gone.
            Err(_) => std::future::pending().await,
        }
    }

    /// SIGTERM, so the app stops as on Ctrl-C (its runs get the shutdown grace); SIGKILL if
    /// it has not exited a minute later.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id().and_then(|pid| i32::try_from(pid).ok()) {
            // SAFETY: `kill` only sends a signal to a process id; no memory is involved.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        if tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

/// The message for a process that failed, with its last lines.
pub fn crash_text(what: &str, tail: &Mutex<VecDeque<String>>) -> String {
    let lines: Vec<String> = tail
        .lock()
        .map(|tail| tail.iter().cloned().collect())
        .unwrap_or_default();
    if lines.is_empty() {
        what.to_owned()
    } else {
        format!("{what}; its last lines:\n{}", lines.join("\n"))
    }
}

/// Prints the app's output as it comes, keeps its last lines, and reports the address
/// from its `taskyard listening on http://…` line.
async fn pass_on<R: tokio::io::AsyncRead + Unpin>(
    reader: BufReader<R>,
    tail: Arc<Mutex<VecDeque<String>>>,
    addr: Option<tokio::sync::mpsc::Sender<SocketAddr>>,
    to_stderr: bool,
) {
    let mut lines = reader.lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if to_stderr {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
        if let (Some(sender), Some(found)) = (&addr, line.strip_prefix("taskyard listening on http://"))
            && let Ok(found) = found.trim().parse()
        {
            let _ = sender.try_send(found);
        }
        if let Ok(mut tail) = tail.lock() {
            if tail.len() == KEPT_LINES {
                tail.pop_front();
            }
            tail.push_back(line);
        }
    }
}

/// `GET /_tasks/health` answers 200.
async fn healthy(addr: SocketAddr) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
        return false;
    };
    let request = format!("GET /_tasks/health HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await.is_ok() && head.starts_with(b"HTTP/1.1 200")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_app_runs_as_development_on_a_free_loopback_port_following_its_file() {
        let dir = tempfile::tempdir().expect("a folder");
        let config = dir.path().join("taskyard.toml");
        std::fs::write(&config, "").expect("the file");
        let command = command(Path::new("app"), dir.path());
        let envs: Vec<(String, String)> = command
            .as_std()
            .get_envs()
            .filter_map(|(key, value)| Some((key.to_str()?.to_owned(), value?.to_str()?.to_owned())))
            .collect();
        let set = |name: &str| {
            let found = envs.iter().find(|(key, _)| key == name);
            found.map(|(_, value)| value.clone())
        };
        assert_eq!(set("HOST").as_deref(), Some("127.0.0.1"));
        assert_eq!(set("PORT").as_deref(), Some("0"));
        // Each is set unless the environment sets it already: then it passes on as it is.
        let unless_set = |name: &str, value: String| std::env::var_os(name).is_none().then_some(value);
        assert_eq!(
            set("TASKYARD_ENV"),
            unless_set("TASKYARD_ENV", "development".to_owned())
        );
        assert_eq!(
            set("TASKYARD_CONFIG"),
            unless_set("TASKYARD_CONFIG", config.display().to_string())
        );
    }
}
