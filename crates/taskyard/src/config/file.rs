//! [`Config`]: the app's `taskyard.toml` as signals that follow the file.
//!
//! Which file: `TASKYARD_CONFIG` if set; otherwise, in debug builds, the `taskyard.toml`
//! the app was built from, if it is still there; otherwise the copy built into the binary
//! (which never changes). A file on disk is watched (with `notify`): when it changes, every
//! signal made from it is updated, and tasks and schedules that track them react. A file that
//! no longer parses, or a value of the wrong type, is reported and the last good values stay.
//! Schedules themselves are read once, at start: changing them needs a restart.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::de::DeserializeOwned;
use toml::{Table, Value};

use crate::sync::lock;
use crate::{Error, Signal};

/// The variable naming a `taskyard.toml` to read and watch.
pub const CONFIG_VAR: &str = "TASKYARD_CONFIG";

/// How long the watcher waits after a change for the writes that follow it (editors save
/// in several steps).
const SETTLE: Duration = Duration::from_millis(50);

type Follower = Box<dyn Fn(&Table) -> Result<(), String> + Send + Sync>;

/// The values of the app's `taskyard.toml`. Cheap to clone; clones share the file.
///
/// ```
/// use taskyard::App;
///
/// let app = App::new().config_toml("taskyard.toml", "[features]\nreports = true\n");
/// let reports = app.config().flag("features.reports");
/// assert!(reports.get());
/// let limit = app.config().signal("limits.batch", 100_u32);
/// assert_eq!(limit.get(), 100); // not in the file: the default
/// ```
#[derive(Clone)]
pub struct Config {
    inner: Arc<Inner>,
}

struct Inner {
    origin: String,
    path: Option<PathBuf>,
    state: Mutex<State>,
}

struct State {
    text: String,
    table: Table,
    followers: Vec<Follower>,
    errors: Vec<Error>,
}

impl Default for Config {
    fn default() -> Self {
        Config::new("taskyard.toml".to_owned(), None, String::new(), Table::new())
    }
}

impl Config {
    fn new(origin: String, path: Option<PathBuf>, text: String, table: Table) -> Self {
        Config {
            inner: Arc::new(Inner {
                origin,
                path,
                state: Mutex::new(State {
                    text,
                    table,
                    followers: Vec::new(),
                    errors: Vec::new(),
                }),
            }),
        }
    }

    /// Values from `text`, named `origin` in messages; not watched.
    pub(crate) fn from_text(origin: &str, text: &str) -> Result<Self, Error> {
        let table = parse(origin, text)?;
        Ok(Config::new(origin.to_owned(), None, text.to_owned(), table))
    }

