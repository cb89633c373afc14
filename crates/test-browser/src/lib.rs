//! A headless Chromium session driven through chromedriver (WebDriver), for the browser
//! tests of taskyard's dashboard and of `taskyard dev`.
//!
//! `scripts/setup-chromium.sh` installs Debian's `chromium` and `chromium-driver`; CI sets
//! `TASKYARD_REQUIRE_BROWSER=1`, under which a missing browser fails instead of skipping.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder};
use serde_json::json;

/// A chromedriver child process, killed when dropped, and the browser's profile folder.
pub struct Driver {
    child: Child,
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
pub async fn browser(javascript: bool) -> Option<(Driver, Client)> {
    let (Some(driver), Some(chromium)) = (which("chromedriver"), which("chromium")) else {
        assert!(
            std::env::var_os("TASKYARD_REQUIRE_BROWSER").is_none(),
            "TASKYARD_REQUIRE_BROWSER is set but chromium or chromedriver is missing: run scripts/setup-chromium.sh"
        );
        eprintln!("SKIPPED: no chromium and chromedriver here (scripts/setup-chromium.sh installs them)");
        return None;
    };
    // chromedriver now and then resets the connection that asks for a session (six
    // Chromiums starting at once on two cores); a fresh chromedriver on a fresh port is
    // asked again, three times at most, and the last error is the test's.
    let mut last = String::new();
    for _ in 0..3 {
        match session(&driver, &chromium, javascript).await {
            Ok(session) => return Some(session),
            Err(error) => {
                eprintln!("a browser session failed, starting another: {error}");
                last = error;
            }
        }
    }
    panic!("a browser session, three times: {last}");
}

/// One chromedriver on a free port and one session through it.
async fn session(driver: &str, chromium: &str, javascript: bool) -> Result<(Driver, Client), String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map_err(|error| format!("a free port: {error}"))?
        .port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let mut driver = Driver {
        child,
        _profile: tempfile::tempdir().expect("a profile folder"),
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if std::time::Instant::now() >= deadline {
            return Err("chromedriver did not listen in 20 s".to_owned());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Another test's chromedriver may have taken the port first; this one then exits.
    if let Ok(Some(status)) = driver.child.try_wait() {
        return Err(format!("chromedriver exited ({status}): its port was taken"));
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
    // The console, CSP violations included, for `console_errors`.
    capabilities.insert("goog:loggingPrefs".to_owned(), json!({ "browser": "ALL" }));
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = tokio::time::timeout(
        Duration::from_secs(60),
        ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}")),
    )
    .await
    .map_err(|_| "no browser session within 60 s".to_owned())?
    .map_err(|error| format!("{error:?}"))?;
    Ok((driver, client))
}

fn which(program: &str) -> Option<String> {
    let output = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .ok()?;
    let path = String::from_utf8(output.stdout).ok()?.trim().to_owned();
    (!path.is_empty()).then_some(path)
}
