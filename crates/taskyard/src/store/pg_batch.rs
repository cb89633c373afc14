//! PostgreSQL's batch statements: every column one array parameter, unnested into rows,
//! so a batch of any size is the same statement, parsed and planned once per connection
//! and sent in one round trip. Rows as `VALUES` lists made a statement per batch size,
//! each prepared anew when sqlx's cache of 100 statements per connection did not hold it.

use std::mem::take;

use sqlx::postgres::PgArguments;
use sqlx::query::{Query, QueryAs};
use sqlx::{PgPool, Postgres};

use super::columns::{COLUMNS, RunRow, UPSERT_TAIL, fenced_written, forgotten};
use super::queue::Job;
use super::{Batched, sqlx_error};
use crate::Error;
use crate::history::{RunId, RunRecord};

/// [`insert_runs`]' statement.
pub(super) static INSERT_RUNS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "INSERT INTO taskyard_runs ({COLUMNS}) SELECT id, task, status, trigger_kind, trigger_data::jsonb, \
         payload::jsonb, attempt, attempts::jsonb, instance, queued_at, started_at, finished_at, duration_ms, \
         result::jsonb, error, progress, progress_message FROM UNNEST($1::text[], $2::text[], $3::text[], \
         $4::text[], $5::text[], $6::text[], $7::int8[], $8::text[], $9::text[], $10::int8[], $11::int8[], \
         $12::int8[], $13::int8[], $14::text[], $15::text[], $16::float8[], $17::text[]) \
         AS t({COLUMNS}){UPSERT_TAIL}"
    )
});

/// One `INSERT` of `runs` (see [`INSERT_RUNS`]), a run already stored replaced by its
/// latest state.
pub(super) fn insert_runs(runs: &[RunRecord]) -> Query<'static, Postgres, PgArguments> {
    with_runs(sqlx::query(INSERT_RUNS.as_str()), runs.iter())
}

/// [`insert_jobs`]' statement: [`INSERT_RUNS`]' columns, then each job's `run_at`,
/// priority and attempts, with no key and fence 0.
static INSERT_JOBS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "INSERT INTO taskyard_jobs ({COLUMNS}, run_at, priority, max_attempts, fence) SELECT id, task, status, \
         trigger_kind, trigger_data::jsonb, payload::jsonb, attempt, attempts::jsonb, instance, queued_at, \
         started_at, finished_at, duration_ms, result::jsonb, error, progress, progress_message, run_at, priority, \
         max_attempts, 0 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
         $7::int8[], $8::text[], $9::text[], $10::int8[], $11::int8[], $12::int8[], $13::int8[], $14::text[], \
         $15::text[], $16::float8[], $17::text[], $18::int8[], $19::int4[], $20::int4[]) \
         AS t({COLUMNS}, run_at, priority, max_attempts)"
    )
});

/// Enqueues without a key on `pool`, those made while a statement is out sent together in
/// the next: one [`insert_jobs`] and one commit for all of them.
pub(super) fn enqueues(pool: PgPool) -> Batched<(RunRecord, Job), ()> {
    Batched::start(move |jobs: Vec<(RunRecord, Job)>| {
        let pool = pool.clone();
        async move {
            insert_jobs(&jobs)?
                .execute(&pool)
                .await
                .map_err(sqlx_error("postgres"))?;
            Ok(vec![(); jobs.len()])
        }
    })
}

/// One `INSERT` of durable runs' jobs without a key (see [`INSERT_JOBS`]); a `Result`, as
/// SQLite's is, so that either is a `tick_sql::InsertJobs`.
pub(super) fn insert_jobs(jobs: &[(RunRecord, Job)]) -> Result<Query<'static, Postgres, PgArguments>, Error> {
    Ok(
        with_runs(sqlx::query(INSERT_JOBS.as_str()), jobs.iter().map(|(run, _)| run))
            .bind(
                jobs.iter()
                    .map(|(_, job)| job.run_at.as_millisecond())
                    .collect::<Vec<i64>>(),
            )
            .bind(jobs.iter().map(|(_, job)| job.priority).collect::<Vec<i32>>())
            .bind(
                jobs.iter()
                    .map(|(_, job)| i32::try_from(job.max_attempts).unwrap_or(i32::MAX))
                    .collect::<Vec<i32>>(),
            ),
    )
}

