//! The counts of succeeded durable runs that were not kept (`Task::keep_succeeded(false)`),
//! so that the dashboard's charts still show them: the recorder adds each one it deleted,
//! by task and by the minute it ended in, and a task of its own writes what was added
//! about once a second, in one statement, into this instance's rows
//! ([`Store::count_forgotten`]).
//!
//! Not in the ends' own statements: written there, one row per batch of ends, the count
//! cost the burn-down of runs not kept 8 % of its rate (three alternating rounds,
//! PostgreSQL), each small batch updating a row. A count is not a run: an instance killed
//! loses at most its last second's counts, never a run or its end.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use super::Store;
use super::queue::{ForgottenCount, minute_of};
use crate::history::RunRecord;
use crate::sync::lock;

/// How often the counts added are written.
const EVERY: Duration = Duration::from_secs(1);

/// The counts added since the last write, by (minute, task), and where they go.
pub(super) struct Forgotten {
    counts: Mutex<BTreeMap<(i64, String), u64>>,
    store: Arc<dyn Store>,
    /// The instance whose rows they are added to.
    writer: Arc<str>,
}

impl Forgotten {
    pub(super) fn new(store: Arc<dyn Store>, writer: &str) -> Self {
        Forgotten {
            counts: Mutex::default(),
            store,
            writer: writer.into(),
        }
    }

    /// Counts `run`, deleted at its end, in the minute it ended in.
    pub(super) fn add(&self, run: &RunRecord) {
        let minute = minute_of(run.finished_at.unwrap_or_else(jiff::Timestamp::now));
        *lock(&self.counts).entry((minute, run.task.clone())).or_default() += 1;
    }

