//! Commands that talk to a running app: `task list|run|runs|cancel` and
//! `schedule list|pause|resume`.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

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
        .map(|task| {
            vec![
                text(&task["name"]),
                text(&task["concurrency"]["mode"]),
                text(&task["description"]),
            ]
        })
        .collect();
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
    let record = loop {
        let record = client.get(&format!("/_tasks/runs/{run_id}"))?;
        if !matches!(record["status"].as_str(), Some("queued" | "running")) {
            break record;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    progress.finish();
    if json {
        print_json(&record);
    }
    if record["status"] == "succeeded" {
        if !json {
            print_json(&record["result"]);
        }
        Ok(())
    } else {
        Err(CliError::Failed(format!(
            "task `{name}` {} (run {run_id}): {}",
            text(&record["status"]),
            text(&record["error"])
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
        .map(|run| {
            let trigger = match run["trigger"]["schedule"].as_str() {
                Some(schedule) => format!("{} {schedule}", text(&run["trigger"]["kind"])),
                None => text(&run["trigger"]["kind"]),
            };
            let duration = run["duration_ms"]
                .as_u64()
                .map(|ms| format!("{ms} ms"))
                .unwrap_or_else(|| "-".to_owned());
            vec![
                text(&run["id"]),
                text(&run["task"]),
                text(&run["status"]),
                trigger,
                text(&run["started_at"]),
                duration,
            ]
        })
        .collect();
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

pub fn schedule_list(client: &Client, json: bool) -> Outcome {
    let empty = format!("the app at {} has no schedules", client.base());
    let Some(schedules) = listing(client, "/_tasks/schedules", "schedules", json, &empty)? else {
        return Ok(());
    };
    let rows = schedules
        .iter()
        .map(|schedule| {
            let when = match (&schedule["cron"], schedule["interval_ms"].as_u64()) {
                (Value::String(cron), _) => cron.clone(),
                (_, Some(ms)) => format!("every {ms} ms"),
                _ => "-".to_owned(),
            };
            let state = if schedule["paused"] == true {
                "paused"
            } else if schedule["disabled"] == true {
                "disabled"
            } else {
                "active"
            };
            vec![
                text(&schedule["name"]),
                text(&schedule["type"]),
                text(&schedule["task"]),
                when,
                state.to_owned(),
                text(&schedule["next"]),
            ]
        })
        .collect();
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
        println!("resumed schedule {name}; next run {}", text(&info["next"]));
    }
    Ok(())
}
