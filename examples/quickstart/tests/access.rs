//! Who may call the task endpoints of the quickstart, by environment: development answers
//! loopback clients, addressed to a loopback name, from no other site's page; production
//! hides the endpoints unless `TASKYARD_TASKS_TOKEN` is set, and then requires it as a
//! bearer token.

mod common;

use common::{Quickstart, http, send};

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

/// A request as curl or a browser would send it, headers exactly as given.
fn request(
    app: &Quickstart,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut text = format!("{method} {path} HTTP/1.1\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() {
        text.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    text.push_str("Connection: close\r\n\r\n");
    text.push_str(body);
    let reply = send(&app.addr, &text);
    (reply.status, reply.body)
}

#[test]
fn development_refuses_other_hosts_other_origins_and_cross_site_pages() {
    let app = Quickstart::start(&[("TASKYARD_ENV", "development")]);
    let host = app.addr.clone();
    let run = "/_nitro/tasks/echo:payload?field=value";
    // curl from the command line: no browser headers, a GET with a query string runs.
    let (status, body) = request(&app, "GET", run, &[("Host", &host)], "");
    assert_eq!(status, 200, "{body}");
    let (status, body) = request(&app, "POST", "/_nitro/tasks/echo:payload", &[("Host", &host)], "");
    assert_eq!(status, 200, "curl -X POST without a body: {body}");
    for named in [
        "localhost:3000",
        "LOCALHOST",
        "app.localhost:1",
        "127.0.0.2",
        "[::1]:8080",
    ] {
        let (status, body) = request(&app, "GET", "/_tasks", &[("Host", named)], "");
        assert_eq!(status, 200, "Host {named}: {body}");
    }

    // DNS rebinding: a loopback client, but the browser addressed another name.
    for path in ["/_tasks", run, "/_tasks/runs"] {
        let (status, body) = request(&app, "GET", path, &[("Host", "evil.example:3000")], "");
        assert_eq!(status, 403, "{path}: {body}");
        assert!(body.contains("Forbidden Host"), "{body}");
    }
    // A page of another origin, with the simple request it may send without CORS.
    let from_page = [
        ("Host", host.as_str()),
        ("Origin", "http://evil.example"),
        ("Content-Type", "text/plain"),
    ];
    let body = r#"{"payload":{"dry_run":false}}"#;
    let (status, reply) = request(&app, "POST", "/_nitro/tasks/db:migrate", &from_page, body);
    assert_eq!(status, 403, "{reply}");
    assert!(reply.contains("Forbidden Origin"), "{reply}");
    let (status, reply) = request(&app, "POST", "/_tasks/db:migrate/runs", &from_page, body);
    assert_eq!(status, 403, "{reply}");
    // `<img src>` sends no Origin, but says it is cross-site.
    let image = [
        ("Host", host.as_str()),
        ("Sec-Fetch-Site", "cross-site"),
        ("Sec-Fetch-Mode", "no-cors"),
    ];
    let (status, reply) = request(&app, "GET", run, &image, "");
    assert_eq!(status, 403, "{reply}");
    // Without any browser header, a simple content type still cannot run a task.
    let plain = [("Host", host.as_str()), ("Content-Type", "text/plain")];
    let (status, reply) = request(&app, "POST", "/_nitro/tasks/db:migrate", &plain, body);
    assert_eq!(status, 415, "{reply}");
    assert!(reply.contains("application/json"), "says what to send: {reply}");
    let form = [
        ("Host", host.as_str()),
        ("Content-Type", "application/x-www-form-urlencoded"),
    ];
    let (status, reply) = request(&app, "POST", "/_tasks/echo:payload/runs", &form, body);
    assert_eq!(status, 415, "{reply}");

    // The app's own page, and JSON, are fine.
    let own_origin = format!("http://{host}");
    let own = [
        ("Host", host.as_str()),
        ("Origin", own_origin.as_str()),
        ("Sec-Fetch-Site", "same-origin"),
        ("Content-Type", "application/json"),
    ];
    let (status, reply) = request(&app, "POST", "/_tasks/echo:payload/runs", &own, body);
    assert_eq!(status, 200, "{reply}");
    let typed = [("Host", host.as_str()), ("Sec-Fetch-Site", "none")];
    let (status, reply) = request(&app, "GET", run, &typed, "");
    assert_eq!(status, 200, "typed in the address bar: {reply}");
}

#[test]
fn development_on_every_address_takes_ipv4_loopback_clients() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("\n*** SKIPPED: this machine has no IPv6 loopback ***\n");
        return;
    }
    let app = Quickstart::start(&[("TASKYARD_ENV", "development"), ("HOST", "::")]);
    let port = app.addr.rsplit_once(':').expect("port").1;
    let (status, body) = http(&format!("127.0.0.1:{port}"), "GET", "/_tasks", "", &[]);
    assert_eq!(status, 200, "an IPv4 client seen as ::ffff:127.0.0.1: {body}");
}

#[test]
fn the_bearer_scheme_is_case_insensitive() {
    let app = Quickstart::start(&[
        ("TASKYARD_ENV", "production"),
        ("TASKYARD_TASKS_TOKEN", "let-me-in-7d1f"),
    ]);
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let value = format!("{scheme} let-me-in-7d1f");
        let (status, body) = http(&app.addr, "GET", "/_tasks", "", &[("Authorization", &value)]);
        assert_eq!(status, 200, "{scheme}: {body}");
    }
}
