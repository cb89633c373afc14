//! Durable runs beside graphile-worker (npm), its Rust port and apalis (both crates.io) on
//! the same local PostgreSQL: a burn-down of `JOBS` no-op jobs queued beforehand in bulk
//! (as graphile-worker's own benchmark does), with the same worker concurrency, then the
//! enqueue→start latency of single jobs on an idle worker, and the rows written per job
//! (`pg_stat_database`). The same on SQLite beside apalis's SQLite backend. taskyard runs
//! twice: keeping each run's record in its history (the default, which no peer does), and
//! with its succeeded runs not kept (`Task::keep_succeeded(false)`), the peers' work.
//! `TASKYARD_BENCH_QUEUE_JOBS` sets the size; `TASKYARD_BENCH_QUEUE_TASKYARD_ONLY=1` measures
//! taskyard and the floors alone (to profile them), and with it
//! `TASKYARD_BENCH_QUEUE_STORE=sqlite` (or `postgres`) one store only.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde_json::{Value, json};
use taskyard::store::{Job, Store};
use taskyard::{App, Concurrency, RunRecord, StoreConfig, Task, TaskContext, TaskError, Trigger};
use tokio::sync::mpsc;

use crate::recorded::PostgresSchema;
use crate::report::Row;
use crate::{peers, queue_floor};

/// Jobs burned down by each system.
const JOBS: usize = 100_000;

/// Jobs each system runs at once (taskyard: one instance's room).
const CONCURRENCY: usize = 64;

/// How taskyard's burn-down task is declared.
#[derive(Debug, Clone, Copy)]
struct Burn {
    concurrency: Concurrency,
    /// Whether its succeeded runs are kept in the history (`Task::keep_succeeded`).
    kept: bool,
}

/// The default: each run's record kept in the history, which none of the peers keeps.
const KEPT: Burn = Burn {
    concurrency: Concurrency::Unlimited,
    kept: true,
};

/// Succeeded runs not kept: a job is an insert, a claim and a delete, as in
/// graphile-worker.
const NOT_KEPT: Burn = Burn {
    concurrency: Concurrency::Unlimited,
    kept: false,
};

/// The burn-down's task with a limit held across the cluster, which the peers do not have:
/// the claim counts the task's running runs.
const LIMITED: Burn = Burn {
    concurrency: Concurrency::Parallel(CONCURRENCY),
    kept: true,
};

/// Jobs apalis burns down on SQLite at most.
const APALIS_SQLITE_JOBS: usize = 3_000;

/// Single jobs timed from enqueue to start on an idle worker.
const LATENCY_JOBS: usize = 50;

/// What one system measured.
#[derive(Debug, Clone, Copy)]
struct Measured {
    jobs_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    rows_per_job: f64,
    /// Write-ahead log records per job during the burn-down (PostgreSQL; the cluster's
    /// counter, so it also takes in anything else the server writes meanwhile).
    wal_per_job: f64,
    /// Write-ahead log bytes per job, likewise.
    wal_bytes_per_job: f64,
}

