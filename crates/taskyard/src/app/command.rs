//! The app binary's own command line ([`App::main`]): serve, run a task or fire a
//! schedule's tick in-process, and export schedules for a platform's scheduler.
//!
//! ```text
//! APP                          serve (as `APP serve`)
//! APP task run TASK [--payload JSON] [--schedule NAME --tick auto|TIME]
//! APP export TARGET [--schedule NAME] [--bin PATH] [--workdir DIR] [--image IMAGE] [--out DIR]
//! ```
//!
//! Exit codes: 0 done (a tick already claimed, skipped or paused included), 1 the run
//! failed or the app could not start, 2 bad input (an unknown command, schedule or target,
//! a schedule the target cannot take exactly).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use jiff::Timestamp;

use super::App;
use crate::schedule::export::{Export, ExportError, ExportOptions, Target};
use crate::schedule::{Fired, TickAt};
use crate::{Error, ErrorKind, RunRequest, Trigger};

#[derive(Parser)]
#[command(about = "A taskyard app: serves HTTP, runs its tasks and exports its schedules")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve HTTP on HOST:PORT (what the app does without a command).
    Serve,
    /// Run one of the app's tasks here, in this process, against its store.
    Task {
        #[command(subcommand)]
        command: TaskCommand,
    },
    /// Print the app's schedules for a platform's scheduler: crontab, systemd, kubernetes,
    /// cloudflare or vercel.
    Export(ExportArgs),
}

#[derive(Subcommand)]
enum TaskCommand {
    /// Run TASK once and print its result; with --schedule, fire that schedule's tick.
    Run {
        /// The task's name (with --schedule, the schedule's own task).
        task: String,
        /// The payload, a JSON object (not with --schedule: the schedule's payload is used).
        #[arg(long, conflicts_with = "schedule")]
        payload: Option<String>,
        /// Fire this schedule's tick: claimed in the ledger, so a second fire of the same
        /// tick runs nothing.
        #[arg(long)]
        schedule: Option<String>,
        /// Which tick: `auto` (the latest due now) or its time (RFC 3339 or Unix
        /// milliseconds).
        #[arg(long, requires = "schedule", default_value = "auto")]
        tick: String,
    },
}

/// The options of `APP export` (and of `taskyard export`, which passes them on).
#[derive(Debug, Clone, clap::Args)]
pub struct ExportArgs {
    /// crontab, systemd, kubernetes, cloudflare or vercel.
    pub target: String,
    /// Only this schedule.
    #[arg(long)]
    pub schedule: Option<String>,
    /// The app's binary as the platform runs it (default: this binary's path; for
    /// kubernetes, its file name, found on the image's PATH).
    #[arg(long)]
    pub bin: Option<String>,
    /// The folder the command runs in, holding `.taskyard/` (default: this one).
    #[arg(long)]
    pub workdir: Option<String>,
    /// The container image (kubernetes; default: the app's name and version).
    #[arg(long)]
    pub image: Option<String>,
    /// Write the files into this folder instead of printing them (existing files are
    /// left alone unless --force).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// With --out, replace files that exist.
    #[arg(long, requires = "out")]
    pub force: bool,
}

impl ExportArgs {
    /// The same options as command-line arguments, after `export`.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = vec![self.target.clone()];
        let out = self.out.as_ref().map(|out| out.display().to_string());
        for (flag, value) in [
            ("--schedule", &self.schedule),
            ("--bin", &self.bin),
            ("--workdir", &self.workdir),
            ("--image", &self.image),
            ("--out", &out),
        ] {
            if let Some(value) = value {
                args.extend([flag.to_owned(), value.clone()]);
            }
        }
        if self.force {
            args.push("--force".to_owned());
        }
        args
    }
}

impl App {
    /// Serves the app, or runs the command its process was started with (`APP task run …`,
    /// `APP export …`, `APP --help`), and returns the exit code. What a generated
    /// `main.rs` calls.
    pub async fn main(self) -> ExitCode {
        let cli = match Cli::try_parse() {
            Ok(cli) => cli,
            Err(error) => {
                let code = if error.use_stderr() { 2 } else { 0 };
                let _ = error.print();
                return ExitCode::from(code);
            }
        };
        let (name, outcome) = match cli.command {
            None | Some(Command::Serve) => ("serve", self.serve().await.map(|()| ExitCode::SUCCESS)),
            Some(Command::Task {
                command:
                    TaskCommand::Run {
                        task,
                        payload,
                        schedule,
                        tick,
                    },
            }) => (
                "task run",
                self.run_command(&task, payload, schedule, &tick).await,
            ),
            Some(Command::Export(args)) => ("export", self.export_command(args)),
        };
        match outcome {
            Ok(code) => code,
            Err(error) => {
                eprintln!("{name}: {error}");
                ExitCode::from(exit_code(&error))
            }
        }
    }

    /// This app's schedules (those of this `TASKYARD_ENV`) written for a platform's
    /// scheduler, or every schedule the target cannot take exactly, each with why.
    pub fn export(mut self, options: &ExportOptions, only: Option<&str>) -> Result<Export, ExportError> {
        let errors: Vec<Error> = std::mem::take(&mut self.errors);
        if let Some(error) = errors.into_iter().chain(self.config.take_errors()).next() {
            return Err(error.into());
        }
        let (_, mut defs) = self.checked_schedules()?;
        if let Some(only) = only {
            defs.retain(|def| &*def.name == only);
            if defs.is_empty() {
                return Err(Error::ScheduleNotFound(only.to_owned()).into());
            }
        }
        crate::schedule::export::export(&defs, options).map_err(|refusals| ExportError::Refused {
            target: options.target,
            refusals,
        })
    }

