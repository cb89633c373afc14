//! Schedules at scale, taskyard beside tokio-cron-scheduler and JavaScript croner, the same
//! measurement on each:
//!
//! - **lateness**: `LATENESS_SCHEDULES` schedules `* * * * * *` on a no-op job for 3 s on
//!   a 2-worker runtime; each run notes how long after its whole second it started
//!   (taskyard's runs take it from their tick, which is that whole second).
//!   tokio-cron-scheduler's callback is not told its tick, so lateness is taken past the
//!   last whole second on every side, and the run counts show whether a side fell behind;
//!   JavaScript croner runs `bench/peers/lateness.mjs` in Node; the floor, as many bare
//!   tokio timers, alternates with taskyard for `FLOOR_ROUNDS` rounds, the median round's
//!   ratio reported;
//! - **registration** (tokio-cron-scheduler only): `REGISTER` cron schedules `0 */5 * * * *` added to a running
//!   scheduler, timed by the wall clock, their memory counted by the counting allocator
//!   (live bytes after minus before, per schedule).

use std::path::Path;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use taskyard::schedule::Schedule;
use taskyard::{App, Concurrency, StoreConfig, Task, TaskContext, TaskError, Trigger};
use tokio_cron_scheduler::{Job, JobScheduler};

use crate::peers;
use crate::plots::{Curve, Distribution, nearest_rank};
use crate::report::Row;
use crate::{COUNTING, LIVE};

const LATENESS_SCHEDULES: usize = 10_000;
const SECONDS: u64 = 3;
/// Rounds of taskyard's ticks and the bare timers, alternating.
const FLOOR_ROUNDS: usize = 5;

/// Milliseconds past the last whole second.
fn past_the_second(now: Timestamp) -> f64 {
    f64::from(now.subsec_nanosecond()) / 1e6
}

/// How taskyard's ticks fall within each second.
#[derive(Clone, Copy)]
enum Due {
    /// All on the whole second (cron `* * * * * *`), as the peers can schedule them.
    SameInstant,
    /// 1 s intervals whose starts are spread evenly over the second. No peer can spread
    /// ticks within a second (cron has whole seconds; tokio-cron-scheduler looks every
    /// 500 ms).
    Spread,
}

/// `count` taskyard schedules on a no-op task for `SECONDS`, each run noting how long
/// after its tick it started (for `SameInstant`, the milliseconds past the whole second
/// that the peers report).
async fn taskyard_lateness(count: usize, due: Due) -> Vec<f64> {
    let samples = Arc::new(Mutex::new(Vec::with_capacity(count * 4)));
    let task = {
        let samples = samples.clone();
        Task::new(move |cx: TaskContext| {
            let started = Timestamp::now();
            if let Trigger::Schedule { scheduled_at, .. } = cx.trigger() {
                let late = started.duration_since(*scheduled_at).as_secs_f64() * 1e3;
                samples.lock().expect("lock").push(late);
            }
            async { Ok::<_, TaskError>(()) }
        })
        .concurrency(Concurrency::Parallel(count * 2))
    };
    let mut app = App::new()
        .task("noop", task)
        .store(StoreConfig::Disabled)
        .schedule_log(None);
    let anchor = Timestamp::from_second(Timestamp::now().as_second()).expect("an instant");
    for i in 0..count {
        let schedule = match due {
            Due::SameInstant => Schedule::worker().cron("* * * * * *"),
            Due::Spread => {
                let offset = Duration::from_nanos(1_000_000_000 / count as u64 * i as u64);
                Schedule::worker().interval(1000u64).start(anchor + offset)
            }
        };
        app = app.schedule(&format!("s{i}"), schedule.task("noop"));
    }
    let running = app.start().await.expect("the app starts");
    tokio::time::sleep(Duration::from_secs(SECONDS)).await;
    running.shutdown().await;
    samples.lock().expect("lock").clone()
}

async fn tcs_lateness(count: usize) -> Vec<f64> {
    let samples = Arc::new(Mutex::new(Vec::with_capacity(count * 4)));
    let mut scheduler = JobScheduler::new().await.expect("tokio-cron-scheduler starts");
    for _ in 0..count {
        let samples = samples.clone();
        let job = Job::new_async("* * * * * *", move |_id, _scheduler| {
            let late = past_the_second(Timestamp::now());
            samples.lock().expect("lock").push(late);
            Box::pin(async {})
        })
        .expect("a job");
        scheduler.add(job).await.expect("added");
    }
    scheduler.start().await.expect("started");
    tokio::time::sleep(Duration::from_secs(SECONDS)).await;
    scheduler.shutdown().await.expect("stopped");
    samples.lock().expect("lock").clone()
}

