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

/// Builds the app in `dir`; the path of its binary.
pub async fn build(dir: &Path) -> Result<PathBuf, Failed> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .current_dir(dir)
        .args(["build", "--message-format=json"])
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
