//! The statements both SQL backends run the same way, written once over sqlx's generic
//! `Database`. What differs between SQLite and PostgreSQL is a [`Dialect`]: how a JSONB
//! column is read and written, and how a statement reports the rows it changed. What
//! each backend keeps in its own file is where they lock differently: writing a batch of
//! runs and marking runs `abandoned` (SQLite's single writer connection, closed after a
//! failed transaction, against PostgreSQL's pool).
//!
//! Statements read every row they return (`fetch_all`), never only the first
//! (`fetch_optional`, `fetch_one`): sqlx resets a SQLite statement once it has the first
//! row, and a write that SQLite commits on that reset, not at its end, skips SQLite's
//! checkpoint hook, so its pages stay in the WAL (a test in `sqlite` shows it).
//!
//! Placeholders are `$N` in both: SQLite reads `$N` as the N-th argument too. The durable
//! queue's statements are in `queue_sql` and `cancel_sql`, the history's pages in
//! `pages_sql`.

use jiff::Timestamp;
use sqlx::{Database, Encode, Executor, IntoArguments, Pool, QueryBuilder, Type};

use super::columns::{COLUMNS, decode_rows};
use super::queue::{ForgottenCount, SchedulePause, minute_of};
use super::{Broadcast, InstanceLease, RunCount, sqlx_error};
use crate::Error;
use crate::history::{RunId, RunRecord};

/// Ticks claimed, or schedules looked up, by one statement: at most five parameters each,
/// well within both backends' limits (SQLite 32,766, PostgreSQL 65,535).
pub(super) const TICKS_PER_STATEMENT: usize = 1_000;

/// The view of every run: the records of ended runs and the durable runs still queued or
/// running, whose records are their jobs until they end.
pub(super) const HISTORY: &str = "taskyard_history";

/// What differs between the SQL backends in the statements they share.
pub(super) trait Dialect: Database {
    /// The backend's name in errors.
    const BACKEND: &'static str;
    /// `SELECT` of every run column, JSON read back as text, without a `WHERE`, from the
    /// history of every run (`taskyard_history`: the ended runs' records and the durable
    /// runs still in the queue).
    const SELECT_RUNS: &'static str;
    /// Every run column, JSON read back as text, as a `SELECT` or `RETURNING` list.
    const RUN_COLUMNS: &'static str;
    /// The expression of a run's schedule name inside its trigger's JSON.
    const TRIGGER_SCHEDULE: &'static str;
    /// A run's payload and result as JSON text, for a text search.
    const JSON_TEXT_OF_PAYLOAD: &'static str;
    /// See [`Dialect::JSON_TEXT_OF_PAYLOAD`] (`''` without a result).
    const JSON_TEXT_OF_RESULT: &'static str;
    /// A pattern match that ignores ASCII case: `LIKE` (SQLite's is so) or `ILIKE`.
    const LIKE: &'static str;
    /// Inserts a broadcast (`$1` id, `$2` schedule, `$3` args as JSON text, `$4` origin,
    /// `$5` sent_at).
    const INSERT_BROADCAST: &'static str;
    /// The broadcasts sent at or after `$1`, args as text, oldest first.
    const SELECT_BROADCASTS: &'static str;

