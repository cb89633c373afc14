//! N schedules due at the same instant every second, on a no-op task without history, for
//! profiling what a tick costs from its timer to its run's start:
//!
//! ```sh
//! cargo build --release -p taskyard --example tick_count
//! perf record -g target/release/examples/tick_count 10000 3    # N schedules, seconds
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/tick_count 1000 2
//! ```
//!
//! It prints the runs started and the lateness of the last run of each second.
//! `tick_count N S bare` measures the floor instead: N bare tokio timers, each a task that
//! sleeps until every whole second and notes its lateness the same way.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use taskyard::schedule::Schedule;
use taskyard::{App, Concurrency, StoreConfig, Task, TaskContext, TaskError, Trigger};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let count: usize = args.next().map_or(Ok(10_000), |n| n.parse())?;
    let seconds: u64 = args.next().map_or(Ok(3), |n| n.parse())?;
    let bare = args.next().is_some_and(|mode| mode == "bare");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let late = Arc::new(Mutex::new(Vec::new()));
    let task = {
        let late = late.clone();
        Task::new(move |cx: TaskContext| {
            if let Trigger::Schedule { scheduled_at, .. } = cx.trigger() {
                let ms = jiff::Timestamp::now().duration_since(*scheduled_at).as_secs_f64() * 1e3;
                late.lock().map(|mut late| late.push(ms)).ok();
            }
            async { Ok::<_, TaskError>(()) }
        })
        .concurrency(Concurrency::Parallel(count * 2))
    };
    let mut app = App::new()
        .task("noop", task)
        .store(StoreConfig::Disabled)
        .schedule_log(None);
    for i in 0..count {
        app = app.schedule(
            &format!("s{i}"),
            Schedule::worker().cron("* * * * * *").task("noop"),
        );
    }
    rt.block_on(async {
        if bare {
            bare_timers(count, seconds, &late).await;
            return Ok(());
        }
        let running = app.start().await?;
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        running.shutdown().await;
        Ok::<_, taskyard::Error>(())
    })?;
    let mut late = late.lock().map(|late| late.clone()).unwrap_or_default();
    late.sort_by(f64::total_cmp);
    let at = |p: f64| {
        late.get(((late.len() as f64 * p) as usize).min(late.len().saturating_sub(1)))
            .copied()
    };
    let ms = |p: f64| at(p).map_or_else(|| "-".to_owned(), |ms| format!("{ms:.2}"));
    println!(
        "runs {} lateness min {} p10 {} p50 {} ms p99 {} ms",
        late.len(),
        ms(0.0),
        ms(0.1),
        ms(0.5),
        ms(0.99)
    );
    Ok(())
}

/// The floor: `count` tasks that each sleep until every whole second for `seconds` and
/// note how late they woke.
async fn bare_timers(count: usize, seconds: u64, late: &Arc<Mutex<Vec<f64>>>) {
    let first = jiff::Timestamp::now().as_second() + 1;
    let mut timers = Vec::with_capacity(count);
    for _ in 0..count {
        let late = late.clone();
        timers.push(tokio::spawn(async move {
            for second in first..first + seconds as i64 {
                let Ok(due) = jiff::Timestamp::from_second(second) else {
                    return;
                };
                let wait = Duration::try_from(due.duration_since(jiff::Timestamp::now())).unwrap_or_default();
                tokio::time::sleep(wait).await;
                let ms = jiff::Timestamp::now().duration_since(due).as_secs_f64() * 1e3;
                late.lock().map(|mut late| late.push(ms)).ok();
            }
        }));
    }
    for timer in timers {
        timer.await.ok();
    }
}
