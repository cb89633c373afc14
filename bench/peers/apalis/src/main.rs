//! apalis's side of the durable-queue comparison: a burn-down of N no-op jobs pushed in
//! bulk beforehand, with the worker's concurrency limited to C, then the push→start latency
//! of single jobs pushed to the idle worker, and (PostgreSQL) the database writes per job.
//! Prints one JSON line.
//!
//! Usage: apalis-queue postgres DATABASE_URL N C | apalis-queue sqlite FILE N C

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use apalis::prelude::*;
use apalis_postgres::PostgresStorage;
use apalis_sqlite::SqliteStorage;
use serde_json::json;
use tokio::sync::mpsc;

/// Single jobs timed from push to start on the idle worker.
const LATENCY_JOBS: usize = 50;

/// Jobs pushed per statement while filling the queue.
const FILL_BATCH: usize = 1_000;

/// What the worker's jobs report: a burn-down job (`0`) ending, or a latency job (the
/// microsecond, since `EPOCH`, it was pushed at) starting.
struct Probe {
    epoch: Instant,
    done: AtomicUsize,
    started: mpsc::UnboundedSender<f64>,
}

async fn job(pushed_at: u64, probe: Data<Arc<Probe>>) -> Result<(), BoxDynError> {
    if pushed_at == 0 {
        probe.done.fetch_add(1, Ordering::Relaxed);
    } else {
        let now = probe.epoch.elapsed().as_micros() as u64;
        let _ = probe.started.send((now - pushed_at) as f64 / 1000.0);
    }
    Ok(())
}

/// Fills `$storage` with `$jobs` burn-down jobs, runs `$before`, then times a worker's
/// burn-down of them and the latency of single jobs on the idle worker. A macro: the two
/// backends' storages share no trait that names all of this.
macro_rules! burn_down {
    ($storage:ident, $jobs:expr, $concurrency:expr, $probe:expr, $starts:expr, $before:block) => {{
        let mut starts = $starts;
        let mut left = $jobs;
        while left > 0 {
            let batch = left.min(FILL_BATCH);
            $storage.push_bulk(vec![0u64; batch]).await.expect("jobs pushed");
            left -= batch;
        }
        $before
        let began = Instant::now();
        let worker = WorkerBuilder::new("apalis-bench")
            .backend($storage.clone())
            .data($probe.clone())
            .concurrency($concurrency)
            .build(job);
        tokio::spawn(async move {
            let _ = worker.run().await;
        });
        while $probe.done.load(Ordering::Relaxed) < $jobs {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let seconds = began.elapsed().as_secs_f64();
        let mut latencies = Vec::with_capacity(LATENCY_JOBS);
        for _ in 0..LATENCY_JOBS {
            let at = ($probe.epoch.elapsed().as_micros() as u64).max(1);
            $storage.push(at).await.expect("job pushed");
            latencies.push(starts.recv().await.expect("started"));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        latencies.sort_by(f64::total_cmp);
        (seconds, latencies)
    }};
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, backend, url, jobs, concurrency] = args.as_slice() else {
        panic!("usage: apalis-queue postgres|sqlite URL JOBS CONCURRENCY");
    };
    let jobs: usize = jobs.parse().expect("JOBS is a number");
    let concurrency: usize = concurrency.parse().expect("CONCURRENCY is a number");
    let (started, starts) = mpsc::unbounded_channel();
    let probe = Arc::new(Probe {
        epoch: Instant::now(),
        done: AtomicUsize::new(0),
        started,
    });
    let result = match backend.as_str() {
        "postgres" => postgres(url, jobs, concurrency, probe, starts).await,
        "sqlite" => sqlite(url, jobs, concurrency, probe, starts).await,
        other => panic!("unknown backend {other}"),
    };
    println!("{result}");
    // The worker runs until the process ends.
    std::process::exit(0);
}

async fn postgres(
    url: &str,
    jobs: usize,
    concurrency: usize,
    probe: Arc<Probe>,
    starts: mpsc::UnboundedReceiver<f64>,
) -> serde_json::Value {
    let pool = sqlx::PgPool::connect(url).await.expect("PostgreSQL");
    PostgresStorage::setup(&pool).await.expect("apalis's migrations");
    let config = apalis_postgres::Config::default()
        .queue("bench")
        .batch_size(concurrency);
    let mut storage = PostgresStorage::<u64>::new(&pool)
        .with_config(config)
        .with_pubsub();
    let before;
    let (seconds, latencies) = burn_down!(storage, jobs, concurrency, probe, starts, {
        before = rows_written(&pool).await;
    });
    let after = rows_written(&pool).await;
    report(jobs, seconds, latencies, (after - before) as f64 / jobs as f64)
}

async fn sqlite(
    file: &str,
    jobs: usize,
    concurrency: usize,
    probe: Arc<Probe>,
    starts: mpsc::UnboundedReceiver<f64>,
) -> serde_json::Value {
    let (pool, listener) =
        SqliteStorage::<()>::connect_with_callback(&format!("sqlite://{file}?mode=rwc")).expect("SQLite");
    SqliteStorage::<()>::setup(&pool)
        .await
        .expect("apalis's migrations");
    let config = apalis_sqlite::Config::default()
        .queue("bench")
        .batch_size(concurrency);
    let mut storage = SqliteStorage::<u64>::new(&pool)
        .with_config(config)
        .poll_with_stream(listener);
    let (seconds, latencies) = burn_down!(storage, jobs, concurrency, probe, starts, {});
    report(jobs, seconds, latencies, f64::NAN)
}

/// Rows inserted, updated and deleted in the database so far, once every connection has
/// sent its counters (an idle backend sends them within 10 s).
async fn rows_written(pool: &sqlx::PgPool) -> i64 {
    let _ = sqlx::query("SELECT pg_stat_force_next_flush()")
        .execute(pool)
        .await;
    tokio::time::sleep(Duration::from_secs(11)).await;
    sqlx::query_scalar::<_, i64>(
        "SELECT (tup_inserted + tup_updated + tup_deleted)::bigint FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(pool)
    .await
    .expect("counters")
}

fn report(jobs: usize, seconds: f64, latencies: Vec<f64>, rows_per_job: f64) -> serde_json::Value {
    json!({
        "jobs_per_s": jobs as f64 / seconds,
        "p50_ms": latencies[latencies.len() / 2],
        "p99_ms": latencies[latencies.len() * 99 / 100],
        "rows_per_job": if rows_per_job.is_nan() { serde_json::Value::Null } else { json!(rows_per_job) },
    })
}
