//! The durable queue's statements, shared by both SQL backends like those of `sql`:
//! enqueue, claim (with each task's limit of running runs across the cluster), fenced
//! writes of a claimed attempt, the queue again for retries and orphans, and cancels asked
//! for through any instance.

use jiff::Timestamp;
use sqlx::query::Query;
use sqlx::{Encode, Executor, IntoArguments, Row, Type};

use super::columns::{COLUMNS, RunRow, decode_rows, parse_id, parse_ids};
use super::queue::{CancelRequest, ClaimTask, Claimed, Enqueued, Job, Orphan, rescue, rescued_due};
use super::sql::{Dialect, Statements};
use crate::Error;
use crate::history::{RunId, RunRecord, RunStatus};

/// Every column of a run but its id as `$2`…`$17`, in `COLUMNS` order, for an `UPDATE`;
/// `j` follows the JSON ones.
fn set_columns(j: &str) -> String {
    format!(
        "task = $2, status = $3, trigger_kind = $4, trigger_data = $5{j}, payload = $6{j}, attempt = $7, \
         attempts = $8{j}, instance = $9, queued_at = $10, started_at = $11, finished_at = $12, duration_ms = $13, \
         result = $14{j}, error = $15, progress = $16, progress_message = $17"
    )
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
    /// Binds a run's columns as `$1`…`$17`, in `COLUMNS` order.
    fn bind_run<'q>(query: Query<'q, DB, DB::Arguments>, run: &RunRecord) -> Query<'q, DB, DB::Arguments> {
        let row = RunRow::encode(run);
        query
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
            let query = Self::bind_run(sqlx::query::<DB>(sqlx::AssertSqlSafe(insert.clone())), run)
                .bind(job.run_at.as_millisecond())
                .bind(i64::from(job.priority))
                .bind(job.key.clone())
                .bind(i64::from(job.max_attempts));
            let inserted = query.fetch_optional(self.pool).await.map_err(self.error())?;
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

    /// Claims due durable runs for `instance` (see `Store::claim`): the tasks without a
    /// limit in one statement, each task with a limit in one of its own that counts the
    /// task's running runs as it claims. Every statement walks the queue's indexes (named
    /// on SQLite; on PostgreSQL the store claims through connections that do not sort).
    pub async fn claim(
        &self,
        instance: &str,
        tasks: &[ClaimTask],
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Claimed>, Error> {
        let (limited, free): (Vec<&ClaimTask>, Vec<&ClaimTask>) =
            tasks.iter().partition(|task| task.limit.is_some());
        let mut claimed = Vec::new();
        let names: Vec<&str> = free.iter().map(|task| task.name.as_str()).collect();
        if !names.is_empty() && limit > 0 && self.any_due(&names, now).await? {
            let statement = claim_statement::<DB>(&format!("task IN ({})", DB::TASKS_OF_2), "$4", DUE_INDEX);
            let query = sqlx::query::<DB>(sqlx::AssertSqlSafe(statement))
                .bind(now.as_millisecond())
                .bind(json_names(&names)?)
                .bind(instance.to_owned())
                .bind(i64::try_from(limit).unwrap_or(i64::MAX));
            let rows = query.fetch_all(self.pool).await.map_err(self.error())?;
            claimed.extend(self.claimed(&rows)?);
        }
        let names: Vec<&str> = limited.iter().map(|task| task.name.as_str()).collect();
        if !names.is_empty() && self.any_due(&names, now).await? {
            for task in limited {
                let room = limit.saturating_sub(claimed.len());
                if room == 0 {
                    break;
                }
                claimed.extend(self.claim_limited(instance, task, now, room).await?);
            }
        }
        // `RETURNING` keeps no order: the queue's order is restored here.
        claimed.sort_by_key(|(order, _)| *order);
        Ok(claimed.into_iter().map(|(_, claimed)| claimed).collect())
    }

    /// True when a durable run of one of `tasks` is due at `now`. A read first: on SQLite
    /// even an `UPDATE` that changes nothing takes the write lock, and an idle instance
    /// asks several times a second. Ordered as the queue is, so that it walks the queue's
    /// index: without an order PostgreSQL scans the table past every finished run.
    async fn any_due(&self, tasks: &[&str], now: Timestamp) -> Result<bool, Error> {
        let probe = format!(
            "SELECT id FROM taskyard_runs{index} WHERE {DUE} AND task IN ({tasks}) ORDER BY priority DESC, run_at, id LIMIT 1",
            index = DB::indexed_by(DUE_INDEX),
            tasks = DB::TASKS_OF_2
        );
        let found: Option<String> = sqlx::query_scalar::<DB, String>(sqlx::AssertSqlSafe(probe))
            .bind(now.as_millisecond())
            .bind(json_names(tasks)?)
            .fetch_optional(self.pool)
            .await
            .map_err(self.error())?;
        Ok(found.is_some())
    }

    /// Claims at most `room` runs of a task with a limit, leaving its running runs across
    /// the cluster at or under it.
    async fn claim_limited(
        &self,
        instance: &str,
        task: &ClaimTask,
        now: Timestamp,
        room: usize,
    ) -> Result<Vec<(QueueOrder, Claimed)>, Error> {
        let running = format!(
            "(SELECT COUNT(*) FROM taskyard_runs WHERE task = $2 AND durable AND status = 'running' AND id NOT IN ({ended}))",
            ended = DB::TASKS_OF_6
        );
        let count = format!(
            "{greatest}(0, {least}($4, $5 - {running}))",
            greatest = DB::GREATEST,
            least = DB::LEAST
        );
        let statement = claim_statement::<DB>("task = $2", &count, DUE_BY_TASK_INDEX);
        let query = sqlx::query::<DB>(sqlx::AssertSqlSafe(statement))
            .bind(now.as_millisecond())
            .bind(task.name.clone())
            .bind(instance.to_owned())
            .bind(i64::try_from(room).unwrap_or(i64::MAX))
            .bind(i64::from(task.limit.unwrap_or(u32::MAX)))
            .bind(json_ids(&task.ended)?);
        let rows = match DB::TASK_LOCK {
            None => query.fetch_all(self.pool).await.map_err(self.error())?,
            Some(lock) => {
                let mut tx = self.pool.begin().await.map_err(self.error())?;
                sqlx::query::<DB>(lock)
                    .bind(task.name.clone())
                    .execute(&mut *tx)
                    .await
                    .map_err(self.error())?;
                let rows = query.fetch_all(&mut *tx).await.map_err(self.error())?;
                tx.commit().await.map_err(self.error())?;
                rows
            }
        };
        self.claimed(&rows)
    }

    /// Claimed runs as a statement returned them (the run's columns, then `CLAIM_EXTRA`),
    /// in the queue's order: `RETURNING` keeps none.
    pub fn claimed_in_order(&self, rows: &[DB::Row]) -> Result<Vec<Claimed>, Error> {
        let mut claimed = self.claimed(rows)?;
        claimed.sort_by_key(|(order, _)| *order);
        Ok(claimed.into_iter().map(|(_, claimed)| claimed).collect())
    }

    /// Claimed runs as `RETURNING` read them, each with its place in the queue.
    fn claimed(&self, rows: &[DB::Row]) -> Result<Vec<(QueueOrder, Claimed)>, Error> {
        let runs = decode_rows(rows, DB::BACKEND)?;
        let mut claimed = Vec::with_capacity(runs.len());
        for (run, row) in runs.into_iter().zip(rows) {
            let extra = self.extra(row)?;
            claimed.push((
                (std::cmp::Reverse(extra.priority), extra.run_at, run.id),
                Claimed {
                    run,
                    fence: extra.fence,
                    max_attempts: extra.max_attempts,
                },
            ));
        }
        Ok(claimed)
    }

    /// What `CLAIM_EXTRA` read of a row.
    fn extra(&self, row: &DB::Row) -> Result<Extra, Error> {
        let max_attempts: i64 = row.try_get("max_attempts").map_err(self.error())?;
        let cancel_requested: i64 = row.try_get("cancel_requested").map_err(self.error())?;
        Ok(Extra {
            fence: row.try_get("fence").map_err(self.error())?,
            max_attempts: u32::try_from(max_attempts).unwrap_or(u32::MAX),
            priority: row.try_get("priority").map_err(self.error())?,
            run_at: row.try_get("run_at").map_err(self.error())?,
            cancel_requested: cancel_requested != 0,
        })
    }

    /// Writes a claimed run's state if `fence` is still its own (see `Store::put_claimed`).
    pub async fn put_claimed(&self, run: &RunRecord, fence: i64) -> Result<bool, Error> {
        self.update_fenced(run, fence, None, false).await
    }

    /// Puts a claimed run back in the queue for its next attempt (see
    /// `Store::requeue_claimed`).
    pub async fn requeue_claimed(
        &self,
        run: &RunRecord,
        fence: i64,
        run_at: Timestamp,
    ) -> Result<bool, Error> {
        self.update_fenced(run, fence, Some(run_at), true).await
    }

    /// Puts a finished run back in the queue (see `Store::requeue`).
    pub async fn requeue(&self, run: &RunRecord, job: &Job, finished_as: RunStatus) -> Result<bool, Error> {
        let update = format!(
            "UPDATE taskyard_runs SET {set}, durable = TRUE, run_at = $18, priority = $19, max_attempts = $20, \
             fence = fence + 1, cancel_requested = FALSE WHERE id = $1 AND status = $21",
            set = set_columns(DB::JSON)
        );
        let query = Self::bind_run(sqlx::query::<DB>(sqlx::AssertSqlSafe(update)), run)
            .bind(job.run_at.as_millisecond())
            .bind(i64::from(job.priority))
            .bind(i64::from(job.max_attempts))
            .bind(finished_as.as_str());
        match query.execute(self.pool).await {
            Ok(done) => Ok(DB::rows_affected(&done) == 1),
            // The run's key is held by another live run of its task.
            Err(sqlx::Error::Database(error)) if error.is_unique_violation() => Ok(false),
            Err(error) => Err(self.error()(error)),
        }
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
        let (mut requeued, mut ended) = (Vec::new(), Vec::new());
        for (run, row) in runs.into_iter().zip(&rows) {
            let extra = self.extra(row)?;
            let seen: Option<i64> = row.try_get("seen").map_err(self.error())?;
            let orphan = Orphan {
                run,
                fence: extra.fence,
                max_attempts: extra.max_attempts,
                claimed_at: Timestamp::from_millisecond(extra.run_at).ok(),
                seen: seen.and_then(|ms| Timestamp::from_millisecond(ms).ok()),
                cancel_requested: extra.cancel_requested,
            };
            let (next, again) = rescue(&orphan, now);
            // Another instance may be rescuing the same run: the fence lets one through.
            if self
                .update_fenced(&next, extra.fence, again.then(|| rescued_due(&next, now)), true)
                .await?
            {
                if again { &mut requeued } else { &mut ended }.push(next.id);
            }
        }
        Ok((requeued, ended))
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
        let update = fenced_update(DB::JSON);
        let done = Self::bind_run(sqlx::query::<DB>(sqlx::AssertSqlSafe(update)), run)
            .bind(fence)
            .bind(requeue_at.map(|at| at.as_millisecond()))
            .bind(i64::from(end_claim))
            .execute(self.pool)
            .await
            .map_err(self.error())?;
        Ok(DB::rows_affected(&done) == 1)
    }

    /// Asks for a run to be cancelled (see `Store::request_cancel`).
    pub async fn request_cancel(&self, id: RunId, now: Timestamp) -> Result<Option<CancelRequest>, Error> {
        let cancel = format!(
            "UPDATE taskyard_runs SET status = 'cancelled', finished_at = $2, error = 'cancelled', fence = fence + 1 \
             WHERE id = $1 AND durable AND status = 'queued' RETURNING {}",
            DB::RUN_COLUMNS
        );
        if let Some(run) = self.one_run(&cancel, id, Some(now)).await? {
            return Ok(Some(CancelRequest::Cancelled(run)));
        }
        let flag = format!(
            "UPDATE taskyard_runs SET cancel_requested = TRUE WHERE id = $1 AND status IN ('queued', 'running') RETURNING {}",
            DB::RUN_COLUMNS
        );
        if let Some(run) = self.one_run(&flag, id, None).await? {
            return Ok(Some(CancelRequest::Requested(run)));
        }
        Ok(self.get_run(id).await?.map(CancelRequest::Finished))
    }

    /// The run a statement on run `$1` (and `$2`, when given) returned.
    async fn one_run(
        &self,
        statement: &str,
        id: RunId,
        at: Option<Timestamp>,
    ) -> Result<Option<RunRecord>, Error> {
        let mut query = sqlx::query::<DB>(sqlx::AssertSqlSafe(statement.to_owned())).bind(id.to_string());
        if let Some(at) = at {
            query = query.bind(at.as_millisecond());
        }
        let rows = query.fetch_all(self.pool).await.map_err(self.error())?;
        Ok(decode_rows(&rows, DB::BACKEND)?.pop())
    }

    /// The runs on `instance` someone asked to cancel (see `Store::cancel_requests`).
    pub async fn cancel_requests(&self, instance: &str) -> Result<Vec<RunId>, Error> {
        let ids = sqlx::query_scalar::<DB, String>(
            "SELECT id FROM taskyard_runs WHERE instance = $1 AND cancel_requested AND status IN ('queued', 'running')",
        )
        .bind(instance.to_owned())
        .fetch_all(self.pool)
        .await
        .map_err(self.error())?;
        parse_ids(DB::BACKEND, ids)
    }
}

