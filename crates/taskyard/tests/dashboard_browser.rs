//! The dashboard in a real headless Chromium, driven through chromedriver (WebDriver): its
//! stylesheet and script load under its Content-Security-Policy, a task runs from its
//! generated form with a refused value shown at its field, a cancel asks first and ends
//! the run, a hostile payload stays text, and with JavaScript off every page still reads
//! and every form still works.
//!
//! `scripts/setup-chromium.sh` installs Debian's `chromium` and `chromium-driver`; CI sets
//! `TASKYARD_REQUIRE_BROWSER=1`, under which a missing browser fails instead of skipping.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::dashboard::{app, start, until};
use common::http::{Served, serve};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

/// A chromedriver child process, killed when dropped.
struct Driver {
    child: Child,
    url: String,
    /// The browser's profile folder, removed when dropped.
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A browser session, JavaScript on or off; `None` (said loudly) where no browser is
/// installed and CI does not require one.
async fn browser(javascript: bool) -> Option<(Driver, Client)> {
    let driver = which("chromedriver");
    let chromium = which("chromium");
    let (Some(driver), Some(chromium)) = (driver, chromium) else {
        assert!(
            std::env::var_os("TASKYARD_REQUIRE_BROWSER").is_none(),
            "TASKYARD_REQUIRE_BROWSER is set but chromium or chromedriver is missing: run scripts/setup-chromium.sh"
        );
        eprintln!("SKIPPED: no chromium and chromedriver here (scripts/setup-chromium.sh installs them)");
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let profile = tempfile::tempdir().expect("a profile folder");
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _profile: profile,
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "chromedriver did not listen in 20 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut options = json!({
        "binary": chromium,
        "args": [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--window-size=1280,900",
            format!("--user-data-dir={}", driver._profile.path().display()),
        ],
    });
    if !javascript {
        options["prefs"] = json!({ "profile.managed_default_content_settings.javascript": 2 });
    }
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("browserName".to_owned(), json!("chrome"));
    capabilities.insert("goog:chromeOptions".to_owned(), options);
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = tokio::time::timeout(
        Duration::from_secs(60),
        ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&driver.url),
    )
    .await
    .expect("a browser session within 60 s")
    .expect("a browser session");
    Some((driver, client))
}

fn which(program: &str) -> Option<String> {
    let output = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .ok()?;
    let path = String::from_utf8(output.stdout).ok()?.trim().to_owned();
    (!path.is_empty()).then_some(path)
}

