//! Run history and instance leases: one [`Store`] trait, three backends.
//!
//! - [`MemoryStore`]: in-process, for tests and apps that need no history across restarts.
//! - [`SqliteStore`]: the embedded default, `.taskyard/taskyard.db`, WAL mode, safe for
//!   several processes sharing the file.
//! - [`PostgresStore`]: for many instances on many machines (`TASKYARD_DATABASE_URL`).
//!
//! The runtime writes through `Recorder`, which batches records into one transaction per
//! batch; the `lease` keeper heartbeats this instance and marks runs of dead instances
//! `abandoned`. Durable runs wait in the same table as queued records any instance may
//! claim ([`Store::enqueue`], [`Store::claim`], fenced by [`Store::put_claimed`]). Every
//! backend passes the same conformance suite (`tests/store_conformance.rs`).

mod batched;
mod cancel_sql;
mod claim_sql;
mod columns;
mod forgotten;
mod health;
pub(crate) mod lease;
mod memory;
mod migrate;
mod pages_sql;
mod pg_batch;
mod pg_connect;
#[cfg(test)]
mod pg_test_schema;
mod pg_tidy;
mod postgres;
mod queue;
mod queue_sql;
mod recorder;
mod sql;
mod sqlite;
mod sqlite_batch;
mod sqlite_checkpoint;
mod tick_sql;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use jiff::Timestamp;

pub(crate) use self::batched::Batched;
pub use self::health::{StoreFailure, StoreHealth};
pub(crate) use self::lease::LeaseClock;
pub use self::memory::MemoryStore;
pub use self::migrate::MIGRATIONS_VERSION;
pub use self::postgres::PostgresStore;
pub use self::queue::{CancelRequest, ClaimTask, Claimed, Enqueued, ForgottenCount, Job, SchedulePause};
pub(crate) use self::queue::{Orphan, rescue};
pub(crate) use self::recorder::{MAX_BATCH, Recorder};
pub use self::sqlite::SqliteStore;
use crate::Error;
use crate::config::SqliteSync;
pub use crate::history::RunFilter;
use crate::history::{RunId, RunRecord, RunStatus};

/// How many of a schedule's unfinished runs [`Store::unfinished_of_schedules`] returns:
/// the overlap policies look at the newest, and a schedule with thousands unfinished (a
/// `queue` of slow runs across instances) must not make every tick read them all.
pub const UNFINISHED_PER_SCHEDULE: usize = 20;

