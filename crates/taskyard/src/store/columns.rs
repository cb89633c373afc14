//! The row form of a [`RunRecord`], shared by the SQL backends: timestamps as Unix
//! milliseconds and structured fields as JSON text, so both databases store the same thing.

use std::collections::HashSet;

use jiff::Timestamp;
use serde_json::Value;

use crate::Error;
use crate::history::{RunId, RunRecord};

/// One `taskyard_runs` row.
pub(crate) struct RunRow {
    pub id: String,
    pub task: String,
    pub status: String,
    pub trigger_kind: String,
    pub trigger_data: String,
    pub payload: String,
    pub attempt: i64,
    pub attempts: String,
    pub instance: String,
    pub queued_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub duration_ms: Option<i64>,
    pub result: Option<String>,
    pub error: Option<String>,
    pub progress: Option<f64>,
    pub progress_message: Option<String>,
}

/// Every column, in the order `RunRow` binds them.
pub(crate) const COLUMNS: &str = "id, task, status, trigger_kind, trigger_data, payload, attempt, attempts, instance, queued_at, started_at, finished_at, duration_ms, result, error, progress, progress_message";

impl RunRow {
    pub fn encode(run: &RunRecord) -> RunRow {
        RunRow {
            id: run.id.to_string(),
            task: run.task.clone(),
            status: run.status.as_str().to_owned(),
            trigger_kind: run.trigger.kind().to_owned(),
            trigger_data: json(&run.trigger),
            payload: run.payload.to_string(),
            attempt: i64::from(run.attempt),
            attempts: json(&run.attempts),
            instance: run.instance.clone(),
            queued_at: run.queued_at.as_millisecond(),
            started_at: run.started_at.map(|t| t.as_millisecond()),
            finished_at: run.finished_at.map(|t| t.as_millisecond()),
            duration_ms: run.duration_ms.map(|d| i64::try_from(d).unwrap_or(i64::MAX)),
            result: run.result.as_ref().map(Value::to_string),
            error: run.error.clone(),
            progress: run.progress.as_ref().map(|p| p.fraction),
            progress_message: run.progress.as_ref().and_then(|p| p.message.clone()),
        }
    }

    /// The record this row holds; its strings move into it.
    pub fn decode(self, backend: &'static str) -> Result<RunRecord, Error> {
        let RunRow {
            id,
            task,
            status,
            trigger_kind: _,
            trigger_data,
            payload,
            attempt,
            attempts,
            instance,
            queued_at,
            started_at,
            finished_at,
            duration_ms,
            result,
            error,
            progress,
            progress_message,
        } = self;
        let bad = |what: &str, detail: String| Error::StoreData {
            backend,
            message: format!("run {id}: bad {what}: {detail}"),
        };
        let time =
            |what: &str, ms: i64| Timestamp::from_millisecond(ms).map_err(|e| bad(what, e.to_string()));
        let parsed: RunId = id.parse().map_err(|_| bad("id", id.clone()))?;
        Ok(RunRecord {
            id: parsed,
            trigger: serde_json::from_str(&trigger_data).map_err(|e| bad("trigger", e.to_string()))?,
            payload: serde_json::from_str(&payload).map_err(|e| bad("payload", e.to_string()))?,
            status: status.parse().map_err(|_| bad("status", status.clone()))?,
            attempt: u32::try_from(attempt).map_err(|e| bad("attempt", e.to_string()))?,
            attempts: serde_json::from_str(&attempts).map_err(|e| bad("attempts", e.to_string()))?,
            queued_at: time("queued_at", queued_at)?,
            started_at: started_at.map(|ms| time("started_at", ms)).transpose()?,
            finished_at: finished_at.map(|ms| time("finished_at", ms)).transpose()?,
            duration_ms: duration_ms.map(|d| u64::try_from(d).unwrap_or(0)),
            result: result
                .as_deref()
                .map(serde_json::from_str)
                .transpose()
                .map_err(|e| bad("result", e.to_string()))?,
            progress: progress.map(|fraction| crate::history::Progress {
                fraction,
                message: progress_message,
            }),
            task,
            instance,
            error,
        })
    }
}

