//! [`PostgresStore`]: run history shared by many instances through PostgreSQL.
//!
//! Structured fields are `JSONB`, so operators can query them; timestamps are Unix
//! milliseconds, as in SQLite, so both backends hold identical data.

use std::sync::Arc;

use async_trait::async_trait;
use jiff::Timestamp;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres};

use super::columns::parse_ids;
use super::pg_batch::{enqueues, insert_jobs, insert_runs};
use super::pg_connect::{CONNECT_TIMEOUT, Refusal, session_options};
use super::pg_tidy::Tidy;
use super::sql::Statements;
use super::tick_sql::TickWithRun;
use super::{
    Batched, Broadcast, CancelRequest, ClaimTask, Claimed, Enqueued, ForgottenCount, InstanceLease, Job,
    Notice, RunCount, RunFilter, SchedulePause, Store, TickClaim, sqlx_error,
};
use crate::Error;
use crate::history::{RunId, RunRecord, RunStatus};

const BACKEND: &str = "postgres";

/// Connections for claims: each instance claims with one statement at a time.
const CLAIM_CONNECTIONS: u32 = 2;

/// Batches of claimed runs' states one runtime's recorder has in flight at once. A batch's
/// statement runs on one server process, and one at a time kept one core busy while the
/// claims and the runs left the other partly idle.
const WRITE_LANES: u32 = 2;

/// Connections for claimed runs' states: a runtime's lanes, and as many for a second
/// runtime on the same store (instances in one process), so that neither waits for the
/// other's batches. The pool is lazy: a runtime opens what it uses.
const END_CONNECTIONS: u32 = 2 * WRITE_LANES;

/// A claim (see `Store::claim`) in one round trip, through `taskyard_claim` (migration 14):
/// the tasks without a limit together in the queue's order, then each task with a limit
/// under a lock of its own, the claimed jobs' rows returned. Run on the claims pool.
const CLAIM: &str = "SELECT * FROM taskyard_claim($1, $2, $3, $4, $5, $6, $7)";

/// Marks `abandoned` the unfinished runs of instances without a live lease at `$1`; the
/// run ends at its instance's last heartbeat when that is known (as in SQLite).
const ABANDON: &str = "UPDATE taskyard_runs SET status = 'abandoned', \
     finished_at = CASE WHEN last.seen IS NULL THEN $1 ELSE LEAST($1, GREATEST(last.seen, COALESCE(taskyard_runs.started_at, taskyard_runs.queued_at))) END, \
     duration_ms = CASE WHEN taskyard_runs.started_at IS NULL THEN NULL WHEN last.seen IS NULL THEN $1 - taskyard_runs.started_at \
     ELSE LEAST($1, GREATEST(last.seen, taskyard_runs.started_at)) - taskyard_runs.started_at END, \
     error = 'abandoned: instance ' || taskyard_runs.instance || ' stopped renewing its lease while the run was ' || taskyard_runs.status \
     FROM (SELECT r.id AS run, i.heartbeat_at AS seen FROM taskyard_runs r LEFT JOIN taskyard_instances i ON i.id = r.instance \
     WHERE r.status IN ('queued', 'running') AND NOT r.durable) AS last \
     WHERE last.run = taskyard_runs.id AND NOT EXISTS \
     (SELECT 1 FROM taskyard_instances i WHERE i.id = taskyard_runs.instance AND i.lease_until >= $1) \
     RETURNING taskyard_runs.id";

/// Run history in PostgreSQL (see the module docs).
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// The claimer's connections, so that a claim never waits behind other statements.
    claims: PgPool,
    /// The connections that write claimed runs' states (see [`END_CONNECTIONS`]).
    ends: PgPool,
    /// When to vacuum the table of live jobs (see `pg_tidy`).
    pub(super) tidy: Arc<Tidy>,
    /// Enqueues without a key, those made while a statement is out sent together in the
    /// next (see `pg_batch::enqueues`), where each waited for a commit of its own.
    enqueues: Arc<Batched<(RunRecord, Job), ()>>,
    /// Durable ticks' claims, with their runs, made together (`Statements::claims_with_runs`).
    ticks: Arc<Batched<TickWithRun, bool>>,
}