/// Storage for run history and instance leases. Implementations must make `put_runs`
/// atomic (all records of a batch or none) and durable once it returns.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `memory`, `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// How many batches of claimed runs' states the recorder may have in flight at once,
    /// each on a lane of its own: 1 where the store writes one transaction at a time
    /// anyway.
    fn write_lanes(&self) -> usize {
        1
    }

    /// Inserts or replaces runs by id, in one transaction.
    async fn put_runs(&self, runs: &[RunRecord]) -> Result<(), Error>;

    /// The run with `id`, if it is stored.
    async fn get_run(&self, id: RunId) -> Result<Option<RunRecord>, Error>;

    /// Runs matching `filter`, newest first.
    async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, Error>;

    /// Registers or renews an instance's lease.
    async fn heartbeat(&self, lease: &InstanceLease) -> Result<(), Error>;

    /// Removes an instance that stopped cleanly.
    async fn release_instance(&self, instance: &str) -> Result<(), Error>;

    /// Marks `abandoned` every queued or running run whose instance has no live lease at
    /// `now`, forgets instances whose lease expired, and returns the runs it marked.
    async fn mark_abandoned(&self, now: Timestamp) -> Result<Vec<RunId>, Error>;

    /// Deletes finished runs that ended before `finished_before`, schedule ticks claimed
    /// before then except each schedule's latest, and broadcasts sent before then;
    /// returns how many runs.
    async fn prune_runs(&self, finished_before: Timestamp) -> Result<u64, Error>;

    /// Claims a schedule's tick in the ledger, which is unique on (schedule, tick,
    /// target). Returns `true` for the one caller that claimed it, `false` for every
    /// other: this is what makes a tick run exactly once across instances.
    async fn claim_tick(&self, claim: &TickClaim) -> Result<bool, Error>;

    /// Claims `claim`'s tick again after a claim whose call failed: the store may have
    /// committed that claim although its caller saw an error (a connection broken after
    /// the commit, an answer later than the store timeout). `true` when the ledger holds the
    /// tick for this claim after this call (its instance and `claimed_at`), by this call's
    /// insert or by that earlier one; `false` when another claim holds it, of another
    /// instance or of another fire of this one. Instance names are new at each start.
    async fn claim_tick_again(&self, claim: &TickClaim) -> Result<bool, Error>;

    /// Claims many ticks as [`Store::claim_tick`] claims one: for each claim, in order,
    /// `true` if this call made it (of two equal claims in one call, the first). The
    /// scheduler sends the ticks due together in one call, so a store that can write them
    /// in one statement should; this default claims them one by one.
    async fn claim_ticks(&self, claims: &[TickClaim]) -> Result<Vec<bool>, Error> {
        let mut claimed = Vec::with_capacity(claims.len());
        for claim in claims {
            claimed.push(self.claim_tick(claim).await?);
        }
        Ok(claimed)
    }

    /// The queued and running runs started by any of `schedules` (a tick, or a custom
    /// strategy's send), at most [`UNFINISHED_PER_SCHEDULE`] of each schedule, its newest,
    /// newest first: what the overlap policies of ticks due together look at, in one call.
    /// The default asks for each schedule's own.
    async fn unfinished_of_schedules(&self, schedules: &[String]) -> Result<Vec<RunRecord>, Error> {
        let mut runs = Vec::new();
        for schedule in schedules {
            let filter = RunFilter::default()
                .schedule(schedule.clone())
                .unfinished()
                .limit(UNFINISHED_PER_SCHEDULE);
            runs.extend(self.list_runs(&filter).await?);
        }
        runs.sort_by_key(|run| std::cmp::Reverse(run.id));
        Ok(runs)
    }

    /// The latest claimed tick of a schedule, for catching up after downtime.
    async fn last_tick(&self, schedule: &str) -> Result<Option<Timestamp>, Error>;

    /// Ids of the instances whose lease is live at `now` and whose last heartbeat came at
    /// or after `seen_since`, sorted. Schedules spread their ticks over these: an
    /// instance that stopped beating drops out of the spread long before its lease (which
    /// keeps its runs from being abandoned) runs out.
    async fn live_instances(&self, now: Timestamp, seen_since: Timestamp) -> Result<Vec<String>, Error>;

    /// Every instance's last lease, live or run out, by id: what the dashboard shows of
    /// the cluster.
    async fn instances(&self) -> Result<Vec<InstanceLease>, Error>;

    /// The runs that finished at or after `since`, counted by status in buckets of
    /// `bucket_ms` milliseconds of their finish time (each bucket starting at a multiple
    /// of `bucket_ms` since 1970), oldest bucket first. Succeeded runs that were not kept
    /// count too ([`Store::count_forgotten`]), by the minute they ended in, from the minute
    /// `since` falls in: with buckets of whole minutes, each in the right one.
    async fn run_counts(&self, since: Timestamp, bucket_ms: i64) -> Result<Vec<RunCount>, Error>;

    /// Checks that the store is still the one opened: for SQLite, that the file was not
    /// deleted or replaced under the running instance. Called with every heartbeat.
    async fn verify(&self) -> Result<(), Error> {
        Ok(())
    }

    /// Records a custom strategy's `send_all`, for every other instance to pick up.
    async fn broadcast(&self, broadcast: &Broadcast) -> Result<(), Error>;

    /// Broadcasts sent at or after `since`, oldest first.
    async fn broadcasts_since(&self, since: Timestamp) -> Result<Vec<Broadcast>, Error>;

    /// Writes `run` (status `queued`) as a durable run waiting as `job` says, in one
    /// statement: it is committed when this returns. With a key, a queued or running run of
    /// the same task and key wins (the database's unique index decides, never a read
    /// before the write) and its id comes back instead.
    async fn enqueue(&self, run: &RunRecord, job: &Job) -> Result<Enqueued, Error>;

    /// Claims `claim`'s tick as [`Store::claim_tick`] does and writes `run` as a durable
    /// run waiting as `job` says (its key ignored: a tick's run joins no other), in one
    /// transaction: both or neither. `true` when this call claimed the tick and the run is
    /// committed, `false` when the tick was claimed before and nothing was written. A
    /// durable tick goes through here, so that an instance that dies between the claim
    /// and the run cannot leave a tick claimed and never run.
    async fn claim_tick_and_enqueue(
        &self,
        claim: &TickClaim,
        run: &RunRecord,
        job: &Job,
    ) -> Result<bool, Error>;

    /// Claims for `instance` at most `limit` durable runs of `tasks` that are due at `now`,
    /// highest priority first, then earliest `run_at`, then oldest: each is held there
    /// under a new fence and comes back `running` there (the store says so once the
    /// instance writes the run's start). Concurrent claimers on any number of
    /// instances never get the same run, and never take a task past its limit of running
    /// runs across the cluster.
    async fn claim(
        &self,
        instance: &str,
        tasks: &[ClaimTask],
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Claimed>, Error>;

    /// Gives back to the queue the runs that `instance`'s claim at `now` (its
    /// [`Store::claim`]'s `now`) took of `tasks`, for a claim whose answer never came: the
    /// store may have committed it all the same, its runs then held by the instance and
    /// executed by none. An instance gives each of its claims a `now` of its own. Each run
    /// is due again as it was queued, under a new fence, its claim not counted as an
    /// attempt. Returns how many went back; none for a claim that was not committed.
    async fn release_claim(&self, instance: &str, tasks: &[ClaimTask], now: Timestamp) -> Result<u64, Error>;

    /// Writes the state of a claimed run (progress, its end) if `fence` is still the run's;
    /// `false`, writing nothing, when the attempt lost its claim.
    async fn put_claimed(&self, run: &RunRecord, fence: i64) -> Result<bool, Error>;

    /// [`Store::put_claimed`] for several runs, in one transaction where the store has
    /// them: one answer per write, in order.
    async fn put_claimed_many(&self, runs: &[(RunRecord, i64)]) -> Result<Vec<bool>, Error> {
        let mut written = Vec::with_capacity(runs.len());
        for (run, fence) in runs {
            written.push(self.put_claimed(run, *fence).await?);
        }
        Ok(written)
    }

    /// Ends claimed runs that succeeded and whose task keeps no succeeded runs
    /// (`Task::keep_succeeded`): each run's job is deleted, and no record written, if its
    /// fence (the `i64`) is still the run's. One answer per run, in order: `false`,
    /// deleting nothing, when the attempt lost its claim. One transaction where the store
    /// has them.
    async fn forget_claimed_many(&self, runs: &[(RunId, i64)]) -> Result<Vec<bool>, Error>;

    /// Adds `counts` of succeeded runs not kept ([`Store::forget_claimed_many`]) to those
    /// `writer` (an instance) counted before, as [`Store::run_counts`] reads them. Each
    /// instance writes rows of its own, so that two never wait for each other's row.
    async fn count_forgotten(&self, writer: &str, counts: &[ForgottenCount]) -> Result<(), Error>;

    /// How many succeeded runs of `task` that were not kept ([`Store::count_forgotten`])
    /// ended since the minute `since` falls in.
    async fn forgotten_runs(&self, task: &str, since: Timestamp) -> Result<u64, Error>;

    /// Ends a claimed attempt that will be retried: writes `run` (status `queued`, the
    /// failed attempt among its attempts) due again at `run_at`, if `fence` is still the
    /// run's; the claim ends with it. `false`, writing nothing, when the attempt lost its
    /// claim.
    async fn requeue_claimed(&self, run: &RunRecord, fence: i64, run_at: Timestamp) -> Result<bool, Error>;

    /// Puts a finished run back in the queue as a durable run waiting as `job` says (its
    /// key aside: the run keeps the key it had): `run` is its next state, `queued`. Only
    /// if the stored run is still `finished_as`; `false`, writing nothing, when it is not
    /// or when another run of the task holds its key.
    async fn requeue(&self, run: &RunRecord, job: &Job, finished_as: RunStatus) -> Result<bool, Error>;

    /// Asks for a run to be cancelled, from any instance: a queued durable run ends
    /// `cancelled` at once; a run queued or running on an instance is flagged for that
    /// instance to cancel ([`Store::cancel_requests`]). `None` for an unknown run.
    async fn request_cancel(&self, id: RunId, now: Timestamp) -> Result<Option<CancelRequest>, Error>;

    /// The runs queued or running on `instance` that someone asked to cancel.
    async fn cancel_requests(&self, instance: &str) -> Result<Vec<RunId>, Error>;

    /// Stores a schedule's pause (or resume) for every instance, restarts included.
    async fn set_schedule_paused(&self, pause: &SchedulePause) -> Result<(), Error>;

    /// Every stored pause or resume, by schedule name.
    async fn schedule_pauses(&self) -> Result<Vec<SchedulePause>, Error>;

    /// Wake-ups the database pushes to this instance as they happen (PostgreSQL's
    /// LISTEN/NOTIFY), so that a queued run starts, and a cancel lands, without waiting
    /// for a poll. `None` for a store without them: the polls alone then.
    fn notices(&self) -> Option<tokio::sync::mpsc::Receiver<Notice>> {
        None
    }

    /// Rescues the running durable runs of instances without a live lease at `now`: each
    /// goes back to the queue as its next attempt, or ends `abandoned` when it had its
    /// last (`cancelled` when a cancel was asked for); either way its claim's fence moves
    /// on, so the lost attempt can write no more. Each run is changed only if its fence is
    /// still the lost claim's, so instances sweeping at once rescue it once. Returns the
    /// runs queued again and the runs ended.
    async fn requeue_orphans(&self, now: Timestamp) -> Result<(Vec<RunId>, Vec<RunId>), Error>;
}