/// (bytes per schedule, seconds) for `count` taskyard cron schedules.
async fn taskyard_register(count: usize) -> (f64, f64) {
    let running = App::new()
        .task(
            "noop",
            Task::new(|_cx: TaskContext| async { Ok::<_, TaskError>(()) }),
        )
        .store(StoreConfig::Disabled)
        .schedule_log(None)
        .start()
        .await
        .expect("the app starts");
    let scheduler = running.scheduler().clone();
    let names: Vec<String> = (0..count).map(|i| format!("schedule-{i:07}")).collect();
    COUNTING.store(true, Ordering::SeqCst);
    let before = LIVE.load(Ordering::SeqCst);
    let started = Instant::now();
    for name in &names {
        scheduler
            .add(name, Schedule::worker().cron("0 */5 * * * *").task("noop"))
            .expect("added");
    }
    let seconds = started.elapsed().as_secs_f64();
    let bytes = (LIVE.load(Ordering::SeqCst) - before) as f64 / count as f64;
    COUNTING.store(false, Ordering::SeqCst);
    drop(names);
    running.shutdown().await;
    (bytes, seconds)
}

/// (bytes per schedule, seconds) for `count` tokio-cron-scheduler cron jobs.
async fn tcs_register(count: usize) -> (f64, f64) {
    let mut scheduler = JobScheduler::new().await.expect("tokio-cron-scheduler starts");
    scheduler.start().await.expect("started");
    COUNTING.store(true, Ordering::SeqCst);
    let before = LIVE.load(Ordering::SeqCst);
    let started = Instant::now();
    for _ in 0..count {
        let job = Job::new_async("0 */5 * * * *", |_id, _scheduler| Box::pin(async {})).expect("a job");
        scheduler.add(job).await.expect("added");
    }
    let seconds = started.elapsed().as_secs_f64();
    let bytes = (LIVE.load(Ordering::SeqCst) - before) as f64 / count as f64;
    COUNTING.store(false, Ordering::SeqCst);
    scheduler.shutdown().await.expect("stopped");
    (bytes, seconds)
}

/// The floor: `count` bare tokio timers due at the same whole second, each noting how late
/// it woke, three times over, on the same runtime as the schedulers.
async fn timers_lateness(count: usize) -> Vec<f64> {
    let samples = Arc::new(Mutex::new(Vec::with_capacity(count * SECONDS as usize)));
    for _ in 0..SECONDS {
        let now = Timestamp::now();
        let wait = Duration::from_nanos(1_000_000_000 - u64::from(now.subsec_nanosecond().unsigned_abs()));
        let due = tokio::time::Instant::now() + wait;
        let timers: Vec<_> = (0..count)
            .map(|_| {
                let samples = samples.clone();
                tokio::spawn(async move {
                    tokio::time::sleep_until(due).await;
                    let late = past_the_second(Timestamp::now());
                    samples.lock().expect("lock").push(late);
                })
            })
            .collect();
        for timer in timers {
            timer.await.expect("a timer");
        }
    }
    samples.lock().expect("lock").clone()
}

/// JavaScript croner's lateness, the same measure in Node (`bench/peers/lateness.mjs`).
fn croner_js_lateness(root: &Path, count: usize) -> Vec<f64> {
    let copy = peers::script(root, "lateness.mjs");
    let output = Command::new("node")
        .arg(&copy)
        .arg(count.to_string())
        .arg(SECONDS.to_string())
        .output()
        .expect("node runs");
    let text = String::from_utf8_lossy(&output.stdout);
    let value: serde_json::Value = serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!("JavaScript croner's lateness answered {text:?} ({e}); run bench/peers/setup.sh")
    });
    value["late_ms"]
        .as_array()
        .map(|samples| samples.iter().filter_map(serde_json::Value::as_f64).collect())
        .unwrap_or_default()
}