impl PostgresStore {
    /// The statements shared with the other SQL backend, on this store's pool.
    fn sql(&self) -> Statements<'_, sqlx::Postgres> {
        Statements { pool: &self.pool }
    }

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
        let sessions = session_options(options, &place)
            .await
            .map_err(|refusal| match refusal {
                Refusal::Unreachable(reason) => unavailable(reason),
                Refusal::Pooler(message) => Error::Setting {
                    setting: "store",
                    message,
                },
            })?;
        // Bounded waits for a connection: while the server is unreachable, callers get an
        // error after this long instead of hanging.
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_with(sessions.clone())
            .await
            .map_err(|error| unavailable(error.to_string()))?;
        super::migrate::migrate_postgres(&pool).await?;
        let claims = PgPoolOptions::new()
            .max_connections(CLAIM_CONNECTIONS)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_lazy_with(sessions.clone());
        let ends = PgPoolOptions::new()
            .max_connections(END_CONNECTIONS)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_lazy_with(sessions);
        let enqueues = Arc::new(enqueues(pool.clone()));
        let ticks = Arc::new(Statements::claims_with_runs(pool.clone(), insert_jobs));
        Ok(PostgresStore {
            pool,
            claims,
            ends,
            tidy: Arc::default(),
            enqueues,
            ticks,
        })
    }
}

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn write_lanes(&self) -> usize {
        WRITE_LANES as usize
    }

    async fn put_runs(&self, runs: &[RunRecord]) -> Result<(), Error> {
        if runs.is_empty() {
            return Ok(());
        }
        // One statement is a transaction of its own, so a batch needs no `BEGIN` and
        // `COMMIT`, each a round trip.
        insert_runs(runs)
            .execute(&self.pool)
            .await
            .map_err(sqlx_error(BACKEND))?;
        Ok(())
    }

    async fn get_run(&self, id: RunId) -> Result<Option<RunRecord>, Error> {
        self.sql().get_run(id).await
    }

    async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, Error> {
        self.sql().list_runs(filter).await
    }

    async fn heartbeat(&self, lease: &InstanceLease) -> Result<(), Error> {
        self.sql().heartbeat(lease).await
    }

    async fn release_instance(&self, instance: &str) -> Result<(), Error> {
        self.sql().release_instance(instance).await
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
        parse_ids(BACKEND, ids)
    }

    async fn prune_runs(&self, finished_before: Timestamp) -> Result<u64, Error> {
        self.sql().prune_runs(finished_before).await
    }

    async fn claim_tick(&self, claim: &TickClaim) -> Result<bool, Error> {
        self.sql().claim_tick(claim).await
    }

    async fn claim_tick_again(&self, claim: &TickClaim) -> Result<bool, Error> {
        self.sql().claim_tick_again(claim).await
    }

    async fn claim_ticks(&self, claims: &[TickClaim]) -> Result<Vec<bool>, Error> {
        self.sql().claim_ticks(claims).await
    }

    async fn unfinished_of_schedules(&self, schedules: &[String]) -> Result<Vec<RunRecord>, Error> {
        self.sql().unfinished_of_schedules(schedules).await
    }

    async fn last_tick(&self, schedule: &str) -> Result<Option<Timestamp>, Error> {
        self.sql().last_tick(schedule).await
    }

    async fn live_instances(&self, now: Timestamp, seen_since: Timestamp) -> Result<Vec<String>, Error> {
        self.sql().live_instances(now, seen_since).await
    }

    async fn instances(&self) -> Result<Vec<InstanceLease>, Error> {
        self.sql().instances().await
    }

    async fn run_counts(&self, since: Timestamp, bucket_ms: i64) -> Result<Vec<RunCount>, Error> {
        self.sql().run_counts(since, bucket_ms).await
    }
    async fn broadcast(&self, broadcast: &Broadcast) -> Result<(), Error> {
        self.sql().broadcast(broadcast).await
    }

    async fn broadcasts_since(&self, since: Timestamp) -> Result<Vec<Broadcast>, Error> {
        self.sql().broadcasts_since(since).await
    }

    async fn enqueue(&self, run: &RunRecord, job: &Job) -> Result<Enqueued, Error> {
        self.sql().enqueue_together(&self.enqueues, run, job).await
    }

    async fn claim_tick_and_enqueue(
        &self,
        claim: &TickClaim,
        run: &RunRecord,
        job: &Job,
    ) -> Result<bool, Error> {
        self.ticks.call((claim.clone(), run.clone(), job.clone())).await
    }

    async fn claim(
        &self,
        instance: &str,
        tasks: &[ClaimTask],
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Claimed>, Error> {
        let (limited, free): (Vec<&ClaimTask>, Vec<&ClaimTask>) =
            tasks.iter().partition(|task| task.limit.is_some());
        let names = |tasks: &[&ClaimTask]| tasks.iter().map(|task| task.name.clone()).collect::<Vec<_>>();
        let count = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
        let rows = sqlx::query::<Postgres>(CLAIM)
            .bind(instance)
            .bind(now.as_millisecond())
            .bind(i32::try_from(limit).unwrap_or(i32::MAX))
            .bind(names(&free))
            .bind(names(&limited))
            .bind(
                limited
                    .iter()
                    .map(|task| count(task.limit.unwrap_or(u32::MAX)))
                    .collect::<Vec<_>>(),
            )
            .bind(
                limited
                    .iter()
                    .flat_map(|task| task.ended.iter().map(ToString::to_string))
                    .collect::<Vec<_>>(),
            )
            .fetch_all(&self.claims)
            .await
            .map_err(sqlx_error(BACKEND))?;
        self.tidy.after_claim(&self.pool, rows.len() < limit);
        self.sql().claimed_in_order(&rows, instance, now)
    }

    async fn put_claimed(&self, run: &RunRecord, fence: i64) -> Result<bool, Error> {
        let written = self.sql().put_claimed(run, fence).await?;
        if written && run.status.is_final() {
            self.tidy.ended(1);
        }
        Ok(written)
    }

    async fn requeue_orphans(&self, now: Timestamp) -> Result<(Vec<RunId>, Vec<RunId>), Error> {
        self.sql().requeue_orphans(now).await
    }

    async fn release_claim(&self, instance: &str, tasks: &[ClaimTask], now: Timestamp) -> Result<u64, Error> {
        self.sql().release_claim(instance, tasks, now).await
    }

    fn notices(&self) -> Option<tokio::sync::mpsc::Receiver<Notice>> {
        let (send, receive) = tokio::sync::mpsc::channel(NOTICES);
        drop(tokio::spawn(listen(self.pool.clone(), send)));
        Some(receive)
    }

    async fn put_claimed_many(&self, runs: &[(RunRecord, i64)]) -> Result<Vec<bool>, Error> {
        let written = super::pg_batch::put_claimed_many(&self.ends, runs).await?;
        self.tidy.ended(
            runs.iter()
                .zip(&written)
                .filter(|((run, _), written)| **written && run.status.is_final())
                .count(),
        );
        Ok(written)
    }

    async fn count_forgotten(&self, writer: &str, counts: &[ForgottenCount]) -> Result<(), Error> {
        self.sql().count_forgotten(writer, counts).await
    }

    async fn forgotten_runs(&self, task: &str, since: Timestamp) -> Result<u64, Error> {
        self.sql().forgotten_runs(task, since).await
    }

    async fn forget_claimed_many(&self, runs: &[(RunId, i64)]) -> Result<Vec<bool>, Error> {
        let deleted = super::pg_batch::forget_claimed_many(&self.ends, runs).await?;
        self.tidy
            .ended(deleted.iter().filter(|deleted| **deleted).count());
        Ok(deleted)
    }

    async fn requeue_claimed(&self, run: &RunRecord, fence: i64, run_at: Timestamp) -> Result<bool, Error> {
        self.sql().requeue_claimed(run, fence, run_at).await
    }

    async fn requeue(&self, run: &RunRecord, job: &Job, finished_as: RunStatus) -> Result<bool, Error> {
        self.sql().requeue(run, job, finished_as).await
    }

    async fn request_cancel(&self, id: RunId, now: Timestamp) -> Result<Option<CancelRequest>, Error> {
        self.sql().request_cancel(id, now).await
    }

    async fn cancel_requests(&self, instance: &str) -> Result<Vec<RunId>, Error> {
        self.sql().cancel_requests(instance).await
    }

    async fn set_schedule_paused(&self, pause: &SchedulePause) -> Result<(), Error> {
        self.sql().set_schedule_paused(pause).await
    }

    async fn schedule_pauses(&self) -> Result<Vec<SchedulePause>, Error> {
        self.sql().schedule_pauses().await
    }
}

