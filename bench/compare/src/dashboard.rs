//! The dashboard under load: its pages over a SQLite history of 1,000,000 runs (first
//! render and steady p99, beside a plain route of the same app), how long an open runs
//! page takes to show a new run, and whether it keeps up with 1,000 runs/s without its
//! memory growing — the last two in headless Chromium (`scripts/setup-chromium.sh`).
//! `TASKYARD_BENCH_DASHBOARD_RUNS` sets the history's size.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use taskyard::http::TasksAccess;
use taskyard::store::Store;
use taskyard::{App, Concurrency, RunRecord, RunStatus, StoreConfig, Task, TaskContext, TaskError, Trigger};

use crate::report::Row;

/// Runs in the history by default.
const RUNS: usize = 1_000_000;

/// Tasks the history's runs are spread over.
const TASKS: usize = 10;

/// Timed requests per page, after the first.
const REQUESTS: usize = 40;

/// The goals, in milliseconds.
const RENDER_GOAL_MS: f64 = 100.0;
const EVENT_GOAL_MS: f64 = 100.0;
/// A chart counts a whole day of runs, once a minute, beside the page that shows it.
const CHART_GOAL_MS: f64 = 1_000.0;

pub fn compare(_root: &Path) -> Vec<Row> {
    let runs = crate::setting("TASKYARD_BENCH_DASHBOARD_RUNS", RUNS);
    let dir = std::env::temp_dir().join(format!("taskyard-bench-dashboard-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    let runtime = crate::two_workers();
    let rows = runtime.block_on(measure(&dir.join("history.db"), runs));
    let _ = std::fs::remove_dir_all(&dir);
    rows
}

pub(crate) fn task_name(n: usize) -> String {
    format!("task:{n}")
}

/// `runs` finished runs over the last day, oldest first, a tenth of them failed, spread
/// over `TASKS` tasks; returns the id of the run half way.
pub(crate) async fn fill(store: &Arc<dyn Store>, runs: usize) -> Option<taskyard::RunId> {
    let began = Instant::now();
    let now = Timestamp::now();
    let step = 86_400_000 / runs.max(1) as i64;
    let mut middle = None;
    let mut batch = Vec::with_capacity(5_000);
    for i in 0..runs {
        let at = now - SignedDuration::from_millis(step * (runs - i) as i64);
        let mut run = RunRecord::queued(
            task_name(i % TASKS),
            json!({ "n": i }),
            Trigger::Http,
            "bench".to_owned(),
            at,
        );
        run.status = if i % 10 == 0 {
            RunStatus::Failed
        } else {
            RunStatus::Succeeded
        };
        run.attempt = 1;
        run.started_at = Some(at);
        run.finished_at = Some(at + SignedDuration::from_millis(3));
        run.duration_ms = Some(3);
        if run.status == RunStatus::Failed {
            run.error = Some(format!("run {i} failed"));
        } else {
            run.result = Some(json!({ "ok": i }));
        }
        if i == runs / 2 {
            middle = Some(run.id);
        }
        batch.push(run);
        if batch.len() == batch.capacity() {
            store.put_runs(&batch).await.expect("the history is written");
            batch.clear();
        }
    }
    store.put_runs(&batch).await.expect("the history is written");
    eprintln!(
        "{runs} runs written to {} in {:.1} s",
        store.backend(),
        began.elapsed().as_secs_f64()
    );
    middle
}

/// Milliseconds of one blocking GET, and its status.
fn timed_get(agent: &ureq::Agent, url: &str) -> (f64, u16) {
    let began = Instant::now();
    let mut response = agent.get(url).call().expect("a response");
    let status = response.status().as_u16();
    let _ = response.body_mut().read_to_string();
    (began.elapsed().as_secs_f64() * 1000.0, status)
}

/// The first request's time and the p50 and p99 of `requests` more.
pub(crate) fn page_times(base: &str, path: &str, requests: usize) -> (f64, f64, f64) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let url = format!("{base}{path}");
    let (first, status) = timed_get(&agent, &url);
    assert_eq!(status, 200, "{path}");
    let mut times: Vec<f64> = (0..requests).map(|_| timed_get(&agent, &url).0).collect();
    times.sort_by(f64::total_cmp);
    (first, times[times.len() / 2], times[times.len() * 99 / 100])
}

async fn measure(path: &Path, runs: usize) -> Vec<Row> {
    let store = StoreConfig::Sqlite(path.to_path_buf())
        .open()
        .await
        .expect("the store opens")
        .expect("a store");
    let middle = fill(&store, runs).await;
    drop(store);
    let mut app = App::new()
        .store(StoreConfig::Sqlite(path.to_path_buf()))
        .tasks_access(TasksAccess::Loopback)
        .schedule_log(None)
        .routes(axum::Router::new().route("/plain", axum::routing::get(|| async { "ok" })));
    for n in 0..TASKS {
        app = app.task(
            &task_name(n),
            Task::new(|_cx: TaskContext| async { Ok::<_, TaskError>(()) })
                .concurrency(Concurrency::Unlimited),
        );
    }
    let app = app.start().await.expect("the app starts");
    let runtime = app.runtime().clone();
    let served = Served::start(app).await;
    let base = served.base.clone();

    let mut pages = vec![
        ("runs, first page", "/_tasks/ui/runs".to_owned()),
        (
            "runs of one task",
            format!("/_tasks/ui/runs?task={}", task_name(3)),
        ),
        ("failed runs", "/_tasks/ui/runs?status=failed".to_owned()),
        ("overview", "/_tasks/ui".to_owned()),
        // Counted once, then kept 60 s: the first request is the count over the whole day.
        ("chart of the last day", "/_tasks/ui/charts/day.svg".to_owned()),
    ];
    if let Some(middle) = middle {
        pages.push((
            "a page half the history deep",
            format!("/_tasks/ui/runs?before={middle}"),
        ));
    }
    let measured = {
        let base = base.clone();
        tokio::task::spawn_blocking(move || {
            let floor = page_times(&base, "/plain", REQUESTS);
            let pages: Vec<_> = pages
                .into_iter()
                .map(|(name, path)| (name, page_times(&base, &path, REQUESTS)))
                .collect();
            (floor, pages)
        })
        .await
        .expect("the page timings")
    };
    let (floor, pages) = measured;
    let mut rows = Vec::new();
    let comparison = format!("dashboard, {runs} runs in SQLite");
    for (name, (first, p50, p99)) in pages {
        eprintln!(
            "dashboard: {name}: first {first:.1} ms, p50 {p50:.1} ms, p99 {p99:.1} ms (plain route p99 {:.2} ms)",
            floor.2
        );
        // A chart is an image beside its page, counted at most once a minute: its own goal.
        let goal = if name.starts_with("chart") {
            CHART_GOAL_MS
        } else {
            RENDER_GOAL_MS
        };
        for (metric, value) in [("first render", first), ("p99", p99)] {
            rows.push(Row {
                comparison: comparison.clone(),
                metric: format!("{name}: {metric}, ms (goal ≤ {goal})"),
                taskyard: value,
                peer: floor.2,
                peer_name: "a plain route of the same app, p99".into(),
                ratio: value / floor.2,
                target: format!("≤ {goal} ms"),
                met: value <= goal,
                unit: "ms".into(),
            });
        }
    }
    match browser().await {
        Some((_driver, client)) => {
            rows.extend(live(&client, &base, &runtime, &comparison).await);
            let _ = client.close().await;
        }
        None => eprintln!(
            "dashboard: SKIPPED the browser rows: no chromium and chromedriver (scripts/setup-chromium.sh)"
        ),
    }
    served.stop().await;
    rows
}

/// A started app served on a free loopback port until [`Served::stop`].
pub(crate) struct Served {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<Result<(), taskyard::Error>>,
}

impl Served {
    pub(crate) async fn start(app: taskyard::RunningApp) -> Served {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let local = listener.local_addr().expect("its address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.serve_on(listener, local, async move {
            let _ = stopped.await;
        }));
        Served {
            base: format!("http://{local}"),
            stop,
            server,
        }
    }

    /// Stops serving and waits for the app's shutdown.
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.server.await;
    }
}

