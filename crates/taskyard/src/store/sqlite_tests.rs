//! The SQLite store's own tests (the shared ones are in `tests/store_*.rs`).

use crate::config::SqliteSync;
use crate::store::sqlite::*;
use crate::store::sqlite_checkpoint::tests::file_reaches;

/// Every write goes to the one writes' connection, which leaves its checkpoints to the
/// store's task: the reads' connections refuse to write.
#[tokio::test]
async fn only_the_writes_connection_writes() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let store = SqliteStore::open(dir.path().join("t.db"))
        .await
        .expect("the store");
    let checkpoints: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint")
        .fetch_one(&store.writes)
        .await
        .expect("a pragma");
    assert_eq!(checkpoints, 0);
    let refused = sqlx::query("DELETE FROM taskyard_runs")
        .execute(&store.pool)
        .await
        .expect_err("a read connection refuses to write");
    assert!(refused.to_string().contains("readonly"), "{refused}");
    sqlx::query("DELETE FROM taskyard_runs")
        .execute(&store.writes)
        .await
        .expect("the writes' connection writes");
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

/// Every write reaches the database file, not only the WAL: the store's task
/// checkpoints after each kind of write, keyed enqueues alone included. (They once
/// left the WAL unchecked: SQLite's own checkpoint hook does not run for a statement
/// reset before it ran to its end, as `fetch_optional` does, and they grew it by 769 MB
/// for 30,000 jobs.) A connection that opens the file as immutable reads the file
/// alone, without the WAL.
#[tokio::test]
async fn keyed_enqueues_alone_reach_the_file() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("jobs.db");
    let store = SqliteStore::open(&path).await.expect("the store opens");
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
    let jobs = file_reaches(&path, "taskyard_jobs", 600, Duration::from_secs(10)).await;
    assert_eq!(jobs, 600, "jobs in the database file after 600 keyed enqueues");
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
    let plan: Vec<(i64, i64, i64, String)> = Statements::<Sqlite>::runs_page(&filter, "EXPLAIN QUERY PLAN ")
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

/// A connection whose transaction SQLite rolled back by itself (as on a full disk) is not
/// given out again: the `ROLLBACK` its dropped transaction queues then fails, sqlx keeps
/// counting the transaction, and that connection would refuse every later `BEGIN`.
#[tokio::test]
async fn a_connection_left_inside_a_transaction_is_not_reused() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let options = SqliteConnectOptions::new()
        .filename(dir.path().join("t.db"))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal);
    let pool = connect(&options, 1).await.expect("a pool");
    {
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.expect("a transaction");
        // What SQLite does by itself on a full disk: the transaction ends under sqlx.
        sqlx::query("ROLLBACK")
            .execute(&mut *tx)
            .await
            .expect("rolled back");
    }
    let mut tx = pool
        .begin_with("BEGIN IMMEDIATE")
        .await
        .expect("the next transaction begins");
    sqlx::query("CREATE TABLE t (x)")
        .execute(&mut *tx)
        .await
        .expect("a write");
    tx.commit().await.expect("committed");
}

/// A write transaction of the shared statements takes the write lock at its start, so a
/// transaction that reads before it writes never finds, at its first write, that another
/// process wrote since its read (SQLite then fails it without waiting).
#[tokio::test]
async fn a_write_transaction_takes_the_write_lock_at_once() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("t.db");
    let store = SqliteStore::open(&path).await.expect("the store");
    let tx = store.write().begin().await.expect("a transaction");
    // Another process's connection, which does not wait for the lock.
    let options = SqliteConnectOptions::new()
        .filename(&path)
        .busy_timeout(Duration::ZERO);
    let mut other = sqlx::SqliteConnection::connect_with(&options)
        .await
        .expect("another connection");
    let refused = sqlx::query("DELETE FROM taskyard_runs")
        .execute(&mut other)
        .await
        .expect_err("the write lock is held from the transaction's start");
    assert!(is_busy(&refused), "{refused}");
    drop(tx);
}

/// `SqliteSync::Full` syncs the WAL at each commit on every connection of the store, the
/// writes' and the reads'; `Normal` leaves it to the checkpoints.
#[tokio::test]
async fn each_commit_is_synced_when_asked() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    for (sync, expected) in [(SqliteSync::Full, 2), (SqliteSync::Normal, 1)] {
        let store = SqliteStore::open_with(dir.path().join(format!("{sync:?}.db")), sync)
            .await
            .expect("the store");
        for pool in [&store.writes, &store.pool] {
            let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
                .fetch_one(pool)
                .await
                .expect("a pragma");
            assert_eq!(synchronous, expected, "{sync:?}");
        }
    }
}