/// Notices waiting for the instance at most; more are dropped (a wake-up repeats what the
/// next poll finds anyway).
const NOTICES: usize = 256;

/// How long to wait before listening again after the connection dropped.
const LISTEN_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// Forwards the notifications of the queue's triggers to `send` until its receiver is
/// dropped, connecting again after a lost connection.
async fn listen(pool: PgPool, send: tokio::sync::mpsc::Sender<Notice>) {
    loop {
        let listener = async {
            let mut listener = sqlx::postgres::PgListener::connect_with(&pool).await?;
            listener.listen_all(["taskyard_queue", "taskyard_cancel"]).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let mut listener = match listener.await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for queue notifications; polling meanwhile");
                tokio::time::sleep(LISTEN_RETRY).await;
                if send.is_closed() {
                    return;
                }
                continue;
            }
        };
        loop {
            let notification = tokio::select! {
                notification = listener.try_recv() => notification,
                () = send.closed() => return,
            };
            let notice = match notification {
                Ok(Some(notification)) if notification.channel() == "taskyard_cancel" => {
                    let Some((instance, run)) = notification.payload().split_once(' ') else {
                        continue;
                    };
                    let Ok(run) = run.parse() else {
                        continue;
                    };
                    Notice::Cancel {
                        instance: instance.to_owned(),
                        run,
                    }
                }
                Ok(Some(_)) => Notice::Queued,
                // The connection dropped: notifications may have been missed, so wake
                // the instance up to look, then listen again.
                Ok(None) => Notice::Queued,
                Err(error) => {
                    tracing::warn!(%error, "lost the queue notifications; listening again");
                    break;
                }
            };
            if let Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) = send.try_send(notice) {
                return;
            }
        }
        tokio::time::sleep(LISTEN_RETRY).await;
    }
}

#[cfg(test)]
#[path = "postgres_tests.rs"]
mod tests;