pub fn compare(root: &Path) -> Vec<Row> {
    let jobs = crate::setting("TASKYARD_BENCH_QUEUE_JOBS", JOBS);
    if std::env::var_os("TASKYARD_BENCH_QUEUE_TASKYARD_ONLY").is_some() {
        // For profiling taskyard's side alone: its numbers (PostgreSQL, then SQLite), no
        // peers, no rows.
        let only = std::env::var("TASKYARD_BENCH_QUEUE_STORE").unwrap_or_default();
        if only != "sqlite" {
            taskyard_postgres(jobs);
        }
        if only != "postgres" {
            let dir = queue_dir();
            eprintln!("queue: taskyard SQLite {:?}", measure_sqlite(&dir, jobs, KEPT));
            eprintln!(
                "queue: taskyard SQLite, succeeded runs not kept {:?}",
                measure_sqlite(&dir, jobs, NOT_KEPT)
            );
            let floor = queue_floor::measure_sqlite(&dir.join("floor.db"), jobs, LATENCY_JOBS);
            eprintln!("queue: the floor on SQLite {floor:?}");
            let _ = std::fs::remove_dir_all(&dir);
        }
        return Vec::new();
    }
    // Each on a fresh schema, its rows counted.
    let [ours, ours_not_kept] = [KEPT, NOT_KEPT].map(|burn| {
        let schema = PostgresSchema::create();
        measure(
            StoreConfig::Postgres(schema.url.clone()),
            Some(&schema.base),
            jobs,
            burn,
        )
    });
    let floor = {
        let schema = PostgresSchema::create();
        queue_floor::measure_postgres(&schema.url, jobs, LATENCY_JOBS)
    };
    let graphile = graphile_worker(root, jobs);
    let graphile_rs = graphile_worker_rs(root, jobs);
    let apalis_pg = {
        let schema = PostgresSchema::create();
        // apalis keeps its jobs in a schema of its own, `apalis`.
        crate::recorded::psql(&schema.base, "DROP SCHEMA IF EXISTS apalis CASCADE");
        let measured = apalis(root, "postgres", &schema.url, jobs);
        crate::recorded::psql(&schema.base, "DROP SCHEMA IF EXISTS apalis CASCADE");
        measured
    };
    let dir = queue_dir();
    let sqlite = measure_sqlite(&dir, jobs, KEPT);
    let sqlite_not_kept = measure_sqlite(&dir, jobs, NOT_KEPT);
    let sqlite_floor = queue_floor::measure_sqlite(&dir.join("floor.db"), jobs, LATENCY_JOBS);
    // apalis on SQLite burns ~100 jobs/s: its rate is measured on fewer jobs, so that the
    // comparison ends in minutes.
    let apalis_sqlite = apalis(
        root,
        "sqlite",
        &dir.join("apalis.db").display().to_string(),
        jobs.min(APALIS_SQLITE_JOBS),
    );
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("queue: taskyard PostgreSQL {ours:?}");
    eprintln!("queue: taskyard PostgreSQL, succeeded runs not kept {ours_not_kept:?}");
    eprintln!("queue: the floor on PostgreSQL {floor:?}");
    eprintln!("queue: the floor on SQLite {sqlite_floor:?}");
    eprintln!("queue: graphile-worker {graphile:?}");
    eprintln!("queue: graphile-worker's Rust port {graphile_rs:?}");
    eprintln!("queue: apalis PostgreSQL {apalis_pg:?}");
    eprintln!("queue: taskyard SQLite {sqlite:?}");
    eprintln!("queue: taskyard SQLite, succeeded runs not kept {sqlite_not_kept:?}");
    eprintln!("queue: apalis SQLite {apalis_sqlite:?}");
    let best = graphile
        .jobs_per_s
        .max(graphile_rs.jobs_per_s)
        .max(apalis_pg.jobs_per_s);
    let comparison = format!("durable queue, {jobs} no-op jobs, concurrency {CONCURRENCY}");
    eprintln!(
        "queue: of the PostgreSQL floor's jobs/s, taskyard reaches {:.2} ({:.2} with succeeded runs not kept), graphile-worker {:.2} and its Rust port {:.2}",
        ours.jobs_per_s / floor.jobs_per_s,
        ours_not_kept.jobs_per_s / floor.jobs_per_s,
        graphile.jobs_per_s / floor.jobs_per_s,
        graphile_rs.jobs_per_s / floor.jobs_per_s,
    );
    let mut rows = floor_rows("PostgreSQL", jobs, &ours, &floor);
    rows.extend(floor_rows("SQLite", jobs, &sqlite, &sqlite_floor));
    for (backend, (taskyard, burn), peer, name) in [
        ("PostgreSQL", (ours, KEPT), graphile, "graphile-worker"),
        (
            "PostgreSQL",
            (ours, KEPT),
            graphile_rs,
            "graphile-worker's Rust port",
        ),
        ("PostgreSQL", (ours, KEPT), apalis_pg, "apalis"),
        (
            "PostgreSQL",
            (ours_not_kept, NOT_KEPT),
            graphile,
            "graphile-worker",
        ),
        (
            "PostgreSQL",
            (ours_not_kept, NOT_KEPT),
            graphile_rs,
            "graphile-worker's Rust port",
        ),
        ("PostgreSQL", (ours_not_kept, NOT_KEPT), apalis_pg, "apalis"),
        ("SQLite", (sqlite, KEPT), apalis_sqlite, "apalis"),
        ("SQLite", (sqlite_not_kept, NOT_KEPT), apalis_sqlite, "apalis"),
    ] {
        // The same runs with no history, as the peers keep none: the rates and the writes
        // a job compare the same work; the idle latencies are the kept rows'.
        let us = if burn.kept {
            "taskyard"
        } else {
            "taskyard, succeeded runs not kept"
        };
        let row = |metric: String,
                   ours: f64,
                   theirs: f64,
                   higher_better: bool,
                   target: &str,
                   met: bool,
                   unit: &str| Row {
            comparison: comparison.clone(),
            metric,
            taskyard: ours,
            peer: theirs,
            peer_name: name.into(),
            ratio: if higher_better {
                ours / theirs
            } else {
                theirs / ours
            },
            target: target.into(),
            met,
            unit: unit.into(),
        };
        let (target, met) = if backend == "PostgreSQL" {
            ("≥ 2× the best peer", taskyard.jobs_per_s >= 2.0 * best)
        } else {
            ("—", taskyard.jobs_per_s >= peer.jobs_per_s)
        };
        rows.push(row(
            if backend == "SQLite" {
                format!("burn-down on {backend}, jobs/s ({us} / {name}, {name} on at most {APALIS_SQLITE_JOBS} jobs)")
            } else {
                format!("burn-down on {backend}, jobs/s ({us} / {name})")
            },
            taskyard.jobs_per_s,
            peer.jobs_per_s,
            true,
            target,
            met,
            "jobs/s",
        ));
        if burn.kept {
            rows.push(row(
                format!("enqueue→start p50 when idle on {backend}, ms ({name} / taskyard)"),
                taskyard.p50_ms,
                peer.p50_ms,
                false,
                "≤ 5 ms",
                taskyard.p50_ms <= 5.0,
                "ms",
            ));
            rows.push(row(
                format!("enqueue→start p99 when idle on {backend}, ms ({name} / taskyard)"),
                taskyard.p99_ms,
                peer.p99_ms,
                false,
                "—",
                taskyard.p99_ms <= peer.p99_ms,
                "ms",
            ));
        }
        if backend == "PostgreSQL" {
            rows.push(row(
                format!("rows written per job during the burn-down ({name} / {us})"),
                taskyard.rows_per_job,
                peer.rows_per_job,
                false,
                "≤ the peer's, to 0.01 row",
                // To a hundredth of a row: the database's counters also take in each side's
                // background writes (our instance's heartbeat, once a second), which are
                // not per job.
                taskyard.rows_per_job <= peer.rows_per_job + 0.01,
                "rows",
            ));
        }
        if burn.kept && backend == "PostgreSQL" && !peer.wal_per_job.is_nan() {
            // What a job costs the database beyond its rows: each row's index entries and
            // locks, as the server logs them.
            rows.push(row(
                format!("write-ahead log records per job during the burn-down ({name} / taskyard)"),
                taskyard.wal_per_job,
                peer.wal_per_job,
                false,
                "—",
                taskyard.wal_per_job <= peer.wal_per_job,
                "records",
            ));
            rows.push(row(
                format!("write-ahead log bytes per job during the burn-down ({name} / taskyard)"),
                taskyard.wal_bytes_per_job,
                peer.wal_bytes_per_job,
                false,
                "—",
                taskyard.wal_bytes_per_job <= peer.wal_bytes_per_job,
                "bytes",
            ));
        }
    }
    rows
}

