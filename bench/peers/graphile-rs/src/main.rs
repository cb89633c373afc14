//! graphile-worker's Rust port on the durable-queue comparison, as `queue-graphile.mjs`
//! runs graphile-worker itself: a burn-down of N no-op jobs added in batches of 1,000
//! beforehand, with a local queue of 500 and batched completions, then the add→start
//! latency of single jobs on the idle worker, and the database writes per job. Prints one
//! JSON line.
//!
//! Usage: graphile-rs-queue DATABASE_URL SCHEMA N CONCURRENCY

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use graphile_worker::{
    IntoTaskHandlerResult, JobSpec, LocalQueueConfig, RawJobSpec, TaskHandler, WorkerContext, WorkerOptions,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::mpsc;

/// Single jobs timed from add to start on the idle worker.
const LATENCY_JOBS: usize = 50;

/// Jobs added per statement while filling the queue.
const FILL_BATCH: usize = 1_000;

/// What the jobs report: burn-down jobs ending, latency jobs starting.
struct Probe {
    epoch: Instant,
    done: AtomicUsize,
    started: mpsc::UnboundedSender<f64>,
}

static PROBE: OnceLock<Probe> = OnceLock::new();

#[derive(Deserialize, Serialize)]
struct Noop {
    n: usize,
}

impl TaskHandler for Noop {
    const IDENTIFIER: &'static str = "noop";

    async fn run(self, _ctx: WorkerContext) -> impl IntoTaskHandlerResult {
        if let Some(probe) = PROBE.get() {
            probe.done.fetch_add(1, Ordering::Relaxed);
        }
        Ok::<(), String>(())
    }
}

#[derive(Deserialize, Serialize)]
struct Latency {
    /// Microseconds since the probe's epoch when the job was added.
    t: u64,
}

impl TaskHandler for Latency {
    const IDENTIFIER: &'static str = "latency";

    async fn run(self, _ctx: WorkerContext) -> impl IntoTaskHandlerResult {
        if let Some(probe) = PROBE.get() {
            let now = probe.epoch.elapsed().as_micros() as u64;
            let _ = probe.started.send(now.saturating_sub(self.t) as f64 / 1000.0);
        }
        Ok::<(), String>(())
    }
}

/// Transactions, rows written and write-ahead log records and bytes so far, once every
/// connection has sent its counters (an idle backend sends them within 10 s).
async fn counters(pool: &sqlx::PgPool) -> (i64, i64, i64, i64) {
    let _ = sqlx::query("SELECT pg_stat_force_next_flush()")
        .execute(pool)
        .await;
    tokio::time::sleep(Duration::from_secs(11)).await;
    sqlx::query_as(
        "SELECT xact_commit::bigint, (tup_inserted + tup_updated + tup_deleted)::bigint, \
         wal_records::bigint, wal_bytes::bigint FROM pg_stat_database, pg_stat_wal \
         WHERE datname = current_database()",
    )
    .fetch_one(pool)
    .await
    .expect("the database's counters")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, schema, jobs, concurrency] = args.as_slice() else {
        panic!("usage: graphile-rs-queue DATABASE_URL SCHEMA JOBS CONCURRENCY");
    };
    let jobs: usize = jobs.parse().expect("JOBS is a number");
    let concurrency: usize = concurrency.parse().expect("CONCURRENCY is a number");
    let (started, mut starts) = mpsc::unbounded_channel();
    let probe = PROBE.get_or_init(|| Probe {
        epoch: Instant::now(),
        done: AtomicUsize::new(0),
        started,
    });
    // The pool one larger than the concurrency, as graphile-worker's performance page runs it.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(concurrency as u32 + 1)
        .connect(url)
        .await
        .expect("PostgreSQL");
    let stats = sqlx::PgPool::connect(url).await.expect("PostgreSQL");
    let worker = WorkerOptions::default()
        .concurrency(concurrency)
        .schema(schema.as_str())
        .define_job::<Noop>()
        .define_job::<Latency>()
        .pg_pool(pool)
        .poll_interval(Duration::from_millis(200))
        .local_queue(LocalQueueConfig::default().with_size(500))
        .complete_job_batch_delay(Duration::ZERO)
        .fail_job_batch_delay(Duration::ZERO)
        .init()
        .await
        .expect("graphile-worker's migrations");
    let utils = worker.create_utils();
    let mut added = 0;
    while added < jobs {
        let batch: Vec<RawJobSpec> = (added..jobs.min(added + FILL_BATCH))
            .map(|n| RawJobSpec {
                identifier: "noop".into(),
                payload: json!({ "n": n }),
                spec: JobSpec::default(),
            })
            .collect();
        added += batch.len();
        utils.add_raw_jobs(&batch).await.expect("jobs added");
    }
    let before = counters(&stats).await;
    let measure = async {
        let began = Instant::now();
        while probe.done.load(Ordering::Relaxed) < jobs {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let seconds = began.elapsed().as_secs_f64();
        let after = counters(&stats).await;
        let mut latencies = Vec::with_capacity(LATENCY_JOBS);
        for _ in 0..LATENCY_JOBS {
            let t = probe.epoch.elapsed().as_micros() as u64;
            utils
                .add_raw_job("latency", json!({ "t": t }), JobSpec::default())
                .await
                .expect("job added");
            latencies.push(starts.recv().await.expect("started"));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        latencies.sort_by(f64::total_cmp);
        let per_job = |a: i64, b: i64| (a - b) as f64 / jobs as f64;
        json!({
            "jobs_per_s": jobs as f64 / seconds,
            "p50_ms": latencies[latencies.len() / 2],
            "p99_ms": latencies[latencies.len() * 99 / 100],
            "commits_per_job": per_job(after.0, before.0),
            "rows_per_job": per_job(after.1, before.1),
            "wal_per_job": per_job(after.2, before.2),
            "wal_bytes_per_job": per_job(after.3, before.3),
        })
    };
    // The worker runs beside the measurement; it ends with the process.
    tokio::select! {
        result = measure => println!("{result}"),
        stopped = worker.run() => panic!("the worker stopped: {stopped:?}"),
    }
    std::process::exit(0);
}
