//! `taskyard new task|route|schedule`: one file in an app, named by the same rules the
//! build reads it with, refused when the name cannot be one or clashes with a file the app
//! has.

use std::path::{Path, PathBuf};

use taskyard::schedule::{CronExpr, IntervalSpec};
use taskyard_build::{
    RouteFile, TaskFile, route_conflicts, route_from_file, scan_routes, scan_schedules, scan_tasks, task_name,
};

/// `src/tasks/…/NAME.rs` with a typed payload.
pub fn task(dir: &Path, name: &str, force: bool) -> Result<Vec<PathBuf>, String> {
    check_app(dir)?;
    let relative = file_of(name, "task")?;
    let tasks = scan_tasks(&dir.join("src/tasks")).map_err(|e| e.to_string())?;
    defined_elsewhere(&tasks, name, "task", &Path::new("src/tasks").join(&relative))?;
    let last = name.rsplit(':').next().unwrap_or(name);
    let payload = camel(last);
    let text = format!(
        "//! `{name}`: run it with `taskyard task run {name} --payload '{{\"dry_run\": true}}'`.\n\n\
         use serde::Deserialize;\nuse taskyard::prelude::*;\n\n\
         /// The payload: a payload that does not fit is refused before the task runs, naming\n\
         /// the field.\n#[derive(Deserialize, JsonSchema)]\npub struct {payload} {{\n    \
         /// Only say what would be done.\n    #[serde(default)]\n    pub dry_run: bool,\n}}\n\n\
         pub fn task() -> Task {{\n    Task::new(|_cx: TaskContext, payload: {payload}| async move {{\n        \
         Ok::<_, TaskError>(json!({{ \"dry_run\": payload.dry_run }}))\n    }})\n    \
         .description(\"{name}\")\n}}\n"
    );
    super::write_all(dir, &[(Path::new("src/tasks").join(relative), text)], force)
}

/// `src/routes/PATH.rs` (or `src/api/`), a handler reading its path parameters.
pub fn route(dir: &Path, path: &str, api: bool, force: bool) -> Result<Vec<PathBuf>, String> {
    check_app(dir)?;
    let (folder, prefix) = if api {
        ("src/api", "/api")
    } else {
        ("src/routes", "")
    };
    let relative = PathBuf::from(format!("{path}.rs"));
    let file = Path::new(folder).join(&relative);
    let spec = match route_from_file(&relative, prefix) {
        Ok(Some(spec)) => spec,
        Ok(None) => {
            return Err(format!(
                "`{path}` cannot be a route file's name (a hidden file or no name)"
            ));
        }
        Err(why) => return Err(format!("`{path}` cannot be a route: {why}")),
    };
    let mut files: Vec<RouteFile> = scan_routes(dir)?
        .into_iter()
        .filter(|source| source.path != file)
        .map(|source| source.route)
        .collect();
    let shown = file.display().to_string();
    files.push(RouteFile {
        file: shown.clone(),
        spec: spec.clone(),
    });
    for debug in [true, false] {
        if let Some(conflict) = route_conflicts(&files, debug)
            .into_iter()
            .find(|conflict| conflict.first == shown || conflict.second == shown)
        {
            return Err(format!("{conflict}; nothing was written"));
        }
    }
    let reads: String = spec
        .params
        .iter()
        .map(|param| {
            format!(
                "    let {} = event.param(\"{param}\").unwrap_or_default();\n",
                rust_name(param)
            )
        })
        .collect();
    let path = spec.to_string().replace('{', "{{").replace('}', "}}");
    let shows: Vec<String> = spec
        .params
        .iter()
        .map(|param| format!("{param}={{{}}}", rust_name(param)))
        .collect();
    let message = if shows.is_empty() {
        path
    } else {
        format!("{path}: {}", shows.join(" "))
    };
    let text = format!(
        "//! `{spec}`.\n\nuse taskyard::prelude::*;\n\n\
         pub async fn handler(event: Event) -> String {{\n{reads}    format!(\"{message}\\n\")\n}}\n"
    );
    super::write_all(dir, &[(file, text)], force)
}