/// taskyard on `backend` against the queue's floor in the same run: its burn-down rate,
/// goal ≥ 0.7 of the floor as for recorded runs, and its idle enqueue→start p50, goal
/// ≤ 5 ms (the floor's p50 beside it).
fn floor_rows(backend: &str, jobs: usize, ours: &Measured, floor: &queue_floor::Floor) -> Vec<Row> {
    eprintln!(
        "queue: the floor on {backend}: {:.0} jobs/s, idle enqueue→start p50 {:.2} ms, p99 {:.2} ms",
        floor.jobs_per_s, floor.p50_ms, floor.p99_ms,
    );
    let comparison =
        format!("durable queue on {backend}, {jobs} no-op jobs / its floor (raw sqlx claim + delete)");
    let rate = ours.jobs_per_s / floor.jobs_per_s;
    vec![
        Row {
            comparison: comparison.clone(),
            metric: "burn-down jobs/s (taskyard / floor, same run)".into(),
            taskyard: ours.jobs_per_s,
            peer: floor.jobs_per_s,
            peer_name: "floor".into(),
            ratio: rate,
            target: "≥ 0.7 of the floor".into(),
            met: rate >= 0.7,
            unit: "jobs/s".into(),
        },
        Row {
            comparison,
            metric: "enqueue→start p50 when idle, ms (floor / taskyard)".into(),
            taskyard: ours.p50_ms,
            peer: floor.p50_ms,
            peer_name: "floor".into(),
            ratio: floor.p50_ms / ours.p50_ms,
            target: "≤ 5 ms".into(),
            met: ours.p50_ms <= 5.0,
            unit: "ms".into(),
        },
    ]
}

