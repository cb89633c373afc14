//! `taskyard-bench`: taskyard side by side with its peers, each comparison a ratio measured
//! in the same run on this machine. `bench/run` sets up the peers, builds everything and
//! calls `taskyard-bench all`, which writes `bench/results/results.json` and
//! `bench/results/results.md`; one comparison alone (`taskyard-bench http`) only prints.
//!
//! | comparison | taskyard | peer | target |
//! |---|---|---|---|
//! | `run-task` | `run_task` of a no-op task, in process | Nitro `runTask`, in Node | ≥ 20× runs/s |
//! | `http` | `POST /_nitro/tasks/echo:payload`, the quickstart | the same on a Nitro node-server | ≥ 10× req/s, p99 ≤ 1/5 |
//! | `cron-next` | `CronExpr::next_after` | the `croner` and `cron` crates, JavaScript croner | as fast as the fastest |
//!
//! Every load is on loopback and bounded in time; every process started is stopped.

mod cron_next;
mod http;
mod peers;
mod report;
mod run_task;

use std::path::PathBuf;

use report::Row;

fn main() {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_else(|| "all".to_owned());
    let root = workspace_root();
    let rows: Vec<Row> = match command.as_str() {
        "run-task" => run_task::compare(&root),
        "http" => http::compare(&root),
        "cron-next" => cron_next::compare(&root),
        "all" => {
            let mut rows = run_task::compare(&root);
            rows.extend(http::compare(&root));
            rows.extend(cron_next::compare(&root));
            rows
        }
        other => {
            eprintln!("taskyard-bench: unknown comparison `{other}`; use run-task, http, cron-next or all");
            std::process::exit(2);
        }
    };
    // Only a complete run replaces the published results.
    if command == "all" {
        report::write(&root.join("bench").join("results"), &rows);
    }
    println!("{}", report::markdown(&rows));
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
