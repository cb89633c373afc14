//! Durable runs over real HTTP on loopback: `POST /_tasks/NAME/runs` with `run_at`,
//! `delay`, `key`, `priority` and `durable`, a durable task through every endpoint, retry
//! and cancel of stored runs, and bad input refused with nothing stored.

mod common;

use std::time::{Duration, Instant};

use common::durable_backends;
use common::http::{Served, assert_error, get, post, serve_on_store};
use serde::Deserialize;
use serde_json::{Value, json};
use taskyard::{App, Task, TaskContext, TaskError};

#[derive(Deserialize, schemars::JsonSchema)]
struct Email {
    to: String,
}

fn app() -> App {
    App::new()
        .task(
            "email:send",
            Task::new(|_cx: TaskContext, email: Email| async move {
                Ok::<_, TaskError>(json!({ "sent": email.to }))
            }),
        )
        .task(
            "report",
            Task::new(|_cx: TaskContext| async { Ok::<_, TaskError>(json!("report ready")) }).durable(),
        )
        .task(
            "flaky",
            // Fails its first attempt, succeeds after.
            Task::new(|cx: TaskContext| async move {
                if cx.attempt() == 1 {
                    return Err(TaskError::new("first attempt fails"));
                }
                Ok::<_, TaskError>(json!({ "attempt": cx.attempt() }))
            }),
        )
}