/// apalis's burn-down and latency (`bench/peers/apalis`, built by `bench/run`) on
/// `backend` at `url` (PostgreSQL) or in the file `url` (SQLite).
fn apalis(root: &Path, backend: &str, url: &str, jobs: usize) -> Measured {
    let binary = root.join("target/bench-peers/apalis/release/apalis-queue");
    let output = Command::new(&binary)
        .args([backend, url, &jobs.to_string(), &CONCURRENCY.to_string()])
        .output()
        .unwrap_or_else(|error| panic!("{} runs (bench/run builds it): {error}", binary.display()));
    measured(&output, "apalis")
}

/// taskyard alone on PostgreSQL (its runs kept, then not kept), its floor, and taskyard
/// again under a cluster-wide limit, each on a fresh schema, printed.
fn taskyard_postgres(jobs: usize) {
    let schema = PostgresSchema::create();
    let ours = measure(StoreConfig::Postgres(schema.url.clone()), None, jobs, KEPT);
    eprintln!("queue: taskyard PostgreSQL {ours:?}");
    drop(schema);
    let schema = PostgresSchema::create();
    let not_kept = measure(StoreConfig::Postgres(schema.url.clone()), None, jobs, NOT_KEPT);
    eprintln!("queue: taskyard PostgreSQL, succeeded runs not kept {not_kept:?}");
    drop(schema);
    let schema = PostgresSchema::create();
    let floor = queue_floor::measure_postgres(&schema.url, jobs, LATENCY_JOBS);
    eprintln!("queue: the floor on PostgreSQL {floor:?}");
    drop(schema);
    let schema = PostgresSchema::create();
    let limited = measure(StoreConfig::Postgres(schema.url.clone()), None, jobs, LIMITED);
    eprintln!("queue: taskyard PostgreSQL, a cluster-wide limit {limited:?}");
}

/// A fresh folder for the SQLite files of one comparison.
fn queue_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("taskyard-bench-queue-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    dir
}

/// taskyard's burn-down and latency on an SQLite file of its own in `dir`.
fn measure_sqlite(dir: &Path, jobs: usize, burn: Burn) -> Measured {
    let file = if burn.kept {
        "taskyard.db"
    } else {
        "taskyard-not-kept.db"
    };
    measure(StoreConfig::Sqlite(dir.join(file)), None, jobs, burn)
}

