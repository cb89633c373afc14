//! `taskyard-bench`: taskyard side by side with its peers, each comparison a ratio measured
//! in the same run on this machine. `bench/run` sets up the peers, builds everything and
//! calls `taskyard-bench all`, which writes `bench/results/results.json`,
//! `bench/results/results.md` and the plots (PNG) beside them; one comparison alone
//! (`taskyard-bench http`) writes into `target/bench-results` instead.
//!
//! | comparison | taskyard | peer | target |
//! |---|---|---|---|
//! | `run-task` | `run_task` of a no-op task, in process | Nitro `runTask`, in Node | ≥ 20× runs/s |
//! | `http` | `POST /_nitro/tasks/echo:payload`, the quickstart | the same on a Nitro node-server | ≥ 10× req/s, p99 ≤ 1/5 |
//! | `recorded` | runs recorded in SQLite and in PostgreSQL | the targets; `Store::put_runs` of 512 rows | ≥ 20,000 and ≥ 10,000 runs/s; ≥ 0.7 of the floor |
//! | `memory` | an instance's live heap after 1,000,000 runs recorded in SQLite | the same after 100,000 | flat (≤ 1.1×) |
//! | `queue` | a burn-down of 100,000 durable no-op jobs; enqueue→start when idle | graphile-worker (npm), same PostgreSQL and concurrency | ≥ 2× jobs/s, p50 ≤ 5 ms |
//! | `schedules` | 10,000 cron schedules due each second; 1,000,000 registered | tokio-cron-scheduler, JavaScript croner (lateness) | p99 lateness ≤ 5 ms; ≤ 300 B and ≤ 3 s |
//! | `cron-next` | `CronExpr::next_after` | the `croner` and `cron` crates, JavaScript croner | as fast as the fastest |
//! | `scale` | 100,000 `worker` schedules over 4 instances sharing SQLite, then PostgreSQL, 60 s | every tick once; the ledger | 0 duplicates, 0 missing; one ledger row and ≤ 1 claim statement per tick |
//! | `history` | `GET /_tasks/runs` and the history query over 10,000,000 runs in SQLite, then PostgreSQL | a plain route of the same app | p99 ≤ 20 ms: first page, by task, by status, half way deep |
//! | `dashboard` | `/_tasks/ui` over 1,000,000 runs in SQLite; an open page in Chromium | a plain route of the same app; the goals | ≤ 100 ms first render and event to page; batched, flat memory at 1,000 runs/s |
//!
//! Every load is on loopback and bounded in time; every process started is stopped.

mod cron_next;
mod dashboard;
mod history;
mod http;
mod memory;
mod peers;
mod plots;
mod queue;
mod queue_floor;
mod recorded;
mod report;
mod run_task;
mod scale;
mod scale_instance;
mod schedules;

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};

use report::Row;

/// Live heap bytes while [`COUNTING`] is on: schedules' memory is measured, not estimated.
/// Off, the allocator costs one relaxed load per call.
pub static LIVE: AtomicIsize = AtomicIsize::new(0);
pub static COUNTING: AtomicBool = AtomicBool::new(false);

struct Counting;

// SAFETY: every call is forwarded to the system allocator unchanged; the counters only
// observe sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        }
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn main() {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_else(|| "all".to_owned());
    let root = workspace_root();
    if command == "scale-instance" {
        scale_instance::main();
        return;
    }
    if command == "plot" {
        replot(&root.join("bench").join("results"));
        return;
    }
    let mut charts = Vec::new();
    let rows: Vec<Row> = match command.as_str() {
        "run-task" => run_task::compare(&root),
        "http" => http::compare(&root, &mut charts),
        "cron-next" => cron_next::compare(&root),
        "schedules" => schedules::compare(&root, &mut charts),
        "recorded" => recorded::compare(),
        "memory" => memory::compare(),
        "queue" => queue::compare(&root),
        "dashboard" => dashboard::compare(&root),
        "scale" => scale::compare(),
        "history" => history::compare(),
        "all" => {
            let mut rows = run_task::compare(&root);
            rows.extend(http::compare(&root, &mut charts));
            rows.extend(recorded::compare());
            rows.extend(memory::compare());
            rows.extend(queue::compare(&root));
            rows.extend(cron_next::compare(&root));
            rows.extend(schedules::compare(&root, &mut charts));
            rows.extend(dashboard::compare(&root));
            rows.extend(scale::compare());
            rows.extend(history::compare());
            rows
        }
        other => {
            eprintln!(
                "taskyard-bench: unknown comparison `{other}`; use run-task, http, recorded, memory, queue, cron-next, schedules, dashboard, scale, history, all, or plot (draws bench/results again from its results.json)"
            );
            std::process::exit(2);
        }
    };
    // Only a complete run replaces the published results; one comparison alone draws its
    // plots into target/bench-results.
    let dir = if command == "all" {
        root.join("bench").join("results")
    } else {
        root.join("target").join("bench-results")
    };
    report::write(&dir, &rows, &charts);
    println!("{}", report::markdown(&rows));
    println!("written to {}", dir.display());
}

/// Draws the plots of `dir/results.json` again, without measuring anything.
fn replot(dir: &std::path::Path) {
    let path = dir.join("results.json");
    let results: serde_json::Value = match std::fs::read_to_string(&path)
        .map_err(|e| e.to_string())
        .and_then(|text| serde_json::from_str(&text).map_err(|e| e.to_string()))
    {
        Ok(results) => results,
        Err(error) => {
            eprintln!("taskyard-bench: cannot read {}: {error}", path.display());
            std::process::exit(1);
        }
    };
    let rows: Vec<Row> = results["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Row::from_json)
        .collect();
    let charts = plots::Distribution::from_results(&results);
    for plot in plots::draw(dir, &charts, &rows) {
        println!("{}", dir.join(plot).display());
    }
}

/// A count from the environment (`1_000_000` or `1000000`), else `default`.
pub fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// Whether a comparison over both stores measures `store` (`sqlite` or `postgres`):
/// `TASKYARD_BENCH_STORES=postgres` measures one alone; both by default.
pub fn measures_store(store: &str) -> bool {
    std::env::var("TASKYARD_BENCH_STORES").map_or(true, |stores| stores.contains(store))
}

/// A tokio runtime with two workers, as many as this machine's cores: every side of a
/// comparison runs on the same.
pub fn two_workers() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// The workspace root: two folders above this crate.
fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .and_then(|bench| bench.parent())
        .map(PathBuf::from)
        .unwrap_or(manifest)
}