    /// Writes the counts added every [`EVERY`] until every sender of
    /// `lanes` is gone (each of the recorder's lanes, which add the counts, holds one until
    /// it ends), then once more. A write that fails keeps its counts for the next; the
    /// last one is tried for at most `timeout`.
    pub(super) async fn write_while(self: Arc<Self>, timeout: Duration, mut lanes: mpsc::Receiver<()>) {
        let mut ticks = tokio::time::interval(EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = lanes.recv() => break,
                _ = ticks.tick() => self.write().await,
            }
        }
        if tokio::time::timeout(timeout, self.write()).await.is_err() || !lock(&self.counts).is_empty() {
            tracing::warn!("the last counts of succeeded runs not kept could not be written");
        }
    }

    /// [`Forgotten::write`] on a task of its own, which a caller that stops waiting for it
    /// leaves going: the counts it took out are written or put back, never dropped while
    /// the write waits for a connection (a flush cut short by its time limit). `None`,
    /// with no task, when nothing was added since the last write.
    pub(super) fn write_apart(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        if lock(&self.counts).is_empty() {
            return None;
        }
        let this = self.clone();
        Some(tokio::spawn(async move { this.write().await }))
    }

    /// Writes what was added since the last write; on failure, puts it back.
    pub(super) async fn write(&self) {
        let taken = std::mem::take(&mut *lock(&self.counts));
        if taken.is_empty() {
            return;
        }
        let counts: Vec<ForgottenCount> = taken
            .iter()
            .map(|((minute, task), runs)| ForgottenCount {
                minute: *minute,
                task: task.clone(),
                runs: *runs,
            })
            .collect();
        if let Err(error) = self.store.count_forgotten(&self.writer, &counts).await {
            tracing::warn!(%error, "writing the counts of succeeded runs not kept failed; trying again");
            let mut counts = lock(&self.counts);
            for (key, runs) in taken {
                *counts.entry(key).or_default() += runs;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;

    use super::*;
    use crate::history::{RunStatus, Trigger};
    use crate::store::MemoryStore;

    fn ended(task: &str) -> RunRecord {
        let mut run = RunRecord::queued(
            task.into(),
            serde_json::Value::Null,
            Trigger::Manual,
            "i1".into(),
            Timestamp::now(),
        );
        run.status = RunStatus::Succeeded;
        run.finished_at = Some(Timestamp::now());
        run
    }

    async fn succeeded(store: &MemoryStore) -> u64 {
        let since = Timestamp::now() - jiff::SignedDuration::from_hours(1);
        store
            .run_counts(since, 3_600_000)
            .await
            .expect("counts")
            .iter()
            .map(|count| count.count)
            .sum()
    }

    #[tokio::test]
    async fn counts_are_written_each_second_and_once_more_when_the_lanes_end() {
        let store = Arc::new(MemoryStore::new());
        let forgotten = Arc::new(Forgotten::new(store.clone(), "i1"));
        let (alive, gone) = mpsc::channel::<()>(1);
        let writer = tokio::spawn(forgotten.clone().write_while(Duration::from_secs(5), gone));
        forgotten.add(&ended("mail"));
        forgotten.add(&ended("mail"));
        tokio::time::sleep(EVERY + Duration::from_millis(200)).await;
        assert_eq!(succeeded(&store).await, 2, "written within a second");
        forgotten.add(&ended("push"));
        drop(alive);
        writer.await.expect("the writer ends with the lanes");
        assert_eq!(succeeded(&store).await, 3, "the last ones written as it ends");
    }

    /// A flush that stops waiting while the counts' write waits for the store's one
    /// writing connection (busy with records that wait for a lock held elsewhere) leaves
    /// the write going: once the lock is let go, the counts are in the store.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn counts_whose_wait_is_cut_short_are_written_all_the_same() {
        use sqlx::Connection;

        use crate::store::SqliteStore;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        let store = Arc::new(SqliteStore::open(&path).await.expect("the store opens"));
        let since = Timestamp::now() - jiff::SignedDuration::from_hours(1);
        let forgotten = Arc::new(Forgotten::new(store.clone(), "i1"));
        let mut holder = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .expect("a second connection");
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut holder)
            .await
            .expect("the write lock held");
        // Records that take the store's writing connection and wait there for the lock.
        let records = tokio::spawn({
            let store = store.clone();
            async move { store.put_runs(&[ended("mail")]).await }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        forgotten.add(&ended("mail"));
        let write = forgotten.write_apart().expect("a count to write");
        let cut_short = tokio::time::timeout(Duration::from_millis(200), write).await;
        assert!(cut_short.is_err(), "the write waits for the connection");
        sqlx::query("COMMIT")
            .execute(&mut holder)
            .await
            .expect("the lock let go");
        records
            .await
            .expect("the records' task")
            .expect("the records written");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while store.forgotten_runs("mail", since).await.expect("counted") != 1 {
            assert!(tokio::time::Instant::now() < deadline, "the count was lost");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A real SQLite store that cannot take the counts (their table gone) keeps them in
    /// memory; once it takes them again, nothing counted meanwhile is missing.
    #[tokio::test]
    async fn counts_a_store_refuses_are_kept_for_the_next_write() {
        use crate::store::SqliteStore;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        let store = Arc::new(SqliteStore::open(&path).await.expect("the store opens"));
        let since = Timestamp::now() - jiff::SignedDuration::from_hours(1);
        let forgotten = Forgotten::new(store.clone(), "i1");
        let breaker = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
            .await
            .expect("a second connection");
        let schema: String =
            sqlx::query_scalar("SELECT sql FROM sqlite_master WHERE name = 'taskyard_forgotten'")
                .fetch_one(&breaker)
                .await
                .expect("the table's schema");
        sqlx::query("DROP TABLE taskyard_forgotten")
            .execute(&breaker)
            .await
            .expect("dropped");
        forgotten.add(&ended("mail"));
        forgotten.write().await;
        assert_eq!(lock(&forgotten.counts).len(), 1, "kept after the refusal");
        sqlx::query(sqlx::AssertSqlSafe(schema))
            .execute(&breaker)
            .await
            .expect("back");
        forgotten.add(&ended("mail"));
        forgotten.write().await;
        assert!(lock(&forgotten.counts).is_empty());
        assert_eq!(store.forgotten_runs("mail", since).await.expect("counted"), 2);
    }
}
