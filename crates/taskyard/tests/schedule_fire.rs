//! Ticks fired from outside, as a platform's scheduler fires them (`Scheduler::fire`,
//! `POST|GET /_tasks/schedules/NAME/tick`): on SQLite and PostgreSQL, two instances firing
//! the same tick start one run; a second fire, a pause, a `start` to come and a time that is no tick
//! each start nothing, and say so.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::durable_backends;
use common::http::{call, serve_on_store};
use jiff::Timestamp;
use taskyard::schedule::{Fired, Schedule, TickAt};
use taskyard::{App, Error, RunStatus, RunningApp, StoreConfig, Task, TaskContext, TaskError};

fn app(runs: Arc<AtomicUsize>) -> App {
    App::new()
        .time_zone("UTC")
        .shutdown_grace(Duration::from_millis(300))
        .task(
            "db:backup",
            Task::new(move |_cx: TaskContext| {
                let runs = runs.clone();
                async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, TaskError>("backed up")
                }
            }),
        )
        // Midnight only: the app's own timers stay quiet during the test.
        .schedule("nightly", Schedule::worker().cron("0 0 * * *").task("db:backup"))
        .schedule(
            "later",
            Schedule::worker()
                .cron("0 0 * * *")
                .start(Timestamp::now() + jiff::SignedDuration::from_hours(48))
                .task("db:backup"),
        )
}

