//! The scheduler in one process: ticks, overlap and catch-up policies, immediate,
//! disable, env, runtime add/remove/pause/resume, `run_schedule`, the schedule log and
//! graceful shutdown. Cluster behaviour is in `schedule_cluster.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use jiff::Timestamp;
use serde_json::{Value, json};
use taskyard::schedule::{CatchUp, Overlap, Schedule};
use taskyard::{
    App, Concurrency, Error, RunFilter, RunRecord, RunStatus, RunningApp, StoreConfig, Task, TaskContext,
    TaskError, Trigger,
};

/// A task that counts its runs, keeps the peak of runs going at once, and notes how many
/// milliseconds after its tick each scheduled run started.
#[derive(Clone, Default)]
struct Probe {
    runs: Arc<AtomicUsize>,
    active: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
    late_ms: Arc<std::sync::Mutex<Vec<i128>>>,
}

impl Probe {
    fn task(&self, work: Duration) -> Task {
        let probe = self.clone();
        Task::new(move |cx: TaskContext| {
            if let Trigger::Schedule { scheduled_at, .. } = cx.trigger() {
                let late = Timestamp::now().duration_since(*scheduled_at).as_millis();
                probe.late_ms.lock().expect("lock").push(late);
            }
            let probe = probe.clone();
            async move {
                probe.runs.fetch_add(1, Ordering::SeqCst);
                let now = probe.active.fetch_add(1, Ordering::SeqCst) + 1;
                probe.peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(work).await;
                probe.active.fetch_sub(1, Ordering::SeqCst);
                let scheduled_at = match cx.trigger() {
                    Trigger::Schedule { scheduled_at, .. } => Some(scheduled_at.to_string()),
                    _ => None,
                };
                Ok::<_, TaskError>(json!({ "scheduled_at": scheduled_at }))
            }
        })
    }

    fn runs(&self) -> usize {
        self.runs.load(Ordering::SeqCst)
    }
}

struct Fixture {
    app: RunningApp,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

async fn start(app: App) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("logs/schedule.log");
    let app = app
        .store(StoreConfig::Memory)
        .schedule_log(Some(log.clone()))
        .shutdown_grace(Duration::from_millis(200))
        .start()
        .await
        .expect("app starts");
    Fixture { app, log, _dir: dir }
}

async fn schedule_runs(app: &RunningApp, task: &str) -> Vec<RunRecord> {
    let mut runs = app
        .runtime()
        .list_runs(&RunFilter::default().task(task).limit(1000))
        .await
        .expect("runs");
    runs.reverse();
    runs
}

fn scheduled_at(run: &RunRecord) -> Timestamp {
    match &run.trigger {
        Trigger::Schedule { scheduled_at, .. } => *scheduled_at,
        other => panic!("not a schedule trigger: {other:?}"),
    }
}

