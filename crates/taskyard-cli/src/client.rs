//! Reaching a running app: where it is (`--url`, `TASKYARD_URL`, then the
//! `.taskyard/dev.json` the app writes while it serves), and requests to its task API.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use taskyard::config::{DevInfo, process_alive};

/// What went wrong, and the exit code it means.
#[derive(Debug)]
pub enum CliError {
    /// Bad input or no app to talk to: nothing was run (exit code 2).
    Usage(String),
    /// The app answered with an error, or a run failed (exit code 1).
    Failed(String),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Failed(_) => 1,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            CliError::Usage(message) | CliError::Failed(message) => message,
        }
    }
}

/// An app's task API.
pub struct Client {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
    /// The agent for event streams: no overall timeout, since a run may take hours.
    streaming: ureq::Agent,
}

/// An error the app answered with: its `message`.
pub struct ServerError {
    pub message: String,
}

impl Client {
    /// Finds the app: the URL (from `--url` or `TASKYARD_URL`), else an instance listed in
    /// the dev-info file of the app's folder.
    pub fn discover(finder: Finder) -> Result<Client, CliError> {
        let base = match finder.url.filter(|url| !url.trim().is_empty()) {
            Some(url) => url.trim().trim_end_matches('/').to_owned(),
            None => from_dev_info(finder.dir.as_deref(), finder.instance.as_deref())?,
        };
        if !base.starts_with("http://") && !base.starts_with("https://") {
            return Err(CliError::Usage(format!(
                "the app's URL `{base}` must start with http:// (e.g. http://127.0.0.1:3000)"
            )));
        }
        let token = std::env::var(taskyard::http::TOKEN_VAR)
            .ok()
            .filter(|token| !token.trim().is_empty());
        let config = |timeout: Option<Duration>| {
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_connect(Some(Duration::from_secs(5)))
                .timeout_global(timeout)
                .build()
                .into()
        };
        Ok(Client {
            base,
            token,
            agent: config(Some(Duration::from_secs(60))),
            streaming: config(None),
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn get(&self, path: &str) -> Result<Value, CliError> {
        self.send("GET", path, None).and_then(|reply| self.ok(reply))
    }

    pub fn post(&self, path: &str, body: Option<&Value>) -> Result<Value, CliError> {
        self.send("POST", path, body).and_then(|reply| self.ok(reply))
    }

    /// A request whose error answer the caller wants to read.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Result<Value, ServerError>, CliError> {
        let mut response = self.request(&self.agent, method, path, body)?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .map_err(|error| self.unreachable(error))?;
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if (200..300).contains(&status) {
            return Ok(Ok(body));
        }
        let message = body["message"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("the app answered {status} to {method} {path}"));
        Ok(Err(ServerError { message }))
    }

    fn ok(&self, reply: Result<Value, ServerError>) -> Result<Value, CliError> {
        reply.map_err(|error| CliError::Failed(error.message))
    }

    /// Server-sent events from `path`, as (event name, JSON data), until the stream ends.
    pub fn events(&self, path: &str) -> Result<impl Iterator<Item = (String, Value)>, CliError> {
        let response = self.request(&self.streaming, "GET", path, None)?;
        if response.status().as_u16() != 200 {
            return Err(CliError::Failed(format!(
                "the app answered {} to GET {path}",
                response.status()
            )));
        }
        let reader = BufReader::new(response.into_body().into_reader());
        let mut name = String::from("message");
        Ok(reader.lines().map_while(Result::ok).filter_map(move |line| {
            if let Some(event) = line.strip_prefix("event:") {
                name = event.trim().to_owned();
                None
            } else if let Some(data) = line.strip_prefix("data:") {
                let data = serde_json::from_str(data.trim()).unwrap_or(Value::Null);
                Some((std::mem::replace(&mut name, "message".to_owned()), data))
            } else {
                None
            }
        }))
    }

    fn request(
        &self,
        agent: &ureq::Agent,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<ureq::http::Response<ureq::Body>, CliError> {
        let url = format!("{}{path}", self.base);
        let mut request = ureq::http::Request::builder()
            .method(method)
            .uri(&url)
            .header(taskyard::http::CLIENT_HEADER, "cli")
            .header("accept", "application/json");
        if let Some(token) = &self.token {
            request = request.header("authorization", format!("Bearer {}", token.trim()));
        }
        let built =
            |error: ureq::http::Error| CliError::Usage(format!("cannot build the request to {url}: {error}"));
        let sent = match body {
            Some(body) => request
                .header("content-type", "application/json")
                .body(body.to_string())
                .map_err(built)
                .map(|request| agent.run(request)),
            None => request.body(()).map_err(built).map(|request| agent.run(request)),
        };
        sent?.map_err(|error| self.unreachable(error))
    }

    fn unreachable(&self, error: ureq::Error) -> CliError {
        CliError::Usage(format!(
            "cannot reach the app at {}: {error}; is it running? Start it with `cargo run`, or point --url (or TASKYARD_URL) at it",
            self.base
        ))
    }
}

/// How to find the app: `--url`, `--dir`, `--instance`.
pub struct Finder {
    url: Option<String>,
    dir: Option<PathBuf>,
    instance: Option<String>,
}

impl Finder {
    pub fn new(url: Option<String>, dir: Option<PathBuf>, instance: Option<String>) -> Self {
        Finder { url, dir, instance }
    }
}

/// The URL of a running instance listed in the dev-info file: the one `instance` names
/// (an id or its first characters), else the newest.
fn from_dev_info(dir: Option<&Path>, instance: Option<&str>) -> Result<String, CliError> {
    let Some(path) = find_dev_info(dir) else {
        let place = match dir {
            Some(dir) => format!("no {}", dir.join(".taskyard/dev.json").display()),
            None => "no .taskyard/dev.json in this folder or above".to_owned(),
        };
        return Err(CliError::Usage(format!(
            "no running app found: there is no --url, no TASKYARD_URL and {place}. \
             Start the app (`cargo run`) in its folder, pass --dir APP, or pass --url http://127.0.0.1:3000"
        )));
    };
    let listed = DevInfo::read_all(&path).map_err(CliError::Usage)?;
    let mut live: Vec<DevInfo> = listed
        .iter()
        .filter(|info| process_alive(info.pid))
        .cloned()
        .collect();
    if live.is_empty() {
        let pids: Vec<String> = listed.iter().map(|info| info.pid.to_string()).collect();
        return Err(CliError::Usage(format!(
            "the app that wrote {} (pid {}) is not running; start it again with `cargo run`, or pass --url",
            path.display(),
            pids.join(", ")
        )));
    }
    live.sort_by_key(|info| std::cmp::Reverse(info.started_at));
    let ids = || {
        live.iter()
            .map(|info| format!("{} at {}", info.instance, info.url))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let chosen = match instance {
        Some(wanted) => live
            .iter()
            .find(|info| info.instance.starts_with(wanted))
            .ok_or_else(|| {
                CliError::Usage(format!(
                    "no running instance `{wanted}` in {}; running: {}",
                    path.display(),
                    ids()
                ))
            })?,
        None => {
            if live.len() > 1 {
                eprintln!(
                    "taskyard: {} instances serve from this folder ({}); using the newest, {} (choose with --instance)",
                    live.len(),
                    ids(),
                    live[0].instance
                );
            }
            &live[0]
        }
    };
    Ok(chosen.url.clone())
}

/// `APP/.taskyard/dev.json` for `--dir APP`; else `TASKYARD_DATA_DIR/dev.json` when that is
/// set; else `.taskyard/dev.json` here or in the nearest folder above that has one.
fn find_dev_info(dir: Option<&Path>) -> Option<PathBuf> {
    if let Some(dir) = dir {
        let path = dir.join(".taskyard").join("dev.json");
        return path.is_file().then_some(path);
    }
    if std::env::var_os("TASKYARD_DATA_DIR").is_some_and(|dir| !dir.is_empty()) {
        let path = DevInfo::path();
        return path.is_file().then_some(path);
    }
    let here = std::env::current_dir().ok()?;
    here.ancestors()
        .map(|dir: &Path| dir.join(".taskyard").join("dev.json"))
        .find(|path| path.is_file())
}