/// The run's columns by name, in the order `RunRow` holds them.
const NAMES: [&str; 17] = [
    "id",
    "task",
    "status",
    "trigger_kind",
    "trigger_data",
    "payload",
    "attempt",
    "attempts",
    "instance",
    "queued_at",
    "started_at",
    "finished_at",
    "duration_ms",
    "result",
    "error",
    "progress",
    "progress_message",
];

/// Where each of `names` is in a result's rows, read off its first `row` (every row of a
/// result has the same columns): found by name once a result, not once a column of every
/// row, which a claim of 1,024 runs did 17,408 times.
pub(super) fn places<R: sqlx::Row, const N: usize>(
    row: &R,
    names: [&str; N],
) -> Result<[usize; N], sqlx::Error>
where
    for<'r> &'r str: sqlx::ColumnIndex<R>,
{
    let mut places = [0; N];
    for (place, name) in places.iter_mut().zip(names) {
        *place = sqlx::ColumnIndex::index(&name, row)?;
    }
    Ok(places)
}

/// Reads a `taskyard_runs` row of either backend (the columns have the same names and
/// types in both), its columns at `at` ([`places`] of [`NAMES`]).
fn read_row<'r, R: sqlx::Row>(row: &'r R, at: &[usize; 17]) -> Result<RunRow, sqlx::Error>
where
    usize: sqlx::ColumnIndex<R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    f64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(RunRow {
        id: row.try_get(at[0])?,
        task: row.try_get(at[1])?,
        status: row.try_get(at[2])?,
        trigger_kind: row.try_get(at[3])?,
        trigger_data: row.try_get(at[4])?,
        payload: row.try_get(at[5])?,
        attempt: row.try_get(at[6])?,
        attempts: row.try_get(at[7])?,
        instance: row.try_get(at[8])?,
        queued_at: row.try_get(at[9])?,
        started_at: row.try_get(at[10])?,
        finished_at: row.try_get(at[11])?,
        duration_ms: row.try_get(at[12])?,
        result: row.try_get(at[13])?,
        error: row.try_get(at[14])?,
        progress: row.try_get(at[15])?,
        progress_message: row.try_get(at[16])?,
    })
}

/// The run records of `rows`, read and decoded; `backend` names the store in errors.
pub(super) fn decode_rows<R: sqlx::Row>(rows: &[R], backend: &'static str) -> Result<Vec<RunRecord>, Error>
where
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    usize: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> f64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let Some(first) = rows.first() else {
        return Ok(Vec::new());
    };
    let at = places(first, NAMES).map_err(super::sqlx_error(backend))?;
    rows.iter()
        .map(|row| {
            read_row(row, &at)
                .map_err(super::sqlx_error(backend))?
                .decode(backend)
        })
        .collect()
}

fn json<T: serde::Serialize>(value: &T) -> String {
    // Serializing these plain data types into a String cannot fail.
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

/// A `taskyard_broadcasts` row: (id, schedule, args, origin, sent_at).
pub(crate) fn decode_broadcast(
    backend: &'static str,
    (id, schedule, args, origin, sent_at): (String, String, String, String, i64),
) -> Result<super::Broadcast, Error> {
    let bad = |what: &str, detail: String| Error::StoreData {
        backend,
        message: format!("broadcast {id}: bad {what}: {detail}"),
    };
    Ok(super::Broadcast {
        args: serde_json::from_str(&args).map_err(|e| bad("args", e.to_string()))?,
        sent_at: Timestamp::from_millisecond(sent_at).map_err(|e| bad("sent_at", e.to_string()))?,
        id,
        schedule,
        origin,
    })
}

/// The `scheduled` filter of a runs listing, the same SQL in both dialects.
pub(super) fn scheduled_clause(filter: &crate::history::RunFilter) -> &'static str {
    match filter.scheduled {
        Some(true) => " AND trigger_kind IN ('schedule', 'custom')",
        Some(false) => " AND trigger_kind NOT IN ('schedule', 'custom')",
        None => "",
    }
}

