//! The demo's lifecycle in the real app: the startup task prepared its data before the
//! server listened, `feature-watch` re-runs when `POST /api/feature` flips the flag, the
//! first request under `/hello/` starts `warm-hello`, the `feature-report` resource follows
//! the flag, and the `report` schedule follows `features.reports_paused` in the watched
//! `taskyard.toml`.

mod common;

use std::time::{Duration, Instant};

use common::Quickstart;
use serde_json::{Value, json};

fn node(app: &Quickstart, name: &str) -> Value {
    let (status, list) = app.http("GET", "/_tasks/lifecycle", "");
    assert_eq!(status, 200);
    list["lifecycle"]
        .as_array()
        .expect("a list")
        .iter()
        .find(|n| n["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("`{name}` is not listed: {list}"))
}

fn eventually(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

#[test]
fn the_demo_lifecycle_reacts_to_the_flag_the_first_request_and_the_config_file() {
    let config = tempfile::tempdir().expect("tempdir");
    let path = config.path().join("taskyard.toml");
    let original = include_str!("../taskyard.toml");
    std::fs::write(&path, original).expect("write");
    let app = Quickstart::start(&[("TASKYARD_CONFIG", path.to_str().expect("utf-8"))]);

    // Startup: `prepare` ran, and finished, before the app listened.
    assert_eq!(node(&app, "prepare")["state"], "idle");
    assert!(app.data.path().join("cache/greeting.txt").is_file());

    // The flag: each flip re-runs `feature-watch`, and the resource follows it.
    assert_eq!(node(&app, "feature-watch")["runs"], 1);
    assert_eq!(
        app.http("POST", "/api/feature", r#"{"enabled":true}"#),
        (200, json!({"enabled": true}))
    );
    eventually("feature-watch re-ran", || {
        node(&app, "feature-watch")["runs"] == 2
    });
    eventually("the report follows", || {
        app.http("GET", "/api/feature", "").1
            == json!({"enabled": true, "report": "enabled since the last flip"})
    });
    assert_eq!(app.http("POST", "/api/feature", r#"{"enabled":true}"#).0, 200);
    assert_eq!(app.http("POST", "/api/feature", r#"{"enabled":false}"#).0, 200);
    eventually("feature-watch re-ran again", || {
        node(&app, "feature-watch")["runs"] == 3
    });
    assert_eq!(app.http("POST", "/api/feature", r#"{"on":1}"#).0, 400);

    // The visible task waits for its first request.
    assert_eq!(node(&app, "warm-hello")["state"], "waiting");
    let (status, _) = app.http("GET", "/hello/nitro", "");
    assert_eq!(status, 200);
    eventually("warm-hello ran", || node(&app, "warm-hello")["state"] == "idle");
    let _ = app.http("GET", "/hello/again", "");
    assert_eq!(node(&app, "warm-hello")["runs"], 1);

    // The config flag: the `report` schedule stops and resumes as the file changes.
    let disabled = || app.http("GET", "/_tasks/schedules/report", "").1["disabled"].clone();
    assert_eq!(disabled(), json!(false));
    let paused = original.replace("reports_paused = false", "reports_paused = true");
    assert_ne!(paused, original, "the quickstart's taskyard.toml has the flag");
    std::fs::write(&path, paused).expect("write");
    eventually("the schedule is disabled", || disabled() == json!(true));
    std::fs::write(&path, original).expect("write");
    eventually("the schedule is enabled again", || disabled() == json!(false));
}
