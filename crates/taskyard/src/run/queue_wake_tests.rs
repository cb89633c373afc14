//! Claims that take their time, through a store whose claim, once armed, reads the queue
//! and then waits to answer: a run queued while a claim is out is claimed when that claim
//! ends, not at the next poll; a run claimed while the instance's lease ran out never
//! starts; a claim answered after the store timeout gives its runs back to the queue, and
//! so does one that answers an error after its commit, or before it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use jiff::Timestamp;
use serde_json::json;
use tokio::sync::{Notify, mpsc, watch};

use crate::history::{RunFilter, RunId, RunRecord, RunStatus};
use crate::run::registry::{Registry, TaskSource};
use crate::run::{Runtime, RuntimeParts};
use crate::store::{
    Broadcast, CancelRequest, ClaimTask, Claimed, Enqueued, ForgottenCount, InstanceLease, Job, MemoryStore,
    Recorder, RunCount, SchedulePause, Store, StoreHealth, TickClaim,
};
use crate::{Error, Task, TaskContext, TaskError};

/// The memory store, but its next claim once armed answers only when released, and its
/// next claim once told to lose its answer answers an error: after its commit, or before
/// a commit that comes 100 ms later; it refuses as many give-backs of a lost claim's runs
/// as it is told.
#[derive(Default)]
struct HeldClaim {
    store: Arc<MemoryStore>,
    armed: AtomicBool,
    holding: Notify,
    release: Notify,
    lose_answer: std::sync::Mutex<Option<Commit>>,
    /// Give-backs of a lost claim's runs to refuse before one is taken.
    refused_releases: std::sync::atomic::AtomicU32,
}

/// When a claim whose answer is lost commits.
#[derive(Clone, Copy)]
enum Commit {
    BeforeItsError,
    AfterItsError,
}

impl HeldClaim {
    /// Starts `runtime`'s claimer, and returns once its first claim has read the queue
    /// and is held.
    async fn hold_first_claim(&self, runtime: &Runtime) {
        self.armed.store(true, Ordering::SeqCst);
        runtime.start_queue();
        tokio::time::timeout(Duration::from_secs(5), self.holding.notified())
            .await
            .expect("the claimer's first claim");
    }
}

