//! The dashboard at `/_tasks/ui` over real HTTP on loopback: every page renders what it
//! must and escapes what it shows, writes need the CSRF token and are refused read-only,
//! and the task endpoints' access rule holds, with the login form in production.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::dashboard::{app, start, until};
use common::http::{Reply, Served, send, serve};
use serde_json::{Value, json};
use taskyard::http::TasksAccess;
use taskyard::schedule::Schedule;
use taskyard::{Dashboard, TaskError};

/// The value of the first `name="…" value="…"` input of a page, as the page escaped it.
fn input(page: &Reply, name: &str) -> Option<String> {
    let at = page.text.find(&format!("name=\"{name}\" value=\""))?;
    let rest = &page.text[at + name.len() + 15..];
    Some(rest[..rest.find('"')?].to_owned())
}

/// One request as a browser sends it, redirects not followed: `headers` added, a form's
/// fields sent as one.
async fn request(
    served: &Served,
    method: &str,
    path: &str,
    form: Option<&[(&str, &str)]>,
    headers: &[(&str, &str)],
) -> Reply {
    let body = form.map(|fields| {
        let mut body = form_urlencoded::Serializer::new(String::new());
        for (key, value) in fields {
            body.append_pair(key, value);
        }
        body.finish()
    });
    let body = body
        .as_deref()
        .map(|body| ("application/x-www-form-urlencoded", body));
    send(method, served.url(path), body, headers, false).await
}

async fn get(served: &Served, path: &str) -> Reply {
    request(served, "GET", path, None, &[]).await
}

async fn post_form(served: &Served, path: &str, fields: &[(&str, &str)]) -> Reply {
    request(served, "POST", path, Some(fields), &[]).await
}

/// Starts a run through the JSON API and waits for its end; returns its id.
async fn run(served: &Served, task: &str, payload: Value) -> String {
    run_as(served, task, payload, &[]).await
}

/// [`run`] with `headers` on every request.
async fn run_as(served: &Served, task: &str, payload: Value, headers: &[(&str, &str)]) -> String {
    let id = start(served, task, payload, headers).await;
    until(served, &id, headers, |status| {
        !matches!(status, "queued" | "running")
    })
    .await;
    id
}

