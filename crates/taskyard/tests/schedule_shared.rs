//! Two instances in one test process sharing a store (an SQLite file, and PostgreSQL when
//! configured): custom strategies' `send_all` reaches the other instance exactly once,
//! and `skip`/`queue` overlap hold across instances. Sharing the process lets the test see
//! the peak of runs going at once over both instances. Separate processes are covered by
//! `schedule_cluster.rs`.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use serde_json::{Value, json};
use taskyard::schedule::{Overlap, Schedule, StrategySender};
use taskyard::{App, Concurrency, RunFilter, RunningApp, Task, TaskContext, TaskError, Trigger};

use common::Backend;

/// Runs seen by every instance: (instance, trigger) in start order, and the peak of runs
/// going at once.
#[derive(Clone, Default)]
struct Seen {
    runs: Arc<Mutex<Vec<(String, Trigger)>>>,
    active: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

impl Seen {
    fn task(&self, work: Duration) -> Task {
        let seen = self.clone();
        Task::new(move |cx: TaskContext| {
            let seen = seen.clone();
            async move {
                let now = seen.active.fetch_add(1, Ordering::SeqCst) + 1;
                seen.peak.fetch_max(now, Ordering::SeqCst);
                seen.runs
                    .lock()
                    .expect("lock")
                    .push((cx.runtime().instance().to_owned(), cx.trigger().clone()));
                tokio::time::sleep(work).await;
                seen.active.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, TaskError>(Value::Null)
            }
        })
        .concurrency(Concurrency::Parallel(8))
    }

