//! The `taskyard` command line.
//!
//! `taskyard tasks [--dir APP] [--json]` lists the tasks an app's `src/tasks/` folder
//! defines, with the files they come from, using the same rules as the build.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "taskyard", version, about = "The taskyard command line")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the tasks defined by files under an app's src/tasks/ folder.
    Tasks {
        /// The app's folder (the one holding Cargo.toml).
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Tasks { dir, json } => list_tasks(dir, json),
    }
}

fn list_tasks(dir: PathBuf, json: bool) -> ExitCode {
    let tasks_dir = dir.join("src").join("tasks");
    let files = match taskyard_build::scan_tasks(&tasks_dir) {
        Ok(files) => files,
        Err(error) => {
            eprintln!("taskyard: {error}");
            return ExitCode::FAILURE;
        }
    };
    let duplicates = taskyard_build::duplicates(&files);
    if json {
        let list: Vec<_> = files
            .iter()
            .map(|f| serde_json::json!({"name": f.name, "file": f.display_path()}))
            .collect();
        println!("{}", serde_json::Value::Array(list));
    } else if files.is_empty() {
        println!("no task files under {}", tasks_dir.display());
    } else {
        let width = files.iter().map(|f| f.name.len()).max().unwrap_or(0);
        for file in &files {
            println!("{:width$}  {}", file.name, file.display_path());
        }
    }
    for (a, b) in &duplicates {
        eprintln!(
            "taskyard: task `{}` is defined by both {} and {}; rename one of them",
            a.name,
            a.display_path(),
            b.display_path()
        );
    }
    if duplicates.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
