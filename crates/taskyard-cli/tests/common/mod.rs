//! What the tests of `taskyard dev` share: the repository, a free loopback address, and
//! the command that starts `taskyard dev` on it.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository's root.
pub fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository")
}

/// A loopback address whose port was free a moment ago.
pub fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
}

/// `taskyard dev` for the app in `app`, holding `addr`, building into `target` under the
/// repository's `target/`.
pub fn dev(app: &Path, addr: SocketAddr, target: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_taskyard"));
    command
        .args(["dev", "--dir", &app.display().to_string()])
        .args(["--port", &addr.port().to_string()])
        .env("CARGO_TARGET_DIR", repository().join("target").join(target));
    command
}
