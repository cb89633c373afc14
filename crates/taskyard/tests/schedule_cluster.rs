//! Schedules across real processes sharing one store (an SQLite file, then PostgreSQL):
//! every `worker` tick runs exactly once in the cluster and is spread over the instances,
//! every `all` tick runs once per instance, and a killed instance's run ends `abandoned`
//! while later ticks go on on the survivors.
//!
//! With the default lease (30 s) and worker grace (2 s), a killed instance's share of the
//! ticks is taken over within seconds: every tick still has exactly one run of its own.
//!
//! Instances are this test binary re-run as children (`cluster_child`, ignored in normal
//! runs). A child starts the app, prints `ready <instance>`, and shuts down gracefully when
//! its stdin closes.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Backend, durable_backends};
use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use taskyard::schedule::{Overlap, Schedule};
use taskyard::{
    App, Concurrency, RunFilter, RunRecord, RunStatus, StoreConfig, Task, TaskContext, TaskError, Trigger,
};

const INSTANCES: usize = 3;

struct Instance {
    id: String,
    child: Child,
}

/// Starts `INSTANCES` children running `scenario` on `backend`, and waits until each is
/// ready. Returns them with the instant the last one became ready.
fn start_cluster(backend: &Backend, scenario: &str) -> (Vec<Instance>, Timestamp) {
    start_cluster_logging(backend, scenario, None)
}

/// [`start_cluster`], each instance writing its schedule log to `logs/INDEX.log`.
fn start_cluster_logging(
    backend: &Backend,
    scenario: &str,
    logs: Option<&std::path::Path>,
) -> (Vec<Instance>, Timestamp) {
    let mut instances = Vec::new();
    for index in 0..INSTANCES {
        let log = logs.map(|dir| dir.join(format!("{index}.log")));
        let mut child = Command::new(std::env::current_exe().expect("test binary"))
            .args(["cluster_child", "--exact", "--ignored", "--nocapture"])
            .env("TASKYARD_CLUSTER_SCENARIO", scenario)
            .env("TASKYARD_CHILD_STORE", &backend.url)
            .env("TASKYARD_CHILD_LOG", log.unwrap_or_default())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("child starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let id = loop {
            let line = lines.next().expect("child printed ready").expect("line");
            if let Some(id) = line.strip_prefix("ready ") {
                break id.to_owned();
            }
        };
        // Keep draining the child's output so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        instances.push(Instance { id, child });
    }
    (instances, Timestamp::now())
}

fn stop(instance: &mut Instance) {
    drop(instance.child.stdin.take());
    let status = instance.child.wait().expect("child exits");
    assert!(status.success(), "instance {} exited with {status}", instance.id);
}

fn tick_of(run: &RunRecord) -> Timestamp {
    match &run.trigger {
        Trigger::Schedule { scheduled_at, .. } => *scheduled_at,
        other => panic!("not a schedule run: {other:?}"),
    }
}

async fn runs_of(backend: &Backend, task: &str) -> Vec<RunRecord> {
    backend
        .open()
        .await
        .list_runs(&RunFilter::default().task(task).limit(100_000))
        .await
        .expect("runs")
}

