//! Keeps PostgreSQL's table of live jobs free of the index entries of ended jobs.
//!
//! A claim moves its jobs out of the index of due jobs and an end deletes them, but
//! PostgreSQL removes the index entries of the old row versions only when it vacuums the
//! table. Until then every claim walks over them from the front of the index of due jobs,
//! and every count of a task's claimed jobs walks over its ended ones: after a burn-down
//! of 100,000 jobs, a claim that finds nothing reads 830 pages (0.9 ms) where it read 5,
//! and a burn-down under a cluster-wide limit runs at a third of its speed. Autovacuum
//! visits a database about once a minute (`autovacuum_naptime`), far too late for a queue
//! that turns over thousands of jobs a second, so each store vacuums the table itself once
//! enough jobs ended through it: every [`EVERY`] ends while runs flow, and as soon as a
//! claim finds the queue drained. Vacuums from several instances skip one another.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use sqlx::PgPool;

use crate::sync::lock;

/// The vacuum: no wait for another instance's (`SKIP_LOCKED`); the indexes cleaned
/// however few pages hold dead rows (the point of it); and the table's empty tail kept,
/// since giving it back takes a lock that would stop claims and enqueues meanwhile.
const VACUUM: &str = "VACUUM (SKIP_LOCKED, INDEX_CLEANUP ON, TRUNCATE OFF) taskyard_jobs";

/// Ends between two vacuums while runs flow: their dead entries fill ~70 pages of the
/// index of due jobs, a tenth of a millisecond a claim. A vacuum reads every index of the
/// table from end to end, so more often costs a burn-down more than it saves.
const EVERY: usize = 8_192;

/// Ends that make a vacuum worth it once the queue is drained: a claim that finds nothing
/// then reads no more than a page or two.
const AFTER_DRAIN: usize = 64;

/// The least time between the starts of two vacuums from one store.
const GAP: Duration = Duration::from_secs(1);

/// Whether the store's role owns the table of live jobs, which `VACUUM` requires.
const OWNS: &str =
    "SELECT pg_has_role(c.relowner, 'USAGE') FROM pg_class c WHERE c.oid = to_regclass('taskyard_jobs')";

/// When a store vacuums its table of live jobs (see the module docs).
#[derive(Debug, Default)]
pub(super) struct Tidy {
    /// Jobs ended through this store since its last vacuum started.
    ended: AtomicUsize,
    /// Whether a vacuum runs, and when the last one started.
    state: Mutex<(bool, Option<Instant>)>,
    /// Whether the store's role owns the table, read before its first vacuum. A role that
    /// does not never vacuums: PostgreSQL would skip each vacuum with a warning, and
    /// autovacuum alone keeps the table.
    owns: OnceLock<bool>,
}

impl Tidy {
    /// Counts `ended` jobs ended through the store.
    pub(super) fn ended(&self, ended: usize) {
        self.ended.fetch_add(ended, Ordering::Relaxed);
    }

    /// After a claim: starts a vacuum on `pool` when enough jobs ended since the last one,
    /// fewer once the claim found the queue `drained`.
    pub(super) fn after_claim(self: &Arc<Self>, pool: &PgPool, drained: bool) {
        let ended = self.ended.load(Ordering::Relaxed);
        if ended < if drained { AFTER_DRAIN } else { EVERY } || self.owns.get() == Some(&false) {
            return;
        }
        {
            let mut state = lock(&self.state);
            let (running, last) = &mut *state;
            if *running || last.is_some_and(|last| last.elapsed() < GAP) {
                return;
            }
            *running = true;
            *last = Some(Instant::now());
        }
        // Ends from now on are for the next vacuum: this one may start before they commit.
        self.ended.fetch_sub(ended, Ordering::Relaxed);
        let (tidy, pool) = (self.clone(), pool.clone());
        drop(tokio::spawn(async move {
            if let Err(error) = tidy.vacuum(&pool).await {
                tracing::debug!(%error, "vacuuming the table of live jobs failed; trying again later");
            }
            lock(&tidy.state).0 = false;
        }));
    }

