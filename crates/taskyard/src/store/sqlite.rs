//! [`SqliteStore`]: run history in an SQLite file.
//!
//! WAL mode lets readers proceed while one writer commits. A process makes all its writes
//! on one connection ([`SqliteStore::writes`]), in turn, and its reads on a pool whose
//! connections refuse to write; between processes, a write waits up to the busy timeout
//! for the file's write lock, so several processes can share one file without "database
//! is locked" errors or lost writes.
//!
//! A write transaction that fails part-way (a full disk, an I/O error) closes its
//! connection instead of returning it to the pool; [`Store::verify`] notices the file being
//! deleted or replaced under the running instance.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, Sqlite, SqlitePool};

use super::columns::{insert_runs, parse_ids};
use super::sql::Statements;
use super::sqlite_checkpoint::Checkpoints;
use super::tick_sql::TickWithRun;
use super::{
    Batched, Broadcast, CancelRequest, ClaimTask, Claimed, Enqueued, ForgottenCount, InstanceLease, Job,
    RunCount, RunFilter, SchedulePause, Store, TickClaim, sqlx_error,
};
use crate::Error;
use crate::config::SqliteSync;
use crate::history::{RunId, RunRecord, RunStatus};

const BACKEND: &str = "sqlite";

/// How much of the file SQLite reads through a memory mapping (256 MiB); pages past it
/// are read as before.
const MMAP_SIZE: &str = "268435456";

/// Run history in an SQLite file (see the module docs).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Connections for reads.
    pool: SqlitePool,
    /// The one connection for every write of this process: the run records' batches,
    /// enqueues, claims, ends, ticks, heartbeats, the lease sweep.
    ///
    /// SQLite lets one connection write at a time and makes the others wait for the lock
    /// in its busy handler, which sleeps 1, 2, 5, 10 … 100 ms between tries: with claims,
    /// ends and records on four connections, a burn-down of the queue slept there about a
    /// hundred times a second. Waiting for this pool's connection instead takes turns
    /// without sleeping; the busy handler is left to other processes on the same file.
    /// And SQLite drops a connection's whole page cache when another connection wrote
    /// since its last transaction: on one connection the tables' and indexes' pages stay
    /// in its cache.
    writes: SqlitePool,
    /// Checkpoints of the WAL, which `writes` leaves to another connection.
    checkpoints: Arc<Checkpoints>,
    /// Enqueues without a key made while one is on its way share the next statement and
    /// its commit (see `sqlite_batch::enqueues`).
    enqueues: Arc<Batched<(RunRecord, Job), ()>>,
    /// Durable ticks' claims, with their runs, made together (`Statements::claims_with_runs`).
    ticks: Arc<Batched<TickWithRun, bool>>,
    path: PathBuf,
    /// The opened file's identity (device, inode), to notice it being replaced.
    identity: Option<(u64, u64)>,
}

