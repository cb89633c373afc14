//! The PostgreSQL store's own tests: its claims' and batches' plans on a table of many
//! runs.

use super::*;
use crate::store::pg_test_schema::TestSchema;
use sqlx::{Connection, PgConnection};

/// Jobs queued, more than the claims take.
const QUEUED: i64 = 20_000;

/// Jobs one claim asks for.
const ROOM: i64 = 256;

/// A claim reads the entries of the jobs it takes from the queue's order, and those of
/// jobs that other claims hold locked, never the whole queue, whatever the table's
/// statistics say: that almost nothing is queued (as they do after a burst of enqueues),
/// when its update was planned as a bitmap of every queued job's entry, or that the queue
/// holds none of this task's jobs (as when another task's burst was queued at the last
/// `ANALYZE`), when every due job was read and sorted. The session has no settings of its own, as every session
/// behind a pooler: the claim's planner settings are its function's.
#[tokio::test]
async fn a_claim_reads_what_it_takes_not_the_whole_queue() {
    let Some(schema) = TestSchema::migrated("ty_claim").await else {
        return;
    };
    let options: PgConnectOptions = schema.url.parse().expect("the test schema's URL");
    let mut connection = PgConnection::connect_with(&options)
        .await
        .expect("the test schema");
    let queue = |from: i64, to: i64, task: &str, held: &str| {
        format!(
            "INSERT INTO taskyard_jobs (id, task, status, trigger_kind, trigger_data, payload, attempt, \
             attempts, instance, queued_at, priority, run_at, max_attempts, fence, claimed_by) \
             SELECT '01a236f2-089e-7000-8000-' || lpad(to_hex(n), 12, '0'), '{task}', 'queued', 'manual', \
             '{{}}', '{{}}', 0, '[]', 'a', 0, 0, 0, 1, 0, {held} FROM generate_series({from}, {to}) AS n"
        )
    };
    let statistics = [
        // Taken while every job was held, then the jobs queued.
        vec![
            queue(1, QUEUED, "noop", "'gone'"),
            "ANALYZE taskyard_runs, taskyard_jobs".into(),
            "UPDATE taskyard_jobs SET claimed_by = NULL".into(),
        ],
        // Taken while another task's jobs were queued, then this task's.
        vec![
            "TRUNCATE taskyard_jobs".into(),
            queue(QUEUED + 1, 2 * QUEUED, "other", "NULL"),
            "ANALYZE taskyard_jobs".into(),
            "DELETE FROM taskyard_jobs".into(),
            queue(1, QUEUED, "noop", "NULL"),
        ],
    ];
    // The counts of entries read since the backend last reported them, summed over
    // its transactions: each claim's reads are the difference.
    const READ: &str = "SELECT pg_stat_get_xact_tuples_returned('taskyard_jobs_due'::regclass) \
         + pg_stat_get_xact_tuples_returned('taskyard_jobs_due_by_task'::regclass)";
    let mut reads = Vec::new();
    for statements in statistics {
        for statement in statements {
            sqlx::query(sqlx::AssertSqlSafe(statement))
                .execute(&mut connection)
                .await
                .expect("a queue");
        }
        // Past the five executions after which PostgreSQL may plan the function's
        // statements once for all values. Each claim is rolled back, so each finds the
        // same queue.
        for _ in 0..8 {
            let mut claim = connection.begin().await.expect("a transaction");
            let (before,): (i64,) = sqlx::query_as(READ)
                .fetch_one(&mut *claim)
                .await
                .expect("the reads before the claim");
            let claimed: Vec<(String,)> =
                sqlx::query_as("SELECT id FROM taskyard_claim('me', 1, $1, ARRAY['noop'], '{}', '{}', '{}')")
                    .bind(i32::try_from(ROOM).expect("a room"))
                    .fetch_all(&mut *claim)
                    .await
                    .expect("a claim");
            assert_eq!(claimed.len() as i64, ROOM);
            let (after,): (i64,) = sqlx::query_as(READ)
                .fetch_one(&mut *claim)
                .await
                .expect("the claim's reads");
            reads.push(after - before);
            claim.rollback().await.expect("rolled back");
        }
    }
    drop(connection);
    schema.drop().await;
    assert!(
        reads.iter().all(|read| *read <= 2 * ROOM),
        "claims of {ROOM} jobs among {QUEUED} read {reads:?} entries of the queue's indexes"
    );
}

/// The status index leaves out succeeded runs, most of them: a page of failed runs
/// among many succeeded ones is still read from it.
#[tokio::test]
async fn a_page_of_failed_runs_reads_the_status_index() {
    let Some(schema) = TestSchema::migrated("ty_status").await else {
        return;
    };
    let pool = PgPool::connect(&schema.url).await.expect("the test schema");
    for statement in [
        "INSERT INTO taskyard_runs (id, task, status, trigger_kind, trigger_data, payload, attempt, \
         attempts, instance, queued_at) SELECT '01a236f2-089e-7000-8000-' || lpad(to_hex(n), 12, '0'), 'noop', \
         CASE WHEN n % 5000 = 0 THEN 'failed' ELSE 'succeeded' END, 'manual', '{}', '{}', 1, '[]', 'a', 0 \
         FROM generate_series(1, 20000) AS n",
        "ANALYZE taskyard_runs",
    ] {
        sqlx::query(statement).execute(&pool).await.expect("a history");
    }
    let filter = crate::history::RunFilter::default().status(crate::history::RunStatus::Failed);
    let plan: Vec<(String,)> = Statements::<sqlx::Postgres>::runs_page(&filter, "EXPLAIN ")
        .build_query_as()
        .fetch_all(&pool)
        .await
        .expect("the page's plan");
    pool.close().await;
    schema.drop().await;
    assert!(
        plan.iter()
            .any(|(line,)| line.contains("taskyard_runs_by_status")),
        "{plan:?}"
    );
}
