//! The durable queue's statements, shared by both SQL backends like those of `sql`:
//! enqueue, fenced writes of a claimed attempt, and the queue again for retries and orphans
//! (claims are in `claim_sql`, cancels in `cancel_sql`). A queued or claimed durable run is a row of `taskyard_jobs`, which holds
//! its record's columns beside the queue's own; the run's record goes into `taskyard_runs`
//! only when it ends, and the job leaves in the same transaction. A run is in exactly one of
//! the two tables; `taskyard_history` reads both.

use jiff::Timestamp;
use sqlx::query::Query;
use sqlx::{Encode, Executor, IntoArguments, Row, Type};

use super::Batched;
use super::columns::{COLUMNS, RunRow, decode_rows, parse_id, timestamp};
use super::queue::{Enqueued, Job, Orphan, rescue, rescued_due};
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

    /// Writes a durable run to the queue (see `Store::enqueue`): its job, which holds its
    /// record until it ends.
    pub async fn enqueue(&self, run: &RunRecord, job: &Job) -> Result<Enqueued, Error> {
        // A keyed run that finished between the refused insert and the read of the live
        // one leaves nothing to hand back: insert again.
        for _ in 0..3 {
            if self.insert_job(run, job).await? {
                return Ok(Enqueued::New(run.id));
            }
            let Some(key) = &job.key else {
                break;
            };
            let live: Vec<(String, i64)> = sqlx::query_as::<DB, (String, i64)>(
                "SELECT id, run_at FROM taskyard_jobs WHERE task = $1 AND unique_key = $2",
            )
            .bind(run.task.clone())
            .bind(key.clone())
            .fetch_all(self.pool)
            .await
            .map_err(self.error())?;
            if let Some((id, run_at)) = live.into_iter().next() {
                let due = timestamp(DB::BACKEND, run_at)?;
                return Ok(Enqueued::Existing(parse_id(DB::BACKEND, id)?, due));
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

    /// [`Statements::enqueue`] for a store whose enqueues without a key made at the same
    /// time share a statement (`together`). A run with a key is written alone: it may meet
    /// a live one, and learns which.
    pub async fn enqueue_together(
        &self,
        together: &Batched<(RunRecord, Job), ()>,
        run: &RunRecord,
        job: &Job,
    ) -> Result<Enqueued, Error> {
        if job.key.is_some() {
            return self.enqueue(run, job).await;
        }
        together.call((run.clone(), job.clone())).await?;
        Ok(Enqueued::New(run.id))
    }

    /// Inserts a durable run's job; false when another live run holds its key.
    async fn insert_job(&self, run: &RunRecord, job: &Job) -> Result<bool, Error> {
        let inserted = Self::job_insert(run, job, job.key.clone(), 0)
            .fetch_all(self.pool)
            .await
            .map_err(self.error())?;
        Ok(!inserted.is_empty())
    }

    /// [`insert_job`]'s statement for `run` waiting as `job` says, under `key` and `fence`.
    pub(super) fn job_insert(
        run: &RunRecord,
        job: &Job,
        key: Option<String>,
        fence: i64,
    ) -> Query<'static, DB, DB::Arguments> {
        Self::bind_run(sqlx::query::<DB>(sqlx::AssertSqlSafe(insert_job::<DB>())), run)
            .bind(job.run_at.as_millisecond())
            .bind(i64::from(job.priority))
            .bind(key)
            .bind(i64::from(job.max_attempts))
            .bind(fence)
    }

    /// Writes a claimed run's state if `fence` is still its own (see `Store::put_claimed`).
    pub async fn put_claimed(&self, run: &RunRecord, fence: i64) -> Result<bool, Error> {
        self.update_fenced(run, fence, None).await
    }

    /// Puts a claimed run back in the queue for its next attempt (see
    /// `Store::requeue_claimed`).
    pub async fn requeue_claimed(
        &self,
        run: &RunRecord,
        fence: i64,
        run_at: Timestamp,
    ) -> Result<bool, Error> {
        self.update_fenced(run, fence, Some(run_at)).await
    }

    /// Puts a finished run back in the queue (see `Store::requeue`): its record, if it is
    /// still `finished_as`, leaves the history's table for a job under the key it had,
    /// fenced past every claim it had before.
    pub async fn requeue(&self, run: &RunRecord, job: &Job, finished_as: RunStatus) -> Result<bool, Error> {
        let mut tx = self.begin().await?;
        let ended: Vec<(i64, Option<String>)> = sqlx::query_as::<DB, (i64, Option<String>)>(
            "DELETE FROM taskyard_runs WHERE id = $1 AND status = $2 RETURNING fence, unique_key",
        )
        .bind(run.id.to_string())
        .bind(finished_as.as_str())
        .fetch_all(&mut *tx)
        .await
        .map_err(self.error())?;
        let Some((fence, key)) = ended.into_iter().next() else {
            return Ok(false);
        };
        let insert = Self::job_insert(run, job, key, fence + 1)
            .fetch_all(&mut *tx)
            .await
            .map_err(self.error())?;
        // The run's key is held by another live run of its task: the transaction,
        // dropped, rolls the record back.
        if insert.is_empty() {
            return Ok(false);
        }
        tx.commit().await.map_err(self.error())?;
        Ok(true)
    }

    /// Rescues the claimed durable runs of dead instances (see `Store::requeue_orphans`).
    pub async fn requeue_orphans(&self, now: Timestamp) -> Result<(Vec<RunId>, Vec<RunId>), Error> {
        // The orphans' ids first, then their jobs by key, as the claims read theirs.
        let orphans = sqlx::query_scalar::<DB, String>(
            "SELECT j.id FROM taskyard_jobs j WHERE j.claimed_by IS NOT NULL AND NOT EXISTS \
             (SELECT 1 FROM taskyard_instances i WHERE i.id = j.claimed_by AND i.lease_until >= $1)",
        )
        .bind(now.as_millisecond())
        .fetch_all(self.pool)
        .await
        .map_err(self.error())?;
        if orphans.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let select = format!(
            "SELECT {columns}, {extra}, j.claimed_by AS claimed_by, \
             (SELECT heartbeat_at FROM taskyard_instances i WHERE i.id = j.claimed_by) AS seen \
             FROM taskyard_jobs j WHERE j.id IN ({ids}) AND j.claimed_by IS NOT NULL",
            columns = DB::RUN_COLUMNS,
            extra = DB::CLAIM_EXTRA,
            ids = DB::IDS_OF_1,
        );
        let rows = sqlx::query::<DB>(sqlx::AssertSqlSafe(select))
            .bind(json_ids(&orphans)?)
            .fetch_all(self.pool)
            .await
            .map_err(self.error())?;
        let runs = decode_rows(&rows, DB::BACKEND)?;
        let (mut requeued, mut ended) = (Vec::new(), Vec::new());
        let Some(first) = rows.first() else {
            return Ok((requeued, ended));
        };
        let at = self.extra_places(first)?;
        for (mut run, row) in runs.into_iter().zip(&rows) {
            let extra = self.extra(row, &at)?;
            let seen: Option<i64> = row.try_get("seen").map_err(self.error())?;
            // The job may not show the attempt's start yet: the lost attempt ran there,
            // from its claim.
            let claimed_at = Timestamp::from_millisecond(extra.run_at).ok();
            run.status = RunStatus::Running;
            run.instance = row.try_get("claimed_by").map_err(self.error())?;
            if let Some(at) = claimed_at {
                run.started_at.get_or_insert(at);
            }
            let orphan = Orphan {
                run,
                fence: extra.fence,
                max_attempts: extra.max_attempts,
                claimed_at,
                seen: seen.and_then(|ms| Timestamp::from_millisecond(ms).ok()),
                cancel_requested: extra.cancel_requested,
            };
            let (next, again) = rescue(&orphan, now);
            // Another instance may be rescuing the same run: the fence lets one through.
            if self
                .update_fenced(&next, extra.fence, again.then(|| rescued_due(&next, now)))
                .await?
            {
                if again { &mut requeued } else { &mut ended }.push(next.id);
            }
        }
        Ok((requeued, ended))
    }

    /// Writes `run`'s state where its job's fence is still `fence`: a run that ended
    /// leaves the queue for the history ([`Statements::end_job`]); with `requeue_at`, its
    /// job is due again then under a new fence, so the claim's attempt can write no more.
    /// True if it wrote.
    async fn update_fenced(
        &self,
        run: &RunRecord,
        fence: i64,
        requeue_at: Option<Timestamp>,
    ) -> Result<bool, Error> {
        if run.status.is_final() {
            let mut tx = self.begin().await?;
            if self.end_job(&mut tx, run, Some(fence), "").await?.is_none() {
                return Ok(false);
            }
            tx.commit().await.map_err(self.error())?;
            return Ok(true);
        }
        let requeue = if requeue_at.is_some() {
            ", claimed_by = NULL, run_at = $19, fence = fence + 1"
        } else {
            ""
        };
        let update = format!(
            "UPDATE taskyard_jobs SET {set}{requeue} WHERE id = $1 AND fence = $18",
            set = set_columns(DB::JSON)
        );
        let mut query = Self::bind_run(sqlx::query::<DB>(sqlx::AssertSqlSafe(update)), run).bind(fence);
        if let Some(at) = requeue_at {
            query = query.bind(at.as_millisecond());
        }
        let done = query.execute(self.pool).await.map_err(self.error())?;
        Ok(DB::rows_affected(&done) == 1)
    }

    /// Moves an ended run from its job to the history, in `tx`: deletes the job (only
    /// where its fence is still `fence`, when given, and `and` holds) and inserts the
    /// run's record, `run` as it is written. Returns the job's fence, or `None` when no job
    /// was taken.
    pub(super) async fn end_job(
        &self,
        tx: &mut DB::Connection,
        run: &RunRecord,
        fence: Option<i64>,
        and: &str,
    ) -> Result<Option<i64>, Error> {
        let delete = format!(
            "DELETE FROM taskyard_jobs WHERE id = $1 AND fence = COALESCE($2, fence){and} \
             RETURNING run_at, CAST(priority AS BIGINT) AS priority, unique_key, \
             CAST(max_attempts AS BIGINT) AS max_attempts, fence"
        );
        let job: Vec<(i64, i64, Option<String>, i64, i64)> =
            sqlx::query_as::<DB, (i64, i64, Option<String>, i64, i64)>(sqlx::AssertSqlSafe(delete))
                .bind(run.id.to_string())
                .bind(fence)
                .fetch_all(&mut *tx)
                .await
                .map_err(self.error())?;
        let Some((run_at, priority, key, max_attempts, fence)) = job.into_iter().next() else {
            return Ok(None);
        };
        let j = DB::JSON;
        let record = format!(
            "INSERT INTO taskyard_runs ({COLUMNS}, durable, run_at, priority, unique_key, max_attempts, fence) \
             VALUES ($1, $2, $3, $4, $5{j}, $6{j}, $7, $8{j}, $9, $10, $11, $12, $13, $14{j}, $15, $16, $17, \
             TRUE, $18, $19, $20, $21, $22)"
        );
        Self::bind_run(sqlx::query::<DB>(sqlx::AssertSqlSafe(record)), run)
            .bind(run_at)
            .bind(priority)
            .bind(key)
            .bind(max_attempts)
            .bind(fence)
            .execute(&mut *tx)
            .await
            .map_err(self.error())?;
        Ok(Some(fence))
    }
}

/// Inserts a durable run's job: its record's columns as `$1`…`$17` (in `COLUMNS`
/// order), `$18` run_at, `$19` priority, `$20` key, `$21` attempts and `$22` fence, unless a
/// live job of its task holds its key; returns its id.
fn insert_job<DB: Dialect>() -> String {
    let j = DB::JSON;
    format!(
        "INSERT INTO taskyard_jobs ({COLUMNS}, run_at, priority, unique_key, max_attempts, fence) \
         VALUES ($1, $2, $3, $4, $5{j}, $6{j}, $7, $8{j}, $9, $10, $11, $12, $13, $14{j}, $15, $16, $17, \
         $18, $19, $20, $21, $22) \
         ON CONFLICT (task, unique_key) WHERE unique_key IS NOT NULL DO NOTHING RETURNING id"
    )
}

/// Run ids (parsed, or as the store returned them) as the JSON array `TASKS_OF_6` and
/// `IDS_OF_1` read.
pub(super) fn json_ids<Id: ToString>(ids: &[Id]) -> Result<String, Error> {
    serde_json::to_string(&ids.iter().map(ToString::to_string).collect::<Vec<_>>()).map_err(|error| {
        Error::StoreData {
            backend: "sql",
            message: format!("run ids as JSON: {error}"),
        }
    })
}
