//! Settings read from the environment, in one place.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `PORT` | `3000` | port to listen on |
//! | `HOST` | `127.0.0.1` | address to listen on |
//! | `TASKYARD_DATA_DIR` | `./.taskyard` | folder for the SQLite file and logs |
//! | `TASKYARD_DATABASE_URL` | unset | `postgres://…` to share history through PostgreSQL; `sqlite://PATH` (`?synchronous=full` to sync each commit) or `memory:` |
//! | `TASKYARD_ENV` | `development` in debug builds, `production` in release builds | the app's environment, matched by a schedule's `env` list |
//! | `TZ` | `UTC` | default time zone of cron schedules (an IANA name) |
//! | `TASKYARD_TASKS_TOKEN` | unset | in production, turns the task endpoints on and is the bearer token they require |
//! | `TASKYARD_CONFIG` | unset | a `taskyard.toml` to read and watch instead of the copy built into the app |
//! | `TASKYARD_MAX_CONNECTIONS` | `1024` | most HTTP connections open at once |
//! | `TASKYARD_HEADER_READ_TIMEOUT_MS` | `10000` | longest wait for a request's head |
//! | `TASKYARD_UI` | `on` | the dashboard at `/_tasks/ui`: `on`, `readonly` or `off` |
//! | `TASKYARD_SQLITE_SYNCHRONOUS` | `normal` | when an SQLite commit is on disk: at the next checkpoint (`normal`) or before it returns (`full`) |
//!
//! The app's own `taskyard.toml` is read through [`Config`] (`file.rs`); where a serving
//! app can be reached is in [`DevInfo`] (`dev_info.rs`).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use crate::Error;

mod dashboard;
mod dev_info;
mod file;
mod limits;
mod sqlite_sync;

pub use self::dashboard::{DASHBOARD_VAR, Dashboard};
pub use self::dev_info::{DevInfo, process_alive};
pub(crate) use self::file::ConfigWatch;
pub use self::file::{CONFIG_VAR, Config};
pub use self::limits::{ServerLimits, server_limits};
pub use self::sqlite_sync::{SQLITE_SYNC_VAR, SqliteSync};

/// The folder that holds the app's state.
pub fn data_dir() -> PathBuf {
    std::env::var_os("TASKYARD_DATA_DIR")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".taskyard"))
}

/// The address to listen on, from `HOST` and `PORT`.
pub fn listen_addr() -> Result<SocketAddr, Error> {
    let host = match std::env::var("HOST") {
        Ok(host) if !host.trim().is_empty() => host.trim().parse::<IpAddr>().map_err(|_| Error::Env {
            var: "HOST",
            message: format!("HOST `{host}` is not an IP address; use e.g. 127.0.0.1 or 0.0.0.0"),
        })?,
        _ => IpAddr::from([127, 0, 0, 1]),
    };
    let port = match std::env::var("PORT") {
        Ok(port) if !port.trim().is_empty() => port.trim().parse::<u16>().map_err(|_| Error::Env {
            var: "PORT",
            message: format!("PORT `{port}` is not a port number; use a number from 0 to 65535"),
        })?,
        _ => 3000,
    };
    Ok(SocketAddr::new(host, port))
}

/// The app's environment: `TASKYARD_ENV`, else `development` in debug builds and
/// `production` in release builds.
pub fn app_env() -> String {
    match std::env::var("TASKYARD_ENV") {
        Ok(env) if !env.trim().is_empty() => env.trim().to_owned(),
        _ if cfg!(debug_assertions) => "development".to_owned(),
        _ => "production".to_owned(),
    }
}

/// The IANA time zone `name`, or the sentence that says it is not one and what to write.
pub fn time_zone(name: &str) -> Result<jiff::tz::TimeZone, String> {
    jiff::tz::TimeZone::get(name).map_err(|_| {
        format!("time zone `{name}` is not known; use an IANA name such as `Europe/Paris` or `UTC`")
    })
}

/// The default zone for cron schedules: the process's `TZ` if it names an IANA zone,
/// otherwise UTC.
pub fn default_time_zone() -> Result<jiff::tz::TimeZone, Error> {
    match std::env::var("TZ") {
        Ok(tz) if !tz.trim().is_empty() => {
            let name = tz.trim().trim_start_matches(':');
            jiff::tz::TimeZone::get(name).map_err(|_| {
                Error::Env {
                    var: "TZ",
                    message: format!(
                        "TZ `{tz}` is not a known time zone; use an IANA name such as `Europe/Paris`, or unset it for UTC"
                    ),
                }
            })
        }
        _ => Ok(jiff::tz::TimeZone::UTC),
    }
}
