//! `taskyard dev` and a page open in a real headless Chromium: after an edit the page
//! shows the new version by itself, after a broken edit it shows the compiler's errors,
//! and after the fix the fixed version, with no navigation by the test; what was typed in
//! the page's field and how far it was scrolled are kept across each reload.
//!
//! The app is the smallest one `taskyard dev` can serve (std only, so that its builds take
//! a second): it says where it listens as a taskyard app does, answers its health, and
//! serves one HTML page naming its version, under a Content-Security-Policy as strict as
//! the dashboard's (no inline script). `scripts/setup-chromium.sh` installs the
//! browser; under `TASKYARD_REQUIRE_BROWSER=1` (CI) a missing one is a failure.

mod common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use taskyard_test_browser::browser;

/// The app's source, serving `version`; `broken` leaves a syntax error in it.
fn source(version: &str, broken: bool) -> String {
    let error = if broken { "let = ;" } else { "" };
    format!(
        r##"use std::io::{{BufRead, BufReader, Write}};
use std::net::TcpListener;

const VERSION: &str = "{version}";
// As strict as the dashboard's: scripts and connections of the page's own origin only.
const POLICY: &str = "content-security-policy: default-src 'none'; script-src 'self'; connect-src 'self'\r\n";

fn main() {{
    {error}
    let port = std::env::var("PORT").unwrap_or_else(|_| "0".to_owned());
    let listener = TcpListener::bind(format!("127.0.0.1:{{port}}")).expect("a port");
    println!("taskyard listening on http://{{}}", listener.local_addr().expect("its address"));
    for stream in listener.incoming().flatten() {{
        std::thread::spawn(move || {{
            let Ok(copy) = stream.try_clone() else {{ return }};
            let mut reader = BufReader::new(copy);
            // The request line, then the headers up to the blank line.
            let mut first = String::new();
            let _ = reader.read_line(&mut first);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {{
                line.clear();
            }}
            let (kind, body) = if first.contains(" /_tasks/health ") {{
                ("application/json", r#"{{"status":"ok"}}"#.to_owned())
            }} else {{
                // A field, and lines enough to scroll by.
                let lines = "<p>line</p>".repeat(300);
                ("text/html; charset=utf-8", format!("<!doctype html><html><body><h1 id=\"v\">{{VERSION}}</h1><input id=\"note\">{{lines}}</body></html>"))
            }};
            let mut stream = stream;
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: {{kind}}\r\ncontent-length: {{}}\r\n{{POLICY}}connection: close\r\n\r\n{{body}}",
                body.len()
            );
        }});
    }}
}}
"##
    )
}

fn write_app(dir: &Path, version: &str, broken: bool) {
    std::fs::write(dir.join("src/main.rs"), source(version, broken)).expect("the app's source");
}

struct Dev(Child);

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The open page's text, once `wanted` says it is there, within `limit`.
async fn until_page(client: &Client, what: &str, limit: Duration, wanted: impl Fn(&str) -> bool) -> String {
    let began = Instant::now();
    let mut last = String::new();
    while began.elapsed() < limit {
        if let Ok(body) = client.find(Locator::Css("body")).await
            && let Ok(text) = body.text().await
        {
            if wanted(&text) {
                return text;
            }
            last = text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: not within {limit:?}; the page reads {last:?}");
}

/// Checks that the reloaded page holds what was typed and is scrolled where it was.
async fn kept(client: &Client, when: &str) {
    let began = Instant::now();
    loop {
        let held = client
            .execute(
                "return [document.getElementById('note').value, window.scrollY];",
                vec![],
            )
            .await
            .expect("a script runs");
        if held == serde_json::json!(["half-written", 600]) {
            return;
        }
        // The scroll comes back once the page has loaded.
        assert!(
            began.elapsed() < Duration::from_secs(5),
            "{when}: the page holds {held}, not what it held before"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_page_follows_each_swap_and_shows_a_broken_build() {
    let Some((_driver, client)) = browser(true).await else {
        return;
    };
    let temp = tempfile::tempdir().expect("a folder");
    let app = temp.path().join("tinyapp");
    std::fs::create_dir_all(app.join("src")).expect("the app's folder");
    std::fs::write(
        app.join("Cargo.toml"),
        "[package]\nname = \"tinyapp\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[workspace]\n",
    )
    .expect("Cargo.toml");
    write_app(&app, "one", false);
    let addr = common::free_addr();
    let _dev = Dev(common::dev(&app, addr, "dev-browser-app")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("taskyard dev starts"));

    // The first build; the page then opens on version one.
    let began = Instant::now();
    loop {
        if ureq::get(&format!("http://{addr}/")).call().is_ok() {
            break;
        }
        assert!(
            began.elapsed() < Duration::from_secs(180),
            "the first build never served"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    client
        .goto(&format!("http://{addr}/"))
        .await
        .expect("the page opens");
    until_page(&client, "version one", Duration::from_secs(10), |t| {
        t.contains("one")
    })
    .await;
    // Marks this load of the page: a reload forgets it.
    client
        .execute("window.loadedOnce = true; return true;", vec![])
        .await
        .expect("a script runs");
    // What the page holds: text typed in its field, and how far it was scrolled.
    client
        .find(Locator::Id("note"))
        .await
        .expect("the field")
        .send_keys("half-written")
        .await
        .expect("typed");
    client
        .execute("window.scrollTo(0, 600); return window.scrollY;", vec![])
        .await
        .expect("scrolled");

    // An edit: the open page reloads itself onto version two.
    write_app(&app, "two", false);
    until_page(
        &client,
        "the page follows the swap",
        Duration::from_secs(120),
        |t| t.contains("two"),
    )
    .await;
    let marked = client
        .execute("return window.loadedOnce === true;", vec![])
        .await
        .expect("a script runs");
    assert_eq!(
        marked,
        serde_json::Value::Bool(false),
        "the page was loaded again"
    );
    kept(&client, "after the swap").await;

    // A broken edit: the open page shows the compiler's error.
    write_app(&app, "three", true);
    let error = until_page(
        &client,
        "the page shows the build's error",
        Duration::from_secs(120),
        |t| t.contains("The app does not build"),
    )
    .await;
    assert!(error.contains("src/main.rs"), "{error}");

    // The fix: the error page gives way to version three.
    write_app(&app, "three", false);
    until_page(&client, "the page shows the fix", Duration::from_secs(120), |t| {
        t.contains("three") && !t.contains("does not build")
    })
    .await;
    // The error page between them kept nothing of its own, and left what was kept.
    kept(&client, "after the error page").await;
    client.close().await.expect("the session ends");
}
