//! [`Dashboard`]: what the dashboard at `/_tasks/ui` offers.

use crate::Error;

/// The environment variable that sets the dashboard's mode.
pub const DASHBOARD_VAR: &str = "TASKYARD_UI";

/// What the dashboard at `/_tasks/ui` offers. It follows the task endpoints' access rule
/// ([`TasksAccess`](crate::http::TasksAccess)): where they are off, so is it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dashboard {
    /// Every page and every action: run, enqueue, cancel, retry, pause, resume.
    #[default]
    On,
    /// Every page, no action: the forms are not shown and every write is refused.
    ReadOnly,
    /// Not served: its paths answer 404.
    Off,
}

impl Dashboard {
    /// The mode `TASKYARD_UI` sets: `on` (the default), `readonly` or `off`.
    pub fn from_env() -> Result<Self, Error> {
        match std::env::var(DASHBOARD_VAR) {
            Ok(value) => Dashboard::parse(&value),
            Err(_) => Ok(Dashboard::On),
        }
    }

    /// The mode `value` names, as `TASKYARD_UI` takes it.
    pub fn parse(value: &str) -> Result<Self, Error> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "on" => Ok(Dashboard::On),
            "readonly" | "read-only" | "read_only" => Ok(Dashboard::ReadOnly),
            "off" => Ok(Dashboard::Off),
            _ => Err(Error::Env {
                var: DASHBOARD_VAR,
                message: format!(
                    "{DASHBOARD_VAR} `{value}` is not a dashboard mode; use `on`, `readonly` or `off`"
                ),
            }),
        }
    }

    /// True when the dashboard takes writes.
    pub fn writable(self) -> bool {
        self == Dashboard::On
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_are_read_and_a_bad_one_is_named() {
        assert_eq!(Dashboard::parse("").ok(), Some(Dashboard::On));
        assert_eq!(Dashboard::parse(" ReadOnly ").ok(), Some(Dashboard::ReadOnly));
        assert_eq!(Dashboard::parse("off").ok(), Some(Dashboard::Off));
        let error = Dashboard::parse("yes please").expect_err("not a mode");
        assert_eq!(
            error.to_string(),
            "Invalid configuration: TASKYARD_UI `yes please` is not a dashboard mode; use `on`, `readonly` or `off`"
        );
    }
}