/// `query` with `runs` bound as its first 17 parameters, one array a column in `COLUMNS`
/// order.
fn with_runs<'r>(
    query: Query<'static, Postgres, PgArguments>,
    runs: impl Iterator<Item = &'r RunRecord>,
) -> Query<'static, Postgres, PgArguments> {
    let mut rows: Vec<RunRow> = runs.map(RunRow::encode).collect();
    let rows = &mut rows[..];
    query
        .bind(column(rows, |row| take(&mut row.id)))
        .bind(column(rows, |row| take(&mut row.task)))
        .bind(column(rows, |row| take(&mut row.status)))
        .bind(column(rows, |row| take(&mut row.trigger_kind)))
        .bind(column(rows, |row| take(&mut row.trigger_data)))
        .bind(column(rows, |row| take(&mut row.payload)))
        .bind(column(rows, |row| row.attempt))
        .bind(column(rows, |row| take(&mut row.attempts)))
        .bind(column(rows, |row| take(&mut row.instance)))
        .bind(column(rows, |row| row.queued_at))
        .bind(column(rows, |row| row.started_at))
        .bind(column(rows, |row| row.finished_at))
        .bind(column(rows, |row| row.duration_ms))
        .bind(column(rows, |row| row.result.take()))
        .bind(column(rows, |row| row.error.take()))
        .bind(column(rows, |row| row.progress))
        .bind(column(rows, |row| row.progress_message.take()))
}

/// [`put_claimed`]'s statement: each run's state where its job's fence is still the
/// claim's, in one statement. The jobs of runs that ended are deleted and their records
/// inserted into the history, the columns the batch does not carry (task, trigger,
/// payload, queued time, the queue's own) taken from the deleted job; the jobs of runs
/// still going are updated. The jobs are looked up by an array of ids, which PostgreSQL
/// reads key by key whatever its statistics say and whatever the session's settings (a
/// join with the batch was planned as a read of the whole queue).
static PUT_CLAIMED: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "WITH v AS (SELECT * FROM UNNEST($1::text[], $2::int8[], $3::text[], $4::int8[], \
         $5::text[], $6::text[], $7::int8[], $8::int8[], $9::int8[], $10::text[], $11::text[], $12::float8[], \
         $13::text[]) AS v(id, fence, status, attempt, attempts, instance, started_at, finished_at, duration_ms, \
         result, error, progress, progress_message)), \
         ended AS (DELETE FROM taskyard_jobs j \
         WHERE j.id = ANY(ARRAY(SELECT v.id FROM v WHERE v.status NOT IN ('queued', 'running'))) \
         AND EXISTS (SELECT 1 FROM v WHERE v.id = j.id AND v.fence = j.fence) RETURNING j.*), \
         records AS (INSERT INTO taskyard_runs ({COLUMNS}, durable, run_at, priority, unique_key, max_attempts, fence) \
         SELECT e.id, e.task, v.status, e.trigger_kind, e.trigger_data, e.payload, v.attempt, v.attempts::jsonb, \
         v.instance, e.queued_at, v.started_at, v.finished_at, v.duration_ms, v.result::jsonb, v.error, \
         v.progress, v.progress_message, TRUE, e.run_at, e.priority, e.unique_key, e.max_attempts, e.fence \
         FROM ended e JOIN v ON v.id = e.id AND v.fence = e.fence RETURNING id, fence), \
         live AS (UPDATE taskyard_jobs j SET status = v.status, attempt = v.attempt, \
         attempts = v.attempts::jsonb, instance = v.instance, started_at = v.started_at, \
         finished_at = v.finished_at, duration_ms = v.duration_ms, result = v.result::jsonb, error = v.error, \
         progress = v.progress, progress_message = v.progress_message \
         FROM v WHERE j.id = ANY(ARRAY(SELECT v.id FROM v WHERE v.status IN ('queued', 'running'))) \
         AND j.id = v.id AND j.fence = v.fence RETURNING j.id, j.fence) \
         SELECT id, fence FROM records UNION ALL SELECT id, fence FROM live"
    )
});

/// One `UPDATE` of claimed runs' states (see `Store::put_claimed_many`), each written only
/// where its fence (the `i64`) is still the run's; returns the id and fence of each run
/// it wrote.
pub(super) fn put_claimed(
    runs: &[(RunRecord, i64)],
) -> QueryAs<'static, Postgres, (String, i64), PgArguments> {
    with_claimed(sqlx::query_as(PUT_CLAIMED.as_str()), runs)
}

