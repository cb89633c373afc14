//! The PostgreSQL store behind PgBouncer, as managed PostgreSQL offers it on its pooled
//! endpoints: a pooler refuses the settings a direct connection starts its sessions with
//! (`options`, and sqlx's `extra_float_digits`), in every pooling mode. A real PgBouncer on
//! loopback in session pooling mode, in front of a database of its own: the app migrates
//! its store, records runs, claims ticks and runs durable runs through it. In transaction
//! and statement pooling, Debian's PgBouncer 1.18 mixes its clients' prepared statements
//! (1.21 and later keep them apart, with `max_prepared_statements`): the app refuses to
//! start there, saying so.
//!
//! `scripts/setup-pgbouncer.sh` installs it. Without it the test is skipped loudly, unless
//! `TASKYARD_REQUIRE_PGBOUNCER=1` (set by `.ci/run`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use taskyard::schedule::{Overlap, Schedule};
use taskyard::{App, Concurrency, RunStatus, StoreConfig, Task, TaskContext, TaskError};

/// PgBouncer's program, or `None` (with a notice) when it is not installed.
fn pgbouncer() -> Option<PathBuf> {
    let installed = [
        "/usr/sbin/pgbouncer",
        "/usr/bin/pgbouncer",
        "/usr/local/bin/pgbouncer",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|path| path.exists());
    if installed.is_none() {
        if std::env::var("TASKYARD_REQUIRE_PGBOUNCER").as_deref() == Ok("1") {
            panic!(
                "TASKYARD_REQUIRE_PGBOUNCER=1 but pgbouncer is not installed: run scripts/setup-pgbouncer.sh"
            );
        }
        eprintln!("\n*** SKIPPED the PgBouncer test: run scripts/setup-pgbouncer.sh ***\n");
    }
    installed
}

