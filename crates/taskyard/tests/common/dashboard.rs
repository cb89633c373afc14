//! The app the dashboard's tests serve, and runs started and followed over the JSON API.

use std::time::Duration;

use serde_json::{Value, json};
use taskyard::{App, Concurrency, Task, TaskContext, TaskError};

use super::http::{Served, call};

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[allow(dead_code)]
pub struct Resize {
    /// Pixels wide
    width: u32,
    fit: Fit,
    image: Image,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum Fit {
    Contain,
    Cover,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[allow(dead_code)]
pub struct Image {
    url: String,
}

/// Tasks that succeed (`echo`, `image:resize` with a typed payload), fail, and wait to be
/// cancelled.
pub fn app() -> App {
    App::new()
        .task(
            "echo",
            Task::new(|_cx: TaskContext, payload: Value| async move { Ok::<_, TaskError>(payload) })
                .description("Returns its payload")
                .concurrency(Concurrency::Unlimited),
        )
        .task(
            "image:resize",
            Task::new(|_cx: TaskContext, resize: Resize| async move {
                Ok::<_, TaskError>(json!({ "width": resize.width, "url": resize.image.url }))
            })
            .description("Resizes an image")
            .concurrency(Concurrency::Unlimited),
        )
        .task(
            "fail",
            Task::new(|_cx: TaskContext| async { Err::<(), _>(TaskError::new("it broke <b>here</b>")) }),
        )
        .task(
            "wait",
            Task::new(|cx: TaskContext| async move {
                cx.cancelled().await;
                Ok::<_, TaskError>(())
            })
            .concurrency(Concurrency::Unlimited),
        )
        .schedule_log(None)
}

/// Starts a run through the JSON API without waiting, `headers` on the request; returns
/// its id.
pub async fn start(served: &Served, task: &str, payload: Value, headers: &[(&str, &str)]) -> String {
    let url = served.url(&format!("/_tasks/{task}/runs?wait=false"));
    let reply = call("POST", url, Some(&payload.to_string()), headers).await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    reply.json()["run_id"].as_str().expect("a run id").to_owned()
}

/// Waits (at most 10 s) until the run's status is one `done` accepts; returns its record.
pub async fn until(
    served: &Served,
    id: &str,
    headers: &[(&str, &str)],
    done: impl Fn(&str) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let run = call("GET", served.url(&format!("/_tasks/runs/{id}")), None, headers)
            .await
            .json();
        if done(run["status"].as_str().unwrap_or("")) {
            return run;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "run {id} is still {}",
            run["status"]
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
