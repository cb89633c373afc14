//! One `cargo build` of the app: the binary it made, or the compiler's errors with their
//! file, line and message.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde::Serialize;
use tokio::process::Command;

/// One error of a failed build.
#[derive(Debug, Clone, Serialize)]
pub struct Diagnostic {
    /// The file, relative to the app (`src/routes/index.get.rs`), when the error has one.
    pub file: Option<String>,
    /// Its line and column.
    pub line: Option<u64>,
    /// Its column.
    pub column: Option<u64>,
    /// The compiler's one-line message.
    pub message: String,
    /// The compiler's full text, with the code it points at.
    pub rendered: String,
}

impl Diagnostic {
    /// `src/x.rs:3:5: message`, for the terminal.
    pub fn short(&self) -> String {
        match (&self.file, self.line, self.column) {
            (Some(file), Some(line), Some(column)) => format!("{file}:{line}:{column}: {}", self.message),
            (Some(file), _, _) => format!("{file}: {}", self.message),
            _ => self.message.clone(),
        }
    }
}

/// A failed build: its errors, or cargo's own output when it gave none (a bad manifest).
#[derive(Debug, Clone)]
pub struct Failed {
    pub errors: Vec<Diagnostic>,
    pub output: String,
}

/// Builds the app in `dir`, optimized when `release`; the path of its binary.
pub async fn build(dir: &Path, release: bool) -> Result<PathBuf, Failed> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    build_with(&cargo, dir, release).await
}

/// [`build`] through the `cargo` given.
async fn build_with(cargo: &std::ffi::OsStr, dir: &Path, release: bool) -> Result<PathBuf, Failed> {
    let output = Command::new(cargo)
        .current_dir(dir)
        .args(["build", "--message-format=json"])
        .args(release.then_some("--release"))
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|error| Failed {
            errors: Vec::new(),
            output: format!("cannot run cargo: {error}"),
        })?;
    let mut errors = Vec::new();
    let mut binary = None;
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        match message["reason"].as_str() {
            Some("compiler-message") if message["message"]["level"] == "error" => {
                errors.push(diagnostic(&message["message"], dir));
            }
            Some("compiler-artifact")
                if message["target"]["kind"]
                    .as_array()
                    .is_some_and(|kinds| kinds.iter().any(|kind| kind == "bin")) =>
            {
                if let Some(path) = message["executable"].as_str() {
                    binary = Some(PathBuf::from(path));
                }
            }
            _ => {}
        }
    }
    match (output.status.success(), binary) {
        (true, Some(binary)) => Ok(binary),
        (true, None) => Err(Failed {
            errors,
            output: format!("cargo built no binary in {}", dir.display()),
        }),
        (false, _) => Err(Failed {
            errors,
            output: String::from_utf8_lossy(&output.stderr).into_owned(),
        }),
    }
}

/// One compiler message; its file relative to the app when it is inside it.
fn diagnostic(message: &serde_json::Value, dir: &Path) -> Diagnostic {
    let spans = message["spans"].as_array();
    let primary = spans.and_then(|spans| spans.iter().find(|span| span["is_primary"] == true));
    let rendered = message["rendered"].as_str().unwrap_or_default();
    Diagnostic {
        file: primary.and_then(|span| span["file_name"].as_str()).map(|file| {
            Path::new(file)
                .strip_prefix(dir)
                .map_or_else(|_| file.to_owned(), |relative| relative.display().to_string())
        }),
        line: primary.and_then(|span| span["line_start"].as_u64()),
        column: primary.and_then(|span| span["column_start"].as_u64()),
        message: message["message"].as_str().unwrap_or_default().to_owned(),
        rendered: rendered.replace(&format!("{}/", dir.display()), ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for cargo that writes the arguments it was given next to itself and
    /// reports a binary built where cargo would put it.
    fn fake_cargo(dir: &Path) -> PathBuf {
        let script = dir.join("cargo");
        let text = format!(
            "#!/bin/sh\necho \"$@\" > {args}\ncase \"$*\" in *--release*) profile=release ;; *) profile=debug ;; esac\n\
             echo '{{\"reason\":\"compiler-artifact\",\"target\":{{\"kind\":[\"bin\"]}},\"executable\":\"/app/target/'$profile'/app\"}}'\n",
            args = dir.join("args").display()
        );
        std::fs::write(&script, text).expect("the script");
        let mut permissions = std::fs::metadata(&script).expect("metadata").permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
        std::fs::set_permissions(&script, permissions).expect("executable");
        script
    }

    #[tokio::test]
    async fn a_release_build_asks_cargo_for_one_and_runs_its_binary() {
        let dir = tempfile::tempdir().expect("a folder");
        let cargo = fake_cargo(dir.path());
        for (release, args, binary) in [
            (false, "build --message-format=json", "/app/target/debug/app"),
            (
                true,
                "build --message-format=json --release",
                "/app/target/release/app",
            ),
        ] {
            let built = build_with(cargo.as_os_str(), dir.path(), release).await;
            assert_eq!(built.ok(), Some(PathBuf::from(binary)), "release: {release}");
            let given = std::fs::read_to_string(dir.path().join("args")).expect("the arguments");
            assert_eq!(given.trim(), args);
        }
    }
}
