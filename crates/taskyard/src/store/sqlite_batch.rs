//! SQLite's batches of claimed runs' states and of enqueued jobs: the whole batch one JSON
//! parameter, its rows read back by `json_each`, so a batch of any size is the same
//! statement, prepared once per connection.
//!
//! Not a `VALUES` list of `$N` parameters: sqlx finds each parameter's place by asking
//! SQLite for its name, and SQLite finds a name by walking the statement's list of named
//! parameters, so binding a batch of n named parameters costs n² steps. For a batch of 512
//! runs (6,656 parameters) that was most of the queue's time on SQLite.

use sqlx::query::Query;
use sqlx::sqlite::SqliteArguments;
use sqlx::{Sqlite, SqlitePool};

use super::columns::{COLUMNS, RunRow, fenced_written, forgotten};
use super::queue::Job;
use super::{Batched, sqlx_error};
use crate::Error;
use crate::history::{RunId, RunRecord};

/// The store's name in errors.
const BACKEND: &str = "sqlite";

/// The records of the batch's runs that ended, inserted into the history where their
/// job's fence is still the claim's, the columns the batch does not carry (task, trigger,
/// payload, queued time, the queue's own) taken from the job; returns the id and fence of
/// each record it wrote. A row of `$1` is `[id, fence, status, attempt, attempts, instance,
/// started_at, finished_at, duration_ms, result, error, progress, progress_message]`, the
/// JSON columns as the text they are stored as. Their jobs are deleted after it, in its
/// transaction ([`END_JOBS`]).
pub(super) static ENDED: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "INSERT INTO taskyard_runs ({COLUMNS}, durable, run_at, priority, unique_key, max_attempts, fence) \
         SELECT j.id, j.task, v.value ->> 2, j.trigger_kind, j.trigger_data, j.payload, v.value ->> 3, \
         v.value ->> 4, v.value ->> 5, j.queued_at, v.value ->> 6, v.value ->> 7, v.value ->> 8, \
         v.value ->> 9, v.value ->> 10, v.value ->> 11, v.value ->> 12, TRUE, j.run_at, j.priority, \
         j.unique_key, j.max_attempts, j.fence \
         FROM jsonb_each($1) AS v JOIN taskyard_jobs AS j ON j.id = v.value ->> 0 AND j.fence = v.value ->> 1 \
         WHERE v.value ->> 2 NOT IN ('queued', 'running') \
         RETURNING id, fence"
    )
});

/// The jobs of the batch's runs still going, updated where their fence is still the
/// claim's (the batch as in [`ENDED`]); returns the id and fence of each job it wrote.
pub(super) const LIVE: &str = "UPDATE taskyard_jobs SET status = v.value ->> 2, attempt = v.value ->> 3, \
     attempts = v.value ->> 4, instance = v.value ->> 5, started_at = v.value ->> 6, \
     finished_at = v.value ->> 7, duration_ms = v.value ->> 8, result = v.value ->> 9, \
     error = v.value ->> 10, progress = v.value ->> 11, progress_message = v.value ->> 12 \
     FROM jsonb_each($1) AS v \
     WHERE taskyard_jobs.id = v.value ->> 0 AND taskyard_jobs.fence = v.value ->> 1 \
     AND v.value ->> 2 IN ('queued', 'running') \
     RETURNING id, fence";

/// Deletes the jobs of the runs in the JSON array `$1` of ids: their runs ended.
pub(super) const END_JOBS: &str = "DELETE FROM taskyard_jobs WHERE id IN (SELECT value FROM json_each($1))";

/// Deletes the jobs of succeeded runs whose task keeps no succeeded runs, each where its
/// fence is still the claim's (see `Store::forget_claimed_many`); a row of `$1` is
/// `[id, fence]`. The jobs are found from the batch by key, then deleted by row; returns
/// the id and fence of each job it deleted.
pub(super) const FORGET: &str = "DELETE FROM taskyard_jobs WHERE rowid IN \
     (SELECT j.rowid FROM jsonb_each($1) AS v JOIN taskyard_jobs AS j \
     ON j.id = v.value ->> 0 AND j.fence = v.value ->> 1) \
     RETURNING id, fence";

/// A run [`ENDED`], [`LIVE`] or [`FORGET`] wrote: its id and fence.
pub(super) type Written = (String, i64);

/// `Store::put_claimed_many` on `pool`: the ended runs' records ([`ENDED`]) and the deletes
/// of their jobs ([`END_JOBS`]), then the jobs of runs still going ([`LIVE`]), in one
/// transaction.
pub(super) async fn put_claimed_many(
    pool: &SqlitePool,
    runs: &[(RunRecord, i64)],
) -> Result<Vec<bool>, Error> {
    if runs.is_empty() {
        return Ok(Vec::new());
    }
    // The ended runs' records first: the transaction takes the write lock with its
    // first statement, so nothing moves a fence between the records and their jobs.
    let err = sqlx_error(BACKEND);
    let batch = batch(runs)?;
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(&err)?;
    let ended: Vec<Written> = sqlx::query_as(ENDED.as_str())
        .bind(batch.as_str())
        .fetch_all(&mut *tx)
        .await
        .map_err(&err)?;
    if !ended.is_empty() {
        let ids: Vec<&str> = ended.iter().map(|(id, _)| id.as_str()).collect();
        let ids = as_json("ended runs' ids", &ids)?;
        sqlx::query(END_JOBS)
            .bind(ids)
            .execute(&mut *tx)
            .await
            .map_err(&err)?;
    }
    let live: Vec<Written> = sqlx::query_as(LIVE)
        .bind(batch.as_str())
        .fetch_all(&mut *tx)
        .await
        .map_err(&err)?;
    tx.commit().await.map_err(&err)?;
    Ok(fenced_written(runs, &ended.into_iter().chain(live).collect()))
}

