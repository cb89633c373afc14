//! A long history: `RUNS` finished runs (10,000,000 by default,
//! `TASKYARD_BENCH_HISTORY_RUNS`) in each store, SQLite then PostgreSQL
//! (`TASKYARD_BENCH_STORES=postgres` for one alone), and how long the
//! runs list takes to answer — through the HTTP endpoint `GET /_tasks/runs` (a page of 100,
//! as JSON) and through the history query itself (`Store::list_runs`, a page of 50, the
//! dashboard's) — for the first page, a page filtered by task, one filtered by status, and
//! one half the history deep. Each is the p99 of `REQUESTS` after a first request, beside a
//! plain route of the same app. Goal: p99 ≤ 20 ms for every page, with the indexes the
//! migrations make.

use std::sync::Arc;
use std::time::Instant;

use taskyard::http::TasksAccess;
use taskyard::store::Store;
use taskyard::{App, RunFilter, RunStatus, StoreConfig};

use crate::dashboard::{Served, fill, page_times, task_name};
use crate::plots::nearest_rank;
use crate::recorded::PostgresSchema;
use crate::report::Row;

const RUNS: usize = 10_000_000;
const REQUESTS: usize = 200;
const GOAL_MS: f64 = 20.0;

pub fn compare() -> Vec<Row> {
    let runs = crate::setting("TASKYARD_BENCH_HISTORY_RUNS", RUNS);
    let dir = std::env::temp_dir().join(format!("taskyard-bench-history-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    let runtime = crate::two_workers();
    let mut rows = Vec::new();
    if crate::measures_store("sqlite") {
        let sqlite = StoreConfig::Sqlite(dir.join("history.db"));
        rows.extend(runtime.block_on(measure("SQLite", sqlite, runs)));
    }
    if crate::measures_store("postgres") {
        let schema = PostgresSchema::create();
        let postgres = StoreConfig::Postgres(schema.url.clone());
        rows.extend(runtime.block_on(measure("PostgreSQL", postgres, runs)));
        drop(schema);
    }
    let _ = std::fs::remove_dir_all(&dir);
    rows
}

/// The first call's milliseconds and the p99 of `REQUESTS` more of `list_runs(filter)`.
async fn query_times(store: &Arc<dyn Store>, filter: &RunFilter) -> (f64, f64) {
    let mut times = Vec::with_capacity(REQUESTS + 1);
    for _ in 0..=REQUESTS {
        let began = Instant::now();
        let runs = store.list_runs(filter).await.expect("the history is read");
        assert!(!runs.is_empty(), "a page of runs");
        times.push(began.elapsed().as_secs_f64() * 1000.0);
    }
    let first = times.remove(0);
    times.sort_by(f64::total_cmp);
    (first, nearest_rank(&times, 0.99))
}

async fn measure(store_name: &str, config: StoreConfig, runs: usize) -> Vec<Row> {
    let store = config.open().await.expect("the store opens").expect("a store");
    let middle = fill(&store, runs).await.expect("a run half way");
    let page = RunFilter::default().limit(50);
    let pages = [
        ("first page", page.clone(), String::new()),
        (
            "one task's runs",
            page.clone().task(task_name(3)),
            format!("?task={}", task_name(3)),
        ),
        (
            "failed runs",
            page.clone().status(RunStatus::Failed),
            "?status=failed".to_owned(),
        ),
        (
            "a page half the history deep",
            page.clone().before(middle),
            format!("?before={middle}"),
        ),
    ];
    let mut queries = Vec::new();
    for (name, filter, _) in &pages {
        queries.push((*name, query_times(&store, filter).await));
    }
    drop(store);

    let app = App::new()
        .store(config)
        .tasks_access(TasksAccess::Loopback)
        .schedule_log(None)
        .routes(axum::Router::new().route("/plain", axum::routing::get(|| async { "ok" })))
        .start()
        .await
        .expect("the app starts");
    let served = Served::start(app).await;
    let base = served.base.clone();
    let (floor, endpoint) = tokio::task::spawn_blocking(move || {
        let floor = page_times(&base, "/plain", REQUESTS).2;
        let endpoint: Vec<(f64, f64)> = pages
            .iter()
            .map(|(_, _, query)| {
                let (first, _, p99) = page_times(&base, &format!("/_tasks/runs{query}"), REQUESTS);
                (first, p99)
            })
            .collect();
        (floor, endpoint)
    })
    .await
    .expect("the page timings");
    served.stop().await;

    let comparison = format!("runs list over {runs} runs in {store_name}");
    let mut rows = Vec::new();
    for ((name, (query_first, query_p99)), (http_first, http_p99)) in queries.into_iter().zip(endpoint) {
        eprintln!(
            "history, {store_name}: {name}: query first {query_first:.2} ms, p99 {query_p99:.2} ms; \
             GET /_tasks/runs first {http_first:.2} ms, p99 {http_p99:.2} ms (plain route p99 {floor:.2} ms)"
        );
        for (metric, value) in [
            (format!("{name}: the history query, p99 ms"), query_p99),
            (format!("{name}: GET /_tasks/runs, p99 ms"), http_p99),
        ] {
            rows.push(Row {
                comparison: comparison.clone(),
                metric,
                taskyard: value,
                peer: floor,
                peer_name: "a plain route of the same app, p99".into(),
                ratio: value / floor,
                target: format!("≤ {GOAL_MS} ms"),
                met: value <= GOAL_MS,
                unit: "ms".into(),
            });
        }
    }
    rows
}
