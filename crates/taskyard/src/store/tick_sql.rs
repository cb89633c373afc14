//! The tick ledger's statements, shared by both SQL backends like those of `sql`: a tick's
//! claim, claims made together, and durable ticks' claims made together with their runs.
//!
//! Every instance inserts a statement's claims in the same order: two instances claiming
//! the same ticks in different orders would each wait for a row the other inserted
//! (PostgreSQL reports a deadlock and fails both).

use std::collections::HashSet;

use jiff::Timestamp;
use sqlx::query::Query;
use sqlx::{Encode, Executor, IntoArguments, QueryBuilder, Type};

use super::queue::Job;
use super::sql::{Dialect, Statements, TICKS_PER_STATEMENT};
use super::{Batched, TickClaim};
use crate::Error;
use crate::history::RunRecord;

/// A durable tick's claim, with its run and the run's place in the queue.
pub(super) type TickWithRun = (TickClaim, RunRecord, Job);

/// The statement that inserts the jobs of durable runs enqueued without a key, all in one
/// (each backend's own: an `UNNEST` of arrays, or a JSON array read by `json_each`).
pub(super) type InsertJobs<DB> =
    fn(&[(RunRecord, Job)]) -> Result<Query<'static, DB, <DB as sqlx::Database>::Arguments>, Error>;

/// A claim's insert into the ledger, `$on_conflict` saying what an existing row does.
macro_rules! insert_claim {
    ($on_conflict:literal) => {
        concat!(
            "INSERT INTO taskyard_ticks (schedule, tick, target, instance, claimed_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT ",
            $on_conflict
        )
    };
}

