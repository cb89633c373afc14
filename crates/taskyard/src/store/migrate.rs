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
    Migration {
        version: 4,
        name: "durable run queue",
        sql: include_str!("migrations/sqlite/0004_queue.sql"),
    },
    Migration {
        version: 5,
        name: "cancels, cluster concurrency and schedule pauses",
        sql: include_str!("migrations/sqlite/0005_cluster.sql"),
    },
    Migration {
        version: 6,
        name: "queue order index",
        sql: include_str!("migrations/sqlite/0006_queue_order.sql"),
    },
    Migration {
        version: 7,
        name: "claims in one call",
        sql: include_str!("migrations/sqlite/0007_claim.sql"),
    },
    Migration {
        version: 8,
        name: "finished runs counted from an index",
        sql: include_str!("migrations/sqlite/0008_counts.sql"),
    },
    Migration {
        version: 9,
        name: "a table of live jobs",
        sql: include_str!("migrations/sqlite/0009_jobs.sql"),
    },
    Migration {
        version: 10,
        name: "succeeded runs left out of the status index",
        sql: include_str!("migrations/sqlite/0010_rare_statuses.sql"),
    },
    Migration {
        version: 11,
        name: "records written when runs end",
        sql: include_str!("migrations/sqlite/0011_records_at_end.sql"),
    },
    Migration {
        version: 12,
        name: "succeeded runs not kept, counted",
        sql: include_str!("migrations/sqlite/0012_forgotten_counts.sql"),
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
    Migration {
        version: 4,
        name: "durable run queue",
        sql: include_str!("migrations/postgres/0004_queue.sql"),
    },
    Migration {
        version: 5,
        name: "cancels, cluster concurrency and schedule pauses",
        sql: include_str!("migrations/postgres/0005_cluster.sql"),
    },
    Migration {
        version: 6,
        name: "queue order index",
        sql: include_str!("migrations/postgres/0006_queue_order.sql"),
    },
    Migration {
        version: 7,
        name: "claims in one call",
        sql: include_str!("migrations/postgres/0007_claim.sql"),
    },
    Migration {
        version: 8,
        name: "finished runs counted from an index",
        sql: include_str!("migrations/postgres/0008_counts.sql"),
    },
    Migration {
        version: 9,
        name: "a table of live jobs",
        sql: include_str!("migrations/postgres/0009_jobs.sql"),
    },
    Migration {
        version: 10,
        name: "claims update their jobs by key",
        sql: include_str!("migrations/postgres/0010_claim_by_key.sql"),
    },
    Migration {
        version: 11,
        name: "keys compared as bytes",
        sql: include_str!("migrations/postgres/0011_bytewise_keys.sql"),
    },
    Migration {
        version: 12,
        name: "succeeded runs left out of the status index",
        sql: include_str!("migrations/postgres/0012_rare_statuses.sql"),
    },
    Migration {
        version: 13,
        name: "records written when runs end",
        sql: include_str!("migrations/postgres/0013_records_at_end.sql"),
    },
    Migration {
        version: 14,
        name: "claims return their rows as they come",
        sql: include_str!("migrations/postgres/0014_claim_returns_rows.sql"),
    },
    Migration {
        version: 15,
        name: "succeeded runs not kept, counted",
        sql: include_str!("migrations/postgres/0015_forgotten_counts.sql"),
    },
    Migration {
        version: 16,
        name: "claims carry their planner settings",
        sql: include_str!("migrations/postgres/0016_claim_settings.sql"),
    },
];

/// The schema version this build of taskyard writes.
pub const MIGRATIONS_VERSION: i64 = 16;

/// Arbitrary constant key for the PostgreSQL advisory lock that serialises migrations.
const PG_MIGRATION_LOCK: i64 = 0x7461_736b_7961_7264; // "taskyard"

const CREATE_LEDGER: &str = "CREATE TABLE IF NOT EXISTS taskyard_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)";