    fn runs(&self) -> Vec<(String, Trigger)> {
        self.runs.lock().expect("lock").clone()
    }
}

async fn start(backend: &Backend, app: App) -> RunningApp {
    start_with_grace(backend, app, Duration::from_millis(300)).await
}

async fn start_with_grace(backend: &Backend, app: App, worker_grace: Duration) -> RunningApp {
    app.store(backend.config())
        .schedule_log(None)
        .worker_grace(worker_grace)
        .shutdown_grace(Duration::from_millis(500))
        .start()
        .await
        .expect("instance starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_all_runs_once_on_every_instance_and_send_one_only_here() {
    for backend in common::durable_backends().await {
        let seen = Seen::default();
        let senders = Arc::new(Mutex::new(Vec::<StrategySender>::new()));
        let instance = || {
            let senders = senders.clone();
            App::new()
                .task("fanout", seen.task(Duration::ZERO))
                .strategy("bus", move |sender: StrategySender| {
                    senders.lock().expect("lock").push(sender.clone());
                    async move { sender.closed().await }
                })
                .schedule("fanout", Schedule::custom("bus").task("fanout"))
        };
        let a = start(&backend, instance()).await;
        let b = start(&backend, instance()).await;
        let (from_a, from_b) = {
            let senders = senders.lock().expect("lock");
            assert_eq!(senders.len(), 2, "one strategy per instance");
            (senders[0].clone(), senders[1].clone())
        };

        from_a.send_all(json!({ "n": 1 })).await.expect("sent");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while seen.runs().len() < 2 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Several more polls go by: nobody runs it twice.
        tokio::time::sleep(Duration::from_millis(700)).await;
        let runs = seen.runs();
        assert_eq!(runs.len(), 2, "{}: {runs:?}", backend.name);
        let mut instances: Vec<&str> = runs.iter().map(|(instance, _)| instance.as_str()).collect();
        instances.sort();
        let mut expected = vec![a.runtime().instance(), b.runtime().instance()];
        expected.sort();
        assert_eq!(instances, expected, "{}: once on each instance", backend.name);
        for (_, trigger) in &runs {
            assert_eq!(
                trigger,
                &Trigger::Custom {
                    strategy: "bus".into(),
                    schedule: "fanout".into(),
                    args: json!({ "n": 1 }),
                },
                "{}",
                backend.name
            );
        }

        from_b
            .send_one(json!({ "n": 2 }))
            .await
            .expect("sent")
            .outcome()
            .await
            .expect("ran");
        tokio::time::sleep(Duration::from_millis(500)).await;
        let runs = seen.runs();
        assert_eq!(runs.len(), 3, "{}: send_one runs once: {runs:?}", backend.name);
        assert_eq!(
            runs[2].0,
            b.runtime().instance(),
            "{}: where it was sent",
            backend.name
        );
        a.shutdown().await;
        b.shutdown().await;
    }
}

/// Two instances with the same `worker` schedule, ticking faster than its runs last.
/// Runs for `watch`; the second instance takes part in the spread only once the first
/// has seen it (membership refreshes every second). The worker grace is long, so that no
/// tick is taken over: a tick taken over late runs even while a later tick's run goes on,
/// by design, and a loaded machine can delay a claim by a few hundred milliseconds.
/// With `durable`, the ticks' runs are durable: any instance may run them.
async fn overlapping(
    backend: &Backend,
    (overlap, durable): (Overlap, bool),
    watch: Duration,
) -> (Seen, Vec<taskyard::RunRecord>) {
    let seen = Seen::default();
    let instance = || {
        App::new()
            .task("slow", seen.task(Duration::from_millis(450)))
            .schedule(
                "slow",
                Schedule::worker()
                    .interval("150ms")
                    .overlap(overlap)
                    .durable(durable)
                    .task("slow"),
            )
    };
    let a = start_with_grace(backend, instance(), Duration::from_secs(3)).await;
    let b = start_with_grace(backend, instance(), Duration::from_secs(3)).await;
    tokio::time::sleep(watch).await;
    let runs = a
        .runtime()
        .list_runs(&RunFilter::default().task("slow").limit(1000))
        .await
        .expect("runs");
    a.shutdown().await;
    b.shutdown().await;
    (seen, runs)
}

fn tick(trigger: &Trigger) -> Timestamp {
    match trigger {
        Trigger::Schedule { scheduled_at, .. } => *scheduled_at,
        other => panic!("not a tick: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_holds_across_instances() {
    for backend in common::durable_backends().await {
        // Each run spans three ticks, so about one tick in four runs, each on an instance
        // picked by hash: six seconds give a dozen picks, and all on one instance would
        // be a 1-in-2,000 event.
        let (seen, _) = overlapping(&backend, (Overlap::Skip, false), Duration::from_secs(6)).await;
        let runs = seen.runs();
        assert_eq!(
            seen.peak.load(Ordering::SeqCst),
            1,
            "{}: a tick found the previous run going on the other instance and still ran",
            backend.name
        );
        assert!(runs.len() >= 4, "{}: {} runs", backend.name, runs.len());
        let instances: std::collections::HashSet<&str> =
            runs.iter().map(|(instance, _)| instance.as_str()).collect();
        assert_eq!(instances.len(), 2, "{}: ticks spread over both", backend.name);
    }
}

/// `queue` ticks, their runs in process and then durable (their ticks wait for their turn
/// before they are claimed, their runs taken by either instance): one run at a time, in
/// tick order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_holds_across_instances_and_keeps_tick_order() {
    for backend in common::durable_backends().await {
        for (durable, watch, least) in [(false, 3, 5), (true, 6, 6)] {
            let name = format!("{}, durable {durable}", backend.name);
            let (seen, _) =
                overlapping(&backend, (Overlap::Queue, durable), Duration::from_secs(watch)).await;
            let runs = seen.runs();
            assert_eq!(seen.peak.load(Ordering::SeqCst), 1, "{name}: runs overlapped");
            assert!(runs.len() >= least, "{name}: {} runs", runs.len());
            let ticks: Vec<Timestamp> = runs.iter().map(|(_, trigger)| tick(trigger)).collect();
            assert!(
                ticks.windows(2).all(|w| w[0] < w[1]),
                "{name}: runs out of tick order: {ticks:?}"
            );
        }
    }
}