/// What the database pushes to instances ([`Store::notices`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A durable run was queued (it may be due later).
    Queued,
    /// Someone asked to cancel `run`, which `instance` executes.
    Cancel {
        /// The instance running it.
        instance: String,
        /// The run.
        run: RunId,
    },
}

/// A custom strategy's `send_all`: every live instance runs the schedule's job once with
/// these arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Broadcast {
    /// Unique per broadcast (a UUID); instances remember the ones they ran.
    pub id: String,
    /// The schedule whose strategy sent it.
    pub schedule: String,
    /// The arguments sent.
    pub args: serde_json::Value,
    /// The sending instance, which runs its share at once.
    pub origin: String,
    /// When it was sent.
    pub sent_at: Timestamp,
}

/// One claim in the tick ledger.
#[derive(Debug, Clone, PartialEq)]
pub struct TickClaim {
    /// The schedule claimed.
    pub schedule: String,
    /// The tick claimed.
    pub tick: Timestamp,
    /// `""` for a tick that runs once in the cluster (`worker`), the instance id for one
    /// that runs once per instance (`all`).
    pub target: String,
    /// The claiming instance.
    pub instance: String,
    /// When the claim was made. With the instance, it tells this claim from another of
    /// the same instance (a platform's fire of a tick its timer fired too) drawn up at
    /// another millisecond, so that a claim made again finds only its own (see
    /// [`Store::claim_tick_again`]).
    pub claimed_at: Timestamp,
}