async fn log_lines(fixture: Fixture) -> Vec<String> {
    let Fixture { app, log, _dir } = fixture;
    app.shutdown().await;
    std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interval_ticks_fall_on_multiples_and_run_on_time() {
    let probe = Probe::default();
    let fixture = start(
        App::new()
            .task("tick", probe.task(Duration::ZERO))
            .schedule("every-100ms", Schedule::worker().interval("100ms").task("tick")),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(650)).await;
    // Stop the ticks and let the last run end, so that the history read below is settled.
    fixture
        .app
        .scheduler()
        .pause("every-100ms")
        .await
        .expect("paused");
    let mut runs = schedule_runs(&fixture.app, "tick").await;
    for _ in 0..100 {
        if runs.iter().all(|run| run.status.is_final()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        runs = schedule_runs(&fixture.app, "tick").await;
    }
    assert!((5..=7).contains(&runs.len()), "{} runs in 650 ms", runs.len());
    for run in &runs {
        let due = scheduled_at(run);
        assert_eq!(
            due.as_millisecond() % 100,
            0,
            "tick {due} is a multiple of 100 ms"
        );
        let late = run.started_at.expect("started").as_millisecond() - due.as_millisecond();
        assert!((0..50).contains(&late), "run started {late} ms after its tick");
        assert!(matches!(&run.trigger, Trigger::Schedule { schedule, .. } if schedule == "every-100ms"));
        assert_eq!(run.status, RunStatus::Succeeded);
    }
    let lines = log_lines(fixture).await;
    for event in ["trigger", "start", "succeeded"] {
        assert!(
            lines
                .iter()
                .any(|l| l.contains(&format!(" {event} schedule=every-100ms"))),
            "a `{event}` line in {lines:#?}"
        );
    }
    assert!(lines.iter().any(|l| l.contains("duration_ms=")), "{lines:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_between_milliseconds_still_fires_once_per_tick() {
    // Timers keep whole milliseconds: a tick between two of them must neither fire early
    // nor be found again when the schedule is re-armed after it. Without a store there is
    // no ledger to drop a repeated tick, so each repeat would run.
    let seen = Arc::new(std::sync::Mutex::new(Vec::<(Timestamp, Timestamp)>::new()));
    let task = {
        let seen = seen.clone();
        Task::new(move |cx: TaskContext| {
            let started = Timestamp::now();
            let seen = seen.clone();
            async move {
                if let Trigger::Schedule { scheduled_at, .. } = cx.trigger() {
                    seen.lock().expect("lock").push((*scheduled_at, started));
                }
                Ok::<_, TaskError>(())
            }
        })
        .concurrency(taskyard::Concurrency::Parallel(64))
    };
    let first = Timestamp::now() + Duration::from_micros(20_300);
    let app = App::new()
        .task("tick", task)
        .schedule(
            "sub-ms",
            Schedule::worker()
                .interval("100ms")
                .start(first)
                .overlap(Overlap::Allow)
                .task("tick"),
        )
        .store(StoreConfig::Disabled)
        .schedule_log(None)
        .start()
        .await
        .expect("app starts");
    tokio::time::sleep(Duration::from_millis(560)).await;
    app.shutdown().await;
    let seen = seen.lock().expect("lock").clone();
    assert!(
        (5..=6).contains(&seen.len()),
        "{} runs in 560 ms: {seen:?}",
        seen.len()
    );
    let mut ticks: Vec<Timestamp> = seen.iter().map(|(tick, _)| *tick).collect();
    ticks.dedup();
    assert_eq!(ticks.len(), seen.len(), "each tick once: {seen:?}");
    for (tick, started) in &seen {
        assert!(started >= tick, "never early: {tick} started {started}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlap_skip_queue_and_allow() {
    let (skip, queue, allow) = (Probe::default(), Probe::default(), Probe::default());
    let fixture = start(
        App::new()
            .task("skip", skip.task(Duration::from_millis(230)))
            .task("queue", queue.task(Duration::from_millis(130)))
            .task(
                "allow",
                allow
                    .task(Duration::from_millis(230))
                    .concurrency(Concurrency::Parallel(10)),
            )
            .schedule("skip", Schedule::worker().interval("100ms").task("skip"))
            .schedule(
                "queue",
                Schedule::worker()
                    .interval("100ms")
                    .overlap(Overlap::Queue)
                    .task("queue"),
            )
            .schedule(
                "allow",
                Schedule::worker()
                    .interval("100ms")
                    .overlap(Overlap::Allow)
                    .task("allow"),
            ),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1050)).await;
    let (skip_runs, queue_runs, allow_runs) = (skip.runs(), queue.runs(), allow.runs());
    let lines = log_lines(fixture).await;
    // skip: a 230 ms run spans two later ticks, which are skipped.
    assert_eq!(skip.peak.load(Ordering::SeqCst), 1);
    assert!((3..=5).contains(&skip_runs), "skip ran {skip_runs} times");
    assert!(
        lines.iter().any(|l| l.contains(" skipped schedule=skip")),
        "{lines:#?}"
    );
    // queue: never two at once, no tick dropped (10 ticks of 130 ms work → ~8 done in time).
    assert_eq!(queue.peak.load(Ordering::SeqCst), 1);
    assert!(queue_runs >= 7, "queue ran {queue_runs} times");
    assert!(!lines.iter().any(|l| l.contains(" skipped schedule=queue")));
    // allow: runs pile up.
    assert!(
        allow.peak.load(Ordering::SeqCst) >= 2,
        "allow peak {}",
        allow.peak.load(Ordering::SeqCst)
    );
    assert!(allow_runs >= 9, "allow ran {allow_runs} times");
}

/// Without a store or a schedule log, ticks due together are taken in place by their
/// dispatch: a run that goes on must not hold up the ticks after it, and `skip` must hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_store_ticks_due_together_start_on_time_while_runs_go_on_and_skip_holds() {
    const SCHEDULES: usize = 20;
    let probes: Vec<Probe> = (0..SCHEDULES).map(|_| Probe::default()).collect();
    let mut app = App::new().store(StoreConfig::Disabled).schedule_log(None);
    for (i, probe) in probes.iter().enumerate() {
        app = app
            .task(&format!("t{i}"), probe.task(Duration::from_millis(250)))
            .schedule(
                &format!("s{i}"),
                Schedule::worker().interval("100ms").task(format!("t{i}")),
            );
    }
    let running = app.start().await.expect("app starts");
    tokio::time::sleep(Duration::from_millis(1050)).await;
    running.shutdown().await;
    let late: Vec<i128> = probes
        .iter()
        .flat_map(|probe| probe.late_ms.lock().expect("lock").clone())
        .collect();
    // Every schedule's runs last 250 ms: taken one after the other by the dispatch, the
    // last of 20 due together would start seconds late.
    assert!(late.len() >= SCHEDULES * 3, "{} runs", late.len());
    let worst = late.iter().max().copied().unwrap_or_default();
    assert!(worst < 80, "a run started {worst} ms after its tick: {late:?}");
    for probe in &probes {
        // skip: a 250 ms run spans two later ticks, which are skipped.
        assert_eq!(probe.peak.load(Ordering::SeqCst), 1);
        assert!((3..=5).contains(&probe.runs()), "ran {} times", probe.runs());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn immediate_alone_runs_once_and_with_an_interval_runs_at_start_too() {
    let (once, also) = (Probe::default(), Probe::default());
    let started = Timestamp::now();
    let fixture = start(
        App::new()
            .task("once", once.task(Duration::ZERO))
            .task("also", also.task(Duration::ZERO))
            .schedule("once", Schedule::worker().immediate(true).task("once"))
            .schedule(
                "also",
                Schedule::worker().interval("1h").immediate(true).task("also"),
            ),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(once.runs(), 1);
    assert_eq!(also.runs(), 1);
    let run = &schedule_runs(&fixture.app, "also").await[0];
    assert!(scheduled_at(run) >= started);
    let info = fixture.app.scheduler().get("once").expect("listed");
    assert_eq!(info.next, None, "immediate alone has no next tick");
    assert!(
        fixture
            .app
            .scheduler()
            .get("also")
            .expect("listed")
            .next
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_and_other_env_schedules_do_not_fire() {
    let (disabled, other_env) = (Probe::default(), Probe::default());
    let fixture = start(
        App::new()
            .task("disabled", disabled.task(Duration::ZERO))
            .task("other-env", other_env.task(Duration::ZERO))
            .schedule(
                "disabled",
                Schedule::worker()
                    .interval("50ms")
                    .immediate(true)
                    .disable(true)
                    .task("disabled"),
            )
            .schedule(
                "prod-only",
                Schedule::worker()
                    .interval("50ms")
                    .env(["production"])
                    .task("other-env"),
            ),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        disabled.runs(),
        0,
        "a disabled schedule never fires, not even `immediate`"
    );
    assert_eq!(other_env.runs(), 0, "tests run in the development environment");
    let scheduler = fixture.app.scheduler();
    assert!(scheduler.get("disabled").expect("registered").disabled);
    assert!(matches!(
        scheduler.get("prod-only"),
        Err(Error::ScheduleNotFound(_))
    ));

    // run_schedule ignores `disable` and returns the result.
    let result = fixture.app.run_schedule("disabled").await.expect("runs");
    assert!(result["scheduled_at"].is_string(), "{result}");
    assert_eq!(disabled.runs(), 1);
    let missing = fixture
        .app
        .run_schedule("prod-only")
        .await
        .expect_err("filtered out");
    assert_eq!(missing.to_string(), "Schedule `prod-only` is not defined");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_are_added_paused_resumed_and_removed_at_runtime() {
    let probe = Probe::default();
    let fixture = start(App::new().task("tick", probe.task(Duration::ZERO))).await;
    let scheduler = fixture.app.scheduler().clone();
    let settle = || tokio::time::sleep(Duration::from_millis(60));

    scheduler
        .add("live", Schedule::worker().interval("40ms").task("tick"))
        .expect("added");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after_add = probe.runs();
    assert!(after_add >= 5, "{after_add} runs after adding");

    scheduler.pause("live").await.expect("paused");
    settle().await;
    let paused_at = probe.runs();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(probe.runs(), paused_at, "no tick while paused");
    assert!(scheduler.get("live").expect("listed").paused);

    scheduler.resume("live").await.expect("resumed");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(probe.runs() >= paused_at + 5, "ticks again after resume");

    scheduler.remove("live").expect("removed");
    settle().await;
    let removed_at = probe.runs();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(probe.runs(), removed_at, "no tick after removal");
    assert!(matches!(
        scheduler.remove("live"),
        Err(Error::ScheduleNotFound(_))
    ));

    let invalid = scheduler
        .add("bad", Schedule::worker().interval("0ms").task("tick"))
        .expect_err("rejected");
    assert!(invalid.to_string().contains("must be positive"), "{invalid}");
}

/// The ticks due before the app was started run since `restarted_at`, sorted, once
/// `expected` of them are recorded (or after 5 s), plus a moment for any extra one to show
/// up. "Started" is when `start` returned: a tick that fell due while the app was starting
/// is a missed one too (the timer arms after catch-up, from the instant catch-up looked).
async fn caught_up_runs(
    app: &RunningApp,
    restarted_at: Timestamp,
    started: Timestamp,
    expected: usize,
) -> Vec<Timestamp> {
    let read = || async {
        let mut ticks: Vec<Timestamp> = schedule_runs(app, "tick")
            .await
            .iter()
            .filter(|run| run.queued_at >= restarted_at && scheduled_at(run) < started)
            .map(scheduled_at)
            .collect();
        ticks.sort();
        ticks
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while read().await.len() < expected && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    read().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catch_up_once_and_all_after_downtime() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = StoreConfig::Sqlite(dir.path().join("taskyard.db"));
    let app = |probe: &Probe, catch_up: CatchUp| {
        App::new()
            .task("tick", probe.task(Duration::ZERO))
            .schedule(
                "beat",
                Schedule::worker()
                    .interval("200ms")
                    .catch_up(catch_up)
                    .task("tick"),
            )
            .store(store.clone())
            .schedule_log(None)
    };
    // First life: a few ticks go into the ledger.
    let first = Probe::default();
    let running = app(&first, CatchUp::Skip).start().await.expect("starts");
    tokio::time::sleep(Duration::from_millis(450)).await;
    running.shutdown().await;
    assert!(first.runs() >= 1);

    // Down for ~1 s: about 5 ticks are missed.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let once = Probe::default();
    let restarted_at = Timestamp::now();
    let running = app(&once, CatchUp::Once).start().await.expect("starts");
    let started = Timestamp::now();
    let caught_up = caught_up_runs(&running, restarted_at, started, 1).await;
    assert_eq!(caught_up.len(), 1, "`once` runs one missed tick");
    running.shutdown().await;

    tokio::time::sleep(Duration::from_millis(1000)).await;
    let all = Probe::default();
    let restarted_at = Timestamp::now();
    let running = app(&all, CatchUp::All(3)).start().await.expect("starts");
    let started = Timestamp::now();
    let caught_up = caught_up_runs(&running, restarted_at, started, 3).await;
    assert_eq!(
        caught_up.len(),
        3,
        "`all(3)` runs the 3 latest missed ticks: {caught_up:?}"
    );
    assert!(
        caught_up
            .windows(2)
            .all(|w| w[1].as_millisecond() - w[0].as_millisecond() == 200)
    );
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_timers_and_cancels_runs_after_the_grace_period() {
    let probe = Probe::default();
    let fixture = start(
        App::new()
            .task("slow", probe.task(Duration::from_secs(30)))
            .schedule("slow", Schedule::worker().interval("100ms").task("slow")),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(probe.runs(), 1, "later ticks are skipped while the first runs");
    let runtime = fixture.app.runtime().clone();
    let started = std::time::Instant::now();
    let lines = log_lines(fixture).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shutdown took {:?}",
        started.elapsed()
    );
    let runs = runtime
        .list_runs(&RunFilter::default().task("slow"))
        .await
        .expect("runs");
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, RunStatus::Cancelled);
    assert!(
        lines.iter().any(|l| l.contains(" failed schedule=slow")),
        "{lines:#?}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(probe.runs(), 1, "no tick after shutdown");
}

#[tokio::test]
async fn invalid_definitions_stop_the_start() {
    let noop = || Task::new(|_cx: TaskContext| async { Ok::<_, TaskError>(()) });
    let start_error = |app: App| async move {
        app.store(StoreConfig::Disabled)
            .start()
            .await
            .err()
            .expect("refused")
            .to_string()
    };
    assert_eq!(
        start_error(
            App::new()
                .task("t", noop())
                .schedule("s", Schedule::new("cluster").interval("1s").task("t"))
        )
        .await,
        "Invalid schedule `s`: schedule type [cluster] is not defined; use one of: worker, all"
    );
    let nitro = start_error(App::new().config_toml(
        "taskyard.toml",
        "[scheduled_tasks]\n\"* * * * *\" = [\"cms:update\"]",
    ))
    .await;
    assert_eq!(
        nitro,
        "Invalid schedule `cms:update@* * * * *`: task `cms:update` is not defined; define it under src/tasks/ or with App::task"
    );
    let twice = start_error(
        App::new()
            .task("t", noop())
            .schedule("s", Schedule::worker().interval("1s").task("t"))
            .config_toml(
                "taskyard.toml",
                "[schedules.s]\ntype = \"all\"\ninterval = 1000\ntask = \"t\"",
            ),
    )
    .await;
    assert!(twice.contains("defined twice"), "{twice}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_with_its_own_body_runs_it_as_a_task() {
    let fixture = start(
        App::new().schedule(
            "cleandb",
            Schedule::worker()
                .cron("0 0 3 * * *")
                .run(Task::new(|_cx: TaskContext| async {
                    Ok::<_, TaskError>("cleaned")
                })),
        ),
    )
    .await;
    let result: Value = fixture.app.run_schedule("cleandb").await.expect("runs");
    assert_eq!(result, json!("cleaned"));
    let info = fixture.app.scheduler().get("cleandb").expect("listed");
    assert_eq!(info.task, "schedule:cleandb");
    assert_eq!(info.cron.as_deref(), Some("0 0 3 * * *"));
    let next = info.next.expect("next tick");
    assert_eq!(next.to_zoned(jiff::tz::TimeZone::UTC).hour(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disable_signal_stops_and_starts_the_schedule_at_runtime() {
    let probe = Probe::default();
    let off = taskyard::Signal::new(true);
    let fixture = start(App::new().task("tick", probe.task(Duration::ZERO)).schedule(
        "flagged",
        Schedule::worker().interval("40ms").disable(&off).task("tick"),
    ))
    .await;
    let scheduler = fixture.app.scheduler().clone();
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(probe.runs(), 0, "disabled by the signal from the start");
    assert!(scheduler.get("flagged").expect("listed").disabled);

    off.set(false);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let enabled = probe.runs();
    assert!(enabled >= 4, "{enabled} runs once the signal turned false");
    let info = scheduler.get("flagged").expect("listed");
    assert!(!info.disabled && info.next.is_some(), "{info:?}");

    off.set(true);
    tokio::time::sleep(Duration::from_millis(60)).await;
    let stopped = probe.runs();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(probe.runs(), stopped, "no tick once disabled again");
    assert!(scheduler.get("flagged").expect("listed").next.is_none());

    // Pause and disable are independent: enabling a paused schedule keeps it paused.
    scheduler.pause("flagged").await.expect("paused");
    off.set(false);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(probe.runs(), stopped, "still paused");
    scheduler.resume("flagged").await.expect("resumed");
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(probe.runs() >= stopped + 3, "ticks after resume");

    // A clone of the scheduler kept by the app does not hold the shutdown up.
    let lines = log_lines(fixture).await;
    drop(scheduler);
    assert!(
        lines.iter().any(|l| l.contains(" enabled schedule=flagged")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.contains(" disabled schedule=flagged")),
        "{lines:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_strategy_sends_args_to_the_task_and_stops_with_its_schedule() {
    use taskyard::schedule::StrategySender;
    use tokio::sync::{Mutex, mpsc};

    let (events, inbox) = mpsc::unbounded_channel::<Value>();
    let inbox = Arc::new(Mutex::new(inbox));
    let (senders_tx, mut senders) = mpsc::unbounded_channel::<StrategySender>();
    let starts = Arc::new(AtomicUsize::new(0));
    let seen_args = Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
    let off = taskyard::Signal::new(false);
    let fixture = start(
        App::new()
            .task("ship", {
                let seen_args = seen_args.clone();
                Task::new(move |cx: TaskContext| {
                    let seen_args = seen_args.clone();
                    async move {
                        let Trigger::Custom {
                            strategy,
                            schedule,
                            args,
                        } = cx.trigger()
                        else {
                            return Err(TaskError::new(format!("unexpected trigger {:?}", cx.trigger())));
                        };
                        assert_eq!((strategy.as_str(), schedule.as_str()), ("orders", "ship"));
                        seen_args.lock().expect("lock").push(args.clone());
                        Ok::<_, TaskError>(json!({ "shipped": args["order"] }))
                    }
                })
                // Every message is its own run (the default, `dedupe`, would let a send
                // join a run still going).
                .concurrency(Concurrency::Serial)
            })
            .strategy("orders", {
                let starts = starts.clone();
                move |sender: StrategySender| {
                    let inbox = inbox.clone();
                    let senders_tx = senders_tx.clone();
                    starts.fetch_add(1, Ordering::SeqCst);
                    async move {
                        let _ = senders_tx.send(sender.clone());
                        while let Some(event) = inbox.lock().await.recv().await {
                            let run = sender.send_one(event).await.expect("send");
                            run.outcome().await.expect("shipped");
                        }
                    }
                }
            })
            .schedule(
                "ship",
                Schedule::custom("orders")
                    .option("queue", json!("orders.created"))
                    .disable(&off)
                    .task("ship"),
            ),
    )
    .await;
    let sender = senders.recv().await.expect("strategy started");
    assert_eq!(sender.schedule(), "ship");
    assert_eq!(sender.strategy(), "orders");
    assert_eq!(sender.options(), &json!({ "queue": "orders.created" }));

    events.send(json!({ "order": 1 })).expect("send");
    events.send(json!({ "order": 2 })).expect("send");
    let result = sender
        .send_one(json!({ "order": 3 }))
        .await
        .expect("direct send")
        .outcome()
        .await
        .expect("ok");
    assert_eq!(result, json!({ "shipped": 3 }));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut orders: Vec<i64> = seen_args
        .lock()
        .expect("lock")
        .iter()
        .map(|args| args["order"].as_i64().expect("order"))
        .collect();
    orders.sort();
    assert_eq!(orders, [1, 2, 3]);
    let runs = schedule_runs(&fixture.app, "ship").await;
    assert_eq!(runs.len(), 3);
    assert!(runs.iter().all(|run| run.trigger.kind() == "custom"));

    // Paused: sends are refused, naming why.
    let scheduler = fixture.app.scheduler().clone();
    scheduler.pause("ship").await.expect("paused");
    let refused = sender.send_one(json!({})).await.expect_err("paused");
    assert_eq!(
        refused.to_string(),
        "Schedule `ship` is paused; the send was dropped"
    );
    scheduler.resume("ship").await.expect("resumed");

    // Disabled: the strategy stops; enabled again: it starts anew.
    off.set(true);
    tokio::time::timeout(Duration::from_secs(2), sender.closed())
        .await
        .expect("closed on disable");
    assert!(sender.send_one(json!({})).await.is_err());
    off.set(false);
    let restarted = tokio::time::timeout(Duration::from_secs(2), senders.recv())
        .await
        .expect("restarted")
        .expect("sender");
    assert_eq!(starts.load(Ordering::SeqCst), 2);

    // Removed: closed for good.
    scheduler.remove("ship").expect("removed");
    tokio::time::timeout(Duration::from_secs(2), restarted.closed())
        .await
        .expect("closed on removal");
    let gone = restarted.send_one(json!({})).await.expect_err("removed");
    assert!(matches!(gone, Error::ScheduleInactive { .. }), "{gone}");
    let lines = log_lines(fixture).await;
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" trigger schedule=ship origin=send_one")),
        "{lines:?}"
    );
}

#[tokio::test]
async fn strategies_must_have_new_names_and_schedules_must_name_a_known_one() {
    let noop = |_sender: taskyard::schedule::StrategySender| async {};
    let taken = App::new()
        .strategy("worker", noop)
        .store(StoreConfig::Memory)
        .start()
        .await
        .err()
        .expect("refused");
    assert!(
        taken.to_string().contains("strategy `worker` is already defined"),
        "{taken}"
    );
    let unknown = App::new()
        .task(
            "t",
            Task::new(|_cx: TaskContext| async { Ok::<_, TaskError>(()) }),
        )
        .strategy("orders", noop)
        .schedule("s", Schedule::custom("order").task("t"))
        .store(StoreConfig::Memory)
        .start()
        .await
        .err()
        .expect("refused");
    assert_eq!(
        unknown.to_string(),
        "Invalid schedule `s`: schedule type [order] is not defined; use one of: worker, all, orders"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nitro_form_schedules_pass_the_tick_as_scheduled_time() {
    let echo = Task::new(|cx: TaskContext| async move { Ok::<_, TaskError>(cx.payload().clone()) });
    let fixture = start(
        App::new()
            .config_toml("taskyard.toml", "[scheduled_tasks]\n\"* * * * * *\" = \"echo\"\n")
            .task("echo", echo),
    )
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let run = loop {
        let runs = schedule_runs(&fixture.app, "echo").await;
        if let Some(run) = runs.into_iter().find(|run| run.status == RunStatus::Succeeded) {
            break run;
        }
        assert!(tokio::time::Instant::now() < deadline, "no tick ran within 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let tick = scheduled_at(&run).as_millisecond();
    assert_eq!(run.payload, json!({ "scheduledTime": tick }));
    assert_eq!(run.result, Some(json!({ "scheduledTime": tick })));
    assert_eq!(tick % 1000, 0, "a whole second: the tick, not the time it ran");
    fixture.app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_schedule_with_passes_arguments_and_an_ended_schedule_says_so_once() {
    let echo = Task::new(|cx: TaskContext| async move { Ok::<_, TaskError>(cx.payload().clone()) });
    let end = Timestamp::now() + jiff::SignedDuration::from_millis(600);
    let fixture = start(
        App::new().task("echo", echo).schedule(
            "short",
            Schedule::worker()
                .interval("100ms")
                .end(end)
                .payload(json!({ "own": true }))
                .task("echo"),
        ),
    )
    .await;
    // egg's `app.runSchedule(name, ...args)`: the arguments are the run's payload.
    let result = fixture
        .app
        .run_schedule_with("short", json!(["a", 2]))
        .await
        .expect("runs");
    assert_eq!(result, json!(["a", 2]));
    let own = fixture.app.run_schedule("short").await.expect("runs");
    assert_eq!(own, json!({ "own": true }));

    tokio::time::sleep(Duration::from_millis(1200)).await;
    let runs = schedule_runs(&fixture.app, "echo").await;
    assert!(
        runs.iter().all(|run| scheduled_at(run) <= end),
        "no tick after the end"
    );
    let lines = log_lines(fixture).await;
    let ended: Vec<&String> = lines.iter().filter(|line| line.contains(" ended ")).collect();
    assert_eq!(ended.len(), 1, "{lines:#?}");
    assert!(ended[0].contains("schedule=short"), "{}", ended[0]);
    assert!(ended[0].contains("will stop"), "{}", ended[0]);
}
