//! A task that keeps no succeeded durable runs (`Task::keep_succeeded(false)`), on SQLite
//! and PostgreSQL: its durable runs that succeed leave the store at their end and their
//! callers receive `null`; its failures and its in-process runs are kept; the dashboard's
//! counts have the runs not kept; the API and the dashboard say so.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::durable_backends;
use common::http::{get, post, serve_on_store};
use serde_json::{Value, json};
use taskyard::{
    App, Concurrency, Error, Retry, RunFilter, RunRequest, RunStatus, Task, TaskContext, TaskError,
};

/// `mail`: fails its first attempt when the payload says `flaky`, every attempt when it
/// says `fail`, and otherwise answers with what it was sent; `ran` counts its attempts.
fn mail(ran: &Arc<AtomicUsize>) -> Task {
    let ran = ran.clone();
    Task::new(move |cx: TaskContext| {
        let ran = ran.clone();
        async move {
            ran.fetch_add(1, Ordering::SeqCst);
            let payload = cx.payload();
            if payload["fail"] == json!(true) || (payload["flaky"] == json!(true) && cx.attempt() == 1) {
                return Err(TaskError::new("the mail server said no"));
            }
            Ok::<_, TaskError>(json!({ "sent": payload.clone() }))
        }
    })
    .concurrency(Concurrency::Unlimited)
    .retry(Retry::exponential(2).initial(Duration::from_millis(10)))
    .keep_succeeded(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn succeeded_durable_runs_leave_the_store_and_the_rest_are_kept() {
    for backend in durable_backends().await {
        let name = backend.name;
        let ran = Arc::new(AtomicUsize::new(0));
        let app = App::new()
            .store(backend.config())
            .task("mail", mail(&ran))
            .start()
            .await
            .expect("app starts");
        let runtime = app.runtime();

        let enqueued = runtime
            .enqueue("mail", json!({ "n": 1 }))
            .handle()
            .await
            .expect("enqueued");
        let first = enqueued.run_id();
        assert_eq!(
            enqueued.outcome().await.expect("succeeded"),
            Value::Null,
            "{name}"
        );
        assert_eq!(
            runtime.get_run(first).await.expect("read"),
            None,
            "{name}: no record"
        );
        assert!(
            matches!(runtime.outcome(first).await, Err(Error::RunNotFound(_))),
            "{name}: not found by id once it is gone"
        );

        let durable = runtime
            .start(
                RunRequest::new("mail")
                    .payload(json!({ "flaky": true }))
                    .durable(),
            )
            .await
            .expect("started");
        let flaky = durable.run_id();
        assert_eq!(
            durable.outcome().await.expect("succeeded on its second attempt"),
            Value::Null,
            "{name}"
        );
        assert_eq!(
            runtime.get_run(flaky).await.expect("read"),
            None,
            "{name}: its retry left no trace"
        );

        let failing = runtime
            .start(RunRequest::new("mail").payload(json!({ "fail": true })).durable())
            .await
            .expect("started");
        let failed = failing.run_id();
        let error = failing.outcome().await.expect_err("failed");
        assert!(
            error.to_string().contains("the mail server said no"),
            "{name}: {error}"
        );
        let record = runtime
            .get_run(failed)
            .await
            .expect("read")
            .expect("a failure is kept");
        assert_eq!(record.status, RunStatus::Failed, "{name}");
        assert_eq!(record.attempt, 2, "{name}: its last attempt in its record");
        assert_eq!(
            record.attempts.len(),
            1,
            "{name}: and the one before among its attempts"
        );

        let local = runtime
            .run_task("mail", json!({ "n": 2 }))
            .await
            .expect("in process");
        assert_eq!(
            local,
            json!({ "sent": { "n": 2 } }),
            "{name}: an in-process run keeps its result"
        );

        runtime.flush_records().await.expect("records written");
        let page = runtime.list_runs(&RunFilter::default()).await.expect("listed");
        let mut kept: Vec<RunStatus> = page.iter().map(|run| run.status).collect();
        kept.sort_by_key(|status| status.to_string());
        assert_eq!(
            kept,
            vec![RunStatus::Failed, RunStatus::Succeeded],
            "{name}: {page:?}"
        );
        assert!(
            page.iter().all(|run| run.id != first && run.id != flaky),
            "{name}: the durable successes are not listed"
        );
        // One attempt for the first run, two for the flaky one, two for the failing one,
        // one in process: every forgotten run did run.
        assert_eq!(ran.load(Ordering::SeqCst), 6, "{name}");
        // The dashboard's counts have them: the two forgotten successes beside the kept
        // one, and the failure.
        let since = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1);
        let counts = runtime.run_counts(since, 3_600_000).await.expect("counted");
        let total = |status: RunStatus| {
            counts
                .iter()
                .filter(|count| count.status == status)
                .map(|count| count.count)
                .sum::<u64>()
        };
        assert_eq!(
            (total(RunStatus::Succeeded), total(RunStatus::Failed)),
            (3, 1),
            "{name}: {counts:?}"
        );
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_keeps_its_succeeded_durable_runs_unless_told_otherwise() {
    for backend in durable_backends().await {
        let name = backend.name;
        let ran = Arc::new(AtomicUsize::new(0));
        let app = App::new()
            .store(backend.config())
            .task("mail", mail(&ran).keep_succeeded(true))
            .start()
            .await
            .expect("app starts");
        let handle = app
            .runtime()
            .enqueue("mail", json!({ "n": 1 }))
            .handle()
            .await
            .expect("enqueued");
        let id = handle.run_id();
        assert_eq!(
            handle.outcome().await.expect("succeeded"),
            json!({ "sent": { "n": 1 } }),
            "{name}"
        );
        let record = app.runtime().get_run(id).await.expect("read").expect("kept");
        assert_eq!(record.status, RunStatus::Succeeded, "{name}");
        assert!(Task::new(|_cx: TaskContext| async { Ok::<_, TaskError>(()) }).keeps_succeeded());
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_and_the_dashboard_say_the_succeeded_runs_are_not_kept() {
    for backend in durable_backends().await {
        let name = backend.name;
        let ran = Arc::new(AtomicUsize::new(0));
        let app = App::new()
            .task("mail", mail(&ran))
            .task("kept", mail(&ran).keep_succeeded(true));
        let served = serve_on_store(app, None, backend.config()).await;
        let tasks = get(&served, "/_tasks").await.json();
        let keeps = |task: &str| {
            tasks["tasks"]
                .as_array()
                .expect("tasks")
                .iter()
                .find(|info| info["name"] == task)
                .map(|info| info["keep_succeeded"].clone())
        };
        assert_eq!(keeps("mail"), Some(json!(false)), "{name}: {tasks}");
        assert_eq!(keeps("kept"), Some(json!(true)), "{name}: {tasks}");

        let reply = post(
            &served,
            "/_tasks/mail/runs",
            r#"{ "payload": { "n": 1 }, "durable": true }"#,
        )
        .await;
        assert_eq!(reply.status, 200, "{name}: {}", reply.text);
        let body = reply.json();
        assert_eq!(body["result"], Value::Null, "{name}: {body}");
        let id = body["run_id"].as_str().expect("its id");
        assert_eq!(
            get(&served, &format!("/_tasks/runs/{id}")).await.status,
            404,
            "{name}"
        );

        // The page counts the run: each instance writes its counts about once a second.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let page = loop {
            let page = get(&served, "/_tasks/ui/tasks/mail").await;
            assert_eq!(page.status, 200, "{name}");
            if page
                .text
                .contains("not kept, nor counted below: 1 in the last day")
            {
                break page;
            }
            assert!(tokio::time::Instant::now() < deadline, "{name}: {}", page.text);
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(
            page.text.contains("succeeded durable runs are not kept"),
            "{name}"
        );
        let page = get(&served, "/_tasks/ui/tasks/kept").await;
        assert!(!page.text.contains("not kept"), "{name}");
        served.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_task_page_fails_openly_when_the_counts_cannot_be_read() {
    let backend = common::sqlite();
    let ran = Arc::new(AtomicUsize::new(0));
    let app = App::new().task("mail", mail(&ran));
    let served = serve_on_store(app, None, backend.config()).await;
    let page = get(&served, "/_tasks/ui/tasks/mail").await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(
        page.text
            .contains("not kept, nor counted below: 0 in the last day")
    );

    // The counts' table gone, under the running instance: its runs are still read.
    let breaker = sqlx::SqlitePool::connect(&backend.url)
        .await
        .expect("a second connection");
    sqlx::query("DROP TABLE taskyard_forgotten")
        .execute(&breaker)
        .await
        .expect("dropped");
    assert_eq!(get(&served, "/_tasks/runs?task=mail").await.status, 200);
    let page = get(&served, "/_tasks/ui/tasks/mail").await;
    assert_eq!(page.status, 503, "{}", page.text);
    assert!(
        page.text.contains("no such table: taskyard_forgotten"),
        "{}",
        page.text
    );
    assert!(!page.text.contains("in the last day"), "{}", page.text);
    breaker.close().await;
    served.stop().await;
}
