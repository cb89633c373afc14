//! What a store that cannot be opened, or fails while the app runs, tells the operator
//! and the clients: the file or server it means, never a password, and in production no
//! database text at all.

mod common;

use std::time::{Duration, Instant};

use taskyard::http::TasksAccess;
use taskyard::{App, Error, StoreConfig, Task, TaskContext, TaskError};

#[test]
fn an_unsupported_database_url_names_its_scheme_but_never_the_password() {
    let error =
        StoreConfig::from_url("mysql://admin:hunter2-secret@db.internal:3306/app").expect_err("refused");
    let text = error.to_string();
    assert!(text.contains("`mysql`"), "{text}");
    assert!(!text.contains("hunter2"), "the password leaked: {text}");
    assert!(!text.contains("db.internal"), "{text}");
}

#[tokio::test]
async fn an_sqlite_file_that_cannot_be_opened_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A folder where the file should be.
    let path = dir.path().join("taskyard.db");
    std::fs::create_dir(&path).expect("folder");
    let Err(error) = StoreConfig::Sqlite(path.clone()).open().await else {
        panic!("a folder opened as an SQLite file");
    };
    let text = error.to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(matches!(error, Error::StoreUnavailable { .. }), "{error:?}");
}

#[tokio::test]
async fn a_postgresql_server_that_does_not_answer_is_named_quickly() {
    // Port 1 on loopback: nothing listens there.
    let began = Instant::now();
    let Err(error) = StoreConfig::Postgres("postgres://taskyard:pw-secret@127.0.0.1:1/app".into())
        .open()
        .await
    else {
        panic!("nothing listens on port 1");
    };
    let text = error.to_string();
    assert!(
        began.elapsed() < Duration::from_secs(10),
        "took {:?}",
        began.elapsed()
    );
    assert!(text.contains("127.0.0.1:1"), "{text}");
    assert!(text.contains("`app`"), "{text}");
    assert!(!text.contains("pw-secret"), "{text}");
}

/// Serves `app` and returns its base URL, the stop token and the server task.
async fn serve(
    app: App,
) -> (
    String,
    tokio_util::sync::CancellationToken,
    tokio::task::JoinHandle<()>,
) {
    let running = app.start().await.expect("starts");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let local = listener.local_addr().expect("addr");
    let stop = tokio_util::sync::CancellationToken::new();
    let signal = stop.clone().cancelled_owned();
    let done = tokio::spawn(async move {
        running.serve_on(listener, local, signal).await.expect("serves");
    });
    (format!("http://{local}"), stop, done)
}

fn get(url: &str, token: Option<&str>) -> (u16, serde_json::Value) {
    request("GET", url, token, None)
}

/// One request (blocking; call it off the runtime's workers), with a 30 s cap.
fn request(method: &str, url: &str, token: Option<&str>, body: Option<&str>) -> (u16, serde_json::Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut builder = ureq::http::Request::builder().method(method).uri(url);
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    let response = match body {
        Some(body) => agent.run(
            builder
                .header("content-type", "application/json")
                .body(body.to_owned())
                .expect("request"),
        ),
        None => agent.run(builder.body(()).expect("request")),
    };
    let mut response = response.expect("answered");
    let status = response.status().as_u16();
    let body = response.body_mut().read_json().unwrap_or(serde_json::Value::Null);
    (status, body)
}

