//! The floor of a durable queue on PostgreSQL and on SQLite: the least that a queue which
//! runs each job at least once must ask of the database, written straight through sqlx
//! with nothing around it. A job is a row of a table with one index of the unclaimed rows;
//! a claim marks up to `BATCH` due rows as taken (on PostgreSQL, locked with `FOR UPDATE
//! SKIP LOCKED`), and the jobs, which do nothing, are then deleted in one statement. No
//! history is kept, no attempt is fenced, no instance is leased: the floor is what the
//! machine allows any queue, taskyard and its peers alike.
//!
//! On PostgreSQL its burn-down is the better of 1 and of 4 claimers on their own
//! connections, each claiming and deleting one batch after another, and its enqueue→start
//! latency is that of a row inserted with a notification to an idle listener, which then
//! claims it. On SQLite one connection does it all (the file has one writer at a time),
//! with taskyard's settings (WAL, `synchronous = NORMAL`), and a job is claimed as soon as
//! its insert is committed.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use std::path::Path;

use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

/// Jobs one claim takes at most: as many as a taskyard instance holds at most.
const BATCH: i64 = 512;

/// The notification channel of the floor's idle listener.
const CHANNEL: &str = "taskyard_bench_floor";

/// What the floor measured: its burn-down rate and its idle enqueue→start latency.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Floor {
    pub jobs_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// The floor of a burn-down of `jobs` jobs and of `latency_jobs` single jobs, on the
