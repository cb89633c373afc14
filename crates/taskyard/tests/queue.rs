//! Durable runs through the runtime: `Runtime::enqueue`, the claimer of every instance,
//! delays and keys, and bad input refused before anything is stored. Two apps in this
//! process share one store as two instances would (the crash test with real processes is
//! separate).

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::durable_backends;
use serde_json::{Value, json};
use taskyard::{
    App, Concurrency, Error, RunId, RunRecord, RunStatus, RunningApp, StoreConfig, Task, TaskContext,
    TaskError,
};

/// Which instance ran which run, and how many times.
#[derive(Clone, Default)]
struct Ledger(Arc<Mutex<HashMap<RunId, Vec<String>>>>);

impl Ledger {
    fn task(&self, instance: &'static str) -> Task {
        let ledger = self.clone();
        Task::new(move |cx: TaskContext| {
            let ledger = ledger.clone();
            async move {
                ledger
                    .0
                    .lock()
                    .expect("ledger")
                    .entry(cx.run_id())
                    .or_default()
                    .push(instance.to_owned());
                Ok::<_, TaskError>(json!({ "echo": cx.payload().clone(), "by": instance }))
            }
        })
        // Runs of any payload at once, bounded by each instance's room only: what is under
        // test is the queue, not a limit.
        .concurrency(Concurrency::Unlimited)
    }

    fn runs(&self) -> HashMap<RunId, Vec<String>> {
        self.0.lock().expect("ledger").clone()
    }
}

async fn start(store: StoreConfig, instance: &'static str, ledger: &Ledger) -> RunningApp {
    App::new()
        .store(store)
        .task("mail", ledger.task(instance))
        .shutdown_grace(Duration::from_millis(500))
        .start()
        .await
        .expect("app starts")
}