impl<DB> Statements<'_, DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> String: Type<DB> + Encode<'q, DB> + sqlx::Decode<'q, DB>,
    for<'q> i64: Type<DB> + Encode<'q, DB> + sqlx::Decode<'q, DB>,
    for<'q> f64: Type<DB> + Encode<'q, DB> + sqlx::Decode<'q, DB>,
    for<'q> &'static str: Type<DB> + Encode<'q, DB>,
    for<'q> Option<String>: Encode<'q, DB>,
    for<'q> Option<i64>: Encode<'q, DB>,
    for<'q> Option<f64>: Encode<'q, DB>,
    for<'r> &'r str: sqlx::ColumnIndex<DB::Row>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    /// Claims a tick in the ledger; true if this call made the claim.
    pub async fn claim_tick(&self, claim: &TickClaim) -> Result<bool, Error> {
        self.insert_claim(claim, insert_claim!("DO NOTHING")).await
    }

    /// Claims a tick again after a failed claim (see `Store::claim_tick_again`): the
    /// insert, or the row already there when it is this claim's, the same instance and
    /// claim time (its update changes nothing, and only makes the row come back).
    pub async fn claim_tick_again(&self, claim: &TickClaim) -> Result<bool, Error> {
        self.insert_claim(
            claim,
            insert_claim!(
                "(schedule, tick, target) DO UPDATE SET instance = excluded.instance \
                 WHERE taskyard_ticks.instance = excluded.instance AND taskyard_ticks.claimed_at = excluded.claimed_at"
            ),
        )
        .await
    }

    /// Inserts `claim` into the ledger with `sql` (an [`insert_claim!`]); true if a row was
    /// inserted or updated.
    async fn insert_claim(&self, claim: &TickClaim, sql: &'static str) -> Result<bool, Error> {
        let done = sqlx::query::<DB>(sql)
            .bind(claim.schedule.clone())
            .bind(claim.tick.as_millisecond())
            .bind(claim.target.clone())
            .bind(claim.instance.clone())
            .bind(claim.claimed_at.as_millisecond())
            .execute(self.pool)
            .await
            .map_err(self.error())?;
        Ok(DB::rows_affected(&done) == 1)
    }

    /// Claims many ticks, [`TICKS_PER_STATEMENT`] to a statement; for each, in order,
    /// true if this call made the claim.
    pub async fn claim_ticks(&self, claims: &[TickClaim]) -> Result<Vec<bool>, Error> {
        let mut conn = self.pool.acquire().await.map_err(self.error())?;
        let claims: Vec<&TickClaim> = claims.iter().collect();
        self.claim_in_key_order(&mut conn, &claims).await
    }

    /// Claims durable ticks and queues the runs of those this call claimed, in one
    /// transaction: for each tick, true when its claim and its run are committed, false
    /// when it was claimed before and nothing of it was written. See
    /// `Store::claim_tick_and_enqueue`; `insert` is the backend's statement for the jobs.
    pub async fn claim_ticks_and_enqueue(
        &self,
        ticks: &[TickWithRun],
        insert: InsertJobs<DB>,
    ) -> Result<Vec<bool>, Error> {
        let mut tx = self.begin().await?;
        let claims: Vec<&TickClaim> = ticks.iter().map(|(claim, _, _)| claim).collect();
        let claimed = self.claim_in_key_order(&mut tx, &claims).await?;
        let jobs: Vec<(RunRecord, Job)> = ticks
            .iter()
            .zip(&claimed)
            .filter(|(_, claimed)| **claimed)
            .map(|((_, run, job), _)| (run.clone(), job.clone()))
            .collect();
        if !jobs.is_empty() {
            let queued = insert(&jobs)?.execute(&mut *tx).await.map_err(self.error())?;
            if DB::rows_affected(&queued) != jobs.len() as u64 {
                return Err(Error::StoreData {
                    backend: DB::BACKEND,
                    message: format!(
                        "{} of the runs of {} ticks claimed together were queued",
                        DB::rows_affected(&queued),
                        jobs.len()
                    ),
                });
            }
        }
        tx.commit().await.map_err(self.error())?;
        Ok(claimed)
    }

    /// Durable ticks' claims on `pool`, those asked for while a transaction is out made in
    /// the next, with their runs (see [`Statements::claim_ticks_and_enqueue`]).
    pub fn claims_with_runs(pool: sqlx::Pool<DB>, insert: InsertJobs<DB>) -> Batched<TickWithRun, bool> {
        Batched::start(move |ticks: Vec<TickWithRun>| {
            let pool = pool.clone();
            async move {
                Statements { pool: &pool }
                    .claim_ticks_and_enqueue(&ticks, insert)
                    .await
            }
        })
    }

    /// Claims `claims` on `conn`, [`TICKS_PER_STATEMENT`] to a statement, all of them in
    /// the ledger's key order: a transaction holds each statement's claims to its end, so
    /// the order holds across its statements, not only within each. For each claim, in
    /// the order given, true if this call made it.
    async fn claim_in_key_order(
        &self,
        conn: &mut DB::Connection,
        claims: &[&TickClaim],
    ) -> Result<Vec<bool>, Error> {
        let mut order: Vec<usize> = (0..claims.len()).collect();
        order.sort_unstable_by(|&a, &b| key(claims[a]).cmp(&key(claims[b])));
        let mut claimed = vec![false; claims.len()];
        for chunk in order.chunks(TICKS_PER_STATEMENT) {
            let sorted: Vec<&TickClaim> = chunk.iter().map(|&at| claims[at]).collect();
            let made = self.claim_sorted(conn, &sorted).await?;
            for (&at, made) in chunk.iter().zip(made) {
                claimed[at] = made;
            }
        }
        Ok(claimed)
    }

    /// Claims `claims`, in key order and at most [`TICKS_PER_STATEMENT`], in one statement
    /// on `conn`; for each, true if this statement made the claim.
    async fn claim_sorted(
        &self,
        conn: &mut DB::Connection,
        claims: &[&TickClaim],
    ) -> Result<Vec<bool>, Error> {
        let mut query = QueryBuilder::<DB>::new(
            "INSERT INTO taskyard_ticks (schedule, tick, target, instance, claimed_at) ",
        );
        query.push_values(claims, |mut values, claim| {
            values
                .push_bind(claim.schedule.clone())
                .push_bind(claim.tick.as_millisecond())
                .push_bind(claim.target.clone())
                .push_bind(claim.instance.clone())
                .push_bind(claim.claimed_at.as_millisecond());
        });
        query.push(" ON CONFLICT DO NOTHING RETURNING schedule, tick, target");
        let made: Vec<(String, i64, String)> = query
            .build_query_as()
            .fetch_all(&mut *conn)
            .await
            .map_err(self.error())?;
        let mut made: HashSet<(&str, i64, &str)> = made
            .iter()
            .map(|(schedule, tick, target)| (schedule.as_str(), *tick, target.as_str()))
            .collect();
        Ok(claims
            .iter()
            .map(|claim| {
                made.remove(&(
                    claim.schedule.as_str(),
                    claim.tick.as_millisecond(),
                    claim.target.as_str(),
                ))
            })
            .collect())
    }
}

/// The order claims are inserted in: the ledger's key.
fn key(claim: &TickClaim) -> (&str, Timestamp, &str) {
    (&claim.schedule, claim.tick, &claim.target)
}
