//! The task endpoints over real HTTP on loopback: Nitro's shapes and examples, the native
//! API, every error status in the one JSON shape, access rules, the event stream and the
//! OpenAPI document.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::http::{assert_error, call, get, post, serve, serve_on_store};
use serde::Deserialize;
use serde_json::{Value, json};
use taskyard::http::TasksAccess;
use taskyard::schedule::Schedule;
use taskyard::{App, Concurrency, StoreConfig, Task, TaskContext, TaskError};
use tokio_util::sync::CancellationToken;

fn echo() -> Task {
    Task::new(|_cx: TaskContext, payload: Value| async move { Ok::<_, TaskError>(payload) })
        .description("Returns the provided payload")
        .concurrency(Concurrency::Parallel(16))
}

fn nitro_app() -> App {
    App::new()
        .task("echo:payload", echo())
        .task(
            "db:migrate",
            Task::new(|_cx: TaskContext| async { Ok::<_, TaskError>("Success") })
                .description("Run database migrations"),
        )
        .task(
            "cms:update",
            Task::new(|_cx: TaskContext| async { Ok::<_, TaskError>("Success") })
                .description("Update CMS content"),
        )
        .config_toml(
            "taskyard.toml",
            "[scheduled_tasks]\n\"* * * * *\" = [\"cms:update\"]",
        )
        .schedule_log(None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nitro_endpoints_answer_the_documented_json() {
    let served = serve(nitro_app(), None).await;

    let list = get(&served, "/_nitro/tasks").await;
    assert_eq!(list.status, 200);
    assert_eq!(
        list.json(),
        json!({
            "tasks": {
                "db:migrate": { "description": "Run database migrations" },
                "cms:update": { "description": "Update CMS content" },
                "echo:payload": { "description": "Returns the provided payload" }
            },
            "scheduledTasks": [{ "cron": "* * * * *", "tasks": ["cms:update"] }]
        })
    );

    // [GET] /_nitro/tasks/echo:payload?field=value&array=1&array=2
    let reply = get(&served, "/_nitro/tasks/echo:payload?field=value&array=1&array=2").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        reply.json(),
        json!({ "result": { "field": "value", "array": ["1", "2"] } })
    );

    // [POST] /_nitro/tasks/echo:payload?field=value with a body payload.
    let body = r#"{"payload":{"answer":42,"nested":{"value":true}}}"#;
    let reply = post(&served, "/_nitro/tasks/echo:payload?field=value", body).await;
    assert_eq!(
        reply.json(),
        json!({ "result": { "field": "value", "answer": 42, "nested": { "value": true } } })
    );

    // Body keys win over query keys.
    let reply = post(
        &served,
        "/_nitro/tasks/echo:payload?field=value&keep=1",
        r#"{"payload":{"field":"from body"}}"#,
    )
    .await;
    assert_eq!(
        reply.json(),
        json!({ "result": { "field": "from body", "keep": "1" } })
    );

    // Nitro's own task shape runs as well.
    let reply = post(&served, "/_nitro/tasks/db:migrate", "").await;
    assert_eq!(reply.json(), json!({ "result": "Success" }));
    served.stop().await;

    // Without schedules, `scheduledTasks` is `false`; a task without a description is `{}`.
    let bare = App::new().task(
        "plain",
        Task::new(|_cx: TaskContext| async { Ok::<_, TaskError>(1) }),
    );
    let served = serve(bare, None).await;
    assert_eq!(
        get(&served, "/_nitro/tasks").await.json(),
        json!({ "tasks": { "plain": {} }, "scheduledTasks": false })
    );
    served.stop().await;
}

#[derive(Deserialize, schemars::JsonSchema)]
#[allow(dead_code)]
struct Resize {
    width: u32,
    image: Image,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[allow(dead_code)]
struct Image {
    url: String,
}

fn typed() -> Task {
    Task::new(|_cx: TaskContext, resize: Resize| async move { Ok::<_, TaskError>(resize.width) })
        .description("Resizes an image")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_has_its_status_and_the_one_json_shape() {
    let app = nitro_app()
        .task("image:resize", typed())
        .task(
            "demo:fail",
            Task::new(|_cx: TaskContext| async {
                Err::<Value, _>(TaskError::new("the demo fails on purpose"))
            }),
        )
        .body_limit(1024);
    let served = serve(app, None).await;

    // 400: a payload that does not fit the task's type names the field.
    let path = "/_tasks/image:resize/runs";
    let reply = post(&served, path, r#"{"payload":{"width":10,"image":{"url":5}}}"#).await;
    let body = assert_error(&reply, 400, "Bad Request", path);
    assert_eq!(body["data"]["path"], "image.url", "{body}");
    // 400: not JSON at all.
    let reply = post(&served, path, "{not json").await;
    let body = assert_error(&reply, 400, "Bad Request", path);
    assert!(
        body["message"]
            .as_str()
            .expect("message")
            .contains("not valid JSON"),
        "{body}"
    );
    // 400: a payload that is not an object.
    let reply = post(&served, "/_nitro/tasks/echo:payload", r#"{"payload":[1,2]}"#).await;
    assert_error(&reply, 400, "Bad Request", "/_nitro/tasks/echo:payload");
    // 400: a bad query value names it.
    let reply = get(&served, "/_tasks/runs?status=done").await;
    let body = assert_error(&reply, 400, "Bad Request", "/_tasks/runs?status=done");
    assert!(
        body["message"].as_str().expect("message").contains("done"),
        "{body}"
    );

    // 404: unknown task (Nitro's message), run, schedule and endpoint.
    let reply = post(&served, "/_nitro/tasks/nope", "").await;
    let body = assert_error(&reply, 404, "Not Found", "/_nitro/tasks/nope");
    assert_eq!(body["message"], "Task `nope` is not available!");
    let reply = post(&served, "/_tasks/nope/runs", "").await;
    assert_error(&reply, 404, "Not Found", "/_tasks/nope/runs");
    let missing = "/_tasks/runs/01900000-0000-7000-8000-000000000000";
    assert_error(&get(&served, missing).await, 404, "Not Found", missing);
    assert_error(
        &get(&served, "/_tasks/runs/garbage").await,
        404,
        "Not Found",
        "/_tasks/runs/garbage",
    );
    let reply = post(&served, "/_tasks/schedules/nope/pause", "").await;
    assert_error(&reply, 404, "Not Found", "/_tasks/schedules/nope/pause");
    let body = assert_error(
        &get(&served, "/_tasks/nothing/here").await,
        404,
        "Not Found",
        "/_tasks/nothing/here",
    );
    assert_eq!(
        body["message"],
        "`/_tasks/nothing/here` is not a task endpoint; see GET /_tasks/openapi.json for the list"
    );
    for path in ["/_nitro", "/_nitro/nothing", "/_nitro/tasks/echo:payload/more"] {
        let body = assert_error(&get(&served, path).await, 404, "Not Found", path);
        let message = format!("`{path}` is not a task endpoint; see GET /_tasks/openapi.json for the list");
        assert_eq!(body["message"], message.as_str(), "{path}");
    }
    // The dashboard answers its own 404, a page.
    let reply = get(&served, "/_tasks/ui/nothing").await;
    assert_eq!(reply.status, 404);
    assert!(reply.text.contains("The dashboard has no page"), "{}", reply.text);

    // 405 with Allow.
    let reply = call("DELETE", served.url("/_tasks/runs"), None, &[]).await;
    assert_error(&reply, 405, "Method Not Allowed", "/_tasks/runs");
    assert_eq!(reply.header("allow"), Some("GET,HEAD"), "{:?}", reply.headers);
    let reply = get(&served, "/_tasks/echo:payload/runs").await;
    assert_error(&reply, 405, "Method Not Allowed", "/_tasks/echo:payload/runs");
    let reply = call("DELETE", served.url("/_nitro/tasks/echo:payload"), None, &[]).await;
    assert_error(&reply, 405, "Method Not Allowed", "/_nitro/tasks/echo:payload");
    assert_eq!(
        reply.header("allow"),
        Some("GET,HEAD,POST"),
        "{:?}",
        reply.headers
    );

    // 413 over the body limit.
    let big = format!(r#"{{"payload":{{"blob":"{}"}}}}"#, "x".repeat(4096));
    let reply = post(&served, "/_nitro/tasks/echo:payload", &big).await;
    let body = assert_error(&reply, 413, "Payload Too Large", "/_nitro/tasks/echo:payload");
    assert!(
        body["message"].as_str().expect("message").contains("1024 bytes"),
        "{body}"
    );

    // 500: the task's own error message, with the run id to read the record.
    let reply = post(&served, "/_tasks/demo:fail/runs", "").await;
    let body = assert_error(&reply, 500, "Internal Server Error", "/_tasks/demo:fail/runs");
    assert!(
        body["message"]
            .as_str()
            .expect("message")
            .contains("fails on purpose"),
        "{body}"
    );
    let run_id = body["data"]["run_id"].as_str().expect("run id").to_owned();
    let record = get(&served, &format!("/_tasks/runs/{run_id}")).await.json();
    assert_eq!(record["status"], "failed", "{record}");

    // 409: cancelling a run that has finished.
    let path = format!("/_tasks/runs/{run_id}/cancel");
    let reply = post(&served, &path, "").await;
    let body = assert_error(&reply, 409, "Conflict", &path);
    assert!(
        body["message"]
            .as_str()
            .expect("message")
            .contains("already finished"),
        "{body}"
    );
    served.stop().await;
}

/// A POST whose body is sent chunked, in `pieces` written apart, over a raw connection:
/// (status, response body). Unless `complete`, the client stops sending after the pieces
/// (it shuts its side of the connection) without the body's end.
async fn post_chunked(
    served: &common::http::Served,
    path: &str,
    pieces: Vec<String>,
    complete: bool,
) -> (u16, Value) {
    use std::io::{Read, Write};
    let address = served.base.trim_start_matches("http://").to_owned();
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(&address).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        write!(
            stream,
            "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )
        .expect("head");
        for piece in pieces {
            write!(stream, "{:x}\r\n{piece}\r\n", piece.len()).expect("piece");
            stream.flush().expect("flush");
            // Apart, so that the server reads them as pieces of their own.
            std::thread::sleep(Duration::from_millis(30));
        }
        if complete {
            // The server may answer a body over the limit before its end, and close.
            let _ = stream.write_all(b"0\r\n\r\n");
        } else {
            stream.shutdown(std::net::Shutdown::Write).expect("shutdown");
        }
        let mut reply = Vec::new();
        let _ = stream.read_to_end(&mut reply);
        let reply = String::from_utf8_lossy(&reply).into_owned();
        let status: u16 = reply
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no status line: {reply}"));
        let (_, body) = reply.split_once("\r\n\r\n").expect("a head and a body");
        let body = serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
        (status, body)
    })
    .await
    .expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_sent_in_pieces_is_read_whole_and_held_to_the_limit() {
    let served = serve(nitro_app().body_limit(1024), None).await;
    // In one piece, and in three.
    let (status, body) = post_chunked(
        &served,
        "/_nitro/tasks/echo:payload",
        vec![r#"{"payload":{"answer":42}}"#.to_owned()],
        true,
    )
    .await;
    assert_eq!((status, body), (200, json!({ "result": { "answer": 42 } })));
    let pieces = [r#"{"payload":"#, r#"{"answer":42,"#, r#""more":[1,2]}}"#];
    let (status, body) = post_chunked(
        &served,
        "/_nitro/tasks/echo:payload",
        pieces.iter().map(|piece| (*piece).to_owned()).collect(),
        true,
    )
    .await;
    assert_eq!(
        (status, body),
        (200, json!({ "result": { "answer": 42, "more": [1, 2] } }))
    );
    let (status, body) = post_chunked(
        &served,
        "/_tasks/echo:payload/runs",
        pieces.iter().map(|piece| (*piece).to_owned()).collect(),
        true,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"], json!({ "answer": 42, "more": [1, 2] }), "{body}");
    // Without a length to refuse it by at once, a body is refused where it passes the
    // limit: here in its second piece of 600 bytes.
    let blob = "x".repeat(600);
    let (status, body) = post_chunked(
        &served,
        "/_nitro/tasks/echo:payload",
        vec![
            format!(r#"{{"payload":{{"a":"{blob}","#),
            format!(r#""b":"{blob}"}}}}"#),
        ],
        true,
    )
    .await;
    assert_eq!(status, 413, "{body}");
    assert!(
        body["message"].as_str().expect("message").contains("1024 bytes"),
        "{body}"
    );
    // A client that stops sending before the body's end: 400, naming the body.
    let (status, body) = post_chunked(
        &served,
        "/_nitro/tasks/echo:payload",
        vec![r#"{"payload":{"answer":"#.to_owned()],
        false,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .expect("message")
            .contains("cannot read the request body"),
        "{body}"
    );
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_follows_the_rule_loopback_token_or_off() {
    // Development: a client that is not on loopback is refused.
    let outside: SocketAddr = "203.0.113.9:40000".parse().expect("addr");
    let app = nitro_app().tasks_access(TasksAccess::Loopback);
    let served = serve(app, Some(outside)).await;
    for path in ["/_tasks", "/_nitro/tasks", "/_tasks/runs"] {
        let reply = get(&served, path).await;
        let body = assert_error(&reply, 403, "Forbidden", path);
        assert_eq!(body["message"], "Forbidden IP");
    }
    served.stop().await;
    let inside: SocketAddr = "127.0.0.1:40000".parse().expect("addr");
    let served = serve(nitro_app().tasks_access(TasksAccess::Loopback), Some(inside)).await;
    assert_eq!(get(&served, "/_nitro/tasks").await.status, 200);
    served.stop().await;

    // Production with a token: from anywhere, but only with the token.
    let app = nitro_app().tasks_access(TasksAccess::Token("s3cret-token".into()));
    let served = serve(app, Some(outside)).await;
    let reply = get(&served, "/_tasks").await;
    assert_error(&reply, 401, "Unauthorized", "/_tasks");
    assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
    let reply = call(
        "GET",
        served.url("/_tasks"),
        None,
        &[("authorization", "Basic abc")],
    )
    .await;
    assert_error(&reply, 401, "Unauthorized", "/_tasks");
    let reply = call(
        "GET",
        served.url("/_tasks"),
        None,
        &[("authorization", "Bearer wrong")],
    )
    .await;
    assert_error(&reply, 403, "Forbidden", "/_tasks");
    let reply = call(
        "POST",
        served.url("/_nitro/tasks/echo:payload?a=1"),
        None,
        &[("authorization", "Bearer s3cret-token")],
    )
    .await;
    assert_eq!(
        (reply.status, reply.json()),
        (200, json!({ "result": { "a": "1" } }))
    );
    served.stop().await;

    // Production without a token: the endpoints do not exist.
    let served = serve(nitro_app().tasks_access(TasksAccess::Off), Some(inside)).await;
    assert_eq!(get(&served, "/_nitro/tasks").await.status, 404);
    assert_eq!(get(&served, "/_tasks").await.status, 404);
    served.stop().await;
}

fn slow() -> Task {
    #[derive(Deserialize, schemars::JsonSchema)]
    struct Slow {
        #[serde(default = "default_ms")]
        ms: u64,
    }
    fn default_ms() -> u64 {
        1000
    }
    Task::new(|cx: TaskContext, slow: Slow| async move {
        let steps = 5u64;
        for step in 0..steps {
            cx.progress(step as f64 / steps as f64, format!("step {}", step + 1));
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(slow.ms / steps)) => {}
                _ = cx.cancelled() => return Err(TaskError::new("cancelled")),
            }
        }
        cx.progress(1.0, "done");
        Ok::<_, TaskError>(json!({ "slept_ms": slow.ms }))
    })
    .description("Sleeps, reporting progress")
    .concurrency(Concurrency::Parallel(4))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_and_schedules_can_be_listed_read_cancelled_and_paused() {
    let app = nitro_app()
        .task("demo:slow", slow())
        .schedule("nightly", Schedule::worker().cron("0 3 * * *").task("db:migrate"));
    let served = serve(app, None).await;

    let tasks = get(&served, "/_tasks").await.json();
    let names: Vec<&str> = tasks["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|task| task["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["cms:update", "db:migrate", "demo:slow", "echo:payload"]);
    let slow_task = &tasks["tasks"][2];
    assert_eq!(
        slow_task["concurrency"],
        json!({ "mode": "parallel", "limit": 4 })
    );
    assert_eq!(slow_task["payload_schema"]["properties"]["ms"]["type"], "integer");

    // Start without waiting, read it running, cancel it.
    let reply = post(
        &served,
        "/_tasks/demo:slow/runs?wait=false",
        r#"{"payload":{"ms":20000}}"#,
    )
    .await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    let run_id = reply.json()["run_id"].as_str().expect("run id").to_owned();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let running = get(&served, &format!("/_tasks/runs/{run_id}")).await.json();
    assert_eq!(running["status"], "running", "{running}");
    for field in [
        "id",
        "task",
        "status",
        "trigger",
        "attempt",
        "instance",
        "started_at",
        "finished_at",
        "duration_ms",
        "result",
        "error",
        "progress",
    ] {
        assert!(running.get(field).is_some(), "`{field}` missing: {running}");
    }
    assert_eq!(running["trigger"], json!({ "kind": "http" }));
    let reply = post(&served, &format!("/_tasks/runs/{run_id}/cancel"), "").await;
    assert_eq!(reply.json(), json!({ "run_id": run_id, "cancelled": true }));
    let mut status = Value::Null;
    for _ in 0..50 {
        status = get(&served, &format!("/_tasks/runs/{run_id}")).await.json()["status"].clone();
        if status == "cancelled" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, "cancelled");

    // A waited run, then listings filtered by task and status.
    let reply = post(&served, "/_tasks/echo:payload/runs", r#"{"payload":{"n":1}}"#).await;
    assert_eq!(reply.json()["result"], json!({ "n": 1 }));
    let runs = get(&served, "/_tasks/runs?task=demo:slow").await.json();
    let runs = runs["runs"].as_array().expect("runs").clone();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["id"], run_id.as_str());
    let succeeded = get(&served, "/_tasks/runs?status=succeeded&limit=10")
        .await
        .json();
    // The app's every-minute schedule adds a `cms:update` run when the test crosses a
    // minute: the page holds succeeded runs only, the waited one among them.
    let listed = succeeded["runs"].as_array().expect("runs");
    assert!(
        listed.iter().all(|run| run["status"] == "succeeded"),
        "{succeeded}"
    );
    assert!(
        listed.iter().any(|run| run["task"] == "echo:payload"),
        "{succeeded}"
    );

    // Schedules: the next fire time, pause and resume.
    let schedules = get(&served, "/_tasks/schedules").await.json();
    let nightly = schedules["schedules"]
        .as_array()
        .expect("schedules")
        .iter()
        .find(|schedule| schedule["name"] == "nightly")
        .expect("nightly listed")
        .clone();
    assert_eq!(nightly["cron"], "0 3 * * *");
    assert!(
        nightly["next"].as_str().expect("next").contains("T03:00:00"),
        "{nightly}"
    );
    assert_eq!(nightly["paused"], false);
    let paused = post(&served, "/_tasks/schedules/nightly/pause", "").await.json();
    assert_eq!(
        (paused["paused"].clone(), paused["next"].clone()),
        (json!(true), Value::Null)
    );
    let resumed = post(&served, "/_tasks/schedules/nightly/resume", "").await.json();
    assert_eq!(resumed["paused"], false);
    assert_eq!(resumed["next"], nightly["next"]);
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_delivers_a_runs_progress_in_order() {
    let served = serve(nitro_app().task("demo:slow", slow()), None).await;
    let reply = post(
        &served,
        "/_tasks/demo:slow/runs?wait=false",
        r#"{"payload":{"ms":500}}"#,
    )
    .await;
    let run_id = reply.json()["run_id"].as_str().expect("run id").to_owned();
    // Follows the run: its record first, then events until it finishes, then the stream ends.
    let stream = call(
        "GET",
        served.url(&format!("/_tasks/events?run={run_id}")),
        None,
        &[],
    )
    .await;
    assert_eq!(stream.status, 200);
    assert!(
        stream
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/event-stream")),
        "{:?}",
        stream.headers
    );
    let mut events: Vec<(String, Value)> = Vec::new();
    let mut name = String::new();
    for line in stream.text.lines() {
        if let Some(event) = line.strip_prefix("event: ") {
            name = event.to_owned();
        } else if let Some(data) = line.strip_prefix("data: ") {
            events.push((name.clone(), serde_json::from_str(data).expect("JSON data")));
        }
    }
    assert_eq!(
        events.first().map(|(name, _)| name.as_str()),
        Some("run"),
        "{events:?}"
    );
    assert_eq!(events[0].1["id"], run_id.as_str());
    let (last_name, last) = events.last().expect("events");
    assert_eq!(last_name, "finished", "{events:?}");
    assert_eq!(last["status"], "succeeded");
    let fractions: Vec<f64> = events
        .iter()
        .filter(|(name, _)| name == "progress")
        .map(|(_, event)| event["fraction"].as_f64().expect("fraction"))
        .collect();
    // The run may have begun before the stream opened: what is seen is an ordered tail
    // ending at 1.0, and at least the last steps.
    assert!(fractions.len() >= 2, "{events:?}");
    assert!(
        fractions.windows(2).all(|pair| pair[0] < pair[1]),
        "{fractions:?}"
    );
    assert_eq!(fractions.last(), Some(&1.0));
    assert!(
        events
            .iter()
            .all(|(_, event)| event.get("run_id").is_none_or(|id| id == run_id.as_str())),
        "only this run's events: {events:?}"
    );

    // A finished run's stream holds its record and ends at once.
    let again = call(
        "GET",
        served.url(&format!("/_tasks/events?run={run_id}")),
        None,
        &[],
    )
    .await;
    assert_eq!(again.text.matches("event: ").count(), 1, "{}", again.text);
    assert!(again.text.contains("\"succeeded\""), "{}", again.text);
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_values_take_the_payload_types_and_a_bad_one_says_to_send_json() {
    let served = serve(nitro_app().task("demo:slow", slow()), None).await;
    let reply = get(&served, "/_nitro/tasks/demo:slow?ms=20").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let path = "/_nitro/tasks/demo:slow?ms=soon";
    let reply = get(&served, path).await;
    let body = assert_error(&reply, 400, "Bad Request", path);
    let message = body["message"].as_str().unwrap_or("");
    assert!(message.contains("`ms`"), "{message}");
    assert!(message.contains("JSON body"), "says how to send it: {message}");
    // A body value of the wrong type is the body's fault: no word of the query.
    let reply = post(&served, "/_nitro/tasks/demo:slow", r#"{"payload":{"ms":"soon"}}"#).await;
    let body = assert_error(&reply, 400, "Bad Request", "/_nitro/tasks/demo:slow");
    assert!(
        !body["message"].as_str().unwrap_or("").contains("Query values"),
        "{body}"
    );
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_names_and_bad_filters_are_answered_in_the_error_shape() {
    let served = serve(nitro_app(), None).await;
    for (method, path) in [
        ("GET", "/_nitro/tasks/%FF"),
        ("POST", "/_tasks/%FF/runs"),
        ("GET", "/_tasks/runs/%FF"),
        ("GET", "/_tasks/schedules/%C3%28"),
        ("POST", "/_tasks/schedules/%FF/pause"),
    ] {
        let reply = call(method, served.url(path), None, &[]).await;
        let body = assert_error(&reply, 400, "Bad Request", path);
        assert!(
            body["message"].as_str().unwrap_or("").contains("UTF-8"),
            "{path}: {body}"
        );
    }
    let reply = get(&served, "/_tasks/runs?status=bogus").await;
    let body = assert_error(&reply, 400, "Bad Request", "/_tasks/runs?status=bogus");
    assert_eq!(
        body["message"],
        "query parameter `status=bogus` is not valid; expected one of queued, running, succeeded, failed, cancelled, timed_out, abandoned"
    );
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn following_a_run_on_another_instance_ends_soon_after_it_finishes_despite_other_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = StoreConfig::Sqlite(dir.path().join("shared.db"));
    let served = serve_on_store(nitro_app(), None, store.clone()).await;
    let other = App::new()
        .task("demo:slow", slow())
        .store(store)
        .shutdown_grace(Duration::from_millis(300))
        .start()
        .await
        .expect("the other instance starts");
    let handle = other
        .runtime()
        .start(taskyard::RunRequest::new("demo:slow").payload(json!({ "ms": 1500 })))
        .await
        .expect("a run on the other instance");
    let run_id = handle.run_id();
    // The other instance writes the run's first record without waiting: follow it once the
    // shared store has it.
    let mut waited = 0;
    while get(&served, &format!("/_tasks/runs/{run_id}")).await.status != 200 {
        waited += 1;
        assert!(waited < 100, "the other instance never recorded its run");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Unrelated events every 100 ms on the instance that streams.
    let busy = CancellationToken::new();
    let noise = tokio::spawn({
        let busy = busy.clone();
        let url = served.url("/_nitro/tasks/echo:payload");
        async move {
            while !busy.is_cancelled() {
                call("GET", url.clone(), None, &[]).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
    let following = tokio::spawn(call(
        "GET",
        served.url(&format!("/_tasks/events?run={run_id}")),
        None,
        &[],
    ));
    handle.outcome().await.expect("the run succeeds");
    let finished = std::time::Instant::now();
    let stream = tokio::time::timeout(Duration::from_secs(8), following)
        .await
        .expect("the stream ends after the run finishes")
        .expect("stream task");
    let lag = finished.elapsed();
    busy.cancel();
    noise.await.expect("noise");
    assert!(stream.text.contains("event: finished"), "{}", stream.text);
    assert!(
        lag < Duration::from_millis(2500),
        "the stream ended {lag:?} after the run"
    );
    other.shutdown().await;
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_lists_every_endpoint_and_resolves_every_reference() {
    let served = serve(nitro_app().task("image:resize", typed()), None).await;
    let document = get(&served, "/_tasks/openapi.json").await.json();
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().expect("paths");
    for path in [
        "/_tasks",
        "/_tasks/health",
        "/_tasks/{name}/runs",
        "/_tasks/runs",
        "/_tasks/runs/{id}",
        "/_tasks/runs/{id}/cancel",
        "/_tasks/schedules",
        "/_tasks/schedules/{name}",
        "/_tasks/schedules/{name}/pause",
        "/_tasks/schedules/{name}/resume",
        "/_tasks/events",
        "/_tasks/openapi.json",
        "/_nitro/tasks",
        "/_nitro/tasks/{name}",
        "/_tasks/image:resize/runs",
        "/_tasks/echo:payload/runs",
    ] {
        assert!(paths.contains_key(path), "{path} missing");
    }
    // Every reference points at something in the document, including the payload
    // schema's own definitions (moved into components).
    let mut refs = Vec::new();
    collect_refs(&document, &mut refs);
    assert!(refs.iter().any(|r| r.contains("image.resize.Image")), "{refs:?}");
    for reference in refs {
        let pointer = reference.strip_prefix('#').expect("local ref");
        let pointer = pointer.replace("~1", "/");
        assert!(
            document.pointer(&pointer).is_some(),
            "{reference} does not resolve"
        );
    }
    // Every operation id is unique.
    let mut ids: Vec<&str> = paths
        .values()
        .flat_map(|item| item.as_object().expect("path item").values())
        .filter_map(|operation| operation["operationId"].as_str())
        .collect();
    let count = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), count);
    served.stop().await;
}

fn collect_refs(value: &Value, refs: &mut Vec<String>) {
    match value {
        Value::Object(object) => {
            for (key, inner) in object {
                match (key.as_str(), inner) {
                    ("$ref", Value::String(target)) => refs.push(target.clone()),
                    _ => collect_refs(inner, refs),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_refs(item, refs)),
        _ => {}
    }
}