/// Every whole second strictly inside (from, to).
fn seconds_between(from: Timestamp, to: Timestamp) -> Vec<Timestamp> {
    let first = from.as_second() + 1;
    (first..to.as_second())
        .map(|s| Timestamp::from_second(s).expect("ts"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_ticks_run_once_in_the_cluster_and_all_ticks_once_per_instance() {
    for backend in durable_backends().await {
        let name = backend.name;
        drop(backend.open().await); // migrate once up front
        let (mut instances, all_ready) = start_cluster(&backend, "heartbeat");
        tokio::time::sleep(Duration::from_secs(20)).await;
        let stopping = Timestamp::now();
        for instance in &mut instances {
            stop(instance);
        }
        let window = seconds_between(
            all_ready + SignedDuration::from_secs(1),
            stopping - SignedDuration::from_secs(3),
        );
        assert!(window.len() >= 14, "{name}: window of {} ticks", window.len());

        let worker = runs_of(&backend, "beat").await;
        let mut per_tick: BTreeMap<Timestamp, Vec<&RunRecord>> = BTreeMap::new();
        for run in &worker {
            per_tick.entry(tick_of(run)).or_default().push(run);
        }
        for tick in &window {
            let runs = per_tick.get(tick).map_or(0, Vec::len);
            assert_eq!(runs, 1, "{name}: worker tick {tick} ran {runs} times");
        }
        assert!(
            per_tick.values().all(|runs| runs.len() == 1),
            "{name}: a worker tick ran twice"
        );
        let spread: BTreeSet<&str> = window
            .iter()
            .map(|tick| per_tick[tick][0].instance.as_str())
            .collect();
        assert!(spread.len() >= 2, "{name}: worker ticks ran on {spread:?} only");
        assert!(
            worker.iter().all(|run| run.status == RunStatus::Succeeded),
            "{name}"
        );

        let all = runs_of(&backend, "beat-all").await;
        let mut per_tick_instance: BTreeMap<(Timestamp, &str), usize> = BTreeMap::new();
        for run in &all {
            *per_tick_instance
                .entry((tick_of(run), run.instance.as_str()))
                .or_default() += 1;
        }
        for tick in &window {
            for instance in &instances {
                let runs = per_tick_instance
                    .get(&(*tick, instance.id.as_str()))
                    .copied()
                    .unwrap_or(0);
                assert_eq!(
                    runs, 1,
                    "{name}: `all` tick {tick} ran {runs} times on {}",
                    instance.id
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_instances_run_is_abandoned_and_ticks_go_on_on_the_survivors() {
    for backend in durable_backends().await {
        let name = backend.name;
        drop(backend.open().await);
        let (mut instances, all_ready) = start_cluster(&backend, "slow");
        // Wait until some instance is in the middle of a run, then kill it.
        let victim_run = loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let running = runs_of(&backend, "slow").await;
            if let Some(run) = running.into_iter().find(|run| run.status == RunStatus::Running) {
                break run;
            }
            assert!(
                Timestamp::now() < all_ready + SignedDuration::from_secs(15),
                "{name}: no run started"
            );
        };
        let victim = instances
            .iter()
            .position(|instance| instance.id == victim_run.instance)
            .expect("the run's instance is one of ours");
        let mut victim = instances.remove(victim);
        victim.child.kill().expect("SIGKILL");
        victim.child.wait().expect("reaped");
        let killed_at = Timestamp::now();

        // The survivors notice within the lease (2 s) and keep the ticks going.
        tokio::time::sleep(Duration::from_secs(10)).await;
        let stopping = Timestamp::now();
        for instance in &mut instances {
            stop(instance);
        }
        let runs = runs_of(&backend, "slow").await;
        let abandoned = runs
            .iter()
            .find(|run| run.id == victim_run.id)
            .expect("the killed run is recorded");
        assert_eq!(abandoned.status, RunStatus::Abandoned, "{name}: {abandoned:?}");
        assert!(
            abandoned.error.as_deref().unwrap_or("").contains("abandoned"),
            "{name}"
        );

        let mut per_tick: BTreeMap<Timestamp, Vec<&RunRecord>> = BTreeMap::new();
        for run in &runs {
            per_tick.entry(tick_of(run)).or_default().push(run);
        }
        assert!(
            per_tick.values().all(|runs| runs.len() == 1),
            "{name}: a tick ran twice"
        );
        let after = seconds_between(
            killed_at + SignedDuration::from_secs(1),
            stopping - SignedDuration::from_secs(3),
        );
        assert!(after.len() >= 3, "{name}: {} ticks after the kill", after.len());
        for tick in &after {
            let run = per_tick.get(tick).and_then(|runs| runs.first());
            let run = run.unwrap_or_else(|| panic!("{name}: tick {tick} after the kill did not run"));
            assert_ne!(
                run.instance, victim.id,
                "{name}: a dead instance cannot run tick {tick}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tick_has_one_run_of_its_own_while_a_killed_instances_lease_runs_out() {
    for backend in durable_backends().await {
        let name = backend.name;
        drop(backend.open().await);
        let logs = tempfile::tempdir().expect("tempdir");
        let (mut instances, all_ready) = start_cluster_logging(&backend, "failover", Some(logs.path()));
        tokio::time::sleep(Duration::from_secs(3)).await;
        // Kill the instance that ran the latest tick, mid-second: between a run's end and
        // the next tick's claim. (A process killed between claiming a tick and recording
        // its run loses that tick: the claim and the run's record are two writes.)
        let latest = runs_of(&backend, "quick")
            .await
            .into_iter()
            .max_by_key(tick_of)
            .expect("ticks ran before the kill");
        let victim = instances
            .iter()
            .position(|instance| instance.id == latest.instance)
            .expect("the run's instance is one of ours");
        let mut victim = instances.remove(victim);
        let into_second = Timestamp::now().subsec_millisecond();
        tokio::time::sleep(Duration::from_millis(((1500 - into_second) % 1000) as u64)).await;
        victim.child.kill().expect("SIGKILL");
        victim.child.wait().expect("reaped");
        let killed_at = Timestamp::now();

        // Longer than the victim's lease (30 s): the whole time it runs out.
        tokio::time::sleep(Duration::from_secs(60)).await;
        let stopping = Timestamp::now();
        for instance in &mut instances {
            stop(instance);
        }
        let runs = runs_of(&backend, "quick").await;
        let mut per_tick: BTreeMap<Timestamp, Vec<&RunRecord>> = BTreeMap::new();
        for run in &runs {
            per_tick.entry(tick_of(run)).or_default().push(run);
        }
        let window = seconds_between(
            all_ready + SignedDuration::from_secs(1),
            stopping - SignedDuration::from_secs(4),
        );
        assert!(window.len() >= 55, "{name}: window of {} ticks", window.len());
        let mut late_ms = Vec::new();
        for tick in &window {
            let ran = per_tick.get(tick).map_or(0, Vec::len);
            if ran != 1 {
                // What each instance's schedule log says of that tick, to tell why.
                let said: Vec<String> = (0..INSTANCES)
                    .filter_map(|index| {
                        std::fs::read_to_string(logs.path().join(format!("{index}.log"))).ok()
                    })
                    .flat_map(|text| text.lines().map(str::to_owned).collect::<Vec<_>>())
                    .filter(|line| line.contains(&tick.to_string()))
                    .collect();
                panic!(
                    "{name}: tick {tick} has {ran} runs (killed at {killed_at}, victim {}); the logs say:\n{}",
                    victim.id,
                    said.join("\n")
                );
            }
            let run = per_tick[tick][0];
            assert_eq!(run.status, RunStatus::Succeeded, "{name}: {run:?}");
            let started = run.started_at.expect("started");
            late_ms.push((started.as_millisecond() - tick.as_millisecond(), *tick));
            if *tick > killed_at {
                assert_ne!(run.instance, victim.id, "{name}: a dead instance ran tick {tick}");
            }
        }
        // Ticks meant for the dead instance wait the worker grace (2 s) before another
        // takes them; once the survivors stop counting it (three missed heartbeats), no
        // tick waits at all.
        let takeover = late_ms.iter().map(|(late, _)| *late).max().unwrap_or(0);
        let settled = killed_at + SignedDuration::from_secs(6);
        let late_after: Vec<_> = late_ms
            .iter()
            .filter(|(late, tick)| *tick > settled && *late > 1000)
            .collect();
        eprintln!(
            "{name}: {} ticks, every one ran once; the latest start was {takeover} ms after its tick",
            window.len()
        );
        assert!(takeover <= 3500, "{name}: a tick started {takeover} ms late");
        assert!(
            late_after.is_empty(),
            "{name}: ticks still late 6 s after the kill: {late_after:?}"
        );
    }
}

/// One instance of the cluster; run by the tests above as a child process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run as a child process by the cluster tests"]
async fn cluster_child() {
    let Ok(scenario) = std::env::var("TASKYARD_CLUSTER_SCENARIO") else {
        return;
    };
    let url = std::env::var("TASKYARD_CHILD_STORE").expect("store url");
    let report = || {
        Task::new(|cx: TaskContext| async move {
            Ok::<_, TaskError>(json!({ "instance": cx.runtime().instance() }))
        })
    };
    let app = App::new()
        .store(StoreConfig::from_url(&url).expect("url"))
        .lease_ttl(Duration::from_secs(2))
        .worker_grace(Duration::from_millis(1500))
        .schedule_log(
            std::env::var("TASKYARD_CHILD_LOG")
                .ok()
                .filter(|path| !path.is_empty())
                .map(std::path::PathBuf::from),
        )
        .shutdown_grace(Duration::from_millis(500));
    let app = match scenario.as_str() {
        "heartbeat" => app
            .task("beat", report())
            .task("beat-all", report())
            .schedule("heartbeat", Schedule::worker().interval("1s").task("beat"))
            .schedule("heartbeat-all", Schedule::all().interval("1s").task("beat-all")),
        "slow" => app
            .task(
                "slow",
                Task::new(|_cx: TaskContext| async {
                    tokio::time::sleep(Duration::from_millis(2500)).await;
                    Ok::<_, TaskError>(())
                })
                .concurrency(Concurrency::Parallel(10)),
            )
            .schedule(
                "slow",
                Schedule::worker()
                    .interval("1s")
                    .overlap(Overlap::Allow)
                    .task("slow"),
            ),
        // Default lease and worker grace; a task with the default concurrency (dedupe)
        // that takes a while, so a tick taken over late overlaps the next tick's run.
        "failover" => app
            .lease_ttl(Duration::from_secs(30))
            .worker_grace(Duration::from_secs(2))
            .task(
                "quick",
                Task::new(|cx: TaskContext| async move {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Ok::<_, TaskError>(json!({ "instance": cx.runtime().instance() }))
                }),
            )
            .schedule("quick", Schedule::worker().interval("1s").task("quick")),
        other => panic!("unknown scenario {other}"),
    };
    let running = app.start().await.expect("app starts");
    println!("ready {}", running.runtime().instance());
    // Stop when the parent closes stdin.
    tokio::task::spawn_blocking(|| {
        let mut sink = String::new();
        while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {}
    })
    .await
    .expect("stdin watcher");
    running.shutdown().await;
}
