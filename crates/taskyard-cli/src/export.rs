//! `taskyard export TARGET`: builds the app in `--dir` with cargo and runs its own
//! `APP export TARGET …`, which knows every schedule the app defines (in code, in
//! `src/schedule/` and in `taskyard.toml`) exactly as the app checks them.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

/// `taskyard export`'s own option, and the app's export options it passes on.
#[derive(clap::Args)]
pub struct ExportCommand {
    /// Use this built app binary instead of building the app with cargo.
    #[arg(long, value_name = "PATH")]
    app_bin: Option<PathBuf>,
    #[command(flatten)]
    app: taskyard::app::ExportArgs,
}

/// Builds the app (unless `--app-bin`) and runs its export; its exit code is ours.
pub fn export(dir: &Path, args: ExportCommand) -> ExitCode {
    let dir = match dir.canonicalize() {
        Ok(dir) => dir,
        Err(error) => {
            eprintln!(
                "taskyard export: the app folder {} cannot be read: {error}",
                dir.display()
            );
            return ExitCode::from(2);
        }
    };
    let app = match args.app_bin.clone() {
        Some(bin) => bin,
        None => match build(&dir) {
            Ok(bin) => bin,
            Err(message) => {
                eprintln!("taskyard export: {message}");
                return ExitCode::from(2);
            }
        },
    };
    let mut forwarded = args.app.clone();
    forwarded.workdir.get_or_insert_with(|| dir.display().to_string());
    let mut command = Command::new(&app);
    command.current_dir(&dir).arg("export").args(forwarded.to_args());
    match command.status() {
        Ok(status) => ExitCode::from(
            status
                .code()
                .and_then(|code| u8::try_from(code).ok())
                .unwrap_or(1),
        ),
        Err(error) => {
            eprintln!("taskyard export: cannot run {}: {error}", app.display());
            ExitCode::from(2)
        }
    }
}

/// `cargo build` in `dir`; the path of the binary it built.
fn build(dir: &Path) -> Result<PathBuf, String> {
    if !dir.join("Cargo.toml").is_file() {
        return Err(format!(
            "{} holds no Cargo.toml; run this in the app's folder or pass --dir",
            dir.display()
        ));
    }
    let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
        .current_dir(dir)
        .args(["build", "--quiet", "--message-format=json-render-diagnostics"])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|error| format!("cannot run cargo: {error}"))?;
    if !output.status.success() {
        return Err("the app does not build (cargo's messages are above)".to_owned());
    }
    // The last executable cargo reports is the app's (its dependencies come first).
    let executable = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact")
        .filter(|message| {
            message["target"]["kind"]
                .as_array()
                .is_some_and(|kinds| kinds.iter().any(|kind| kind == "bin"))
        })
        .filter_map(|message| message["executable"].as_str().map(PathBuf::from))
        .next_back();
    executable.ok_or_else(|| format!("cargo built no binary in {}", dir.display()))
}