/// `Store::forget_claimed_many` on `pool`: one [`FORGET`].
pub(super) async fn forget_claimed_many(
    pool: &SqlitePool,
    runs: &[(RunId, i64)],
) -> Result<Vec<bool>, Error> {
    if runs.is_empty() {
        return Ok(Vec::new());
    }
    let batch: Vec<(String, i64)> = runs.iter().map(|(id, fence)| (id.to_string(), *fence)).collect();
    let deleted: Vec<Written> = sqlx::query_as(FORGET)
        .bind(as_json("forgotten runs' ids", &batch)?)
        .fetch_all(pool)
        .await
        .map_err(sqlx_error(BACKEND))?;
    Ok(forgotten(runs, deleted))
}

/// `value` as the JSON text of a batch's parameter; `what` names it in the error.
fn as_json<T: serde::Serialize + ?Sized>(what: &str, value: &T) -> Result<String, Error> {
    serde_json::to_string(value).map_err(|error| Error::StoreData {
        backend: BACKEND,
        message: format!("{what} as JSON: {error}"),
    })
}

/// A claimed run's row in the batch's parameter.
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

/// Claimed runs' states (see `Store::put_claimed_many`), each with its claim's fence
/// (the `i64`), as the JSON parameter of [`ENDED`] and [`LIVE`].
pub(super) fn batch(runs: &[(RunRecord, i64)]) -> Result<String, Error> {
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
    as_json("claimed runs' states", &values)
}

/// Inserts the jobs of durable runs enqueued without a key, the batch one JSON parameter:
/// a row of `$1` is the run's columns in `COLUMNS` order (the JSON ones as the text they
/// are stored as), then its `run_at`, priority and attempts.
pub(super) static INSERT_JOBS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let columns: Vec<String> = (0..20).map(|at| format!("v.value ->> {at}")).collect();
    let (run, queue) = columns.split_at(17);
    format!(
        "INSERT INTO taskyard_jobs ({COLUMNS}, run_at, priority, max_attempts, unique_key, fence) \
         SELECT {}, {}, NULL, 0 FROM jsonb_each($1) AS v",
        run.join(", "),
        queue.join(", ")
    )
});

/// Enqueues without a key on `pool`, those made while a statement is out sent together in
/// the next: one [`INSERT_JOBS`] and one commit for all of them.
pub(super) fn enqueues(pool: SqlitePool) -> Batched<(RunRecord, Job), ()> {
    Batched::start(move |jobs: Vec<(RunRecord, Job)>| {
        let pool = pool.clone();
        async move {
            insert_jobs(&jobs)?
                .execute(&pool)
                .await
                .map_err(sqlx_error("sqlite"))?;
            Ok(vec![(); jobs.len()])
        }
    })
}

/// One [`INSERT_JOBS`] of durable runs' jobs without a key.
pub(super) fn insert_jobs(
    jobs: &[(RunRecord, Job)],
) -> Result<Query<'static, Sqlite, SqliteArguments>, Error> {
    Ok(sqlx::query(INSERT_JOBS.as_str()).bind(jobs_batch(jobs)?))
}

/// Durable runs' jobs as the JSON parameter of [`INSERT_JOBS`].
fn jobs_batch(jobs: &[(RunRecord, Job)]) -> Result<String, Error> {
    let rows: Vec<serde_json::Value> = jobs
        .iter()
        .map(|(run, job)| {
            let row = RunRow::encode(run);
            serde_json::json!([
                row.id,
                row.task,
                row.status,
                row.trigger_kind,
                row.trigger_data,
                row.payload,
                row.attempt,
                row.attempts,
                row.instance,
                row.queued_at,
                row.started_at,
                row.finished_at,
                row.duration_ms,
                row.result,
                row.error,
                row.progress,
                row.progress_message,
                job.run_at.as_millisecond(),
                job.priority,
                job.max_attempts,
            ])
        })
        .collect();
    as_json("enqueued runs", &rows)
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
        // The ends read their jobs (`j`), the states of runs still going update theirs,
        // and the ends not kept find their jobs (`j`) before they delete them by row.
        for (statement, table) in [(ENDED.as_str(), "j"), (LIVE, "taskyard_jobs"), (FORGET, "j")] {
            let plan = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {statement}")))
                .bind("[]")
                .fetch_all(&pool)
                .await
                .expect("a plan");
            let steps: Vec<String> = plan
                .iter()
                .map(|row| row.try_get::<String, _>("detail").expect("a step"))
                .collect();
            assert!(steps.iter().any(|step| step.starts_with("SCAN v")), "{steps:?}");
            assert!(
                steps.iter().any(
                    |step| step.starts_with(&format!("SEARCH {table} USING ")) && step.contains("(id=?)")
                ),
                "{steps:?}"
            );
            assert!(
                !steps
                    .iter()
                    .any(|step| step.starts_with("SCAN taskyard_") || step.starts_with("SCAN j")),
                "{steps:?}"
            );
        }
    }
}