#[async_trait]
impl Store for HeldClaim {
    fn backend(&self) -> &'static str {
        "memory"
    }
    async fn claim(
        &self,
        instance: &str,
        tasks: &[ClaimTask],
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Claimed>, Error> {
        let lose = self.lose_answer.lock().expect("the answer to lose").take();
        let lost = Err(Error::StoreUnavailable {
            backend: "memory",
            message: "the connection broke".into(),
        });
        match lose {
            Some(Commit::BeforeItsError) => {
                self.store.claim(instance, tasks, now, limit).await?;
                return lost;
            }
            Some(Commit::AfterItsError) => {
                let (store, instance, tasks) = (self.store.clone(), instance.to_owned(), tasks.to_vec());
                drop(tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    store.claim(&instance, &tasks, now, limit).await
                }));
                return lost;
            }
            None => {}
        }
        let claimed = self.store.claim(instance, tasks, now, limit).await;
        if self.armed.swap(false, Ordering::SeqCst) {
            self.holding.notify_one();
            self.release.notified().await;
        }
        claimed
    }
    async fn put_runs(&self, runs: &[RunRecord]) -> Result<(), Error> {
        self.store.put_runs(runs).await
    }
    async fn get_run(&self, id: RunId) -> Result<Option<RunRecord>, Error> {
        self.store.get_run(id).await
    }
    async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, Error> {
        self.store.list_runs(filter).await
    }
    async fn heartbeat(&self, lease: &InstanceLease) -> Result<(), Error> {
        self.store.heartbeat(lease).await
    }
    async fn release_instance(&self, instance: &str) -> Result<(), Error> {
        self.store.release_instance(instance).await
    }
    async fn mark_abandoned(&self, now: Timestamp) -> Result<Vec<RunId>, Error> {
        self.store.mark_abandoned(now).await
    }
    async fn prune_runs(&self, finished_before: Timestamp) -> Result<u64, Error> {
        self.store.prune_runs(finished_before).await
    }
    async fn claim_tick(&self, claim: &TickClaim) -> Result<bool, Error> {
        self.store.claim_tick(claim).await
    }
    async fn claim_tick_again(&self, claim: &TickClaim) -> Result<bool, Error> {
        self.store.claim_tick_again(claim).await
    }
    async fn last_tick(&self, schedule: &str) -> Result<Option<Timestamp>, Error> {
        self.store.last_tick(schedule).await
    }
    async fn live_instances(&self, now: Timestamp, seen_since: Timestamp) -> Result<Vec<String>, Error> {
        self.store.live_instances(now, seen_since).await
    }
    async fn instances(&self) -> Result<Vec<InstanceLease>, Error> {
        self.store.instances().await
    }
    async fn run_counts(&self, since: Timestamp, bucket_ms: i64) -> Result<Vec<RunCount>, Error> {
        self.store.run_counts(since, bucket_ms).await
    }
    async fn broadcast(&self, broadcast: &Broadcast) -> Result<(), Error> {
        self.store.broadcast(broadcast).await
    }
    async fn broadcasts_since(&self, since: Timestamp) -> Result<Vec<Broadcast>, Error> {
        self.store.broadcasts_since(since).await
    }
    async fn enqueue(&self, run: &RunRecord, job: &Job) -> Result<Enqueued, Error> {
        self.store.enqueue(run, job).await
    }
    async fn claim_tick_and_enqueue(
        &self,
        claim: &TickClaim,
        run: &RunRecord,
        job: &Job,
    ) -> Result<bool, Error> {
        self.store.claim_tick_and_enqueue(claim, run, job).await
    }
    async fn release_claim(&self, instance: &str, tasks: &[ClaimTask], now: Timestamp) -> Result<u64, Error> {
        let refused = self
            .refused_releases
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| left.checked_sub(1));
        if refused.is_ok() {
            return Err(Error::StoreUnavailable {
                backend: "memory",
                message: "the store is down".into(),
            });
        }
        self.store.release_claim(instance, tasks, now).await
    }
    async fn put_claimed(&self, run: &RunRecord, fence: i64) -> Result<bool, Error> {
        self.store.put_claimed(run, fence).await
    }

    async fn forget_claimed_many(&self, runs: &[(RunId, i64)]) -> Result<Vec<bool>, Error> {
        self.store.forget_claimed_many(runs).await
    }

    async fn count_forgotten(&self, writer: &str, counts: &[ForgottenCount]) -> Result<(), Error> {
        self.store.count_forgotten(writer, counts).await
    }

    async fn forgotten_runs(&self, task: &str, since: Timestamp) -> Result<u64, Error> {
        self.store.forgotten_runs(task, since).await
    }

    async fn requeue_claimed(&self, run: &RunRecord, fence: i64, run_at: Timestamp) -> Result<bool, Error> {
        self.store.requeue_claimed(run, fence, run_at).await
    }
    async fn requeue(&self, run: &RunRecord, job: &Job, finished_as: RunStatus) -> Result<bool, Error> {
        self.store.requeue(run, job, finished_as).await
    }
    async fn request_cancel(&self, id: RunId, now: Timestamp) -> Result<Option<CancelRequest>, Error> {
        self.store.request_cancel(id, now).await
    }
    async fn cancel_requests(&self, instance: &str) -> Result<Vec<RunId>, Error> {
        self.store.cancel_requests(instance).await
    }
    async fn set_schedule_paused(&self, pause: &SchedulePause) -> Result<(), Error> {
        self.store.set_schedule_paused(pause).await
    }
    async fn schedule_pauses(&self) -> Result<Vec<SchedulePause>, Error> {
        self.store.schedule_pauses().await
    }
    async fn requeue_orphans(&self, now: Timestamp) -> Result<(Vec<RunId>, Vec<RunId>), Error> {
        self.store.requeue_orphans(now).await
    }
}

