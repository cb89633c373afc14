//! Finding task files and naming them.

use std::fmt;
use std::path::{Component, Path, PathBuf};

/// A task file found under `src/tasks/` (or a schedule file under `src/schedule/`, named
/// by the same rules).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFile {
    /// The task name, e.g. `db:migrate`.
    pub name: String,
    /// The file, relative to the crate root, e.g. `src/tasks/db/migrate.rs`.
    pub path: PathBuf,
}

impl TaskFile {
    /// The path with `/` separators, as shown in messages.
    pub fn display_path(&self) -> String {
        self.path
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/")
    }
}

/// A task folder that cannot be read.
#[derive(Debug)]
pub struct ScanError {
    /// The folder or file.
    pub path: PathBuf,
    /// The operating system's error.
    pub source: std::io::Error,
}

impl fmt::Display for ScanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot read {}: {}", self.path.display(), self.source)
    }
}

impl std::error::Error for ScanError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// The task name for a path relative to `src/tasks/`, or `None` if it is not a task file
/// (not `.rs`, or hidden).
///
/// ```
/// use std::path::Path;
/// use taskyard_build::task_name;
///
/// assert_eq!(task_name(Path::new("db/migrate.rs")).as_deref(), Some("db:migrate"));
/// assert_eq!(task_name(Path::new("db/index.rs")).as_deref(), Some("db"));
/// assert_eq!(task_name(Path::new("notes.md")), None);
/// ```
pub fn task_name(relative: &Path) -> Option<String> {
    if relative.extension()? != "rs" {
        return None;
    }
    let mut segments = Vec::new();
    for component in relative.components() {
        match component {
            Component::Normal(part) => {
                let part = part.to_str()?;
                if part.starts_with('.') {
                    return None;
                }
                segments.push(part);
            }
            _ => return None,
        }
    }
    let last = segments.pop()?;
    let stem = last.strip_suffix(".rs")?;
    // `index.rs` names its folder (Nitro names it `folder:index`, which nobody wants).
    if stem != "index" || segments.is_empty() {
        segments.push(stem);
    }
    Some(segments.join(":"))
}

/// Every task file under `tasks_dir` (which sits in `src/` of the crate), sorted by name
/// then path.
/// A missing folder means no tasks.
pub fn scan_tasks(tasks_dir: &Path) -> Result<Vec<TaskFile>, ScanError> {
    scan_folder(tasks_dir, "tasks")
}

/// Every schedule file under `schedule_dir` (`src/schedule/` of the crate), named like
/// task files: `src/schedule/cleandb.rs` is the schedule `cleandb`.
pub fn scan_schedules(schedule_dir: &Path) -> Result<Vec<TaskFile>, ScanError> {
    scan_folder(schedule_dir, "schedule")
}

fn scan_folder(dir: &Path, folder: &str) -> Result<Vec<TaskFile>, ScanError> {
    let mut relative = Vec::new();
    walk_files(dir, dir, &mut relative)?;
    let prefix = Path::new("src").join(folder);
    let mut files: Vec<TaskFile> = relative
        .into_iter()
        .filter_map(|relative| {
            let name = task_name(&relative)?;
            Some(TaskFile {
                name,
                path: prefix.join(relative),
            })
        })
        .collect();
    files.sort_by_cached_key(|f| (f.name.clone(), f.display_path()));
    Ok(files)
}

/// Every file below `dir` (which is `root` or a folder in it), as paths relative to `root`,
/// skipping hidden folders. A missing `root` holds no files.
pub(crate) fn walk_files(root: &Path, dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), ScanError> {
    if !dir.is_dir() {
        return Ok(());
    }
    let error = |source| ScanError {
        path: dir.to_owned(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(error)? {
        let entry = entry.map_err(error)?;
        let path = entry.path();
        if entry.file_type().map_err(error)?.is_dir() {
            if !entry.file_name().to_string_lossy().starts_with('.') {
                walk_files(root, &path, files)?;
            }
        } else if let Ok(relative) = path.strip_prefix(root) {
            files.push(relative.to_owned());
        }
    }
    Ok(())
}
