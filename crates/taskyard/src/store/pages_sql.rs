//! The history's pages, in both SQL backends: the runs a filter lets through, newest
//! first, read from the records and the queue's jobs together (`taskyard_history`), or from
//! the records alone for a page of an ended status.

use sqlx::{Encode, Executor, IntoArguments, QueryBuilder, Type};

use super::columns::decode_rows;
use super::sql::{Dialect, HISTORY, Statements};
use crate::Error;
use crate::history::{RunFilter, RunRecord, RunStatus};

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
    /// The runs `filter` lets through, newest first.
    pub async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, Error> {
        let rows = Self::runs_page(filter, "").build().fetch_all(self.pool).await;
        decode_rows(&rows.map_err(self.error())?, DB::BACKEND)
    }

    /// [`Statements::list_runs`]' statement, after `prefix` (an `EXPLAIN` in tests).
    pub(super) fn runs_page(filter: &RunFilter, prefix: &str) -> QueryBuilder<DB> {
        // An ended run is a record only: a page of an ended status reads the records alone
        // (SQLite would walk every queued job for none).
        let select = match filter.status {
            Some(status) if status.is_final() => DB::SELECT_RUNS.replace(HISTORY, "taskyard_runs"),
            _ => DB::SELECT_RUNS.to_owned(),
        };
        let mut query = QueryBuilder::<DB>::new(format!("{prefix}{select} WHERE 1 = 1"));
        if let Some(task) = &filter.task {
            query.push(" AND task = ").push_bind(task.clone());
        }
        // The status index leaves out succeeded runs: planners use it where the page's status
        // is written out (the enum's own words) with the index's condition beside it.
        if let Some(status) = filter.status {
            query.push(format!(" AND status = '{}'", status.as_str()));
            if status != RunStatus::Succeeded {
                query.push(" AND status <> 'succeeded'");
            }
        }
        if filter.unfinished {
            query.push(" AND status IN ('queued', 'running') AND status <> 'succeeded'");
        }
        if let Some(schedule) = &filter.schedule {
            query
                .push(" AND trigger_kind IN ('schedule', 'custom') AND ")
                .push(DB::TRIGGER_SCHEDULE)
                .push(" = ")
                .push_bind(schedule.clone());
        }
        query.push(super::columns::scheduled_clause(filter));
        if let Some(before) = filter.before {
            query.push(" AND id < ").push_bind(before.to_string());
        }
        if let Some(kind) = &filter.trigger {
            query.push(" AND trigger_kind = ").push_bind(kind.clone());
        }
        if let Some(instance) = &filter.instance {
            query.push(" AND instance = ").push_bind(instance.clone());
        }
        if let Some(since) = filter.since {
            query.push(" AND queued_at >= ").push_bind(since.as_millisecond());
        }
        if let Some(until) = filter.until {
            query.push(" AND queued_at < ").push_bind(until.as_millisecond());
        }
        if let Some(text) = &filter.text {
            let pattern = RunFilter::like_pattern(text);
            query
                .push(" AND (")
                .push(DB::JSON_TEXT_OF_PAYLOAD)
                .push(DB::LIKE)
                .push_bind(pattern.clone())
                .push(" ESCAPE '\\' OR ")
                .push(DB::JSON_TEXT_OF_RESULT)
                .push(DB::LIKE)
                .push_bind(pattern.clone())
                .push(" ESCAPE '\\' OR COALESCE(error, '')")
                .push(DB::LIKE)
                .push_bind(pattern)
                .push(" ESCAPE '\\')");
        }
        query
            .push(" ORDER BY id DESC LIMIT ")
            .push_bind(filter.sql_limit());
        query
    }
}
