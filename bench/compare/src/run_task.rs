//! In-process runs of a no-op task: taskyard's `run_task` against Nitro's `runTask`, each
//! awaited one after the other, as a handler calling it would.

use std::path::Path;
use std::time::Instant;

use taskyard::{App, StoreConfig, Task, TaskContext, TaskError};

use crate::peers;
use crate::report::Row;

const RUNS: u64 = 200_000;
const ROUNDS: usize = 9;

pub fn compare(root: &Path) -> Vec<Row> {
    let (taskyard, spawn) = runs_and_spawns_per_second();
    let nitro = nitro_runs_per_second(root);
    eprintln!(
        "run-task: taskyard {taskyard:.0} runs/s (bare spawn + join {spawn:.0}/s), Nitro {nitro:.0} runs/s"
    );
    vec![
        Row {
            comparison: "no-op task, in process".into(),
            metric: "runs/s".into(),
            taskyard,
            peer: nitro,
            peer_name: "Nitro runTask".into(),
            ratio: taskyard / nitro,
            // No goal against Nitro: the goal is against the bare spawn below, which no
            // recorded run can be many times faster than (SPEC's numbers to reach).
            target: "—".into(),
            met: true,
            unit: "runs/s".into(),
        },
        // What a run costs at least while each run is a tokio task of its own.
        Row {
            comparison: "ceiling: a bare tokio::spawn + join vs Nitro runTask".into(),
            metric: "per second".into(),
            taskyard: spawn,
            peer: nitro,
            peer_name: "Nitro runTask".into(),
            ratio: spawn / nitro,
            target: "—".into(),
            met: true,
            unit: "runs/s".into(),
        },
        // Against its floor in the same run: a run that ends at once needs no spawn, so it
        // should cost no more than one.
        Row {
            comparison: "no-op task, in process / a bare tokio::spawn + join".into(),
            metric: "runs/s (taskyard / its floor, same run)".into(),
            taskyard,
            peer: spawn,
            peer_name: "floor: spawn + join".into(),
            ratio: taskyard / spawn,
            target: "≥ 1.0 of the floor".into(),
            met: taskyard / spawn >= 1.0,
            unit: "runs/s".into(),
        },
    ]
}

/// (taskyard, floor): the best of `ROUNDS` rounds of `RUNS` sequential runs of a no-op
/// task without history (Nitro keeps none), and of as many spawns of an empty future, each
/// joined, on one thread. The rounds alternate, so a change in the machine's load touches
/// both sides alike.
fn runs_and_spawns_per_second() -> (f64, f64) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let app = App::new()
            .task(
                "noop",
                Task::new(|_cx: TaskContext| async { Ok::<_, TaskError>(()) }),
            )
            .store(StoreConfig::Disabled)
            .start()
            .await
            .expect("the app starts");
        let tasks = app.runtime().clone();
        let (mut runs, mut spawns) = (0.0_f64, 0.0_f64);
        for _ in 0..ROUNDS {
            let started = Instant::now();
            for _ in 0..RUNS {
                tasks
                    .run_task("noop", serde_json::Value::Null)
                    .await
                    .expect("run");
            }
            runs = runs.max(RUNS as f64 / started.elapsed().as_secs_f64());
            let started = Instant::now();
            for _ in 0..RUNS {
                tokio::spawn(async {}).await.expect("join");
            }
            spawns = spawns.max(RUNS as f64 / started.elapsed().as_secs_f64());
        }
        app.shutdown().await;
        (runs, spawns)
    })
}

/// The best of `ROUNDS` rounds measured inside the Nitro server (`GET /bench/run-task`).
fn nitro_runs_per_second(root: &Path) -> f64 {
    let nitro = peers::nitro(root);
    let url = format!("{}/bench/run-task?n={RUNS}", nitro.base);
    let mut best = 0.0_f64;
    for _ in 0..ROUNDS {
        let mut response = ureq::get(&url).call().expect("Nitro answers");
        let body: serde_json::Value = response.body_mut().read_json().expect("JSON");
        best = best.max(body["runs_per_s"].as_f64().expect("runs_per_s"));
    }
    best
}
