//! The quickstart's dashboard in a real headless Chromium, driven through chromedriver
//! (WebDriver), against the quickstart as a real process: every page draws with no console
//! error and no Content-Security-Policy violation, and is photographed under
//! `target/dashboard-screenshots/`; `echo:payload` runs from its generated form and reaches
//! `succeeded` on an open runs page without a reload; a wrong type comes back at its field;
//! `demo:slow`'s progress moves, Cancel asks first and ends it; a schedule pauses and
//! resumes; the overview's chart counts runs that end while it is open; a filter URL opened
//! directly lists what it says; a hostile payload stays text;
//! with JavaScript off every page reads and every form works.
//!
//! `scripts/setup-chromium.sh` installs Debian's `chromium` and `chromium-driver`; CI sets
//! `TASKYARD_REQUIRE_BROWSER=1`, under which a missing browser fails instead of skipping.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::Quickstart;
use fantoccini::elements::Element;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, Locator};
use serde_json::{Value, json};
use taskyard_test_browser::browser;

/// chromedriver's console log since the last read (`POST /session/ID/se/log`).
#[derive(Debug)]
struct ConsoleLog;

impl WebDriverCompatibleCommand for ConsoleLog {
    fn endpoint(&self, base: &url::Url, session: Option<&str>) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _url: &url::Url) -> (axum::http::Method, Option<String>) {
        (axum::http::Method::POST, Some(r#"{"type":"browser"}"#.to_owned()))
    }
}

/// The console's errors (a CSP violation is one) since the last read.
async fn console_errors(client: &Client) -> Vec<String> {
    let log = client.issue_cmd(ConsoleLog).await.expect("the console log");
    log.as_array()
        .into_iter()
        .flatten()
        .filter(|entry| entry["level"] == "SEVERE")
        .map(|entry| entry["message"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// Where the screenshots go: `target/dashboard-screenshots/`.
fn screenshots() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("dashboard-screenshots");
    std::fs::create_dir_all(&dir).expect("the screenshots folder");
    dir
}

/// The page's first element matching `css`.
async fn element(client: &Client, css: &str) -> Element {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
}

async fn text_of(client: &Client, css: &str) -> String {
    element(client, css).await.text().await.expect("its text")
}

/// Submits the form matching `css` with its submit button.
async fn submit(client: &Client, css: &str) {
    let form = client
        .form(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    form.submit_with(Locator::Css("button[type=submit]"))
        .await
        .expect("submitted");
}

/// Waits (at most 10 s) until the browser is at a URL `there` accepts, after a click that
/// navigates: the click returns before the next page has come.
async fn arrive(client: &Client, there: impl Fn(&str) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let url = client.current_url().await.expect("a url").to_string();
        if there(&url) {
            return url;
        }
        if tokio::time::Instant::now() > deadline {
            let page = client.source().await.unwrap_or_default();
            panic!("still at {url} after 10 s:\n{page}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits (at most `within`) until the script `check` returns `true` in the page.
async fn until_true(client: &Client, check: &str, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if client.execute(check, vec![]).await.expect("a check") == json!(true) {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            let page = client.source().await.unwrap_or_default();
            panic!("`{check}` is not true after {within:?}:\n{page}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Starts a run over the JSON API without waiting; returns its id.
fn start(app: &Quickstart, task: &str, payload: Value) -> String {
    let (status, reply) = app.http(
        "POST",
        &format!("/_tasks/{task}/runs?wait=false"),
        &payload.to_string(),
    );
    assert_eq!(status, 202, "{reply}");
    reply["run_id"].as_str().expect("a run id").to_owned()
}

/// Waits (at most 20 s) until the run's record says `status`.
async fn until_status(app: &Quickstart, id: &str, status: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, run) = app.http("GET", &format!("/_tasks/runs/{id}"), "");
        if run["status"] == status {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "run {id} is {}, not {status}",
            run["status"]
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn url(app: &Quickstart, path: &str) -> String {
    format!("http://{}{path}", app.addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_draws_without_a_console_error_and_is_photographed() {
    let Some((_driver, client)) = browser(true).await else {
        return;
    };
    let app = Quickstart::start(&[]);
    let echo = start(&app, "echo:payload", json!({ "hello": "world" }));
    let failed = start(&app, "demo:fail", json!({}));
    until_status(&app, &echo, "succeeded").await;
    until_status(&app, &failed, "failed").await;

    // The welcome page shows where the dashboard is.
    client.goto(&url(&app, "/")).await.expect("the welcome page");
    assert!(
        element(&client, "a[href='/_tasks/ui']")
            .await
            .text()
            .await
            .expect("a link")
            .contains("/_tasks/ui")
    );

    let dir = screenshots();
    let pages = [
        ("overview", "/_tasks/ui".to_owned()),
        ("runs", "/_tasks/ui/runs".to_owned()),
        ("run", format!("/_tasks/ui/runs/{failed}")),
        ("tasks", "/_tasks/ui/tasks".to_owned()),
        ("task", "/_tasks/ui/tasks/demo:slow".to_owned()),
        ("schedules", "/_tasks/ui/schedules".to_owned()),
        ("schedule", "/_tasks/ui/schedules/heartbeat".to_owned()),
        ("lifecycle", "/_tasks/ui/lifecycle".to_owned()),
        ("login", "/_tasks/ui/login".to_owned()),
    ];
    for (name, path) in &pages {
        client.goto(&url(&app, path)).await.expect("the page");
        let styled = client
            .execute(
                "return getComputedStyle(document.querySelector('header.top')).display",
                vec![],
            )
            .await
            .expect("a style");
        assert_eq!(
            styled,
            json!("flex"),
            "{path}: the stylesheet loaded under the policy"
        );
        // Every image (the overview's charts) decoded: an SVG that is not well-formed XML
        // would show its alternative text.
        until_true(
            &client,
            "return [...document.images].every(image => image.complete && image.naturalWidth > 0)",
            Duration::from_secs(5),
        )
        .await;
        // Let the script open its event stream, then read the console.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let errors = console_errors(&client).await;
        assert!(errors.is_empty(), "{path}: console errors {errors:?}");
        let png = client.screenshot().await.expect("a screenshot");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("the screenshot is saved");
    }

    // A filter URL opened directly lists what it says.
    client
        .goto(&url(&app, "/_tasks/ui/runs?task=demo:fail&status=failed"))
        .await
        .expect("the filtered runs");
    let rows = client.find_all(Locator::Css("tr[data-run]")).await.expect("rows");
    assert_eq!(rows.len(), 1, "one failed demo:fail run");
    assert!(rows[0].text().await.expect("its text").contains("demo:fail"));
    assert_eq!(
        element(&client, "select[name=status]")
            .await
            .prop("value")
            .await
            .expect("its value")
            .as_deref(),
        Some("failed"),
        "the form shows the filter"
    );
    client.close().await.expect("the session ends");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_from_its_form_reaches_succeeded_on_an_open_runs_page() {
    let Some((_driver, client)) = browser(true).await else {
        return;
    };
    let app = Quickstart::start(&[]);
    // One window watches the runs of echo:payload; anything set on it survives only if it
    // is never loaded again.
    client
        .goto(&url(&app, "/_tasks/ui/runs?task=echo:payload"))
        .await
        .expect("the runs");
    client
        .execute("window.kept = 1; return true", vec![])
        .await
        .expect("a mark");
    let watching = client.window().await.expect("this window");
    let other = client.new_window(false).await.expect("a second window");
    client.switch_to_window(other.handle).await.expect("to it");

    // A wrong type first: `ms` is a whole number of milliseconds, not a negative one.
    client
        .goto(&url(&app, "/_tasks/ui/tasks/demo:slow"))
        .await
        .expect("the task");
    let form = client
        .form(Locator::Css("form.run-task"))
        .await
        .expect("the form");
    form.set_by_name("ms", "-5").await.expect("ms");
    submit(&client, "form.run-task").await;
    arrive(&client, |url| url.ends_with("/run")).await;
    let error = text_of(&client, "[data-path=ms] .field-error").await;
    assert!(error.contains("invalid value: integer `-5`"), "{error}");

    // Then echo:payload from its form: its payload is any JSON, one field.
    client
        .goto(&url(&app, "/_tasks/ui/tasks/echo:payload"))
        .await
        .expect("the task");
    let field = element(&client, "textarea[name='.']").await;
    field.send_keys(r#"{"from": "the form"}"#).await.expect("typed");
    submit(&client, "form.run-task").await;
    let page = arrive(&client, |url| url.contains("/_tasks/ui/runs/")).await;
    let id = page[page.find("/_tasks/ui/runs/").expect("the run's path") + 16..].to_owned();
    until_status(&app, &id, "succeeded").await;
    let (_, run) = app.http("GET", &format!("/_tasks/runs/{id}"), "");
    assert_eq!(run["payload"], json!({ "from": "the form" }));

    client.switch_to_window(watching).await.expect("back");
    let row = format!("document.querySelector('tr[data-run=\"{id}\"] .status')");
    until_true(
        &client,
        &format!("return {row} !== null && {row}.textContent === 'succeeded'"),
        Duration::from_millis(3500),
    )
    .await;
    until_true(&client, "return window.kept === 1", Duration::ZERO).await;
    client.close().await.expect("the session ends");
}

/// The runs the overview's chart of the last hour counts, as the page shows it now: the
/// chart's SVG read again from the address its `<img>` has, from the browser's cache, which
/// holds what the image loaded, however old.
async fn charted(client: &Client) -> (String, u64) {
    let read = "return fetch(document.querySelector('img[data-chart=hour]').src, { cache: 'force-cache' })\
        .then((r) => r.text())\
        .then((svg) => [document.querySelector('img[data-chart=hour]').src, svg])";
    let found = client.execute(read, vec![]).await.expect("the chart");
    let src = found[0].as_str().expect("its address").to_owned();
    let svg = found[1].as_str().expect("its SVG");
    let total = svg
        .split(" runs finished over the last hour")
        .next()
        .and_then(|head| head.rsplit(|c: char| !c.is_ascii_digit()).next())
        .and_then(|digits| digits.parse().ok())
        .unwrap_or_else(|| panic!("no count in {svg}"));
    (src, total)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_charts_runs_that_end_while_it_is_open() {
    let Some((_driver, client)) = browser(true).await else {
        return;
    };
    let app = Quickstart::start(&[]);
    client.goto(&url(&app, "/_tasks/ui")).await.expect("the overview");
    client
        .execute("window.kept = 1; return true", vec![])
        .await
        .expect("a mark");
    until_true(
        &client,
        "const img = document.querySelector('img[data-chart=hour]'); return img.complete && img.naturalWidth > 0",
        Duration::from_secs(5),
    )
    .await;
    let (first_src, first) = charted(&client).await;
    let ids: Vec<String> = (0..3)
        .map(|n| start(&app, "echo:payload", json!({ "n": n })))
        .collect();
    for id in &ids {
        until_status(&app, id, "succeeded").await;
    }
    // The chart's address changes every 5 s, and the page is drawn again at least as often:
    // within 12 s the open page shows a chart that counts the three runs.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(12);
    loop {
        let (src, total) = charted(&client).await;
        if src != first_src && total >= first + 3 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the chart at {src} counts {total} runs, {first} before three more ended"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    until_true(
        &client,
        "const img = document.querySelector('img[data-chart=hour]'); return img.complete && img.naturalWidth > 0",
        Duration::from_secs(5),
    )
    .await;
    until_true(&client, "return window.kept === 1", Duration::ZERO).await;
    assert_eq!(console_errors(&client).await, Vec::<String>::new());
    client.close().await.expect("the session ends");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_slow_moves_its_progress_and_cancel_ends_it() {
    let Some((_driver, client)) = browser(true).await else {
        return;
    };
    let app = Quickstart::start(&[]);
    client
        .goto(&url(&app, "/_tasks/ui/tasks/demo:slow"))
        .await
        .expect("the task");
    let ms = element(&client, "input[name=ms]").await;
    ms.clear().await.expect("cleared");
    ms.send_keys("30000").await.expect("typed");
    submit(&client, "form.run-task").await;
    let page = arrive(&client, |url| url.contains("/_tasks/ui/runs/")).await;
    let id = page[page.find("/_tasks/ui/runs/").expect("the run's path") + 16..].to_owned();
    client
        .execute("window.kept = 1; return true", vec![])
        .await
        .expect("a mark");
    let bar = "document.querySelector('progress[data-run-progress]')";
    until_true(
        &client,
        &format!("return {bar} !== null && {bar}.value >= 0.1"),
        Duration::from_secs(8),
    )
    .await;
    let first = client
        .execute(&format!("return {bar}.value"), vec![])
        .await
        .expect("a value");
    until_true(
        &client,
        &format!("return {bar}.value > {first}"),
        Duration::from_secs(8),
    )
    .await;
    assert!(
        text_of(&client, "[data-run-progress-message]")
            .await
            .contains("of 10")
    );

    element(&client, "button.danger")
        .await
        .click()
        .await
        .expect("Cancel");
    assert_eq!(
        client.get_alert_text().await.expect("a question"),
        "Cancel this run?"
    );
    client.accept_alert().await.expect("yes");
    arrive(&client, |url| url.contains("done=cancelled")).await;
    until_status(&app, &id, "cancelled").await;
    until_true(
        &client,
        "return document.querySelector('h1 .status').textContent === 'cancelled'",
        Duration::from_secs(5),
    )
    .await;
    client.close().await.expect("the session ends");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_pauses_and_resumes() {
    let Some((_driver, client)) = browser(true).await else {
        return;
    };
    let app = Quickstart::start(&[]);
    client
        .goto(&url(&app, "/_tasks/ui/schedules/heartbeat"))
        .await
        .expect("the schedule");
    assert_eq!(text_of(&client, "h1 .status").await, "active");
    assert_eq!(
        client
            .find_all(Locator::Css("ol.next li"))
            .await
            .expect("times")
            .len(),
        5
    );
    submit(&client, "form[action$='/pause']").await;
    arrive(&client, |url| url.contains("done=paused")).await;
    assert_eq!(text_of(&client, "h1 .status").await, "paused");
    let (_, schedule) = app.http("GET", "/_tasks/schedules/heartbeat", "");
    assert_eq!(schedule["paused"], true);
    submit(&client, "form[action$='/resume']").await;
    arrive(&client, |url| url.contains("done=resumed")).await;
    assert_eq!(text_of(&client, "h1 .status").await, "active");
    let (_, schedule) = app.http("GET", "/_tasks/schedules/heartbeat", "");
    assert_eq!(schedule["paused"], false);
    client.close().await.expect("the session ends");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_payload_stays_text() {
    let Some((_driver, client)) = browser(true).await else {
        return;
    };
    let app = Quickstart::start(&[]);
    let hostile = json!({ "html": "<img src=x onerror=\"window.pwned=1\"><script>window.pwned=2</script>" });
    let id = start(&app, "echo:payload", hostile);
    until_status(&app, &id, "succeeded").await;
    client
        .goto(&url(&app, &format!("/_tasks/ui/runs/{id}")))
        .await
        .expect("the run");
    until_true(&client, "return window.pwned === undefined", Duration::ZERO).await;
    assert!(
        text_of(&client, "pre")
            .await
            .contains("<script>window.pwned=2</script>")
    );
    client.close().await.expect("the session ends");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_javascript_off_pages_read_and_forms_work() {
    let Some((_driver, client)) = browser(false).await else {
        return;
    };
    let app = Quickstart::start(&[]);
    let slow = start(&app, "demo:slow", json!({ "ms": 30000 }));
    until_status(&app, &slow, "running").await;

    // Filters are a GET form: the filter lands in the URL.
    client
        .goto(&url(&app, "/_tasks/ui/runs"))
        .await
        .expect("the runs");
    element(&client, "select[name=status]")
        .await
        .select_by_value("running")
        .await
        .expect("running");
    submit(&client, "form.filters").await;
    arrive(&client, |url| url.contains("status=running")).await;
    let rows = client.find_all(Locator::Css("tr[data-run]")).await.expect("rows");
    assert_eq!(rows.len(), 1, "only the running run");

    // Cancel without the script's question: the form posts and redirects. (With the script
    // on, its question would stand unanswered and chromedriver would dismiss it, so the
    // redirect also shows that no page script ran.)
    rows[0]
        .find(Locator::Css("a"))
        .await
        .expect("its link")
        .click()
        .await
        .expect("opened");
    element(&client, "button.danger")
        .await
        .click()
        .await
        .expect("Cancel");
    arrive(&client, |url| url.contains("done=cancelled")).await;
    until_status(&app, &slow, "cancelled").await;
    client.close().await.expect("the session ends");
}
