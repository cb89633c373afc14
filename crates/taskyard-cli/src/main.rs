//! The `taskyard` command line.
//!
//! - `taskyard tasks [--dir APP] [--json]` lists the tasks an app's `src/tasks/` folder
//!   defines, with the files they come from, using the same rules as the build.
//! - `taskyard cron next EXPR [-n N] [--from RFC3339] [--tz ZONE] [--json]` prints the next
//!   fire times of a cron expression, computed exactly as the scheduler does.
//! - `taskyard cron explain EXPR [--tz ZONE] [--json]` describes it in words, with its next 5
//!   times.
//! - `taskyard task list|run|runs|cancel` and `taskyard schedule list|pause|resume` talk to a
//!   running app, found through `--url`, `TASKYARD_URL`, then the `.taskyard/dev.json` the
//!   app writes while it serves (in `--dir APP`, or this folder or the nearest above). When
//!   several instances serve from one folder, `--instance ID` picks one, else the newest.
//!   `TASKYARD_TASKS_TOKEN` is sent as the bearer token.
//!
//! - `taskyard export crontab|systemd|kubernetes|cloudflare|vercel [--schedule NAME]` builds
//!   the app in `--dir` and prints its schedules for that platform's scheduler, exactly or
//!   refused with the reason (the app's own `APP export`).
//!
//! - `taskyard new NAME [--store sqlite|postgres] [--template minimal|full] [--path REPO]`
//!   writes an app that builds and passes its tests; inside an app, `taskyard new task
//!   NAME`, `new route PATH [--api]`, `new schedule NAME --cron EXPR|--interval I --task T`
//!   add one file each.
//!
//! - `taskyard dev [--port P]` serves the app in `--dir` while you edit it (see `dev`).
//!
//! Exit codes: 0 done, 1 the app refused or the run failed, 2 bad input or no app found.

mod client;
mod dev;
mod export;
mod new;
mod remote;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use taskyard::schedule::CronExpr;

use crate::client::{CliError, Client, Finder};

