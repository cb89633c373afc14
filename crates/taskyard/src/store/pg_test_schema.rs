//! A schema of its own in the test database, for the PostgreSQL store's unit tests.

use sqlx::{AssertSqlSafe, PgPool};

/// A fresh schema in the database of `TASKYARD_TEST_DATABASE_URL`, dropped by
/// [`TestSchema::drop`].
pub(super) struct TestSchema {
    /// A pool on the database itself, outside the schema.
    admin: PgPool,
    /// The schema's name.
    pub(super) name: String,
    /// The database's URL with the schema as its search path.
    pub(super) url: String,
}

impl TestSchema {
    /// A schema named from `prefix` and the process, or `None` when no test database is
    /// set; under `TASKYARD_REQUIRE_PG=1` a missing database fails the test instead.
    pub(super) async fn create(prefix: &str) -> Option<TestSchema> {
        let Ok(base) = std::env::var("TASKYARD_TEST_DATABASE_URL") else {
            assert_ne!(
                std::env::var("TASKYARD_REQUIRE_PG").as_deref(),
                Ok("1"),
                "TASKYARD_REQUIRE_PG=1 but TASKYARD_TEST_DATABASE_URL is not set: run scripts/setup-postgres.sh and set it"
            );
            return None;
        };
        let name = format!("{prefix}_{}", std::process::id());
        let admin = PgPool::connect(&base).await.expect("the test database");
        for statement in [
            format!("DROP SCHEMA IF EXISTS {name} CASCADE"),
            format!("CREATE SCHEMA {name}"),
        ] {
            sqlx::query(AssertSqlSafe(statement))
                .execute(&admin)
                .await
                .expect("a schema");
        }
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}options=-c%20search_path%3D{name}");
        Some(TestSchema { admin, name, url })
    }

    /// [`TestSchema::create`], with the store's migrations applied in it.
    pub(super) async fn migrated(prefix: &str) -> Option<TestSchema> {
        let schema = TestSchema::create(prefix).await?;
        drop(
            super::PostgresStore::connect(&schema.url)
                .await
                .expect("the store migrates"),
        );
        Some(schema)
    }

    /// Drops the schema and everything in it.
    pub(super) async fn drop(self) {
        sqlx::query(AssertSqlSafe(format!("DROP SCHEMA {} CASCADE", self.name)))
            .execute(&self.admin)
            .await
            .expect("the schema dropped");
    }
}
