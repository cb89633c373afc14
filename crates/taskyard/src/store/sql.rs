//! The statements both SQL backends run the same way, written once over sqlx's generic
//! `Database`. What differs between SQLite and PostgreSQL is a [`Dialect`]: how a JSONB
//! column is read and written, and how a statement reports the rows it changed. What
//! each backend keeps in its own file is where they lock differently: writing a batch of
//! runs and marking runs `abandoned` (SQLite's single writer connection, closed after a
//! failed transaction, against PostgreSQL's pool).
//!
//! Placeholders are `$N` in both: SQLite reads `$N` as the N-th argument too.

use jiff::Timestamp;
use sqlx::{Database, Encode, Executor, IntoArguments, Pool, QueryBuilder, Type};

use sqlx::Row;

use super::columns::{COLUMNS, RunRow, decode_rows, parse_id};
use super::queue::{Claimed, Enqueued, Job, Orphan, rescue};
use super::{Broadcast, InstanceLease, TickClaim, sqlx_error};
use crate::Error;
use crate::history::{RunFilter, RunId, RunRecord};

/// What differs between the SQL backends in the statements they share.
pub(super) trait Dialect: Database {
    /// The backend's name in errors.
    const BACKEND: &'static str;
    /// `SELECT` of every run column, JSON read back as text, without a `WHERE`.
    const SELECT_RUNS: &'static str;
    /// Every run column, JSON read back as text, as a `SELECT` or `RETURNING` list.
    const RUN_COLUMNS: &'static str;
    /// The expression of a run's schedule name inside its trigger's JSON.
    const TRIGGER_SCHEDULE: &'static str;
    /// Inserts a broadcast (`$1` id, `$2` schedule, `$3` args as JSON text, `$4` origin,
    /// `$5` sent_at).
    const INSERT_BROADCAST: &'static str;
    /// The broadcasts sent at or after `$1`, args as text, oldest first.
    const SELECT_BROADCASTS: &'static str;

    /// What follows a JSON parameter so that it is stored as JSON (`::jsonb`, or nothing).
    const JSON: &'static str;
    /// The task names of the JSON array bound as `$2`, as a subquery.
    const TASKS_OF_2: &'static str;
    /// What locks the rows a claim picks without waiting for other claimers.
    const SKIP_LOCKED: &'static str;
    /// A claimed run's fence, attempt limit, priority and `run_at`, as `RETURNING` reads
    /// them.
    const CLAIM_EXTRA: &'static str;

    /// How many rows a statement changed.
    fn rows_affected(result: &Self::QueryResult) -> u64;
}

impl Dialect for sqlx::Sqlite {
    const BACKEND: &'static str = "sqlite";
    const SELECT_RUNS: &'static str = "SELECT id, task, status, trigger_kind, trigger_data, payload, attempt, attempts, instance, queued_at, started_at, finished_at, duration_ms, result, error, progress, progress_message FROM taskyard_runs";
    const RUN_COLUMNS: &'static str = COLUMNS;
    const TRIGGER_SCHEDULE: &'static str = "json_extract(trigger_data, '$.schedule')";
    const INSERT_BROADCAST: &'static str =
        "INSERT INTO taskyard_broadcasts (id, schedule, args, origin, sent_at) VALUES ($1, $2, $3, $4, $5)";
    const SELECT_BROADCASTS: &'static str = "SELECT id, schedule, args, origin, sent_at FROM taskyard_broadcasts WHERE sent_at >= $1 ORDER BY sent_at, id";
    const JSON: &'static str = "";
    const TASKS_OF_2: &'static str = "SELECT value FROM json_each($2)";
    // SQLite has one writer at a time: the claim's single statement is atomic.
    const SKIP_LOCKED: &'static str = "";
    const CLAIM_EXTRA: &'static str = "fence, max_attempts, priority, run_at";

    fn rows_affected(result: &Self::QueryResult) -> u64 {
        result.rows_affected()
    }
}