/// PostgreSQL database at `url` (whose search path is a schema of the bench's own).
pub(crate) fn measure_postgres(url: &str, jobs: usize, latency_jobs: usize) -> Floor {
    let runtime = crate::two_workers();
    runtime.block_on(async {
        let pool = PgPoolOptions::new()
            .max_connections(5)
            .connect(url)
            .await
            .expect("the floor connects to PostgreSQL");
        let mut rates = Vec::new();
        for claimers in [1, 4] {
            rates.push(burn_down(&pool, jobs, claimers).await);
        }
        let mut latencies = Vec::with_capacity(latency_jobs);
        let mut listener = PgListener::connect_with(&pool).await.expect("a listener");
        listener.listen(CHANNEL).await.expect("LISTEN");
        for _ in 0..latency_jobs {
            let asked = Instant::now();
            sqlx::query(
                "WITH job AS (INSERT INTO floor_jobs (run_at, payload) VALUES (0, '{}') RETURNING id) \
                 SELECT pg_notify($1, '') FROM job",
            )
            .bind(CHANNEL)
            .execute(&pool)
            .await
            .expect("a job queued");
            listener.recv().await.expect("the job's notification");
            let claimed = claim(&pool, "listener", 1).await;
            latencies.push(asked.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(claimed.len(), 1, "the queued job is claimed");
            delete(&pool, &claimed).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The listener's connection came from the pool, which waits for it to close.
        drop(listener);
        pool.close().await;
        Floor::of(rates, latencies)
    })
}

impl Floor {
    /// The best of the burn-down `rates`, and the median and 99th percentile of
    /// `latencies` (ms).
    fn of(rates: Vec<f64>, mut latencies: Vec<f64>) -> Floor {
        latencies.sort_by(f64::total_cmp);
        Floor {
            jobs_per_s: rates.into_iter().fold(0.0, f64::max),
            p50_ms: latencies[latencies.len() / 2],
            p99_ms: latencies[latencies.len() * 99 / 100],
        }
    }
}

/// The floor on a new SQLite file at `path`: a burn-down of `jobs` jobs, then
/// `latency_jobs` single jobs, each claimed once its insert is committed.
pub(crate) fn measure_sqlite(path: &Path, jobs: usize, latency_jobs: usize) -> Floor {
    let runtime = crate::two_workers();
    runtime.block_on(async {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .expect("the floor opens its SQLite file");
        for statement in [
            "CREATE TABLE floor_jobs (id INTEGER PRIMARY KEY, run_at INTEGER NOT NULL, \
             locked_by TEXT, payload TEXT NOT NULL)",
            "CREATE INDEX floor_jobs_due ON floor_jobs (run_at, id) WHERE locked_by IS NULL",
        ] {
            sqlx::query(statement)
                .execute(&pool)
                .await
                .expect("the floor's table");
        }
        sqlx::query(
            "WITH RECURSIVE n(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM n WHERE n < ?) \
             INSERT INTO floor_jobs (run_at, payload) SELECT 0, json_object('n', n) FROM n",
        )
        .bind(jobs as i64)
        .execute(&pool)
        .await
        .expect("the floor's jobs queued");
        let began = Instant::now();
        let mut done = 0;
        loop {
            let claimed = claim_sqlite(&pool, BATCH).await;
            if claimed.is_empty() {
                break;
            }
            delete_sqlite(&pool, &claimed).await;
            done += claimed.len();
        }
        let rate = jobs as f64 / began.elapsed().as_secs_f64();
        assert_eq!(done, jobs, "every job ran once");
        let mut latencies = Vec::with_capacity(latency_jobs);
        for _ in 0..latency_jobs {
            let asked = Instant::now();
            sqlx::query("INSERT INTO floor_jobs (run_at, payload) VALUES (0, '{}')")
                .execute(&pool)
                .await
                .expect("a job queued");
            let claimed = claim_sqlite(&pool, 1).await;
            latencies.push(asked.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(claimed.len(), 1, "the queued job is claimed");
            delete_sqlite(&pool, &claimed).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        pool.close().await;
        Floor::of(vec![rate], latencies)
    })
}

/// The ids of up to `limit` due jobs of the SQLite floor, now taken.
async fn claim_sqlite(pool: &SqlitePool, limit: i64) -> Vec<i64> {
    sqlx::query_scalar(
        "UPDATE floor_jobs SET locked_by = 'floor' WHERE id IN (\
             SELECT id FROM floor_jobs WHERE locked_by IS NULL AND run_at <= ? \
             ORDER BY run_at, id LIMIT ?) \
         RETURNING id",
    )
    .bind(jiff::Timestamp::now().as_millisecond())
    .bind(limit)
    .fetch_all(pool)
    .await
    .expect("jobs claimed")
}

/// Deletes the SQLite floor's jobs `ids`, which ran.
async fn delete_sqlite(pool: &SqlitePool, ids: &[i64]) {
    let list = serde_json::to_string(ids).expect("ids as JSON");
    sqlx::query("DELETE FROM floor_jobs WHERE id IN (SELECT value FROM json_each(?))")
        .bind(list)
        .execute(pool)
        .await
        .expect("jobs deleted");
}

/// Jobs per second that `claimers` claimers burn down, `jobs` queued beforehand in one
/// statement (not timed) into a new table; every job is checked to have run once.
async fn burn_down(pool: &PgPool, jobs: usize, claimers: usize) -> f64 {
    for statement in [
        "DROP TABLE IF EXISTS floor_jobs",
        "CREATE TABLE floor_jobs (id BIGSERIAL PRIMARY KEY, run_at BIGINT NOT NULL, \
         locked_by TEXT, payload JSONB NOT NULL)",
        "CREATE INDEX floor_jobs_due ON floor_jobs (run_at, id) WHERE locked_by IS NULL",
    ] {
        sqlx::query(statement)
            .execute(pool)
            .await
            .expect("the floor's table");
    }
    sqlx::query(
        "INSERT INTO floor_jobs (run_at, payload) SELECT 0, jsonb_build_object('n', n) \
         FROM generate_series(1, $1) AS n",
    )
    .bind(jobs as i64)
    .execute(pool)
    .await
    .expect("the floor's jobs queued");
    let done = Arc::new(AtomicUsize::new(0));
    let began = Instant::now();
    let workers: Vec<_> = (0..claimers)
        .map(|claimer| {
            let (pool, done) = (pool.clone(), done.clone());
            tokio::spawn(async move {
                let name = format!("claimer {claimer}");
                loop {
                    let claimed = claim(&pool, &name, BATCH).await;
                    if claimed.is_empty() {
                        break;
                    }
                    delete(&pool, &claimed).await;
                    done.fetch_add(claimed.len(), Ordering::Relaxed);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("a claimer");
    }
    let seconds = began.elapsed().as_secs_f64();
    assert_eq!(done.load(Ordering::SeqCst), jobs, "every job ran once");
    jobs as f64 / seconds
}

/// The ids of up to `limit` due jobs, now taken by `claimer`.
async fn claim(pool: &PgPool, claimer: &str, limit: i64) -> Vec<i64> {
    sqlx::query_scalar(
        "UPDATE floor_jobs SET locked_by = $1 WHERE id = ANY(ARRAY(\
             SELECT id FROM floor_jobs WHERE locked_by IS NULL AND run_at <= $2 \
             ORDER BY run_at, id LIMIT $3 FOR UPDATE SKIP LOCKED)) \
         RETURNING id",
    )
    .bind(claimer)
    .bind(jiff::Timestamp::now().as_millisecond())
    .bind(limit)
    .fetch_all(pool)
    .await
    .expect("jobs claimed")
}

/// Deletes the jobs `ids`, which ran.
async fn delete(pool: &PgPool, ids: &[i64]) {
    sqlx::query("DELETE FROM floor_jobs WHERE id = ANY($1)")
        .bind(ids)
        .execute(pool)
        .await
        .expect("jobs deleted");
}