/// Applies SQLite's migrations under its write lock, taken up front (`BEGIN IMMEDIATE`).
pub(crate) async fn migrate_sqlite(pool: &SqlitePool) -> Result<(), Error> {
    let err = sqlx_error("sqlite");
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(&err)?;
    apply::<sqlx::Sqlite>(
        &mut tx,
        "sqlite",
        SQLITE,
        "INSERT INTO taskyard_migrations (version, name, applied_at) VALUES (?, ?, ?)",
    )
    .await?;
    tx.commit().await.map_err(&err)
}

/// Applies PostgreSQL's migrations under a transaction-scoped advisory lock.
pub(crate) async fn migrate_postgres(pool: &PgPool) -> Result<(), Error> {
    let err = sqlx_error("postgres");
    let mut tx = pool.begin().await.map_err(&err)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(PG_MIGRATION_LOCK)
        .execute(&mut *tx)
        .await
        .map_err(&err)?;
    apply::<sqlx::Postgres>(
        &mut tx,
        "postgres",
        POSTGRES,
        "INSERT INTO taskyard_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
    )
    .await?;
    tx.commit().await.map_err(&err)
}

/// What both backends do inside the transaction that holds their migration lock: create
/// the ledger, refuse a schema newer than this build, apply each migration not applied
/// yet and note it with `insert` (the ledger's `INSERT` in the backend's dialect).
async fn apply<DB>(
    conn: &mut DB::Connection,
    backend: &'static str,
    migrations: &[Migration],
    insert: &'static str,
) -> Result<(), Error>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
    i64: sqlx::Type<DB> + for<'q> sqlx::Encode<'q, DB> + for<'r> sqlx::Decode<'r, DB>,
    &'static str: sqlx::Type<DB> + for<'q> sqlx::Encode<'q, DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    let err = sqlx_error(backend);
    sqlx::query::<DB>(CREATE_LEDGER)
        .execute(&mut *conn)
        .await
        .map_err(&err)?;
    let applied: Vec<i64> = sqlx::query_scalar::<DB, i64>("SELECT version FROM taskyard_migrations")
        .fetch_all(&mut *conn)
        .await
        .map_err(&err)?;
    check_not_newer(backend, &applied)?;
    for migration in migrations.iter().filter(|m| !applied.contains(&m.version)) {
        sqlx::raw_sql(migration.sql)
            .execute(&mut *conn)
            .await
            .map_err(&err)?;
        sqlx::query::<DB>(insert)
            .bind(migration.version)
            .bind(migration.name)
            .bind(jiff::Timestamp::now().as_millisecond())
            .execute(&mut *conn)
            .await
            .map_err(&err)?;
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use sqlx::{Connection, PgConnection, SqliteConnection};

    use super::*;

    /// Runs of a schema at version 8: durable ones queued (with a key) and running (with
    /// a cancel asked for), a durable one that ended, and one in process.
    const VERSION_8_RUNS: &str = "INSERT INTO taskyard_runs (id, task, status, trigger_kind, trigger_data, payload, \
         attempt, attempts, instance, queued_at, durable, run_at, priority, unique_key, max_attempts, fence, cancel_requested) VALUES \
         ('q', 'mail', 'queued', 'manual', '{}', '{}', 1, '[]', 'i-0', 100, TRUE, 500, 2, 'k', 3, 0, FALSE), \
         ('r', 'mail', 'running', 'manual', '{}', '{}', 2, '[]', 'i-1', 100, TRUE, 900, 0, NULL, 3, 3, TRUE), \
         ('s', 'mail', 'succeeded', 'manual', '{}', '{}', 1, '[]', 'i-1', 100, TRUE, 900, 0, NULL, 1, 1, FALSE), \
         ('p', 'mail', 'queued', 'manual', '{}', '{}', 1, '[]', 'i-1', 100, FALSE, NULL, 0, NULL, 1, 0, FALSE)";

    /// The jobs, as `(id, task, claimed_by, fence, run_at, priority, unique_key,
    /// max_attempts, cancel_requested)`.
    const JOBS: &str = "SELECT id, task, claimed_by, fence, run_at, CAST(priority AS BIGINT), unique_key, \
         CAST(max_attempts AS BIGINT), CAST(CASE WHEN cancel_requested THEN 1 ELSE 0 END AS BIGINT) FROM taskyard_jobs ORDER BY id";

    type JobRow = (
        String,
        String,
        Option<String>,
        i64,
        i64,
        i64,
        Option<String>,
        i64,
        i64,
    );

    /// Where each run is after the latest version, as `(id, status, instance, the table)`:
    /// the queued and running durable runs in their jobs, their records' columns with
    /// them, the others in the history's table.
    const PLACES: &str = "SELECT id, status, instance, 'runs' FROM taskyard_runs \
         UNION ALL SELECT id, status, instance, 'jobs' FROM taskyard_jobs ORDER BY 1";

    type Place = (String, String, String, String);

    fn expected_places() -> Vec<Place> {
        [
            ("p", "queued", "i-1", "runs"),
            ("q", "queued", "i-0", "jobs"),
            ("r", "running", "i-1", "jobs"),
            ("s", "succeeded", "i-1", "runs"),
        ]
        .into_iter()
        .map(|(id, status, instance, table)| (id.into(), status.into(), instance.into(), table.into()))
        .collect()
    }

    fn expected_jobs() -> Vec<JobRow> {
        vec![
            ("q".into(), "mail".into(), None, 0, 500, 2, Some("k".into()), 3, 0),
            (
                "r".into(),
                "mail".into(),
                Some("i-1".into()),
                3,
                900,
                0,
                None,
                3,
                1,
            ),
        ]
    }

    #[tokio::test]
    async fn the_queued_and_running_durable_runs_of_version_8_live_in_their_jobs_on_sqlite() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(dir.path().join("upgrade.db"))
            .create_if_missing(true);
        let mut conn = SqliteConnection::connect_with(&options)
            .await
            .expect("the file opens");
        let insert = "INSERT INTO taskyard_migrations (version, name, applied_at) VALUES (?, ?, ?)";
        apply::<sqlx::Sqlite>(&mut conn, "sqlite", &SQLITE[..8], insert)
            .await
            .expect("version 8");
        sqlx::raw_sql(VERSION_8_RUNS)
            .execute(&mut conn)
            .await
            .expect("runs");
        apply::<sqlx::Sqlite>(&mut conn, "sqlite", SQLITE, insert)
            .await
            .expect("the latest version");
        let jobs: Vec<JobRow> = sqlx::query_as(JOBS).fetch_all(&mut conn).await.expect("jobs");
        assert_eq!(jobs, expected_jobs());
        let places: Vec<Place> = sqlx::query_as(PLACES).fetch_all(&mut conn).await.expect("runs");
        assert_eq!(places, expected_places());
    }

    #[tokio::test]
    async fn the_queued_and_running_durable_runs_of_version_8_live_in_their_jobs_on_postgres() {
        let Ok(url) = std::env::var("TASKYARD_TEST_DATABASE_URL") else {
            assert_ne!(
                std::env::var("TASKYARD_REQUIRE_PG").as_deref(),
                Ok("1"),
                "TASKYARD_REQUIRE_PG=1 but TASKYARD_TEST_DATABASE_URL is not set: run scripts/setup-postgres.sh and set it"
            );
            return;
        };
        let schema = format!("ty_upgrade_{}", std::process::id());
        let mut conn = PgConnection::connect(&url).await.expect("the test database");
        let setup = format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}; SET search_path = {schema}"
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(setup))
            .execute(&mut conn)
            .await
            .expect("a schema");
        let insert = "INSERT INTO taskyard_migrations (version, name, applied_at) VALUES ($1, $2, $3)";
        apply::<sqlx::Postgres>(&mut conn, "postgres", &POSTGRES[..8], insert)
            .await
            .expect("version 8");
        sqlx::raw_sql(VERSION_8_RUNS)
            .execute(&mut conn)
            .await
            .expect("runs");
        apply::<sqlx::Postgres>(&mut conn, "postgres", POSTGRES, insert)
            .await
            .expect("the latest version");
        let jobs: Vec<JobRow> = sqlx::query_as(JOBS).fetch_all(&mut conn).await.expect("jobs");
        let places: Vec<Place> = sqlx::query_as(PLACES).fetch_all(&mut conn).await.expect("runs");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .execute(&mut conn)
            .await
            .expect("the schema dropped");
        assert_eq!(jobs, expected_jobs());
        assert_eq!(places, expected_places());
    }
}
