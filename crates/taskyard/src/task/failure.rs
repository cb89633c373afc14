//! [`TaskError`]: what a task body returns when it fails.
//!
//! Like `anyhow::Error`, any `std::error::Error` converts into it, so `?` works on every
//! fallible call inside a task. It carries a message and optional JSON `data` that HTTP
//! clients receive alongside the message.

use std::fmt;

use serde_json::Value;

/// The error a task body returns.
///
/// ```
/// use taskyard::TaskError;
///
/// fn check(rows: u32) -> Result<(), TaskError> {
///     if rows == 0 {
///         return Err(TaskError::new("no rows to migrate").with_data(serde_json::json!({"rows": 0})));
///     }
///     let _n: u32 = "42".parse()?; // any std error converts
///     Ok(())
/// }
/// # assert!(check(0).is_err());
/// ```
#[derive(Debug, Clone)]
pub struct TaskError {
    message: String,
    data: Option<Value>,
    retryable: bool,
}

impl TaskError {
    /// A failure with this message; retried if the task has a retry policy.
    pub fn new(message: impl Into<String>) -> Self {
        TaskError {
            message: message.into(),
            data: None,
            retryable: true,
        }
    }

    /// A failure that retrying cannot fix (bad input, missing permission): the run fails at
    /// once even when the task has attempts left.
    pub fn permanent(message: impl Into<String>) -> Self {
        TaskError {
            retryable: false,
            ..TaskError::new(message)
        }
    }

    /// Attaches structured details, returned to HTTP clients as the error's `data`.
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    /// What the error says.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The JSON attached to it, if any.
    pub fn data(&self) -> Option<&Value> {
        self.data.as_ref()
    }

    /// True unless the error was made permanent (no retry).
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    pub(crate) fn into_parts(self) -> (String, Option<Value>) {
        (self.message, self.data)
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl<E> From<E> for TaskError
where
    E: std::error::Error + Send + Sync + 'static,
{
    fn from(error: E) -> Self {
        // Keep the whole cause chain: "connect failed: connection refused".
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        TaskError::new(message)
    }
}
