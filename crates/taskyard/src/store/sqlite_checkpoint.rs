//! Checkpoints of SQLite's write-ahead log, made beside the records' writes instead of
//! inside them.
//!
//! SQLite copies the WAL back into the database file (a checkpoint) in the connection
//! whose commit took the WAL past 1,000 pages, before that commit returns: the commit's
//! statement waits for the copy and its `fsync`s. Every write of the process commits on
//! one connection (the records' batches, the queue's claims and ends, enqueues, ticks), so
//! the requests whose records were in such a batch waited for it, about 16 times a second
//! under load, 5–15 ms each. That connection checkpoints nothing now. After its writes, at
//! most every [`GAP`], a task of the store's makes a passive checkpoint (one that waits for
//! no reader or writer) on a connection of its own, then syncs the file when that copied
//! new pages without finishing (SQLite syncs it after a checkpoint that finished), and the
//! next writes are made meanwhile. A checkpoint that found few new pages (an idle app's
//! heartbeats and ticks) makes the next one wait [`QUIET_GAP`] instead, unless load comes
//! back meanwhile ([`QUIET_WRITES`]).
//!
//! SQLite starts the WAL over only when a write begins with every page of the WAL back in
//! the file, which a checkpoint beside a steady stream of writes never leaves: the WAL
//! would grow without end (70 MB a second under load). So once the WAL holds the
//! threshold's pages ([`RESTART_AT`]), the task holds the writes' connection back, in turn
//! with the batches, while it copies what was written since its last checkpoint: this
//! process's writes wait a few milliseconds, about once a second under load, and the next
//! one starts the WAL over. (That last copy syncs the file whole: without the task's own
//! syncs after each checkpoint it waited 30–40 ms for them.) Other processes writing to the
//! same file can keep it from finishing; past four times the threshold the task then makes
//! a restart checkpoint, which holds every process's writes back until it is done, its wait
//! for them and for readers bounded by the connection's short busy timeout ([`WAIT`]).

use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::SqliteConnectOptions;
use tokio::sync::Notify;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::Error;

/// The least time between two checkpoints: under a steady load of records, a WAL of a few
/// thousand pages between them, as SQLite's own threshold kept it.
const GAP: Duration = Duration::from_millis(100);

/// The WAL's pages (4 KiB each) past which the checkpoints start it over: 64 MiB, about a
/// second of records under load.
const RESTART_AT: i64 = 16_384;

/// How long the checkpoints' connection waits for a lock: a restart checkpoint holds every
/// write back while it waits for readers to leave the WAL.
const WAIT: Duration = Duration::from_millis(100);

/// New pages in the WAL under which a checkpoint counts as quiet: an idle app's heartbeats
/// and ticks, a few pages each.
const QUIET_PAGES: i64 = 64;

/// After a quiet checkpoint the next one waits this long, or for [`QUIET_WRITES`] writes,
/// whichever comes first. Each checkpoint that finds new pages costs SQLite three syncs (the
/// WAL's before the copy, the file's after it, and the WAL's header when the next write
/// starts it over): once a second each, an idle app's heartbeats kept it syncing three times
/// a second. It is also how long a power cut can take an idle app's last commits with it
/// (`synchronous = NORMAL` syncs the WAL at checkpoints, not at commits).
const QUIET_GAP: Duration = Duration::from_secs(5);

/// Writes after a quiet checkpoint that end its wait at once: load coming back, which the
/// checkpoints then follow every [`GAP`] again.
const QUIET_WRITES: u64 = 64;

/// The store's checkpointing task, which ends when the last clone of the store is dropped.
#[derive(Debug)]
pub(super) struct Checkpoints {
    /// Counts the writes and wakes the task after each.
    wrote: Arc<Writes>,
    _stop: DropGuard,
}

/// The writes made so far, and the task's wake-up.
#[derive(Debug, Default)]
struct Writes {
    made: AtomicU64,
    wake: Notify,
}

impl Writes {
    /// The writes made so far.
    fn made(&self) -> u64 {
        self.made.load(Ordering::Acquire)
    }

    /// One more write: wakes the task.
    fn add(&self) {
        self.made.fetch_add(1, Ordering::Release);
        self.wake.notify_one();
    }

