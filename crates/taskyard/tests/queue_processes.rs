//! Durable runs across real processes sharing one store (an SQLite file, then PostgreSQL):
//! a burn-down of durable runs while instances are SIGKILLed and restarted, `Dedupe` and
//! `Serial` held across instances, cancels and pauses through any instance.
//!
//! Instances are this test binary re-run as children (`queue_child`, ignored in normal
//! runs). A child serves the app on a free loopback port, prints `ready <instance> <url>`,
//! and shuts down gracefully when its stdin closes. The burn-down's size is
//! `TASKYARD_CRASH_RUNS` (400 by default; `bench/run queue-crash` runs 10,000).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::http::call;
use common::{Backend, durable_backends};
use jiff::Timestamp;
use serde_json::{Value, json};
use taskyard::schedule::{Overlap, Schedule};
use taskyard::{
    App, Concurrency, Retry, RunFilter, RunRecord, RunStatus, StoreConfig, Task, TaskContext, TaskError,
};

/// The lease of the children: how long a killed instance's runs wait before another
/// instance takes them.
const LEASE: Duration = Duration::from_secs(3);

/// One child instance.
struct Instance {
    id: String,
    url: String,
    child: Child,
}

impl Instance {
    /// Starts a child on `backend`; it enqueues `enqueue` burn-down runs once it serves.
    fn start(backend: &Backend, effects: &Path, enqueue: usize) -> Instance {
        let mut child = Command::new(std::env::current_exe().expect("test binary"))
            .args(["queue_child", "--exact", "--ignored", "--nocapture"])
            .env("TASKYARD_QUEUE_CHILD", "1")
            .env("TASKYARD_CHILD_STORE", &backend.url)
            .env("TASKYARD_CHILD_EFFECTS", effects)
            .env("TASKYARD_CHILD_ENQUEUE", enqueue.to_string())
            .env("RUST_LOG", "error")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("child starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
        let ready = lines
            .find_map(|line| line.strip_prefix("ready ").map(str::to_owned))
            .expect("the child reports ready");
        std::thread::spawn(move || lines.for_each(drop));
        let (id, url) = ready.split_once(' ').expect("instance and url");
        Instance {
            id: id.to_owned(),
            url: url.to_owned(),
            child,
        }
    }

    /// Stops the child gracefully (closing its stdin), waiting at most 10 s.
    fn stop(mut self) {
        drop(self.child.stdin.take());
        let began = Instant::now();
        while self.child.try_wait().expect("wait").is_none() {
            assert!(
                began.elapsed() < Duration::from_secs(10),
                "instance {} did not stop",
                self.id
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no shutdown, no lease released, runs left `running`.
    fn kill(mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("reaped");
    }

    async fn post(&self, path: &str, body: &str) -> Value {
        let reply = call("POST", format!("{}{path}", self.url), Some(body), &[]).await;
        assert!(
            reply.status < 300,
            "POST {path} on {}: {} {}",
            self.id,
            reply.status,
            reply.text
        );
        reply.json()
    }

    async fn get(&self, path: &str) -> Value {
        call("GET", format!("{}{path}", self.url), None, &[]).await.json()
    }
}

async fn runs_of(backend: &Backend, task: &str) -> Vec<RunRecord> {
    backend
        .open()
        .await
        .list_runs(&RunFilter::default().task(task).limit(1_000_000))
        .await
        .expect("list")
}

/// Waits (at most `limit`) until `check` holds, then returns what it returned.
async fn eventually<T>(what: &str, limit: Duration, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let began = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(began.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_runs_survive_instances_killed_and_restarted_during_the_burn_down() {
    let total: usize = std::env::var("TASKYARD_CRASH_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(400);
    for backend in durable_backends().await {
        let name = backend.name;
        let effects = tempfile::tempdir().expect("effects dir");
        let began = Instant::now();
        let mut instances: Vec<Instance> = (0..4)
            .map(|_| Instance::start(&backend, effects.path(), total / 4))
            .collect();
        let mut kills = 0;
        let burned = loop {
            // Every few seconds, at random moments and on a random instance: kills in step
            // with the lease would hand a rescued run to the next victim again and again.
            // (A killed instance's runs hold the task's limit until its lease is gone, so
            // kills every second or so starve the burn-down: 16 runs/s at 10,000 runs.)
            // The first comes sooner, so that even a short burn-down sees one.
            let every = if kills == 0 { 1_000 } else { 2_000 };
            tokio::time::sleep(Duration::from_millis(every + fastrand::u64(0..every))).await;
            let runs = runs_of(&backend, "burn").await;
            let done = runs.iter().filter(|run| run.status.is_final()).count();
            if runs.len() == total && done == total {
                break runs;
            }
            assert!(
                began.elapsed() < Duration::from_secs(60 + total as u64 / 20),
                "{name}: {done} of {total} runs ended after {:?}",
                began.elapsed()
            );
            // No kill before every run is queued: a child killed while it enqueues would
            // leave part of its share unqueued, and the burn-down could never end.
            if runs.len() < total {
                continue;
            }
            // SIGKILL one instance and start another in its place.
            let victim = instances.swap_remove(fastrand::usize(0..instances.len()));
            victim.kill();
            kills += 1;
            instances.push(Instance::start(&backend, effects.path(), 0));
        };
        for instance in instances {
            instance.stop();
        }
        assert!(kills >= 1, "{name}: the burn-down ended before any kill");

        // Every run succeeded, once.
        let failed: Vec<&RunRecord> = burned
            .iter()
            .filter(|run| run.status != RunStatus::Succeeded)
            .collect();
        assert!(
            failed.is_empty(),
            "{name}: {} runs did not succeed: {:?}",
            failed.len(),
            failed.first()
        );
        let effects = read_effects(effects.path());
        let mut rerun = 0;
        for run in &burned {
            let attempts = effects.get(&run.id.to_string()).cloned().unwrap_or_default();
            assert!(
                attempts.contains(&run.attempt),
                "{name}: run {} has no effect of its attempt {}",
                run.id,
                run.attempt
            );
            // An earlier attempt's effect is allowed only from an attempt whose instance was
            // killed: its end was never recorded, so it did not complete.
            let lost: BTreeSet<u32> = run
                .attempts
                .iter()
                .filter(|attempt| attempt.status == RunStatus::Abandoned)
                .map(|attempt| attempt.attempt)
                .collect();
            for attempt in &attempts {
                assert!(
                    *attempt == run.attempt || lost.contains(attempt),
                    "{name}: run {} has an effect of attempt {attempt}, which completed besides {}",
                    run.id,
                    run.attempt
                );
            }
            // Each lost attempt is followed within the lease and six seconds of its
            // instance's last heartbeat by the next attempt's start (or, for the last lost
            // one, by the run's end; the run itself takes under half a second).
            for (index, attempt) in run.attempts.iter().enumerate() {
                if attempt.status != RunStatus::Abandoned {
                    continue;
                }
                rerun += 1;
                let next = run
                    .attempts
                    .get(index + 1)
                    .map(|next| next.started_at)
                    .or(run.finished_at)
                    .expect("finished");
                let waited = next.duration_since(attempt.finished_at);
                assert!(
                    waited <= jiff::SignedDuration::try_from(LEASE + Duration::from_secs(6)).expect("span"),
                    "{name}: attempt {} of run {} was followed {waited:?} after its instance's last heartbeat",
                    attempt.attempt,
                    run.id
                );
            }
        }
        let most = burned.iter().map(|run| run.attempt).max().unwrap_or_default();
        println!(
            "{name}: {total} runs, {kills} instances killed, {rerun} attempts re-run (at most {most} attempts for one run), {:?}",
            began.elapsed()
        );
    }
}

/// The effects the runs' bodies recorded: run id → the attempts that recorded one. An
/// attempt that recorded twice fails the test.
fn read_effects(dir: &Path) -> BTreeMap<String, BTreeSet<u32>> {
    let mut effects: BTreeMap<String, BTreeSet<u32>> = BTreeMap::new();
    for file in std::fs::read_dir(dir).expect("effects") {
        let text = std::fs::read_to_string(file.expect("entry").path()).expect("effects file");
        for line in text.lines() {
            let (run, attempt) = line.split_once(' ').expect("run and attempt");
            let attempt: u32 = attempt.parse().expect("attempt");
            assert!(
                effects.entry(run.to_owned()).or_default().insert(attempt),
                "attempt {attempt} of run {run} recorded its effect twice"
            );
        }
    }
    effects
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dedupe_and_serial_hold_across_three_instances() {
    for backend in durable_backends().await {
        let name = backend.name;
        let effects = tempfile::tempdir().expect("dir");
        let instances: Vec<Instance> = (0..3)
            .map(|_| Instance::start(&backend, effects.path(), 0))
            .collect();

        // 50 concurrent starts of one `Dedupe` durable task, spread over the instances.
        let mut calls = Vec::new();
        for i in 0..50 {
            let url = format!("{}/_tasks/migrate/runs", instances[i % 3].url);
            calls.push(tokio::spawn(
                async move { call("POST", url, Some("{}"), &[]).await },
            ));
        }
        let mut answers = BTreeSet::new();
        for call in calls {
            let reply = call.await.expect("caller");
            assert_eq!(reply.status, 200, "{name}: {}", reply.text);
            answers.insert(reply.text);
        }
        assert_eq!(
            answers.len(),
            1,
            "{name}: every caller got the same run and result: {answers:?}"
        );
        let migrations = runs_of(&backend, "migrate").await;
        assert_eq!(migrations.len(), 1, "{name}: one run");

        // Twelve `Serial` runs started over the three: never two at once.
        for i in 0..12 {
            instances[i % 3]
                .post("/_tasks/reindex/runs?wait=false", "{}")
                .await;
        }
        let runs = eventually("the serial runs end", Duration::from_secs(30), async || {
            let runs = runs_of(&backend, "reindex").await;
            (runs.len() == 12 && runs.iter().all(|run| run.status.is_final())).then_some(runs)
        })
        .await;
        let mut spans: Vec<(i64, i64, String)> = runs
            .iter()
            .map(|run| {
                let result = run.result.as_ref().expect("result");
                (
                    result["began"].as_i64().expect("began"),
                    result["ended"].as_i64().expect("ended"),
                    result["by"].as_str().expect("by").to_owned(),
                )
            })
            .collect();
        spans.sort();
        for pair in spans.windows(2) {
            assert!(
                pair[1].0 >= pair[0].1,
                "{name}: two serial runs at once: {pair:?}"
            );
        }
        let by: BTreeSet<&str> = spans.iter().map(|span| span.2.as_str()).collect();
        println!("{name}: serial runs ran on {by:?}");
        for instance in instances {
            instance.stop();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_through_another_instance_and_a_pause_that_outlives_restarts() {
    for backend in durable_backends().await {
        let name = backend.name;
        let effects = tempfile::tempdir().expect("dir");
        let mut instances: Vec<Instance> = (0..3)
            .map(|_| Instance::start(&backend, effects.path(), 0))
            .collect();

        // A run on one instance, cancelled through another, ends within a second.
        for task in ["hold", "hold:durable"] {
            let started = instances[0]
                .post(&format!("/_tasks/{task}/runs?wait=false"), "{}")
                .await;
            let id = started["run_id"].as_str().expect("id").to_owned();
            let holder = eventually("the run starts", Duration::from_secs(10), async || {
                let run = instances[0].get(&format!("/_tasks/runs/{id}")).await;
                (run["status"] == "running").then(|| run["instance"].as_str().expect("instance").to_owned())
            })
            .await;
            let other = instances
                .iter()
                .find(|instance| instance.id != holder)
                .expect("another");
            let asked = Instant::now();
            let reply = other.post(&format!("/_tasks/runs/{id}/cancel"), "").await;
            assert_eq!(reply["cancelled"], true, "{name}");
            eventually("the cancel", Duration::from_secs(5), async || {
                let run = other.get(&format!("/_tasks/runs/{id}")).await;
                (run["status"] == "cancelled").then_some(())
            })
            .await;
            assert!(
                asked.elapsed() < Duration::from_millis(1_000),
                "{name}: {task} on {holder} cancelled through {} after {:?}",
                other.id,
                asked.elapsed()
            );
        }

        // Paused through the first instance: no instance fires it, even after all restart.
        let beats = async || runs_of(&backend, "beat").await.len();
        eventually("the schedule fires", Duration::from_secs(5), async || {
            (beats().await >= 2).then_some(())
        })
        .await;
        instances[0].post("/_tasks/schedules/tick/pause", "").await;
        tokio::time::sleep(Duration::from_millis(1_200)).await;
        let paused = beats().await;
        tokio::time::sleep(Duration::from_millis(1_000)).await;
        assert_eq!(beats().await, paused, "{name}: it fired while paused");
        for instance in instances.drain(..) {
            instance.stop();
        }
        instances = (0..3)
            .map(|_| Instance::start(&backend, effects.path(), 0))
            .collect();
        for instance in &instances {
            assert_eq!(
                instance.get("/_tasks/schedules/tick").await["paused"],
                true,
                "{name}"
            );
        }
        tokio::time::sleep(Duration::from_millis(1_000)).await;
        assert_eq!(beats().await, paused, "{name}: it fired after the restart");

        // Resumed through the third: it fires again.
        instances[2].post("/_tasks/schedules/tick/resume", "").await;
        eventually("the schedule fires again", Duration::from_secs(5), async || {
            (beats().await >= paused + 2).then_some(())
        })
        .await;
        for instance in instances {
            instance.stop();
        }
    }
}

/// A durable tick's claim and its run are one write: an instance killed while that write
/// is out leaves the tick unclaimed, and another instance runs it. On PostgreSQL, where
/// the test can hold the queue's table locked so that the instance is caught between its
/// tick's claim and its run's insert; SQLite's lock is the whole file's, which would stop
/// the claim as well.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_tick_whose_instance_dies_before_its_run_is_written_runs_elsewhere() {
    let Some(backend) = common::postgres().await else {
        return;
    };
    let effects = tempfile::tempdir().expect("effects dir");
    let fire = "/_tasks/schedules/yearly/tick?at=2026-01-01T00:00:00Z";
    let a = Instance::start(&backend, effects.path(), 0);
    let pool = sqlx::PgPool::connect(&backend.url).await.expect("connect");
    let mut lock = pool.begin().await.expect("begin");
    sqlx::query("LOCK TABLE taskyard_jobs IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .expect("lock");
    let holder: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut *lock)
        .await
        .expect("pid");
    // The fire's answer never comes: its instance is killed while it waits.
    let address = a.url.trim_start_matches("http://").to_owned();
    std::thread::spawn(move || {
        if let Ok(mut stream) = std::net::TcpStream::connect(&address) {
            let request = format!("POST {fire} HTTP/1.1\r\nhost: {address}\r\ncontent-length: 0\r\n\r\n");
            let _ = stream.write_all(request.as_bytes());
            let _ = std::io::Read::read(&mut stream, &mut [0; 256]);
        }
    });
    eventually(
        "the tick's run waits for the lock",
        Duration::from_secs(10),
        async || {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid)) \
             AND query LIKE '%INSERT INTO taskyard_jobs%'",
            )
            .bind(holder)
            .fetch_one(&pool)
            .await
            .expect("activity");
            (waiting > 0).then_some(())
        },
    )
    .await;
    a.kill();
    lock.rollback().await.expect("unlock");
    let b = Instance::start(&backend, effects.path(), 0);
    let fired = b.post(fire, "").await;
    assert_eq!(fired["status"], "started", "the dead instance's tick: {fired}");
    let store = backend.open().await;
    let runs = eventually("the tick's run succeeds", Duration::from_secs(10), async || {
        let runs = store
            .list_runs(&RunFilter::default().schedule("yearly".to_owned()))
            .await
            .expect("list");
        (!runs.is_empty() && runs.iter().all(|run| run.status == RunStatus::Succeeded)).then_some(runs)
    })
    .await;
    assert_eq!(runs.len(), 1, "one run of the tick: {runs:?}");
    b.stop();
}

/// A durable `queue` tick waits for its turn before it is claimed: an instance killed
/// while its tick waits behind the previous tick's run leaves the tick to another
/// instance, which runs it once. Both ticks are fired from outside; the first tick's run
/// naps 1.5 s, and its instance is killed during the nap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_queue_tick_whose_instance_dies_while_it_waits_runs_elsewhere() {
    for backend in durable_backends().await {
        let name = backend.name;
        let effects = tempfile::tempdir().expect("effects dir");
        let first = "/_tasks/schedules/yearly:queued/tick?at=2026-01-01T00:00:00Z";
        let second = "/_tasks/schedules/yearly:queued/tick?at=2027-01-01T00:00:00Z";
        let a = Instance::start(&backend, effects.path(), 0);
        let fired = a.post(first, "").await;
        assert_eq!(fired["status"], "started", "{name}: {fired}");
        let store = backend.open().await;
        let of_schedule = RunFilter::default().schedule("yearly:queued".to_owned());
        eventually("the first tick's run naps", Duration::from_secs(10), async || {
            let runs = store.list_runs(&of_schedule).await.expect("list");
            runs.iter()
                .any(|run| run.status == RunStatus::Running)
                .then_some(())
        })
        .await;
        // The second tick waits for the first one's run; its answer never comes, since
        // its instance is killed while it waits.
        let address = a.url.trim_start_matches("http://").to_owned();
        std::thread::spawn(move || {
            if let Ok(mut stream) = std::net::TcpStream::connect(&address) {
                let request =
                    format!("POST {second} HTTP/1.1\r\nhost: {address}\r\ncontent-length: 0\r\n\r\n");
                let _ = stream.write_all(request.as_bytes());
                let _ = std::io::Read::read(&mut stream, &mut [0; 256]);
            }
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        a.kill();
        let b = Instance::start(&backend, effects.path(), 0);
        let fired = b.post(second, "").await;
        assert_eq!(
            fired["status"], "started",
            "{name}: the dead instance's waiting tick: {fired}"
        );
        let runs = eventually("both ticks' runs succeed", Duration::from_secs(20), async || {
            let runs = store.list_runs(&of_schedule).await.expect("list");
            (runs.len() >= 2 && runs.iter().all(|run| run.status == RunStatus::Succeeded)).then_some(runs)
        })
        .await;
        assert_eq!(runs.len(), 2, "{name}: one run a tick: {runs:?}");
        b.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run as a child process by the tests above"]
async fn queue_child() {
    if std::env::var("TASKYARD_QUEUE_CHILD").is_err() {
        return;
    }
    // Errors (`RUST_LOG=error`, set by the parent) on stderr, which the test shows.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .try_init();
    let url = std::env::var("TASKYARD_CHILD_STORE").expect("store url");
    let effects = PathBuf::from(std::env::var("TASKYARD_CHILD_EFFECTS").expect("effects dir"));
    let enqueue: usize = std::env::var("TASKYARD_CHILD_ENQUEUE")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let burn = Task::new(move |cx: TaskContext| {
        let effects = effects.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(200 + fastrand::u64(0..200))).await;
            // The effect: one line per attempt, in this instance's own file.
            let path = effects.join(format!("{}.log", cx.runtime().instance()));
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|error| TaskError::new(error.to_string()))?;
            // One `write` for the whole line: a kill cannot leave half of it.
            let line = format!("{} {}\n", cx.run_id(), cx.attempt());
            file.write_all(line.as_bytes())
                .map_err(|error| TaskError::new(error.to_string()))?;
            Ok::<_, TaskError>(Value::Null)
        }
    })
    .concurrency(Concurrency::Parallel(32))
    // An attempt cut short by a kill counts against the run's attempts.
    .retry(Retry::exponential(5).initial(Duration::from_millis(100)))
    .durable();
    let migrate = Task::new(|cx: TaskContext| async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        Ok::<_, TaskError>(json!({ "by": cx.runtime().instance() }))
    })
    .concurrency(Concurrency::Dedupe)
    .durable();
    let reindex = Task::new(|cx: TaskContext| async move {
        let began = Timestamp::now().as_millisecond();
        tokio::time::sleep(Duration::from_millis(40)).await;
        let ended = Timestamp::now().as_millisecond();
        Ok::<_, TaskError>(json!({ "began": began, "ended": ended, "by": cx.runtime().instance() }))
    })
    .concurrency(Concurrency::Serial)
    .durable();
    let hold = || {
        Task::new(|cx: TaskContext| async move {
            cx.cancelled().await;
            Ok::<_, TaskError>(Value::Null)
        })
        .concurrency(Concurrency::Parallel(8))
    };
    let beat = Task::new(|_cx: TaskContext| async { Ok::<_, TaskError>(Value::Null) })
        .concurrency(Concurrency::Parallel(8));
    let nap = Task::new(|_cx: TaskContext| async {
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        Ok::<_, TaskError>(Value::Null)
    })
    .concurrency(Concurrency::Parallel(8))
    .retry(Retry::exponential(3).initial(Duration::from_millis(100)));
    let running = App::new()
        .store(StoreConfig::from_url(&url).expect("url"))
        .lease_ttl(LEASE)
        .shutdown_grace(Duration::from_millis(300))
        .schedule_log(None)
        .task("burn", burn)
        .task("migrate", migrate)
        .task("reindex", reindex)
        .task("hold", hold())
        .task("hold:durable", hold().durable())
        .task("beat", beat)
        .task("nap", nap)
        .schedule("tick", Schedule::worker().interval("300ms").task("beat"))
        // Fired only from outside (its own ticks come once a year).
        .schedule(
            "yearly",
            Schedule::worker().cron("0 0 1 1 *").durable(true).task("beat"),
        )
        .schedule(
            "yearly:queued",
            Schedule::worker()
                .cron("0 0 1 1 *")
                .durable(true)
                .overlap(Overlap::Queue)
                .task("nap"),
        )
        .start()
        .await
        .expect("app starts");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let router = running.router();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("serves");
    });
    println!("ready {} http://{address}", running.runtime().instance());
    let runtime = running.runtime().clone();
    tokio::spawn(async move {
        for n in 0..enqueue {
            runtime.enqueue("burn", json!({ "n": n })).await.expect("enqueue");
        }
    });
    // Stop when the parent closes stdin.
    tokio::task::spawn_blocking(|| {
        let mut sink = String::new();
        while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {}
    })
    .await
    .expect("stdin watcher");
    running.shutdown().await;
}