/// A claimed run's place in the queue: priority (highest first), `run_at`, id.
type QueueOrder = (std::cmp::Reverse<i64>, i64, RunId);

/// Writes a run's columns (`$1`…`$17`) where its fence is still `$18`; `$19`, when not
/// null, is its new `run_at`, and `$20` is added to its fence.
fn fenced_update(j: &str) -> String {
    format!(
        "UPDATE taskyard_runs SET {set}, run_at = COALESCE($19, run_at), fence = fence + $20 \
         WHERE id = $1 AND fence = $18",
        set = set_columns(j)
    )
}

/// Durable runs due at `$1`.
const DUE: &str = "durable AND status = 'queued' AND run_at <= $1";

/// The queue's order over the queued durable runs, and the same per task (migration 6).
const DUE_INDEX: &str = "taskyard_runs_due";
const DUE_BY_TASK_INDEX: &str = "taskyard_runs_due_by_task";

/// Claims for instance `$3` the due runs `which` picks, at most `count` of them, in the
/// queue's order, walking `index`.
fn claim_statement<DB: Dialect>(which: &str, count: &str, index: &str) -> String {
    format!(
        "WITH due AS (SELECT id FROM taskyard_runs{indexed} WHERE {DUE} AND {which} ORDER BY priority DESC, run_at, id LIMIT {count}{lock}) \
         UPDATE taskyard_runs SET status = 'running', instance = $3, started_at = COALESCE(started_at, $1), run_at = $1, fence = fence + 1 \
         WHERE {in_due} AND status = 'queued' \
         RETURNING {columns}, {extra}",
        indexed = DB::indexed_by(index),
        lock = DB::SKIP_LOCKED,
        in_due = DB::IN_DUE,
        columns = DB::RUN_COLUMNS,
        extra = DB::CLAIM_EXTRA,
    )
}

/// Run ids as the JSON array `TASKS_OF_6` reads.
fn json_ids(ids: &[RunId]) -> Result<String, Error> {
    serde_json::to_string(&ids.iter().map(ToString::to_string).collect::<Vec<_>>()).map_err(|error| {
        Error::StoreData {
            backend: "sql",
            message: format!("run ids as JSON: {error}"),
        }
    })
}

/// Task names as the JSON array `TASKS_OF_2` reads.
fn json_names(names: &[&str]) -> Result<String, Error> {
    serde_json::to_string(names).map_err(|error| Error::StoreData {
        backend: "sql",
        message: format!("task names as JSON: {error}"),
    })
}

/// What a claim reads of a durable run beyond its record.
struct Extra {
    fence: i64,
    max_attempts: u32,
    priority: i64,
    run_at: i64,
    cancel_requested: bool,
}