#[derive(Parser)]
#[command(name = "taskyard", version, about = "The taskyard command line")]
struct Cli {
    /// The running app's URL (default: TASKYARD_URL, then .taskyard/dev.json).
    #[arg(long, global = true, env = "TASKYARD_URL")]
    url: Option<String>,
    /// The app's folder (the one holding Cargo.toml and .taskyard/); default: this folder,
    /// or for a running app the nearest one above with a .taskyard/dev.json.
    #[arg(long, global = true)]
    dir: Option<PathBuf>,
    /// With several instances serving from one folder, the one to talk to (an instance id,
    /// or its first characters); default: the newest.
    #[arg(long, global = true)]
    instance: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the tasks defined by files under an app's src/tasks/ folder.
    Tasks {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Work with cron expressions (croner syntax: 5, 6 or 7 fields).
    Cron {
        #[command(subcommand)]
        command: CronCommand,
    },
    /// Run and inspect tasks of a running app.
    Task {
        #[command(subcommand)]
        command: TaskCommand,
    },
    /// List, pause and resume the schedules of a running app.
    Schedule {
        #[command(subcommand)]
        command: ScheduleCommand,
    },
    /// Print the app's schedules for a platform's scheduler (crontab, systemd, kubernetes,
    /// cloudflare, vercel): builds the app in --dir and runs its own `export`.
    Export(export::ExportCommand),
    /// A new app (`taskyard new my-app [--store sqlite|postgres] [--template minimal|full]`),
    /// or inside an app one file: `new task NAME`, `new route PATH`, `new schedule NAME`.
    New(new::NewCommand),
    /// Serve the app in --dir while you edit it: builds on every change, swaps the new
    /// process in without refusing a connection, shows build errors in the browser.
    Dev(dev::DevCommand),
}

#[derive(Subcommand)]
enum TaskCommand {
    /// List the app's tasks.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run a task, showing its progress, and print its result.
    Run {
        /// The task's name, e.g. db:migrate.
        name: String,
        /// The payload, a JSON object: --payload '{"dry_run": true}'.
        #[arg(long)]
        payload: Option<String>,
        /// Print the whole run record as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Queue a durable run: stored before this returns, run by any live instance, now or
    /// later.
    Enqueue {
        /// The task's name, e.g. email:send.
        name: String,
        /// The payload, a JSON object: --payload '{"to": "ada@example.com"}'.
        #[arg(long)]
        payload: Option<String>,
        /// Not before this time (RFC 3339 with its offset): --at 2026-12-01T09:00:00Z.
        #[arg(long, conflicts_with = "after")]
        at: Option<String>,
        /// Not before this long from now: --in 10m (ms, s, m, h, d).
        #[arg(long = "in", value_name = "DURATION")]
        after: Option<String>,
        /// One queued or running run of the task per key: --key welcome:ada.
        #[arg(long)]
        key: Option<String>,
        /// Higher runs first among those due (-100 to 100).
        #[arg(long, allow_negative_numbers = true)]
        priority: Option<i32>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Queue a run that failed, timed out, was cancelled or abandoned again, as its next
    /// attempt.
    Retry {
        /// The run's id.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List recorded runs, newest first.
    Runs {
        /// Only this task's runs.
        #[arg(long)]
        task: Option<String>,
        /// Only runs with this status (queued, running, succeeded, failed, cancelled, timed_out, abandoned).
        #[arg(long)]
        status: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Include runs started by schedules (left out by default, so your own runs stay
        /// in view).
        #[arg(long)]
        all: bool,
        /// Only the runs of this schedule.
        #[arg(long)]
        schedule: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Cancel a queued or running run.
    Cancel {
        /// The run's id.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ScheduleCommand {
    /// List the schedules with their next fire times.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop a schedule's timer (on the instance answering).
    Pause {
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Restart a paused schedule's timer.
    Resume {
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum CronCommand {
    /// Print the next fire times of EXPR.
    Next {
        /// The cron expression, quoted: "*/5 * * * *".
        expr: String,
        /// How many times to print.
        #[arg(short = 'n', default_value_t = 5)]
        count: usize,
        /// Start after this instant (RFC 3339, e.g. 2026-03-08T00:00:00Z) instead of now.
        #[arg(long)]
        from: Option<String>,
        /// IANA time zone the expression is read in (default: TZ, else UTC).
        #[arg(long)]
        tz: Option<String>,
        /// Print a JSON array of RFC 3339 timestamps.
        #[arg(long)]
        json: bool,
    },
    /// Describe EXPR in words and print its next 5 fire times.
    Explain {
        expr: String,
        #[arg(long)]
        tz: Option<String>,
        /// Start after this instant (RFC 3339) instead of now.
        #[arg(long)]
        from: Option<String>,
        /// Print {"expression", "description", "time_zone", "next": [RFC 3339, …]}.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Tasks { json } => return list_tasks(cli.dir.unwrap_or_else(|| PathBuf::from(".")), json),
        Command::Export(args) => return export::export(&cli.dir.unwrap_or_else(|| PathBuf::from(".")), args),
        Command::New(command) => return new::new(cli.dir, command),
        Command::Dev(command) => return dev::dev(cli.dir, command),
        Command::Cron { command } => match command {
            CronCommand::Next {
                expr,
                count,
                from,
                tz,
                json,
            } => cron_next(&expr, count, from.as_deref(), tz.as_deref(), json),
            CronCommand::Explain { expr, tz, from, json } => {
                cron_explain(&expr, from.as_deref(), tz.as_deref(), json)
            }
        }
        .map_err(CliError::Usage),
        Command::Task { command } => run_task_command(Finder::new(cli.url, cli.dir, cli.instance), command),
        Command::Schedule { command } => {
            run_schedule_command(Finder::new(cli.url, cli.dir, cli.instance), command)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("taskyard: {}", error.message());
            ExitCode::from(error.exit_code())
        }
    }
}

fn run_task_command(finder: Finder, command: TaskCommand) -> Result<(), CliError> {
    // The payload is checked before the app is even looked for.
    let payload = match &command {
        TaskCommand::Run { payload, .. } | TaskCommand::Enqueue { payload, .. } => {
            remote::parse_payload(payload.as_deref())?
        }
        _ => serde_json::Value::Null,
    };
    let client = Client::discover(finder)?;
    match command {
        TaskCommand::List { json } => remote::task_list(&client, json),
        TaskCommand::Run { name, json, .. } => remote::task_run(&client, &name, payload, json),
        TaskCommand::Runs {
            task,
            status,
            limit,
            all,
            schedule,
            json,
        } => {
            let filter = remote::RunsFilter {
                task: task.as_deref(),
                status: status.as_deref(),
                schedule: schedule.as_deref(),
                all,
                limit,
            };
            remote::task_runs(&client, &filter, json)
        }
        TaskCommand::Cancel { id, json } => remote::task_cancel(&client, &id, json),
        TaskCommand::Enqueue {
            name,
            at,
            after,
            key,
            priority,
            json,
            ..
        } => {
            let when = remote::Enqueue {
                at: at.as_deref(),
                after: after.as_deref(),
                key: key.as_deref(),
                priority,
            };
            remote::task_enqueue(&client, &name, payload, &when, json)
        }
        TaskCommand::Retry { id, json } => remote::task_retry(&client, &id, json),
    }
}

fn run_schedule_command(finder: Finder, command: ScheduleCommand) -> Result<(), CliError> {
    let client = Client::discover(finder)?;
    match command {
        ScheduleCommand::List { json } => remote::schedule_list(&client, json),
        ScheduleCommand::Pause { name, json } => remote::schedule_change(&client, &name, true, json),
        ScheduleCommand::Resume { name, json } => remote::schedule_change(&client, &name, false, json),
    }
}

/// The expression, its zone and the first instant to search from, checked.
fn cron_input(
    expr: &str,
    from: Option<&str>,
    tz: Option<&str>,
) -> Result<(CronExpr, TimeZone, Timestamp), String> {
    let cron = CronExpr::parse(expr).map_err(|e| format!("cron {e}"))?;
    let zone = match tz {
        Some(name) => taskyard::config::time_zone(name)?,
        None => taskyard::config::default_time_zone().map_err(|e| e.to_string())?,
    };
    let from = match from {
        Some(text) => text.parse::<Timestamp>().map_err(|_| {
            format!("--from `{text}` is not an RFC 3339 instant such as 2026-03-08T00:00:00Z")
        })?,
        None => Timestamp::now(),
    };
    Ok((cron, zone, from))
}

fn next_times(cron: &CronExpr, zone: &TimeZone, mut from: Timestamp, count: usize) -> Vec<String> {
    let mut times = Vec::with_capacity(count);
    while times.len() < count {
        let Some(next) = cron.next_after(from, zone) else {
            break;
        };
        times.push(
            next.to_zoned(zone.clone())
                .strftime("%Y-%m-%dT%H:%M:%S%:z")
                .to_string(),
        );
        from = next;
    }
    times
}

fn cron_next(
    expr: &str,
    count: usize,
    from: Option<&str>,
    tz: Option<&str>,
    json: bool,
) -> Result<(), String> {
    let (cron, zone, from) = cron_input(expr, from, tz)?;
    let times = next_times(&cron, &zone, from, count);
    if json {
        println!("{}", serde_json::Value::from(times));
    } else if times.is_empty() {
        println!("`{expr}` never fires after {from}");
    } else {
        for time in times {
            println!("{time}");
        }
    }
    Ok(())
}

fn cron_explain(expr: &str, from: Option<&str>, tz: Option<&str>, json: bool) -> Result<(), String> {
    let (cron, zone, from) = cron_input(expr, from, tz)?;
    let zone_name = zone.iana_name().unwrap_or("UTC");
    let times = next_times(&cron, &zone, from, 5);
    if json {
        let explained = serde_json::json!({
            "expression": expr,
            "description": cron.describe(),
            "time_zone": zone_name,
            "next": times,
        });
        println!("{explained}");
        return Ok(());
    }
    println!("{}", cron.describe());
    if times.is_empty() {
        println!("It never fires after {from}.");
    } else {
        println!("Next {} times ({zone_name}):", times.len());
        for time in times {
            println!("  {time}");
        }
    }
    Ok(())
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