/// How long an open runs page takes to show a new run, and how it holds 1,000 runs/s.
async fn live(client: &Client, base: &str, runtime: &taskyard::Runtime, comparison: &str) -> Vec<Row> {
    client
        .goto(&format!("{base}/_tasks/ui/runs"))
        .await
        .expect("the runs page");
    // The moment each run's row first appears, by the page's own clock (the machine's).
    client
        .execute(
            "window.seen = {}; new MutationObserver(() => { for (const row of document.querySelectorAll('tr[data-run]')) { if (!(row.dataset.run in window.seen)) window.seen[row.dataset.run] = Date.now(); } }).observe(document.querySelector('main'), { childList: true, subtree: true }); for (const row of document.querySelectorAll('tr[data-run]')) window.seen[row.dataset.run] = 0; return true",
            vec![],
        )
        .await
        .expect("an observer");
    let mut latencies = Vec::new();
    for n in 0..20 {
        // Spaced past the page's one refresh a second, so each run's event is the first.
        tokio::time::sleep(Duration::from_millis(1_200)).await;
        let handle = runtime
            .start(taskyard::RunRequest::new(task_name(n % TASKS)))
            .await
            .expect("a run");
        let id = handle.run_id();
        handle.outcome().await.expect("it succeeds");
        let record = runtime.get_run(id).await.expect("read").expect("recorded");
        let started = record.started_at.unwrap_or(record.queued_at).as_millisecond();
        let deadline = Instant::now() + Duration::from_secs(10);
        let seen = loop {
            let seen = client
                .execute(&format!("return window.seen['{id}'] || null"), vec![])
                .await
                .expect("a check");
            if let Some(at) = seen.as_i64() {
                break at;
            }
            assert!(Instant::now() < deadline, "run {id} never appeared on the page");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        latencies.push((seen - started) as f64);
    }
    latencies.sort_by(f64::total_cmp);
    let p50 = latencies[latencies.len() / 2];
    let worst = latencies[latencies.len() - 1];
    eprintln!(
        "dashboard: a run's start to its row on the page: p50 {p50} ms, worst {worst} ms of {}",
        latencies.len()
    );

    // 1,000 runs a second for ten seconds, the page open: its refreshes stay batched and
    // its memory flat.
    let sample = "window.gc(); return [performance.memory.usedJSHeapSize, document.getElementsByTagName('*').length, performance.getEntriesByType('resource').filter(e => e.initiatorType === 'fetch').length]";
    let before = client.execute(sample, vec![]).await.expect("a sample");
    let began = Instant::now();
    let mut started = 0_u64;
    while began.elapsed() < Duration::from_secs(10) {
        let due = (began.elapsed().as_secs_f64() * 1000.0) as u64;
        while started < due {
            let request = taskyard::RunRequest::new(task_name(started as usize % TASKS));
            drop(runtime.start(request).await.expect("a run"));
            started += 1;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let seconds = began.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let after = client.execute(sample, vec![]).await.expect("a sample");
    let number = |value: &Value, i: usize| value[i].as_f64().unwrap_or(f64::NAN);
    let growth_kb = (number(&after, 0) - number(&before, 0)) / 1024.0;
    let refreshes = (number(&after, 2) - number(&before, 2)) / seconds;
    eprintln!(
        "dashboard: {started} runs in {seconds:.1} s: JS heap {:.0} → {:.0} KB, DOM nodes {} → {}, {refreshes:.2} refreshes a second",
        number(&before, 0) / 1024.0,
        number(&after, 0) / 1024.0,
        number(&before, 1),
        number(&after, 1),
    );
    let row = |metric: &str, value: f64, goal: f64, target: &str, met: bool| Row {
        comparison: comparison.to_owned(),
        metric: metric.to_owned(),
        taskyard: value,
        peer: goal,
        peer_name: "the goal".into(),
        ratio: value / goal,
        target: target.to_owned(),
        met,
        unit: String::new(),
    };
    vec![
        row(
            "a run's start to its row on an open page, p50, ms",
            p50,
            EVENT_GOAL_MS,
            "≤ 100 ms",
            p50 <= EVENT_GOAL_MS,
        ),
        row(
            "a run's start to its row on an open page, worst of 20, ms",
            worst,
            EVENT_GOAL_MS,
            "≤ 100 ms",
            worst <= EVENT_GOAL_MS,
        ),
        row(
            "1,000 runs/s for 10 s: page refreshes a second",
            refreshes,
            1.0,
            "≤ 1.2 (batched)",
            refreshes <= 1.2,
        ),
        row(
            "1,000 runs/s for 10 s: JS heap growth after GC, KB",
            growth_kb,
            1024.0,
            "≤ 1,024 KB (flat)",
            growth_kb <= 1024.0,
        ),
    ]
}

/// A chromedriver child, killed when dropped, with the browser's profile folder.
struct Driver {
    child: Child,
    _profile: std::path::PathBuf,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self._profile);
    }
}

/// A headless Chromium session with its memory readable and `gc()` callable, or `None`.
async fn browser() -> Option<(Driver, Client)> {
    let installed = |program: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {program}")])
            .output()
            .is_ok_and(|output| output.status.success())
    };
    if !installed("chromedriver") || !installed("chromium") {
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .ok()?
        .port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let profile = std::env::temp_dir().join(format!("taskyard-bench-chromium-{}", std::process::id()));
    let driver = Driver {
        child,
        _profile: profile.clone(),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("browserName".to_owned(), json!("chrome"));
    capabilities.insert(
        "goog:chromeOptions".to_owned(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--enable-precise-memory-info",
                "--js-flags=--expose-gc", format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = ClientBuilder::new(connector)
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .ok()?;
    Some((driver, client))
}