async fn start(store: StoreConfig, runs: Arc<AtomicUsize>) -> RunningApp {
    app(runs).store(store).start().await.expect("app starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tick_fired_on_two_instances_runs_once() {
    for backend in durable_backends().await {
        let runs = Arc::new(AtomicUsize::new(0));
        let a = start(backend.config(), runs.clone()).await;
        let b = start(backend.config(), runs.clone()).await;
        let tick: Timestamp = "2026-11-30T00:00:00Z".parse().expect("instant");
        let (first, second) = tokio::join!(
            a.scheduler().fire("nightly", TickAt::At(tick)),
            b.scheduler().fire("nightly", TickAt::At(tick)),
        );
        let mut started = 0;
        for fired in [first.expect("fires"), second.expect("fires")] {
            match fired {
                Fired::Started { tick: at, handle } => {
                    assert_eq!(at, tick);
                    assert_eq!(handle.outcome().await.expect("succeeds"), "backed up");
                    started += 1;
                }
                Fired::Claimed { tick: at } => assert_eq!(at, tick),
                other => panic!("{}: {other:?}", backend.name),
            }
        }
        assert_eq!(started, 1, "{}", backend.name);
        assert_eq!(runs.load(Ordering::SeqCst), 1, "{}", backend.name);
        // A duplicate fire later, on either instance, starts nothing.
        let again = a
            .scheduler()
            .fire("nightly", TickAt::At(tick))
            .await
            .expect("fires");
        assert!(matches!(again, Fired::Claimed { .. }), "{again:?}");
        // The latest tick due now, once.
        let auto = b.scheduler().fire("nightly", TickAt::Auto).await.expect("fires");
        let Fired::Started { tick: latest, handle } = auto else {
            panic!("{}: {auto:?}", backend.name)
        };
        assert!(
            latest <= Timestamp::now()
                && Timestamp::now().duration_since(latest) < jiff::SignedDuration::from_hours(24)
        );
        assert_eq!(latest.as_second() % 86_400, 0);
        handle.outcome().await.expect("succeeds");
        let auto_again = a.scheduler().fire("nightly", TickAt::Auto).await.expect("fires");
        assert!(
            matches!(auto_again, Fired::Claimed { tick } if tick == latest),
            "{auto_again:?}"
        );
        // A time that is no tick is refused, naming the next one.
        let wrong = a
            .scheduler()
            .fire(
                "nightly",
                TickAt::At("2026-11-30T00:00:01Z".parse().expect("instant")),
            )
            .await
            .expect_err("no tick");
        assert!(
            wrong
                .to_string()
                .contains("is not one of its ticks (the next one from then: 2026-12-01T00:00:00Z)"),
            "{wrong}"
        );
        // Paused through one instance: the other's fire starts nothing.
        a.scheduler().pause("nightly").await.expect("pauses");
        let paused = b
            .scheduler()
            .fire(
                "nightly",
                TickAt::At("2026-11-29T00:00:00Z".parse().expect("instant")),
            )
            .await
            .expect("fires");
        assert!(
            matches!(paused, Fired::Inactive { state: "paused", .. }),
            "{paused:?}"
        );
        // Before its start, nothing is due.
        let later = a.scheduler().fire("later", TickAt::Auto).await.expect("fires");
        assert!(matches!(later, Fired::NoTick), "{later:?}");
        assert!(matches!(
            a.scheduler().fire("nope", TickAt::Auto).await,
            Err(Error::ScheduleNotFound(_))
        ));
        assert_eq!(runs.load(Ordering::SeqCst), 2, "{}", backend.name);
        a.shutdown().await;
        b.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tick_endpoint_claims_once_and_refuses_bad_input() {
    let backend = common::sqlite();
    let runs = Arc::new(AtomicUsize::new(0));
    let served = serve_on_store(app(runs.clone()), None, backend.config()).await;
    let url = |query: &str| served.url(&format!("/_tasks/schedules/nightly/tick{query}"));
    // Cloudflare's form: POST with the tick's time in Unix milliseconds.
    let ms = "2026-11-30T00:00:00Z"
        .parse::<Timestamp>()
        .expect("instant")
        .as_millisecond();
    let first = call("POST", url(&format!("?at={ms}")), None, &[]).await;
    assert_eq!(first.status, 202, "{}", first.text);
    let body = first.json();
    assert_eq!(body["status"], "started");
    assert_eq!(body["tick"], "2026-11-30T00:00:00Z");
    assert!(body["run_id"].is_string());
    let second = call("POST", url("?at=2026-11-30T00:00:00Z"), None, &[]).await;
    assert_eq!(second.status, 200, "{}", second.text);
    assert_eq!(second.json()["status"], "claimed");
    // Vercel's form: GET, the latest tick due now.
    let auto = call("GET", url(""), None, &[]).await;
    assert_eq!(auto.status, 202, "{}", auto.text);
    let again = call("GET", url("?at=auto"), None, &[]).await;
    assert_eq!(again.json()["status"], "claimed", "{}", again.text);
    let bad = call("POST", url("?at=tomorrow"), None, &[]).await;
    assert_eq!(bad.status, 400, "{}", bad.text);
    assert!(
        bad.text.contains("the tick `tomorrow` is not `auto`"),
        "{}",
        bad.text
    );
    let missing = call("POST", served.url("/_tasks/schedules/nope/tick"), None, &[]).await;
    assert_eq!(missing.status, 404, "{}", missing.text);
    for _ in 0..50 {
        if runs.load(Ordering::SeqCst) == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    served.stop().await;
}

/// Ticks of one `queue` schedule fired one after another on one instance take their turns
/// in order: a fire answers once its run has started, and the next tick waits until that
/// run has ended, its runs in process or durable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_ticks_fired_one_after_another_run_one_at_a_time() {
    for backend in durable_backends().await {
        for durable in [false, true] {
            let name = format!("{}, durable {durable}", backend.name);
            let (task, peak) = overlap_counted();
            let schedule = format!("rollup-{durable}");
            let running = App::new()
                .time_zone("UTC")
                .store(backend.config())
                .schedule_log(None)
                .shutdown_grace(Duration::from_millis(300))
                .task("rollup", task)
                .schedule(
                    &schedule,
                    Schedule::worker()
                        .cron("0 0 * * *")
                        .overlap(taskyard::schedule::Overlap::Queue)
                        .durable(durable)
                        .task("rollup"),
                )
                .start()
                .await
                .expect("app starts");
            let mut handles = Vec::new();
            for day in 10..13 {
                let tick: Timestamp = format!("2026-11-{day}T00:00:00Z").parse().expect("instant");
                let fired = running
                    .scheduler()
                    .fire(&schedule, TickAt::At(tick))
                    .await
                    .expect("fires");
                let Fired::Started { handle, .. } = fired else {
                    panic!("{name}: day {day}: {fired:?}")
                };
                handles.push(handle);
            }
            for handle in handles {
                handle.outcome().await.expect("succeeds");
            }
            assert_eq!(peak.load(Ordering::SeqCst), 1, "{name}: runs overlapped");
            running.shutdown().await;
        }
    }
}

/// Two ticks of one `skip` schedule fired at once on one instance: one starts, the other
/// finds it starting or going and is skipped, whichever came to its turn first. Each fire
/// awaits the store between its overlap check and its run's start, so the check and the
/// start must be one step for the schedule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_ticks_fired_at_once_on_one_instance_start_one_run_under_skip() {
    for backend in durable_backends().await {
        let (task, peak) = overlap_counted();
        let running = App::new()
            .time_zone("UTC")
            .store(backend.config())
            // Yesterday's midnight still counts as on time: no tick here was taken over.
            .worker_grace(Duration::from_secs(3 * 86_400))
            .shutdown_grace(Duration::from_millis(300))
            .task("db:vacuum", task)
            .schedule("vacuum", Schedule::worker().cron("0 0 * * *").task("db:vacuum"))
            .start()
            .await
            .expect("app starts");
        let today = Timestamp::now().as_second() / 86_400 * 86_400;
        let midnight = |day: i64| TickAt::At(Timestamp::from_second(today - day * 86_400).expect("instant"));
        let scheduler = running.scheduler();
        let (older, newer) = tokio::join!(
            scheduler.fire("vacuum", midnight(1)),
            scheduler.fire("vacuum", midnight(0)),
        );
        let mut started = Vec::new();
        let mut skipped = 0;
        for fired in [older.expect("fires"), newer.expect("fires")] {
            match fired {
                Fired::Started { handle, .. } => started.push(handle),
                Fired::Skipped { .. } => skipped += 1,
                other => panic!("{}: {other:?}", backend.name),
            }
        }
        assert_eq!((started.len(), skipped), (1, 1), "{}", backend.name);
        for handle in started {
            handle.outcome().await.expect("succeeds");
        }
        assert_eq!(peak.load(Ordering::SeqCst), 1, "{}", backend.name);
        running.shutdown().await;
    }
}

/// A durable `skip` schedule asks its overlap policy before it claims: a tick fired while
/// an earlier tick's run goes on in the cluster (here on this very instance, started
/// without this schedule's entry knowing it, as a run another instance enqueued and this
/// one claimed would be) is skipped, and claimed, so that it never runs later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_tick_is_skipped_and_claimed_while_an_earlier_ticks_run_goes_on() {
    for backend in durable_backends().await {
        let name = backend.name;
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let held = gate.clone();
        let app = App::new()
            .time_zone("UTC")
            .store(backend.config())
            .schedule_log(None)
            .shutdown_grace(Duration::from_millis(300))
            // Ticks fired weeks late still count as on time: runs that began after them hold
            // them, as they hold a tick fired at its instant.
            .worker_grace(Duration::from_secs(365 * 86_400))
            .task(
                "report",
                Task::new(move |_cx: TaskContext| {
                    let gate = held.clone();
                    async move {
                        drop(gate.acquire().await);
                        Ok::<_, TaskError>("sent")
                    }
                }),
            )
            .schedule(
                "daily",
                Schedule::worker().cron("0 0 * * *").durable(true).task("report"),
            )
            .start()
            .await
            .expect("app starts");
        let tick = |day: u8| -> Timestamp { format!("2026-11-{day}T00:00:00Z").parse().expect("instant") };
        let first = app
            .runtime()
            .enqueue("report", serde_json::Value::Null)
            .trigger(taskyard::Trigger::Schedule {
                schedule: "daily".into(),
                scheduled_at: tick(10),
            })
            .await
            .expect("enqueued");
        until_status(&app, first, RunStatus::Running).await;
        let skipped = app
            .scheduler()
            .fire("daily", TickAt::At(tick(11)))
            .await
            .expect("fires");
        let Fired::Skipped { previous_run, .. } = skipped else {
            panic!("{name}: {skipped:?}")
        };
        assert_eq!(previous_run, first.to_string(), "{name}");
        let again = app
            .scheduler()
            .fire("daily", TickAt::At(tick(11)))
            .await
            .expect("fires");
        assert!(matches!(again, Fired::Claimed { .. }), "{name}: {again:?}");
        gate.add_permits(1);
        until_status(&app, first, RunStatus::Succeeded).await;
        // `get_run` answers from the run held here as soon as it ends; `skip` reads the
        // store, which has the end once the recorder wrote it.
        app.runtime()
            .flush_records()
            .await
            .expect("the end is in the store");
        let next = app
            .scheduler()
            .fire("daily", TickAt::At(tick(12)))
            .await
            .expect("fires");
        let Fired::Started { handle, .. } = next else {
            panic!("{name}: {next:?}")
        };
        gate.add_permits(1);
        assert_eq!(handle.outcome().await.expect("succeeds"), "sent", "{name}");
        let runs = app
            .runtime()
            .list_runs(&taskyard::RunFilter::default().schedule("daily"))
            .await
            .expect("list");
        assert_eq!(runs.len(), 2, "{name}: no run of the skipped tick: {runs:?}");
        app.shutdown().await;
    }
}

/// A durable `skip` schedule's ticks on one instance, each after the previous one's run
/// ended, all run, although nothing here awaits those runs (the schedule log is off): their
/// handles never learn of their ends, and `skip` reads the runs in the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_ticks_after_their_earlier_runs_ended_run_unawaited() {
    for backend in durable_backends().await {
        let name = backend.name;
        let app = App::new()
            .store(backend.config())
            .schedule_log(None)
            .shutdown_grace(Duration::from_millis(300))
            .task(
                "beat",
                Task::new(|_cx: TaskContext| async { Ok::<_, TaskError>("sent") }),
            )
            .schedule(
                "often",
                Schedule::worker().interval("250ms").durable(true).task("beat"),
            )
            .start()
            .await
            .expect("app starts");
        tokio::time::sleep(Duration::from_millis(2_000)).await;
        let runs = app
            .runtime()
            .list_runs(&taskyard::RunFilter::default().schedule("often"))
            .await
            .expect("list");
        assert!(
            runs.len() >= 5,
            "{name}: {} runs in 2 s of ticks every 250 ms",
            runs.len()
        );
        app.shutdown().await;
    }
}

/// A task whose runs take 400 ms, and the peak of its runs going at once.
fn overlap_counted() -> (Task, Arc<AtomicUsize>) {
    let going = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let counted = peak.clone();
    let task = Task::new(move |_cx: TaskContext| {
        let (going, peak) = (going.clone(), counted.clone());
        async move {
            peak.fetch_max(going.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(400)).await;
            going.fetch_sub(1, Ordering::SeqCst);
            Ok::<_, TaskError>(())
        }
    })
    .concurrency(taskyard::Concurrency::Parallel(4));
    (task, peak)
}

/// Waits (at most 10 s) until run `id` has `status`.
async fn until_status(app: &RunningApp, id: taskyard::RunId, status: RunStatus) {
    let began = std::time::Instant::now();
    while app
        .runtime()
        .get_run(id)
        .await
        .expect("read")
        .map(|run| run.status)
        != Some(status)
    {
        assert!(
            began.elapsed() < Duration::from_secs(10),
            "run {id} is not {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
