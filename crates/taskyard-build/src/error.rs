//! [`BuildError`]: why an app's sources cannot be turned into code.

use std::fmt;

use crate::ScanError;

/// Why an app's source folders cannot be read into [`AppSources`](crate::AppSources).
#[derive(Debug)]
pub enum BuildError {
    /// A folder or file could not be read.
    Scan(ScanError),
    /// A route file cannot be a route, or cannot be read; the text names the file and why.
    Routes(String),
    /// A middleware file cannot be read or ordered; the text names the file and why.
    Middleware(String),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::Scan(error) => error.fmt(f),
            BuildError::Routes(message) | BuildError::Middleware(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BuildError::Scan(error) => Some(error),
            BuildError::Routes(_) | BuildError::Middleware(_) => None,
        }
    }
}

impl From<ScanError> for BuildError {
    fn from(error: ScanError) -> Self {
        BuildError::Scan(error)
    }
}
