//! Who may call the task endpoints of the quickstart, by environment: development answers
//! loopback clients; production hides the endpoints unless `TASKYARD_TASKS_TOKEN` is set,
//! and then requires it as a bearer token.

mod common;

use common::{Quickstart, http};

#[test]
fn production_requires_the_bearer_token() {
    let app = Quickstart::start(&[
        ("TASKYARD_ENV", "production"),
        ("TASKYARD_TASKS_TOKEN", "let-me-in-7d1f"),
    ]);
    let (status, body) = app.http("GET", "/_nitro/tasks", "");
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["statusMessage"], "Unauthorized");
    let wrong = [("Authorization", "Bearer nope")];
    let (status, body) = http(&app.addr, "GET", "/_nitro/tasks", "", &wrong);
    assert_eq!(status, 403, "{body}");
    let right = [("Authorization", "Bearer let-me-in-7d1f")];
    let (status, body) = http(&app.addr, "GET", "/_nitro/tasks", "", &right);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["tasks"]["db:migrate"]["description"],
        "Run database migrations"
    );
    let (status, body) = http(
        &app.addr,
        "POST",
        "/_nitro/tasks/echo:payload?field=value",
        r#"{"payload":{"answer":42}}"#,
        &right,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        serde_json::json!({ "result": { "field": "value", "answer": 42 } })
    );
}

#[test]
fn production_without_a_token_has_no_task_endpoints() {
    let app = Quickstart::start(&[("TASKYARD_ENV", "production")]);
    for path in ["/_nitro/tasks", "/_tasks", "/_tasks/runs"] {
        let (status, _) = app.http("GET", path, "");
        assert_eq!(status, 404, "{path}");
    }
    let (status, _) = app.http("POST", "/_nitro/tasks/echo:payload", "");
    assert_eq!(status, 404);
}

#[test]
fn development_answers_loopback_clients_without_a_token() {
    let app = Quickstart::start(&[("TASKYARD_ENV", "development")]);
    let (status, body) = app.http("GET", "/_nitro/tasks", "");
    assert_eq!(status, 200, "{body}");
    let nitro_style = serde_json::json!({ "cron": "* * * * *", "tasks": ["cms:update"] });
    let scheduled = body["scheduledTasks"].as_array().expect("schedules listed");
    assert!(scheduled.contains(&nitro_style), "{body}");
}