/// A PgBouncer in `mode` (`session`, `transaction`, `statement`) on a free loopback port,
/// in front of `database` on the server of `base` (a PostgreSQL URL), letting in `user`
/// without a password; killed when dropped.
struct Bouncer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Bouncer {
    fn start(program: &Path, base: &str, database: &str, user: &str, mode: &str) -> Bouncer {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let upstream = common::relay::host_of(base).1;
        let (host, upstream_port) = upstream.rsplit_once(':').unwrap_or((upstream, "5432"));
        let config = dir.path().join("pgbouncer.ini");
        std::fs::write(
            &config,
            format!(
                "[databases]\napp = host={host} port={upstream_port} dbname={database}\n\
                 [pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
                 auth_type = trust\nauth_file = {}\npool_mode = {mode}\n\
                 default_pool_size = 20\nmax_client_conn = 200\n",
                dir.path().join("users.txt").display()
            ),
        )
        .expect("config");
        std::fs::write(dir.path().join("users.txt"), format!("\"{user}\" \"\"\n")).expect("users");
        // PgBouncer refuses to run as root: there it runs as `postgres`, which must read
        // its files.
        let mut command = Command::new(program);
        if is_root() {
            use std::os::unix::fs::PermissionsExt;
            for path in [dir.path(), config.as_path(), &dir.path().join("users.txt")] {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
            }
            command.args(["-u", "postgres"]);
        }
        let child = command
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pgbouncer starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "pgbouncer is not listening on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Bouncer {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A database of its own on the server of `server` (a PostgreSQL URL without a database),
/// dropped when this is, whatever the test did (with `psql`, as the tests' schemas are).
struct Database {
    server: String,
    name: String,
}

impl Database {
    fn create(server: &str) -> Database {
        let name = format!("ty_pool_{}", common::uuid_simple());
        assert!(
            common::psql(&format!("{server}/postgres"), &format!("CREATE DATABASE {name}")),
            "cannot create the test database {name} on {server}"
        );
        Database {
            server: server.to_owned(),
            name,
        }
    }

    fn url(&self) -> String {
        format!("{}/{}", self.server, self.name)
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let dropped = common::psql(
            &format!("{}/postgres", self.server),
            &format!("DROP DATABASE {} WITH (FORCE)", self.name),
        );
        if !dropped {
            eprintln!("could not drop the test database {}", self.name);
        }
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// The user of a PostgreSQL URL (`postgres://user@host/…`).
fn user_of(url: &str) -> &str {
    let start = url.find("://").map_or(0, |at| at + 3);
    let credentials = url[start..].split('@').next().unwrap_or("");
    credentials.split(':').next().unwrap_or("")
}

/// A database of its own behind a PgBouncer in `mode` (a pooler takes no `search_path`
/// from its clients), and the URL of the app's store through it; `None` (the test skipped)
/// without PostgreSQL or PgBouncer.
async fn behind_pgbouncer(mode: &str) -> Option<(Database, Bouncer, String)> {
    let backend = common::postgres().await?;
    let program = pgbouncer()?;
    let base = backend
        .url
        .split_once('?')
        .map_or(backend.url.as_str(), |(url, _)| url);
    let server = base.rsplit_once('/').map_or(base, |(server, _)| server);
    let database = Database::create(server);
    let bouncer = Bouncer::start(&program, base, &database.name, user_of(base), mode);
    let url = format!("postgres://{}@127.0.0.1:{}/app", user_of(base), bouncer.port);
    Some((database, bouncer, url))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_works_behind_pgbouncer() {
    let Some((database, bouncer, url)) = behind_pgbouncer("session").await else {
        return;
    };

    let app = App::new()
        .store(StoreConfig::Postgres(url))
        .schedule_log(None)
        .task(
            "mail",
            Task::new(|cx: TaskContext| async move { Ok::<_, TaskError>(cx.payload().clone()) })
                .concurrency(Concurrency::Unlimited)
                .durable(),
        )
        .task(
            "beat",
            Task::new(|_cx: TaskContext| async { Ok::<_, TaskError>(Value::Null) }),
        )
        .schedule(
            "beat",
            Schedule::worker()
                .interval("200ms")
                .overlap(Overlap::Allow)
                .task("beat"),
        )
        .start()
        .await
        .expect("the app starts on a store behind PgBouncer");
    let runtime = app.runtime();
    let mut ids = Vec::new();
    for n in 0..50 {
        ids.push(
            runtime
                .enqueue("mail", json!({ "n": n }))
                .await
                .expect("enqueued"),
        );
    }
    for (n, id) in ids.iter().enumerate() {
        let result = tokio::time::timeout(Duration::from_secs(20), runtime.outcome(*id))
            .await
            .unwrap_or_else(|_| panic!("durable run {n} did not end within 20 s"))
            .expect("succeeded");
        assert_eq!(result, json!({ "n": n }));
    }
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    app.shutdown().await;

    // Read directly: every durable run's record, and the schedule's ticks claimed and run.
    let direct = sqlx::PgPool::connect(&database.url())
        .await
        .expect("connect to the app's database");
    let succeeded: i64 =
        sqlx::query_scalar("SELECT count(*) FROM taskyard_runs WHERE task = 'mail' AND status = $1")
            .bind(RunStatus::Succeeded.as_str())
            .fetch_one(&direct)
            .await
            .expect("records");
    assert_eq!(succeeded, 50, "every durable run's record");
    let ticks: i64 = sqlx::query_scalar("SELECT count(*) FROM taskyard_ticks WHERE schedule = 'beat'")
        .fetch_one(&direct)
        .await
        .expect("ledger");
    let beats: i64 = sqlx::query_scalar("SELECT count(*) FROM taskyard_runs WHERE task = 'beat'")
        .fetch_one(&direct)
        .await
        .expect("records");
    assert!(ticks >= 3, "ticks claimed: {ticks}");
    assert!(beats >= ticks - 1, "{beats} runs recorded for {ticks} ticks");
    direct.close().await;
    drop(bouncer);
}

/// A pooler in transaction mode that does not keep a session's prepared statements
/// (PgBouncer before 1.21, or without `max_prepared_statements`: Debian's 1.18 here), or
/// in statement mode, would fail the store's statements at random under load ("prepared
/// statement "sqlx_s_1" does not exist"). The app does not start behind one, and says what
/// to change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pooler_that_loses_prepared_statements_is_refused_by_name() {
    for mode in ["transaction", "statement"] {
        let Some((database, bouncer, url)) = behind_pgbouncer(mode).await else {
            return;
        };
        let started = App::new()
            .store(StoreConfig::Postgres(url))
            .schedule_log(None)
            .start()
            .await;
        let message = match started {
            Ok(app) => {
                app.shutdown().await;
                panic!("the app started behind PgBouncer in {mode} mode");
            }
            Err(error) => error.to_string(),
        };
        assert!(
            message.contains("pool_mode = session") && message.contains("max_prepared_statements"),
            "{mode}: {message}"
        );
        drop(bouncer);
        drop(database);
    }
}
