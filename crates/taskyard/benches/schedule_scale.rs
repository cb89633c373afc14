//! The scheduler at scale: lateness of many schedules due in the same second, and memory
//! and registration time of a million schedules.
//!
//! Run: `cargo bench -p taskyard --bench schedule_scale`
//! (`SCHEDULES=…` and `REGISTER=…` change the two sizes; defaults 10,000 and 1,000,000).
//!
//! - **Lateness**: `SCHEDULES` cron schedules `* * * * * *` on one no-op task, for three
//!   seconds on a 2-worker runtime; each run notes `started - scheduled_at`. Printed as
//!   p50/p99/max, with a bare `tokio::time::sleep_until` of as many timers beside it: the
//!   floor the timer wheel itself sets.
//! - **Memory and registration**: `REGISTER` interval schedules added at runtime with
//!   `Scheduler::add`; bytes are counted by a counting global allocator (net live bytes
//!   after minus before), time by the wall clock. Cron schedules are measured too.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use taskyard::schedule::Schedule;
use taskyard::{App, Concurrency, StoreConfig, Task, TaskContext, TaskError, Trigger};

/// Counts live heap bytes, so the memory a schedule costs is measured, not estimated.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn size(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn summary(label: &str, mut lateness_ms: Vec<f64>) -> (f64, f64, f64) {
    lateness_ms.sort_by(f64::total_cmp);
    let (p50, p99) = (percentile(&lateness_ms, 50.0), percentile(&lateness_ms, 99.0));
    let max = lateness_ms.last().copied().unwrap_or(f64::NAN);
    println!(
        "{label:<44} samples {:>7}  p50 {p50:>6.2} ms  p99 {p99:>6.2} ms  max {max:>6.2} ms",
        lateness_ms.len()
    );
    (p50, p99, max)
}

/// `count` timers due at the same instants, three seconds in a row: the timer wheel's floor.
async fn bare_timers(count: usize) -> Vec<f64> {
    let samples = Arc::new(Mutex::new(Vec::with_capacity(count * 3)));
    let first = Timestamp::now().as_second() + 2;
    let mut joins = Vec::with_capacity(count);
    for _ in 0..count {
        let samples = samples.clone();
        joins.push(tokio::spawn(async move {
            for second in first..first + 3 {
                let due = Timestamp::from_second(second).expect("ts");
                let wait = Duration::try_from(due.duration_since(Timestamp::now())).unwrap_or_default();
                tokio::time::sleep(wait).await;
                let late = Timestamp::now().duration_since(due).as_secs_f64() * 1e3;
                samples.lock().expect("lock").push(late);
            }
        }));
    }
    for join in joins {
        join.await.expect("timer");
    }
    Arc::try_unwrap(samples)
        .expect("done")
        .into_inner()
        .expect("lock")
}

/// How the schedules' ticks fall within each second.
#[derive(Clone, Copy)]
enum Due {
    /// All on the whole second (cron `* * * * * *`): the worst burst.
    SameInstant,
    /// Spread evenly over the second (1 s intervals whose `start`s differ by 1/count s).
    Spread,
}

async fn lateness(count: usize, store: StoreConfig, due: Due) -> Vec<f64> {
    let samples = Arc::new(Mutex::new(Vec::with_capacity(count * 3)));
    let task = {
        let samples = samples.clone();
        Task::new(move |cx: TaskContext| {
            let started = Timestamp::now();
            let samples = samples.clone();
            async move {
                if let Trigger::Schedule { scheduled_at, .. } = cx.trigger() {
                    let late = started.duration_since(*scheduled_at).as_secs_f64() * 1e3;
                    samples.lock().expect("lock").push(late);
                }
                Ok::<_, TaskError>(())
            }
        })
        .concurrency(Concurrency::Parallel(count * 2))
    };
    let mut app = App::new()
        .task("noop", task)
        .store(store)
        .retention(None)
        .schedule_log(None);
    let anchor = Timestamp::from_second(Timestamp::now().as_second()).expect("ts");
    for i in 0..count {
        let schedule = match due {
            Due::SameInstant => Schedule::worker().cron("* * * * * *"),
            Due::Spread => Schedule::worker()
                .interval(1000u64)
                .start(anchor + Duration::from_nanos(1_000_000_000 / count as u64 * i as u64)),
        };
        app = app.schedule(&format!("s{i}"), schedule.task("noop"));
    }
    let running = app.start().await.expect("app starts");
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    running.shutdown().await;
    samples.lock().expect("lock").clone()
}

async fn register(count: usize, cron: bool) -> (f64, f64) {
    let running = App::new()
        .task(
            "noop",
            Task::new(|_cx: TaskContext| async { Ok::<_, TaskError>(()) }),
        )
        .store(StoreConfig::Disabled)
        .schedule_log(None)
        .start()
        .await
        .expect("app starts");
    let scheduler = running.scheduler().clone();
    let names: Vec<String> = (0..count).map(|i| format!("schedule-{i:07}")).collect();
    let before = LIVE.load(Ordering::Relaxed);
    let started = Instant::now();
    for (i, name) in names.iter().enumerate() {
        let schedule = if cron {
            Schedule::worker().cron("0 */5 * * * *")
        } else {
            // Intervals from 1 h to ~2.8 h: every schedule has a tick of its own.
            Schedule::worker().interval(3_600_000 + i as u64 % 6_000_000)
        };
        scheduler.add(name, schedule.task("noop")).expect("added");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let bytes = (LIVE.load(Ordering::Relaxed) - before) as f64 / count as f64;
    // The names were built before counting, so they are not in `bytes`; the scheduler's
    // own copy of each name is.
    drop(names);
    running.shutdown().await;
    (bytes, elapsed)
}

fn main() {
    let schedules = size("SCHEDULES", 10_000);
    let registered = size("REGISTER", 1_000_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    println!("== lateness: {schedules} schedules due every second, 3 s, 2 worker threads");
    let floor = summary(
        "tokio sleep_until, same instants (floor)",
        rt.block_on(bare_timers(schedules)),
    );
    for (label, due) in [
        ("same instant", Due::SameInstant),
        ("spread over the second", Due::Spread),
    ] {
        let none = summary(
            &format!("taskyard, {label}, no store"),
            rt.block_on(lateness(schedules, StoreConfig::Disabled, due)),
        );
        let memory = summary(
            &format!("taskyard, {label}, memory store"),
            rt.block_on(lateness(schedules, StoreConfig::Memory, due)),
        );
        println!(
            "   {label}: p99 / floor p99 = {:.2}x without a store, {:.2}x with the memory store (target p99 <= 5 ms)",
            none.1 / floor.1.max(0.001),
            memory.1 / floor.1.max(0.001)
        );
    }

    println!("== registration: {registered} schedules added at runtime");
    for cron in [false, true] {
        let (bytes, secs) = rt.block_on(register(registered, cron));
        println!(
            "{:<44} {bytes:>6.0} bytes/schedule  {secs:>5.2} s  ({:.0} k/s)   (targets <= 300 B, <= 3 s)",
            if cron {
                "cron `0 */5 * * * *` (shared parse)"
            } else {
                "intervals, each its own"
            },
            registered as f64 / secs / 1e3
        );
    }
}
