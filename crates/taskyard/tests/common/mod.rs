//! Helpers shared by the integration tests: the store backends under test.
//!
//! PostgreSQL comes from `TASKYARD_TEST_DATABASE_URL`; each backend gets a schema of its
//! own, dropped afterwards. Without that variable the PostgreSQL cases are skipped loudly,
//! unless `TASKYARD_REQUIRE_PG=1`, under which a missing database fails the run.

// Each test crate uses a different subset of these helpers.
#![allow(dead_code)]

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use taskyard::StoreConfig;
use taskyard::store::Store;

pub mod dashboard;
pub mod http;
pub mod records;
pub mod relay;

/// A backend under test: how to open it (again) and how to describe it to a child process.
pub struct Backend {
    pub name: &'static str,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg_schema: Option<String>,
}

impl Backend {
    pub async fn open(&self) -> Arc<dyn Store> {
        let config = StoreConfig::from_url(&self.url).expect("url");
        config.open().await.expect("store opens").expect("enabled")
    }

    pub fn config(&self) -> StoreConfig {
        StoreConfig::from_url(&self.url).expect("url")
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Some(schema) = self.pg_schema.take() {
            let base = std::env::var("TASKYARD_TEST_DATABASE_URL").unwrap_or_default();
            psql(&base, &format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
        }
    }
}

/// Runs `sql` with `psql` on the database of the PostgreSQL URL `url`, quietly: for the
/// clean-up of a drop, which cannot await. True when it succeeded.
pub fn psql(url: &str, sql: &str) -> bool {
    Command::new("psql")
        .args([url, "-qc", sql])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

pub fn sqlite() -> Backend {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("taskyard.db").display());
    Backend {
        name: "sqlite",
        url,
        _dir: Some(dir),
        pg_schema: None,
    }
}

pub fn memory() -> Backend {
    Backend {
        name: "memory",
        url: "memory:".into(),
        _dir: None,
        pg_schema: None,
    }
}

/// A fresh schema in the test database, or `None` (with a loud notice) when there is none.
pub async fn postgres() -> Option<Backend> {
    let base = match std::env::var("TASKYARD_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            if std::env::var("TASKYARD_REQUIRE_PG").as_deref() == Ok("1") {
                panic!(
                    "TASKYARD_REQUIRE_PG=1 but TASKYARD_TEST_DATABASE_URL is not set: run scripts/setup-postgres.sh and set it"
                );
            }
            eprintln!("\n*** SKIPPED PostgreSQL store tests: TASKYARD_TEST_DATABASE_URL is not set ***\n");
            return None;
        }
    };
    let schema = format!("ty_{}", uuid_simple());
    let pool = sqlx::PgPool::connect(&base)
        .await
        .unwrap_or_else(|e| panic!("cannot reach {base}: {e}"));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&pool)
        .await
        .expect("create schema");
    pool.close().await;
    let sep = if base.contains('?') { '&' } else { '?' };
    Some(Backend {
        name: "postgres",
        url: format!("{base}{sep}options=-c%20search_path%3D{schema}"),
        _dir: None,
        pg_schema: Some(schema),
    })
}

pub fn uuid_simple() -> String {
    format!("{:x}{:08x}", std::process::id(), fastrand_u32())
}

fn fastrand_u32() -> u32 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(Instant::now()) as u32
}

/// Every backend available here: memory, SQLite, and PostgreSQL when configured.
pub async fn backends() -> Vec<Backend> {
    let mut all = vec![memory(), sqlite()];
    all.extend(postgres().await);
    all
}

/// Backends that outlive a process: SQLite, and PostgreSQL when configured.
pub async fn durable_backends() -> Vec<Backend> {
    let mut all = vec![sqlite()];
    all.extend(postgres().await);
    all
}