    fn export_command(self, args: ExportArgs) -> Result<ExitCode, Error> {
        let target: Target = args.target.parse().map_err(|message| Error::Usage { message })?;
        let app = self.http.package.0.clone();
        let version = self.http.package.1.clone();
        let here = std::env::current_dir().map_err(|e| Error::io("reading the current folder", e))?;
        let exe = std::env::current_exe().map_err(|e| Error::io("finding this binary's path", e))?;
        let bin = match args.bin {
            Some(bin) => bin,
            // In an image the binary is found on its PATH, by name.
            None if target == Target::Kubernetes => exe
                .file_name()
                .map_or_else(|| app.clone(), |name| name.to_string_lossy().into_owned()),
            None => exe.display().to_string(),
        };
        let options = ExportOptions {
            target,
            image: args.image.unwrap_or_else(|| format!("{app}:{version}")),
            app,
            bin,
            workdir: args.workdir.unwrap_or_else(|| here.display().to_string()),
            now: Timestamp::now(),
        };
        let export = match self.export(&options, args.schedule.as_deref()) {
            Ok(export) => export,
            Err(ExportError::Invalid(error)) => return Err(error),
            Err(refused) => {
                eprintln!("export: {refused}");
                return Ok(ExitCode::from(2));
            }
        };
        for note in &export.notes {
            eprintln!("note: {note}");
        }
        match args.out {
            None => print!("{}", export.to_text()),
            Some(out) => write_files(&export, &out, args.force)?,
        }
        Ok(ExitCode::SUCCESS)
    }

    async fn run_command(
        self,
        task: &str,
        payload: Option<String>,
        schedule: Option<String>,
        tick: &str,
    ) -> Result<ExitCode, Error> {
        let payload = match payload {
            Some(text) => serde_json::from_str(&text).map_err(|e| Error::Usage {
                message: format!("--payload is not JSON: {e}"),
            })?,
            None => serde_json::Value::Object(Default::default()),
        };
        let tick = TickAt::parse(tick)?;
        let app = self.start_with(false).await?;
        let outcome = match schedule {
            None => {
                let request = RunRequest::new(task).payload(payload).trigger(Trigger::Cli);
                match app.runtime().start(request).await {
                    Ok(handle) => report(handle).await,
                    Err(error) => Err(error),
                }
            }
            Some(schedule) => fire(&app, task, &schedule, tick).await,
        };
        app.shutdown().await;
        outcome
    }
}

/// Fires a schedule's tick and reports what came of it.
async fn fire(app: &super::RunningApp, task: &str, schedule: &str, tick: TickAt) -> Result<ExitCode, Error> {
    let info = app.scheduler().get(schedule)?;
    if info.task != task {
        return Err(Error::InvalidSchedule {
            schedule: schedule.to_owned(),
            message: format!("it runs task `{}`, not `{task}`", info.task),
        });
    }
    match app.scheduler().fire(schedule, tick).await? {
        Fired::Started { tick, handle } => {
            println!(
                "schedule {schedule}: tick {tick} claimed, run {}",
                handle.run_id()
            );
            report(handle).await
        }
        Fired::Claimed { tick } => {
            println!("schedule {schedule}: tick {tick} was already claimed; nothing to do");
            Ok(ExitCode::SUCCESS)
        }
        Fired::Inactive { tick, state } => {
            println!("schedule {schedule}: tick {tick} not run, the schedule is {state}");
            Ok(ExitCode::SUCCESS)
        }
        Fired::Skipped { tick, previous_run } => {
            if previous_run.is_empty() {
                println!("schedule {schedule}: tick {tick} skipped, another tick's run is starting");
            } else {
                println!("schedule {schedule}: tick {tick} skipped, run {previous_run} still goes on");
            }
            Ok(ExitCode::SUCCESS)
        }
        Fired::NoTick => {
            println!("schedule {schedule}: no tick is due now");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Waits for a run and prints its result (stdout) or its error (stderr).
async fn report(handle: crate::RunHandle) -> Result<ExitCode, Error> {
    let run_id = handle.run_id();
    match handle.outcome().await {
        Ok(result) => {
            println!("{}", serde_json::to_string(&result).unwrap_or_default());
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!("run {run_id}: {error}");
            Ok(ExitCode::from(1))
        }
    }
}

fn write_files(export: &Export, out: &Path, force: bool) -> Result<(), Error> {
    let paths: Vec<PathBuf> = export.files.iter().map(|file| out.join(&file.name)).collect();
    if !force && let Some(existing) = paths.iter().find(|path| path.exists()) {
        return Err(Error::Usage {
            message: format!(
                "{} exists; nothing was written (add --force to replace it)",
                existing.display()
            ),
        });
    }
    for (file, path) in export.files.iter().zip(&paths) {
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder)
                .map_err(|e| Error::io(format!("creating {}", folder.display()), e))?;
        }
        std::fs::write(path, &file.text).map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// 2 for bad input, 1 for everything else.
fn exit_code(error: &Error) -> u8 {
    match error.kind() {
        ErrorKind::InvalidInput | ErrorKind::NotFound => 2,
        _ => 1,
    }
}