/// The page's `<script` tags all load a file: none is inline.
fn assert_no_inline_script(page: &Reply) {
    for (at, _) in page.text.match_indices("<script") {
        let tag = &page.text[at..at + page.text[at..].find('>').expect("a closed tag")];
        assert!(tag.contains(" src="), "inline script: {tag}");
    }
    assert!(!page.text.contains(" style="), "inline style in the page");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_renders_with_its_policy_and_escapes_what_it_shows() {
    let served = serve(app(), None).await;
    let hostile = json!({ "html": "<script>alert(1)</script>", "quote": "\"'><img src=x>" });
    let id = run(&served, "echo", hostile).await;
    let failed = run(&served, "fail", json!({})).await;

    let overview = get(&served, "/_tasks/ui").await;
    assert_eq!(overview.status, 200, "{}", overview.text);
    assert_eq!(overview.header("content-type"), Some("text/html; charset=utf-8"));
    let policy = overview.header("content-security-policy").expect("a policy");
    assert!(policy.contains("script-src 'self'") && policy.contains("style-src 'self'"));
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert_eq!(overview.header("cache-control"), Some("no-store"));
    assert!(overview.text.contains("Recent failures"));
    let instance = common::http::get(&served, "/_tasks/health").await.json()["instance"]
        .as_str()
        .expect("the instance")
        .to_owned();
    let row = &overview.text[overview
        .text
        .find(&format!("data-instance=\"{instance}\""))
        .expect("its lease")..];
    let row = &row[..row.find("</tr>").expect("the row's end")];
    assert!(row.contains("(this one)") && row.contains(">live<"), "{row}");
    assert!(
        overview.text.contains(&failed[failed.len() - 12..]),
        "the failure is listed"
    );
    assert_no_inline_script(&overview);

    // The assets the page links are served, for a year, and nothing else is.
    for (kind, prefix) in [
        ("text/css", "rel=\"stylesheet\" href=\""),
        ("text/javascript", "src=\""),
    ] {
        let at = overview.text.find(prefix).expect("an asset link") + prefix.len();
        let href = &overview.text[at..at + overview.text[at..].find('"').expect("quoted")];
        let asset = get(&served, href).await;
        assert_eq!(asset.status, 200, "{href}");
        assert!(
            asset.header("content-type").is_some_and(|t| t.starts_with(kind)),
            "{href}"
        );
        assert!(
            asset
                .header("cache-control")
                .is_some_and(|c| c.contains("immutable"))
        );
    }
    assert_eq!(get(&served, "/_tasks/ui/assets/app.0000.css").await.status, 404);

    // The charts: SVG of the finished runs, drawn by the server.
    // Their addresses change with the period their counts are kept (5 s for the hour's,
    // a minute for the day's), inside a live region, so an open overview draws them anew.
    assert!(
        overview
            .text
            .contains(r#"<div class="charts" data-live-region="charts">"#)
    );
    let src = |text: &str, chart: &str| {
        let mark = format!(r#"<img src="/_tasks/ui/charts/{chart}.svg?at="#);
        let at = text
            .find(&mark)
            .unwrap_or_else(|| panic!("no {chart} chart in {text}"))
            + 10;
        text[at..at + text[at..].find('"').expect("the end of its address")].to_owned()
    };
    let hour = src(&overview.text, "hour");
    let period = |address: &str| -> i64 {
        address[address.find("?at=").expect("?at=") + 4..]
            .parse()
            .expect("a number")
    };
    let now_ms = jiff::Timestamp::now().as_millisecond();
    assert!((now_ms / 5_000 - period(&hour)).abs() <= 1, "{hour}");
    assert!((now_ms / 60_000 - period(&src(&overview.text, "day"))).abs() <= 1);
    let chart = get(&served, &hour).await;
    assert_eq!(chart.status, 200);
    assert_eq!(chart.header("content-type"), Some("image/svg+xml"));
    assert!(
        chart
            .text
            .contains("2 runs finished over the last hour, 50.0 % failed"),
        "{}",
        chart.text
    );
    assert!(
        chart.text.contains(" 1 succeeded, 1 failed, 0 cancelled"),
        "{}",
        chart.text
    );
    let day = get(&served, "/_tasks/ui/charts/day.svg").await;
    assert_eq!(
        day.text.matches("<g data-bucket").count(),
        49,
        "a bar every half hour"
    );
    assert_eq!(get(&served, "/_tasks/ui/charts/week.svg").await.status, 404);

    let list = get(&served, "/_tasks/ui/runs").await;
    assert_eq!(list.status, 200);
    assert!(list.text.contains(&format!("/_tasks/ui/runs/{id}")));
    assert_no_inline_script(&list);

    let detail = get(&served, &format!("/_tasks/ui/runs/{id}")).await;
    assert_eq!(detail.status, 200);
    // The payload is shown as text, never as markup.
    assert!(!detail.text.contains("<script>alert(1)"), "{}", detail.text);
    assert!(detail.text.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!detail.text.contains("<img src=x>"));
    assert_no_inline_script(&detail);
    let failure = get(&served, &format!("/_tasks/ui/runs/{failed}")).await;
    assert!(failure.text.contains("it broke &lt;b&gt;here&lt;/b&gt;"));

    // Unknown runs and pages, bad filters: a page that says what is wrong.
    let missing = get(&served, "/_tasks/ui/runs/0190b6a0-0000-7000-8000-000000000000").await;
    assert_eq!(missing.status, 404);
    assert!(missing.text.contains("0190b6a0-0000-7000-8000-000000000000"));
    let slash = get(&served, "/_tasks/ui/").await;
    assert_eq!(
        (slash.status, slash.header("location")),
        (303, Some("/_tasks/ui"))
    );
    let nowhere = get(&served, "/_tasks/ui/nowhere").await;
    assert_eq!(nowhere.status, 404);
    assert!(nowhere.text.contains("no page at `/_tasks/ui/nowhere`"));
    let bad = get(&served, "/_tasks/ui/runs?status=sleeping").await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.text
            .contains("`status=sleeping` is not valid; expected one of queued")
    );
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runs_list_filters_through_the_url_and_pages_by_keyset() {
    let served = serve(app(), None).await;
    let mut ids = Vec::new();
    for n in 0..7 {
        ids.push(run(&served, "echo", json!({ "n": n })).await);
    }
    run(&served, "fail", json!({})).await;
    ids.reverse();
    let mut seen = Vec::new();
    let mut path = "/_tasks/ui/runs?task=echo&limit=3".to_owned();
    let mut pages = 0;
    loop {
        let page = get(&served, &path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.text);
        assert!(
            !page.text.contains("/_tasks/ui/runs?task=fail"),
            "only echo's runs"
        );
        for (at, _) in page.text.match_indices("data-run=\"") {
            seen.push(page.text[at + 10..at + 46].to_owned());
        }
        pages += 1;
        let Some(at) = page.text.find("rel=\"next\"") else {
            break;
        };
        let start = page.text[..at].rfind("href=\"").expect("a link") + 6;
        path = page.text[start..at - 2].replace("&amp;", "&");
        assert!(path.contains("task=echo") && path.contains("before="), "{path}");
    }
    assert_eq!(seen, ids, "every run once, newest first");
    assert_eq!(pages, 3);
    // The form shows the filter it applied.
    let failed = get(&served, "/_tasks/ui/runs?status=failed").await;
    assert!(failed.text.contains("<option value=\"failed\" selected>"));
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_take_the_csrf_token_and_act_on_the_run() {
    let served = serve(app(), None).await;
    let failed = run(&served, "fail", json!({})).await;
    let detail = get(&served, &format!("/_tasks/ui/runs/{failed}")).await;
    let csrf = input(&detail, "csrf").expect("the retry form carries a token");
    let retry = format!("/_tasks/ui/runs/{failed}/retry");
    for fields in [&[][..], &[("csrf", "forged")][..]] {
        let refused = post_form(&served, &retry, fields).await;
        assert_eq!(refused.status, 403, "{fields:?}");
        assert!(refused.text.contains("CSRF token"));
    }
    let retried = post_form(&served, &retry, &[("csrf", &csrf)]).await;
    assert_eq!(retried.status, 303, "{}", retried.text);
    assert_eq!(
        retried.header("location"),
        Some(format!("/_tasks/ui/runs/{failed}?done=retried").as_str())
    );
    let after = get(&served, &format!("/_tasks/ui/runs/{failed}?done=retried")).await;
    assert!(after.text.contains("Queued again as its next attempt."));
    // The attempts as a timeline: the failed first, its backoff, the second.
    let first = after.text.find(r#"data-attempt="1""#).expect("the first attempt");
    let second = after
        .text
        .find(r#"data-attempt="2""#)
        .expect("the second attempt");
    assert!(first < second, "oldest first");
    assert!(after.text[first..second].contains("it broke &lt;b&gt;here&lt;/b&gt;"));

    // A running run: its page offers Cancel, and the cancel ends it.
    let reply = common::http::post(&served, "/_tasks/wait/runs?wait=false", "{}").await;
    let waiting = reply.json()["run_id"].as_str().expect("an id").to_owned();
    let page = get(&served, &format!("/_tasks/ui/runs/{waiting}")).await;
    assert!(page.text.contains("/cancel"), "{}", page.text);
    let cancelled = post_form(
        &served,
        &format!("/_tasks/ui/runs/{waiting}/cancel"),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(cancelled.status, 303);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let run = common::http::get(&served, &format!("/_tasks/runs/{waiting}"))
            .await
            .json();
        if run["status"] == "cancelled" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "still {}", run["status"]);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A page of another site cannot post to it, token or not.
    let cross = request(
        &served,
        "POST",
        &retry,
        Some(&[("csrf", &csrf)]),
        &[
            ("origin", "http://evil.example"),
            ("sec-fetch-site", "cross-site"),
        ],
    )
    .await;
    assert_eq!(cross.status, 403);
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_hides_and_refuses_every_write() {
    let served = serve(
        app()
            .dashboard(Dashboard::ReadOnly)
            .tasks_access(TasksAccess::Token("s3cret".to_owned())),
        None,
    )
    .await;
    let bearer = [("authorization", "Bearer s3cret")];
    let failed = run_as(&served, "fail", json!({}), &bearer).await;
    let detail = request(
        &served,
        "GET",
        &format!("/_tasks/ui/runs/{failed}"),
        None,
        &bearer,
    )
    .await;
    assert_eq!(detail.status, 200, "{}", detail.text);
    assert!(detail.text.contains("read-only"));
    assert!(!detail.text.contains("/retry"), "no retry form");
    // The logout form still carries the token: a forged retry with it is refused anyway.
    let csrf = input(&detail, "csrf").expect("the logout form's token");
    let refused = request(
        &served,
        "POST",
        &format!("/_tasks/ui/runs/{failed}/retry"),
        Some(&[("csrf", &csrf)]),
        &bearer,
    )
    .await;
    assert_eq!(refused.status, 403);
    assert!(refused.text.contains("read-only"));
    served.stop().await;

    // Off: the dashboard is not there at all, the API still is.
    let served = serve(app().dashboard(Dashboard::Off), None).await;
    for path in ["/_tasks/ui", "/_tasks/ui/login", "/_tasks/ui/runs/x"] {
        let page = get(&served, path).await;
        assert_eq!(page.status, 404, "{path}");
        assert_eq!(page.header("content-type"), Some("application/json"), "{path}");
    }
    assert_eq!(get(&served, "/_tasks/health").await.status, 200);
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_logs_in_with_the_token_and_the_cookie_opens_the_dashboard_only() {
    let outside: SocketAddr = "10.1.2.3:40000".parse().expect("an address");
    let served = serve(
        app().tasks_access(TasksAccess::Token("s3cret".to_owned())),
        Some(outside),
    )
    .await;
    let to_login = get(&served, "/_tasks/ui/runs?status=failed").await;
    assert_eq!(to_login.status, 303);
    assert_eq!(
        to_login.header("location"),
        Some("/_tasks/ui/login?next=%2F_tasks%2Fui%2Fruns%3Fstatus%3Dfailed")
    );
    let form = get(
        &served,
        "/_tasks/ui/login?next=%2F_tasks%2Fui%2Fruns%3Fstatus%3Dfailed",
    )
    .await;
    assert_eq!(form.status, 200);
    assert!(form.text.contains("type=\"password\" name=\"token\""));
    assert!(
        !form.text.contains("name=\"csrf\""),
        "no CSRF token before a session"
    );
    let wrong = post_form(
        &served,
        "/_tasks/ui/login",
        &[("token", "guess"), ("next", "/_tasks/ui/runs")],
    )
    .await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.text.contains("not the token set in TASKYARD_TASKS_TOKEN"));
    assert!(wrong.header("set-cookie").is_none());
    let right = post_form(
        &served,
        "/_tasks/ui/login",
        &[("token", "s3cret"), ("next", "/_tasks/ui/runs?status=failed")],
    )
    .await;
    assert_eq!(right.status, 303);
    assert_eq!(right.header("location"), Some("/_tasks/ui/runs?status=failed"));
    let cookie = right.header("set-cookie").expect("a session cookie").to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/_tasks/ui"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(
        !cookie.contains("s3cret"),
        "the cookie holds a digest, not the token"
    );
    assert!(!cookie.contains("Secure"), "over plain HTTP: {cookie}");
    // Behind a proxy that ends TLS, or from an https:// page, the cookie is `Secure`.
    for header in [
        ("x-forwarded-proto", "https"),
        ("forwarded", "for=192.0.2.1;proto=https"),
        ("origin", "https://tasks.example"),
    ] {
        let over_tls = request(
            &served,
            "POST",
            "/_tasks/ui/login",
            Some(&[("token", "s3cret")]),
            &[header],
        )
        .await;
        let cookie = over_tls.header("set-cookie").unwrap_or("");
        assert!(cookie.ends_with("; Secure"), "{header:?}: {cookie}");
    }
    let plain = request(
        &served,
        "POST",
        "/_tasks/ui/login",
        Some(&[("token", "s3cret")]),
        &[("x-forwarded-proto", "http")],
    )
    .await;
    assert!(!plain.header("set-cookie").unwrap_or("Secure").contains("Secure"));
    let session = cookie.split(';').next().expect("name=value").to_owned();
    let with_cookie = [("cookie", session.as_str())];
    let runs = request(&served, "GET", "/_tasks/ui/runs", None, &with_cookie).await;
    assert_eq!(runs.status, 200);
    assert!(runs.text.contains("Log out"));
    // The page's live updates come from the event stream under the dashboard's path.
    let bearer = [("authorization", "Bearer s3cret")];
    let ended = run_as(&served, "echo", json!({}), &bearer).await;
    let events = request(
        &served,
        "GET",
        &format!("/_tasks/ui/events?run={ended}"),
        None,
        &with_cookie,
    )
    .await;
    assert_eq!(events.status, 200);
    assert_eq!(events.header("content-type"), Some("text/event-stream"));
    assert!(events.text.contains("event: run"), "{}", events.text);
    // The cookie does not open the JSON API: a page cannot use it to run a task.
    let api = request(&served, "GET", "/_tasks/runs", None, &with_cookie).await;
    assert_eq!(api.status, 401);
    let start = request(
        &served,
        "POST",
        "/_tasks/echo/runs",
        Some(&[("a", "1")]),
        &with_cookie,
    )
    .await;
    assert_eq!(start.status, 401);
    // A wrong cookie is no session; a write without one is refused, not redirected.
    let forged = request(
        &served,
        "GET",
        "/_tasks/ui/runs",
        None,
        &[("cookie", "taskyard_session=00")],
    )
    .await;
    assert_eq!(forged.status, 303);
    let write = post_form(&served, "/_tasks/ui/logout", &[]).await;
    assert_eq!(write.status, 401);
    // After a login, only dashboard pages: another site is never the next stop.
    let away = post_form(
        &served,
        "/_tasks/ui/login",
        &[("token", "s3cret"), ("next", "https://evil.example/")],
    )
    .await;
    assert_eq!(away.header("location"), Some("/_tasks/ui"));
    // Logging out takes the form's token and ends the cookie.
    let csrf = input(&runs, "csrf").expect("the logout form");
    let out = request(
        &served,
        "POST",
        "/_tasks/ui/logout",
        Some(&[("csrf", &csrf)]),
        &with_cookie,
    )
    .await;
    assert_eq!(out.status, 303);
    assert!(out.header("set-cookie").is_some_and(|c| c.contains("Max-Age=0")));
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_development_only_this_machine_reaches_it() {
    let outside: SocketAddr = "10.1.2.3:40000".parse().expect("an address");
    let served = serve(app().tasks_access(TasksAccess::Loopback), Some(outside)).await;
    assert_eq!(get(&served, "/_tasks/ui").await.status, 403);
    served.stop().await;
    let served = serve(app().tasks_access(TasksAccess::Loopback), None).await;
    assert_eq!(get(&served, "/_tasks/ui").await.status, 200);
    let rebound = request(&served, "GET", "/_tasks/ui", None, &[("host", "evil.example")]).await;
    assert_eq!(rebound.status, 403, "a DNS-rebound name is refused");
    let login = get(&served, "/_tasks/ui/login").await;
    assert!(login.text.contains("No login is needed"));
    served.stop().await;
}

/// The markup of the form's field at `path`, up to the next field.
fn field_of<'a>(page: &'a Reply, path: &str) -> &'a str {
    let start = page
        .text
        .find(&format!("data-path=\"{path}\""))
        .expect("the field");
    let rest = &page.text[start + 1..];
    let end = ["data-path=", "</form>"]
        .iter()
        .filter_map(|next| rest.find(next))
        .min()
        .unwrap_or(rest.len());
    &rest[..end]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_runs_from_the_form_its_schema_makes_and_errors_land_at_their_field() {
    let served = serve(app(), None).await;
    run(&served, "echo", json!({})).await;

    let list = get(&served, "/_tasks/ui/tasks").await;
    assert_eq!(list.status, 200);
    for task in ["echo", "fail", "image:resize", "wait"] {
        assert!(list.text.contains(&format!("data-task=\"{task}\"")), "{task}");
    }
    assert!(list.text.contains("Resizes an image"));
    assert!(list.text.contains("100 %"), "echo's success rate");

    let page = get(&served, "/_tasks/ui/tasks/image:resize").await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(
        page.text.contains(r#"type="number" step="1" name="width""#),
        "{}",
        page.text
    );
    assert!(page.text.contains(r#"<option value="cover">"#));
    assert!(page.text.contains(r#"name="image.url""#));
    assert!(page.text.contains("Pixels wide"));
    let csrf = input(&page, "csrf").expect("the form's token");
    let path = "/_tasks/ui/tasks/image:resize/run";

    // Caught by the form: not a number.
    let fields = [
        ("csrf", csrf.as_str()),
        ("width", "wide"),
        ("fit", "cover"),
        ("image.url", "a.png"),
    ];
    let refused = post_form(&served, path, &fields).await;
    assert_eq!(refused.status, 400);
    assert!(
        field_of(&refused, "width").contains("`wide` is not a whole number"),
        "{}",
        refused.text
    );
    assert!(refused.text.contains(r#"value="a.png""#), "what was typed stays");
    // Caught by the task's payload type: a negative width is no `u32`.
    let fields = [
        ("csrf", csrf.as_str()),
        ("width", "-3"),
        ("fit", "cover"),
        ("image.url", "a.png"),
    ];
    let refused = post_form(&served, path, &fields).await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert!(
        field_of(&refused, "width").contains("invalid value: integer `-3`"),
        "{}",
        refused.text
    );

    let fields = [
        ("csrf", csrf.as_str()),
        ("width", "640"),
        ("fit", "cover"),
        ("image.url", "a.png"),
    ];
    let ran = post_form(&served, path, &fields).await;
    assert_eq!(ran.status, 303, "{}", ran.text);
    let location = ran.header("location").expect("to the run").to_owned();
    let id = location.trim_start_matches("/_tasks/ui/runs/");
    let record = common::http::get(&served, &format!("/_tasks/runs/{id}"))
        .await
        .json();
    assert_eq!(
        record["payload"],
        json!({ "width": 640, "fit": "cover", "image": { "url": "a.png" } })
    );
    assert_eq!(record["trigger"]["kind"], "http");

    // Later: enqueued with its delay, waiting in the store.
    let fields = [
        ("csrf", csrf.as_str()),
        ("width", "1"),
        ("fit", "contain"),
        ("image.url", "b.png"),
        ("delay", "3600"),
    ];
    let later = post_form(&served, path, &fields).await;
    assert_eq!(later.status, 303, "{}", later.text);
    let id = later
        .header("location")
        .expect("to the run")
        .trim_start_matches("/_tasks/ui/runs/")
        .to_owned();
    let record = common::http::get(&served, &format!("/_tasks/runs/{id}"))
        .await
        .json();
    assert_eq!(record["status"], "queued");
    let bad_time = [
        ("csrf", csrf.as_str()),
        ("width", "1"),
        ("fit", "contain"),
        ("image.url", "b"),
        ("at", "soon"),
    ];
    let refused = post_form(&served, path, &bad_time).await;
    assert_eq!(refused.status, 400);
    assert!(refused.text.contains("`soon` is not an RFC 3339 instant"));
    assert_eq!(get(&served, "/_tasks/ui/tasks/nope").await.status, 404);
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_show_their_times_and_ticks_and_pause_resume_and_run_now() {
    let app = app()
        .schedule(
            "nightly",
            Schedule::worker()
                .cron("0 3 * * *")
                .task("echo")
                .payload(json!({ "from": "nightly" })),
        )
        .schedule("often", Schedule::worker().interval("1h").task("echo"))
        .setup(|cx| {
            cx.use_task("migrate", |_t| async { Ok::<_, TaskError>(()) });
        });
    let served = serve(app, None).await;
    let list = get(&served, "/_tasks/ui/schedules").await;
    assert_eq!(list.status, 200, "{}", list.text);
    assert!(list.text.contains("data-schedule=\"nightly\"") && list.text.contains("data-schedule=\"often\""));
    assert!(list.text.contains("every 1 h 0 min"), "{}", list.text);

    let page = get(&served, "/_tasks/ui/schedules/nightly").await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("<code>0 3 * * *</code>"));
    assert!(
        page.text.contains("03:00"),
        "the expression in words: {}",
        page.text
    );
    assert_eq!(
        page.text.matches("T03:00:00Z\" title=").count(),
        5,
        "the next 5 fire times"
    );
    assert!(page.text.contains("No tick yet."));
    let csrf = input(&page, "csrf").expect("the forms' token");

    // Run now: a run of the schedule's job, at once, and the page goes to it.
    let ran = post_form(&served, "/_tasks/ui/schedules/nightly/run", &[("csrf", &csrf)]).await;
    assert_eq!(ran.status, 303, "{}", ran.text);
    let location = ran.header("location").expect("to the run").to_owned();
    assert!(location.starts_with("/_tasks/ui/runs/"), "{location}");
    let id = location.trim_start_matches("/_tasks/ui/runs/").to_owned();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let record = common::http::get(&served, &format!("/_tasks/runs/{id}"))
            .await
            .json();
        if record["status"] == "succeeded" {
            assert_eq!(record["trigger"]["schedule"], "nightly");
            assert_eq!(record["payload"], json!({ "from": "nightly" }));
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{record}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let page = get(&served, "/_tasks/ui/schedules/nightly").await;
    assert!(
        page.text.contains(&format!(
            "class=\"tick status-succeeded\" href=\"/_tasks/ui/runs/{id}\""
        )),
        "{}",
        page.text
    );

    // Pause and resume, with the CSRF token only.
    assert_eq!(
        post_form(&served, "/_tasks/ui/schedules/nightly/pause", &[])
            .await
            .status,
        403
    );
    let paused = post_form(&served, "/_tasks/ui/schedules/nightly/pause", &[("csrf", &csrf)]).await;
    assert_eq!(
        paused.header("location"),
        Some("/_tasks/ui/schedules/nightly?done=paused")
    );
    let schedule = common::http::get(&served, "/_tasks/schedules/nightly")
        .await
        .json();
    assert_eq!(schedule["paused"], true);
    let page = get(&served, "/_tasks/ui/schedules/nightly?done=paused").await;
    assert!(page.text.contains("Paused on every instance"));
    assert!(page.text.contains("/resume") && !page.text.contains("/pause\""));
    post_form(&served, "/_tasks/ui/schedules/nightly/resume", &[("csrf", &csrf)]).await;
    assert_eq!(
        common::http::get(&served, "/_tasks/schedules/nightly")
            .await
            .json()["paused"],
        false
    );
    assert_eq!(get(&served, "/_tasks/ui/schedules/nope").await.status, 404);

    // The lifecycle: the startup task ran once and is idle.
    let lifecycle = get(&served, "/_tasks/ui/lifecycle").await;
    assert_eq!(lifecycle.status, 200);
    let row = &lifecycle.text[lifecycle.text.find("data-node=\"migrate\"").expect("its row")..];
    let row = &row[..row.find("</tr>").expect("the row's end")];
    assert!(
        row.contains("lifecycle-idle") && row.contains("<td class=\"num\">1</td>"),
        "{row}"
    );
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_filter_is_in_the_url_and_bulk_actions_show_their_count_first() {
    let served = serve(app(), None).await;
    run(&served, "echo", json!({ "user": "Ada Lovelace" })).await;
    run(&served, "echo", json!({ "user": "Grace" })).await;
    let found = get(
        &served,
        "/_tasks/ui/runs?q=lovelace&trigger=http&since=2020-01-01T00:00",
    )
    .await;
    assert_eq!(found.status, 200, "{}", found.text);
    assert_eq!(found.text.matches("data-run=").count(), 1, "{}", found.text);
    assert!(found.text.contains(r#"<option value="http" selected>"#));
    assert!(found.text.contains(r#"name="q" value="lovelace""#));
    assert!(found.text.contains(r#"value="2020-01-01T00:00:00Z""#));
    let none = get(&served, "/_tasks/ui/runs?q=lovelace&trigger=cli").await;
    assert_eq!(none.text.matches("data-run=").count(), 0);
    let bad = get(&served, "/_tasks/ui/runs?until=soon").await;
    assert_eq!(bad.status, 400);
    assert!(bad.text.contains("`until=soon` is not valid"));

    // Three runs waiting to be cancelled, two failed ones to retry.
    let mut waiting = Vec::new();
    for _ in 0..3 {
        waiting.push(start(&served, "wait", json!({}), &[]).await);
    }
    for id in &waiting {
        until(&served, id, &[], |status| status == "running").await;
    }
    run(&served, "fail", json!({})).await;
    run(&served, "fail", json!({})).await;
    let list = get(&served, "/_tasks/ui/runs?task=wait").await;
    assert!(
        list.text
            .contains("/_tasks/ui/runs/bulk?action=cancel&amp;task=wait"),
        "{}",
        list.text
    );
    let confirm = get(&served, "/_tasks/ui/runs/bulk?action=cancel&task=wait").await;
    assert_eq!(confirm.status, 200, "{}", confirm.text);
    assert!(confirm.text.contains(r#"data-count="3""#), "{}", confirm.text);
    assert!(confirm.text.contains("Cancel <strong>3</strong> runs?"));
    let csrf = input(&confirm, "csrf").expect("the form's token");
    let fields = [("action", "cancel"), ("query", "task=wait")];
    assert_eq!(
        post_form(&served, "/_tasks/ui/runs/bulk", &fields).await.status,
        403,
        "no token"
    );
    let done = post_form(
        &served,
        "/_tasks/ui/runs/bulk",
        &[("csrf", &csrf), fields[0], fields[1]],
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.text);
    assert_eq!(
        done.header("location"),
        Some("/_tasks/ui/runs?task=wait&bulk=cancel&done=3&skipped=0")
    );
    for id in &waiting {
        until(&served, id, &[], |status| status == "cancelled").await;
    }
    let after = get(&served, "/_tasks/ui/runs?task=wait&bulk=cancel&done=3&skipped=0").await;
    assert!(after.text.contains("Cancel asked for 3 runs"));

    let confirm = get(&served, "/_tasks/ui/runs/bulk?action=retry&task=fail").await;
    assert!(confirm.text.contains(r#"data-count="2""#), "{}", confirm.text);
    let fields = [
        ("csrf", csrf.as_str()),
        ("action", "retry"),
        ("query", "task=fail"),
    ];
    let done = post_form(&served, "/_tasks/ui/runs/bulk", &fields).await;
    assert!(
        done.header("location")
            .is_some_and(|l| l.contains("bulk=retry&done=2")),
        "{:?}",
        done.header("location")
    );
    let retried = common::http::get(&served, "/_tasks/runs?task=fail").await.json();
    for run in retried["runs"].as_array().expect("runs") {
        let id = run["id"].as_str().expect("an id");
        let run = until(&served, id, &[], |status| status == "failed").await;
        assert_eq!(run["attempt"], 2, "retried once: {run}");
    }
    let nothing = get(&served, "/_tasks/ui/runs/bulk?action=cancel&task=echo").await;
    assert!(nothing.text.contains(r#"data-count="0""#) && !nothing.text.contains("name=\"action\""));
    assert_eq!(
        get(&served, "/_tasks/ui/runs/bulk?action=delete").await.status,
        400
    );
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_action_refuses_a_post_without_the_token_and_in_read_only_mode() {
    let bearer = [("authorization", "Bearer s3cret")];
    for dashboard in [Dashboard::On, Dashboard::ReadOnly] {
        let app = app()
            .schedule("often", Schedule::worker().interval("1h").task("echo"))
            .dashboard(dashboard)
            .tasks_access(TasksAccess::Token("s3cret".to_owned()));
        let served = serve(app, None).await;
        let failed = run_as(&served, "fail", json!({}), &bearer).await;
        let waiting = start(&served, "wait", json!({}), &bearer).await;
        let page = request(&served, "GET", "/_tasks/ui", None, &bearer).await;
        // The logout form carries the token in both modes.
        let csrf = input(&page, "csrf").expect("a token");
        let actions = [
            format!("/_tasks/ui/runs/{failed}/retry"),
            format!("/_tasks/ui/runs/{waiting}/cancel"),
            "/_tasks/ui/tasks/echo/run".to_owned(),
            "/_tasks/ui/schedules/often/pause".to_owned(),
            "/_tasks/ui/schedules/often/resume".to_owned(),
            "/_tasks/ui/schedules/often/run".to_owned(),
            "/_tasks/ui/runs/bulk".to_owned(),
        ];
        for path in &actions {
            let fields = [("action", "cancel"), ("query", "task=wait")];
            let without = request(&served, "POST", path, Some(&fields), &bearer).await;
            assert_eq!(without.status, 403, "{dashboard:?} {path} without the token");
            let with = [("csrf", csrf.as_str()), fields[0], fields[1]];
            let answered = request(&served, "POST", path, Some(&with), &bearer).await;
            match dashboard {
                Dashboard::ReadOnly => {
                    assert_eq!(answered.status, 403, "{path}");
                    assert!(answered.text.contains("read-only"), "{path}");
                }
                _ => assert_eq!(answered.status, 303, "{path}: {}", answered.text),
            }
        }
        // Nothing changed read-only: the waiting run still runs, the schedule is not paused.
        if dashboard == Dashboard::ReadOnly {
            let run = until(&served, &waiting, &bearer, |_| true).await;
            assert_eq!(run["status"], "running");
        }
        served.stop().await;
    }
}
