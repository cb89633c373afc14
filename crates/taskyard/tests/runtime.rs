//! The task runtime's behaviour: concurrency modes, timeouts, retries, cancellation,
//! panics and payload validation. History is kept in memory so records can be checked.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use taskyard::{
    App, Concurrency, Error, Retry, RunFilter, RunStatus, RunningApp, StoreConfig, Task, TaskContext,
    TaskError,
};
use tokio::sync::Mutex;

async fn start(app: App) -> RunningApp {
    app.store(StoreConfig::Memory).start().await.expect("app starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_task_is_not_found_with_nitros_message() {
    let app = start(App::new()).await;
    let error = app.runtime().run_task("x", json!({})).await.expect_err("unknown");
    assert!(matches!(error, Error::TaskNotFound(_)));
    assert_eq!(error.kind(), taskyard::ErrorKind::NotFound);
    assert_eq!(error.to_string(), "Task `x` is not available!");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dedupe_shares_one_execution_with_100_concurrent_callers() {
    let executions = Arc::new(AtomicUsize::new(0));
    let counter = executions.clone();
    let task = Task::new(move |cx: TaskContext| {
        let counter = counter.clone();
        async move {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
            Ok::<_, TaskError>(json!({"execution": n, "run": cx.run_id()}))
        }
    });
    let app = start(App::new().task("slow", task)).await;
    let calls: Vec<_> = (0..100)
        .map(|i| {
            let runtime = app.runtime().clone();
            tokio::spawn(async move { runtime.run_task("slow", json!({"caller": i})).await })
        })
        .collect();
    let results: Vec<Value> = futures_join(calls).await;
    assert_eq!(executions.load(Ordering::SeqCst), 1, "exactly one execution");
    assert!(
        results.iter().all(|r| r == &results[0]),
        "every caller gets the same result"
    );
    assert_eq!(results[0]["execution"], 1);
    let runs = app
        .runtime()
        .list_runs(&RunFilter::default().task("slow"))
        .await
        .expect("runs");
    assert_eq!(runs.len(), 1, "one run recorded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dedupe_starts_a_new_run_after_the_previous_one_ended() {
    let executions = Arc::new(AtomicUsize::new(0));
    let counter = executions.clone();
    let task = Task::new(move |_cx: TaskContext| {
        let counter = counter.clone();
        async move { Ok::<_, TaskError>(counter.fetch_add(1, Ordering::SeqCst)) }
    });
    let app = start(App::new().task("t", task)).await;
    for _ in 0..3 {
        app.runtime().run_task("t", json!({})).await.expect("run");
    }
    assert_eq!(executions.load(Ordering::SeqCst), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_tick_never_joins_another_ticks_run_but_other_callers_still_do() {
    let app = start(App::new().task(
        "sync",
        Task::new(|cx: TaskContext| async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            Ok::<_, TaskError>(json!(cx.run_id()))
        }),
    ))
    .await;
    let tick = |second: i64| {
        taskyard::RunRequest::new("sync").trigger(taskyard::Trigger::Schedule {
            schedule: "sync".into(),
            scheduled_at: jiff::Timestamp::from_second(second).expect("tick"),
        })
    };
    let runtime = app.runtime();
    // A later tick's run is going when an earlier tick (taken over from a dead instance)
    // arrives: the earlier tick gets a run of its own.
    let later = runtime.start(tick(1_800_000_002)).await.expect("later tick");
    let earlier = runtime.start(tick(1_800_000_000)).await.expect("earlier tick");
    assert!(!earlier.joined(), "a tick joined another tick's run");
    assert_ne!(earlier.run_id(), later.run_id());
    // The same tick again, or a caller from elsewhere, joins as Nitro's rule says.
    assert!(
        runtime
            .start(tick(1_800_000_002))
            .await
            .expect("same tick")
            .joined()
    );
    let manual = runtime
        .start(taskyard::RunRequest::new("sync"))
        .await
        .expect("manual");
    assert!(manual.joined());
    assert_eq!(
        manual.run_id(),
        later.run_id(),
        "the gate still holds the first run"
    );
    let (a, b) = (earlier.outcome().await, later.outcome().await);
    assert_ne!(a.expect("earlier"), b.expect("later"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dedupe_by_payload_shares_only_equal_payloads() {
    let executions = Arc::new(AtomicUsize::new(0));
    let counter = executions.clone();
    let task = Task::new(move |_cx: TaskContext, p: Value| {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok::<_, TaskError>(p)
        }
    })
    .concurrency(Concurrency::DedupeByPayload);
    let app = start(App::new().task("t", task)).await;
    let calls: Vec<_> = (0..30)
        .map(|i| {
            let runtime = app.runtime().clone();
            // Key order must not matter: {"a":..,"b":..} equals {"b":..,"a":..}.
            let payload = if i % 2 == 0 {
                json!({"a": i % 3, "b": 1})
            } else {
                json!({"b": 1, "a": i % 3})
            };
            tokio::spawn(async move { runtime.run_task("t", payload).await })
        })
        .collect();
    let results = futures_join(calls).await;
    assert_eq!(
        executions.load(Ordering::SeqCst),
        3,
        "one run per distinct payload"
    );
    assert_eq!(results.len(), 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_with_a_payload_never_hands_a_caller_another_payloads_result_by_default() {
    #[derive(Deserialize, schemars::JsonSchema)]
    struct Who {
        name: String,
    }
    let typed = Task::new(|_cx: TaskContext, who: Who| async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok::<_, TaskError>(json!({ "hello": who.name }))
    });
    assert_eq!(typed.get_concurrency(), Concurrency::DedupeByPayload);
    let plain = Task::new(|_cx: TaskContext| async { Ok::<_, TaskError>(()) });
    assert_eq!(
        plain.get_concurrency(),
        Concurrency::Dedupe,
        "Nitro's rule without a payload"
    );
    let app = start(App::new().task("greet", typed)).await;
    let runtime = app.runtime();
    let (ada, bob) = tokio::join!(
        runtime.run_task("greet", json!({ "name": "ada" })),
        runtime.run_task("greet", json!({ "name": "bob" })),
    );
    assert_eq!(ada.expect("ada"), json!({ "hello": "ada" }));
    assert_eq!(bob.expect("bob"), json!({ "hello": "bob" }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serial_runs_one_at_a_time_in_arrival_order() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let running = Arc::new(AtomicUsize::new(0));
    let (log2, running2) = (log.clone(), running.clone());
    let task = Task::new(move |_cx: TaskContext, p: Value| {
        let (log, running) = (log2.clone(), running2.clone());
        async move {
            assert_eq!(running.fetch_add(1, Ordering::SeqCst), 0, "never two at once");
            tokio::time::sleep(Duration::from_millis(5)).await;
            log.lock().await.push(p["i"].as_u64().unwrap_or(u64::MAX));
            running.fetch_sub(1, Ordering::SeqCst);
            Ok::<_, TaskError>(())
        }
    })
    .concurrency(Concurrency::Serial);
    let app = start(App::new().task("serial", task)).await;
    // Start in a known order, then await all.
    let mut handles = Vec::new();
    for i in 0..20 {
        handles.push(
            app.runtime()
                .start(taskyard::RunRequest::new("serial").payload(json!({"i": i})))
                .await
                .expect("start"),
        );
    }
    for handle in handles {
        handle.outcome().await.expect("run");
    }
    assert_eq!(*log.lock().await, (0..20).collect::<Vec<u64>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_limit_is_never_exceeded() {
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (running2, peak2) = (running.clone(), peak.clone());
    let task = Task::new(move |_cx: TaskContext| {
        let (running, peak) = (running2.clone(), peak2.clone());
        async move {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            running.fetch_sub(1, Ordering::SeqCst);
            Ok::<_, TaskError>(())
        }
    })
    .concurrency(Concurrency::Parallel(3));
    let app = start(App::new().task("p", task)).await;
    let calls: Vec<_> = (0..30)
        .map(|_| {
            let runtime = app.runtime().clone();
            tokio::spawn(async move { runtime.run_task("p", json!({})).await })
        })
        .collect();
    futures_join(calls).await;
    assert_eq!(
        peak.load(Ordering::SeqCst),
        3,
        "reaches but never exceeds the limit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlimited_runs_all_go_at_once_and_a_huge_limit_is_no_limit() {
    const RUNS: usize = 30;
    for concurrency in [Concurrency::Unlimited, Concurrency::Parallel(usize::MAX)] {
        // Each run waits for all the others to be running: any gate would stall them.
        let all = Arc::new(tokio::sync::Barrier::new(RUNS));
        let task = Task::new(move |_cx: TaskContext| {
            let all = all.clone();
            async move {
                tokio::time::timeout(Duration::from_secs(10), all.wait())
                    .await
                    .map_err(|_| TaskError::new("not every run was running at once"))?;
                Ok::<_, TaskError>(())
            }
        })
        .concurrency(concurrency);
        let app = start(App::new().task("wide", task)).await;
        let calls: Vec<_> = (0..RUNS)
            .map(|_| {
                let runtime = app.runtime().clone();
                tokio::spawn(async move { runtime.run_task("wide", json!({})).await })
            })
            .collect();
        for call in calls {
            call.await.expect("joined").expect("every run succeeds");
        }
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_stops_the_attempt_and_records_timed_out() {
    let task = Task::new(|_cx: TaskContext| async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        Ok::<_, TaskError>(())
    })
    .timeout(Duration::from_millis(50));
    let app = start(App::new().task("hang", task)).await;
    let started = std::time::Instant::now();
    let error = app
        .runtime()
        .run_task("hang", json!({}))
        .await
        .expect_err("times out");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(error.to_string(), "Task `hang` timed out after 50ms");
    let run = only_run(&app, "hang").await;
    assert_eq!(run.status, RunStatus::TimedOut);
    assert_eq!(run.error.as_deref(), Some("timed out after 50ms"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_with_backoff_are_visible_in_history() {
    let task = Task::new(|cx: TaskContext| async move {
        if cx.attempt() < 3 {
            return Err(TaskError::new(format!("flaky {}", cx.attempt())));
        }
        Ok::<_, TaskError>(cx.attempt())
    })
    .retry(
        Retry::exponential(5)
            .initial(Duration::from_millis(40))
            .jitter(0.0),
    );
    let app = start(App::new().task("flaky", task)).await;
    let result = app
        .runtime()
        .run_task("flaky", json!({}))
        .await
        .expect("third attempt succeeds");
    assert_eq!(result, json!(3));
    let run = only_run(&app, "flaky").await;
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(run.attempt, 3);
    assert_eq!(run.attempts.len(), 2);
    assert_eq!(run.attempts[0].error.as_deref(), Some("flaky 1"));
    assert_eq!(run.attempts[0].retry_delay_ms, 40);
    assert_eq!(run.attempts[1].retry_delay_ms, 80, "backoff doubles");
    let waited = run.attempts[1]
        .started_at
        .duration_since(run.attempts[0].finished_at);
    assert!(
        waited.as_millis() >= 40,
        "second attempt started after the first backoff: {waited:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_error_is_not_retried() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let task = Task::new(move |_cx: TaskContext| {
        counter.fetch_add(1, Ordering::SeqCst);
        async { Err::<(), _>(TaskError::permanent("bad input")) }
    })
    .retry(Retry::exponential(5).initial(Duration::from_millis(1)));
    let app = start(App::new().task("t", task)).await;
    let error = app.runtime().run_task("t", json!({})).await.expect_err("fails");
    assert_eq!(error.to_string(), "bad input");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_by_run_id_stops_the_run_and_records_it() {
    let task = Task::new(|_cx: TaskContext| async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        Ok::<_, TaskError>(())
    });
    let app = start(App::new().task("long", task)).await;
    let runtime = app.runtime().clone();
    let handle = runtime
        .start(taskyard::RunRequest::new("long"))
        .await
        .expect("start");
    let run_id = handle.run_id();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(runtime.cancel(run_id).await.expect("cancel"), "was running");
    let error = handle.outcome().await.expect_err("cancelled");
    assert!(matches!(error, Error::Cancelled { .. }), "{error:?}");
    let run = runtime.get_run(run_id).await.expect("get").expect("recorded");
    assert_eq!(run.status, RunStatus::Cancelled);
    assert!(
        !runtime.cancel(run_id).await.expect("second cancel"),
        "already ended"
    );
    let unknown = "01a1fc73-0000-7000-8000-000000000000".parse().expect("id");
    assert!(matches!(
        runtime.cancel(unknown).await,
        Err(Error::RunNotFound(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_s_token_taken_by_the_body_is_cancelled_with_the_run_and_at_its_end() {
    // The token is made only when a body asks for it: one asked for while the run waits,
    // one asked for by an attempt that ends at once, and a retried run's second attempt.
    let (tokens, mut taken) = tokio::sync::mpsc::unbounded_channel();
    let waiting = Task::new({
        let tokens = tokens.clone();
        move |cx: TaskContext| {
            let tokens = tokens.clone();
            async move {
                tokens.send(cx.cancellation().clone()).expect("sent");
                // Dropped by the runtime when cancelled.
                std::future::pending::<Result<(), TaskError>>().await
            }
        }
    });
    let quick = Task::new({
        let tokens = tokens.clone();
        move |cx: TaskContext| {
            tokens.send(cx.cancellation().clone()).expect("sent");
            async { Ok::<_, TaskError>(()) }
        }
    });
    let retried = Task::new(move |cx: TaskContext| {
        let tokens = tokens.clone();
        async move {
            if cx.attempt() == 1 {
                return Err(TaskError::new("first attempt fails"));
            }
            tokens.send(cx.cancellation().clone()).expect("sent");
            std::future::pending::<Result<(), TaskError>>().await
        }
    })
    .retry(Retry::exponential(2).initial(Duration::from_millis(1)));
    let app = start(
        App::new()
            .task("waiting", waiting)
            .task("quick", quick)
            .task("retried", retried),
    )
    .await;
    let runtime = app.runtime().clone();

    let handle = runtime
        .start(taskyard::RunRequest::new("waiting"))
        .await
        .expect("start");
    let token = taken.recv().await.expect("a token");
    assert!(!token.is_cancelled(), "the run goes on");
    assert!(runtime.cancel(handle.run_id()).await.expect("cancel"));
    let error = handle.outcome().await.expect_err("cancelled");
    assert!(matches!(error, Error::Cancelled { .. }), "{error:?}");
    assert!(token.is_cancelled());

    runtime.run_task("quick", Value::Null).await.expect("quick");
    let token = taken.recv().await.expect("a token");
    assert!(token.is_cancelled(), "the attempt is over: its token says so");

    let handle = runtime
        .start(taskyard::RunRequest::new("retried"))
        .await
        .expect("start");
    let run_id = handle.run_id();
    let token = taken.recv().await.expect("the second attempt's token");
    assert!(!token.is_cancelled());
    assert!(runtime.cancel(run_id).await.expect("cancel"));
    let error = handle.outcome().await.expect_err("cancelled");
    assert!(matches!(error, Error::Cancelled { .. }), "{error:?}");
    assert!(
        token.is_cancelled(),
        "cancelling the run reaches its attempt's token"
    );
    let run = runtime.get_run(run_id).await.expect("get").expect("recorded");
    assert_eq!((run.status, run.attempt), (RunStatus::Cancelled, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_serial_run_cancelled_before_its_turn_never_runs() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let task = Task::new(move |_cx: TaskContext| {
        counter.fetch_add(1, Ordering::SeqCst);
        async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok::<_, TaskError>(())
        }
    })
    .concurrency(Concurrency::Serial);
    let app = start(App::new().task("s", task)).await;
    let runtime = app.runtime();
    let first = runtime
        .start(taskyard::RunRequest::new("s"))
        .await
        .expect("first");
    let second = runtime
        .start(taskyard::RunRequest::new("s"))
        .await
        .expect("second");
    let third = runtime
        .start(taskyard::RunRequest::new("s"))
        .await
        .expect("third");
    assert_eq!(
        runtime
            .get_run(second.run_id())
            .await
            .expect("get")
            .expect("live")
            .status,
        RunStatus::Queued
    );
    runtime.cancel(second.run_id()).await.expect("cancel");
    first.outcome().await.expect("first ok");
    assert!(second.outcome().await.is_err());
    third.outcome().await.expect("third ok, after the cancelled one");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_becomes_a_failed_run_and_the_runtime_keeps_working() {
    let boom = Task::new(|cx: TaskContext| async move {
        if cx.attempt() > 0 {
            panic!("kaboom in the task");
        }
        Ok::<_, TaskError>(())
    });
    let sync_boom = Task::new(|_cx: TaskContext| -> std::future::Ready<Result<(), TaskError>> {
        panic!("panicked before returning a future")
    });
    let fine = Task::new(|_cx: TaskContext| async { Ok::<_, TaskError>("fine") });
    let app = start(
        App::new()
            .task("boom", boom)
            .task("sync-boom", sync_boom)
            .task("fine", fine),
    )
    .await;
    let runtime = app.runtime();
    let error = runtime.run_task("boom", json!({})).await.expect_err("panics");
    assert_eq!(error.to_string(), "Task `boom` panicked: kaboom in the task");
    let run = only_run(&app, "boom").await;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.error.as_deref(), Some("panicked: kaboom in the task"));
    let error = runtime
        .run_task("sync-boom", json!({}))
        .await
        .expect_err("panics");
    assert!(error.to_string().contains("panicked before returning a future"));
    assert_eq!(
        runtime.run_task("fine", json!({})).await.expect("still works"),
        json!("fine")
    );
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct Resize {
    #[allow(dead_code)]
    image: Image,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct Image {
    #[allow(dead_code)]
    width: u32,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_payload_is_refused_before_running_naming_the_field() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let task = Task::new(move |_cx: TaskContext, _p: Resize| {
        counter.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, TaskError>(()) }
    });
    let app = start(App::new().task("resize", task)).await;
    let error = app
        .runtime()
        .run_task("resize", json!({"image": {"width": "wide"}}))
        .await
        .expect_err("bad payload");
    match &error {
        Error::InvalidPayload { task, path, reason } => {
            assert_eq!(task, "resize");
            assert_eq!(path, "image.width");
            assert!(reason.contains("expected u32"), "{reason}");
        }
        other => panic!("expected InvalidPayload, got {other:?}"),
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0, "the task never ran");
    assert!(
        app.runtime()
            .list_runs(&RunFilter::default())
            .await
            .expect("runs")
            .is_empty()
    );
    app.runtime()
        .run_task("resize", json!({"image": {"width": 3}}))
        .await
        .expect("good payload");
    let schema = app.runtime().tasks()[0]
        .task()
        .payload_schema()
        .expect("schema")
        .clone();
    assert_eq!(schema["required"], json!(["image"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn context_carries_run_details_progress_and_state() {
    struct Greeting(&'static str);
    let task = Task::new(|cx: TaskContext| async move {
        cx.progress(0.5, "halfway");
        let greeting = cx.state::<Greeting>()?.0;
        Ok::<_, TaskError>(json!({
            "task": cx.task(),
            "attempt": cx.attempt(),
            "trigger": cx.trigger(),
            "payload": cx.payload(),
            "greeting": greeting,
            "missing": cx.state::<String>().err().map(|e| e.to_string()),
        }))
    });
    let app = start(App::new().task("ctx", task).state(Greeting("hi"))).await;
    let mut events = app.runtime().subscribe();
    let result = app.runtime().run_task("ctx", json!({"k": 1})).await.expect("run");
    assert_eq!(result["task"], "ctx");
    assert_eq!(result["attempt"], 1);
    assert_eq!(result["trigger"], json!({"kind": "manual"}));
    assert_eq!(result["payload"], json!({"k": 1}));
    assert_eq!(result["greeting"], "hi");
    assert!(
        result["missing"]
            .as_str()
            .expect("error")
            .contains("add it with `App::state(value)`")
    );
    let kinds: Vec<String> = std::iter::from_fn(|| events.try_recv().ok())
        .map(|e| {
            serde_json::to_value(&e).expect("json")["event"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    assert_eq!(kinds, ["started", "progress", "finished"]);
    let run = only_run(&app, "ctx").await;
    assert_eq!(
        run.progress.expect("progress").message.as_deref(),
        Some("halfway")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_names_fail_at_startup_naming_both_places() {
    let noop = || Task::new(|_cx: TaskContext| async { Ok::<_, TaskError>(()) });
    let result = App::new()
        .file_task("db:migrate", "src/tasks/db/migrate.rs", noop())
        .task("db:migrate", noop())
        .store(StoreConfig::Disabled)
        .start()
        .await;
    let Err(error) = result else {
        panic!("duplicate names must fail")
    };
    let message = error.to_string();
    assert!(message.contains("src/tasks/db/migrate.rs"), "{message}");
    assert!(
        message.contains("code at crates/taskyard/tests/runtime.rs:"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_quick_runs_finish_and_cancels_the_rest() {
    let quick = Task::new(|_cx: TaskContext| async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        Ok::<_, TaskError>("done")
    });
    let stuck = Task::new(|_cx: TaskContext| async {
        tokio::time::sleep(Duration::from_secs(60)).await;
        Ok::<_, TaskError>("never")
    });
    let app = start(
        App::new()
            .task("quick", quick)
            .task("stuck", stuck)
            .shutdown_grace(Duration::from_millis(300)),
    )
    .await;
    let runtime = app.runtime().clone();
    let quick = runtime
        .start(taskyard::RunRequest::new("quick"))
        .await
        .expect("quick");
    let stuck = runtime
        .start(taskyard::RunRequest::new("stuck"))
        .await
        .expect("stuck");
    let store = runtime.store().expect("store").clone();
    let began = std::time::Instant::now();
    app.shutdown().await;
    assert!(began.elapsed() < Duration::from_secs(5));
    assert_eq!(
        quick.outcome().await.expect("finished within grace"),
        json!("done")
    );
    // Its caller learns the shutdown interrupted it (503 over HTTP), not that it failed.
    let interrupted = stuck.outcome().await.expect_err("cancelled");
    assert!(
        matches!(interrupted, Error::Interrupted { .. }),
        "{interrupted:?}"
    );
    assert_eq!(interrupted.kind(), taskyard::ErrorKind::Unavailable);
    let stuck_run = store
        .get_run(stuck_id(&store).await)
        .await
        .expect("get")
        .expect("recorded");
    assert_eq!(stuck_run.status, RunStatus::Cancelled);
    assert!(matches!(
        runtime.run_task("quick", json!({})).await,
        Err(Error::ShuttingDown)
    ));
}

async fn stuck_id(store: &Arc<dyn taskyard::store::Store>) -> taskyard::RunId {
    store
        .list_runs(&RunFilter::default().task("stuck"))
        .await
        .expect("list")[0]
        .id
}

async fn only_run(app: &RunningApp, task: &str) -> taskyard::RunRecord {
    let mut runs = app
        .runtime()
        .list_runs(&RunFilter::default().task(task))
        .await
        .expect("runs");
    assert_eq!(runs.len(), 1, "{runs:?}");
    runs.remove(0)
}

async fn futures_join<I>(calls: I) -> Vec<Value>
where
    I: IntoIterator<Item = tokio::task::JoinHandle<Result<Value, Error>>>,
{
    let mut results = Vec::new();
    for call in calls {
        results.push(call.await.expect("join").expect("run succeeds"));
    }
    results
}

/// Callers waiting on a run never hang, even when the tokio runtime executing it goes away
/// before the run ends: they get `ShuttingDown`.
#[test]
fn callers_learn_when_the_executing_runtime_is_dropped() {
    let executing = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let task = Task::new(|_cx: TaskContext| async {
        tokio::time::sleep(Duration::from_secs(60)).await;
        Ok::<_, TaskError>(())
    });
    let app = executing
        .block_on(
            App::new()
                .task("forever", task)
                .store(StoreConfig::Disabled)
                .start(),
        )
        .expect("app starts");
    let handle = executing
        .block_on(app.runtime().start(taskyard::RunRequest::new("forever")))
        .expect("started");
    executing.block_on(async { tokio::time::sleep(Duration::from_millis(20)).await });
    drop(executing);

    let waiting = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let outcome = waiting.block_on(async {
        tokio::time::timeout(Duration::from_secs(5), handle.outcome())
            .await
            .expect("the caller is told, not left waiting")
    });
    assert!(matches!(outcome, Err(Error::ShuttingDown)), "{outcome:?}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_caller_that_stops_waiting_does_not_cancel_the_run() {
    let (release, released) = tokio::sync::watch::channel(false);
    let finished = Arc::new(AtomicUsize::new(0));
    let done = finished.clone();
    let task = Task::new(move |_cx: TaskContext| {
        let mut released = released.clone();
        let done = done.clone();
        async move {
            released
                .wait_for(|r| *r)
                .await
                .map_err(|e| TaskError::new(e.to_string()))?;
            done.fetch_add(1, Ordering::SeqCst);
            Ok::<_, TaskError>(json!("done"))
        }
    });
    // Without a store a run that does not wait ends on the caller's task; this one waits.
    let app = App::new()
        .task("waits", task)
        .store(StoreConfig::Disabled)
        .start()
        .await
        .expect("app starts");
    let runtime = app.runtime().clone();
    let gave_up = tokio::time::timeout(Duration::from_millis(50), runtime.run_task("waits", json!({}))).await;
    assert!(gave_up.is_err(), "the caller stopped waiting");
    release.send(true).expect("released");
    tokio::time::timeout(Duration::from_secs(5), async {
        while finished.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the run went on after its caller left");
    // A run that ends on the caller's task leaves the dedupe gate open for the next one.
    let ends_at_once = Task::new(|cx: TaskContext| async move { Ok::<_, TaskError>(json!(cx.run_id())) });
    let app = App::new()
        .task("quick", ends_at_once)
        .store(StoreConfig::Disabled)
        .start()
        .await
        .expect("app starts");
    let first = app.runtime().run_task("quick", json!({})).await.expect("first");
    let second = app.runtime().run_task("quick", json!({})).await.expect("second");
    assert_ne!(first, second, "two runs, not one joined");
}

/// A run its caller waits for is driven on the caller's task and written to the store once
/// it waits — `running` while it goes on, read from the store rather than from the
/// runtime's live runs — and a caller that leaves leaves the run to end and its end to be
/// written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_run_is_in_the_store_and_outlives_its_caller() {
    let (release, released) = tokio::sync::watch::channel(false);
    let task = Task::new(move |cx: TaskContext| {
        let mut released = released.clone();
        async move {
            released
                .wait_for(|r| *r)
                .await
                .map_err(|e| TaskError::new(e.to_string()))?;
            Ok::<_, TaskError>(json!(cx.run_id()))
        }
    });
    let app = start(App::new().task("waits", task)).await;
    let runtime = app.runtime().clone();
    let store = runtime.store().expect("a store").clone();
    let caller = tokio::spawn({
        let runtime = runtime.clone();
        async move { runtime.run_task("waits", json!({})).await }
    });
    let stored = |status: RunStatus| {
        let store = store.clone();
        async move {
            tokio::time::timeout(Duration::from_secs(5), async {
                loop {
                    let runs = store.list_runs(&RunFilter::default()).await.expect("listed");
                    if let Some(run) = runs.into_iter().find(|run| run.status == status) {
                        return run;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
            .await
            .unwrap_or_else(|_| panic!("no {status:?} run in the store"))
        }
    };
    let running = stored(RunStatus::Running).await;
    assert_eq!(running.task, "waits");
    assert!(running.started_at.is_some(), "{running:?}");
    caller.abort();
    assert!(caller.await.expect_err("aborted").is_cancelled());
    release.send(true).expect("released");
    let ended = stored(RunStatus::Succeeded).await;
    assert_eq!(ended.id, running.id);
    assert_eq!(ended.result, Some(json!(running.id)));
}
