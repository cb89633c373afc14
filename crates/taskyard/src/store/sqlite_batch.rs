//! SQLite's batch of claimed runs' states: the whole batch one JSON parameter, its rows
//! read back by `json_each`, so a batch of any size is the same statement, prepared once
//! per connection.
//!
//! Not a `VALUES` list of `$N` parameters: sqlx finds each parameter's place by asking
//! SQLite for its name, and SQLite finds a name by walking the statement's list of named
//! parameters, so binding a batch of n named parameters costs n² steps. For a batch of 512
//! runs (6,656 parameters) that was most of the queue's time on SQLite.

use sqlx::Sqlite;
use sqlx::query::QueryAs;
use sqlx::sqlite::SqliteArguments;

use super::columns::RunRow;
use crate::Error;
use crate::history::RunRecord;

/// [`put_claimed`]'s statement: each run's state where its job's fence is still the
/// claim's, returning the id, fence and status of each record it wrote (SQLite returns
/// nothing from the `FROM` tables, so the fence is written to the record too). A row of
/// `$1` is `[id, fence, status, attempt, attempts, instance, started_at, finished_at,
/// duration_ms, result, error, progress, progress_message]`, the JSON columns as the text
/// they are stored as. The jobs of the runs that ended are deleted after it, in its
/// transaction ([`END_JOBS`]).
const PUT_CLAIMED: &str = "UPDATE taskyard_runs SET status = v.value ->> 2, attempt = v.value ->> 3, \
     attempts = v.value ->> 4, instance = v.value ->> 5, started_at = v.value ->> 6, \
     finished_at = v.value ->> 7, duration_ms = v.value ->> 8, result = v.value ->> 9, \
     error = v.value ->> 10, progress = v.value ->> 11, progress_message = v.value ->> 12, \
     fence = v.value ->> 1 \
     FROM json_each($1) AS v JOIN taskyard_jobs AS j ON j.id = v.value ->> 0 AND j.fence = v.value ->> 1 \
     WHERE taskyard_runs.id = v.value ->> 0 \
     RETURNING taskyard_runs.id, taskyard_runs.fence, taskyard_runs.status";

/// Deletes the jobs of the runs in the JSON array `$1` of ids: their runs ended.
pub(super) const END_JOBS: &str = "DELETE FROM taskyard_jobs WHERE id IN (SELECT value FROM json_each($1))";

/// A record [`PUT_CLAIMED`] wrote: its id, fence and status.
pub(super) type Written = (String, i64, String);

/// A claimed run's row in [`PUT_CLAIMED`]'s parameter.
type ClaimedRow<'r> = (
    &'r str,
    i64,
    &'r str,
    i64,
    &'r str,
    &'r str,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<&'r str>,
    Option<&'r str>,
    Option<f64>,
    Option<&'r str>,
);

/// One `UPDATE` of claimed runs' records (see `Store::put_claimed_many`), each written
/// only where its job's fence is still the claim's (the `i64`); returns the id, fence and
/// status of each record it wrote.
pub(super) fn put_claimed(
    runs: &[(RunRecord, i64)],
) -> Result<QueryAs<'static, Sqlite, Written, SqliteArguments>, Error> {
    let rows: Vec<RunRow> = runs.iter().map(|(run, _)| RunRow::encode(run)).collect();
    let values: Vec<ClaimedRow<'_>> = rows
        .iter()
        .zip(runs)
        .map(|(row, (_, fence))| {
            (
                row.id.as_str(),
                *fence,
                row.status.as_str(),
                row.attempt,
                row.attempts.as_str(),
                row.instance.as_str(),
                row.started_at,
                row.finished_at,
                row.duration_ms,
                row.result.as_deref(),
                row.error.as_deref(),
                row.progress,
                row.progress_message.as_deref(),
            )
        })
        .collect();
    let batch = serde_json::to_string(&values).map_err(|error| Error::StoreData {
        backend: "sqlite",
        message: format!("claimed runs' states as JSON: {error}"),
    })?;
    Ok(sqlx::query_as(PUT_CLAIMED).bind(batch))
}

#[cfg(test)]
mod tests {
    use sqlx::Row;
    use sqlx::sqlite::SqliteConnectOptions;

    use super::*;

    /// The batch walks its own rows and finds each run by key: a scan of the history per
    /// batch would grow with every run ever kept.
    #[tokio::test]
    async fn a_batch_of_claimed_runs_finds_its_rows_by_key() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let options = SqliteConnectOptions::new()
            .filename(dir.path().join("plan.db"))
            .create_if_missing(true);
        let pool = sqlx::SqlitePool::connect_with(options)
            .await
            .expect("the file opens");
        crate::store::migrate::migrate_sqlite(&pool)
            .await
            .expect("migrated");
        let plan = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {PUT_CLAIMED}")))
            .bind("[]")
            .fetch_all(&pool)
            .await
            .expect("a plan");
        let steps: Vec<String> = plan
            .iter()
            .map(|row| row.try_get::<String, _>("detail").expect("a step"))
            .collect();
        assert!(steps.iter().any(|step| step.starts_with("SCAN v")), "{steps:?}");
        for table in ["taskyard_runs", "j"] {
            assert!(
                steps.iter().any(
                    |step| step.starts_with(&format!("SEARCH {table} USING ")) && step.contains("(id=?)")
                ),
                "{steps:?}"
            );
        }
        assert!(
            !steps.iter().any(|step| step.starts_with("SCAN taskyard_")),
            "{steps:?}"
        );
        assert!(!steps.iter().any(|step| step.starts_with("SCAN j")), "{steps:?}");
    }
}