/// What an upsert replaces: everything but the id and the fields fixed at creation.
pub(super) const UPSERT_TAIL: &str = " ON CONFLICT (id) DO UPDATE SET status = excluded.status, attempt = excluded.attempt, attempts = excluded.attempts, instance = excluded.instance, started_at = excluded.started_at, finished_at = excluded.finished_at, duration_ms = excluded.duration_ms, result = excluded.result, error = excluded.error, progress = excluded.progress, progress_message = excluded.progress_message";

/// One multi-row `INSERT` of `runs`, a run already stored replaced by its latest state.
/// `json` follows each JSON column's parameter (nothing on SQLite; PostgreSQL writes its
/// batches as arrays instead, `pg_batch.rs`).
pub(super) fn insert_runs<DB>(runs: &[RunRecord], json: &str) -> sqlx::QueryBuilder<DB>
where
    DB: sqlx::Database,
    DB::Arguments: Default,
    for<'t> String: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> Option<String>: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> i64: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> Option<i64>: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> Option<f64>: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    let mut query = sqlx::QueryBuilder::<DB>::new(format!("INSERT INTO taskyard_runs ({COLUMNS}) "));
    query.push_values(runs.iter().map(RunRow::encode), |mut values, row| {
        values
            .push_bind(row.id)
            .push_bind(row.task)
            .push_bind(row.status)
            .push_bind(row.trigger_kind)
            .push_bind(row.trigger_data)
            .push_unseparated(json)
            .push_bind(row.payload)
            .push_unseparated(json)
            .push_bind(row.attempt)
            .push_bind(row.attempts)
            .push_unseparated(json)
            .push_bind(row.instance)
            .push_bind(row.queued_at)
            .push_bind(row.started_at)
            .push_bind(row.finished_at)
            .push_bind(row.duration_ms)
            .push_bind(row.result)
            .push_unseparated(json)
            .push_bind(row.error)
            .push_bind(row.progress)
            .push_bind(row.progress_message);
    });
    query.push(UPSERT_TAIL);
    query
}

/// For each of `runs`, in order, whether its write went in: the store returned its id and
/// fence among those it `written`.
pub(super) fn fenced_written(runs: &[(RunRecord, i64)], written: &HashSet<(String, i64)>) -> Vec<bool> {
    runs.iter()
        .map(|(run, fence)| written.contains(&(run.id.to_string(), *fence)))
        .collect()
}

/// Which of `runs` a statement deleted, from the ids and fences it returned.
pub(super) fn forgotten(runs: &[(RunId, i64)], deleted: Vec<(String, i64)>) -> Vec<bool> {
    let deleted: HashSet<(String, i64)> = deleted.into_iter().collect();
    runs.iter()
        .map(|(id, fence)| deleted.contains(&(id.to_string(), *fence)))
        .collect()
}

/// Run ids as the store returned them; `backend` names the store in errors.
pub(super) fn parse_ids(backend: &'static str, ids: Vec<String>) -> Result<Vec<RunId>, Error> {
    ids.into_iter().map(|id| parse_id(backend, id)).collect()
}

/// A run id as the store returned it; `backend` names the store in errors.
pub(super) fn parse_id(backend: &'static str, id: String) -> Result<RunId, Error> {
    id.parse().map_err(|_| Error::StoreData {
        backend,
        message: format!("bad run id `{id}`"),
    })
}

/// A timestamp as the store keeps it (Unix milliseconds); `backend` names the store in
/// errors.
pub(super) fn timestamp(backend: &'static str, ms: i64) -> Result<Timestamp, Error> {
    Timestamp::from_millisecond(ms).map_err(|error| Error::StoreData {
        backend,
        message: format!("bad timestamp {ms}: {error}"),
    })
}
