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
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut request = agent.get(url);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let mut response = request.call().expect("answered");
    let status = response.status().as_u16();
    let body = response.body_mut().read_json().unwrap_or(serde_json::Value::Null);
    (status, body)
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
