//! `run_task` of a no-op task: runtime overhead without history, and recorded runs per
//! second into SQLite. A bare `tokio::spawn` + join of an empty future runs beside them as
//! the floor any spawned run pays.
//!
//! Run: `cargo bench -p taskyard --bench run_task`
//!
//! Everything runs on a current-thread tokio runtime (SQLite itself works on sqlx's own
//! thread).

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::Value;
use taskyard::{App, Concurrency, RunRequest, RunningApp, StoreConfig, Task, TaskContext, TaskError};

const BATCH: usize = 256;

fn app(store: StoreConfig, rt: &tokio::runtime::Runtime) -> RunningApp {
    let noop = Task::new(|_cx: TaskContext| async { Ok::<_, TaskError>(()) });
    let many = Task::new(|_cx: TaskContext| async { Ok::<_, TaskError>(()) })
        .concurrency(Concurrency::Parallel(BATCH));
    let app = App::new()
        .task("noop", noop)
        .task("noop:many", many)
        .store(store)
        .retention(None);
    rt.block_on(app.start()).expect("app starts")
}

fn run_task(c: &mut Criterion) {
    // One thread: spawn and join happen on the thread that waits, so the numbers are the
    // runtime's own work rather than cross-thread wake-up latency (~16 µs here).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let bare = app(StoreConfig::Disabled, &rt);
    let sqlite = app(StoreConfig::Sqlite(dir.path().join("bench.db")), &rt);

    let mut group = c.benchmark_group("run_task");
    group
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(30);

    group.throughput(Throughput::Elements(1));
    group.bench_function("baseline: tokio::spawn + join of an empty future", |b| {
        b.to_async(&rt)
            .iter(|| async { tokio::spawn(async {}).await.expect("join") })
    });
    let runtime = bare.runtime().clone();
    group.bench_function("noop, no history", |b| {
        b.to_async(&rt)
            .iter(|| async { runtime.run_task("noop", Value::Null).await.expect("run") })
    });
    let runtime = sqlite.runtime().clone();
    group.bench_function("noop, SQLite history, one at a time", |b| {
        b.to_async(&rt)
            .iter(|| async { runtime.run_task("noop", Value::Null).await.expect("run") })
    });

    group.throughput(Throughput::Elements(BATCH as u64));
    for (label, app) in [("no history", &bare), ("SQLite history", &sqlite)] {
        let runtime = app.runtime().clone();
        group.bench_function(format!("noop, {label}, {BATCH} at once"), |b| {
            b.to_async(&rt).iter(|| async {
                let mut handles = Vec::with_capacity(BATCH);
                for _ in 0..BATCH {
                    handles.push(runtime.start(RunRequest::new("noop:many")).await.expect("start"));
                }
                for handle in handles {
                    handle.outcome().await.expect("run");
                }
            })
        });
    }
    group.finish();
    rt.block_on(async {
        bare.shutdown().await;
        sqlite.shutdown().await;
    });
}

criterion_group!(benches, run_task);
criterion_main!(benches);
