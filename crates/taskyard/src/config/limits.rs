//! [`ServerLimits`]: how many connections the HTTP server holds and how long it waits for a
//! request's head, with the environment variables that change them.

use std::time::Duration;

use crate::Error;

/// How many connections, and how long a request's head may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Most connections open at once (default 1024).
    pub max_connections: usize,
    /// Longest wait for a request's head, idle keep-alive included (default 10 s).
    pub header_read_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(10),
        }
    }
}

/// The HTTP server's limits: [`ServerLimits`]' defaults, with
/// `TASKYARD_MAX_CONNECTIONS` and `TASKYARD_HEADER_READ_TIMEOUT_MS` taking over when set.
pub fn server_limits() -> Result<ServerLimits, Error> {
    let mut limits = ServerLimits::default();
    let number = |name: &'static str| -> Result<Option<u64>, Error> {
        match std::env::var(name) {
            Ok(value) if !value.trim().is_empty() => value
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .map(Some)
                .ok_or_else(|| Error::Env {
                    var: name,
                    message: format!("{name} `{value}` is not valid; use a whole number above 0"),
                }),
            _ => Ok(None),
        }
    };
    if let Some(max) = number("TASKYARD_MAX_CONNECTIONS")? {
        limits.max_connections = usize::try_from(max).unwrap_or(usize::MAX);
    }
    if let Some(ms) = number("TASKYARD_HEADER_READ_TIMEOUT_MS")? {
        limits.header_read_timeout = std::time::Duration::from_millis(ms);
    }
    Ok(limits)
}
