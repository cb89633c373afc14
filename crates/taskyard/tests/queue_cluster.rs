//! Durable tasks across instances: every way of starting a `.durable()` task goes through
//! the store, its concurrency holds across instances, its retries wait in the store, and a
//! cancel asked for through one instance reaches the run on another. Apps in this process
//! share one store as instances would (the tests with real processes are in
//! `queue_processes.rs`).

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::durable_backends;
use jiff::Timestamp;
use serde_json::{Value, json};
use taskyard::{
    App, Concurrency, Error, Retry, RunId, RunRecord, RunRequest, RunStatus, RunningApp, StoreConfig, Task,
    TaskContext, TaskError, Trigger,
};

/// A run's id, its instance, when it began and when it ended.
type Span = (RunId, &'static str, Timestamp, Timestamp);

/// When each run of a task began and ended, on which instance.
#[derive(Clone, Default)]
struct Spans(Arc<Mutex<Vec<Span>>>);

impl Spans {
    /// A durable task that takes `busy`, noting its span, and answers with its instance.
    fn task(&self, instance: &'static str, busy: Duration, concurrency: Concurrency) -> Task {
        let spans = self.clone();
        Task::new(move |cx: TaskContext| {
            let spans = spans.clone();
            async move {
                let began = Timestamp::now();
                tokio::time::sleep(busy).await;
                spans
                    .0
                    .lock()
                    .expect("spans")
                    .push((cx.run_id(), instance, began, Timestamp::now()));
                Ok::<_, TaskError>(json!({ "by": instance }))
            }
        })
        .concurrency(concurrency)
        .durable()
    }

    fn all(&self) -> Vec<Span> {
        self.0.lock().expect("spans").clone()
    }
}

async fn app(store: StoreConfig, name: &str, task: Task) -> RunningApp {
    App::new()
        .store(store)
        .task(name, task)
        .shutdown_grace(Duration::from_millis(300))
        .start()
        .await
        .expect("app starts")
}

/// Waits (at most 10 s) until `check` holds for the run's record, and returns it.
async fn until(app: &RunningApp, id: RunId, what: &str, check: impl Fn(&RunRecord) -> bool) -> RunRecord {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let run = app.runtime().get_run(id).await.expect("read").expect("stored");
        if check(&run) {
            return run;
        }
        assert!(
            Instant::now() < deadline,
            "run {id}: {what} not reached in 10 s: {run:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dedupe_task_has_one_run_across_instances_and_every_caller_gets_its_result() {
    for backend in durable_backends().await {
        let name = backend.name;
        let spans = Spans::default();
        let busy = Duration::from_millis(400);
        let a = app(
            backend.config(),
            "db:migrate",
            spans.task("a", busy, Concurrency::Dedupe),
        )
        .await;
        let b = app(
            backend.config(),
            "db:migrate",
            spans.task("b", busy, Concurrency::Dedupe),
        )
        .await;
        let mut calls = Vec::new();
        for i in 0..20 {
            let runtime = if i % 2 == 0 { a.runtime() } else { b.runtime() }.clone();
            calls.push(tokio::spawn(async move {
                let handle = runtime.start(RunRequest::new("db:migrate")).await.expect("start");
                let id = handle.run_id();
                (id, handle.outcome().await.expect("result"))
            }));
        }
        let mut results = Vec::new();
        for call in calls {
            results.push(call.await.expect("caller"));
        }
        let ran = spans.all();
        assert_eq!(ran.len(), 1, "{name}: one run for twenty callers: {ran:?}");
        let by = ran[0].1;
        for (id, result) in &results {
            assert_eq!(*id, ran[0].0, "{name}: every caller has the run's id");
            assert_eq!(*result, json!({ "by": by }), "{name}: and its result");
        }
        // `run_task` goes through the store too, and waits for the result.
        let result = b.runtime().run_task("db:migrate", json!({})).await.expect("run");
        assert!(result["by"].is_string(), "{name}: {result}");
        assert_eq!(spans.all().len(), 2, "{name}");
        a.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serial_task_never_runs_twice_at_once_across_instances() {
    for backend in durable_backends().await {
        let name = backend.name;
        let spans = Spans::default();
        let busy = Duration::from_millis(60);
        let a = app(
            backend.config(),
            "reindex",
            spans.task("a", busy, Concurrency::Serial),
        )
        .await;
        let b = app(
            backend.config(),
            "reindex",
            spans.task("b", busy, Concurrency::Serial),
        )
        .await;
        let mut handles = Vec::new();
        for i in 0..8 {
            let runtime = if i % 2 == 0 { a.runtime() } else { b.runtime() };
            handles.push(runtime.start(RunRequest::new("reindex")).await.expect("start"));
        }
        for handle in handles {
            handle.outcome().await.expect("run");
        }
        let mut ran = spans.all();
        assert_eq!(ran.len(), 8, "{name}");
        ran.sort_by_key(|span| span.2);
        for pair in ran.windows(2) {
            assert!(
                pair[1].2 >= pair[0].3,
                "{name}: {} began on {} before {} ended on {}",
                pair[1].0,
                pair[1].1,
                pair[0].0,
                pair[0].1
            );
        }
        a.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_waits_in_the_store_and_another_instance_runs_it_after_a_restart() {
    for backend in durable_backends().await {
        let name = backend.name;
        let flaky = |instance: &'static str| {
            Task::new(move |cx: TaskContext| async move {
                if cx.attempt() == 1 {
                    return Err(TaskError::new("smtp down"));
                }
                Ok::<_, TaskError>(json!({ "attempt": cx.attempt(), "by": instance }))
            })
            .retry(
                Retry::exponential(3)
                    .initial(Duration::from_millis(800))
                    .jitter(0.0),
            )
            .durable()
        };
        let a = app(backend.config(), "mail", flaky("a")).await;
        let id = a.runtime().enqueue("mail", json!({})).await.expect("enqueued");
        let waiting = until(&a, id, "its retry", |run| run.attempt == 2).await;
        assert_eq!(
            waiting.status,
            RunStatus::Queued,
            "{name}: the retry waits in the store"
        );
        assert_eq!(waiting.attempts.len(), 1, "{name}");
        assert_eq!(waiting.attempts[0].error.as_deref(), Some("smtp down"), "{name}");
        // The instance goes away during the backoff; another one runs the retry.
        a.shutdown().await;
        let b = app(backend.config(), "mail", flaky("b")).await;
        let run = until(&b, id, "the end", |run| run.status.is_final()).await;
        assert_eq!(run.status, RunStatus::Succeeded, "{name}: {run:?}");
        assert_eq!(run.result, Some(json!({ "attempt": 2, "by": "b" })), "{name}");
        let backoff = run.started_at.map(|_| run.attempts[0].retry_delay_ms);
        assert_eq!(backoff, Some(800), "{name}");
        b.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_through_another_instance_ends_the_run_within_a_second() {
    for backend in durable_backends().await {
        let name = backend.name;
        let endless = || {
            Task::new(|cx: TaskContext| async move {
                cx.cancelled().await;
                Ok::<_, TaskError>(Value::Null)
            })
        };
        let a = App::new()
            .store(backend.config())
            .task("durable:wait", endless().durable())
            .task("wait", endless())
            .start()
            .await
            .expect("a starts");
        // `b` does not have the tasks: it cannot take the runs, only cancel them.
        let b = App::new()
            .store(backend.config())
            .task("other", endless())
            .start()
            .await
            .expect("b starts");
        let durable = a
            .runtime()
            .start(RunRequest::new("durable:wait"))
            .await
            .expect("start")
            .run_id();
        let local = a
            .runtime()
            .start(RunRequest::new("wait"))
            .await
            .expect("start")
            .run_id();
        for id in [durable, local] {
            until(&a, id, "running", |run| run.status == RunStatus::Running).await;
            let asked = Instant::now();
            assert!(b.runtime().cancel(id).await.expect("cancel"), "{name}");
            let run = until(&b, id, "cancelled", |run| run.status.is_final()).await;
            assert_eq!(run.status, RunStatus::Cancelled, "{name}: {run:?}");
            assert!(
                asked.elapsed() < Duration::from_secs(1),
                "{name}: cancelled {:?} after it was asked",
                asked.elapsed()
            );
            assert!(
                !b.runtime().cancel(id).await.expect("again"),
                "{name}: already ended"
            );
        }
        // A queued durable run is cancelled in the store before anyone takes it.
        let later = b
            .runtime()
            .enqueue("other", json!({}))
            .after(Duration::from_secs(60))
            .await
            .expect("enqueued");
        assert!(a.runtime().cancel(later).await.expect("cancel"), "{name}");
        let run = b.runtime().get_run(later).await.expect("read").expect("stored");
        assert_eq!(run.status, RunStatus::Cancelled, "{name}");
        let error = b.runtime().outcome(later).await.expect_err("cancelled");
        assert!(matches!(error, Error::Cancelled { .. }), "{name}: {error}");
        assert!(
            matches!(a.runtime().cancel(RunId::new()).await, Err(Error::RunNotFound(_))),
            "{name}"
        );
        a.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_request_of_a_plain_task_goes_through_the_store() {
    for backend in durable_backends().await {
        let name = backend.name;
        let spans = Spans::default();
        let plain = Task::new(|_cx: TaskContext| async { Ok::<_, TaskError>(json!("done")) });
        let a = app(backend.config(), "report", plain).await;
        let handle = a
            .runtime()
            .start(RunRequest::new("report").trigger(Trigger::Cli).durable())
            .await
            .expect("start");
        assert!(handle.is_durable(), "{name}");
        let id = handle.run_id();
        assert_eq!(handle.outcome().await.expect("result"), json!("done"), "{name}");
        let run = a.runtime().get_run(id).await.expect("read").expect("stored");
        assert_eq!(run.trigger, Trigger::Cli, "{name}");
        assert!(spans.all().is_empty());
        a.shutdown().await;
    }
}

/// An app with a `worker` schedule `tick` every 200 ms, its runs counted in `count`.
async fn ticking(store: StoreConfig, count: Arc<Mutex<usize>>, durable: bool) -> RunningApp {
    use taskyard::schedule::Schedule;
    let task = Task::new(move |_cx: TaskContext| {
        let count = count.clone();
        async move {
            *count.lock().expect("count") += 1;
            Ok::<_, TaskError>(Value::Null)
        }
    })
    .concurrency(Concurrency::Parallel(4));
    App::new()
        .store(store)
        .task("beat", task)
        .schedule(
            "tick",
            Schedule::worker().interval("200ms").durable(durable).task("beat"),
        )
        .schedule_log(None)
        .shutdown_grace(Duration::from_millis(300))
        .start()
        .await
        .expect("app starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_through_one_instance_holds_on_all_and_survives_a_restart() {
    for backend in durable_backends().await {
        let name = backend.name;
        let count = Arc::new(Mutex::new(0));
        let runs = || *count.lock().expect("count");
        let a = ticking(backend.config(), count.clone(), false).await;
        let b = ticking(backend.config(), count.clone(), false).await;
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert!(runs() >= 2, "{name}: the schedule runs: {}", runs());

        a.scheduler().pause("tick").await.expect("pause through a");
        // Within a second every instance holds it; a tick already going may still end.
        tokio::time::sleep(Duration::from_millis(1_000)).await;
        assert!(
            b.scheduler().get("tick").expect("info").paused,
            "{name}: b follows"
        );
        let paused_at = runs();
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert_eq!(runs(), paused_at, "{name}: no instance fires while paused");

        // Every instance restarts: the pause is in the store.
        a.shutdown().await;
        b.shutdown().await;
        let a = ticking(backend.config(), count.clone(), false).await;
        let c = ticking(backend.config(), count.clone(), false).await;
        assert!(
            a.scheduler().get("tick").expect("info").paused,
            "{name}: still paused"
        );
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert_eq!(runs(), paused_at, "{name}: nothing fired after the restart");

        c.scheduler().resume("tick").await.expect("resume through c");
        tokio::time::sleep(Duration::from_millis(1_200)).await;
        assert!(
            !a.scheduler().get("tick").expect("info").paused,
            "{name}: a follows"
        );
        assert!(runs() > paused_at + 1, "{name}: it runs again");
        a.shutdown().await;
        c.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_tick_of_an_instance_that_goes_away_runs_on_another() {
    for backend in durable_backends().await {
        let name = backend.name;
        let finished = Arc::new(Mutex::new(Vec::new()));
        let slow = |instance: &'static str| {
            let finished = finished.clone();
            Task::new(move |cx: TaskContext| {
                let finished = finished.clone();
                async move {
                    tokio::time::sleep(Duration::from_millis(1_500)).await;
                    finished
                        .lock()
                        .expect("finished")
                        .push((cx.run_id(), instance, cx.attempt()));
                    Ok::<_, TaskError>(Value::Null)
                }
            })
            .retry(Retry::exponential(3))
        };
        let schedule = || {
            taskyard::schedule::Schedule::worker()
                .interval("1h")
                .immediate(true)
                .durable(true)
                .task("slow")
        };
        let a = App::new()
            .store(backend.config())
            .task("slow", slow("a"))
            .schedule("hourly", schedule())
            .schedule_log(None)
            .shutdown_grace(Duration::from_millis(100))
            .start()
            .await
            .expect("a starts");
        let b = App::new()
            .store(backend.config())
            .task("slow", slow("b"))
            .shutdown_grace(Duration::from_millis(100))
            .start()
            .await
            .expect("b starts");
        // The immediate tick's run starts on one of them; the other waits.
        let started = Instant::now();
        let id = loop {
            let runs = a
                .runtime()
                .list_runs(&taskyard::RunFilter::default().schedule("hourly".to_owned()))
                .await
                .expect("list");
            if let Some(run) = runs.into_iter().find(|run| run.status == RunStatus::Running) {
                break run.id;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "{name}: no tick run");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let holder = a
            .runtime()
            .get_run(id)
            .await
            .expect("read")
            .expect("run")
            .instance;
        let (gone, stays) = if holder == a.runtime().instance() {
            (a, b)
        } else {
            (b, a)
        };
        // Its instance stops mid-run: the claimed run keeps its row, and the other
        // instance runs it again as its next attempt once the lease is gone.
        gone.shutdown().await;
        let run = until(&stays, id, "the re-run", |run| run.status.is_final()).await;
        assert_eq!(run.status, RunStatus::Succeeded, "{name}: {run:?}");
        assert_eq!(run.instance, stays.runtime().instance(), "{name}");
        assert_eq!(run.attempt, 2, "{name}: {run:?}");
        assert_eq!(run.attempts[0].status, RunStatus::Abandoned, "{name}: {run:?}");
        let done = finished.lock().expect("finished").clone();
        assert_eq!(
            done.len(),
            1,
            "{name}: only the second attempt finished: {done:?}"
        );
        stays.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_run_queued_elsewhere_starts_without_waiting_for_a_poll() {
    for backend in durable_backends().await {
        let name = backend.name;
        let quick = Task::new(|_cx: TaskContext| async { Ok::<_, TaskError>(Value::Null) })
            .concurrency(Concurrency::Parallel(4))
            .durable();
        let a = app(backend.config(), "quick", quick).await;
        // Another process's enqueue, straight into the store: only a poll or a notice
        // tells `a` about it.
        let store = backend.open().await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut waits = Vec::new();
        for _ in 0..15 {
            let enqueued = Instant::now();
            let mut run = common::records::queued("quick");
            run.queued_at = Timestamp::now();
            let id = run.id;
            let job = taskyard::store::Job {
                run_at: run.queued_at,
                priority: 0,
                key: None,
                max_attempts: 1,
            };
            store.enqueue(&run, &job).await.expect("enqueued");
            until(&a, id, "the start", |run| run.started_at.is_some()).await;
            let run = a.runtime().get_run(id).await.expect("read").expect("run");
            let started = run.started_at.expect("started");
            waits.push(started.as_millisecond() - run.queued_at.as_millisecond());
            // Apart, so each one finds `a` idle.
            tokio::time::sleep(Duration::from_millis(
                50 + enqueued.elapsed().as_millis() as u64 % 50,
            ))
            .await;
        }
        waits.sort_unstable();
        let p50 = waits[waits.len() / 2];
        println!("{name}: queued elsewhere → started, p50 {p50} ms, all {waits:?}");
        if name == "postgres" {
            // The poll alone (every 200 ms) makes the median ~100 ms.
            assert!(p50 < 50, "{name}: p50 {p50} ms: {waits:?}");
        }
        a.shutdown().await;
    }
}