/// How many runs ended in one status within one bucket of time (see
/// [`Store::run_counts`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunCount {
    /// The bucket's start.
    pub bucket: Timestamp,
    /// How those runs ended.
    pub status: RunStatus,
    /// How many.
    pub count: u64,
}

/// An instance's claim to be alive until `lease_until`.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceLease {
    /// The instance id.
    pub instance: String,
    /// The host it runs on.
    pub hostname: String,
    /// Its process id.
    pub pid: u32,
    /// When it started.
    pub started_at: Timestamp,
    /// When this heartbeat was sent.
    pub heartbeat_at: Timestamp,
    /// Until when it counts as alive without another heartbeat.
    pub lease_until: Timestamp,
}

/// Where run history is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// No history: runs are not recorded (fastest).
    Disabled,
    /// History in memory: lost with the process.
    Memory,
    /// An SQLite file, created with its folder when missing; its commits reach the disk
    /// as `TASKYARD_SQLITE_SYNCHRONOUS` says (see [`SqliteSync`]).
    Sqlite(PathBuf),
    /// An SQLite file whose commits reach the disk as the [`SqliteSync`] says, whatever
    /// the environment says: `sqlite://PATH?synchronous=full` in a URL.
    SqliteWith(PathBuf, SqliteSync),
    /// A `postgres://` URL.
    Postgres(String),
}

impl StoreConfig {
    /// `TASKYARD_DATABASE_URL` if set (PostgreSQL, or `sqlite://PATH`), otherwise
    /// `taskyard.db` in `TASKYARD_DATA_DIR` (default `./.taskyard`).
    pub fn from_env() -> Result<StoreConfig, Error> {
        match std::env::var("TASKYARD_DATABASE_URL") {
            Ok(url) if !url.trim().is_empty() => StoreConfig::from_url(url.trim()),
            _ => Ok(StoreConfig::Sqlite(crate::config::data_dir().join("taskyard.db"))),
        }
    }

