//! Settings read from the environment, in one place.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `PORT` | `3000` | port to listen on |
//! | `HOST` | `127.0.0.1` | address to listen on |
//! | `TASKYARD_DATA_DIR` | `./.taskyard` | folder for the SQLite file and logs |
//! | `TASKYARD_DATABASE_URL` | unset | `postgres://…` to share history through PostgreSQL |

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use crate::Error;

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
        Ok(host) if !host.trim().is_empty() => host.trim().parse::<IpAddr>().map_err(|_| {
            Error::Config(format!(
                "HOST `{host}` is not an IP address; use e.g. 127.0.0.1 or 0.0.0.0"
            ))
        })?,
        _ => IpAddr::from([127, 0, 0, 1]),
    };
    let port = match std::env::var("PORT") {
        Ok(port) if !port.trim().is_empty() => port.trim().parse::<u16>().map_err(|_| {
            Error::Config(format!(
                "PORT `{port}` is not a port number; use a number from 0 to 65535"
            ))
        })?,
        _ => 3000,
    };
    Ok(SocketAddr::new(host, port))
}