impl Dialect for sqlx::Postgres {
    const BACKEND: &'static str = "postgres";
    const SELECT_RUNS: &'static str = "SELECT id, task, status, trigger_kind, trigger_data::text AS trigger_data, payload::text AS payload, attempt::bigint AS attempt, attempts::text AS attempts, instance, queued_at, started_at, finished_at, duration_ms, result::text AS result, error, progress, progress_message FROM taskyard_runs";
    const RUN_COLUMNS: &'static str = "id, task, status, trigger_kind, trigger_data::text AS trigger_data, payload::text AS payload, attempt::bigint AS attempt, attempts::text AS attempts, instance, queued_at, started_at, finished_at, duration_ms, result::text AS result, error, progress, progress_message";
    const TRIGGER_SCHEDULE: &'static str = "trigger_data->>'schedule'";
    const INSERT_BROADCAST: &'static str = "INSERT INTO taskyard_broadcasts (id, schedule, args, origin, sent_at) VALUES ($1, $2, $3::jsonb, $4, $5)";
    const SELECT_BROADCASTS: &'static str = "SELECT id, schedule, args::text AS args, origin, sent_at FROM taskyard_broadcasts WHERE sent_at >= $1 ORDER BY sent_at, id";
    const JSON: &'static str = "::jsonb";
    const TASKS_OF_2: &'static str = "SELECT jsonb_array_elements_text($2::jsonb)";
    const SKIP_LOCKED: &'static str = " FOR UPDATE SKIP LOCKED";
    const CLAIM_EXTRA: &'static str =
        "fence, max_attempts::bigint AS max_attempts, priority::bigint AS priority, run_at";