/// `src/schedule/NAME.rs`: a `worker` schedule running a task of the app.
pub fn schedule(
    dir: &Path,
    name: &str,
    cron: Option<&str>,
    interval: Option<&str>,
    task: &str,
    force: bool,
) -> Result<Vec<PathBuf>, String> {
    check_app(dir)?;
    let relative = file_of(name, "schedule")?;
    let when = match (cron, interval) {
        (Some(cron), _) => {
            CronExpr::parse(cron).map_err(|why| format!("--cron {why}"))?;
            format!(".cron({cron:?})")
        }
        (None, Some(interval)) => {
            IntervalSpec::Text(interval.to_owned())
                .resolve()
                .map_err(|why| format!("--interval {why}"))?;
            format!(".interval({interval:?})")
        }
        (None, None) => return Err("say when: --cron \"0 3 * * *\" or --interval 10m".to_owned()),
    };
    let tasks = scan_tasks(&dir.join("src/tasks")).map_err(|e| e.to_string())?;
    if !tasks.iter().any(|known| known.name == task) {
        let names: Vec<&str> = tasks.iter().map(|known| known.name.as_str()).collect();
        return Err(format!(
            "no task `{task}` in src/tasks/ (there: {}); add it first with `taskyard new task {task}`",
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            }
        ));
    }
    let schedules = scan_schedules(&dir.join("src/schedule")).map_err(|e| e.to_string())?;
    defined_elsewhere(
        &schedules,
        name,
        "schedule",
        &Path::new("src/schedule").join(&relative),
    )?;
    let config = std::fs::read_to_string(dir.join("taskyard.toml")).unwrap_or_default();
    if config.lines().any(|line| {
        line.trim() == format!("[schedules.{name}]") || line.trim() == format!("[schedules.\"{name}\"]")
    }) {
        return Err(format!(
            "the schedule `{name}` is already defined in taskyard.toml; nothing was written"
        ));
    }
    let text = format!(
        "//! The `{name}` schedule: runs `{task}` once per tick in the cluster.\n\n\
         use taskyard::prelude::*;\n\n\
         pub fn schedule() -> Schedule {{\n    Schedule::worker(){when}.task({task:?})\n}}\n"
    );
    super::write_all(dir, &[(Path::new("src/schedule").join(relative), text)], force)
}

/// Refuses `name` when a file other than `file` already defines it (`db` by `db/index.rs`
/// when `db.rs` is asked for); the same file is the existing-file check's.
fn defined_elsewhere(known: &[TaskFile], name: &str, kind: &str, file: &Path) -> Result<(), String> {
    match known
        .iter()
        .find(|known| known.name == name && Path::new(&known.display_path()) != file)
    {
        Some(existing) => Err(format!(
            "the {kind} `{name}` is already defined by {}; nothing was written",
            existing.display_path()
        )),
        None => Ok(()),
    }
}

/// The app's folder holds a Cargo.toml and `src/`.
fn check_app(dir: &Path) -> Result<(), String> {
    if dir.join("Cargo.toml").is_file() && dir.join("src").is_dir() {
        Ok(())
    } else {
        Err(format!(
            "{} is not an app's folder (no Cargo.toml and src/); run this in the app or pass --dir",
            dir.display()
        ))
    }
}

/// The file (relative to its folder) that the build reads as `name`, or why none does.
fn file_of(name: &str, kind: &str) -> Result<PathBuf, String> {
    let segments: Vec<&str> = name.split(':').collect();
    let valid = segments.iter().all(|segment| {
        segment.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && segment
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    });
    if !valid {
        return Err(format!(
            "`{name}` cannot be a {kind}'s name: use letters, digits, `-` and `_`, with `:` between folders (db:backup)"
        ));
    }
    let relative: PathBuf = segments.iter().collect::<PathBuf>().with_extension("rs");
    match task_name(&relative) {
        Some(read) if read == name => Ok(relative),
        Some(read) => Err(format!(
            "`{name}` would be read as `{read}` (an `index` file names its folder); name it `{read}`"
        )),
        None => Err(format!("`{name}` cannot be a {kind}'s file name")),
    }
}

/// `db-backup` → `DbBackup`.
fn camel(name: &str) -> String {
    let mut out = String::new();
    for part in name.split(['-', '_']).filter(|part| !part.is_empty()) {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            out.extend(first.to_uppercase());
            out.push_str(chars.as_str());
        }
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        format!("Task{out}")
    } else {
        out
    }
}

/// A path parameter as a Rust variable: `user-id` → `user_id`.
fn rust_name(param: &str) -> String {
    param.replace('-', "_")
}