    /// Vacuums the table, once the role is known to own it.
    async fn vacuum(&self, pool: &PgPool) -> Result<(), sqlx::Error> {
        let owns = match self.owns.get() {
            Some(owns) => *owns,
            None => {
                let owns = sqlx::query_scalar::<_, bool>(OWNS).fetch_one(pool).await?;
                if !owns {
                    tracing::info!(
                        "the store's PostgreSQL role does not own taskyard_jobs, so it cannot vacuum it; autovacuum alone will"
                    );
                }
                *self.owns.get_or_init(|| owns)
            }
        };
        if owns {
            // Simple protocol: `VACUUM` is refused in a transaction, and is not prepared.
            sqlx::raw_sql(VACUUM).execute(pool).await?;
        }
        Ok(())
    }

    /// Whether this store found that its role cannot vacuum the table.
    #[cfg(test)]
    fn not_owner(&self) -> bool {
        self.owns.get() == Some(&false)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use jiff::Timestamp;
    use sqlx::PgPool;

    use crate::history::{RunRecord, RunStatus};
    use crate::store::pg_test_schema::TestSchema;
    use crate::store::{ClaimTask, Claimed, PostgresStore, Store};

    /// Jobs burned down: their dead entries fill ~170 pages of the index of due jobs.
    const JOBS: i64 = 20_000;

    /// The ends of `claimed` runs that succeeded, with their fences.
    fn succeeded(claimed: Vec<Claimed>) -> Vec<(RunRecord, i64)> {
        claimed
            .into_iter()
            .map(|claimed| {
                let mut run = claimed.run;
                run.status = RunStatus::Succeeded;
                run.finished_at = Some(Timestamp::now());
                (run, claimed.fence)
            })
            .collect()
    }

    /// The pages a claim's walk of the index of due jobs reads when nothing is due, on a
    /// connection planned as the claims' are.
    async fn pages_a_claim_reads(pool: &PgPool) -> i64 {
        let plan: Vec<(String,)> = sqlx::query_as(
            "EXPLAIN (ANALYZE, BUFFERS) SELECT id FROM taskyard_jobs \
             WHERE claimed_by IS NULL AND run_at <= $1 ORDER BY priority DESC, run_at, id LIMIT 64",
        )
        .bind(Timestamp::now().as_millisecond())
        .fetch_all(pool)
        .await
        .expect("the walk's plan");
        // The first `Buffers:` line is the whole walk's: `shared hit=N read=M`, either
        // left out when nothing was read that way.
        let buffers = plan
            .iter()
            .find_map(|(line,)| line.trim().strip_prefix("Buffers: shared "))
            .unwrap_or_else(|| panic!("no buffers in the plan: {plan:?}"));
        buffers
            .split_whitespace()
            .filter_map(|part| part.strip_prefix("hit=").or_else(|| part.strip_prefix("read=")))
            .map(|count| count.parse::<i64>().expect("a count of pages"))
            .sum()
    }

    /// Autovacuum is off for the table: only the store's own vacuum can clear the index of
    /// the jobs it claimed and ended.
    #[tokio::test]
    async fn after_a_burn_down_a_claim_no_longer_walks_the_ended_jobs() {
        let Some(schema) = TestSchema::create("ty_tidy").await else {
            return;
        };
        let store = PostgresStore::connect(&schema.url)
            .await
            .expect("the store migrates");
        let options: sqlx::postgres::PgConnectOptions = schema.url.parse().expect("the test schema's URL");
        let pool = PgPool::connect_with(options).await.expect("the test schema");
        for (statement, jobs) in [
            ("ALTER TABLE taskyard_jobs SET (autovacuum_enabled = false)", None),
            (
                "INSERT INTO taskyard_jobs (id, task, status, trigger_kind, trigger_data, payload, attempt, \
             attempts, instance, queued_at, priority, run_at, max_attempts, fence) SELECT '01a236f2-089e-7000-8000-' || \
             lpad(to_hex(n), 12, '0'), 'noop', 'queued', 'manual', '{\"kind\": \"manual\"}', '{}', 1, '[]', 'a', 0, \
             0, 0, 1, 0 FROM generate_series(1, $1) AS n",
                Some(JOBS),
            ),
        ] {
            let query = sqlx::query(statement);
            let query = match jobs {
                Some(jobs) => query.bind(jobs),
                None => query,
            };
            query.execute(&pool).await.expect("a queue");
        }
        // Claimed and ended as an instance burns the queue down.
        let noop = [ClaimTask {
            name: "noop".into(),
            limit: None,
            ended: Vec::new(),
        }];
        let mut ended = 0;
        loop {
            let claimed = store
                .claim("a", &noop, Timestamp::now(), 512)
                .await
                .expect("a claim");
            if claimed.is_empty() {
                break;
            }
            let ends = succeeded(claimed);
            let written = store.put_claimed_many(&ends).await.expect("the ends");
            assert!(written.iter().all(|written| *written));
            ended += ends.len();
        }
        assert_eq!(ended as i64, JOBS);
        // An idle instance claims now and then: once its claims find the queue drained,
        // its store vacuums, and a claim reads a page or two again.
        let mut read = i64::MAX;
        for _ in 0..100 {
            read = pages_a_claim_reads(&pool).await;
            if read <= 4 {
                break;
            }
            let claimed = store
                .claim("a", &noop, Timestamp::now(), 512)
                .await
                .expect("a claim");
            assert!(claimed.is_empty());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        pool.close().await;
        schema.drop().await;
        assert!(
            read <= 4,
            "a claim that finds nothing still walks {read} pages of ended jobs' entries"
        );
    }

    /// A role that does not own the tables: PostgreSQL would skip each of its vacuums with
    /// a warning, so the store finds that out once and leaves the table to autovacuum.
    #[tokio::test]
    async fn a_role_that_does_not_own_the_jobs_leaves_them_to_autovacuum() {
        let Some(schema) = TestSchema::migrated("ty_tidy_guest").await else {
            return;
        };
        let role = format!("ty_guest_{}", std::process::id());
        let admin = PgPool::connect(&schema.url).await.expect("the test database");
        let name = &schema.name;
        for statement in [
            format!("CREATE ROLE {role} LOGIN"),
            format!("GRANT CREATE, USAGE ON SCHEMA {name} TO {role}"),
            format!("GRANT ALL ON ALL TABLES IN SCHEMA {name} TO {role}"),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(statement))
                .execute(&admin)
                .await
                .expect("a role of the schema's");
        }
        let options: sqlx::postgres::PgConnectOptions = schema.url.parse().expect("the test schema's URL");
        let guest = PostgresStore::connect_with(options.username(&role))
            .await
            .expect("the store as a guest");
        let noop = [ClaimTask {
            name: "noop".into(),
            limit: None,
            ended: Vec::new(),
        }];
        for _ in 0..super::AFTER_DRAIN {
            let run = RunRecord::queued(
                "noop".into(),
                serde_json::Value::Null,
                crate::history::Trigger::Manual,
                "a".into(),
                Timestamp::now(),
            );
            let job = crate::store::Job {
                run_at: Timestamp::now(),
                priority: 0,
                key: None,
                max_attempts: 1,
            };
            guest.enqueue(&run, &job).await.expect("queued");
        }
        let ends = succeeded(
            guest
                .claim("a", &noop, Timestamp::now(), 512)
                .await
                .expect("a claim"),
        );
        assert_eq!(ends.len(), super::AFTER_DRAIN);
        guest.put_claimed_many(&ends).await.expect("the ends");
        let mut found = false;
        for _ in 0..50 {
            guest
                .claim("a", &noop, Timestamp::now(), 512)
                .await
                .expect("a claim");
            found = guest.tidy.not_owner();
            if found {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        drop(guest);
        schema.drop().await;
        for statement in [format!("DROP OWNED BY {role}"), format!("DROP ROLE {role}")] {
            sqlx::query(sqlx::AssertSqlSafe(statement))
                .execute(&admin)
                .await
                .expect("the role dropped");
        }
        assert!(
            found,
            "the store never found that its role cannot vacuum the jobs"
        );
    }
}
