//! Recorded runs per second: no-op runs whose records are durable in SQLite or PostgreSQL
//! before their result is returned. There is no peer that records runs (Nitro keeps no
//! history), so each store gets two rows: against its target (≥ 20,000 runs/s into SQLite,
//! ≥ 10,000 into PostgreSQL), and against its floor measured in the same run — the same
//! rows written straight through `Store::put_runs` (one multi-row `INSERT` of 512 rows per
//! transaction, through sqlx), from 1 and from 4 writers, the better of the two; goal ≥ 0.7
//! of the floor.
//!
//! `CLIENTS` callers on a 2-worker runtime each await one `run_task` after another for
//! `SECONDS`, `ROUNDS` times, after a warm-up; the median round counts. After the rounds
//! the store is read back: every run a caller saw succeed must be there.
//! `TASKYARD_BENCH_RECORDED_CLIENTS` sets the callers' number, and
//! `TASKYARD_BENCH_STORES` the stores measured (both by default).

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use taskyard::store::{RunFilter, Store};
use taskyard::{App, Concurrency, RunId, RunRecord, StoreConfig, Task, TaskContext, TaskError};

use crate::report::Row;

const CLIENTS: usize = 256;
const SECONDS: f64 = 3.0;
const ROUNDS: usize = 3;
/// Rows per `put_runs` call of the floor: the recorder's largest batch.
const FLOOR_BATCH: usize = 512;