    /// Parses `postgres://…`, `postgresql://…`, `sqlite://PATH` (with
    /// `?synchronous=normal|full` if wanted, see [`SqliteSync`]) or `memory:`.
    pub fn from_url(url: &str) -> Result<StoreConfig, Error> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(StoreConfig::Postgres(url.to_owned()))
        } else if let Some(rest) = url.strip_prefix("sqlite://") {
            match rest.split_once('?') {
                None => Ok(StoreConfig::Sqlite(PathBuf::from(rest))),
                Some((path, query)) => Ok(StoreConfig::SqliteWith(PathBuf::from(path), sqlite_query(query)?)),
            }
        } else if url == "memory:" {
            Ok(StoreConfig::Memory)
        } else {
            // Only the scheme is repeated: the rest may hold a password.
            let scheme = url.split_once("://").map_or("(none)", |(scheme, _)| scheme);
            Err(Error::Env {
                var: "TASKYARD_DATABASE_URL",
                message: format!(
                    "TASKYARD_DATABASE_URL has the scheme `{scheme}`, which is not supported: use postgres://user@host/db, sqlite://path/to/file.db or memory:"
                ),
            })
        }
    }

    /// Opens (and migrates) the configured store; `None` when history is disabled.
    pub async fn open(&self) -> Result<Option<Arc<dyn Store>>, Error> {
        Ok(match self {
            StoreConfig::Disabled => None,
            StoreConfig::Memory => Some(Arc::new(MemoryStore::new())),
            StoreConfig::Sqlite(path) | StoreConfig::SqliteWith(path, _) => {
                Some(Arc::new(SqliteStore::open_with(path, self.sqlite_sync()?).await?))
            }
            StoreConfig::Postgres(url) => Some(Arc::new(PostgresStore::connect(url).await?)),
        })
    }
}

impl StoreConfig {
    /// How an SQLite store's commits reach the disk: as said, or as the environment says.
    fn sqlite_sync(&self) -> Result<SqliteSync, Error> {
        match self {
            StoreConfig::SqliteWith(_, sync) => Ok(*sync),
            _ => SqliteSync::from_env(),
        }
    }
}

/// The setting an `sqlite://PATH?…` URL's query names: `synchronous=normal|full`, and
/// nothing else.
fn sqlite_query(query: &str) -> Result<SqliteSync, Error> {
    let refused = |message: String| Error::Env {
        var: "TASKYARD_DATABASE_URL",
        message,
    };
    let mut sync = None;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        if key != "synchronous" {
            return Err(refused(format!(
                "the sqlite:// URL's parameter `{key}` is not a setting; the one it takes is `synchronous=normal` or `synchronous=full`"
            )));
        }
        sync = Some(SqliteSync::named(&value).ok_or_else(|| {
            refused(format!(
                "the sqlite:// URL's `synchronous={value}` is not a setting; use `synchronous=normal` (commits synced at checkpoints) or `synchronous=full` (each commit synced)"
            ))
        })?);
    }
    sync.ok_or_else(|| {
        refused("the sqlite:// URL has a `?` without a setting; use `?synchronous=full` or no `?`".to_owned())
    })
}

pub(crate) fn sqlx_error(backend: &'static str) -> impl Fn(sqlx::Error) -> Error {
    move |source| Error::Store {
        backend,
        source: Arc::new(source),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_sqlite_url_may_say_how_commits_are_synced() {
        let config = StoreConfig::from_url("sqlite://data/app.db?synchronous=full").expect("a URL");
        assert_eq!(
            config,
            StoreConfig::SqliteWith(PathBuf::from("data/app.db"), SqliteSync::Full)
        );
        assert_eq!(config.sqlite_sync().ok(), Some(SqliteSync::Full));
        let config = StoreConfig::from_url("sqlite://app.db?synchronous=NORMAL").expect("a URL");
        assert_eq!(config.sqlite_sync().ok(), Some(SqliteSync::Normal));
        assert_eq!(
            StoreConfig::from_url("sqlite://app.db").ok(),
            Some(StoreConfig::Sqlite(PathBuf::from("app.db")))
        );
        for (url, named) in [
            ("sqlite://app.db?synchronous=extra", "`synchronous=extra`"),
            ("sqlite://app.db?mode=ro", "parameter `mode`"),
            ("sqlite://app.db?", "without a setting"),
        ] {
            let error = StoreConfig::from_url(url).expect_err("refused");
            let message = error.to_string();
            assert!(
                message.contains(named) && message.contains("synchronous=full"),
                "{url}: {message}"
            );
        }
    }
}