    /// Waits until more than `seen` writes were made.
    async fn past(&self, seen: u64) {
        while self.made() <= seen {
            self.wake.notified().await;
        }
    }
}

/// What the checkpointing task works with.
pub(super) struct Files {
    /// A connection of the task's own, its busy timeout [`WAIT`].
    pub own: SqlitePool,
    /// The connection that does not checkpoint by itself.
    pub writes: SqlitePool,
    /// The database file, for its syncs.
    pub file: File,
    /// The WAL's pages past which the checkpoints start it over ([`RESTART_AT`]).
    pub restart_at: i64,
    /// The wait after a quiet checkpoint ([`QUIET_GAP`]).
    pub quiet_gap: Duration,
}

impl Checkpoints {
    /// Opens the task's own connection to the file of `options` at `path` and starts the
    /// task, which helps `writes` (a connection that does not checkpoint by itself).
    pub(super) async fn open(
        options: &SqliteConnectOptions,
        writes: SqlitePool,
        path: &Path,
    ) -> Result<Checkpoints, Error> {
        let own = super::sqlite::connect(&options.clone().busy_timeout(WAIT), 1)
            .await
            .map_err(super::sqlx_error("sqlite"))?;
        let file = File::open(path).map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        Ok(Checkpoints::start(Files {
            own,
            writes,
            file,
            restart_at: RESTART_AT,
            quiet_gap: QUIET_GAP,
        }))
    }

    /// Starts the task, which checkpoints after each [`Checkpoints::wrote`].
    pub(super) fn start(files: Files) -> Checkpoints {
        let wrote = Arc::new(Writes::default());
        let stop = CancellationToken::new();
        drop(tokio::spawn(checkpoint_after_writes(
            Arc::new(files),
            wrote.clone(),
            stop.clone(),
        )));
        Checkpoints {
            wrote,
            _stop: stop.drop_guard(),
        }
    }

    /// Says that the connection that does not checkpoint by itself committed.
    pub(super) fn wrote(&self) {
        self.wrote.add();
    }
}

/// After each write (the writes made meanwhile together), one checkpoint, then at least
/// [`GAP`] before the next; after a quiet one, [`QUIET_GAP`] or [`QUIET_WRITES`] writes.
async fn checkpoint_after_writes(files: Arc<Files>, wrote: Arc<Writes>, stop: CancellationToken) {
    let mut unsynced = Unsynced::default();
    let mut seen = 0;
    loop {
        tokio::select! {
            () = wrote.past(seen) => {}
            () = stop.cancelled() => return,
        }
        seen = wrote.made();
        // A failure (a full disk, say) leaves the pages in the WAL, where readers find
        // them: the next write tries again, and the writes' own errors say what is wrong.
        let quiet = match checkpoint(&files, &mut unsynced).await {
            Ok(new) => new < QUIET_PAGES,
            Err(error) => {
                tracing::debug!(%error, "checkpointing the SQLite WAL failed");
                false
            }
        };
        let wait = async {
            tokio::time::sleep(GAP).await;
            if quiet {
                let rest = files.quiet_gap.saturating_sub(GAP);
                let _ = tokio::time::timeout(rest, wrote.past(seen + QUIET_WRITES)).await;
            }
        };
        tokio::select! {
            () = wait => {}
            () = stop.cancelled() => return,
        }
    }
}

/// A passive checkpoint and a sync of the file; when the WAL is long, another checkpoint
/// while the writes' connection is held, and a restart checkpoint when that one could not
/// copy everything back and the WAL is longer still (see the module docs).
///
/// Returns the pages it found in the WAL that the last checkpoint had not.
async fn checkpoint(files: &Arc<Files>, unsynced: &mut Unsynced) -> Result<i64, sqlx::Error> {
    let (pages, copied) = passive(&files.own).await?;
    let new = unsynced.found(pages);
    if unsynced.after(pages, copied) {
        let synced = files.clone();
        tokio::task::spawn_blocking(move || synced.file.sync_data())
            .await
            .map_err(|error| sqlx::Error::Io(std::io::Error::other(error)))??;
        unsynced.synced(copied);
    }
    if pages < files.restart_at {
        return Ok(new);
    }
    // This process's writes wait while the pages written since are copied back.
    let held = files.writes.acquire().await?;
    let (pages, copied) = passive(&files.own).await?;
    drop(held);
    if copied < pages && pages >= 4 * files.restart_at {
        sqlx::query("PRAGMA wal_checkpoint(RESTART)")
            .execute(&files.own)
            .await?;
    }
    Ok(new)
}

