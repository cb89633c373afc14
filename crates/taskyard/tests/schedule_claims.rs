//! A tick whose claim's answer is lost still runs, once: the claim's connection breaks after
//! PostgreSQL committed it (through a loopback relay that lets the claim reach the server,
//! then closes the client's side), so the ledger holds the tick for this instance, no other
//! instance will run it, and this one must.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::relay::Relay;
use jiff::Timestamp;
use serde_json::Value;
use taskyard::schedule::Schedule;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tick_whose_claim_commits_but_answers_an_error_runs_once() {
    let Some(backend) = common::postgres().await else {
        return;
    };
    let relay = Relay::before(&backend.url).await;
    relay.break_after(b"INSERT INTO taskyard_ticks");
    let ran = Ran::default();
    let app = App::new()
        .store(StoreConfig::Postgres(relay.through(&backend.url)))
        .store_timeout(Duration::from_millis(500))
        .schedule_log(None)
        .task("beat", ran.task())
        .schedule("beat", Schedule::worker().interval("200ms").task("beat"))
        .start()
        .await
        .expect("app starts");
    let began = Instant::now();
    while relay.broken() == 0 {
        assert!(
            began.elapsed() < Duration::from_secs(10),
            "no tick's claim went through the relay"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A few ticks more, then no new claim: every tick claimed has had time to start.
    tokio::time::sleep(Duration::from_secs(1)).await;
    app.shutdown().await;

    let pool = sqlx::PgPool::connect(&backend.url).await.expect("connect");
    let claimed: Vec<i64> =
        sqlx::query_scalar("SELECT tick FROM taskyard_ticks WHERE schedule = 'beat' ORDER BY tick")
            .fetch_all(&pool)
            .await
            .expect("the ledger");
    pool.close().await;
    let mut ran = ran.ticks();
    ran.sort_unstable();
    assert_eq!(relay.broken(), 1, "the claim's connection broke");
    assert!(claimed.len() >= 3, "ticks claimed: {claimed:?}");
    assert_eq!(
        ran, claimed,
        "each tick in the ledger ran once here, the one whose claim's answer was lost too"
    );
}