    /// Values from the file at `path`, watched once the app starts.
    pub(crate) fn from_file(path: &Path) -> Result<Self, Error> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::io(
                format!("reading {origin} (check the path, or unset {CONFIG_VAR})"),
                e,
            )
        })?;
        let table = parse(&origin, &text)?;
        Ok(Config::new(origin, Some(path.to_owned()), text, table))
    }

    /// The file an app built with `embedded` (read from `built_from`) uses: see the module
    /// documentation.
    pub(crate) fn for_app(origin: &str, embedded: &str, built_from: &str) -> Result<Self, Error> {
        if let Some(path) = std::env::var_os(CONFIG_VAR) {
            return Config::from_file(Path::new(&path));
        }
        let source = Path::new(built_from);
        if cfg!(debug_assertions) && source.is_file() {
            return Config::from_file(source);
        }
        Config::from_text(origin, embedded)
    }

    /// Where the values come from (a path, or the name of the built-in copy).
    pub fn origin(&self) -> &str {
        &self.inner.origin
    }

    /// The file that is watched, if the values come from one.
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// The current values, as parsed.
    pub(crate) fn table(&self) -> Table {
        lock(&self.inner.state).table.clone()
    }

    /// A signal holding the value at `key` (dotted: `features.reports`), or `default` while
    /// the key is absent. It follows the file. A value of the wrong type stops the app's
    /// start with the key and the expected type; after a reload it is reported and the last
    /// good value kept.
    pub fn signal<T>(&self, key: &str, default: T) -> Signal<T>
    where
        T: DeserializeOwned + Clone + PartialEq + Send + Sync + 'static,
    {
        let mut state = lock(&self.inner.state);
        let origin = self.inner.origin.clone();
        let fallback = default.clone();
        let read = {
            let key = key.to_owned();
            move |table: &Table| -> Result<T, String> {
                match lookup(table, &key) {
                    None => Ok(default.clone()),
                    Some(value) => value.clone().try_into().map_err(|e: toml::de::Error| {
                        format!(
                            "{origin}: `{key}` must be {}: {}",
                            std::any::type_name::<T>(),
                            e.message()
                        )
                    }),
                }
            }
        };
        let signal = Signal::new(match read(&state.table) {
            Ok(value) => value,
            Err(message) => {
                state.errors.push(Error::ConfigFile {
                    origin: self.inner.origin.clone(),
                    message,
                });
                fallback
            }
        });
        let follower = signal.clone();
        state.followers.push(Box::new(move |table| {
            follower.set(read(table)?);
            Ok(())
        }));
        signal
    }

    /// A `true`/`false` value at `key`, `false` while absent.
    pub fn flag(&self, key: &str) -> Signal<bool> {
        self.signal(key, false)
    }

    /// Errors found while making signals (wrong types), reported when the app starts.
    pub(crate) fn take_errors(&self) -> Vec<Error> {
        std::mem::take(&mut lock(&self.inner.state).errors)
    }

    /// Replaces the values with those of `text`: every signal made from them is updated. On
    /// a parse error nothing changes.
    pub(crate) fn reload(&self, text: &str) -> Result<(), Error> {
        if lock(&self.inner.state).text == text {
            return Ok(());
        }
        let table = parse(&self.inner.origin, text)?;
        let mut state = lock(&self.inner.state);
        for section in ["scheduled_tasks", "schedules"] {
            if state.table.get(section) != table.get(section) {
                tracing::warn!(
                    file = %self.inner.origin,
                    "`{section}` changed; schedules are read at start, so restart the app to apply it"
                );
            }
        }
        let mut failures = Vec::new();
        for follower in &state.followers {
            if let Err(message) = follower(&table) {
                failures.push(message);
            }
        }
        state.text = text.to_owned();
        state.table = table;
        drop(state);
        tracing::info!(file = %self.inner.origin, "configuration reloaded");
        match failures.is_empty() {
            true => Ok(()),
            false => Err(Error::ConfigFile {
                origin: self.inner.origin.clone(),
                message: failures.join("; "),
            }),
        }
    }

    /// Starts watching the file, if the values come from one. The watch ends when the
    /// returned handle is dropped.
    pub(crate) fn watch(&self) -> Result<Option<ConfigWatch>, Error> {
        use notify::Watcher;
        let Some(path) = self.inner.path.clone() else {
            return Ok(None);
        };
        // The folder is watched, not the file: an editor that saves by renaming a new
        // file over the old one would leave a watch on the file itself looking at nothing.
        let folder = match path.parent() {
            Some(folder) if !folder.as_os_str().is_empty() => folder.to_owned(),
            _ => PathBuf::from("."),
        };
        let name = path.file_name().map(|n| n.to_owned());
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if let Ok(event) = event
                && event.paths.iter().any(|p| p.file_name() == name.as_deref())
            {
                let _ = tx.send(());
            }
        })
        .map_err(|e| watch_error(&path, e))?;
        watcher
            .watch(&folder, notify::RecursiveMode::NonRecursive)
            .map_err(|e| watch_error(&path, e))?;
        let config = self.clone();
        let task = tokio::spawn(async move {
            while rx.recv().await.is_some() {
                tokio::time::sleep(SETTLE).await;
                while rx.try_recv().is_ok() {}
                match tokio::fs::read_to_string(&path).await {
                    Ok(text) => {
                        if let Err(error) = config.reload(&text) {
                            tracing::error!(%error, "the changed configuration was not applied in full; the last good values stay");
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, file = %path.display(), "cannot read the changed configuration; the last values stay");
                    }
                }
            }
        });
        Ok(Some(ConfigWatch {
            _watcher: watcher,
            task,
        }))
    }
}

/// A running watch of the configuration file; dropping it stops the watch.
pub(crate) struct ConfigWatch {
    _watcher: notify::RecommendedWatcher,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ConfigWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn parse(origin: &str, text: &str) -> Result<Table, Error> {
    text.parse().map_err(|e: toml::de::Error| Error::ConfigFile {
        origin: origin.to_owned(),
        message: format!("{origin}: {e}"),
    })
}

fn lookup<'a>(table: &'a Table, key: &str) -> Option<&'a Value> {
    let mut parts = key.split('.');
    let mut value = table.get(parts.next()?)?;
    for part in parts {
        value = value.as_table()?.get(part)?;
    }
    Some(value)
}

fn watch_error(path: &Path, error: notify::Error) -> Error {
    Error::ConfigFile {
        origin: path.display().to_string(),
        message: format!("cannot watch {} for changes: {error}", path.display()),
    }
}