    /// What follows a JSON parameter so that it is stored as JSON (`::jsonb`, or nothing).
    const JSON: &'static str;
    /// The task names of the JSON array bound as `$2`, as a subquery.
    const TASKS_OF_2: &'static str;
    /// The strings of the JSON array bound as `$6` (run ids), as a subquery.
    const TASKS_OF_6: &'static str;
    /// What locks the rows a claim picks without waiting for other claimers.
    const SKIP_LOCKED: &'static str;
    /// The rows whose id the CTE `due` picked, as a `WHERE` condition that looks each up
    /// by its key (PostgreSQL plans `IN (SELECT …)` over a limit it cannot estimate as a
    /// scan of the whole table).
    const IN_DUE: &'static str;
    /// A claimed run's fence, attempt limit, priority, `run_at` and cancel flag (0 or 1),
    /// read from its job row by their names alone, as a claim's `RETURNING` must (SQLite
    /// does not let it name the table).
    const CLAIM_EXTRA: &'static str;
    /// The strings of the JSON array bound as `$1` (run ids), as a subquery.
    const IDS_OF_1: &'static str;
    /// The larger and the smaller of two values: `MAX`/`MIN` or `GREATEST`/`LEAST`.
    const GREATEST: &'static str;
    /// See [`Dialect::GREATEST`].
    const LEAST: &'static str;
    /// What a claim for a task with a limit of running runs takes first, in its
    /// transaction, with the task's name as `$1`, so that claimers of that task count
    /// its running runs one after another (`None`: the statement alone is atomic).
    const TASK_LOCK: Option<&'static str>;
    /// What begins a write transaction. SQLite's takes the write lock at once
    /// (`BEGIN IMMEDIATE`), waiting for it up to the busy timeout: a deferred transaction
    /// that reads first fails with `SQLITE_BUSY` at its first write, without waiting, when
    /// another process wrote since its read.
    const BEGIN: &'static str;

    /// How many rows a statement changed.
    fn rows_affected(result: &Self::QueryResult) -> u64;

    /// What follows a table's name in `FROM` to make a query use `index`: SQLite's
    /// `INDEXED BY` (without statistics it sorts the queue by a temporary B-tree), nothing on
    /// PostgreSQL.
    fn indexed_by(index: &str) -> String;
}

impl Dialect for sqlx::Sqlite {
    const BACKEND: &'static str = "sqlite";
    const SELECT_RUNS: &'static str = "SELECT id, task, status, trigger_kind, trigger_data, payload, attempt, attempts, instance, queued_at, started_at, finished_at, duration_ms, result, error, progress, progress_message FROM taskyard_history";
    const RUN_COLUMNS: &'static str = COLUMNS;
    const TRIGGER_SCHEDULE: &'static str = "json_extract(trigger_data, '$.schedule')";
    const JSON_TEXT_OF_PAYLOAD: &'static str = "payload";
    const JSON_TEXT_OF_RESULT: &'static str = "COALESCE(result, '')";
    const LIKE: &'static str = " LIKE ";
    const INSERT_BROADCAST: &'static str =
        "INSERT INTO taskyard_broadcasts (id, schedule, args, origin, sent_at) VALUES ($1, $2, $3, $4, $5)";
    const SELECT_BROADCASTS: &'static str = "SELECT id, schedule, args, origin, sent_at FROM taskyard_broadcasts WHERE sent_at >= $1 ORDER BY sent_at, id";
    const JSON: &'static str = "";
    const TASKS_OF_2: &'static str = "SELECT value FROM json_each($2)";
    const TASKS_OF_6: &'static str = "SELECT value FROM json_each($6)";
    // SQLite has one writer at a time: the claim's single statement is atomic.
    const SKIP_LOCKED: &'static str = "";
    const IN_DUE: &'static str = "id IN (SELECT id FROM due)";
    const CLAIM_EXTRA: &'static str = "fence, max_attempts, priority, run_at, cancel_requested";
    const IDS_OF_1: &'static str = "SELECT value FROM json_each($1)";
    const GREATEST: &'static str = "MAX";
    const LEAST: &'static str = "MIN";
    // One writer at a time: the claim's statement counts and claims under the write lock.
    const TASK_LOCK: Option<&'static str> = None;
    const BEGIN: &'static str = "BEGIN IMMEDIATE";

    fn rows_affected(result: &Self::QueryResult) -> u64 {
        result.rows_affected()
    }

    fn indexed_by(index: &str) -> String {
        format!(" INDEXED BY {index}")
    }
}

