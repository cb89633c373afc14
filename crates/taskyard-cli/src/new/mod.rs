//! `taskyard new`: an app that builds and passes its own tests at once, and, inside an
//! app, one file for a task, a route or a schedule.
//!
//! Every name, folder and file is checked before anything is written; nothing is
//! overwritten without `--force`. A refusal names what is wrong and exits with code 2.

mod app;
mod ask;
mod files;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};

/// `taskyard new …`.
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct NewCommand {
    #[command(subcommand)]
    file: Option<FileCommand>,
    #[command(flatten)]
    app: AppArgs,
}

/// `taskyard new NAME`: a new app in the folder NAME.
#[derive(Args)]
pub struct AppArgs {
    /// The app's folder; its last part is the crate's name (letters, digits, `-`, `_`).
    pub name: Option<PathBuf>,
    /// Where run history is kept.
    #[arg(long, value_enum, default_value_t = Store::Sqlite)]
    pub store: Store,
    /// `minimal`: a task, a route, an API route, a middleware and a schedule; `full`: and a
    /// lifecycle task.
    #[arg(long, value_enum, default_value_t = Template::Minimal)]
    pub template: Template,
    /// Take taskyard from this checkout of its repository instead of crates.io.
    #[arg(long, value_name = "REPOSITORY")]
    pub path: Option<PathBuf>,
    /// Ask for the folder (unless named), the store and the template, one answer a line
    /// (from a pipe too). On a terminal, `taskyard new` alone asks.
    #[arg(long)]
    pub ask: bool,
}

/// Where a new app keeps its run history.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Store {
    /// A SQLite file in `.taskyard/` (nothing to set up).
    Sqlite,
    /// PostgreSQL, through `TASKYARD_DATABASE_URL`.
    Postgres,
}

/// How much a new app holds.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Template {
    /// One of each file kind and a schedule.
    Minimal,
    /// The minimal app and a lifecycle task.
    Full,
}

#[derive(Subcommand)]
enum FileCommand {
    /// A task file: `taskyard new task db:backup` writes `src/tasks/db/backup.rs`.
    Task {
        /// The task's name (`:` between folders).
        name: String,
        /// Replace the file if it exists.
        #[arg(long)]
        force: bool,
    },
    /// A route file: `taskyard new route users/[id].get` writes `src/routes/users/[id].get.rs`
    /// (`--api` puts it under `src/api/`).
    Route {
        /// The route's file name without `.rs`, as Nitro names routes.
        path: String,
        /// Under `src/api/`, served at `/api/…`.
        #[arg(long)]
        api: bool,
        /// Replace the file if it exists.
        #[arg(long)]
        force: bool,
    },
    /// A schedule file: `taskyard new schedule nightly --cron "0 3 * * *" --task db:backup`.
    Schedule {
        /// The schedule's name.
        name: String,
        /// When, as a cron expression.
        #[arg(long, conflicts_with = "interval", required_unless_present = "interval")]
        cron: Option<String>,
        /// When, as an interval (`10s`, `5m`, `1h`).
        #[arg(long)]
        interval: Option<String>,
        /// The task it runs.
        #[arg(long)]
        task: String,
        /// Replace the file if it exists.
        #[arg(long)]
        force: bool,
    },
}

/// Runs `taskyard new`; `dir` is the app's folder for the file commands.
pub fn new(dir: Option<PathBuf>, command: NewCommand) -> ExitCode {
    let result = match command.file {
        None => {
            let app = command.app;
            let asking = app.ask || (app.name.is_none() && std::io::stdin().is_terminal());
            let on_terminal = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
            let app = match (asking, on_terminal) {
                (true, true) => ask::ask_on_terminal(app),
                (true, false) => ask::ask(app, &mut std::io::stdin().lock(), &mut std::io::stdout()),
                (false, _) => Ok(app),
            };
            app.and_then(app::create)
        }
        Some(file) => {
            let dir = dir.unwrap_or_else(|| PathBuf::from("."));
            match file {
                FileCommand::Task { name, force } => files::task(&dir, &name, force),
                FileCommand::Route { path, api, force } => files::route(&dir, &path, api, force),
                FileCommand::Schedule {
                    name,
                    cron,
                    interval,
                    task,
                    force,
                } => files::schedule(&dir, &name, cron.as_deref(), interval.as_deref(), &task, force),
            }
        }
    };
    match result {
        Ok(written) => {
            for path in written {
                println!("wrote {}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("taskyard new: {message}");
            ExitCode::from(2)
        }
    }
}

/// Writes `files` (paths relative to `root`) after checking that none exists (unless
/// `force`); either all are written or none.
fn write_all(root: &Path, files: &[(PathBuf, String)], force: bool) -> Result<Vec<PathBuf>, String> {
    if !force && let Some((path, _)) = files.iter().find(|(path, _)| root.join(path).exists()) {
        return Err(format!(
            "{} exists; nothing was written (add --force to replace it)",
            root.join(path).display()
        ));
    }
    let mut written = Vec::new();
    for (path, text) in files {
        let full = root.join(path);
        if let Some(folder) = full.parent() {
            std::fs::create_dir_all(folder)
                .map_err(|e| format!("cannot create {}: {e}", folder.display()))?;
        }
        std::fs::write(&full, text).map_err(|e| format!("cannot write {}: {e}", full.display()))?;
        written.push(full);
    }
    Ok(written)
}