/// What the task knows of the WAL from its checkpoints: how many pages the last one found
/// (so that the next tells how many are new), and which pages copied back into the file no
/// sync has covered yet. The task syncs the file only after a checkpoint that copied new
/// pages and did not finish. SQLite syncs the file
/// itself after a checkpoint that copied the whole WAL back (with `synchronous = NORMAL`),
/// and a checkpoint that found nothing new copied nothing, so an idle app's heartbeats cost
/// SQLite's syncs alone.
#[derive(Debug, Default)]
struct Unsynced {
    /// The WAL's pages copied back as of the task's last sync (or SQLite's).
    copied: i64,
    /// The WAL's pages at the last checkpoint.
    pages: i64,
}

impl Unsynced {
    /// A checkpoint found `pages` in the WAL: how many the one before had not. Fewer than
    /// before means the WAL started over, and all of them are new.
    fn found(&mut self, pages: i64) -> i64 {
        let last = std::mem::replace(&mut self.pages, pages);
        if pages < last { pages } else { pages - last }
    }

    /// After a checkpoint that found `pages` in the WAL and `copied` of them back in the
    /// file: whether the file needs the task's sync.
    fn after(&mut self, pages: i64, copied: i64) -> bool {
        if copied < self.copied {
            // The WAL started over: nothing of it has been synced.
            self.copied = 0;
        }
        if copied == pages {
            // Finished: SQLite synced the file.
            self.copied = copied;
            return false;
        }
        copied > self.copied
    }

    /// The file was synced with `copied` pages back in it.
    fn synced(&mut self, copied: i64) {
        self.copied = copied;
    }
}

/// A passive checkpoint: the pages in the WAL, and how many of them are back in the file.
async fn passive(pool: &SqlitePool) -> Result<(i64, i64), sqlx::Error> {
    // (whether it was kept from finishing, the WAL's pages, the pages copied back)
    let (_, pages, copied): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(pool)
        .await?;
    Ok((pages, copied))
}

#[cfg(test)]
pub(super) mod tests {
    use std::time::Instant;

    use sqlx::Connection;
    use sqlx::sqlite::{SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

    use super::*;

    async fn pool(options: &SqliteConnectOptions) -> SqlitePool {
        SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .expect("a connection")
    }

    /// The task's sync follows new pages copied by a checkpoint that did not finish; an
    /// idle app's checkpoints, which find nothing new or finish, cost it none.
    #[test]
    fn the_file_is_synced_after_new_pages_an_unfinished_checkpoint_copied() {
        let mut unsynced = Unsynced::default();
        assert!(unsynced.after(100, 40), "40 new pages, the WAL not all back");
        unsynced.synced(40);
        assert!(!unsynced.after(100, 40), "nothing copied since the sync");
        assert!(!unsynced.after(120, 120), "finished: SQLite synced the file");
        assert!(!unsynced.after(120, 120), "nothing new");
        assert!(unsynced.after(200, 150), "new pages, not finished");
        unsynced.synced(150);
        assert!(unsynced.after(30, 10), "the WAL started over: its pages are new");
    }

    /// Options for a WAL file at `path`, and a writes' connection that never checkpoints
    /// by itself, as the store's.
    async fn wal_file(path: &Path) -> (SqliteConnectOptions, SqlitePool) {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal);
        let writes = pool(&options.clone().pragma("wal_autocheckpoint", "0")).await;
        (options, writes)
    }

    /// The rows of `table` in the database file itself: a connection that opens it as
    /// immutable reads the file alone, without the WAL.
    async fn rows_in_file(path: &Path, table: &str) -> i64 {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .immutable(true)
            .read_only(true);
        let mut file = sqlx::SqliteConnection::connect_with(&options)
            .await
            .expect("the file opens");
        // Before the first checkpoint the file has no table yet.
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
            .fetch_one(&mut file)
            .await
            .unwrap_or(0)
    }

