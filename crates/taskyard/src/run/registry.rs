//! [`Registry`]: every task of an app by name, with where each was defined.

use std::collections::HashMap;
use std::fmt;
use std::panic::Location;
use std::sync::Arc;

use super::Task;
use crate::Error;

/// Where a task was defined, for error messages and listings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskSource {
    /// A file under `src/tasks/`, relative to the app's manifest directory.
    File(String),
    /// A call in code.
    Code(&'static Location<'static>),
}

impl fmt::Display for TaskSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskSource::File(path) => f.write_str(path),
            TaskSource::Code(at) => write!(f, "code at {}:{}:{}", at.file(), at.line(), at.column()),
        }
    }
}

/// A registered task.
#[derive(Debug, Clone)]
pub struct TaskEntry {
    pub(crate) name: Arc<str>,
    pub(crate) task: Task,
    pub(crate) source: TaskSource,
}

impl TaskEntry {
    /// The task's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Its definition.
    pub fn task(&self) -> &Task {
        &self.task
    }
    /// Where it was defined.
    pub fn source(&self) -> &TaskSource {
        &self.source
    }
}

/// All tasks of an app. Names are unique; adding a second definition of a name is an error
/// naming both sources.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    by_name: HashMap<Arc<str>, Arc<TaskEntry>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Registry::default()
    }

    /// Adds a task, refusing invalid and duplicate names.
    pub fn add(&mut self, name: &str, task: Task, source: TaskSource) -> Result<(), Error> {
        validate_name(name, &source)?;
        if let Some(existing) = self.by_name.get(name) {
            return Err(Error::DuplicateTask {
                name: name.to_owned(),
                first: existing.source.to_string(),
                second: source.to_string(),
            });
        }
        let name: Arc<str> = Arc::from(name);
        let entry = TaskEntry {
            name: name.clone(),
            task,
            source,
        };
        self.by_name.insert(name, Arc::new(entry));
        Ok(())
    }

    /// The task named `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<TaskEntry>> {
        self.by_name.get(name)
    }

    /// Tasks sorted by name.
    pub fn entries(&self) -> Vec<&Arc<TaskEntry>> {
        let mut entries: Vec<_> = self.by_name.values().collect();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        entries
    }

    /// How many tasks there are.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// True when there is no task.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

/// A task name is one or more non-empty segments joined by `:`, without whitespace or `/`.
fn validate_name(name: &str, source: &TaskSource) -> Result<(), Error> {
    let bad = name.is_empty()
        || name.split(':').any(str::is_empty)
        || name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '/');
    if bad {
        return Err(Error::InvalidName {
            name: name.to_owned(),
            message: format!(
                "task name `{name}` (from {source}) is not valid: use segments of letters, digits, `-`, `_` or `.` joined by `:`, e.g. `db:migrate`"
            ),
        });
    }
    Ok(())
}

/// A task as the API and the CLI list it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TaskInfo {
    /// Its name.
    pub name: String,
    /// What it does.
    pub description: String,
    /// The JSON Schema of its payload, for a task that takes one.
    pub payload_schema: Option<serde_json::Value>,
    /// How its runs may overlap.
    pub concurrency: crate::Concurrency,
    /// How long an attempt may take, in milliseconds.
    pub timeout_ms: Option<u64>,
    /// How many attempts a run gets in all.
    pub max_attempts: u32,
    /// Whether every run goes through the store.
    #[serde(default)]
    pub durable: bool,
    /// Whether its succeeded durable runs are kept in the history
    /// (`Task::keep_succeeded`).
    #[serde(default = "kept")]
    pub keep_succeeded: bool,
    /// Where it was defined: a file, or code.
    pub source: String,
}

impl TaskEntry {
    /// The task as the API lists it.
    pub fn info(&self) -> TaskInfo {
        let task = self.task();
        TaskInfo {
            name: self.name().to_owned(),
            description: task.get_description().to_owned(),
            payload_schema: task.payload_schema().cloned(),
            concurrency: task.get_concurrency(),
            timeout_ms: task
                .get_timeout()
                .map(|timeout| u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX)),
            max_attempts: task.get_retry().max_attempts(),
            durable: task.is_durable(),
            keep_succeeded: task.keeps_succeeded(),
            source: self.source().to_string(),
        }
    }
}

/// What a listing without `keep_succeeded` means: the default, kept.
fn kept() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{TaskContext, TaskError};

    fn noop() -> Task {
        Task::new(|_cx: TaskContext| async { Ok::<_, TaskError>(()) })
    }

    #[test]
    fn duplicate_names_fail_naming_both_sources() {
        let mut registry = Registry::new();
        registry
            .add(
                "db:migrate",
                noop(),
                TaskSource::File("src/tasks/db/migrate.rs".into()),
            )
            .expect("first");
        let error = registry
            .add("db:migrate", noop(), TaskSource::Code(Location::caller()))
            .expect_err("duplicate");
        let message = error.to_string();
        assert!(
            message.contains("Task `db:migrate` is defined twice"),
            "{message}"
        );
        assert!(message.contains("src/tasks/db/migrate.rs"), "{message}");
        assert!(message.contains(&format!("code at {}:", file!())), "{message}");
    }

    #[test]
    fn invalid_names_are_refused_with_the_rule() {
        let mut registry = Registry::new();
        for name in ["", "db:", ":x", "a b", "a/b"] {
            let error = registry
                .add(name, noop(), TaskSource::Code(Location::caller()))
                .expect_err(name);
            assert!(error.to_string().contains("joined by `:`"), "{error}");
        }
    }
}