    fn rows_affected(result: &Self::QueryResult) -> u64 {
        result.rows_affected()
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
    fn error(&self) -> impl Fn(sqlx::Error) -> Error {
        sqlx_error(DB::BACKEND)
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

    /// The runs `filter` lets through, newest first.
    pub async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, Error> {
        let mut query = QueryBuilder::<DB>::new(format!("{} WHERE 1 = 1", DB::SELECT_RUNS));
        if let Some(task) = &filter.task {
            query.push(" AND task = ").push_bind(task.clone());
        }
        if let Some(status) = filter.status {
            query.push(" AND status = ").push_bind(status.as_str());
        }
        if filter.unfinished {
            query.push(" AND status IN ('queued', 'running')");
        }
        if let Some(schedule) = &filter.schedule {
            query
                .push(" AND trigger_kind IN ('schedule', 'custom') AND ")
                .push(DB::TRIGGER_SCHEDULE)
                .push(" = ")
                .push_bind(schedule.clone());
        }
        query.push(super::columns::scheduled_clause(filter));
        query
            .push(" ORDER BY id DESC LIMIT ")
            .push_bind(filter.sql_limit());
        let rows = query.build().fetch_all(self.pool).await.map_err(self.error())?;
        decode_rows(&rows, DB::BACKEND)
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
        sqlx::query::<DB>("DELETE FROM taskyard_broadcasts WHERE sent_at < $1")
            .bind(cutoff)
            .execute(self.pool)
            .await
            .map_err(self.error())?;
        Ok(DB::rows_affected(&done))
    }

    /// Claims a tick in the ledger; true if this call made the claim.
    pub async fn claim_tick(&self, claim: &TickClaim) -> Result<bool, Error> {
        let done = sqlx::query::<DB>(
            "INSERT INTO taskyard_ticks (schedule, tick, target, instance, claimed_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(claim.schedule.clone())
        .bind(claim.tick.as_millisecond())
        .bind(claim.target.clone())
        .bind(claim.instance.clone())
        .bind(Timestamp::now().as_millisecond())
        .execute(self.pool)
        .await
        .map_err(self.error())?;
        Ok(DB::rows_affected(&done) == 1)
    }

    /// The latest tick claimed for `schedule`.
    pub async fn last_tick(&self, schedule: &str) -> Result<Option<Timestamp>, Error> {
        let tick: Option<i64> =
            sqlx::query_scalar::<DB, Option<i64>>("SELECT MAX(tick) FROM taskyard_ticks WHERE schedule = $1")
                .bind(schedule.to_owned())
                .fetch_one(self.pool)
                .await
                .map_err(self.error())?;
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

    /// Writes a durable run to the queue (see `Store::enqueue`).
    pub async fn enqueue(&self, run: &RunRecord, job: &Job) -> Result<Enqueued, Error> {
        let j = DB::JSON;
        let insert = format!(
            "INSERT INTO taskyard_runs ({COLUMNS}, durable, run_at, priority, unique_key, max_attempts, fence) \
             VALUES ($1, $2, $3, $4, $5{j}, $6{j}, $7, $8{j}, $9, $10, $11, $12, $13, $14{j}, $15, $16, $17, TRUE, $18, $19, $20, $21, 0) \
             ON CONFLICT (task, unique_key) WHERE unique_key IS NOT NULL AND status IN ('queued', 'running') DO NOTHING \
             RETURNING id"
        );
        // A keyed run that finished between the refused insert and the read of the live
        // one leaves nothing to hand back: insert again.
        for _ in 0..3 {
            let row = RunRow::encode(run);
            let inserted: Option<String> =
                sqlx::query_scalar::<DB, String>(sqlx::AssertSqlSafe(insert.clone()))
                    .bind(row.id)
                    .bind(row.task)
                    .bind(row.status)
                    .bind(row.trigger_kind)
                    .bind(row.trigger_data)
                    .bind(row.payload)
                    .bind(row.attempt)
                    .bind(row.attempts)
                    .bind(row.instance)
                    .bind(row.queued_at)
                    .bind(row.started_at)
                    .bind(row.finished_at)
                    .bind(row.duration_ms)
                    .bind(row.result)
                    .bind(row.error)
                    .bind(row.progress)
                    .bind(row.progress_message)
                    .bind(job.run_at.as_millisecond())
                    .bind(i64::from(job.priority))
                    .bind(job.key.clone())
                    .bind(i64::from(job.max_attempts))
                    .fetch_optional(self.pool)
                    .await
                    .map_err(self.error())?;
            if inserted.is_some() {
                return Ok(Enqueued::New(run.id));
            }
            let Some(key) = &job.key else {
                break;
            };
            let live: Option<String> = sqlx::query_scalar::<DB, String>(
                "SELECT id FROM taskyard_runs WHERE task = $1 AND unique_key = $2 AND status IN ('queued', 'running')",
            )
            .bind(run.task.clone())
            .bind(key.clone())
            .fetch_optional(self.pool)
            .await
            .map_err(self.error())?;
            if let Some(id) = live {
                return Ok(Enqueued::Existing(parse_id(DB::BACKEND, id)?));
            }
        }
        Err(Error::StoreData {
            backend: DB::BACKEND,
            message: format!(
                "run {} of task `{}` could be neither queued nor found",
                run.id, run.task
            ),
        })
    }

    /// Claims due durable runs for `instance` (see `Store::claim`).
    pub async fn claim(
        &self,
        instance: &str,
        tasks: &[String],
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Claimed>, Error> {
        if tasks.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let names = serde_json::to_string(tasks).map_err(|error| Error::StoreData {
            backend: DB::BACKEND,
            message: format!("task names as JSON: {error}"),
        })?;
        // The runs of `tasks` due at `$1`; `$2` is the task names as a JSON array.
        let due = format!(
            "durable AND status = 'queued' AND run_at <= $1 AND task IN ({})",
            DB::TASKS_OF_2
        );
        // A read first: on SQLite even an `UPDATE` that changes nothing takes the write
        // lock, and an idle instance asks several times a second.
        let probe = format!("SELECT id FROM taskyard_runs WHERE {due} LIMIT 1");
        let found: Option<String> = sqlx::query_scalar::<DB, String>(sqlx::AssertSqlSafe(probe))
            .bind(now.as_millisecond())
            .bind(names.clone())
            .fetch_optional(self.pool)
            .await
            .map_err(self.error())?;
        if found.is_none() {
            return Ok(Vec::new());
        }
        let claim = format!(
            "WITH due AS (SELECT id FROM taskyard_runs WHERE {due} ORDER BY priority DESC, run_at, id LIMIT $4{lock}) \
             UPDATE taskyard_runs SET status = 'running', instance = $3, started_at = COALESCE(started_at, $1), fence = fence + 1 \
             WHERE id IN (SELECT id FROM due) AND status = 'queued' \
             RETURNING {columns}, {extra}",
            lock = DB::SKIP_LOCKED,
            columns = DB::RUN_COLUMNS,
            extra = DB::CLAIM_EXTRA,
        );
        let rows = sqlx::query::<DB>(sqlx::AssertSqlSafe(claim))
            .bind(now.as_millisecond())
            .bind(names)
            .bind(instance.to_owned())
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(self.pool)
            .await
            .map_err(self.error())?;
        let runs = decode_rows(&rows, DB::BACKEND)?;
        let mut claimed = Vec::with_capacity(runs.len());
        for (run, row) in runs.into_iter().zip(&rows) {
            let fence: i64 = row.try_get("fence").map_err(self.error())?;
            let max_attempts: i64 = row.try_get("max_attempts").map_err(self.error())?;
            let priority: i64 = row.try_get("priority").map_err(self.error())?;
            let run_at: i64 = row.try_get("run_at").map_err(self.error())?;
            claimed.push((
                (std::cmp::Reverse(priority), run_at, run.id),
                Claimed {
                    run,
                    fence,
                    max_attempts: u32::try_from(max_attempts).unwrap_or(u32::MAX),
                },
            ));
        }
        // `RETURNING` keeps no order: the queue's order is restored here.
        claimed.sort_by_key(|(order, _)| *order);
        Ok(claimed.into_iter().map(|(_, claimed)| claimed).collect())
    }

    /// Writes a claimed run's state if `fence` is still its own (see `Store::put_claimed`).
    pub async fn put_claimed(&self, run: &RunRecord, fence: i64) -> Result<bool, Error> {
        self.update_fenced(run, fence, None, false).await
    }

    /// Rescues the running durable runs of dead instances (see `Store::requeue_orphans`).
    pub async fn requeue_orphans(&self, now: Timestamp) -> Result<(Vec<RunId>, Vec<RunId>), Error> {
        let select = format!(
            "SELECT {columns}, {extra}, (SELECT heartbeat_at FROM taskyard_instances i WHERE i.id = taskyard_runs.instance) AS seen \
             FROM taskyard_runs WHERE durable AND status = 'running' AND NOT EXISTS \
             (SELECT 1 FROM taskyard_instances i WHERE i.id = taskyard_runs.instance AND i.lease_until >= $1)",
            columns = DB::RUN_COLUMNS,
            extra = DB::CLAIM_EXTRA,
        );
        let rows = sqlx::query::<DB>(sqlx::AssertSqlSafe(select))
            .bind(now.as_millisecond())
            .fetch_all(self.pool)
            .await
            .map_err(self.error())?;
        let runs = decode_rows(&rows, DB::BACKEND)?;
        let (mut requeued, mut abandoned) = (Vec::new(), Vec::new());
        for (run, row) in runs.into_iter().zip(&rows) {
            let fence: i64 = row.try_get("fence").map_err(self.error())?;
            let max_attempts: i64 = row.try_get("max_attempts").map_err(self.error())?;
            let seen: Option<i64> = row.try_get("seen").map_err(self.error())?;
            let orphan = Orphan {
                run,
                fence,
                max_attempts: u32::try_from(max_attempts).unwrap_or(u32::MAX),
                seen: seen.and_then(|ms| Timestamp::from_millisecond(ms).ok()),
            };
            let (next, again) = rescue(&orphan, now);
            // Another instance may be rescuing the same run: the fence lets one through.
            if self
                .update_fenced(&next, fence, again.then_some(now), true)
                .await?
            {
                if again { &mut requeued } else { &mut abandoned }.push(next.id);
            }
        }
        Ok((requeued, abandoned))
    }

    /// Writes `run`'s state where the run's fence is still `fence`; with `requeue_at`, the
    /// run is due again then; with `end_claim`, the fence moves on, so the claim's attempt
    /// can write no more. True if it wrote.
    async fn update_fenced(
        &self,
        run: &RunRecord,
        fence: i64,
        requeue_at: Option<Timestamp>,
        end_claim: bool,
    ) -> Result<bool, Error> {
        let j = DB::JSON;
        let update = format!(
            "UPDATE taskyard_runs SET status = $2, attempt = $3, attempts = $4{j}, instance = $5, started_at = $6, \
             finished_at = $7, duration_ms = $8, result = $9{j}, error = $10, progress = $11, progress_message = $12, \
             run_at = COALESCE($14, run_at), fence = fence + $15 \
             WHERE id = $1 AND fence = $13"
        );
        let row = RunRow::encode(run);
        let done = sqlx::query::<DB>(sqlx::AssertSqlSafe(update))
            .bind(row.id)
            .bind(row.status)
            .bind(row.attempt)
            .bind(row.attempts)
            .bind(row.instance)
            .bind(row.started_at)
            .bind(row.finished_at)
            .bind(row.duration_ms)
            .bind(row.result)
            .bind(row.error)
            .bind(row.progress)
            .bind(row.progress_message)
            .bind(fence)
            .bind(requeue_at.map(|at| at.as_millisecond()))
            .bind(i64::from(end_claim))
            .execute(self.pool)
            .await
            .map_err(self.error())?;
        Ok(DB::rows_affected(&done) == 1)
    }
}
