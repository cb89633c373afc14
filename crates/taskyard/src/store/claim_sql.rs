//! Claims of due durable runs, shared by both SQL backends like those of `sql`: the
//! tasks without a limit in one statement, each task with a limit in one of its own that
//! counts its claimed jobs across the cluster, and a claim's runs given back to the queue
//! when its answer was lost.

use jiff::Timestamp;
use sqlx::{Encode, Executor, IntoArguments, Row, Type};

use super::columns::{decode_rows, places};
use super::queue::{ClaimTask, Claimed};
use super::queue_sql::json_ids;
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
    /// Claims due durable runs for `instance` (see `Store::claim`): the tasks without a
    /// limit in one statement, each task with a limit in one of its own that counts the
    /// task's claimed jobs as it claims. Each statement returns its claimed jobs' rows and
    /// walks the queue's indexes (named on SQLite; PostgreSQL claims through a function of
    /// its own, `taskyard_claim`).
    pub async fn claim(
        &self,
        instance: &str,
        tasks: &[ClaimTask],
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Claimed>, Error> {
        let (limited, free): (Vec<&ClaimTask>, Vec<&ClaimTask>) =
            tasks.iter().partition(|task| task.limit.is_some());
        let mut rows = Vec::new();
        let names: Vec<&str> = free.iter().map(|task| task.name.as_str()).collect();
        if !names.is_empty() && limit > 0 && self.any_due(&names, now).await? {
            let statement = claim_statement::<DB>(&format!("task IN ({})", DB::TASKS_OF_2), "$4", DUE_INDEX);
            let query = sqlx::query::<DB>(sqlx::AssertSqlSafe(statement))
                .bind(now.as_millisecond())
                .bind(json_names(&names)?)
                .bind(instance.to_owned())
                .bind(i64::try_from(limit).unwrap_or(i64::MAX));
            rows.extend(query.fetch_all(self.pool).await.map_err(self.error())?);
        }
        let names: Vec<&str> = limited.iter().map(|task| task.name.as_str()).collect();
        if !names.is_empty() && self.any_due(&names, now).await? {
            for task in limited {
                let room = limit.saturating_sub(rows.len());
                if room == 0 {
                    break;
                }
                rows.extend(self.claim_limited(instance, task, now, room).await?);
            }
        }
        self.claimed_in_order(&rows, instance, now)
    }

    /// Gives back to the queue the runs of `tasks` that `instance`'s claim at `now` took
    /// (see `Store::release_claim`): the claim's `now` is the `run_at` it wrote. Due again
    /// when they were queued, ahead of the runs queued after them, under a new fence.
    pub async fn release_claim(
        &self,
        instance: &str,
        tasks: &[ClaimTask],
        now: Timestamp,
    ) -> Result<u64, Error> {
        let names: Vec<&str> = tasks.iter().map(|task| task.name.as_str()).collect();
        let statement = format!(
            "UPDATE taskyard_jobs SET claimed_by = NULL, run_at = queued_at, fence = fence + 1 \
             WHERE task IN ({tasks}) AND claimed_by = $3 AND run_at = $1",
            tasks = DB::TASKS_OF_2
        );
        let released = sqlx::query::<DB>(sqlx::AssertSqlSafe(statement))
            .bind(now.as_millisecond())
            .bind(json_names(&names)?)
            .bind(instance.to_owned())
            .execute(self.pool)
            .await
            .map_err(self.error())?;
        Ok(DB::rows_affected(&released))
    }

    /// True when a durable run of one of `tasks` is due at `now`. A read first: on SQLite
    /// even an `UPDATE` that changes nothing takes the write lock, and an idle instance
    /// asks several times a second. Ordered as the queue is, so that it walks the queue's
    /// index.
    async fn any_due(&self, tasks: &[&str], now: Timestamp) -> Result<bool, Error> {
        let probe = format!(
            "SELECT id FROM taskyard_jobs{index} WHERE {DUE} AND task IN ({tasks}) ORDER BY priority DESC, run_at, id LIMIT 1",
            index = DB::indexed_by(DUE_INDEX),
            tasks = DB::TASKS_OF_2
        );
        let found: Vec<String> = sqlx::query_scalar::<DB, String>(sqlx::AssertSqlSafe(probe))
            .bind(now.as_millisecond())
            .bind(json_names(tasks)?)
            .fetch_all(self.pool)
            .await
            .map_err(self.error())?;
        Ok(!found.is_empty())
    }

    /// Claims at most `room` runs of a task with a limit, leaving its claimed jobs across
    /// the cluster at or under it; returns their rows.
    async fn claim_limited(
        &self,
        instance: &str,
        task: &ClaimTask,
        now: Timestamp,
        room: usize,
    ) -> Result<Vec<DB::Row>, Error> {
        let running = format!(
            "(SELECT COUNT(*) FROM taskyard_jobs WHERE task = $2 AND claimed_by IS NOT NULL AND id NOT IN ({ended}))",
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
        match DB::TASK_LOCK {
            None => query.fetch_all(self.pool).await.map_err(self.error()),
            Some(lock) => {
                let mut tx = self.begin().await?;
                sqlx::query::<DB>(lock)
                    .bind(task.name.clone())
                    .execute(&mut *tx)
                    .await
                    .map_err(self.error())?;
                let rows = query.fetch_all(&mut *tx).await.map_err(self.error())?;
                tx.commit().await.map_err(self.error())?;
                Ok(rows)
            }
        }
    }

    /// Claimed runs as a statement read them (the run's columns, then `CLAIM_EXTRA`), in
    /// the queue's order, each `running` on `instance` since `now` (its job in the store
    /// says so once the instance writes the run's start).
    pub fn claimed_in_order(
        &self,
        rows: &[DB::Row],
        instance: &str,
        now: Timestamp,
    ) -> Result<Vec<Claimed>, Error> {
        let runs = decode_rows(rows, DB::BACKEND)?;
        let Some(first) = rows.first() else {
            return Ok(Vec::new());
        };
        let at = self.extra_places(first)?;
        let mut order: Vec<(QueueOrder, usize)> = Vec::with_capacity(runs.len());
        let mut claimed: Vec<Option<Claimed>> = Vec::with_capacity(runs.len());
        for (mut run, row) in runs.into_iter().zip(rows) {
            let extra = self.extra(row, &at)?;
            run.status = RunStatus::Running;
            run.instance = instance.to_owned();
            run.started_at.get_or_insert(now);
            order.push((
                (std::cmp::Reverse(extra.priority), extra.run_at, run.id),
                claimed.len(),
            ));
            claimed.push(Some(Claimed {
                run,
                fence: extra.fence,
                max_attempts: extra.max_attempts,
                cancel_requested: extra.cancel_requested,
            }));
        }
        // Neither `RETURNING` nor the read keeps an order: the queue's is restored here,
        // by sorting the runs' places rather than the runs (~450 bytes each, moved at
        // every swap). Each key holds its run's id, so no two are equal.
        order.sort_unstable_by_key(|(order, _)| *order);
        Ok(order
            .into_iter()
            .filter_map(|(_, at)| claimed[at].take())
            .collect())
    }

    /// Where `CLAIM_EXTRA`'s columns are in a result's rows, found by name once a result.
    pub(super) fn extra_places(&self, row: &DB::Row) -> Result<[usize; 5], Error> {
        places(row, EXTRA).map_err(self.error())
    }

    /// What `CLAIM_EXTRA` read of a row, its columns at `at` ([`Statements::extra_places`]).
    pub(super) fn extra(&self, row: &DB::Row, at: &[usize; 5]) -> Result<Extra, Error> {
        let max_attempts: i64 = row.try_get(at[1]).map_err(self.error())?;
        let cancel_requested: i64 = row.try_get(at[4]).map_err(self.error())?;
        Ok(Extra {
            fence: row.try_get(at[0]).map_err(self.error())?,
            max_attempts: u32::try_from(max_attempts).unwrap_or(u32::MAX),
            priority: row.try_get(at[2]).map_err(self.error())?,
            run_at: row.try_get(at[3]).map_err(self.error())?,
            cancel_requested: cancel_requested != 0,
        })
    }
}

/// A claimed run's place in the queue: priority (highest first), `run_at`, id.
type QueueOrder = (std::cmp::Reverse<i64>, i64, RunId);

/// Jobs no instance holds that are due at `$1`.
const DUE: &str = "claimed_by IS NULL AND run_at <= $1";

/// The queue's order over the jobs no instance holds, and the same per task.
const DUE_INDEX: &str = "taskyard_jobs_due";
const DUE_BY_TASK_INDEX: &str = "taskyard_jobs_due_by_task";

/// Claims for instance `$3` the due jobs `which` picks, at most `count` of them, in the
/// queue's order, walking `index`; returns their runs' columns and `CLAIM_EXTRA`, as the
/// update wrote them.
fn claim_statement<DB: Dialect>(which: &str, count: &str, index: &str) -> String {
    format!(
        "WITH due AS (SELECT id FROM taskyard_jobs{indexed} WHERE {DUE} AND {which} ORDER BY priority DESC, run_at, id LIMIT {count}{lock}) \
         UPDATE taskyard_jobs SET claimed_by = $3, run_at = $1, fence = fence + 1 \
         WHERE {in_due} AND claimed_by IS NULL \
         RETURNING {columns}, {extra}",
        indexed = DB::indexed_by(index),
        lock = DB::SKIP_LOCKED,
        in_due = DB::IN_DUE,
        columns = DB::RUN_COLUMNS,
        extra = DB::CLAIM_EXTRA,
    )
}

/// Task names as the JSON array `TASKS_OF_2` reads.
fn json_names(names: &[&str]) -> Result<String, Error> {
    serde_json::to_string(names).map_err(|error| Error::StoreData {
        backend: "sql",
        message: format!("task names as JSON: {error}"),
    })
}

/// `CLAIM_EXTRA`'s columns by name, in the order [`Statements::extra`] reads them.
const EXTRA: [&str; 5] = ["fence", "max_attempts", "priority", "run_at", "cancel_requested"];

/// What a claim reads of a durable run beyond its record.
pub(super) struct Extra {
    pub(super) fence: i64,
    pub(super) max_attempts: u32,
    pub(super) priority: i64,
    pub(super) run_at: i64,
    pub(super) cancel_requested: bool,
}
