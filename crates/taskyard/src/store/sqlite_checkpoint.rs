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
//! next writes are made meanwhile.
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

/// The store's checkpointing task, which ends when the last clone of the store is dropped.
#[derive(Debug)]
pub(super) struct Checkpoints {
    /// Wakes the task after a write.
    wrote: Arc<Notify>,
    _stop: DropGuard,
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
        }))
    }

    /// Starts the task, which checkpoints after each [`Checkpoints::wrote`].
    pub(super) fn start(files: Files) -> Checkpoints {
        let wrote = Arc::new(Notify::new());
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
        self.wrote.notify_one();
    }
}

/// After each write (the writes made meanwhile together), one checkpoint, then at least
/// [`GAP`] before the next.
async fn checkpoint_after_writes(files: Arc<Files>, wrote: Arc<Notify>, stop: CancellationToken) {
    let mut unsynced = Unsynced::default();
    loop {
        tokio::select! {
            () = wrote.notified() => {}
            () = stop.cancelled() => return,
        }
        // A failure (a full disk, say) leaves the pages in the WAL, where readers find
        // them: the next write tries again, and the writes' own errors say what is wrong.
        if let Err(error) = checkpoint(&files, &mut unsynced).await {
            tracing::debug!(%error, "checkpointing the SQLite WAL failed");
        }
        tokio::select! {
            () = tokio::time::sleep(GAP) => {}
            () = stop.cancelled() => return,
        }
    }
}

/// A passive checkpoint and a sync of the file; when the WAL is long, another checkpoint
/// while the writes' connection is held, and a restart checkpoint when that one could not
/// copy everything back and the WAL is longer still (see the module docs).
async fn checkpoint(files: &Arc<Files>, unsynced: &mut Unsynced) -> Result<(), sqlx::Error> {
    let (pages, copied) = passive(&files.own).await?;
    if unsynced.after(pages, copied) {
        let synced = files.clone();
        tokio::task::spawn_blocking(move || synced.file.sync_data())
            .await
            .map_err(|error| sqlx::Error::Io(std::io::Error::other(error)))??;
        unsynced.synced(copied);
    }
    if pages < files.restart_at {
        return Ok(());
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
    Ok(())
}

/// Which pages copied back into the file no sync has covered yet: the task syncs the file
/// only after a checkpoint that copied new pages and did not finish. SQLite syncs the file
/// itself after a checkpoint that copied the whole WAL back (with `synchronous = NORMAL`),
/// and a checkpoint that found nothing new copied nothing, so an idle app's heartbeats cost
/// SQLite's syncs alone.
#[derive(Debug, Default)]
struct Unsynced {
    /// The WAL's pages copied back as of the task's last sync (or SQLite's).
    copied: i64,
}

impl Unsynced {
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
mod tests {
    use std::time::Instant;

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

    /// Writes that never checkpoint by themselves, one commit after another without a
    /// pause, leave a WAL that the task keeps short: without its turn on the writes'
    /// connection, the WAL would hold every page they wrote.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_steady_stream_of_writes_keeps_the_wal_short() {
        let dir = tempfile::tempdir().expect("a folder");
        let path = dir.path().join("wal.db");
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal);
        let writes = pool(&options.clone().pragma("wal_autocheckpoint", "0")).await;
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