/// Waits (at most 10 s) until the run's record says `status`.
async fn until_status(served: &Served, id: &str, status: &str) {
    until(served, id, &[], |now| now == status).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_works_in_headless_chromium() {
    let Some((_driver, client)) = browser(true).await else {
        return;
    };
    let served = serve(app(), None).await;

    // The stylesheet applies and the page is what the server drew.
    client
        .goto(&served.url("/_tasks/ui"))
        .await
        .expect("the overview");
    assert_eq!(client.title().await.expect("a title"), "Overview · taskyard");
    let display = client
        .execute(
            "return getComputedStyle(document.querySelector('header.top')).display",
            vec![],
        )
        .await
        .expect("a style");
    assert_eq!(display, json!("flex"), "the stylesheet loaded under the policy");

    // A task from its form: a value its type refuses comes back at its field.
    client
        .goto(&served.url("/_tasks/ui/tasks/image:resize"))
        .await
        .expect("the task");
    let form = client
        .form(Locator::Css("form.run-task"))
        .await
        .expect("the form");
    form.set_by_name("width", "-3").await.expect("width");
    form.set_by_name("image.url", "https://example.test/a.png")
        .await
        .expect("url");
    element(&client, "select[name=fit]")
        .await
        .select_by_value("cover")
        .await
        .expect("cover");
    submit(&client, "form.run-task").await;
    arrive(&client, |url| url.ends_with("/run")).await;
    let error = text_of(&client, "[data-path=width] .field-error").await;
    assert!(error.contains("invalid value: integer `-3`"), "{error}");
    let kept = element(&client, "input[name='image.url']")
        .await
        .prop("value")
        .await
        .expect("its value");
    assert_eq!(
        kept.as_deref(),
        Some("https://example.test/a.png"),
        "what was typed stays"
    );
    let width = element(&client, "input[name=width]").await;
    width.clear().await.expect("cleared");
    width.send_keys("640").await.expect("typed");
    submit(&client, "form.run-task").await;
    let url = arrive(&client, |url| url.contains("/_tasks/ui/runs/")).await;
    let id = url[url.find("/_tasks/ui/runs/").expect("the run's path") + 16..].to_owned();
    until_status(&served, &id, "succeeded").await;
    let run = common::http::get(&served, &format!("/_tasks/runs/{id}"))
        .await
        .json();
    assert_eq!(
        run["payload"],
        json!({ "width": 640, "fit": "cover", "image": { "url": "https://example.test/a.png" } })
    );

    // Cancel asks first (the script loaded under the policy), then ends the run.
    let waiting = start(&served, "wait", json!({}), &[]).await;
    until_status(&served, &waiting, "running").await;
    client
        .goto(&served.url(&format!("/_tasks/ui/runs/{waiting}")))
        .await
        .expect("the run");
    element(&client, "button.danger")
        .await
        .click()
        .await
        .expect("clicked");
    assert_eq!(
        client.get_alert_text().await.expect("a question"),
        "Cancel this run?"
    );
    client.accept_alert().await.expect("yes");
    arrive(&client, |url| url.contains("done=cancelled")).await;
    assert!(text_of(&client, "p.notice").await.starts_with("Cancel asked"));
    until_status(&served, &waiting, "cancelled").await;

    // A hostile payload is shown as text and runs nothing.
    let hostile = json!({ "html": "<img src=x onerror=\"window.pwned=1\"><script>window.pwned=2</script>" });
    let id = start(&served, "echo", hostile, &[]).await;
    until_status(&served, &id, "succeeded").await;
    client
        .goto(&served.url(&format!("/_tasks/ui/runs/{id}")))
        .await
        .expect("the run");
    let pwned = client
        .execute("return window.pwned === undefined", vec![])
        .await
        .expect("a check");
    assert_eq!(pwned, json!(true), "no script of the payload ran");
    assert!(
        text_of(&client, "pre")
            .await
            .contains("<script>window.pwned=2</script>")
    );
    client.close().await.expect("the session ends");
    served.stop().await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_and_progress_appear_without_a_reload() {
    let Some((_driver, client)) = browser(true).await else {
        return;
    };
    let served = serve(app(), None).await;
    client
        .goto(&served.url("/_tasks/ui/runs"))
        .await
        .expect("the runs");
    // Anything set on the page survives only if the page is never loaded again.
    client
        .execute("window.kept = 1; return true", vec![])
        .await
        .expect("a mark");
    let id = start(&served, "echo", json!({ "live": true }), &[]).await;
    // The event stream draws it within a second or so; the five-second poll would be late.
    let row = format!("return document.querySelector('tr[data-run=\"{id}\"]') !== null");
    until_true(&client, &row, Duration::from_millis(3500)).await;
    until_true(&client, "return window.kept === 1", Duration::ZERO).await;

    // A run's page follows its progress, then its end.
    let steps = start(&served, "steps", json!({}), &[]).await;
    until_status(&served, &steps, "running").await;
    client
        .goto(&served.url(&format!("/_tasks/ui/runs/{steps}")))
        .await
        .expect("the run");
    client
        .execute("window.kept = 1; return true", vec![])
        .await
        .expect("a mark");
    let bar = "document.querySelector('progress[data-run-progress]')";
    until_true(
        &client,
        &format!("return {bar} !== null && {bar}.value > 0"),
        Duration::from_secs(5),
    )
    .await;
    let first = client
        .execute(&format!("return {bar}.value"), vec![])
        .await
        .expect("a value");
    until_true(
        &client,
        &format!("return {bar}.value > {first}"),
        Duration::from_secs(5),
    )
    .await;
    let message = text_of(&client, "[data-run-progress-message]").await;
    assert!(message.contains("— step "), "{message}");
    common::http::post(&served, &format!("/_tasks/runs/{steps}/cancel"), "").await;
    until_true(
        &client,
        "return document.querySelector('h1 .status').textContent === 'cancelled'",
        Duration::from_secs(5),
    )
    .await;
    until_true(&client, "return window.kept === 1", Duration::ZERO).await;
    client.close().await.expect("the session ends");
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_javascript_off_pages_read_and_forms_work() {
    let Some((_driver, client)) = browser(false).await else {
        return;
    };
    let served = serve(app(), None).await;
    for n in 0..3 {
        let id = start(&served, "echo", json!({ "n": n }), &[]).await;
        until_status(&served, &id, "succeeded").await;
    }
    let waiting = start(&served, "wait", json!({}), &[]).await;
    until_status(&served, &waiting, "running").await;

    // Filters are a GET form: the filter lands in the URL.
    client
        .goto(&served.url("/_tasks/ui/runs"))
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
        .expect("clicked");
    arrive(&client, |url| url.contains("done=cancelled")).await;
    until_status(&served, &waiting, "cancelled").await;
    client.close().await.expect("the session ends");
    served.stop().await;
}
