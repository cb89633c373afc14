//! A tick whose claim's answer is lost still runs, once: the claim's connection breaks after
//! PostgreSQL committed it (through a loopback relay that lets the claim reach the server,
//! then closes the client's side), so the ledger holds the tick for this instance, no other
//! instance will run it, and this one must. A durable tick's claim, whose transaction the
//! broken connection rolls back, is made again with its run. A claim whose client vanished
//! in the middle of its transaction holds the tick for seconds, not for hours.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::records::{job, queued};
use common::relay::Relay;
use jiff::Timestamp;
use serde_json::Value;
use taskyard::schedule::{Overlap, Schedule};
use taskyard::store::{PostgresStore, Store, TickClaim};
use taskyard::{App, StoreConfig, Task, TaskContext, TaskError, Trigger};

/// The ticks whose runs began, in order.
#[derive(Clone, Default)]
struct Ran(Arc<Mutex<Vec<Timestamp>>>);

impl Ran {
    fn task(&self) -> Task {
        let ran = self.clone();
        Task::new(move |cx: TaskContext| {
            let ran = ran.clone();
            async move {
                if let Trigger::Schedule { scheduled_at, .. } = cx.trigger() {
                    ran.0.lock().expect("ran").push(*scheduled_at);
                }
                Ok::<_, TaskError>(Value::Null)
            }
        })
    }

    fn ticks(&self) -> Vec<i64> {
        let ran = self.0.lock().expect("ran");
        ran.iter().map(|tick| tick.as_millisecond()).collect()
    }
}

/// Ticks of a 200 ms schedule (durable or not; every tick runs, whatever runs before it)
/// on one instance whose first tick claim
/// breaks its connection once the claim reached the server: the ticks claimed in the
/// ledger, those whose runs began, and when the claim broke (in milliseconds).
async fn with_a_claim_broken(durable: bool) -> (Vec<i64>, Vec<i64>, i64) {
    let backend = common::postgres().await.expect("PostgreSQL");
    let relay = Relay::before(&backend.url).await;
    relay.break_after(b"INSERT INTO taskyard_ticks");
    let ran = Ran::default();
    let app = App::new()
        .store(StoreConfig::Postgres(relay.through(&backend.url)))
        .store_timeout(Duration::from_millis(500))
        .schedule_log(None)
        .task("beat", ran.task())
        .schedule(
            "beat",
            Schedule::worker()
                .interval("200ms")
                .overlap(Overlap::Allow)
                .durable(durable)
                .task("beat"),
        )
        .start()
        .await
        .expect("app starts");
    let began = Instant::now();
    while relay.broken() == 0 {
        assert!(
            began.elapsed() < Duration::from_secs(10),
            "no tick's claim went through the relay"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let broke_at = Timestamp::now().as_millisecond();
    // The broken connection's transaction holds its rows until the server sees it gone,
    // when the relay closes the server's side 2 s later: claims made again wait for it,
    // each for the store timeout, a second apart. Ticks claimed as the app stops may not
    // run (a durable run waits for the next instance): the last ones are left out below.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let pool = sqlx::PgPool::connect(&backend.url).await.expect("connect");
    let claimed = async || -> Vec<i64> {
        sqlx::query_scalar("SELECT tick FROM taskyard_ticks WHERE schedule = 'beat' ORDER BY tick")
            .fetch_all(&pool)
            .await
            .expect("the ledger")
    };
    let settled = claimed().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    app.shutdown().await;
    assert_eq!(relay.broken(), 1, "the claim's connection broke");
    let mut claimed = claimed().await;
    pool.close().await;
    let mut ran = ran.ticks();
    ran.sort_unstable();
    // Only the ticks claimed half a second before the end, whose runs had time to begin.
    let last = *settled.last().expect("ticks claimed");
    claimed.retain(|tick| *tick <= last);
    ran.retain(|tick| *tick <= last);
    (claimed, ran, broke_at)
}

/// Asserts that `claimed` holds every tick 200 ms apart, none left out, at least 3, from
/// the one whose claim broke at `broke_at` (the first claim made) on.
fn no_tick_missing(claimed: &[i64], broke_at: i64) {
    assert!(claimed.len() >= 3, "ticks claimed: {claimed:?}");
    assert!(
        claimed[0] <= broke_at,
        "the tick whose claim broke at {broke_at} is not in the ledger: {claimed:?}"
    );
    assert!(
        claimed.windows(2).all(|pair| pair[1] - pair[0] == 200),
        "a tick is missing from the ledger: {claimed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tick_whose_claim_commits_but_answers_an_error_runs_once() {
    if common::postgres().await.is_none() {
        return;
    }
    let (claimed, ran, broke_at) = with_a_claim_broken(false).await;
    no_tick_missing(&claimed, broke_at);
    assert_eq!(
        ran, claimed,
        "each tick in the ledger ran once here, the one whose claim's answer was lost too"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_tick_whose_claim_breaks_is_claimed_again_with_its_run() {
    if common::postgres().await.is_none() {
        return;
    }
    // The claim and its run are one transaction, which the broken connection rolls back:
    // claimed again, the tick and its run land, and nothing is missing.
    let (claimed, ran, broke_at) = with_a_claim_broken(true).await;
    no_tick_missing(&claimed, broke_at);
    assert_eq!(ran, claimed, "each tick in the ledger ran once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_whose_client_vanished_holds_its_tick_for_seconds_not_hours() {
    let Some(backend) = common::postgres().await else {
        return;
    };
    // The client of a durable tick's claim vanishes in the middle of its transaction, its
    // host lost: nothing closes the server's side of the connection (the relay keeps it
    // open, reading), so the server's session waits for the next statement, the tick's
    // ledger row locked, until TCP gives up on it. The store's sessions are ended by the
    // server after 10 s idle in a transaction instead.
    let live = PostgresStore::connect(&backend.url).await.expect("connect");
    let relay = Relay::before(&backend.url).await;
    relay.break_after(b"INSERT INTO taskyard_ticks");
    relay.hold_broken(Duration::from_secs(120));
    let lost = PostgresStore::connect(&relay.through(&backend.url))
        .await
        .expect("connect through the relay");
    let claim = |instance: &str| TickClaim {
        schedule: "nightly".into(),
        tick: Timestamp::from_millisecond(1_000).expect("tick"),
        target: String::new(),
        instance: instance.into(),
        claimed_at: Timestamp::now(),
    };
    let cut = lost
        .claim_tick_and_enqueue(&claim("lost"), &queued("report"), &job(0, 0, None))
        .await;
    assert!(cut.is_err(), "the claim's connection broke: {cut:?}");
    assert_eq!(relay.broken(), 1);
    let began = Instant::now();
    let claimed = tokio::time::timeout(
        Duration::from_secs(30),
        live.claim_tick_and_enqueue(&claim("live"), &queued("report"), &job(0, 0, None)),
    )
    .await
    .expect("the vanished client's transaction still holds the tick after 30 s")
    .expect("claim");
    let waited = began.elapsed();
    assert!(
        claimed,
        "the vanished client's claim was rolled back: the tick is free"
    );
    assert!(
        waited < Duration::from_secs(15),
        "the tick was held {waited:?}, past the 10 s bound"
    );
}