/// An echo run over HTTP, timed.
async fn echo(base: &str, n: usize) -> (u16, serde_json::Value, Duration) {
    let url = format!("{base}/_tasks/echo/runs");
    let body = format!(r#"{{"payload":{{"n":{n}}}}}"#);
    tokio::task::spawn_blocking(move || {
        let began = Instant::now();
        let (status, reply) = request("POST", &url, None, Some(&body));
        (status, reply, began.elapsed())
    })
    .await
    .expect("request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_losing_its_table_its_connections_or_its_lock_answers_503_in_time_and_loses_nothing() {
    let Some(backend) = common::postgres().await else {
        return;
    };
    // A name of our own, so only this app's connections are cut below.
    let application = format!("ty_outage_{}", common::uuid_simple());
    let url = format!("{}&application_name={application}", backend.url);
    let app = App::new()
        .task(
            "echo",
            Task::new(
                |_cx: TaskContext, payload: serde_json::Value| async move { Ok::<_, TaskError>(payload) },
            ),
        )
        .store(StoreConfig::Postgres(url))
        .store_timeout(Duration::from_millis(1000))
        .shutdown_grace(Duration::from_millis(300))
        .tasks_access(TasksAccess::Loopback);
    let (base, stop, done) = serve(app).await;
    let admin = sqlx::PgPool::connect(&backend.url).await.expect("admin");
    let schema: String = sqlx::query_scalar("SELECT current_schema()")
        .fetch_one(&admin)
        .await
        .expect("schema");
    let bound = Duration::from_secs(4);
    let mut acknowledged = Vec::new();
    let mut n = 0;
    let mut run = async |expect: u16, acknowledged: &mut Vec<String>| {
        n += 1;
        let (status, body, took) = echo(&base, n).await;
        assert!(took < bound, "answered after {took:?}: {body}");
        assert_eq!(status, expect, "{body}");
        if status == 200 {
            acknowledged.push(body["run_id"].as_str().expect("id").to_owned());
        }
        body
    };
    run(200, &mut acknowledged).await;

    // The table goes away: 503 in time, health failing; back: 200 again.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ALTER TABLE {schema}.taskyard_runs RENAME TO taskyard_runs_away"
    )))
    .execute(&admin)
    .await
    .expect("rename");
    let refused = run(503, &mut acknowledged).await;
    assert!(
        refused["message"].as_str().unwrap_or("").contains("unavailable"),
        "{refused}"
    );
    let health_url = format!("{base}/_tasks/health");
    let (status, health) = tokio::task::spawn_blocking(move || get(&health_url, None))
        .await
        .expect("health");
    assert_eq!(
        (status, health["status"].as_str()),
        (503, Some("failing")),
        "{health}"
    );
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ALTER TABLE {schema}.taskyard_runs_away RENAME TO taskyard_runs"
    )))
    .execute(&admin)
    .await
    .expect("rename back");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    run(200, &mut acknowledged).await;

    // A lock held on the table: inserts block; callers still get 503 in time.
    let mut locker = admin.begin().await.expect("begin");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "LOCK TABLE {schema}.taskyard_runs IN ACCESS EXCLUSIVE MODE"
    )))
    .execute(&mut *locker)
    .await
    .expect("lock");
    run(503, &mut acknowledged).await;
    locker.commit().await.expect("unlock");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    run(200, &mut acknowledged).await;

    // Every connection of the app cut at once: the pool reconnects.
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1")
        .bind(&application)
        .execute(&admin)
        .await
        .expect("terminate");
    let began = Instant::now();
    loop {
        n += 1;
        let (status, body, took) = echo(&base, n).await;
        assert!(took < bound, "answered after {took:?}: {body}");
        if status == 200 {
            acknowledged.push(body["run_id"].as_str().expect("id").to_owned());
            break;
        }
        assert_eq!(status, 503, "{body}");
        assert!(began.elapsed() < Duration::from_secs(15), "never reconnected");
    }

    // Nothing acknowledged is lost.
    for id in &acknowledged {
        let found: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT status FROM {schema}.taskyard_runs WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&admin)
        .await
        .expect("read");
        assert_eq!(found.as_deref(), Some("succeeded"), "acknowledged run {id}");
    }
    admin.close().await;
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(15), done)
        .await
        .expect("stops")
        .expect("server task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_store_answers_503_with_its_error_in_development_and_without_it_in_production() {
    for production in [false, true] {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("taskyard.db");
        let app = App::new()
            .task(
                "noop",
                Task::new(|_cx: TaskContext| async { Ok::<_, TaskError>(()) }),
            )
            .store(StoreConfig::Sqlite(file.clone()))
            .store_timeout(Duration::from_millis(500))
            .shutdown_grace(Duration::from_millis(300))
            .production(production)
            .tasks_access(TasksAccess::Token("t0ken".into()));
        let (base, stop, done) = serve(app).await;
        // The runs table disappears under the running app.
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", file.display()))
            .await
            .expect("open");
        sqlx::query("DROP TABLE taskyard_runs")
            .execute(&pool)
            .await
            .expect("drop");
        pool.close().await;
        let url = format!("{base}/_tasks/runs");
        let (status, body) = tokio::task::spawn_blocking(move || get(&url, Some("t0ken")))
            .await
            .expect("request");
        assert_eq!(status, 503, "{body}");
        let text = body.to_string();
        if production {
            assert_eq!(body["message"], "Service Unavailable", "{body}");
            assert!(!text.contains("taskyard_runs"), "database text leaked: {text}");
            assert!(body.get("stack").is_none(), "{body}");
        } else {
            assert!(
                text.contains("taskyard_runs"),
                "development shows the cause: {text}"
            );
        }
        stop.cancel();
        tokio::time::timeout(Duration::from_secs(10), done)
            .await
            .expect("stops")
            .expect("server task");
    }
}
