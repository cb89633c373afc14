//! The default route: `/` is the welcome page; any other path no file declares is a 404
//! in the app's error shape (an HTML page for browsers, JSON for the rest).

use axum::response::Html;
use taskyard::http::HttpError;
use taskyard::route::Event;

pub async fn handler(event: Event) -> Result<Html<&'static str>, HttpError> {
    if event.path() == "/" {
        return Ok(Html(WELCOME));
    }
    Err(HttpError::not_found(format!(
        "Nothing at {}; try /hello/nitro or /api/users/1",
        event.path()
    )))
}

const WELCOME: &str = r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>taskyard quickstart</title><link rel="icon" href="data:,">
<style>body{font-family:system-ui,sans-serif;max-width:48rem;margin:2rem auto;line-height:1.5}code{background:#f3f3f3;padding:0 .2em}</style>
</head>
<body>
<h1>taskyard quickstart</h1>

<p><strong>The dashboard:</strong> <a href="/_tasks/ui">/_tasks/ui</a> — runs, tasks with a form for each, schedules, the lifecycle, live.</p>

<h2>Tasks</h2>
<ul>
<li><a href="/_nitro/tasks">/_nitro/tasks</a> — the tasks and schedules, in Nitro's shape</li>
<li><a href="/_nitro/tasks/echo:payload?hello=world">/_nitro/tasks/echo:payload?hello=world</a> — runs <code>echo:payload</code></li>
<li><a href="/_nitro/tasks/demo:slow?ms=1500">/_nitro/tasks/demo:slow?ms=1500</a> — a slow task with progress</li>
<li><a href="/_tasks">/_tasks</a> — the tasks with their payload schemas; <a href="/_tasks/runs">/_tasks/runs</a> — recorded runs</li>
<li><a href="/_tasks/schedules">/_tasks/schedules</a> — schedules and their next fire times</li>
<li><a href="/_tasks/lifecycle">/_tasks/lifecycle</a> — startup tasks, watchers and resources</li>
<li><a href="/_tasks/events">/_tasks/events</a> — live run events; <a href="/_tasks/openapi.json">/_tasks/openapi.json</a> — the API</li>
</ul>

<h2>From the command line</h2>
<pre>cargo install --path crates/taskyard-cli
taskyard task list
taskyard task run demo:slow --payload '{"ms":3000}'
taskyard task runs            # your runs; --all adds the schedules' runs
taskyard schedule list
curl -X POST localhost:3000/_tasks/echo:payload/runs -H 'content-type: application/json' -d '{"payload":{"hello":"world"}}'</pre>

<h2>Routes</h2>
<ul>
<li><a href="/hello/nitro">/hello/nitro</a> — a route with a parameter</li>
<li><a href="/hello/nitro/is/hot">/hello/nitro/is/hot</a> — a catch-all</li>
<li><a href="/api/users/1">/api/users/1</a> — JSON, documented in <a href="/_openapi.json">/_openapi.json</a></li>
<li><a href="/api/time">/api/time</a> — cached, refreshed in the background</li>
<li><a href="/old-hello/taskyard">/old-hello/taskyard</a> — a redirect rule</li>
<li><a href="/proxy/users/2">/proxy/users/2</a> — a proxy rule to /api/users/2</li>
</ul>
</body></html>
"#;
