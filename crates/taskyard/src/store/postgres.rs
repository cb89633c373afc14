//! [`PostgresStore`]: run history shared by many instances through PostgreSQL.
//!
//! Structured fields are `JSONB`, so operators can query them; timestamps are Unix
//! milliseconds, as in SQLite, so both backends hold identical data.

use async_trait::async_trait;
use jiff::Timestamp;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool, Postgres, QueryBuilder};

use super::columns::{COLUMNS, RunRow, decode_rows};
use super::sqlite::{UPSERT_TAIL, parse_ids};
use super::{Broadcast, InstanceLease, RunFilter, Store, TickClaim, sqlx_error};
use crate::Error;
use crate::history::{RunId, RunRecord};

const BACKEND: &str = "postgres";

/// How long connecting, or waiting for a pooled connection, may take.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Marks `abandoned` the unfinished runs of instances without a live lease at `$1`; the
/// run ends at its instance's last heartbeat when that is known (as in SQLite).
const ABANDON: &str = "UPDATE taskyard_runs SET status = 'abandoned', \
     finished_at = CASE WHEN last.seen IS NULL THEN $1 ELSE LEAST($1, GREATEST(last.seen, COALESCE(taskyard_runs.started_at, taskyard_runs.queued_at))) END, \
     duration_ms = CASE WHEN taskyard_runs.started_at IS NULL THEN NULL WHEN last.seen IS NULL THEN $1 - taskyard_runs.started_at \
     ELSE LEAST($1, GREATEST(last.seen, taskyard_runs.started_at)) - taskyard_runs.started_at END, \
     error = 'abandoned: instance ' || taskyard_runs.instance || ' stopped renewing its lease while the run was ' || taskyard_runs.status \
     FROM (SELECT r.id AS run, i.heartbeat_at AS seen FROM taskyard_runs r LEFT JOIN taskyard_instances i ON i.id = r.instance \
     WHERE r.status IN ('queued', 'running')) AS last \
     WHERE last.run = taskyard_runs.id AND NOT EXISTS \
     (SELECT 1 FROM taskyard_instances i WHERE i.id = taskyard_runs.instance AND i.lease_until >= $1) \
     RETURNING taskyard_runs.id";

/// The columns with JSONB read back as text.
const SELECT: &str = "SELECT id, task, status, trigger_kind, trigger_data::text AS trigger_data, payload::text AS payload, attempt::bigint AS attempt, attempts::text AS attempts, instance, queued_at, started_at, finished_at, duration_ms, result::text AS result, error, progress, progress_message FROM taskyard_runs";