pub fn compare(root: &Path, charts: &mut Vec<Distribution>) -> Vec<Row> {
    let register = crate::setting("REGISTER", 1_000_000);
    let runtime = crate::two_workers();
    let sorted = |mut samples: Vec<f64>| {
        samples.sort_by(f64::total_cmp);
        samples
    };
    // Taskyard and its floor alternate round by round: measured one after the other, a
    // change in this shared machine's load between them moved the ratio by half. The
    // round whose p99 ratio is the median of the rounds is the one reported.
    let mut rounds: Vec<(Vec<f64>, Vec<f64>)> = (0..FLOOR_ROUNDS)
        .map(|_| {
            let ours = sorted(runtime.block_on(taskyard_lateness(LATENESS_SCHEDULES, Due::SameInstant)));
            let timers = sorted(runtime.block_on(timers_lateness(LATENESS_SCHEDULES)));
            (ours, timers)
        })
        .collect();
    let p99_ratio =
        |(ours, timers): &(Vec<f64>, Vec<f64>)| nearest_rank(ours, 99.0) / nearest_rank(timers, 99.0);
    rounds.sort_by(|a, b| p99_ratio(a).total_cmp(&p99_ratio(b)));
    eprintln!(
        "schedules: ticks at one instant, p99 / bare timers' by round: {}",
        rounds
            .iter()
            .map(|round| format!("{:.2}", p99_ratio(round)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let (ours, timers) = rounds.swap_remove(FLOOR_ROUNDS / 2);
    let tcs = sorted(runtime.block_on(tcs_lateness(LATENESS_SCHEDULES)));
    let javascript = sorted(croner_js_lateness(root, LATENESS_SCHEDULES));
    let spread = sorted(runtime.block_on(taskyard_lateness(LATENESS_SCHEDULES, Due::Spread)));
    let expected = LATENESS_SCHEDULES as u64 * SECONDS;
    eprintln!(
        "schedules: lateness runs taskyard {}, tokio-cron-scheduler {}, JavaScript croner {} (about {expected} due)",
        ours.len(),
        tcs.len(),
        javascript.len()
    );
    charts.push(Distribution {
        file: "lateness".into(),
        title: format!("{LATENESS_SCHEDULES} schedules due each second: ms from the tick to the run's start"),
        unit: "ms".into(),
        curves: vec![
            Curve::of_samples("taskyard", &ours),
            Curve::of_samples("tokio-cron-scheduler", &tcs),
            Curve::of_samples("croner (JavaScript)", &javascript),
            Curve::of_samples("floor: bare tokio timers", &timers),
            Curve::of_samples("taskyard, intervals spread over the second", &spread),
        ],
    });
    let comparison = format!("lateness, {LATENESS_SCHEDULES} schedules due each second");
    let mut rows = Vec::new();
    for (peer_name, theirs) in [
        ("tokio-cron-scheduler", &tcs),
        ("croner (JavaScript)", &javascript),
    ] {
        for (metric, p, target) in [
            ("p50 (peer / taskyard)", 50.0, None),
            ("p99 (peer / taskyard)", 99.0, Some(5.0)),
            ("max (peer / taskyard)", 100.0, None),
        ] {
            let (taskyard, peer) = (nearest_rank(&ours, p), nearest_rank(theirs, p));
            rows.push(Row {
                comparison: comparison.clone(),
                metric: metric.into(),
                taskyard,
                peer,
                peer_name: format!("{peer_name} ({} runs of {expected})", theirs.len()),
                ratio: peer / taskyard,
                target: target.map_or("—".into(), |ms| format!("p99 ≤ {ms} ms")),
                met: target.is_none_or(|ms| taskyard <= ms),
                unit: "ms".into(),
            });
        }
    }
    // Against its floor in the same run: what a run start costs at least while each is a
    // tokio task of its own, as bare timers due at the same instant.
    for (metric, p) in [("p50", 50.0), ("p99", 99.0)] {
        let (taskyard, floor) = (nearest_rank(&ours, p), nearest_rank(&timers, p));
        rows.push(Row {
            comparison: format!(
                "lateness, {LATENESS_SCHEDULES} ticks at the same instant / as many bare tokio timers"
            ),
            metric: format!("{metric} (taskyard / its floor, median of {FLOOR_ROUNDS} alternating rounds)"),
            taskyard,
            peer: floor,
            peer_name: "floor: bare tokio timers".into(),
            ratio: taskyard / floor,
            target: if p == 99.0 { "≤ 1.5× the floor" } else { "—" }.into(),
            met: p != 99.0 || taskyard <= 1.5 * floor,
            unit: "ms".into(),
        });
    }
    let spread_p99 = nearest_rank(&spread, 99.0);
    rows.push(Row {
        comparison: format!(
            "lateness, {LATENESS_SCHEDULES} 1 s intervals spread over the second (taskyard alone, {} runs)",
            spread.len()
        ),
        metric: "p99 (target / taskyard)".into(),
        taskyard: spread_p99,
        peer: 5.0,
        peer_name: "target".into(),
        ratio: 5.0 / spread_p99,
        target: "p99 ≤ 5 ms".into(),
        met: spread_p99 <= 5.0,
        unit: "ms".into(),
    });
    let (our_bytes, our_seconds) = runtime.block_on(taskyard_register(register));
    let (their_bytes, their_seconds) = runtime.block_on(tcs_register(register));
    eprintln!(
        "schedules: {register} registered: taskyard {our_bytes:.0} B {our_seconds:.2} s, tokio-cron-scheduler {their_bytes:.0} B {their_seconds:.2} s"
    );
    let row = |metric: &str, taskyard: f64, peer: f64, target: &str, met: bool, unit: &str| Row {
        comparison: format!("{register} cron schedules registered"),
        metric: metric.into(),
        taskyard,
        peer,
        peer_name: "tokio-cron-scheduler".into(),
        ratio: peer / taskyard,
        target: target.into(),
        met,
        unit: unit.into(),
    };
    rows.push(row(
        "bytes per schedule (peer / taskyard)",
        our_bytes,
        their_bytes,
        "≤ 300 B",
        our_bytes <= 300.0,
        "B",
    ));
    rows.push(row(
        "registration time (peer / taskyard)",
        our_seconds,
        their_seconds,
        "≤ 3 s",
        our_seconds <= 3.0,
        "s",
    ));
    rows
}
