//! PostgreSQL's batch statements: every column one array parameter, unnested into rows,
//! so a batch of any size is the same statement, parsed and planned once per connection
//! and sent in one round trip. Rows as `VALUES` lists made a statement per batch size,
//! each prepared anew when sqlx's cache of 100 statements per connection did not hold it.

use std::mem::take;

use sqlx::Postgres;
use sqlx::postgres::PgArguments;
use sqlx::query::{Query, QueryAs};

use super::columns::{COLUMNS, RunRow, UPSERT_TAIL};
use crate::history::RunRecord;

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
    let mut rows: Vec<RunRow> = runs.iter().map(RunRow::encode).collect();
    let rows = &mut rows[..];
    sqlx::query(INSERT_RUNS.as_str())
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

/// [`put_claimed`]'s statement: each run's state where its fence is still the run's.
static PUT_CLAIMED: &str = "UPDATE taskyard_runs SET status = v.status, attempt = v.attempt, \
     attempts = v.attempts::jsonb, instance = v.instance, started_at = v.started_at, \
     finished_at = v.finished_at, duration_ms = v.duration_ms, result = v.result::jsonb, error = v.error, \
     progress = v.progress, progress_message = v.progress_message \
     FROM UNNEST($1::text[], $2::int8[], $3::text[], $4::int8[], $5::text[], $6::text[], $7::int8[], \
     $8::int8[], $9::int8[], $10::text[], $11::text[], $12::float8[], $13::text[]) \
     AS v(id, fence, status, attempt, attempts, instance, started_at, finished_at, duration_ms, result, \
     error, progress, progress_message) \
     WHERE taskyard_runs.id = v.id AND taskyard_runs.fence = v.fence \
     RETURNING taskyard_runs.id, taskyard_runs.fence";

/// One `UPDATE` of claimed runs' states (see `Store::put_claimed_many`), each written only
/// where its fence (the `i64`) is still the run's; returns the id and fence of each run
/// it wrote.
pub(super) fn put_claimed(
    runs: &[(RunRecord, i64)],
) -> QueryAs<'static, Postgres, (String, i64), PgArguments> {
    let mut rows: Vec<RunRow> = runs.iter().map(|(run, _)| RunRow::encode(run)).collect();
    let rows = &mut rows[..];
    sqlx::query_as(PUT_CLAIMED)
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
