//! Commands that talk to a running app: `task list|run|runs|cancel` and
//! `schedule list|pause|resume`.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use taskyard::run::TaskInfo;
use taskyard::schedule::ScheduleInfo;
use taskyard::{RunRecord, RunStatus};

use crate::client::{CliError, Client};

type Outcome = Result<(), CliError>;

/// A path segment: every byte but unreserved ones (and `:`, common in task names)
/// percent-encoded, so a name can never change the URL's meaning.
fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~:".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn print_json(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
}

/// A record of the app's API, read into its type; a reply that does not fit names what
/// was expected (an app of another version, or not a taskyard app).
fn decode<T: serde::de::DeserializeOwned>(value: &Value, what: &str) -> Result<T, CliError> {
    T::deserialize(value).map_err(|error| {
        CliError::Failed(format!(
            "the app's {what} record does not read as one ({error}); is the app a taskyard app of the same version?"
        ))
    })
}

/// A time, or `-` when there is none.
fn or_dash(time: Option<jiff::Timestamp>) -> String {
    time.map_or_else(|| "-".to_owned(), |time| time.to_string())
}

fn text(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Prints rows as aligned columns under a header.
fn table(header: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut out = String::new();
        for (i, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:width$}  "));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.iter().map(|h| (*h).to_owned()).collect());
    for row in rows {
        line(row);
    }
}

/// The array under `key` of `GET path`, or `None` once it has been printed as JSON or
/// found empty (with `empty` said instead).
fn listing(
    client: &Client,
    path: &str,
    key: &str,
    json: bool,
    empty: &str,
) -> Result<Option<Vec<Value>>, CliError> {
    let mut reply = client.get(path)?;
    let items = match reply[key].take() {
        Value::Array(items) => items,
        _ => Vec::new(),
    };
    if json {
        print_json(&Value::Array(items));
        return Ok(None);
    }
    if items.is_empty() {
        println!("{empty}");
        return Ok(None);
    }
    Ok(Some(items))
}

pub fn task_list(client: &Client, json: bool) -> Outcome {
    let empty = format!("the app at {} has no tasks", client.base());
    let Some(tasks) = listing(client, "/_tasks", "tasks", json, &empty)? else {
        return Ok(());
    };
    let rows = tasks
        .iter()
        .map(|raw| {
            let task: TaskInfo = decode(raw, "task")?;
            let concurrency = serde_json::to_value(task.concurrency).unwrap_or_default();
            Ok(vec![task.name, text(&concurrency["mode"]), task.description])
        })
        .collect::<Result<_, CliError>>()?;
    table(&["TASK", "CONCURRENCY", "DESCRIPTION"], rows);
    Ok(())
}

/// The `--payload` argument: a JSON object, checked before anything is sent.
pub fn parse_payload(payload: Option<&str>) -> Result<Value, CliError> {
    let Some(text) = payload else {
        return Ok(json!({}));
    };
    let value: Value = serde_json::from_str(text)
        .map_err(|error| CliError::Usage(format!("--payload is not valid JSON: {error}; nothing was run")))?;
    if !value.is_object() {
        return Err(CliError::Usage(format!(
            "--payload must be a JSON object such as '{{\"key\": 1}}', not `{text}`; nothing was run"
        )));
    }
    Ok(value)
}

pub fn task_run(client: &Client, name: &str, payload: Value, json: bool) -> Outcome {
    let path = format!("/_tasks/{}/runs?wait=false", segment(name));
    let started = client
        .send("POST", &path, Some(&json!({ "payload": payload })))?
        .map_err(|error| CliError::Failed(format!("cannot run task `{name}`: {}", error.message)))?;
    let run_id = text(&started["run_id"]);
    let progress = Progress::new(name);
    // The stream opens with the run's record and ends when the run finishes; if it
    // breaks, the record is polled instead.
    if let Ok(events) = client.events(&format!("/_tasks/events?run={run_id}")) {
        for (event, data) in events {
            match event.as_str() {
                "run" => progress.update(&data["progress"]),
                "progress" => progress.update(&data),
                "finished" => break,
                _ => {}
            }
        }
    }
    let (raw, record) = loop {
        let raw = client.get(&format!("/_tasks/runs/{run_id}"))?;
        let record: RunRecord = decode(&raw, "run")?;
        if record.status.is_final() {
            break (raw, record);
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    progress.finish();
    if json {
        print_json(&raw);
    }
    if record.status == RunStatus::Succeeded {
        if !json {
            print_json(record.result.as_ref().unwrap_or(&Value::Null));
        }
        Ok(())
    } else {
        Err(CliError::Failed(format!(
            "task `{name}` {} (run {run_id}): {}",
            record.status,
            record.error.as_deref().unwrap_or("-")
        )))
    }
}

/// A run's progress: a bar on a terminal, plain lines otherwise (logs, pipes, tests).
struct Progress {
    bar: Option<ProgressBar>,
    last: std::cell::Cell<Option<u64>>,
}

impl Progress {
    fn new(name: &str) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(100);
            if let Ok(style) = ProgressStyle::with_template("{prefix} [{bar:30}] {pos:>3}% {msg}") {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix(name.to_owned());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Progress {
            bar,
            last: std::cell::Cell::new(None),
        }
    }

    fn update(&self, progress: &Value) {
        let Some(fraction) = progress["fraction"].as_f64() else {
            return;
        };
        let percent = (fraction.clamp(0.0, 1.0) * 100.0).round() as u64;
        let message = progress["message"].as_str().unwrap_or("");
        match &self.bar {
            Some(bar) => {
                bar.set_position(percent);
                bar.set_message(message.to_owned());
            }
            None => {
                if self.last.get() != Some(percent) {
                    eprintln!("progress {percent:>3}% {message}");
                    self.last.set(Some(percent));
                }
            }
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Which runs `task runs` lists.
pub struct RunsFilter<'a> {
    pub task: Option<&'a str>,
    pub status: Option<&'a str>,
    /// Only this schedule's runs.
    pub schedule: Option<&'a str>,
    /// Schedules' runs too (left out otherwise, unless `schedule` asks for them).
    pub all: bool,
    pub limit: usize,
}

pub fn task_runs(client: &Client, filter: &RunsFilter<'_>, json: bool) -> Outcome {
    let mut query = form_urlencoded::Serializer::new(String::new());
    if let Some(task) = filter.task {
        query.append_pair("task", task);
    }
    if let Some(status) = filter.status {
        query.append_pair("status", status);
    }
    match filter.schedule {
        Some(schedule) => {
            query.append_pair("schedule", schedule);
        }
        None if !filter.all => {
            query.append_pair("scheduled", "false");
        }
        None => {}
    }
    query.append_pair("limit", &filter.limit.to_string());
    let path = format!("/_tasks/runs?{}", query.finish());
    let Some(runs) = listing(client, &path, "runs", json, "no runs")? else {
        return Ok(());
    };
    let rows = runs
        .iter()
        .map(|raw| {
            let run: RunRecord = decode(raw, "run")?;
            let trigger = match run.trigger.schedule() {
                Some(schedule) => format!("{} {schedule}", run.trigger.kind()),
                None => run.trigger.kind().to_owned(),
            };
            Ok(vec![
                run.id.to_string(),
                run.task,
                run.status.to_string(),
                trigger,
                or_dash(run.started_at),
                run.duration_ms
                    .map_or_else(|| "-".to_owned(), |ms| format!("{ms} ms")),
            ])
        })
        .collect::<Result<_, CliError>>()?;
    table(&["RUN", "TASK", "STATUS", "TRIGGER", "STARTED", "DURATION"], rows);
    Ok(())
}

pub fn task_cancel(client: &Client, id: &str, json: bool) -> Outcome {
    let reply = client.post(&format!("/_tasks/runs/{}/cancel", segment(id)), None)?;
    if json {
        print_json(&reply);
    } else {
        println!("cancelled run {id}");
    }
    Ok(())
}

/// When and how a durable run waits, as `task enqueue` was asked.
pub struct Enqueue<'a> {
    pub at: Option<&'a str>,
    pub after: Option<&'a str>,
    pub key: Option<&'a str>,
    pub priority: Option<i32>,
}

pub fn task_enqueue(
    client: &Client,
    name: &str,
    payload: Value,
    enqueue: &Enqueue<'_>,
    json: bool,
) -> Outcome {
    let mut body = json!({ "payload": payload, "durable": true });
    for (field, value) in [
        ("run_at", enqueue.at),
        ("delay", enqueue.after),
        ("key", enqueue.key),
    ] {
        if let Some(value) = value {
            body[field] = json!(value);
        }
    }
    if let Some(priority) = enqueue.priority {
        body["priority"] = json!(priority);
    }
    let path = format!("/_tasks/{}/runs?wait=false", segment(name));
    let reply = client
        .send("POST", &path, Some(&body))?
        .map_err(|error| CliError::Failed(format!("cannot enqueue task `{name}`: {}", error.message)))?;
    if json {
        print_json(&reply);
        return Ok(());
    }
    let run_id = text(&reply["run_id"]);
    let when = match (enqueue.at, enqueue.after) {
        (Some(at), _) => format!(", not before {at}"),
        (None, Some(after)) => format!(", in {after}"),
        (None, None) => String::new(),
    };
    if reply["joined"] == json!(true) {
        println!("run {run_id} of {name} was already queued with that key; nothing new was queued");
    } else {
        println!("queued run {run_id} of {name}{when}");
    }
    Ok(())
}

pub fn task_retry(client: &Client, id: &str, json: bool) -> Outcome {
    let reply = client.post(&format!("/_tasks/runs/{}/retry", segment(id)), None)?;
    if json {
        print_json(&reply);
    } else {
        println!("queued run {id} again, as attempt {}", reply["attempt"]);
    }
    Ok(())
}

pub fn schedule_list(client: &Client, json: bool) -> Outcome {
    let empty = format!("the app at {} has no schedules", client.base());
    let Some(schedules) = listing(client, "/_tasks/schedules", "schedules", json, &empty)? else {
        return Ok(());
    };
    let rows = schedules
        .iter()
        .map(|raw| {
            let schedule: ScheduleInfo = decode(raw, "schedule")?;
            let when = match (schedule.cron, schedule.interval_ms) {
                (Some(cron), _) => cron,
                (None, Some(ms)) => format!("every {ms} ms"),
                (None, None) => "-".to_owned(),
            };
            let state = if schedule.paused {
                "paused"
            } else if schedule.disabled {
                "disabled"
            } else {
                "active"
            };
            Ok(vec![
                schedule.name,
                schedule.kind,
                schedule.task,
                when,
                state.to_owned(),
                or_dash(schedule.next),
            ])
        })
        .collect::<Result<_, CliError>>()?;
    table(&["SCHEDULE", "TYPE", "TASK", "WHEN", "STATE", "NEXT"], rows);
    Ok(())
}

pub fn schedule_change(client: &Client, name: &str, pause: bool, json: bool) -> Outcome {
    let action = if pause { "pause" } else { "resume" };
    let info = client.post(&format!("/_tasks/schedules/{}/{action}", segment(name)), None)?;
    if json {
        print_json(&info);
    } else if pause {
        println!("paused schedule {name}");
    } else {
        let info: ScheduleInfo = decode(&info, "schedule")?;
        println!("resumed schedule {name}; next run {}", or_dash(info.next));
    }
    Ok(())
}
