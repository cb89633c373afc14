//! Runs a no-op task N times without history, for counting the instructions a run costs:
//! on a shared machine wall-clock times move by 20 % between runs, instruction counts do
//! not. Two counts (N and 10·N) under callgrind give the cost of one run:
//!
//! ```sh
//! cargo build --release -p taskyard --example run_count
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/run_count 2000
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/run_count 20000
//! ```
//!
//! `run_count N many` starts runs 256 at a time (`Runtime::start`), then awaits them;
//! `run_count N spawn` counts the floor instead: a bare `tokio::spawn` + join;
//! `run_count N recorded` runs them with history in memory (each run's records through
//! the recorder, its end acknowledged).

use serde_json::Value;
use taskyard::{App, Concurrency, RunRequest, StoreConfig, Task, TaskContext, TaskError};

const BATCH: usize = 256;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let runs: usize = args.next().map_or(Ok(1_000), |n| n.parse())?;
    let mode = args.next().unwrap_or_default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let noop = Task::new(|_cx: TaskContext| async { Ok::<_, TaskError>(()) });
    let batch = Task::new(|_cx: TaskContext| async { Ok::<_, TaskError>(()) })
        .concurrency(Concurrency::Parallel(BATCH));
    let store = if mode == "recorded" {
        StoreConfig::Memory
    } else {
        StoreConfig::Disabled
    };
    let app = App::new()
        .task("noop", noop)
        .task("noop:many", batch)
        .store(store)
        .retention(None);
    let app = rt.block_on(app.start())?;
    let runtime = app.runtime().clone();
    rt.block_on(async {
        if mode == "spawn" {
            for _ in 0..runs {
                tokio::spawn(async {})
                    .await
                    .map_err(|_| taskyard::Error::ShuttingDown)?;
            }
        } else if mode == "many" {
            for _ in 0..runs / BATCH {
                let mut handles = Vec::with_capacity(BATCH);
                for _ in 0..BATCH {
                    handles.push(runtime.start(RunRequest::new("noop:many")).await?);
                }
                for handle in handles {
                    handle.outcome().await?;
                }
            }
        } else {
            for _ in 0..runs {
                runtime.run_task("noop", Value::Null).await?;
            }
        }
        app.shutdown().await;
        Ok::<_, taskyard::Error>(())
    })?;
    Ok(())
}
