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
<html lang="en"><head><meta charset="utf-8"><title>taskyard quickstart</title></head>
<body>
<h1>taskyard quickstart</h1>
<ul>
<li><a href="/hello/nitro">/hello/nitro</a> — a route with a parameter</li>
<li><a href="/hello/nitro/is/hot">/hello/nitro/is/hot</a> — a catch-all</li>
<li><a href="/api/users/1">/api/users/1</a> — JSON, documented in <a href="/_openapi.json">/_openapi.json</a></li>
<li><a href="/api/time">/api/time</a> — cached, refreshed in the background</li>
<li><a href="/old-hello/taskyard">/old-hello/taskyard</a> — a redirect rule</li>
<li><a href="/proxy/users/2">/proxy/users/2</a> — a proxy rule to /api/users/2</li>
<li><a href="/_nitro/tasks">/_nitro/tasks</a> — the tasks</li>
</ul>
</body></html>
"#;