/// taskyard's burn-down and latency on `store`; `stats` is the PostgreSQL database whose
/// row counters are read.
fn measure(store: StoreConfig, stats: Option<&str>, jobs: usize, burn: Burn) -> Measured {
    let runtime = crate::two_workers();
    runtime.block_on(async {
        let queue = store.open().await.expect("store opens").expect("a store");
        let filling = Instant::now();
        fill(&queue, jobs).await;
        // The burn-down starts now: a profiler attaches on this line.
        let took = filling.elapsed().as_secs_f64();
        eprintln!(
            "queue: {jobs} jobs queued in {took:.1} s ({:.0} enqueues/s from 16 callers)",
            jobs as f64 / took
        );
        let done = Arc::new(AtomicUsize::new(0));
        let (started, mut starts) = mpsc::unbounded_channel::<Instant>();
        let counter = done.clone();
        let noop = Task::new(move |_cx: TaskContext| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::Relaxed);
                Ok::<_, TaskError>(())
            }
        })
        .concurrency(burn.concurrency)
        .keep_succeeded(burn.kept)
        .durable();
        let latency = Task::new(move |_cx: TaskContext| {
            let started = started.clone();
            async move {
                let _ = started.send(Instant::now());
                Ok::<_, TaskError>(())
            }
        })
        .concurrency(Concurrency::Parallel(CONCURRENCY))
        .durable();
        let before = stats.map(written);
        let began = Instant::now();
        let app = App::new()
            .store(store)
            .schedule_log(None)
            .retention(None)
            .task("noop", noop)
            .task("latency", latency)
            .start()
            .await
            .expect("the app starts");
        while done.load(Ordering::Relaxed) < jobs {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        // Done when every end is in the store, not when the last body ran.
        app.runtime().flush_records().await.expect("records written");
        let seconds = began.elapsed().as_secs_f64();
        let after = stats.map(written);
        let mut latencies = Vec::with_capacity(LATENCY_JOBS);
        for _ in 0..LATENCY_JOBS {
            let asked = Instant::now();
            app.runtime()
                .enqueue("latency", json!({}))
                .await
                .expect("enqueued");
            let start = starts.recv().await.expect("started");
            latencies.push(start.duration_since(asked).as_secs_f64() * 1000.0);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        app.shutdown().await;
        latencies.sort_by(f64::total_cmp);
        Measured {
            jobs_per_s: jobs as f64 / seconds,
            p50_ms: latencies[latencies.len() / 2],
            p99_ms: latencies[latencies.len() * 99 / 100],
            rows_per_job: per_job(before, after, jobs, |written| written.rows),
            wal_per_job: per_job(before, after, jobs, |written| written.wal_records),
            wal_bytes_per_job: per_job(before, after, jobs, |written| written.wal_bytes),
        }
    })
}

/// Queues `jobs` runs of `noop` straight into the store, 16 at a time.
async fn fill(store: &Arc<dyn Store>, jobs: usize) {
    let next = Arc::new(AtomicUsize::new(0));
    let mut writers = Vec::new();
    for _ in 0..16 {
        let (store, next) = (store.clone(), next.clone());
        writers.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < jobs {
                let now = Timestamp::now();
                let run = RunRecord::queued(
                    "noop".into(),
                    Value::Object(Default::default()),
                    Trigger::Manual,
                    "bench".into(),
                    now,
                );
                let job = Job {
                    run_at: now,
                    priority: 0,
                    key: None,
                    max_attempts: 1,
                };
                store.enqueue(&run, &job).await.expect("queued");
            }
        }));
    }
    for writer in writers {
        writer.await.expect("writer");
    }
}

/// What the database had written so far: rows inserted, updated and deleted in it, and
/// the server's write-ahead log records and bytes.
#[derive(Debug, Clone, Copy)]
struct Written {
    rows: i64,
    wal_records: i64,
    wal_bytes: i64,
}