pub fn compare() -> Vec<Row> {
    let dir = std::env::temp_dir().join(format!("taskyard-bench-recorded-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    let clients = crate::setting("TASKYARD_BENCH_RECORDED_CLIENTS", CLIENTS);
    let mut measured = Vec::new();
    if crate::measures_store("sqlite") {
        let sqlite = runs_per_second(StoreConfig::Sqlite(dir.join("taskyard.db")), clients);
        measured.push(("SQLite", sqlite, 20_000.0));
    }
    let _ = std::fs::remove_dir_all(&dir);
    if crate::measures_store("postgres") {
        let schema = PostgresSchema::create();
        let postgres = runs_per_second(StoreConfig::Postgres(schema.url.clone()), clients);
        drop(schema);
        measured.push(("PostgreSQL", postgres, 10_000.0));
    }
    for (store, rates, _) in &measured {
        eprintln!(
            "recorded: {store} {:.0} runs/s (floor {:.0}) from {clients} callers",
            rates.recorded, rates.floor
        );
    }
    let mut rows = Vec::new();
    for (store, rates, target) in measured {
        rows.push(Row {
            comparison: format!("recorded runs into {store}"),
            metric: "runs/s (taskyard / target)".into(),
            taskyard: rates.recorded,
            peer: target,
            peer_name: "target".into(),
            ratio: rates.recorded / target,
            target: format!("≥ {target:.0} runs/s"),
            met: rates.recorded >= target,
            unit: "runs/s".into(),
        });
        let ratio = rates.recorded / rates.floor;
        rows.push(Row {
            comparison: format!("recorded runs into {store} / its batched-insert floor"),
            metric: "runs/s (taskyard / floor, same run)".into(),
            taskyard: rates.recorded,
            peer: rates.floor,
            peer_name: "floor: put_runs of 512".into(),
            ratio,
            target: "≥ 0.7 of the floor".into(),
            met: ratio >= 0.7,
            unit: "runs/s".into(),
        });
    }
    rows
}

/// Recorded runs per second, and the store's floor for the same rows.
struct Rates {
    recorded: f64,
    floor: f64,
}

/// The median of `ROUNDS` rounds, each run's record checked in the store afterwards.
fn runs_per_second(store: StoreConfig, clients: usize) -> Rates {
    let runtime = crate::two_workers();
    runtime.block_on(async {
        let app = App::new()
            .task(
                "noop",
                // Parallel: by default concurrent callers of one task join the run in
                // flight (Nitro's rule), and here every call must be a run of its own.
                Task::new(|_cx: TaskContext| async { Ok::<_, TaskError>(()) })
                    .concurrency(Concurrency::Parallel(clients)),
            )
            .store(store)
            .schedule_log(None)
            .start()
            .await
            .expect("the app starts with its store");
        let succeeded = Arc::new(AtomicU64::new(0));
        round(&app, &succeeded, clients, 1.0).await;
        let mut rates = Vec::new();
        for _ in 0..ROUNDS {
            rates.push(round(&app, &succeeded, clients, SECONDS).await);
        }
        let store = app.runtime().store().expect("a store").clone();
        let recorded = store
            .list_runs(&RunFilter::default().task("noop").limit(100_000_000))
            .await
            .expect("runs read back")
            .len() as u64;
        let succeeded = succeeded.load(Ordering::SeqCst);
        assert_eq!(recorded, succeeded, "every run that succeeded is recorded, once");
        let sample = store
            .list_runs(&RunFilter::default().task("noop").limit(1))
            .await
            .expect("a run read back")
            .pop()
            .expect("a recorded run");
        app.shutdown().await;
        rates.sort_by(f64::total_cmp);
        let floor = floor(&store, &sample, 1)
            .await
            .max(floor(&store, &sample, 4).await);
        Rates {
            recorded: rates[rates.len() / 2],
            floor,
        }
    })
}

/// Rows per second that `writers` writers, each writing `FLOOR_BATCH` copies of `sample`
/// (new ids) per `put_runs` back to back, get into the store: the median of `ROUNDS`
/// rounds of `SECONDS`.
async fn floor(store: &Arc<dyn Store>, sample: &RunRecord, writers: usize) -> f64 {
    let mut rates = Vec::new();
    for _ in 0..ROUNDS {
        let written = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let deadline = started + Duration::from_secs_f64(SECONDS);
        let tasks: Vec<_> = (0..writers)
            .map(|_| {
                let (store, sample, written) = (store.clone(), sample.clone(), written.clone());
                tokio::spawn(async move {
                    while Instant::now() < deadline {
                        let batch: Vec<RunRecord> = (0..FLOOR_BATCH)
                            .map(|_| RunRecord {
                                id: RunId::new(),
                                ..sample.clone()
                            })
                            .collect();
                        store.put_runs(&batch).await.expect("rows written");
                        written.fetch_add(FLOOR_BATCH as u64, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("a writer");
        }
        rates.push(written.load(Ordering::SeqCst) as f64 / started.elapsed().as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

/// Runs per second of `clients` callers for `seconds`.
async fn round(app: &taskyard::RunningApp, succeeded: &Arc<AtomicU64>, clients: usize, seconds: f64) -> f64 {
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let before = succeeded.load(Ordering::SeqCst);
    let started = Instant::now();
    let callers: Vec<_> = (0..clients)
        .map(|_| {
            let tasks = app.runtime().clone();
            let succeeded = succeeded.clone();
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    tasks
                        .run_task("noop", serde_json::Value::Null)
                        .await
                        .expect("a recorded run");
                    succeeded.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for caller in callers {
        caller.await.expect("a caller");
    }
    (succeeded.load(Ordering::SeqCst) - before) as f64 / started.elapsed().as_secs_f64()
}

/// A schema of its own in the benchmark database, dropped afterwards. The database comes
/// from `TASKYARD_BENCH_DATABASE_URL`, else `TASKYARD_TEST_DATABASE_URL`, else the local
/// server `scripts/setup-postgres.sh` starts.
pub(crate) struct PostgresSchema {
    /// The database's URL.
    pub base: String,
    name: String,
    /// The database's URL with the schema as its search path.
    pub url: String,
}

impl PostgresSchema {
    pub(crate) fn create() -> PostgresSchema {
        let base = std::env::var("TASKYARD_BENCH_DATABASE_URL")
            .or_else(|_| std::env::var("TASKYARD_TEST_DATABASE_URL"))
            .unwrap_or_else(|_| {
                let user = std::env::var("USER").unwrap_or_else(|_| "postgres".into());
                format!("postgres://{user}@127.0.0.1:5432/test")
            });
        let name = format!("taskyard_bench_{}", std::process::id());
        psql(&base, &format!("CREATE SCHEMA {name}"));
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}options=-c%20search_path%3D{name}");
        PostgresSchema { base, name, url }
    }
}

impl Drop for PostgresSchema {
    fn drop(&mut self) {
        psql(
            &self.base,
            &format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name),
        );
    }
}

pub(crate) fn psql(url: &str, sql: &str) {
    let status = Command::new("psql")
        .env("PGOPTIONS", "--client-min-messages=warning")
        .args([url, "-qc", sql])
        .status()
        .expect("psql runs (scripts/setup-postgres.sh installs PostgreSQL; bench/run calls it)");
    assert!(
        status.success(),
        "psql {url} -c {sql:?} failed: is PostgreSQL running? (scripts/setup-postgres.sh)"
    );
}
