//! Memory of an instance as its runs pile up: `CLIENTS` callers run a no-op task, each run
//! recorded in SQLite, until `TASKYARD_BENCH_MEMORY_RUNS` runs (2,000,000 by default) have
//! ended; the live heap (the counting allocator: every byte the app allocated and has not
//! freed) is read once a tenth, half and all of the runs have ended, each time after the
//! records are written. Flat means the reading at the end within 10 % of the one at half
//! way (after 1,000,000 runs): nothing the runtime, the recorder or the store keeps grows
//! with the number of runs. The first tenth shows the warm-up (caches and buffers filling
//! to their bounds). SQLite's own page cache is allocated by SQLite, outside this count,
//! and bounded by its settings.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use taskyard::{App, Concurrency, StoreConfig, Task, TaskContext, TaskError};

use crate::report::Row;
use crate::{COUNTING, LIVE};

const CLIENTS: u64 = 256;

pub fn compare() -> Vec<Row> {
    let runs = crate::setting("TASKYARD_BENCH_MEMORY_RUNS", 2_000_000) as u64;
    let dir = std::env::temp_dir().join(format!("taskyard-bench-memory-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    let runtime = crate::two_workers();
    let readings = runtime.block_on(live_bytes_after(&dir, [runs / 10, runs / 2, runs]));
    let _ = std::fs::remove_dir_all(&dir);
    let mib = |bytes: i64| bytes as f64 / (1024.0 * 1024.0);
    eprintln!(
        "memory: live heap {:.1} MiB after {} runs, {:.1} MiB after {}, {:.1} MiB after {runs}",
        mib(readings[0]),
        runs / 10,
        mib(readings[1]),
        runs / 2,
        mib(readings[2])
    );
    let (early, late) = (readings[1], readings[2]);
    let ratio = late as f64 / early as f64;
    vec![Row {
        comparison: format!(
            "an instance's live heap after {runs} recorded runs / after {}",
            runs / 2
        ),
        metric: "live heap bytes (later / earlier, same run)".into(),
        taskyard: mib(late),
        peer: mib(early),
        peer_name: format!("after {} runs", runs / 2),
        ratio,
        target: "≤ 1.1× (flat)".into(),
        met: ratio <= 1.1,
        unit: "MiB".into(),
    }]
}

/// Live heap bytes once each of `marks` runs have ended.
async fn live_bytes_after(dir: &std::path::Path, marks: [u64; 3]) -> Vec<i64> {
    let base = LIVE.load(Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    let app = App::new()
        .task(
            "noop",
            // Every call a run of its own (concurrent callers would otherwise join).
            Task::new(|_cx: TaskContext| async { Ok::<_, TaskError>(()) })
                .concurrency(Concurrency::Parallel(CLIENTS as usize)),
        )
        .store(StoreConfig::Sqlite(dir.join("taskyard.db")))
        .schedule_log(None)
        .start()
        .await
        .expect("the app starts with SQLite");
    let issued = Arc::new(AtomicU64::new(0));
    let mut readings = Vec::new();
    for upto in marks {
        let callers: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let (tasks, issued) = (app.runtime().clone(), issued.clone());
                tokio::spawn(async move {
                    while issued.fetch_add(1, Ordering::Relaxed) < upto {
                        tasks
                            .run_task("noop", serde_json::Value::Null)
                            .await
                            .expect("a recorded run");
                    }
                })
            })
            .collect();
        for caller in callers {
            caller.await.expect("a caller");
        }
        // Each caller's last fetch went past `upto`: start the next part from there.
        issued.store(upto, Ordering::SeqCst);
        app.runtime().flush_records().await.expect("records written");
        readings.push((LIVE.load(Ordering::SeqCst) - base) as i64);
    }
    app.shutdown().await;
    COUNTING.store(false, Ordering::SeqCst);
    readings
}
