//! The quickstart's server routes, as a user would try them: file routes with parameters
//! and catch-alls, the default route's welcome page and 404, a route with OpenAPI metadata,
//! a typed JSON body, `run_task` from a route, two ordered middleware (one answering
//! itself), and the route rules of its `taskyard.toml`.

mod common;

use common::{Quickstart, raw};
use serde_json::json;

#[test]
fn the_quickstart_shows_each_kind_of_route_middleware_and_rule() {
    let app = Quickstart::start(&[]);
    let get = |path: &str| raw(&app.addr, "GET", path, "", &[]);

    // Files: a parameter, a catch-all, the default route.
    assert_eq!(get("/hello/nitro").body, "Hello nitro!");
    assert_eq!(get("/hello/nitro/is/hot").body, "Hello nitro/is/hot!");
    let home = raw(&app.addr, "GET", "/", "", &[("Accept", "text/html")]);
    assert!(home.body.contains("taskyard quickstart"), "{}", home.body);
    // What to try first: the task endpoints, the lifecycle and the command line.
    for shown in [
        "/_nitro/tasks/echo:payload",
        "/_tasks/runs",
        "/_tasks/lifecycle",
        "taskyard task run",
    ] {
        assert!(home.body.contains(shown), "the home page shows {shown}");
    }
    let missing = raw(&app.addr, "GET", "/nope", "", &[("Accept", "text/html")]);
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("Nothing at /nope"), "{}", missing.body);
    assert!(
        missing
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/html"))
    );

    // The API: route metadata in the OpenAPI document, a typed body, a task run.
    let user = get("/api/users/7");
    assert_eq!(user.json()["name"], "user 7");
    // The first middleware's request id reached the handler and the response.
    assert_eq!(
        Some(user.json()["request_id"].as_str().unwrap_or("")),
        user.header("x-request-id")
    );
    let openapi = get("/_openapi.json").json();
    let operation = &openapi["paths"]["/api/users/{id}"]["get"];
    assert_eq!(operation["summary"], "One user");
    assert_eq!(operation["parameters"][0]["schema"]["type"], "integer");
    let hello = raw(&app.addr, "POST", "/api/test", r#"{"name":"Ada","times":2}"#, &[]);
    assert_eq!(hello.json(), json!({ "message": ["Hello Ada!", "Hello Ada!"] }));
    let bad = raw(&app.addr, "POST", "/api/test", r#"{"times":2}"#, &[]);
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["data"]["reason"], "missing field `name`");
    let migrated = raw(&app.addr, "POST", "/api/migrate", r#"{"dry_run":true}"#, &[]);
    assert_eq!(migrated.status, 200, "{}", migrated.body);
    assert_eq!(migrated.json()["dry_run"], true);

    // The second middleware answers /api/admin without the token itself.
    assert_eq!(get("/api/admin/stats").status, 401);
    let admin = raw(
        &app.addr,
        "GET",
        "/api/admin/stats",
        "",
        &[("Authorization", "Bearer demo")],
    );
    assert_eq!(admin.json()["admin"], "demo");

    // Rules: a redirect carrying the rest of the path, a proxy, headers, CORS, the cache.
    let moved = get("/old-hello/taskyard?x=1");
    assert_eq!(
        (moved.status, moved.header("location")),
        (307, Some("/hello/taskyard?x=1"))
    );
    assert_eq!(get("/proxy/users/2").json()["name"], "user 2");
    assert_eq!(user.header("x-powered-by"), Some("taskyard"));
    assert_eq!(user.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        admin.header("access-control-allow-origin"),
        None,
        "cors = false for the admin API"
    );
    let preflight = raw(
        &app.addr,
        "OPTIONS",
        "/api/users/1",
        "",
        &[
            ("Origin", "http://example.test"),
            ("Access-Control-Request-Method", "DELETE"),
        ],
    );
    assert_eq!(preflight.status, 204);
    let first = get("/api/time");
    assert_eq!(
        first.header("cache-control"),
        Some("s-maxage=5, stale-while-revalidate")
    );
    assert_eq!(get("/api/time").json()["calls"], first.json()["calls"]);
}