impl SqliteStore {
    /// The statements shared with the other SQL backend that only read, on the pool.
    fn sql(&self) -> Statements<'_, sqlx::Sqlite> {
        Statements { pool: &self.pool }
    }

    /// The statements shared with the other SQL backend that write, on the writes'
    /// connection (see [`SqliteStore::writes`]).
    fn write(&self) -> Statements<'_, sqlx::Sqlite> {
        Statements { pool: &self.writes }
    }

    /// `result`, after telling the checkpoints that the writes' connection committed.
    fn wrote<T>(&self, result: T) -> T {
        self.checkpoints.wrote();
        result
    }

    /// Opens `path` (creating it and its folder if missing) and applies migrations, its
    /// commits synced as `TASKYARD_SQLITE_SYNCHRONOUS` says ([`SqliteSync`]).
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        SqliteStore::open_with(path, SqliteSync::from_env()?).await
    }

    /// Opens `path` as [`SqliteStore::open`] does, its commits synced as `sync` says.
    pub async fn open_with(path: impl AsRef<Path>, sync: SqliteSync) -> Result<Self, Error> {
        let path = path.as_ref();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::io(format!("creating the data folder {}", dir.display()), e))?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL + NORMAL (the default, the usual choice for WAL): a commit survives a
            // process crash; a power loss can take the commits since the WAL's last sync
            // (at a checkpoint). FULL syncs the WAL at each commit.
            .synchronous(match sync {
                SqliteSync::Normal => SqliteSynchronous::Normal,
                SqliteSync::Full => SqliteSynchronous::Full,
            })
            .busy_timeout(Duration::from_secs(30))
            // Pages read through a shared mapping of the file instead of a copy into each
            // connection's cache: SQLite drops a connection's cache whenever another one
            // wrote, so claims and ends read the queue's pages back on every batch
            // (+22 % for the queue at 100,000 runs). Writes still go through `write`. WAL
            // already asks for a local file (its index is shared memory), where a read
            // error that would fault a mapping is as rare as a failing disk.
            .pragma("mmap_size", MMAP_SIZE);
        // A ping before each use is a round trip to the connection's thread for a file that
        // cannot hang up; a failing statement closes its connection instead
        // (`close_on_error`). This process's writes, one at a time; their commits do not
        // wait for checkpoints (see `sqlite_checkpoint`).
        let writes = connect(&options.clone().pragma("wal_autocheckpoint", "0"), 1)
            .await
            .map_err(|error| Error::StoreUnavailable {
                backend: BACKEND,
                message: format!(
                    "cannot open the SQLite file {}: {error}. Check that its folder exists and is writable, or set TASKYARD_DATA_DIR",
                    path.display()
                ),
            })?;
        super::migrate::migrate_sqlite(&writes).await?;
        // The reads' connections refuse to write, so that every write takes its turn on
        // `writes`.
        let pool = connect(&options.clone().pragma("query_only", "ON"), 4)
            .await
            .map_err(sqlx_error(BACKEND))?;
        let checkpoints = Checkpoints::open(&options, writes.clone(), path).await?;
        // The migrations' pages, if any.
        checkpoints.wrote();
        Ok(SqliteStore {
            enqueues: Arc::new(super::sqlite_batch::enqueues(writes.clone())),
            ticks: Arc::new(Statements::claims_with_runs(
                writes.clone(),
                super::sqlite_batch::insert_jobs,
            )),
            checkpoints: Arc::new(checkpoints),
            pool,
            writes,
            path: path.to_owned(),
            identity: file_identity(path),
        })
    }

    /// A connection for a write transaction. If the transaction fails, the caller closes
    /// it rather than returning it: SQLite may have rolled the transaction back by itself
    /// (it does on a full disk), and a pooled connection that still counts itself inside
    /// a transaction refuses every later `BEGIN`, which jams the store for good.
    async fn writer(&self) -> Result<PoolConnection<Sqlite>, Error> {
        self.writes.acquire().await.map_err(sqlx_error(BACKEND))
    }
}

/// How many times opening the file is tried while another process holds it busy.
const OPEN_ATTEMPTS: u32 = 20;

/// A pool of at most `max` connections to the file, its first connection opened now.
///
/// Opening is tried again, for up to about five seconds, while SQLite answers that the
/// file is busy: a process that opens a new file while another one is turning it to WAL
/// (or recovering its WAL index) can get `SQLITE_BUSY` at once, without the busy timeout's
/// wait, and two processes started together on one new file would otherwise see one of
/// them fail to start.
pub(super) async fn connect(options: &SqliteConnectOptions, max: u32) -> Result<SqlitePool, sqlx::Error> {
    let mut attempt = 1;
    loop {
        let opened = SqlitePoolOptions::new()
            .max_connections(max)
            .test_before_acquire(false)
            .after_release(|conn, _| Box::pin(out_of_transaction(conn)))
            .connect_with(options.clone())
            .await;
        match opened {
            Err(error) if attempt < OPEN_ATTEMPTS && is_busy(&error) => {
                tokio::time::sleep(Duration::from_millis(25 * u64::from(attempt))).await;
                attempt += 1;
            }
            opened => return opened,
        }
    }
}

/// Whether a connection given back to its pool may be used again: not while it still
/// counts itself inside a transaction. A transaction dropped after an error queues its
/// `ROLLBACK`; when SQLite had already rolled back by itself (it does on a full disk),
/// that `ROLLBACK` fails, sqlx keeps counting the transaction, and the connection would
/// refuse every later `BEGIN`. Such a connection is closed and a new one opened. A ping
/// waits for a queued `ROLLBACK`, but only where one may be pending: a connection out of
/// any transaction goes back at once.
async fn out_of_transaction(conn: &mut sqlx::SqliteConnection) -> Result<bool, sqlx::Error> {
    if !conn.is_in_transaction() {
        return Ok(true);
    }
    conn.ping().await?;
    Ok(!conn.is_in_transaction())
}