/// `Store::put_claimed_many` on `pool` (the store's connections that find rows by key):
/// one [`put_claimed`], so one transaction, with no `BEGIN` and `COMMIT` round trips.
pub(super) async fn put_claimed_many(pool: &PgPool, runs: &[(RunRecord, i64)]) -> Result<Vec<bool>, Error> {
    if runs.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<(String, i64)> = put_claimed(runs)
        .fetch_all(pool)
        .await
        .map_err(sqlx_error("postgres"))?;
    Ok(fenced_written(runs, &rows.into_iter().collect()))
}

/// `Store::forget_claimed_many` on `pool`: one [`FORGET_CLAIMED`].
pub(super) async fn forget_claimed_many(pool: &PgPool, runs: &[(RunId, i64)]) -> Result<Vec<bool>, Error> {
    if runs.is_empty() {
        return Ok(Vec::new());
    }
    let deleted: Vec<(String, i64)> = forget_claimed(runs)
        .fetch_all(pool)
        .await
        .map_err(sqlx_error("postgres"))?;
    Ok(forgotten(runs, deleted))
}

/// Deletes the jobs of succeeded runs whose task keeps no succeeded runs, each where its
/// fence is still the claim's (see `Store::forget_claimed_many`): the jobs found by key from
/// the array of ids, as in [`PUT_CLAIMED`], and matched with their fences; returns the id
/// and fence of each job it deleted. The ids are read through a subquery, whose size the
/// planner does not know: given the array itself, it planned 512 ids among 30,000 jobs as
/// a read of the whole table.
const FORGET_CLAIMED: &str = "DELETE FROM taskyard_jobs j USING UNNEST($1::text[], $2::int8[]) AS v(id, fence) \
     WHERE j.id = ANY(ARRAY(SELECT UNNEST($1::text[]))) AND j.id = v.id AND j.fence = v.fence \
     RETURNING j.id, j.fence";

/// [`FORGET_CLAIMED`] for `runs`, each with its claim's fence.
pub(super) fn forget_claimed(
    runs: &[(RunId, i64)],
) -> QueryAs<'static, Postgres, (String, i64), PgArguments> {
    sqlx::query_as(FORGET_CLAIMED)
        .bind(runs.iter().map(|(id, _)| id.to_string()).collect::<Vec<String>>())
        .bind(runs.iter().map(|(_, fence)| *fence).collect::<Vec<i64>>())
}

/// `query` (`PUT_CLAIMED`, or a statement around it) with `runs` bound as its columns.
fn with_claimed<O>(
    query: QueryAs<'static, Postgres, O, PgArguments>,
    runs: &[(RunRecord, i64)],
) -> QueryAs<'static, Postgres, O, PgArguments> {
    let mut rows: Vec<RunRow> = runs.iter().map(|(run, _)| RunRow::encode(run)).collect();
    let rows = &mut rows[..];
    query
        .bind(column(rows, |row| take(&mut row.id)))
        .bind(runs.iter().map(|(_, fence)| *fence).collect::<Vec<i64>>())
        .bind(column(rows, |row| take(&mut row.status)))
        .bind(column(rows, |row| row.attempt))
        .bind(column(rows, |row| take(&mut row.attempts)))
        .bind(column(rows, |row| take(&mut row.instance)))
        .bind(column(rows, |row| row.started_at))
        .bind(column(rows, |row| row.finished_at))
        .bind(column(rows, |row| row.duration_ms))
        .bind(column(rows, |row| row.result.take()))
        .bind(column(rows, |row| row.error.take()))
        .bind(column(rows, |row| row.progress))
        .bind(column(rows, |row| row.progress_message.take()))
}