/// The growth of one of `Written`'s counters per job, or NaN when it was not read.
fn per_job(before: Option<Written>, after: Option<Written>, jobs: usize, counter: fn(Written) -> i64) -> f64 {
    match (before, after) {
        (Some(before), Some(after)) => (counter(after) - counter(before)) as f64 / jobs as f64,
        _ => f64::NAN,
    }
}

/// `Written` for the database at `url`, once every connection has sent its counters (an
/// idle backend sends them within 10 s).
fn written(url: &str) -> Written {
    let output = Command::new("psql")
        .args([
            url,
            "-Atc",
            "SELECT pg_stat_force_next_flush(); SELECT pg_sleep(11); \
             SELECT tup_inserted + tup_updated + tup_deleted, wal_records, wal_bytes \
             FROM pg_stat_database, pg_stat_wal WHERE datname = current_database()",
        ])
        .output()
        .expect("psql runs");
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .rev()
        .find_map(|line| {
            let mut counters = line.trim().split('|').map(|counter| counter.parse::<i64>().ok());
            Some(Written {
                rows: counters.next()??,
                wal_records: counters.next()??,
                wal_bytes: counters.next()??,
            })
        })
        .unwrap_or_else(|| {
            panic!(
                "no counters from psql: {text} {}",
                String::from_utf8_lossy(&output.stderr)
            )
        })
}

/// graphile-worker's burn-down, in Node, on a schema of its own.
fn graphile_worker(root: &Path, jobs: usize) -> Measured {
    let script = peers::script(root, "queue-graphile.mjs");
    let schema = PostgresSchema::create();
    let worker_schema = format!("graphile_bench_{}", std::process::id());
    let output = Command::new("node")
        .arg(&script)
        .args([
            &schema.base,
            &worker_schema,
            &jobs.to_string(),
            &CONCURRENCY.to_string(),
        ])
        .env("NODE_PATH", root.join("target/bench-peers/node_modules"))
        .output()
        .expect("node runs (bench/peers/setup.sh installs it)");
    crate::recorded::psql(
        &schema.base,
        &format!("DROP SCHEMA IF EXISTS {worker_schema} CASCADE"),
    );
    drop(schema);
    measured(&output, "graphile-worker")
}

/// The burn-down of graphile-worker's Rust port (`graphile_worker` on crates.io,
/// `bench/peers/graphile-rs`, built by `bench/run`), on a schema of its own.
fn graphile_worker_rs(root: &Path, jobs: usize) -> Measured {
    let binary = root.join("target/bench-peers/graphile-rs/release/graphile-rs-queue");
    let schema = PostgresSchema::create();
    let worker_schema = format!("graphile_rs_bench_{}", std::process::id());
    let output = Command::new(&binary)
        .args([
            &schema.base,
            &worker_schema,
            &jobs.to_string(),
            &CONCURRENCY.to_string(),
        ])
        .output()
        .unwrap_or_else(|error| panic!("{} runs (bench/run builds it): {error}", binary.display()));
    crate::recorded::psql(
        &schema.base,
        &format!("DROP SCHEMA IF EXISTS {worker_schema} CASCADE"),
    );
    drop(schema);
    measured(&output, "graphile-worker's Rust port")
}

/// What a peer printed: one JSON line of `jobs_per_s`, `p50_ms`, `p99_ms`, `rows_per_job`,
/// and `wal_per_job`, `wal_bytes_per_job` where it measured them.
fn measured(output: &std::process::Output, peer: &str) -> Measured {
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.lines().last().unwrap_or_default();
    let value: Value = serde_json::from_str(line).unwrap_or_else(|error| {
        panic!(
            "{peer} printed no result ({error}): {text}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let number = |key: &str| value[key].as_f64().unwrap_or(f64::NAN);
    Measured {
        jobs_per_s: number("jobs_per_s"),
        p50_ms: number("p50_ms"),
        p99_ms: number("p99_ms"),
        rows_per_job: number("rows_per_job"),
        wal_per_job: number("wal_per_job"),
        wal_bytes_per_job: number("wal_bytes_per_job"),
    }
}