/// True when SQLite answered `SQLITE_BUSY` or `SQLITE_LOCKED` (or one of their extended
/// codes).
fn is_busy(error: &sqlx::Error) -> bool {
    let sqlx::Error::Database(error) = error else {
        return false;
    };
    error
        .code()
        .and_then(|code| code.parse::<i64>().ok())
        .is_some_and(|code| matches!(code & 0xff, 5 | 6))
}

/// Closes `conn` when `result` is an error; see [`SqliteStore::writer`].
fn close_on_error<T>(conn: &mut PoolConnection<Sqlite>, result: Result<T, sqlx::Error>) -> Result<T, Error> {
    if result.is_err() {
        conn.close_on_drop();
    }
    result.map_err(sqlx_error(BACKEND))
}

#[cfg(unix)]
fn file_identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|meta| (meta.dev(), meta.ino()))
}

#[cfg(not(unix))]
fn file_identity(_path: &Path) -> Option<(u64, u64)> {
    None
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn put_runs(&self, runs: &[RunRecord]) -> Result<(), Error> {
        if runs.is_empty() {
            return Ok(());
        }
        let mut conn = self.writer().await?;
        let written = async {
            // One statement is a transaction of its own: a batch that fits in one needs no
            // `BEGIN` and `COMMIT`, each a round trip to the connection's thread.
            if runs.len() <= super::recorder::MAX_BATCH {
                return insert_runs::<Sqlite>(runs, "")
                    .build()
                    .execute(&mut *conn)
                    .await
                    .map(drop);
            }
            let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
            for chunk in runs.chunks(super::recorder::MAX_BATCH) {
                insert_runs::<Sqlite>(chunk, "").build().execute(&mut *tx).await?;
            }
            tx.commit().await
        }
        .await;
        self.wrote(close_on_error(&mut conn, written))
    }

    async fn get_run(&self, id: RunId) -> Result<Option<RunRecord>, Error> {
        self.sql().get_run(id).await
    }

    async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, Error> {
        self.sql().list_runs(filter).await
    }

    async fn heartbeat(&self, lease: &InstanceLease) -> Result<(), Error> {
        self.wrote(self.write().heartbeat(lease).await)
    }

    async fn release_instance(&self, instance: &str) -> Result<(), Error> {
        self.wrote(self.write().release_instance(instance).await)
    }

    async fn mark_abandoned(&self, now: Timestamp) -> Result<Vec<RunId>, Error> {
        let now = now.as_millisecond();
        let mut conn = self.writer().await?;
        let marked = async {
            let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
            let ids: Vec<String> = sqlx::query_scalar(ABANDON).bind(now).fetch_all(&mut *tx).await?;
            sqlx::query("DELETE FROM taskyard_instances WHERE lease_until < ?")
                .bind(now)
                .execute(&mut *tx)
                .await?;
            tx.commit().await.map(|()| ids)
        }
        .await;
        parse_ids(BACKEND, self.wrote(close_on_error(&mut conn, marked))?)
    }

    async fn prune_runs(&self, finished_before: Timestamp) -> Result<u64, Error> {
        self.wrote(self.write().prune_runs(finished_before).await)
    }

    async fn claim_tick(&self, claim: &TickClaim) -> Result<bool, Error> {
        self.wrote(self.write().claim_tick(claim).await)
    }

    async fn claim_tick_again(&self, claim: &TickClaim) -> Result<bool, Error> {
        self.wrote(self.write().claim_tick_again(claim).await)
    }

    async fn claim_ticks(&self, claims: &[TickClaim]) -> Result<Vec<bool>, Error> {
        self.wrote(self.write().claim_ticks(claims).await)
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
        self.wrote(self.write().broadcast(broadcast).await)
    }

    async fn verify(&self) -> Result<(), Error> {
        let Some(opened) = self.identity else {
            return Ok(());
        };
        // SQLite keeps writing to an unlinked file without a word, and another instance
        // would create a new one at the path: the cluster would split in two.
        if file_identity(&self.path) == Some(opened) {
            Ok(())
        } else {
            Err(Error::StoreReplaced {
                path: self.path.display().to_string(),
            })
        }
    }

    async fn broadcasts_since(&self, since: Timestamp) -> Result<Vec<Broadcast>, Error> {
        self.sql().broadcasts_since(since).await
    }

    async fn enqueue(&self, run: &RunRecord, job: &Job) -> Result<Enqueued, Error> {
        self.wrote(self.write().enqueue_together(&self.enqueues, run, job).await)
    }

    async fn claim_tick_and_enqueue(
        &self,
        claim: &TickClaim,
        run: &RunRecord,
        job: &Job,
    ) -> Result<bool, Error> {
        self.wrote(self.ticks.call((claim.clone(), run.clone(), job.clone())).await)
    }

    async fn claim(
        &self,
        instance: &str,
        tasks: &[ClaimTask],
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Claimed>, Error> {
        self.wrote(self.write().claim(instance, tasks, now, limit).await)
    }

    async fn release_claim(&self, instance: &str, tasks: &[ClaimTask], now: Timestamp) -> Result<u64, Error> {
        self.wrote(self.write().release_claim(instance, tasks, now).await)
    }

    async fn put_claimed(&self, run: &RunRecord, fence: i64) -> Result<bool, Error> {
        self.wrote(self.write().put_claimed(run, fence).await)
    }

    async fn requeue_orphans(&self, now: Timestamp) -> Result<(Vec<RunId>, Vec<RunId>), Error> {
        self.wrote(self.write().requeue_orphans(now).await)
    }

    async fn put_claimed_many(&self, runs: &[(RunRecord, i64)]) -> Result<Vec<bool>, Error> {
        self.wrote(super::sqlite_batch::put_claimed_many(&self.writes, runs).await)
    }

    async fn count_forgotten(&self, writer: &str, counts: &[ForgottenCount]) -> Result<(), Error> {
        self.wrote(self.write().count_forgotten(writer, counts).await)
    }

    async fn forgotten_runs(&self, task: &str, since: Timestamp) -> Result<u64, Error> {
        self.sql().forgotten_runs(task, since).await
    }

    async fn forget_claimed_many(&self, runs: &[(RunId, i64)]) -> Result<Vec<bool>, Error> {
        self.wrote(super::sqlite_batch::forget_claimed_many(&self.writes, runs).await)
    }

    async fn requeue_claimed(&self, run: &RunRecord, fence: i64, run_at: Timestamp) -> Result<bool, Error> {
        self.wrote(self.write().requeue_claimed(run, fence, run_at).await)
    }

    async fn requeue(&self, run: &RunRecord, job: &Job, finished_as: RunStatus) -> Result<bool, Error> {
        self.wrote(self.write().requeue(run, job, finished_as).await)
    }

    async fn request_cancel(&self, id: RunId, now: Timestamp) -> Result<Option<CancelRequest>, Error> {
        self.wrote(self.write().request_cancel(id, now).await)
    }

    async fn cancel_requests(&self, instance: &str) -> Result<Vec<RunId>, Error> {
        self.sql().cancel_requests(instance).await
    }

    async fn set_schedule_paused(&self, pause: &SchedulePause) -> Result<(), Error> {
        self.wrote(self.write().set_schedule_paused(pause).await)
    }

    async fn schedule_pauses(&self) -> Result<Vec<SchedulePause>, Error> {
        self.sql().schedule_pauses().await
    }
}

/// Marks `abandoned` the unfinished runs of instances without a live lease at `?1`. The
/// run ends at its instance's last heartbeat, its last sign of life, when that is known.
pub(super) const ABANDON: &str = "UPDATE taskyard_runs SET status = 'abandoned', \
     finished_at = CASE WHEN last.seen IS NULL THEN ?1 ELSE MIN(?1, MAX(last.seen, COALESCE(started_at, queued_at))) END, \
     duration_ms = CASE WHEN started_at IS NULL THEN NULL WHEN last.seen IS NULL THEN ?1 - started_at \
     ELSE MIN(?1, MAX(last.seen, started_at)) - started_at END, \
     error = 'abandoned: instance ' || instance || ' stopped renewing its lease while the run was ' || status \
     FROM (SELECT r.id AS run, i.heartbeat_at AS seen FROM taskyard_runs r LEFT JOIN taskyard_instances i ON i.id = r.instance \
     WHERE r.status IN ('queued', 'running') AND NOT r.durable) AS last \
     WHERE last.run = taskyard_runs.id AND NOT EXISTS \
     (SELECT 1 FROM taskyard_instances i WHERE i.id = taskyard_runs.instance AND i.lease_until >= ?1) \
     RETURNING id";

#[cfg(test)]
#[path = "sqlite_tests.rs"]
mod tests;