/// Waits (at most 10 s) until the run has ended, and returns its record.
async fn ended(app: &RunningApp, id: RunId) -> RunRecord {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let run = app.runtime().get_run(id).await.expect("read").expect("stored");
        if run.status.is_final() {
            return run;
        }
        assert!(
            Instant::now() < deadline,
            "run {id} still {} after 10 s",
            run.status
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enqueued_run_is_stored_then_run_and_its_record_holds_the_result() {
    for backend in durable_backends().await {
        let name = backend.name;
        let ledger = Ledger::default();
        let app = start(backend.config(), "a", &ledger).await;
        let id = app
            .runtime()
            .enqueue("mail", json!({ "to": "ada" }))
            .await
            .expect("enqueued");
        let run = ended(&app, id).await;
        assert_eq!(run.status, RunStatus::Succeeded, "{name}: {run:?}");
        assert_eq!(
            run.result,
            Some(json!({ "echo": { "to": "ada" }, "by": "a" })),
            "{name}"
        );
        assert_eq!(ledger.runs()[&id].len(), 1, "{name}");
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_the_queue_and_every_run_runs_once() {
    for backend in durable_backends().await {
        let name = backend.name;
        let ledger = Ledger::default();
        let a = start(backend.config(), "a", &ledger).await;
        let b = start(backend.config(), "b", &ledger).await;
        let mut ids = Vec::new();
        for i in 0..40 {
            let app = if i % 2 == 0 { &a } else { &b };
            ids.push(
                app.runtime()
                    .enqueue("mail", json!({ "n": i }))
                    .await
                    .expect("enqueued"),
            );
        }
        for id in &ids {
            let run = ended(&a, *id).await;
            assert_eq!(run.status, RunStatus::Succeeded, "{name}: {run:?}");
        }
        let runs = ledger.runs();
        for id in &ids {
            assert_eq!(runs[id].len(), 1, "{name}: run {id} ran {:?}", runs[id]);
        }
        a.shutdown().await;
        b.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_run_waits_and_a_key_holds_one_live_run() {
    for backend in durable_backends().await {
        let name = backend.name;
        let ledger = Ledger::default();
        let app = start(backend.config(), "a", &ledger).await;
        let runtime = app.runtime();
        let delayed = runtime
            .enqueue("mail", json!({}))
            .after(Duration::from_millis(400))
            .await
            .expect("enqueued");
        let run = ended(&app, delayed).await;
        let waited = run.started_at.expect("started").as_millisecond() - run.queued_at.as_millisecond();
        assert!(waited >= 400, "{name}: started {waited} ms after it was queued");

        let first = runtime
            .enqueue("mail", json!({ "n": 1 }))
            .key("report")
            .after(Duration::from_millis(300))
            .await
            .expect("enqueued");
        let second = runtime
            .enqueue("mail", json!({ "n": 2 }))
            .key("report")
            .await
            .expect("enqueued");
        assert_eq!(first, second, "{name}: one live run per key");
        let run = ended(&app, first).await;
        assert_eq!(
            run.result.as_ref().map(|r| r["echo"].clone()),
            Some(json!({ "n": 1 })),
            "{name}"
        );
        assert_eq!(
            ledger.runs().len(),
            2,
            "{name}: the delayed run and the keyed one"
        );
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_and_nothing_is_stored() {
    #[derive(serde::Deserialize, schemars::JsonSchema)]
    struct Mail {
        #[allow(dead_code)]
        to: String,
    }
    let app = App::new()
        .store(StoreConfig::Memory)
        .task(
            "typed",
            Task::new(|_cx: TaskContext, _mail: Mail| async { Ok::<_, TaskError>(Value::Null) }),
        )
        .start()
        .await
        .expect("app starts");
    let runtime = app.runtime();
    let unknown = runtime.enqueue("nope", json!({})).await.expect_err("unknown");
    assert!(matches!(unknown, Error::TaskNotFound(_)), "{unknown}");
    let bad = runtime
        .enqueue("typed", json!({ "to": 5 }))
        .await
        .expect_err("bad payload");
    assert!(
        matches!(&bad, Error::InvalidPayload { path, .. } if path == "to"),
        "{bad}"
    );
    let listed = runtime
        .list_runs(&taskyard::RunFilter::default())
        .await
        .expect("list");
    assert!(listed.is_empty(), "{listed:?}");
    app.shutdown().await;

    let no_store = App::new()
        .store(StoreConfig::Disabled)
        .task(
            "typed",
            Task::new(|_cx: TaskContext| async { Ok::<_, TaskError>(()) }),
        )
        .start()
        .await
        .expect("app starts");
    let refused = no_store
        .runtime()
        .enqueue("typed", json!({}))
        .await
        .expect_err("no store");
    assert!(
        refused.to_string().contains("durable runs are kept in the store"),
        "{refused}"
    );
    no_store.shutdown().await;
}

/// A task whose runs each take `each`, counting how many run at once at the most and how
/// many ran on this instance.
fn paced(each: Duration, at_once: &Arc<(AtomicUsize, AtomicUsize)>, ran: &Arc<AtomicUsize>) -> Task {
    let (at_once, ran) = (at_once.clone(), ran.clone());
    Task::new(move |_cx: TaskContext| {
        let (at_once, ran) = (at_once.clone(), ran.clone());
        async move {
            let now = at_once.0.fetch_add(1, Ordering::SeqCst) + 1;
            at_once.1.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(each).await;
            at_once.0.fetch_sub(1, Ordering::SeqCst);
            ran.fetch_add(1, Ordering::SeqCst);
            Ok::<_, TaskError>(())
        }
    })
    .concurrency(Concurrency::Unlimited)
}

/// Waits (at most 30 s) until `count` runs of `ran` have ended.
async fn until_ran(ran: &[&AtomicUsize], count: usize) {
    within(
        Duration::from_secs(30),
        || ran.iter().map(|ran| ran.load(Ordering::SeqCst)).sum::<usize>() >= count,
        || format!("only {ran:?} of {count} runs ended"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_runs_are_claimed_ahead_and_still_execute_64_at_once() {
    const RUNS: usize = 4_000;
    for backend in durable_backends().await {
        let name = backend.name;
        let (at_once, ran) = (Arc::default(), Arc::default());
        // Queued before the app starts, so that the queue is full from its first claim.
        let store = backend
            .config()
            .open()
            .await
            .expect("store opens")
            .expect("a store");
        for _ in 0..RUNS {
            let now = jiff::Timestamp::now();
            let run = RunRecord::queued(
                "quick".into(),
                json!({}),
                taskyard::Trigger::Manual,
                "test".into(),
                now,
            );
            let job = taskyard::store::Job {
                run_at: now,
                priority: 0,
                key: None,
                max_attempts: 1,
            };
            store.enqueue(&run, &job).await.expect("queued");
        }
        let app = App::new()
            .store(backend.config())
            .task("quick", paced(Duration::from_millis(1), &at_once, &ran))
            .start()
            .await
            .expect("app starts");
        // Claimed runs are this instance's active runs, executing or waiting for room:
        // while the runs end fast, more are claimed than execute.
        let mut claimed_at_once = 0;
        while ran.load(Ordering::SeqCst) < RUNS {
            claimed_at_once = claimed_at_once.max(app.runtime().active_runs());
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        until_ran(&[&ran], RUNS).await;
        let executed_at_once = at_once.1.load(Ordering::SeqCst);
        assert!(
            executed_at_once <= 64,
            "{name}: {executed_at_once} runs executed at once"
        );
        assert!(
            claimed_at_once > 64,
            "{name}: at most {claimed_at_once} runs claimed at once while 64 executed"
        );
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_runs_are_not_held_ahead_while_another_instance_has_room() {
    for backend in durable_backends().await {
        let name = backend.name;
        let at_once = Arc::default();
        let (ran_a, ran_b) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let instance = |ran: &Arc<AtomicUsize>| {
            App::new()
                .store(backend.config())
                .task("slow", paced(Duration::from_millis(300), &at_once, ran))
                .shutdown_grace(Duration::from_millis(500))
                .start()
        };
        let a = instance(&ran_a).await.expect("a starts");
        let b = instance(&ran_b).await.expect("b starts");
        for n in 0..80 {
            a.runtime()
                .enqueue("slow", json!({ "n": n }))
                .await
                .expect("enqueued");
        }
        until_ran(&[&ran_a, &ran_b], 80).await;
        let (on_a, on_b) = (ran_a.load(Ordering::SeqCst), ran_b.load(Ordering::SeqCst));
        // 64 execute at once on each instance: a run held ahead on one would wait 300 ms
        // there while the other instance had room for it.
        assert!(on_a <= 64 && on_b <= 64, "{name}: {on_a} ran on a, {on_b} on b");
        a.shutdown().await;
        b.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_claimed_ahead_and_waiting_for_a_place_is_cancelled_before_it_starts() {
    for backend in durable_backends().await {
        let name = backend.name;
        let started: Arc<Mutex<Vec<RunId>>> = Arc::default();
        let (release, released) = tokio::sync::watch::channel(false);
        let body = {
            let started = started.clone();
            Task::new(move |cx: TaskContext| {
                let (started, mut released) = (started.clone(), released.clone());
                async move {
                    started.lock().expect("started").push(cx.run_id());
                    if cx.payload()["hold"] == json!(true) {
                        let _ = released.wait_for(|released| *released).await;
                    }
                    Ok::<_, TaskError>(())
                }
            })
            .concurrency(Concurrency::Unlimited)
        };
        let app = App::new()
            .store(backend.config())
            .task("gate", body)
            .shutdown_grace(Duration::from_millis(500))
            .start()
            .await
            .expect("app starts");
        let runtime = app.runtime();
        let enqueue =
            |payload: Value| async move { runtime.enqueue("gate", payload).await.expect("enqueued") };
        let count = |started: &Arc<Mutex<Vec<RunId>>>| started.lock().expect("started").len();
        // Quick runs first, so that the instance claims ahead of its places.
        for _ in 0..200 {
            enqueue(json!({})).await;
        }
        until(|| count(&started) == 200, "the quick runs started").await;
        // All 64 places held, then more runs: claimed ahead, they wait for a place.
        for _ in 0..64 {
            enqueue(json!({ "hold": true })).await;
        }
        until(|| count(&started) == 264, "64 runs hold every place").await;
        let mut waiting = Vec::new();
        for _ in 0..40 {
            waiting.push(enqueue(json!({})).await);
        }
        until(|| runtime.active_runs() > 64, "runs claimed ahead").await;
        let mut ahead = None;
        for id in &waiting {
            let run = runtime.get_run(*id).await.expect("read").expect("stored");
            if run.status == RunStatus::Running {
                ahead = Some(*id);
                break;
            }
        }
        let ahead = ahead.unwrap_or_else(|| panic!("{name}: no run claimed ahead of the held places"));
        assert!(
            runtime.cancel(ahead).await.expect("cancel"),
            "{name}: the run was live"
        );
        let run = ended(&app, ahead).await;
        assert_eq!(run.status, RunStatus::Cancelled, "{name}: {run:?}");
        release.send(true).expect("the held runs listen");
        until(|| count(&started) == 64 + 200 + 39, "every other run started").await;
        for id in &waiting {
            let run = ended(&app, *id).await;
            let expected = if *id == ahead {
                RunStatus::Cancelled
            } else {
                RunStatus::Succeeded
            };
            assert_eq!(run.status, expected, "{name}: {id}");
        }
        assert!(
            !started.lock().expect("started").contains(&ahead),
            "{name}: the cancelled run started after all"
        );
        app.shutdown().await;
    }
}

/// Waits (at most 10 s) until `done` holds; `what` names it in the failure.
async fn until(done: impl Fn() -> bool, what: &str) {
    within(Duration::from_secs(10), done, || what.to_owned()).await;
}

/// Waits at most `limit` until `done` holds, failing with what `failure` says.
async fn within(limit: Duration, done: impl Fn() -> bool, failure: impl Fn() -> String) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "not within {limit:?}: {}", failure());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A claim writes nothing to the run's record: a claimed run that goes on past the poll
/// that starts it is recorded `running` on the instance that claimed it, and the end
/// takes it out of the queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claimed_run_that_goes_on_is_recorded_running_where_it_runs() {
    for backend in durable_backends().await {
        let name = backend.name;
        let (release, released) = tokio::sync::watch::channel(false);
        let task = Task::new(move |_cx: TaskContext| {
            let mut released = released.clone();
            async move {
                let _ = released.wait_for(|released| *released).await;
                Ok::<_, TaskError>(())
            }
        })
        .concurrency(Concurrency::Unlimited);
        let app = App::new()
            .store(backend.config())
            .task("hold", task)
            .shutdown_grace(Duration::from_millis(500))
            .start()
            .await
            .expect("app starts");
        // Queued through another instance's handle on the store.
        let store = backend.open().await;
        let now = jiff::Timestamp::now();
        let run = RunRecord::queued(
            "hold".into(),
            json!({}),
            taskyard::Trigger::Manual,
            "elsewhere".into(),
            now,
        );
        let job = taskyard::store::Job {
            run_at: now,
            priority: 0,
            key: None,
            max_attempts: 1,
        };
        store.enqueue(&run, &job).await.expect("enqueued");
        let stored = || {
            let store = store.clone();
            async move { store.get_run(run.id).await.expect("read").expect("stored") }
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let record = stored().await;
            if record.status == RunStatus::Running {
                assert_ne!(record.instance, "elsewhere", "{name}: {record:?}");
                assert!(record.started_at.is_some(), "{name}: {record:?}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{name}: not recorded running within 10 s: {record:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        release.send(true).expect("the run listens");
        let ended = ended(&app, run.id).await;
        assert_eq!(ended.status, RunStatus::Succeeded, "{name}");
        // Its job is gone: the run cannot be cancelled, nor claimed again.
        assert!(
            matches!(
                store.request_cancel(run.id, jiff::Timestamp::now()).await,
                Ok(Some(taskyard::store::CancelRequest::Finished(_)))
            ),
            "{name}"
        );
        app.shutdown().await;
    }
}