/// Run history in PostgreSQL (see the module docs).
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to `url` and applies migrations.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        let options: PgConnectOptions = url.parse().map_err(|e| Error::Setting {
            setting: "store",
            message: format!(
                "the PostgreSQL URL is not valid ({e}); expected postgres://user:password@host:5432/database"
            ),
        })?;
        Self::connect_with(options).await
    }

    /// Connects with explicit options (e.g. a `search_path` to keep taskyard's tables in
    /// their own schema) and applies migrations.
    pub async fn connect_with(options: PgConnectOptions) -> Result<Self, Error> {
        let place = format!(
            "PostgreSQL at {}:{} (database `{}`)",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or("the user's default")
        );
        let unavailable = |reason: String| Error::StoreUnavailable {
            backend: BACKEND,
            message: format!(
                "cannot connect to {place}: {reason}. Check TASKYARD_DATABASE_URL and that the server runs"
            ),
        };
        // One connection first: its error is the server's own ("connection refused",
        // "password authentication failed"), where a pool only reports that it timed out.
        match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options)).await {
            Err(_) => {
                return Err(unavailable(format!(
                    "no answer within {}s",
                    CONNECT_TIMEOUT.as_secs()
                )));
            }
            Ok(Err(error)) => return Err(unavailable(error.to_string())),
            Ok(Ok(connection)) => {
                let _ = connection.close().await;
            }
        }
        // Bounded waits for a connection: while the server is unreachable, callers get an
        // error after this long instead of hanging.
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|error| unavailable(error.to_string()))?;
        super::migrate::migrate_postgres(&pool).await?;
        Ok(PostgresStore { pool })
    }
}

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn put_runs(&self, runs: &[RunRecord]) -> Result<(), Error> {
        let err = sqlx_error(BACKEND);
        let mut tx = self.pool.begin().await.map_err(&err)?;
        for chunk in runs.chunks(super::recorder::MAX_BATCH) {
            let mut query = QueryBuilder::<Postgres>::new(format!("INSERT INTO taskyard_runs ({COLUMNS}) "));
            query.push_values(chunk.iter().map(RunRow::encode), |mut values, row| {
                values
                    .push_bind(row.id)
                    .push_bind(row.task)
                    .push_bind(row.status)
                    .push_bind(row.trigger_kind)
                    .push_bind(row.trigger_data)
                    .push_unseparated("::jsonb")
                    .push_bind(row.payload)
                    .push_unseparated("::jsonb")
                    .push_bind(row.attempt)
                    .push_bind(row.attempts)
                    .push_unseparated("::jsonb")
                    .push_bind(row.instance)
                    .push_bind(row.queued_at)
                    .push_bind(row.started_at)
                    .push_bind(row.finished_at)
                    .push_bind(row.duration_ms)
                    .push_bind(row.result)
                    .push_unseparated("::jsonb")
                    .push_bind(row.error)
                    .push_bind(row.progress)
                    .push_bind(row.progress_message);
            });
            query.push(UPSERT_TAIL);
            query.build().execute(&mut *tx).await.map_err(&err)?;
        }
        tx.commit().await.map_err(&err)
    }

    async fn get_run(&self, id: RunId) -> Result<Option<RunRecord>, Error> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("{SELECT} WHERE id = $1")))
            .bind(id.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(sqlx_error(BACKEND))?;
        Ok(decode_rows(&rows, BACKEND)?.pop())
    }

    async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, Error> {
        let mut query = QueryBuilder::<Postgres>::new(format!("{SELECT} WHERE TRUE"));
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
                .push(" AND trigger_kind IN ('schedule', 'custom') AND trigger_data->>'schedule' = ")
                .push_bind(schedule.clone());
        }
        query.push(super::columns::scheduled_clause(filter));
        query
            .push(" ORDER BY id DESC LIMIT ")
            .push_bind(filter.sql_limit());
        let rows = query
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(sqlx_error(BACKEND))?;
        decode_rows(&rows, BACKEND)
    }

    async fn heartbeat(&self, lease: &InstanceLease) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO taskyard_instances (id, hostname, pid, started_at, heartbeat_at, lease_until) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, lease_until = excluded.lease_until",
        )
        .bind(&lease.instance)
        .bind(&lease.hostname)
        .bind(i64::from(lease.pid))
        .bind(lease.started_at.as_millisecond())
        .bind(lease.heartbeat_at.as_millisecond())
        .bind(lease.lease_until.as_millisecond())
        .execute(&self.pool)
        .await
        .map_err(sqlx_error(BACKEND))?;
        Ok(())
    }

    async fn release_instance(&self, instance: &str) -> Result<(), Error> {
        sqlx::query("DELETE FROM taskyard_instances WHERE id = $1")
            .bind(instance)
            .execute(&self.pool)
            .await
            .map_err(sqlx_error(BACKEND))?;
        Ok(())
    }

    async fn mark_abandoned(&self, now: Timestamp) -> Result<Vec<RunId>, Error> {
        let err = sqlx_error(BACKEND);
        let now = now.as_millisecond();
        let mut tx = self.pool.begin().await.map_err(&err)?;
        let ids: Vec<String> = sqlx::query_scalar(ABANDON)
            .bind(now)
            .fetch_all(&mut *tx)
            .await
            .map_err(&err)?;
        sqlx::query("DELETE FROM taskyard_instances WHERE lease_until < $1")
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(&err)?;
        tx.commit().await.map_err(&err)?;
        parse_ids(ids)
    }

    async fn prune_runs(&self, finished_before: Timestamp) -> Result<u64, Error> {
        let err = sqlx_error(BACKEND);
        let cutoff = finished_before.as_millisecond();
        let done = sqlx::query("DELETE FROM taskyard_runs WHERE finished_at < $1")
            .bind(cutoff)
            .execute(&self.pool)
            .await
            .map_err(&err)?;
        // Each schedule's latest tick stays: catch-up after downtime starts from it.
        sqlx::query(
            "DELETE FROM taskyard_ticks WHERE claimed_at < $1 AND tick < \
             (SELECT MAX(latest.tick) FROM taskyard_ticks latest WHERE latest.schedule = taskyard_ticks.schedule)",
        )
        .bind(cutoff)
        .execute(&self.pool)
        .await
        .map_err(&err)?;
        sqlx::query("DELETE FROM taskyard_broadcasts WHERE sent_at < $1")
            .bind(cutoff)
            .execute(&self.pool)
            .await
            .map_err(&err)?;
        Ok(done.rows_affected())
    }

    async fn claim_tick(&self, claim: &TickClaim) -> Result<bool, Error> {
        let done = sqlx::query(
            "INSERT INTO taskyard_ticks (schedule, tick, target, instance, claimed_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(&claim.schedule)
        .bind(claim.tick.as_millisecond())
        .bind(&claim.target)
        .bind(&claim.instance)
        .bind(Timestamp::now().as_millisecond())
        .execute(&self.pool)
        .await
        .map_err(sqlx_error(BACKEND))?;
        Ok(done.rows_affected() == 1)
    }

    async fn last_tick(&self, schedule: &str) -> Result<Option<Timestamp>, Error> {
        let tick: Option<i64> =
            sqlx::query_scalar("SELECT MAX(tick) FROM taskyard_ticks WHERE schedule = $1")
                .bind(schedule)
                .fetch_one(&self.pool)
                .await
                .map_err(sqlx_error(BACKEND))?;
        tick.map(|ms| {
            Timestamp::from_millisecond(ms).map_err(|_| Error::StoreData {
                backend: BACKEND,
                message: format!("bad tick `{ms}` for schedule `{schedule}`"),
            })
        })
        .transpose()
    }

    async fn live_instances(&self, now: Timestamp, seen_since: Timestamp) -> Result<Vec<String>, Error> {
        sqlx::query_scalar(
            "SELECT id FROM taskyard_instances WHERE lease_until >= $1 AND heartbeat_at >= $2 ORDER BY id",
        )
        .bind(now.as_millisecond())
        .bind(seen_since.as_millisecond())
        .fetch_all(&self.pool)
        .await
        .map_err(sqlx_error(BACKEND))
    }
    async fn broadcast(&self, broadcast: &Broadcast) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO taskyard_broadcasts (id, schedule, args, origin, sent_at) VALUES ($1, $2, $3::jsonb, $4, $5)",
        )
        .bind(&broadcast.id)
        .bind(&broadcast.schedule)
        .bind(broadcast.args.to_string())
        .bind(&broadcast.origin)
        .bind(broadcast.sent_at.as_millisecond())
        .execute(&self.pool)
        .await
        .map_err(sqlx_error(BACKEND))?;
        Ok(())
    }

    async fn broadcasts_since(&self, since: Timestamp) -> Result<Vec<Broadcast>, Error> {
        let rows: Vec<(String, String, String, String, i64)> = sqlx::query_as(
            "SELECT id, schedule, args::text AS args, origin, sent_at FROM taskyard_broadcasts WHERE sent_at >= $1 ORDER BY sent_at, id",
        )
        .bind(since.as_millisecond())
        .fetch_all(&self.pool)
        .await
        .map_err(sqlx_error(BACKEND))?;
        rows.into_iter()
            .map(|row| super::columns::decode_broadcast(BACKEND, row))
            .collect()
    }
}