/// A runtime on `held` whose store timeout is `timeout` and whose lease is told by
/// `lease`, with one task, `mail`, whose runs say when they start.
fn runtime_on(
    held: &Arc<HeldClaim>,
    timeout: Duration,
    lease: Option<watch::Receiver<Timestamp>>,
) -> (Runtime, mpsc::UnboundedReceiver<Instant>) {
    let store: Arc<dyn Store> = held.clone();
    let health = Arc::new(StoreHealth::default());
    let (recorder, _writers) = Recorder::spawn(store.clone(), health.clone(), timeout, "i1");
    let (started, starts) = mpsc::unbounded_channel::<Instant>();
    let task = Task::new(move |_cx: TaskContext| {
        let _ = started.send(Instant::now());
        async { Ok::<_, TaskError>(json!(null)) }
    });
    let mut registry = Registry::new();
    registry
        .add("mail", task, TaskSource::File("src/tasks/mail.rs".into()))
        .expect("a task");
    let runtime = Runtime::new(RuntimeParts {
        registry,
        state: Default::default(),
        instance: "a".into(),
        store: Some(store),
        recorder: Some(recorder),
        health,
        lease,
    });
    (runtime, starts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_queued_while_a_claim_is_out_is_claimed_when_it_ends() {
    let held = Arc::new(HeldClaim::default());
    let (runtime, mut starts) = runtime_on(&held, Duration::from_secs(5), None);
    // The claimer's first claim takes all its room, finds the queue empty, and is held.
    held.hold_first_claim(&runtime).await;
    runtime.enqueue("mail", json!({})).await.expect("enqueued");
    // The wake-up came while the claim held the room: the claimer could not claim.
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(starts.try_recv().is_err(), "started before the claim ended");
    let released = Instant::now();
    held.release.notify_one();
    let start = tokio::time::timeout(Duration::from_secs(5), starts.recv())
        .await
        .expect("the run starts")
        .expect("a start");
    // The next poll comes 200 ms after the wake-up; the claim's end looks again at once.
    let waited = start.duration_since(released);
    assert!(
        waited < Duration::from_millis(120),
        "started {waited:?} after the claim ended"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_claimed_while_the_lease_ran_out_never_starts() {
    let held = Arc::new(HeldClaim::default());
    let store: Arc<dyn Store> = held.clone();
    // The lease keeper's word, told by hand: the claims hold for a minute.
    let (lease, clock) = watch::channel(Timestamp::now() + jiff::SignedDuration::from_mins(1));
    let (runtime, mut starts) = runtime_on(&held, Duration::from_secs(5), Some(clock));
    let id = runtime.enqueue("mail", json!({})).await.expect("enqueued");
    // The claim takes the run, and is held.
    held.hold_first_claim(&runtime).await;
    // Meanwhile the lease runs out: the runs this instance holds are stopped; the claimed
    // one is not among them yet.
    lease.send_replace(Timestamp::now());
    let began = Instant::now();
    while runtime.lapses() == 0 {
        assert!(
            began.elapsed() < Duration::from_secs(5),
            "the lease's end not seen"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    held.release.notify_one();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        starts.try_recv().is_err(),
        "the run started after the lease ran out"
    );
    // Nothing was written over its claim: it waits there for the rescue.
    let run = store.get_run(id).await.expect("read").expect("stored");
    assert_eq!(run.status, RunStatus::Running, "{run:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_answered_after_its_time_gives_its_runs_back_to_the_queue() {
    let held = Arc::new(HeldClaim::default());
    let store: Arc<dyn Store> = held.clone();
    // The store timeout, which bounds a claim's wait.
    let timeout = Duration::from_millis(200);
    let (runtime, mut starts) = runtime_on(&held, timeout, None);
    let id = runtime.enqueue("mail", json!({})).await.expect("enqueued");
    // The claim takes the run in the store, and its answer is held past the timeout.
    held.hold_first_claim(&runtime).await;
    tokio::time::sleep(timeout * 2).await;
    held.release.notify_one();
    // Given back, the run is claimed again and runs.
    tokio::time::timeout(Duration::from_secs(5), starts.recv())
        .await
        .expect("the run starts after all")
        .expect("a start");
    // Not counted as an attempt: the late claim never started it.
    assert_eq!(succeeded(&*store, id).await.attempt, 1);
}

/// Waits until run `id` has succeeded, and returns it.
async fn succeeded(store: &dyn Store, id: RunId) -> RunRecord {
    let began = Instant::now();
    loop {
        let run = store.get_run(id).await.expect("read").expect("stored");
        if run.status == RunStatus::Succeeded {
            return run;
        }
        assert!(began.elapsed() < Duration::from_secs(5), "{run:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A claim that answers an error, committed before or after it, under a store timeout of
/// `timeout`: the run it took is claimed again, runs within `within`, and succeeds as
/// its first attempt.
async fn a_lost_answer_gives_the_run_back(
    (commit, refused): (Commit, u32),
    timeout: Duration,
    within: Duration,
) {
    let held = Arc::new(HeldClaim::default());
    held.refused_releases.store(refused, Ordering::SeqCst);
    let store: Arc<dyn Store> = held.clone();
    let (runtime, mut starts) = runtime_on(&held, timeout, None);
    let id = runtime.enqueue("mail", json!({})).await.expect("enqueued");
    *held.lose_answer.lock().expect("the answer to lose") = Some(commit);
    let began = Instant::now();
    runtime.start_queue();
    tokio::time::timeout(within, starts.recv())
        .await
        .expect("the run starts after all")
        .expect("a start");
    assert!(began.elapsed() < within, "started after {:?}", began.elapsed());
    // Not counted as an attempt: the lost claim never started it.
    assert_eq!(succeeded(&*store, id).await.attempt, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_that_errs_after_its_commit_gives_its_runs_back_to_the_queue() {
    // Given back at once, and claimed again at the next poll: long before the store
    // timeout's second look.
    let timeout = Duration::from_secs(5);
    a_lost_answer_gives_the_run_back((Commit::BeforeItsError, 0), timeout, Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_committed_after_its_error_gives_its_runs_back_a_store_timeout_later() {
    // The first look finds nothing: the commit comes 100 ms after the error. The second
    // look, 300 ms after the first, finds the run.
    let timeout = Duration::from_millis(300);
    a_lost_answer_gives_the_run_back((Commit::AfterItsError, 0), timeout, Duration::from_secs(3)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_claims_runs_go_back_once_the_store_takes_them() {
    // The store refuses the first two give-backs; the third, two seconds later, is taken.
    let timeout = Duration::from_secs(5);
    a_lost_answer_gives_the_run_back((Commit::BeforeItsError, 2), timeout, Duration::from_secs(4)).await;
}