/// One column of `rows`, each value taken out of its row.
fn column<T>(rows: &mut [RunRow], value: impl FnMut(&mut RunRow) -> T) -> Vec<T> {
    rows.iter_mut().map(value).collect()
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;
    use sqlx::{AssertSqlSafe, PgPool};

    use super::*;
    use crate::history::Trigger;
    use crate::store::pg_test_schema::TestSchema;

    /// Rows already in each table (ended runs in the history, running ones in the queue):
    /// enough that reading all of them looks cheaper to the planner than 512 lookups by key.
    const HISTORY: i64 = 30_000;

    /// The plans PostgreSQL makes for a connection's first executions of a statement know
    /// the batch's size, and a join with the batch was planned as a read of the whole
    /// table, hashed, on every batch. The ends of a batch are found by key in a session
    /// with no settings of its own, as every session behind a pooler is.
    #[tokio::test]
    async fn a_batch_of_claimed_runs_finds_its_rows_by_key_in_a_long_history() {
        let Some(schema) = TestSchema::migrated("ty_plan").await else {
            return;
        };
        let url = schema.url.clone();
        let options: sqlx::postgres::PgConnectOptions = url.parse().expect("the test schema's URL");
        let pool = PgPool::connect_with(options).await.expect("the test schema");
        sqlx::query(
            "INSERT INTO taskyard_runs (id, task, status, trigger_kind, trigger_data, payload, attempt, \
             attempts, instance, queued_at, finished_at, durable, run_at, fence) \
             SELECT '01a236f2-089e-7000-8000-' || lpad(to_hex(n), 12, '0'), 'noop', 'succeeded', \
             'manual', '{}', '{}', 1, '[]', 'a', 0, 1, TRUE, 0, 1 FROM generate_series(1, $1) AS n",
        )
        .bind(HISTORY)
        .execute(&pool)
        .await
        .expect("a history");
        sqlx::query(
            "INSERT INTO taskyard_jobs (id, task, status, trigger_kind, trigger_data, payload, attempt, \
             attempts, instance, queued_at, priority, run_at, max_attempts, fence, claimed_by) \
             SELECT '01a236f2-089e-7000-8000-' || lpad(to_hex(n), 12, '0'), 'noop', 'running', \
             'manual', '{}', '{}', 1, '[]', 'a', 0, 0, 0, 1, 1, 'a' FROM generate_series($1 + 1, 2 * $1) AS n",
        )
        .bind(HISTORY)
        .execute(&pool)
        .await
        .expect("the running runs' jobs");
        sqlx::query("ANALYZE taskyard_runs, taskyard_jobs")
            .execute(&pool)
            .await
            .expect("statistics");
        let ends: Vec<(RunRecord, i64)> = (0..512)
            .map(|n| {
                let mut run = RunRecord::queued(
                    "noop".into(),
                    serde_json::Value::Null,
                    Trigger::Manual,
                    "a".into(),
                    Timestamp::now(),
                );
                // The latest runs: ids made one after another, as `RunId::new` makes them;
                // half of them end, half report their progress.
                run.id = format!("01a236f2-089e-7000-8000-{:012x}", 2 * HISTORY - n)
                    .parse()
                    .expect("an id");
                run.status = if n % 2 == 0 {
                    crate::history::RunStatus::Succeeded
                } else {
                    crate::history::RunStatus::Running
                };
                (run, 1)
            })
            .collect();
        let explain = sqlx::query_as(AssertSqlSafe(format!("EXPLAIN {}", *PUT_CLAIMED)));
        let plan: Vec<(String,)> = with_claimed(explain, &ends)
            .fetch_all(&pool)
            .await
            .expect("the statement's plan");
        // The same ends, not kept: a delete of their jobs alone.
        let forgets: Vec<(RunId, i64)> = ends.iter().map(|(run, fence)| (run.id, *fence)).collect();
        let forget_plan: Vec<(String,)> = sqlx::query_as(AssertSqlSafe(format!("EXPLAIN {FORGET_CLAIMED}")))
            .bind(
                forgets
                    .iter()
                    .map(|(id, _)| id.to_string())
                    .collect::<Vec<String>>(),
            )
            .bind(forgets.iter().map(|(_, fence)| *fence).collect::<Vec<i64>>())
            .fetch_all(&pool)
            .await
            .expect("the delete's plan");
        pool.close().await;
        schema.drop().await;
        for plan in [plan, forget_plan] {
            let plan: Vec<String> = plan.into_iter().map(|(line,)| line).collect();
            // Every table read by key: no scan from end to end, nor a walk of a whole index
            // (an index scan without a condition).
            let whole_index = plan.windows(2).any(|pair| {
                pair[0].contains("Index Scan using")
                    && pair[0].contains("taskyard_")
                    && !pair[1].contains("Index Cond")
            });
            assert!(
                !whole_index && !plan.iter().any(|line| line.contains("Seq Scan on taskyard_")),
                "the batch reads a whole table or index:\n{}",
                plan.join("\n")
            );
        }
    }
}