impl Dialect for sqlx::Postgres {
    const BACKEND: &'static str = "postgres";
    const SELECT_RUNS: &'static str = "SELECT id, task, status, trigger_kind, trigger_data::text AS trigger_data, payload::text AS payload, attempt::bigint AS attempt, attempts::text AS attempts, instance, queued_at, started_at, finished_at, duration_ms, result::text AS result, error, progress, progress_message FROM taskyard_history";
    const RUN_COLUMNS: &'static str = "id, task, status, trigger_kind, trigger_data::text AS trigger_data, payload::text AS payload, attempt::bigint AS attempt, attempts::text AS attempts, instance, queued_at, started_at, finished_at, duration_ms, result::text AS result, error, progress, progress_message";
    const TRIGGER_SCHEDULE: &'static str = "trigger_data->>'schedule'";
    const JSON_TEXT_OF_PAYLOAD: &'static str = "payload::text";
    const JSON_TEXT_OF_RESULT: &'static str = "COALESCE(result::text, '')";
    const LIKE: &'static str = " ILIKE ";
    const INSERT_BROADCAST: &'static str = "INSERT INTO taskyard_broadcasts (id, schedule, args, origin, sent_at) VALUES ($1, $2, $3::jsonb, $4, $5)";
    const SELECT_BROADCASTS: &'static str = "SELECT id, schedule, args::text AS args, origin, sent_at FROM taskyard_broadcasts WHERE sent_at >= $1 ORDER BY sent_at, id";
    const JSON: &'static str = "::jsonb";
    const TASKS_OF_2: &'static str = "SELECT jsonb_array_elements_text($2::jsonb)";
    const TASKS_OF_6: &'static str = "SELECT jsonb_array_elements_text($6::jsonb)";
    const SKIP_LOCKED: &'static str = " FOR UPDATE SKIP LOCKED";
    const IN_DUE: &'static str = "id = ANY(ARRAY(SELECT id FROM due))";
    const CLAIM_EXTRA: &'static str = "fence, max_attempts::bigint AS max_attempts, \
         priority::bigint AS priority, run_at, \
         (CASE WHEN cancel_requested THEN 1 ELSE 0 END)::bigint AS cancel_requested";
    const IDS_OF_1: &'static str = "SELECT jsonb_array_elements_text($1::jsonb)";
    const GREATEST: &'static str = "GREATEST";
    const LEAST: &'static str = "LEAST";
    // Under READ COMMITTED two claims could both count the same running runs: a lock per
    // task, held to the end of the transaction, makes the second count after the first
    // committed.
    const TASK_LOCK: Option<&'static str> = Some("SELECT pg_advisory_xact_lock(hashtext('taskyard:' || $1))");
    const BEGIN: &'static str = "BEGIN";

    fn rows_affected(result: &Self::QueryResult) -> u64 {
        result.rows_affected()
    }

    fn indexed_by(_index: &str) -> String {
        String::new()
    }
}

/// The shared statements, run on `pool`.
pub(super) struct Statements<'p, DB: Database> {
    pub pool: &'p Pool<DB>,
}

