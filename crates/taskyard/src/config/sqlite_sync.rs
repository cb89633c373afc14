//! [`SqliteSync`]: when an SQLite commit reaches the disk.

use crate::Error;

/// The environment variable that sets [`SqliteSync`].
pub const SQLITE_SYNC_VAR: &str = "TASKYARD_SQLITE_SYNCHRONOUS";

/// When a commit to the SQLite store is on disk: SQLite's `synchronous` setting, in WAL
/// mode. Either way a commit survives the crash of the process at once; they differ on a
/// power cut or a crash of the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SqliteSync {
    /// `synchronous = NORMAL`: the WAL is synced at checkpoints, not at each commit. A
    /// power cut can take the commits since the last one: ~100 ms of them under load, up
    /// to 5 s of an idle app's.
    #[default]
    Normal,
    /// `synchronous = FULL`: each commit syncs the WAL before it returns, so whatever was
    /// acknowledged is on disk. A commit costs a sync; the records' batches and the
    /// queue's share theirs.
    Full,
}

impl SqliteSync {
    /// The setting `TASKYARD_SQLITE_SYNCHRONOUS` names: `normal` (the default) or `full`.
    pub fn from_env() -> Result<Self, Error> {
        match std::env::var(SQLITE_SYNC_VAR) {
            Ok(value) => SqliteSync::parse(&value),
            Err(_) => Ok(SqliteSync::Normal),
        }
    }

    /// The setting `value` names, as `TASKYARD_SQLITE_SYNCHRONOUS` takes it.
    pub fn parse(value: &str) -> Result<Self, Error> {
        SqliteSync::named(value).ok_or_else(|| Error::Env {
            var: SQLITE_SYNC_VAR,
            message: format!(
                "{SQLITE_SYNC_VAR} `{value}` is not a setting; use `normal` (commits synced at checkpoints) or `full` (each commit synced)"
            ),
        })
    }

    /// The setting `value` names (`normal`, the default when empty, or `full`, in any
    /// case), if it names one.
    pub fn named(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "normal" => Some(SqliteSync::Normal),
            "full" => Some(SqliteSync::Full),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_read_and_a_bad_one_is_named() {
        assert_eq!(SqliteSync::parse("").ok(), Some(SqliteSync::Normal));
        assert_eq!(SqliteSync::parse(" NORMAL ").ok(), Some(SqliteSync::Normal));
        assert_eq!(SqliteSync::parse("full").ok(), Some(SqliteSync::Full));
        let error = SqliteSync::parse("extra").expect_err("not a setting");
        assert_eq!(
            error.to_string(),
            "Invalid configuration: TASKYARD_SQLITE_SYNCHRONOUS `extra` is not a setting; use `normal` (commits synced at checkpoints) or `full` (each commit synced)"
        );
    }
}