    /// Waits up to `within` for `rows` rows of `table` in the file; how many it found.
    pub(in crate::store) async fn file_reaches(path: &Path, table: &str, rows: i64, within: Duration) -> i64 {
        let began = Instant::now();
        loop {
            let found = rows_in_file(path, table).await;
            if found >= rows || began.elapsed() > within {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// After a checkpoint that found few new pages, the next waits the quiet gap, or for
    /// enough writes that load has come back; either way the writes reach the file.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_quiet_checkpoint_waits_for_the_gap_or_for_load() {
        let dir = tempfile::tempdir().expect("a folder");
        let path = dir.path().join("quiet.db");
        let (options, writes) = wal_file(&path).await;
        let quiet_gap = Duration::from_secs(2);
        let checkpoints = Checkpoints::start(Files {
            own: pool(&options.clone().busy_timeout(WAIT)).await,
            writes: writes.clone(),
            file: File::open(&path).expect("the file"),
            restart_at: RESTART_AT,
            quiet_gap,
        });
        let write = || async {
            sqlx::query("INSERT INTO t VALUES (1)")
                .execute(&writes)
                .await
                .expect("a write");
            checkpoints.wrote();
        };
        sqlx::query("CREATE TABLE t (x INTEGER)")
            .execute(&writes)
            .await
            .expect("a table");
        write().await;
        assert_eq!(
            file_reaches(&path, "t", 1, Duration::from_secs(5)).await,
            1,
            "the first write"
        );

        // A quiet checkpoint: the next write waits in the WAL for the gap.
        let began = Instant::now();
        write().await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let early = rows_in_file(&path, "t").await;
        // (A machine that stalled the test for the whole gap proves nothing either way.)
        if began.elapsed() < quiet_gap {
            assert_eq!(early, 1, "the second write was copied back within 500 ms");
        }
        assert_eq!(
            file_reaches(&path, "t", 2, quiet_gap * 3).await,
            2,
            "after the gap"
        );

        // Load comes back: its writes end the quiet wait long before the gap.
        let began = Instant::now();
        for _ in 0..=QUIET_WRITES {
            write().await;
        }
        let all = 3 + i64::try_from(QUIET_WRITES).expect("a count");
        assert_eq!(
            file_reaches(&path, "t", all, quiet_gap * 3).await,
            all,
            "the load's writes"
        );
        assert!(
            began.elapsed() < quiet_gap,
            "load waited {:?}, the whole quiet gap",
            began.elapsed()
        );
    }

    /// Writes that never checkpoint by themselves, one commit after another without a
    /// pause, leave a WAL that the task keeps short: without its turn on the writes'
    /// connection, the WAL would hold every page they wrote.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_steady_stream_of_writes_keeps_the_wal_short() {
        let dir = tempfile::tempdir().expect("a folder");
        let path = dir.path().join("wal.db");
        let (options, writes) = wal_file(&path).await;
        sqlx::query("CREATE TABLE t (x BLOB)")
            .execute(&writes)
            .await
            .expect("a table");
        let restart_at = 512;
        let checkpoints = Checkpoints::start(Files {
            own: pool(&options.clone().busy_timeout(WAIT)).await,
            writes: writes.clone(),
            file: File::open(&path).expect("the file"),
            restart_at,
            quiet_gap: QUIET_GAP,
        });
        // Each commit adds a page of its own to the table, and its frames to the WAL.
        let mut written = 0;
        let started = Instant::now();
        while written < 40 * restart_at && started.elapsed() < Duration::from_secs(60) {
            sqlx::query("INSERT INTO t VALUES (zeroblob(3000))")
                .execute(&writes)
                .await
                .expect("a write");
            checkpoints.wrote();
            written += 1;
        }
        assert!(written >= 40 * restart_at, "only {written} commits in a minute");
        drop(checkpoints);
        // The pages written since the WAL last started over. Each commit wrote at least
        // one: a WAL never started over holds them all. (Not the file's size, which is
        // the most the WAL ever held: on a loaded machine a sync of the file can hold the
        // task back for seconds.)
        let (pages, _) = passive(&writes).await.expect("a checkpoint");
        assert!(
            pages < written / 2,
            "the WAL holds {pages} pages after {written} commits, started over at {restart_at}"
        );
    }
}
