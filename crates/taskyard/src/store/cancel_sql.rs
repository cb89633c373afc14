//! Cancels asked for through any instance, in both SQL backends: a queued durable run's
//! job taken out of the queue and its run ended, or a flag for the instance that runs it
//! (on its job for a claimed run, on its record for a run in process).

use jiff::Timestamp;
use sqlx::{Encode, Executor, IntoArguments, Row, Type};

use super::columns::{decode_rows, parse_ids};
use super::queue::CancelRequest;
use super::sql::{Dialect, Statements};
use crate::Error;
use crate::history::{RunId, RunStatus};

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
    /// Asks for a run to be cancelled (see `Store::request_cancel`): a job no instance
    /// holds is taken out of the queue and its run ends `cancelled`; a claimed job, or a
    /// run an instance executes in process, is flagged for its instance.
    pub async fn request_cancel(&self, id: RunId, now: Timestamp) -> Result<Option<CancelRequest>, Error> {
        // A job no instance holds: its run is read, then ended if no claim took the job
        // in between (the delete checks again).
        let mut tx = self.begin().await?;
        let read = format!(
            "{} WHERE id = $1 AND claimed_by IS NULL",
            DB::SELECT_RUNS.replace(super::sql::HISTORY, "taskyard_jobs")
        );
        let rows = sqlx::query::<DB>(sqlx::AssertSqlSafe(read))
            .bind(id.to_string())
            .fetch_all(&mut *tx)
            .await
            .map_err(self.error())?;
        if let Some(mut run) = decode_rows(&rows, DB::BACKEND)?.pop() {
            run.status = RunStatus::Cancelled;
            run.finished_at = Some(now);
            run.error = Some("cancelled".to_owned());
            if self
                .end_job(&mut tx, &run, None, " AND claimed_by IS NULL")
                .await?
                .is_some()
            {
                tx.commit().await.map_err(self.error())?;
                return Ok(Some(CancelRequest::Cancelled(run)));
            }
        }
        tx.rollback().await.map_err(self.error())?;
        let flagged = sqlx::query::<DB>(
            "UPDATE taskyard_jobs SET cancel_requested = TRUE WHERE id = $1 RETURNING claimed_by",
        )
        .bind(id.to_string())
        .fetch_all(self.pool)
        .await
        .map_err(self.error())?
        .into_iter()
        .next();
        if let Some(job) = flagged
            && let Some(mut run) = self.get_run(id).await?
        {
            // Held by an instance: the run is that instance's, whether or not its record
            // says so yet.
            let claimed_by: Option<String> = job.try_get("claimed_by").map_err(self.error())?;
            if let Some(instance) = claimed_by {
                run.status = RunStatus::Running;
                run.instance = instance;
            }
            return Ok(Some(CancelRequest::Requested(run)));
        }
        let flag = format!(
            "UPDATE taskyard_runs SET cancel_requested = TRUE WHERE id = $1 AND NOT durable AND status IN ('queued', 'running') \
             RETURNING {}",
            DB::RUN_COLUMNS
        );
        let rows = sqlx::query::<DB>(sqlx::AssertSqlSafe(flag))
            .bind(id.to_string())
            .fetch_all(self.pool)
            .await
            .map_err(self.error())?;
        if let Some(run) = decode_rows(&rows, DB::BACKEND)?.pop() {
            return Ok(Some(CancelRequest::Requested(run)));
        }
        Ok(self.get_run(id).await?.map(CancelRequest::Finished))
    }

    /// The runs on `instance` someone asked to cancel (see `Store::cancel_requests`): the
    /// jobs it holds and the runs it executes in process.
    pub async fn cancel_requests(&self, instance: &str) -> Result<Vec<RunId>, Error> {
        let ids = sqlx::query_scalar::<DB, String>(
            "SELECT id FROM taskyard_jobs WHERE claimed_by = $1 AND cancel_requested \
             UNION ALL SELECT id FROM taskyard_runs WHERE instance = $1 AND cancel_requested \
             AND status IN ('queued', 'running') AND NOT durable",
        )
        .bind(instance.to_owned())
        .fetch_all(self.pool)
        .await
        .map_err(self.error())?;
        parse_ids(DB::BACKEND, ids)
    }
}
