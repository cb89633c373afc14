//! The routing example over real HTTP on loopback: matching precedence, 404 and 405,
//! parameters and catch-alls, middleware order and short-circuit, every route rule and their
//! merging, the cache, errors as JSON or HTML, and the OpenAPI document read by a real
//! OpenAPI 3.1 parser.

mod common;

use std::time::Duration;

use common::{Reply, call, echo, example, get, serve};
use serde_json::{Value, json};
use taskyard::App;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_beats_param_beats_catch_all_and_params_reach_handlers() {
    let served = serve(example("")).await;
    let cases = [
        ("GET", "/", 200, "home"),
        ("GET", "/hello/static", 200, "static"),
        ("GET", "/hello/nitro", 200, "Hello nitro!"),
        (
            "GET",
            "/hello/nitro/is/hot",
            200,
            "GET catch-all Some(\"nitro/is/hot\")",
        ),
        ("DELETE", "/hello/a/b", 200, "DELETE catch-all Some(\"a/b\")"),
        // A catch-all answers its base path too, as Nitro's `**` matches no segment.
        ("GET", "/hello", 200, "GET catch-all None"),
        ("GET", "/orgs/acme/repos/rocket", 200, "acme/rocket"),
        ("GET", "/about", 200, "about"),
        ("GET", "/item", 200, "get item"),
        ("POST", "/item", 200, "post item"),
        (
            "GET",
            "/anything/at/all",
            200,
            "default Some(\"anything/at/all\")",
        ),
        ("GET", "/api/users/7", 200, "user 7"),
        (
            "GET",
            "/build",
            200,
            if cfg!(debug_assertions) { "dev" } else { "prod" },
        ),
    ];
    for (method, path, status, text) in cases {
        let reply = call(method, format!("{}{path}", served.base), None, &[]).await;
        assert_eq!(
            (reply.status, reply.text.as_str()),
            (status, text),
            "{method} {path}"
        );
    }
    // The path exists, the method does not: 405 naming what is allowed, in the error shape.
    let reply = call("DELETE", format!("{}/item", served.base), None, &[]).await;
    assert_eq!(reply.status, 405, "{reply:?}");
    let allow = reply.header("allow").expect("Allow");
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    assert_eq!(reply.json()["statusCode"], 405);
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_no_route_declares_is_a_404_in_the_error_shape() {
    let served = serve(App::new()).await;
    let reply = get(&served, "/nowhere?x=1").await;
    assert_eq!(reply.status, 404);
    let body = reply.json();
    assert_eq!(body["message"], "Cannot find any path matching /nowhere.");
    assert_eq!(body["url"], "/nowhere?x=1");
    assert_eq!(body["statusMessage"], "Not Found");
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn middleware_runs_in_numeric_order_and_may_answer_itself() {
    let served = serve(example("")).await;
    let trail = get(&served, "/trail").await;
    assert_eq!(trail.json(), json!({ "trail": ["2.first", "10.second"] }));
    let blocked = get(&served, "/blocked").await;
    assert_eq!(
        (blocked.status, blocked.text.as_str()),
        (403, "blocked by 10.second")
    );
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_bodies_are_typed_and_bad_fields_named() {
    let served = serve(example("")).await;
    let url = format!("{}/api/echo", served.base);
    let ok = call("POST", url.clone(), Some(r#"{"name":"Ada","age":36}"#), &[]).await;
    assert_eq!(ok.json(), json!({ "name": "Ada", "age": 36 }));
    let bad = call("POST", url.clone(), Some(r#"{"name":"Ada","age":360}"#), &[]).await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["data"]["path"], "age", "{}", bad.text);
    let broken = call("POST", url, Some("{"), &[]).await;
    assert_eq!(broken.status, 400);
    assert!(
        broken.json()["message"]
            .as_str()
            .unwrap_or("")
            .contains("not valid JSON"),
        "{}",
        broken.text
    );
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_json_for_the_api_and_html_pages_for_browsers() {
    let served = serve(example("")).await;
    let html = [("accept", "text/html,application/xhtml+xml")];
    // A chosen error: its status, message and data, JSON under /api even for browsers.
    let teapot = call("GET", format!("{}/api/teapot", served.base), None, &html).await;
    assert_eq!(teapot.status, 418);
    assert_eq!(teapot.header("content-type"), Some("application/json"));
    let body = teapot.json();
    assert_eq!(
        (&body["message"], &body["data"], &body["url"]),
        (
            &json!("short and stout"),
            &json!({ "spout": true }),
            &json!("/api/teapot")
        )
    );
    // Rule headers land on error responses too.
    assert_eq!(teapot.header("x-api"), Some("yes"));
    // `POST /api/**` applies to POST requests only, over the rule for every method.
    let write = call("POST", format!("{}/api/echo", served.base), Some("{}"), &[]).await;
    assert_eq!(write.header("x-api"), Some("write"), "{}", write.text);
    // Outside /api: an HTML page for a browser, JSON for anything else.
    let page = call("GET", format!("{}/page-error", served.base), None, &html).await;
    assert_eq!(page.status, 404);
    assert!(page.header("content-type").unwrap_or("").starts_with("text/html"));
    assert!(
        page.text.contains("<h1>404</h1>") && page.text.contains("no such &lt;page&gt;"),
        "{}",
        page.text
    );
    let json = get(&served, "/page-error").await;
    assert_eq!(json.json()["message"], "no such <page>");
    // An unhandled error in development: the message and the chain of causes.
    let fail = get(&served, "/api/fail").await;
    assert_eq!(fail.status, 500);
    let body = fail.json();
    assert_eq!(body["message"], "number too large to fit in target type");
    assert_eq!(body["stack"], json!(["number too large to fit in target type"]));
    served.stop().await;

    // In production an unhandled error says nothing more; a chosen one keeps its message.
    let served = serve(example("").production(true)).await;
    let fail = get(&served, "/api/fail").await;
    let body = fail.json();
    assert_eq!(
        (fail.status, &body["message"]),
        (500, &json!("Internal Server Error"))
    );
    assert!(body.get("stack").is_none() && body["data"].is_null(), "{body}");
    assert_eq!(
        get(&served, "/api/teapot").await.json()["message"],
        "short and stout"
    );
    // Nor is the route list published.
    assert_eq!(
        get(&served, "/_openapi.json").await.text,
        "default Some(\"_openapi.json\")"
    );
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_carry_the_rest_of_the_path_and_the_query() {
    let served = serve(example("")).await;
    let old = get(&served, "/old?x=1").await;
    assert_eq!(
        (old.status, old.header("location")),
        (307, Some("/hello/old?x=1"))
    );
    let moved = get(&served, "/moved/a/b?c=d").await;
    assert_eq!(
        (moved.status, moved.header("location")),
        (308, Some("/hello/a/b?c=d"))
    );
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxies_reach_internal_paths_and_other_servers() {
    // Another server on loopback, answering with what it received.
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let upstream_addr = upstream.local_addr().expect("addr");
    let upstream_task = tokio::spawn(async move { axum::serve(upstream, echo()).await });
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let closed_addr = closed.local_addr().expect("addr");
    drop(closed);
    let extra = format!(
        "[route_rules.\"/up/**\"]\nproxy = \"http://{upstream_addr}/base/**\"\n\
         [route_rules.\"/down/**\"]\nproxy = \"http://{closed_addr}/**\"\n\
         [route_rules.\"/bare/**\"]\nproxy = \"http://{upstream_addr}/**\"\n\
         [route_rules.\"/loop/**\"]\nproxy = \"/loop/**\"\n"
    );
    let served = serve(example(&extra)).await;

    let internal = get(&served, "/alias/a/b?q=1").await;
    assert_eq!(internal.text, "GET catch-all Some(\"a/b\")");
    let external = call("POST", format!("{}/up/x/y?q=1", served.base), Some("hello"), &[]).await;
    assert_eq!(external.status, 200, "{}", external.text);
    let body = external.json();
    assert_eq!(body["host"], upstream_addr.to_string());
    assert_eq!(body["body"], "hello");
    assert!(
        body["forwarded_host"]
            .as_str()
            .unwrap_or("")
            .starts_with("127.0.0.1:"),
        "{body}"
    );
    assert_eq!(body["path"], "/base/x/y");
    // Slashes after the rule's base collapse: never a path that names another host.
    for (path, reached) in [
        ("/up//evil.com/x", "/base/evil.com/x"),
        ("/bare//evil.com", "/evil.com"),
        ("/bare////evil.com", "/evil.com"),
    ] {
        let reply = get(&served, path).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text);
        assert_eq!(reply.json()["path"], reached, "{path}");
    }
    let internal = get(&served, "/alias//evil.com").await;
    assert_eq!(
        internal.text, "Hello evil.com!",
        "/hello/evil.com, not /hello//evil.com"
    );
    let down = get(&served, "/down/x").await;
    assert_eq!(down.status, 502, "{}", down.text);
    assert!(
        down.json()["message"]
            .as_str()
            .unwrap_or("")
            .contains("did not answer"),
        "{}",
        down.text
    );
    // An internal proxy goes through the whole app again, rules included: a loop is cut.
    let looped = get(&served, "/loop/x").await;
    assert_eq!(looped.status, 508, "{}", looped.text);
    served.stop().await;
    upstream_task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_merge_from_broad_to_narrow_and_false_removes_one() {
    let served = serve(example("")).await;
    let broad = get(&served, "/rules/x").await;
    assert_eq!(broad.header("x-rules"), Some("broad"));
    assert_eq!(broad.header("x-broad"), Some("yes"));
    // `cors = true`: h3's default headers on a plain request too.
    for (name, value) in [
        ("access-control-allow-origin", "*"),
        ("access-control-allow-methods", "*"),
        ("access-control-allow-headers", "*"),
        ("access-control-expose-headers", "*"),
        ("access-control-max-age", "0"),
    ] {
        assert_eq!(broad.header(name), Some(value), "{name}");
    }
    let narrow = get(&served, "/rules/narrow/x").await;
    assert_eq!(narrow.header("x-rules"), Some("narrow"));
    // Each key is replaced whole by the narrower rule, so the broad headers table is gone.
    assert_eq!(narrow.header("x-broad"), None);
    assert_eq!(narrow.header("access-control-allow-origin"), None);
    assert_eq!(narrow.header("access-control-expose-headers"), None);
    let preflight = call(
        "OPTIONS",
        format!("{}/rules/x", served.base),
        None,
        &[
            ("origin", "http://example.test"),
            ("access-control-request-method", "PUT"),
            ("access-control-request-headers", "x-key"),
        ],
    )
    .await;
    assert_eq!(preflight.status, 204);
    assert_eq!(preflight.header("access-control-allow-methods"), Some("*"));
    assert_eq!(preflight.header("access-control-allow-headers"), Some("x-key"));
    let no_cors = call(
        "OPTIONS",
        format!("{}/rules/narrow/x", served.base),
        None,
        &[
            ("origin", "http://example.test"),
            ("access-control-request-method", "PUT"),
        ],
    )
    .await;
    assert_ne!(no_cors.status, 204);
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_share_one_call_and_fresh_entries_are_served_from_memory() {
    let served = serve(example("")).await;
    let url = format!("{}/cached?ms=300", served.base);
    static LANG: [(&str, &str); 2] = [("accept-language", "fr"), ("x-secret", "1")];
    let lang = &LANG;
    let replies = futures_join(5, || call("GET", url.clone(), None, lang)).await;
    let calls: Vec<Value> = replies.iter().map(|r| r.json()["call"].clone()).collect();
    assert!(calls.iter().all(|c| *c == calls[0]), "{calls:?}");
    let first = &replies[0];
    // Only the varied headers (and host) reach the handler.
    assert_eq!(first.json()["headers"], json!(["accept-language", "host"]));
    assert_eq!(first.header("cache-control"), Some("max-age=60"));
    let etag = first.header("etag").expect("etag").to_owned();
    assert!(first.header("last-modified").is_some());
    let again = call("GET", url.clone(), None, lang).await;
    assert_eq!(again.json()["call"], calls[0]);
    let not_modified = call(
        "GET",
        url.clone(),
        None,
        &[("accept-language", "fr"), ("if-none-match", &etag)],
    )
    .await;
    assert_eq!(not_modified.status, 304);
    // Another value of a varied header is another entry.
    let german = call("GET", url, None, &[("accept-language", "de")]).await;
    assert_ne!(german.json()["call"], calls[0]);
    assert_eq!(german.json()["lang"], "de");
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_entries_are_served_while_one_call_refreshes_them() {
    let served = serve(example("")).await;
    let first = get(&served, "/counter").await;
    assert_eq!(
        first.header("cache-control"),
        Some("s-maxage=1, stale-while-revalidate")
    );
    let n: u64 = first.text.parse().expect("a count");
    assert_eq!(
        get(&served, "/counter").await.text,
        n.to_string(),
        "fresh: served from memory"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        get(&served, "/counter").await.text,
        n.to_string(),
        "stale: served at once"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let now = get(&served, "/counter").await.text;
        if now == (n + 1).to_string() {
            break;
        }
        assert_eq!(now, n.to_string(), "one refresh, not more");
        assert!(tokio::time::Instant::now() < deadline, "never refreshed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_parses_and_merges_user_parameters() {
    let served = serve(example("")).await;
    let reply = get(&served, "/_openapi.json").await;
    assert_eq!(reply.status, 200);
    let spec =
        oas3::from_json(&reply.text).unwrap_or_else(|e| panic!("not OpenAPI 3.1 ({e}): {}", reply.text));
    // `[openapi]` of taskyard.toml.
    assert_eq!(spec.info.title, "Routing example");
    assert_eq!(spec.info.version, "1.0.0");
    assert_eq!(
        spec.info.description.as_deref(),
        Some("Every kind of file route, middleware and route rule")
    );
    let document = reply.json();
    // A route's `$global` components, in the document's, and out of its operation.
    assert_eq!(
        document["components"]["schemas"]["User"]["properties"]["id"]["type"],
        "integer"
    );
    assert!(
        document["paths"]["/api/users/{id}"]["get"]
            .get("$global")
            .is_none()
    );
    let user = &document["paths"]["/api/users/{id}"]["get"];
    assert_eq!(user["tags"], json!(["users"]));
    let parameters = user["parameters"].as_array().expect("parameters");
    assert_eq!(parameters.len(), 2, "{parameters:?}");
    assert_eq!(parameters[0]["schema"]["type"], "integer");
    assert_eq!(parameters[1]["name"], "fields");
    // Declared path parameters of routes without metadata, catch-alls included.
    let repo = &document["paths"]["/orgs/{org}/repos/{repo}"]["get"];
    assert_eq!(
        repo["parameters"][1],
        json!({ "name": "repo", "in": "path", "required": true, "schema": { "type": "string" } })
    );
    assert_eq!(repo["tags"], json!(["App Routes"]));
    assert!(
        document["paths"]["/hello/{path}"]["get"].is_object(),
        "{document}"
    );
    assert!(document["paths"]["/item"]["post"].is_object());
    served.stop().await;
}

/// `count` calls of `make`, all in flight at once.
async fn futures_join<F, Fut>(count: usize, make: F) -> Vec<Reply>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Reply> + Send + 'static,
{
    let handles: Vec<_> = (0..count).map(|_| tokio::spawn(make())).collect();
    let mut replies = Vec::new();
    for handle in handles {
        replies.push(handle.await.expect("request"));
    }
    replies
}