/// The stored run, once `done` holds for it (at most 10 s).
async fn run_when(served: &Served, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let run = get(served, &format!("/_tasks/runs/{id}")).await.json();
        if done(&run) {
            return run;
        }
        assert!(Instant::now() < deadline, "run {id} is still {run}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn stored_runs(served: &Served) -> usize {
    get(served, "/_tasks/runs?limit=1000").await.json()["runs"]
        .as_array()
        .map_or(0, Vec::len)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_for_later_is_answered_at_once_and_runs_when_due() {
    for backend in durable_backends().await {
        let name = backend.name;
        let served = serve_on_store(app(), None, backend.config()).await;
        let reply = post(
            &served,
            "/_tasks/email:send/runs",
            r#"{ "payload": { "to": "ada@example.com" }, "delay": "400ms", "key": "welcome:ada", "priority": 3 }"#,
        )
        .await;
        assert_eq!(reply.status, 202, "{name}: {}", reply.text);
        let body = reply.json();
        assert_eq!(body["durable"], true, "{name}: {body}");
        assert_eq!(body["joined"], false, "{name}: {body}");
        let id = body["run_id"].as_str().expect("id").to_owned();
        let queued = get(&served, &format!("/_tasks/runs/{id}")).await.json();
        assert_eq!(queued["status"], "queued", "{name}: {queued}");

        // The same key while the run is queued: the same run.
        let again = post(
            &served,
            "/_tasks/email:send/runs?delay=400",
            r#"{ "payload": { "to": "ada@example.com" }, "key": "welcome:ada" }"#,
        )
        .await;
        assert_eq!(again.status, 202, "{name}: {}", again.text);
        assert_eq!(again.json()["run_id"], json!(id), "{name}");
        assert_eq!(again.json()["joined"], true, "{name}");

        let run = run_when(&served, &id, |run| run["status"] == "succeeded").await;
        assert_eq!(run["result"], json!({ "sent": "ada@example.com" }), "{name}");
        let queued_at = run["queued_at"]
            .as_str()
            .expect("queued")
            .parse::<jiff::Timestamp>()
            .expect("time");
        let started_at = run["started_at"]
            .as_str()
            .expect("started")
            .parse::<jiff::Timestamp>()
            .expect("time");
        assert!(
            started_at.as_millisecond() - queued_at.as_millisecond() >= 400,
            "{name}: {run}"
        );

        // A time in the past runs now, and the caller waits for the result by default.
        let past = post(
            &served,
            "/_tasks/email:send/runs",
            r#"{ "payload": { "to": "bob" }, "run_at": "2020-01-01T00:00:00Z" }"#,
        )
        .await;
        assert_eq!(past.status, 200, "{name}: {}", past.text);
        assert_eq!(past.json()["result"], json!({ "sent": "bob" }), "{name}");
        served.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_naming_the_field_and_nothing_is_stored() {
    for backend in durable_backends().await {
        let name = backend.name;
        let served = serve_on_store(app(), None, backend.config()).await;
        let before = stored_runs(&served).await;
        let cases = [
            ("/_tasks/nope/runs", r#"{ "delay": 10 }"#, 404, None),
            (
                "/_tasks/email:send/runs",
                r#"{ "payload": { "to": 7 }, "delay": 10 }"#,
                400,
                Some("to"),
            ),
            (
                "/_tasks/email:send/runs",
                r#"{ "payload": { "to": "a" }, "run_at": "next tuesday" }"#,
                400,
                Some("run_at"),
            ),
            (
                "/_tasks/email:send/runs",
                r#"{ "payload": { "to": "a" }, "delay": -5 }"#,
                400,
                Some("delay"),
            ),
            (
                "/_tasks/email:send/runs",
                r#"{ "payload": { "to": "a" }, "priority": 500 }"#,
                400,
                Some("priority"),
            ),
            (
                "/_tasks/email:send/runs",
                r#"{ "payload": { "to": "a" }, "key": "" }"#,
                400,
                Some("key"),
            ),
            (
                "/_tasks/email:send/runs",
                r#"{ "payload": { "to": "a" }, "max_attempts": 0 }"#,
                400,
                Some("max_attempts"),
            ),
            (
                "/_tasks/email:send/runs?delay=soon",
                r#"{ "payload": { "to": "a" } }"#,
                400,
                Some("delay"),
            ),
            (
                "/_tasks/email:send/runs?wait=true",
                r#"{ "payload": { "to": "a" }, "delay": "1h" }"#,
                400,
                Some("wait"),
            ),
            // A body without `payload` is the payload: an option there, which the task's
            // payload does not have, would be dropped and the run start at once.
            ("/_tasks/report/runs", r#"{ "delay": "1h" }"#, 400, Some("delay")),
            (
                "/_tasks/email:send/runs",
                r#"{ "to": "a", "run_at": "2030-01-01T00:00:00Z" }"#,
                400,
                Some("run_at"),
            ),
        ];
        for (path, body, status, field) in cases {
            let reply = post(&served, path, body).await;
            let reason = if status == 404 { "Not Found" } else { "Bad Request" };
            let error = assert_error(&reply, status, reason, path);
            if let Some(field) = field {
                assert_eq!(
                    error["data"]["path"],
                    json!(field),
                    "{name}: {path} {body}: {error}"
                );
            }
        }
        assert_eq!(stored_runs(&served).await, before, "{name}: nothing stored");
        served.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_task_goes_through_the_store_from_every_endpoint() {
    for backend in durable_backends().await {
        let name = backend.name;
        let served = serve_on_store(app(), None, backend.config()).await;
        let native = post(&served, "/_tasks/report/runs", "{}").await;
        assert_eq!(native.status, 200, "{name}: {}", native.text);
        assert_eq!(native.json()["result"], json!("report ready"), "{name}");
        let nitro = post(&served, "/_nitro/tasks/report", "{}").await;
        assert_eq!(nitro.status, 200, "{name}: {}", nitro.text);
        assert_eq!(nitro.json()["result"], json!("report ready"), "{name}");
        // A plain task, asked to be durable.
        let asked = post(
            &served,
            "/_tasks/email:send/runs?wait=false",
            r#"{ "payload": { "to": "cy" }, "durable": true }"#,
        )
        .await;
        assert_eq!(asked.status, 202, "{name}: {}", asked.text);
        assert_eq!(asked.json()["durable"], true, "{name}");
        let id = asked.json()["run_id"].as_str().expect("id").to_owned();
        let run = run_when(&served, &id, |run| run["status"] == "succeeded").await;
        assert_eq!(run["trigger"]["kind"], "http", "{name}: {run}");
        served.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_that_joins_a_run_for_later_is_answered_at_once() {
    for backend in durable_backends().await {
        let name = backend.name;
        let served = serve_on_store(app(), None, backend.config()).await;
        let later = post(&served, "/_tasks/report/runs?delay=1h", "{}").await;
        assert_eq!(later.status, 202, "{name}: {}", later.text);
        let id = later.json()["run_id"].clone();
        // `report` runs one at a time (`Dedupe`): every start below joins the run queued
        // for in an hour, and is answered with its id at once, as a run for later is,
        // instead of waiting an hour for its result (`wait=true` included: nothing it
        // could wait for ends within a request).
        for (path, body) in [
            ("/_tasks/report/runs", "{}"),
            ("/_tasks/report/runs?wait=true", "{}"),
            (
                "/_tasks/report/runs",
                r#"{ "payload": {}, "run_at": "2020-01-01T00:00:00Z" }"#,
            ),
        ] {
            let joined = tokio::time::timeout(Duration::from_secs(5), post(&served, path, body))
                .await
                .unwrap_or_else(|_| panic!("{name}: POST {path} {body} waits for the run due in an hour"));
            assert_eq!(joined.status, 202, "{name}: {path} {body}: {}", joined.text);
            let answer = joined.json();
            assert_eq!(answer["run_id"], id, "{name}: {answer}");
            assert_eq!(answer["joined"], true, "{name}: {answer}");
            assert_eq!(answer["durable"], true, "{name}: {answer}");
        }
        // Nitro's endpoint answers with the result, which comes in an hour: 409, naming
        // the run.
        let nitro = tokio::time::timeout(
            Duration::from_secs(5),
            post(&served, "/_nitro/tasks/report", "{}"),
        )
        .await
        .unwrap_or_else(|_| panic!("{name}: Nitro's endpoint waits for the run due in an hour"));
        let error = assert_error(&nitro, 409, "Conflict", "/_nitro/tasks/report");
        assert_eq!(error["data"]["run_id"], id, "{name}: {error}");
        assert_eq!(stored_runs(&served).await, 1, "{name}: one run, joined");
        served.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_is_retried_from_history_and_a_queued_one_cancelled() {
    for backend in durable_backends().await {
        let name = backend.name;
        let served = serve_on_store(app(), None, backend.config()).await;
        let failed = post(&served, "/_tasks/flaky/runs", "{}").await;
        assert_eq!(failed.status, 500, "{name}: {}", failed.text);
        let id = failed.json()["data"]["run_id"].as_str().expect("id").to_owned();

        let retried = post(&served, &format!("/_tasks/runs/{id}/retry"), "").await;
        assert_eq!(retried.status, 202, "{name}: {}", retried.text);
        assert_eq!(retried.json()["attempt"], 2, "{name}");
        let run = run_when(&served, &id, |run| run["status"] == "succeeded").await;
        assert_eq!(run["result"], json!({ "attempt": 2 }), "{name}");
        assert_eq!(run["attempts"][0]["status"], "failed", "{name}: {run}");
        assert_eq!(
            run["attempts"][0]["error"], "first attempt fails",
            "{name}: {run}"
        );

        let path = format!("/_tasks/runs/{id}/retry");
        assert_error(&post(&served, &path, "").await, 409, "Conflict", &path);
        let unknown = "/_tasks/runs/0190b6a2-0000-7000-8000-000000000000/retry";
        assert_error(&post(&served, unknown, "").await, 404, "Not Found", unknown);

        let later = post(
            &served,
            "/_tasks/email:send/runs",
            r#"{ "payload": { "to": "dee" }, "delay": "1h" }"#,
        )
        .await;
        let later = later.json()["run_id"].as_str().expect("id").to_owned();
        let cancelled = post(&served, &format!("/_tasks/runs/{later}/cancel"), "").await;
        assert_eq!(cancelled.status, 200, "{name}: {}", cancelled.text);
        let run = get(&served, &format!("/_tasks/runs/{later}")).await.json();
        assert_eq!(run["status"], "cancelled", "{name}: {run}");
        served.stop().await;
    }
}
