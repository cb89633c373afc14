//! [`SqliteStore`]: run history in an SQLite file.
//!
//! WAL mode lets readers proceed while one writer commits; every write transaction starts
//! with `BEGIN IMMEDIATE` and waits up to the busy timeout for the write lock, so several
//! processes can share one file without "database is locked" errors or lost writes.
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
    Batched, Broadcast, CancelRequest, ClaimTask, Claimed, Enqueued, InstanceLease, Job, RunCount, RunFilter,
    SchedulePause, Store, TickClaim, sqlx_error,
};
use crate::Error;
use crate::history::{RunId, RunRecord, RunStatus};

const BACKEND: &str = "sqlite";

/// How much of the file SQLite reads through a memory mapping (256 MiB); pages past it
/// are read as before.
const MMAP_SIZE: &str = "268435456";

/// Run history in an SQLite file (see the module docs).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// One connection for the run records' batches and the lease sweep. SQLite drops a
    /// connection's whole page cache when another connection wrote since its last
    /// transaction, so batches spread over the pool's connections each read the tables'
    /// and indexes' pages again from the file; on one connection they stay in its cache.
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
    /// The statements shared with the other SQL backend, on this store's pool.
    fn sql(&self) -> Statements<'_, sqlx::Sqlite> {
        Statements { pool: &self.pool }
    }

    /// Opens `path` (creating it and its folder if missing) and applies migrations.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::io(format!("creating the data folder {}", dir.display()), e))?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL + NORMAL: a commit survives a process crash; only a power loss can lose
            // the last transactions. The usual choice for WAL.
            .synchronous(SqliteSynchronous::Normal)
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
        // (`close_on_error`).
        let pool = connect(&options, 4)
            .await
            .map_err(|error| Error::StoreUnavailable {
                backend: BACKEND,
                message: format!(
                    "cannot open the SQLite file {}: {error}. Check that its folder exists and is writable, or set TASKYARD_DATA_DIR",
                    path.display()
                ),
            })?;
        super::migrate::migrate_sqlite(&pool).await?;
        // The records' commits do not wait for checkpoints (see `sqlite_checkpoint`).
        let writes = connect(&options.clone().pragma("wal_autocheckpoint", "0"), 1)
            .await
            .map_err(sqlx_error(BACKEND))?;
        let checkpoints = Checkpoints::open(&options, writes.clone(), path).await?;
        Ok(SqliteStore {
            enqueues: Arc::new(super::sqlite_batch::enqueues(pool.clone())),
            ticks: Arc::new(Statements::claims_with_runs(
                pool.clone(),
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
        self.checkpoints.wrote();
        close_on_error(&mut conn, written)
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
        self.checkpoints.wrote();
        parse_ids(BACKEND, close_on_error(&mut conn, marked)?)
    }

    async fn prune_runs(&self, finished_before: Timestamp) -> Result<u64, Error> {
        self.sql().prune_runs(finished_before).await
    }

    async fn claim_tick(&self, claim: &TickClaim) -> Result<bool, Error> {
        self.sql().claim_tick(claim).await
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
        self.sql().claim(instance, tasks, now, limit).await
    }

    async fn put_claimed(&self, run: &RunRecord, fence: i64) -> Result<bool, Error> {
        self.sql().put_claimed(run, fence).await
    }

    async fn requeue_orphans(&self, now: Timestamp) -> Result<(Vec<RunId>, Vec<RunId>), Error> {
        self.sql().requeue_orphans(now).await
    }

    async fn put_claimed_many(&self, runs: &[(RunRecord, i64)]) -> Result<Vec<bool>, Error> {
        super::sqlite_batch::put_claimed_many(&self.pool, runs).await
    }

    async fn forget_claimed_many(&self, runs: &[(RunId, i64)]) -> Result<Vec<bool>, Error> {
        super::sqlite_batch::forget_claimed_many(&self.pool, runs).await
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
mod tests {
    use super::*;

    /// The records' connection leaves its checkpoints to the store's task; the others
    /// checkpoint as SQLite does by default.
    #[tokio::test]
    async fn the_records_commits_do_not_checkpoint() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let store = SqliteStore::open(dir.path().join("t.db"))
            .await
            .expect("the store");
        let pages = |pool: SqlitePool| async move {
            let pages: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint")
                .fetch_one(&pool)
                .await
                .expect("a pragma");
            pages
        };
        assert_eq!(
            (pages(store.writes.clone()).await, pages(store.pool.clone()).await),
            (0, 1000)
        );
    }

    /// A file another connection holds locked reads as busy, and opening is tried again;
    /// any other error is not.
    #[tokio::test]
    async fn a_file_held_by_another_connection_reads_as_busy() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let options = SqliteConnectOptions::new()
            .filename(dir.path().join("held.db"))
            .create_if_missing(true)
            .busy_timeout(Duration::ZERO);
        let mut holder = sqlx::SqliteConnection::connect_with(&options)
            .await
            .expect("the holder connects");
        sqlx::query("CREATE TABLE t (x INTEGER)")
            .execute(&mut holder)
            .await
            .expect("a table");
        sqlx::query("BEGIN EXCLUSIVE")
            .execute(&mut holder)
            .await
            .expect("the lock");
        let mut other = sqlx::SqliteConnection::connect_with(&options)
            .await
            .expect("the other connects");
        let busy = sqlx::query("SELECT x FROM t")
            .fetch_all(&mut other)
            .await
            .expect_err("the file is locked");
        assert!(is_busy(&busy), "{busy}");
        sqlx::query("ROLLBACK")
            .execute(&mut holder)
            .await
            .expect("the lock released");
        let wrong = sqlx::query("SELECT nothing FROM t")
            .fetch_all(&mut other)
            .await
            .expect_err("no such column");
        assert!(!is_busy(&wrong), "{wrong}");
    }

    /// Writes that end on their own keep the WAL checkpointed. A statement SQLite is told to
    /// reset before it ran to its end (what sqlx does for `fetch_optional` and `fetch_one`
    /// once it has the first row) commits without calling SQLite's checkpoint hook: keyed
    /// enqueues alone grew the WAL by every page they wrote (769 MB for 30,000 jobs).
    #[tokio::test]
    async fn keyed_enqueues_alone_keep_the_wal_checkpointed() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let store = SqliteStore::open(dir.path().join("jobs.db"))
            .await
            .expect("the store opens");
        let now = jiff::Timestamp::now();
        for n in 0..600 {
            let run = RunRecord::queued(
                "mail".into(),
                serde_json::json!({}),
                crate::Trigger::Manual,
                "i".into(),
                now,
            );
            let job = Job {
                run_at: now,
                priority: 0,
                key: Some(format!("k{n}")),
                max_attempts: 1,
            };
            store.enqueue(&run, &job).await.expect("enqueued");
        }
        // Past SQLite's 1,000-page threshold its checkpoints start the WAL over: what is
        // left in it is what came after the last one.
        let (_, frames, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_all(&store.writes)
            .await
            .expect("a checkpoint")
            .pop()
            .expect("its counts");
        assert!(frames < 1_500, "{frames} pages in the WAL after 600 enqueues");
    }

    /// Every connection, the pool's and the writer's, reads the file through its mapping.
    #[tokio::test]
    async fn every_connection_maps_the_file() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let store = SqliteStore::open(dir.path().join("runs.db"))
            .await
            .expect("the store opens");
        for pool in [&store.pool, &store.writes] {
            let mapped: i64 = sqlx::query_scalar("PRAGMA mmap_size")
                .fetch_one(pool)
                .await
                .expect("the setting");
            assert_eq!(mapped.to_string(), MMAP_SIZE);
        }
    }

    /// The steps of SQLite's plan for a page of runs of `status`, in a new store.
    async fn page_plan(status: RunStatus) -> Vec<String> {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let store = SqliteStore::open(dir.path().join("runs.db"))
            .await
            .expect("the store opens");
        let filter = crate::history::RunFilter::default().status(status);
        let plan: Vec<(i64, i64, i64, String)> =
            Statements::<Sqlite>::runs_page(&filter, "EXPLAIN QUERY PLAN ")
                .build_query_as()
                .fetch_all(&store.pool)
                .await
                .expect("the page's plan");
        plan.into_iter().map(|(.., step)| step).collect()
    }

    /// The status index leaves out succeeded runs, most of them: a page of failed runs is
    /// still read from it (SQLite uses a partial index only where the index's condition is
    /// written among the page's), not walked out of the whole history. Failed runs are
    /// records only: the queue's jobs are not read for them.
    #[tokio::test]
    async fn a_page_of_failed_runs_reads_the_status_index() {
        let steps = page_plan(RunStatus::Failed).await;
        assert!(
            steps.iter().any(|step| step.contains("taskyard_runs_by_status")),
            "{steps:?}"
        );
        assert!(
            !steps.iter().any(|step| step.contains("taskyard_jobs")),
            "{steps:?}"
        );
    }

    /// A page of runs still going reads the queue's jobs too, merged by id with the
    /// records, not sorted: a durable run is its job until it ends.
    #[tokio::test]
    async fn a_page_of_queued_runs_merges_the_jobs_with_the_records() {
        let steps = page_plan(RunStatus::Queued).await;
        assert!(steps.iter().any(|step| step == "MERGE (UNION ALL)"), "{steps:?}");
        assert!(
            steps.iter().any(|step| step.contains("taskyard_jobs")),
            "{steps:?}"
        );
        assert!(
            !steps.iter().any(|step| step.contains("TEMP B-TREE")),
            "{steps:?}"
        );
    }
}