impl<DB> Statements<'_, DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> String: Type<DB> + Encode<'q, DB> + sqlx::Decode<'q, DB>,
    for<'q> i64: Type<DB> + Encode<'q, DB> + sqlx::Decode<'q, DB>,
    for<'q> f64: Type<DB> + Encode<'q, DB> + sqlx::Decode<'q, DB>,
    for<'q> &'static str: Type<DB> + Encode<'q, DB>,
    for<'q> Option<String>: Encode<'q, DB>,
    for<'q> Option<i64>: Encode<'q, DB>,
    for<'q> Option<f64>: Encode<'q, DB>,
    for<'r> &'r str: sqlx::ColumnIndex<DB::Row>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    pub(super) fn error(&self) -> impl Fn(sqlx::Error) -> Error {
        sqlx_error(DB::BACKEND)
    }

    /// A write transaction on the pool ([`Dialect::BEGIN`]).
    pub(super) async fn begin(&self) -> Result<sqlx::Transaction<'static, DB>, Error> {
        self.pool.begin_with(DB::BEGIN).await.map_err(self.error())
    }

    /// The run with `id`, if it is stored.
    pub async fn get_run(&self, id: RunId) -> Result<Option<RunRecord>, Error> {
        let rows = sqlx::query::<DB>(sqlx::AssertSqlSafe(format!("{} WHERE id = $1", DB::SELECT_RUNS)))
            .bind(id.to_string())
            .fetch_all(self.pool)
            .await
            .map_err(self.error())?;
        Ok(decode_rows(&rows, DB::BACKEND)?.pop())
    }

    /// Renews (or creates) an instance's lease.
    pub async fn heartbeat(&self, lease: &InstanceLease) -> Result<(), Error> {
        sqlx::query::<DB>(
            "INSERT INTO taskyard_instances (id, hostname, pid, started_at, heartbeat_at, lease_until) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, lease_until = excluded.lease_until",
        )
        .bind(lease.instance.clone())
        .bind(lease.hostname.clone())
        .bind(i64::from(lease.pid))
        .bind(lease.started_at.as_millisecond())
        .bind(lease.heartbeat_at.as_millisecond())
        .bind(lease.lease_until.as_millisecond())
        .execute(self.pool)
        .await
        .map_err(self.error())?;
        Ok(())
    }

    /// Drops an instance's lease.
    pub async fn release_instance(&self, instance: &str) -> Result<(), Error> {
        sqlx::query::<DB>("DELETE FROM taskyard_instances WHERE id = $1")
            .bind(instance.to_owned())
            .execute(self.pool)
            .await
            .map_err(self.error())?;
        Ok(())
    }

    /// Deletes runs finished before `finished_before`, with old ticks and broadcasts.
    pub async fn prune_runs(&self, finished_before: Timestamp) -> Result<u64, Error> {
        let cutoff = finished_before.as_millisecond();
        let done = sqlx::query::<DB>("DELETE FROM taskyard_runs WHERE finished_at < $1")
            .bind(cutoff)
            .execute(self.pool)
            .await
            .map_err(self.error())?;
        // Each schedule's latest tick stays: catch-up after downtime starts from it.
        sqlx::query::<DB>(
            "DELETE FROM taskyard_ticks WHERE claimed_at < $1 AND tick < \
             (SELECT MAX(latest.tick) FROM taskyard_ticks latest WHERE latest.schedule = taskyard_ticks.schedule)",
        )
        .bind(cutoff)
        .execute(self.pool)
        .await
        .map_err(self.error())?;
        for statement in [
            "DELETE FROM taskyard_broadcasts WHERE sent_at < $1",
            "DELETE FROM taskyard_forgotten WHERE minute < $1",
        ] {
            sqlx::query::<DB>(statement)
                .bind(cutoff)
                .execute(self.pool)
                .await
                .map_err(self.error())?;
        }
        Ok(DB::rows_affected(&done))
    }

    /// The unfinished runs of any of `schedules`, newest first; see
    /// [`super::Store::unfinished_of_schedules`].
    pub async fn unfinished_of_schedules(&self, schedules: &[String]) -> Result<Vec<RunRecord>, Error> {
        let mut runs = Vec::new();
        for chunk in schedules.chunks(TICKS_PER_STATEMENT) {
            // Each schedule's newest, numbered in a window over its own runs.
            let mut query = QueryBuilder::<DB>::new(format!(
                "SELECT {columns} FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY {schedule} ORDER BY id DESC) AS newest \
                 FROM taskyard_history WHERE status IN ('queued', 'running') AND trigger_kind IN ('schedule', 'custom') AND {schedule} IN (",
                columns = DB::RUN_COLUMNS,
                schedule = DB::TRIGGER_SCHEDULE
            ));
            let mut names = query.separated(", ");
            for schedule in chunk {
                names.push_bind(schedule.clone());
            }
            query.push(format!(
                ")) AS unfinished WHERE newest <= {} ORDER BY id DESC",
                super::UNFINISHED_PER_SCHEDULE
            ));
            let rows = query.build().fetch_all(self.pool).await.map_err(self.error())?;
            runs.extend(decode_rows(&rows, DB::BACKEND)?);
        }
        Ok(runs)
    }

    /// The latest tick claimed for `schedule`.
    pub async fn last_tick(&self, schedule: &str) -> Result<Option<Timestamp>, Error> {
        let tick: Option<i64> =
            sqlx::query_scalar::<DB, Option<i64>>("SELECT MAX(tick) FROM taskyard_ticks WHERE schedule = $1")
                .bind(schedule.to_owned())
                .fetch_all(self.pool)
                .await
                .map_err(self.error())?
                .into_iter()
                .next()
                .flatten();
        tick.map(|ms| {
            Timestamp::from_millisecond(ms).map_err(|_| Error::StoreData {
                backend: DB::BACKEND,
                message: format!("bad tick `{ms}` for schedule `{schedule}`"),
            })
        })
        .transpose()
    }

    /// The instances whose lease runs at `now` and that were seen since `seen_since`.
    pub async fn live_instances(&self, now: Timestamp, seen_since: Timestamp) -> Result<Vec<String>, Error> {
        sqlx::query_scalar::<DB, String>(
            "SELECT id FROM taskyard_instances WHERE lease_until >= $1 AND heartbeat_at >= $2 ORDER BY id",
        )
        .bind(now.as_millisecond())
        .bind(seen_since.as_millisecond())
        .fetch_all(self.pool)
        .await
        .map_err(self.error())
    }

    /// Every instance's last lease, by id.
    pub async fn instances(&self) -> Result<Vec<InstanceLease>, Error> {
        let rows: Vec<(String, String, i64, i64, i64, i64)> = sqlx::query_as::<DB, _>(
            "SELECT id, hostname, CAST(pid AS BIGINT), started_at, heartbeat_at, lease_until FROM taskyard_instances ORDER BY id",
        )
        .fetch_all(self.pool)
        .await
        .map_err(self.error())?;
        let at = |ms: i64| {
            Timestamp::from_millisecond(ms).map_err(|e| Error::StoreData {
                backend: DB::BACKEND,
                message: format!("an instance's time {ms} is out of range: {e}"),
            })
        };
        rows.into_iter()
            .map(
                |(instance, hostname, pid, started_at, heartbeat_at, lease_until)| {
                    Ok(InstanceLease {
                        instance,
                        hostname,
                        pid: u32::try_from(pid).unwrap_or_default(),
                        started_at: at(started_at)?,
                        heartbeat_at: at(heartbeat_at)?,
                        lease_until: at(lease_until)?,
                    })
                },
            )
            .collect()
    }

    /// Finished runs by bucket of finish time and status (see `Store::run_counts`).
    pub async fn run_counts(&self, since: Timestamp, bucket_ms: i64) -> Result<Vec<RunCount>, Error> {
        let bucket_ms = bucket_ms.max(1);
        // The records by finish time, and the succeeded runs not kept by the minute they
        // ended in, from the minute `since` falls in.
        let rows: Vec<(i64, String, i64)> = sqlx::query_as::<DB, _>(
            "SELECT bucket, status, CAST(SUM(runs) AS BIGINT) FROM (\
             SELECT (finished_at / $2) * $2 AS bucket, status, COUNT(*) AS runs FROM taskyard_runs \
             WHERE finished_at >= $1 GROUP BY bucket, status \
             UNION ALL SELECT (minute / $2) * $2 AS bucket, 'succeeded' AS status, SUM(runs) AS runs \
             FROM taskyard_forgotten WHERE minute >= $3 GROUP BY bucket\
             ) counted GROUP BY bucket, status ORDER BY bucket, status",
        )
        .bind(since.as_millisecond())
        .bind(bucket_ms)
        .bind(minute_of(since))
        .fetch_all(self.pool)
        .await
        .map_err(self.error())?;
        let bad = |message: String| Error::StoreData {
            backend: DB::BACKEND,
            message,
        };
        rows.into_iter()
            .map(|(bucket, status, count)| {
                Ok(RunCount {
                    bucket: Timestamp::from_millisecond(bucket)
                        .map_err(|e| bad(format!("a bucket's time {bucket}: {e}")))?,
                    status: status
                        .parse()
                        .map_err(|_| bad(format!("unknown run status `{status}`")))?,
                    count: u64::try_from(count).unwrap_or_default(),
                })
            })
            .collect()
    }

    /// Adds to `writer`'s counts of succeeded runs not kept (see `Store::count_forgotten`).
    pub async fn count_forgotten(&self, writer: &str, counts: &[ForgottenCount]) -> Result<(), Error> {
        if counts.is_empty() {
            return Ok(());
        }
        let mut query =
            QueryBuilder::<DB>::new("INSERT INTO taskyard_forgotten (minute, task, writer, runs) ");
        query.push_values(counts, |mut values, count| {
            values
                .push_bind(count.minute)
                .push_bind(count.task.clone())
                .push_bind(writer.to_owned())
                .push_bind(i64::try_from(count.runs).unwrap_or(i64::MAX));
        });
        query.push(
            " ON CONFLICT (minute, task, writer) DO UPDATE SET runs = taskyard_forgotten.runs + excluded.runs",
        );
        query.build().execute(self.pool).await.map_err(self.error())?;
        Ok(())
    }

    /// `task`'s succeeded runs not kept since `since`'s minute (see `Store::forgotten_runs`).
    pub async fn forgotten_runs(&self, task: &str, since: Timestamp) -> Result<u64, Error> {
        let runs: i64 = sqlx::query_scalar::<DB, i64>(
            "SELECT CAST(COALESCE(SUM(runs), 0) AS BIGINT) FROM taskyard_forgotten WHERE minute >= $1 AND task = $2",
        )
        .bind(minute_of(since))
        .bind(task.to_owned())
        .fetch_one(self.pool)
        .await
        .map_err(self.error())?;
        Ok(u64::try_from(runs).unwrap_or_default())
    }

    /// Writes a broadcast for the other instances.
    pub async fn broadcast(&self, broadcast: &Broadcast) -> Result<(), Error> {
        sqlx::query::<DB>(DB::INSERT_BROADCAST)
            .bind(broadcast.id.clone())
            .bind(broadcast.schedule.clone())
            .bind(broadcast.args.to_string())
            .bind(broadcast.origin.clone())
            .bind(broadcast.sent_at.as_millisecond())
            .execute(self.pool)
            .await
            .map_err(self.error())?;
        Ok(())
    }

    /// The broadcasts sent at or after `since`, oldest first.
    pub async fn broadcasts_since(&self, since: Timestamp) -> Result<Vec<Broadcast>, Error> {
        let rows: Vec<(String, String, String, String, i64)> =
            sqlx::query_as::<DB, (String, String, String, String, i64)>(DB::SELECT_BROADCASTS)
                .bind(since.as_millisecond())
                .fetch_all(self.pool)
                .await
                .map_err(self.error())?;
        rows.into_iter()
            .map(|row| super::columns::decode_broadcast(DB::BACKEND, row))
            .collect()
    }

    /// Stores a schedule's pause or resume (see `Store::set_schedule_paused`).
    pub async fn set_schedule_paused(&self, pause: &SchedulePause) -> Result<(), Error> {
        sqlx::query::<DB>(
            "INSERT INTO taskyard_schedules (schedule, paused, changed_at, instance) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (schedule) DO UPDATE SET paused = excluded.paused, changed_at = excluded.changed_at, \
             instance = excluded.instance",
        )
        .bind(pause.schedule.clone())
        .bind(i64::from(pause.paused))
        .bind(pause.changed_at.as_millisecond())
        .bind(pause.instance.clone())
        .execute(self.pool)
        .await
        .map_err(self.error())?;
        Ok(())
    }

    /// Every stored pause or resume.
    pub async fn schedule_pauses(&self) -> Result<Vec<SchedulePause>, Error> {
        let rows = sqlx::query_as::<DB, (String, i64, i64, String)>(
            "SELECT schedule, paused, changed_at, instance FROM taskyard_schedules ORDER BY schedule",
        )
        .fetch_all(self.pool)
        .await
        .map_err(self.error())?;
        rows.into_iter()
            .map(|(schedule, paused, changed_at, instance)| {
                Ok(SchedulePause {
                    schedule,
                    paused: paused != 0,
                    changed_at: super::columns::timestamp(DB::BACKEND, changed_at)?,
                    instance,
                })
            })
            .collect()
    }
}
