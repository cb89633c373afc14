//! Versioned schema migrations, applied at startup.
//!
//! Written by hand rather than with `sqlx::migrate!` because each backend needs its own
//! lock to make concurrent start-ups safe — SQLite takes the write lock up front with
//! `BEGIN IMMEDIATE`, PostgreSQL a transaction-scoped advisory lock (which, unlike a
//! session lock, also works behind PgBouncer) — and the SQL is embedded in the library.

use sqlx::{PgPool, SqlitePool};

use super::sqlx_error;
use crate::Error;

struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
}

const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        name: "runs and instances",
        sql: include_str!("migrations/sqlite/0001_runs.sql"),
    },
    Migration {
        version: 2,
        name: "schedule tick ledger",
        sql: include_str!("migrations/sqlite/0002_ticks.sql"),
    },
    Migration {
        version: 3,
        name: "strategy broadcasts",
        sql: include_str!("migrations/sqlite/0003_broadcasts.sql"),
    },
];

const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        name: "runs and instances",
        sql: include_str!("migrations/postgres/0001_runs.sql"),
    },
    Migration {
        version: 2,
        name: "schedule tick ledger",
        sql: include_str!("migrations/postgres/0002_ticks.sql"),
    },
    Migration {
        version: 3,
        name: "strategy broadcasts",
        sql: include_str!("migrations/postgres/0003_broadcasts.sql"),
    },
];

/// The schema version this build of taskyard writes.
pub const MIGRATIONS_VERSION: i64 = 3;

/// Arbitrary constant key for the PostgreSQL advisory lock that serialises migrations.
const PG_MIGRATION_LOCK: i64 = 0x7461_736b_7961_7264; // "taskyard"

const CREATE_LEDGER: &str = "CREATE TABLE IF NOT EXISTS taskyard_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)";

pub(crate) async fn migrate_sqlite(pool: &SqlitePool) -> Result<(), Error> {
    let err = sqlx_error("sqlite");
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(&err)?;
    sqlx::query(CREATE_LEDGER).execute(&mut *tx).await.map_err(&err)?;
    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM taskyard_migrations")
        .fetch_all(&mut *tx)
        .await
        .map_err(&err)?;
    check_not_newer("sqlite", &applied)?;
    for migration in SQLITE.iter().filter(|m| !applied.contains(&m.version)) {
        sqlx::raw_sql(migration.sql)
            .execute(&mut *tx)
            .await
            .map_err(&err)?;
        sqlx::query("INSERT INTO taskyard_migrations (version, name, applied_at) VALUES (?, ?, ?)")
            .bind(migration.version)
            .bind(migration.name)
            .bind(jiff::Timestamp::now().as_millisecond())
            .execute(&mut *tx)
            .await
            .map_err(&err)?;
    }
    tx.commit().await.map_err(&err)
}

pub(crate) async fn migrate_postgres(pool: &PgPool) -> Result<(), Error> {
    let err = sqlx_error("postgres");
    let mut tx = pool.begin().await.map_err(&err)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(PG_MIGRATION_LOCK)
        .execute(&mut *tx)
        .await
        .map_err(&err)?;
    sqlx::query(CREATE_LEDGER).execute(&mut *tx).await.map_err(&err)?;
    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM taskyard_migrations")
        .fetch_all(&mut *tx)
        .await
        .map_err(&err)?;
    check_not_newer("postgres", &applied)?;
    for migration in POSTGRES.iter().filter(|m| !applied.contains(&m.version)) {
        sqlx::raw_sql(migration.sql)
            .execute(&mut *tx)
            .await
            .map_err(&err)?;
        sqlx::query("INSERT INTO taskyard_migrations (version, name, applied_at) VALUES ($1, $2, $3)")
            .bind(migration.version)
            .bind(migration.name)
            .bind(jiff::Timestamp::now().as_millisecond())
            .execute(&mut *tx)
            .await
            .map_err(&err)?;
    }
    tx.commit().await.map_err(&err)
}

fn check_not_newer(backend: &'static str, applied: &[i64]) -> Result<(), Error> {
    match applied.iter().max() {
        Some(&newest) if newest > MIGRATIONS_VERSION => Err(Error::StoreData {
            backend,
            message: format!(
                "the database schema is at version {newest}, newer than this build of taskyard understands ({MIGRATIONS_VERSION}); upgrade taskyard or use another database"
            ),
        }),
        _ => Ok(()),
    }
}
