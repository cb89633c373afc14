//! A durable run stops where its claim is lost, so that it never runs on two instances at
//! once: an instance cut off from PostgreSQL (through a loopback relay that drops every
//! connection, as a network partition would) for longer than its lease stops the runs it
//! claimed before a live instance takes them over, and gives them back to the queue itself
//! when nobody did; an attempt whose write the store refuses (another claim holds the run)
//! stops at once; a claim whose connection breaks after the server committed it gives the
//! runs it took back to the queue.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::relay::Relay;
use common::{Backend, durable_backends};
use jiff::Timestamp;
use serde_json::json;
use taskyard::store::Job;
use taskyard::{
    App, Retry, RunId, RunRecord, RunStatus, RunningApp, StoreConfig, Task, TaskContext, TaskError, Trigger,
};

/// The instances' lease: a cut-off instance's runs are taken over after this.
const LEASE: Duration = Duration::from_secs(2);

/// How long an attempt of the test's task runs when nothing stops it.
const BODY: Duration = Duration::from_secs(4);

/// One note of a running attempt: its instance, its attempt, and when.
type Beat = (&'static str, u32, Timestamp);

/// Every beat of every attempt, from every instance in this process.
#[derive(Clone, Default)]
struct Beats(Arc<Mutex<Vec<Beat>>>);

impl Beats {
    /// A durable task whose attempts beat every 50 ms (reporting progress, so that the
    /// attempt writes to the store as it goes) for [`BODY`], then answer with their
    /// instance.
    fn task(&self, instance: &'static str) -> Task {
        let beats = self.clone();
        Task::new(move |cx: TaskContext| {
            let beats = beats.clone();
            async move {
                let began = Instant::now();
                while began.elapsed() < BODY {
                    beats
                        .0
                        .lock()
                        .expect("beats")
                        .push((instance, cx.attempt(), Timestamp::now()));
                    cx.progress(began.elapsed().as_secs_f64() / BODY.as_secs_f64(), "");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Ok::<_, TaskError>(json!({ "by": instance }))
            }
        })
        .retry(Retry::exponential(3).initial(Duration::from_millis(50)))
        .durable()
    }

    fn of(&self, instance: &str) -> Vec<Beat> {
        let beats = self.0.lock().expect("beats");
        beats.iter().filter(|beat| beat.0 == instance).cloned().collect()
    }
}

async fn app(store: StoreConfig, task: Task) -> RunningApp {
    App::new()
        .store(store)
        .store_timeout(Duration::from_millis(500))
        .lease_ttl(LEASE)
        .shutdown_grace(Duration::from_millis(300))
        .schedule_log(None)
        .task("long", task)
        .start()
        .await
        .expect("app starts")
}

/// Waits (at most `limit`) until `check` holds.
async fn eventually(what: &str, limit: Duration, mut check: impl AsyncFnMut() -> bool) {
    let began = Instant::now();
    while !check().await {
        assert!(began.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The run as `app` reads it from the store, once it has ended (at most 20 s).
async fn ended(app: &RunningApp, id: RunId) -> RunRecord {
    let mut last = None;
    eventually("the run ends", Duration::from_secs(20), async || {
        last = app.runtime().get_run(id).await.ok().flatten();
        last.as_ref().is_some_and(|run| run.status.is_final())
    })
    .await;
    last.expect("read")
}

/// Instance `a`, on `backend`'s server through a relay of its own.
async fn behind_a_relay(backend: &Backend, beats: &Beats) -> (Relay, RunningApp) {
    let relay = Relay::before(&backend.url).await;
    let url = relay.through(&backend.url);
    (relay, app(StoreConfig::Postgres(url), beats.task("a")).await)
}

/// Enqueues a run of the test's task on `a`, and waits until it beats there.
async fn beating(a: &RunningApp, beats: &Beats) -> RunId {
    let id = a.runtime().enqueue("long", json!({})).await.expect("enqueue");
    eventually("the run beats on a", Duration::from_secs(5), async || {
        !beats.of("a").is_empty()
    })
    .await;
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_cut_off_past_its_lease_stops_its_runs_before_a_live_one_takes_them_over() {
    let Some(backend) = common::postgres().await else {
        return;
    };
    let beats = Beats::default();
    let (relay, a) = behind_a_relay(&backend, &beats).await;
    let id = beating(&a, &beats).await;
    // Only now: the run is a's.
    let b = app(backend.config(), beats.task("b")).await;
    relay.cut(true);
    let cut_at = Timestamp::now();
    let run = ended(&b, id).await;
    relay.cut(false);

    let (on_a, on_b) = (beats.of("a"), beats.of("b"));
    let a_last = on_a.last().expect("a beat").2;
    let b_first = on_b.first().expect("b took the run over").2;
    assert!(
        a_last < b_first,
        "a's attempt beat at {a_last}, after b's began at {b_first}: the run ran on both at once"
    );
    assert!(
        a_last.duration_since(cut_at) < jiff::SignedDuration::try_from(LEASE).expect("lease"),
        "a's attempt went on until {a_last}, more than the lease after the cut at {cut_at}"
    );
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    assert_eq!(run.result, Some(json!({ "by": "b" })), "{run:?}");
    assert_eq!(run.attempt, 2, "{run:?}");
    assert_eq!(run.attempts[0].status, RunStatus::Abandoned, "{run:?}");
    assert!(
        on_b.iter().all(|beat| beat.1 == 2),
        "b ran the next attempt: {on_b:?}"
    );

    // Back in touch, a renews its lease and claims again (alone now).
    b.shutdown().await;
    let again = a
        .runtime()
        .enqueue("long", json!({ "again": true }))
        .await
        .expect("enqueue");
    eventually("a claims again", Duration::from_secs(10), async || {
        a.runtime()
            .get_run(again)
            .await
            .ok()
            .flatten()
            .is_some_and(|run| run.status != RunStatus::Queued)
    })
    .await;
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_instance_cut_off_past_its_lease_runs_its_run_again_once_back() {
    let Some(backend) = common::postgres().await else {
        return;
    };
    let beats = Beats::default();
    let (relay, a) = behind_a_relay(&backend, &beats).await;
    let id = beating(&a, &beats).await;
    relay.cut(true);
    // Past the lease: the attempt stops here, and nobody else is there to take the run.
    tokio::time::sleep(LEASE + Duration::from_secs(1)).await;
    let first = beats.of("a");
    relay.cut(false);
    let back_at = Timestamp::now();
    let run = ended(&a, id).await;

    let stopped = first.last().expect("a beat").2;
    assert!(stopped < back_at, "the first attempt stopped while cut off");
    let on_a = beats.of("a");
    let second: Vec<_> = on_a.iter().filter(|beat| beat.1 == 2).collect();
    assert!(
        second.first().is_some_and(|beat| beat.2 > back_at),
        "the second attempt began once the store was back: {on_a:?}"
    );
    assert!(
        on_a.iter()
            .filter(|beat| beat.1 == 1)
            .all(|beat| beat.2 <= stopped),
        "the first attempt never went on after it stopped: {on_a:?}"
    );
    // Not written `cancelled` by the stopped attempt: it ran again and succeeded.
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    assert_eq!(run.attempt, 2, "{run:?}");
    assert_eq!(run.attempts[0].status, RunStatus::Abandoned, "{run:?}");
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_whose_write_the_store_refuses_stops_at_once() {
    for backend in durable_backends().await {
        let name = backend.name;
        let beats = Beats::default();
        let a = app(backend.config(), beats.task("a")).await;
        let id = beating(&a, &beats).await;
        // Another claim takes the run, as an instance that took it over would; that
        // instance is gone at once (it has no lease), so the run is queued again.
        let taken_at = Timestamp::now();
        take_over(&backend, id).await;
        let run = ended(&a, id).await;
        let first: Vec<_> = beats.of("a").into_iter().filter(|beat| beat.1 == 1).collect();
        let last = first.last().expect("a beat").2;
        assert!(
            last.duration_since(taken_at) < jiff::SignedDuration::from_secs(1),
            "{name}: the first attempt went on until {last}, taken over at {taken_at}"
        );
        // Its end was not written over the other claim's: the run went on as attempt 2.
        assert_eq!(run.status, RunStatus::Succeeded, "{name}: {run:?}");
        assert_eq!(run.attempt, 2, "{name}: {run:?}");
        assert_eq!(run.attempts[0].status, RunStatus::Abandoned, "{name}: {run:?}");
        a.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_whose_connection_breaks_after_its_commit_gives_its_runs_back() {
    let Some(backend) = common::postgres().await else {
        return;
    };
    // Runs queued before the instance starts, so that its first claim takes them.
    let store = backend.open().await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let now = Timestamp::now();
        let run = RunRecord::queued("quick".into(), json!({}), Trigger::Manual, "enqueuer".into(), now);
        let job = Job {
            run_at: now,
            priority: 0,
            key: None,
            max_attempts: 3,
        };
        store.enqueue(&run, &job).await.expect("enqueue");
        ids.push(run.id);
    }
    let relay = Relay::before(&backend.url).await;
    relay.break_after(b"taskyard_claim");
    let quick = Task::new(|_cx: TaskContext| async { Ok::<_, TaskError>(json!("done")) }).durable();
    let a = App::new()
        .store(StoreConfig::Postgres(relay.through(&backend.url)))
        .store_timeout(Duration::from_millis(500))
        .lease_ttl(LEASE)
        .schedule_log(None)
        .task("quick", quick)
        .start()
        .await
        .expect("app starts");
    // The instance lives on and renews its lease: only giving the runs back lets them run.
    for id in ids {
        let run = ended(&a, id).await;
        assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
        assert_eq!(run.attempt, 1, "not counted as an attempt: {run:?}");
    }
    assert_eq!(relay.broken(), 1, "the claim's connection broke");
    a.shutdown().await;
}

/// Moves the fence of `id`'s job on, as another instance's claim does.
async fn take_over(backend: &Backend, id: RunId) {
    let update = "UPDATE taskyard_jobs SET fence = fence + 1, claimed_by = 'elsewhere' WHERE id = $1";
    let changed = if backend.name == "postgres" {
        let pool = sqlx::PgPool::connect(&backend.url).await.expect("connect");
        let done = sqlx::query(update).bind(id.to_string()).execute(&pool).await;
        pool.close().await;
        done.expect("take over").rows_affected()
    } else {
        let pool = sqlx::SqlitePool::connect(&backend.url).await.expect("connect");
        let done = sqlx::query(update).bind(id.to_string()).execute(&pool).await;
        pool.close().await;
        done.expect("take over").rows_affected()
    };
    assert_eq!(changed, 1, "{}: the run's job", backend.name);
}
