//! One conformance suite for every `Store` backend: memory, SQLite and PostgreSQL.
//!
//! PostgreSQL comes from `TASKYARD_TEST_DATABASE_URL`; each test works in a schema of its
//! own. Without that variable the PostgreSQL cases are skipped loudly, unless
//! `TASKYARD_REQUIRE_PG=1`, under which a missing database fails the run.
//!
//! The multi-process cases re-run this test binary as a child (`child_process`, ignored in
//! normal runs) so that real, separate processes share one store.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::records::{at, lease, new_id, record};
use common::{Backend, backends, durable_backends};
use jiff::Timestamp;
use serde_json::json;
use taskyard::run::{Attempt, Progress};
use taskyard::store::{
    Broadcast, MemoryStore, PostgresStore, SqliteStore, Store, TickClaim, UNFINISHED_PER_SCHEDULE,
};
use taskyard::{
    App, Concurrency, RunFilter, RunId, RunRecord, RunStatus, StoreConfig, Task, TaskContext, TaskError,
    Trigger,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_round_trip_every_field() {
    for backend in backends().await {
        let store = backend.open().await;
        let mut run = record("db:migrate", RunStatus::Failed, "i-1", 0);
        run.trigger = Trigger::Schedule {
            schedule: "nightly".into(),
            scheduled_at: at(-5),
        };
        run.payload = json!({"nested": {"list": [1, 2.5, "x", null, true]}, "unicode": "héllo ✓"});
        run.attempt = 2;
        run.attempts = vec![Attempt {
            attempt: 1,
            status: RunStatus::TimedOut,
            started_at: at(1),
            finished_at: at(4),
            error: Some("timed out after 3ms".into()),
            retry_delay_ms: 100,
        }];
        run.result = Some(json!([1, {"a": "b"}]));
        run.error = Some("it's broken; \"quoted\"".into());
        run.progress = Some(Progress {
            fraction: 0.75,
            message: Some("three quarters".into()),
        });
        store.put_runs(std::slice::from_ref(&run)).await.expect("put");
        let back = store.get_run(run.id).await.expect("get").expect("found");
        assert_eq!(back, run, "{}", backend.name);
        let custom = RunRecord {
            trigger: Trigger::Custom {
                strategy: "queue".into(),
                schedule: "inbox".into(),
                args: json!({"n": 1}),
            },
            result: None,
            progress: Some(Progress {
                fraction: 0.0,
                message: None,
            }),
            ..record("x", RunStatus::Running, "i-1", 1)
        };
        store.put_runs(std::slice::from_ref(&custom)).await.expect("put");
        assert_eq!(
            store.get_run(custom.id).await.expect("get"),
            Some(custom),
            "{}",
            backend.name
        );
        assert_eq!(
            store.get_run(new_id()).await.expect("get"),
            None,
            "{}",
            backend.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_put_replaces_the_run_state() {
    for backend in backends().await {
        let store = backend.open().await;
        let mut run = record("t", RunStatus::Running, "i-1", 0);
        run.finished_at = None;
        store
            .put_runs(std::slice::from_ref(&run))
            .await
            .expect("put running");
        run.status = RunStatus::Succeeded;
        run.finished_at = Some(at(50));
        run.duration_ms = Some(49);
        run.result = Some(json!("ok"));
        store
            .put_runs(std::slice::from_ref(&run))
            .await
            .expect("put final");
        assert_eq!(
            store.get_run(run.id).await.expect("get"),
            Some(run),
            "{}",
            backend.name
        );
        let all = store.list_runs(&RunFilter::default()).await.expect("list");
        assert_eq!(all.len(), 1, "{}", backend.name);
    }
}

/// A batch of one statement is written without a transaction of its own, a larger one in
/// several statements and one transaction: both keep every row, and a run already stored
/// takes its new state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_of_one_statement_and_of_several_keep_every_row() {
    for backend in backends().await {
        let store = backend.open().await;
        let mut running = record("t", RunStatus::Running, "i-1", 0);
        running.finished_at = None;
        store
            .put_runs(std::slice::from_ref(&running))
            .await
            .expect("put running");
        store.put_runs(&[]).await.expect("an empty batch writes nothing");
        for size in [3, 1_300] {
            let mut runs: Vec<RunRecord> = (0..size)
                .map(|n| record("t", RunStatus::Succeeded, "i-1", n as i64))
                .collect();
            let mut ended = running.clone();
            ended.status = RunStatus::Succeeded;
            ended.finished_at = Some(at(size as i64));
            runs.push(ended.clone());
            store.put_runs(&runs).await.expect("put batch");
            for run in [&runs[0], &runs[size / 2], &ended] {
                assert_eq!(
                    store.get_run(run.id).await.expect("get").as_ref(),
                    Some(run),
                    "{}: a batch of {size}",
                    backend.name
                );
            }
        }
        let all = store
            .list_runs(&RunFilter::default().limit(10_000))
            .await
            .expect("list");
        assert_eq!(all.len(), 1 + 3 + 1_300, "{}: every row once", backend.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_filters_by_task_and_status_newest_first_with_a_limit() {
    for backend in backends().await {
        let store = backend.open().await;
        let runs: Vec<RunRecord> = (0..12)
            .map(|i| {
                let task = if i % 2 == 0 { "even" } else { "odd" };
                let status = if i % 3 == 0 {
                    RunStatus::Failed
                } else {
                    RunStatus::Succeeded
                };
                record(task, status, "i-1", i)
            })
            .collect();
        store.put_runs(&runs).await.expect("put batch");
        let ids = |runs: Vec<RunRecord>| runs.into_iter().map(|r| r.id).collect::<Vec<_>>();
        let newest_first: Vec<RunId> = runs.iter().rev().map(|r| r.id).collect();
        assert_eq!(
            ids(store.list_runs(&RunFilter::default()).await.expect("all")),
            newest_first,
            "{}",
            backend.name
        );
        let even = store
            .list_runs(&RunFilter::default().task("even"))
            .await
            .expect("even");
        assert_eq!(even.len(), 6);
        assert!(even.iter().all(|r| r.task == "even"));
        let failed = store
            .list_runs(&RunFilter::default().status(RunStatus::Failed))
            .await
            .expect("failed");
        assert_eq!(failed.len(), 4, "{}", backend.name);
        let both = store
            .list_runs(&RunFilter::default().task("odd").status(RunStatus::Failed))
            .await
            .expect("both");
        assert_eq!(ids(both), [runs[9].id, runs[3].id], "{}", backend.name);
        let limited = store
            .list_runs(&RunFilter::default().limit(5))
            .await
            .expect("limited");
        assert_eq!(ids(limited), newest_first[..5], "{}", backend.name);
        // Keyset pages: each starts after the last run of the one before.
        let mut pages = Vec::new();
        let mut filter = RunFilter::default().limit(5);
        loop {
            let page = ids(store.list_runs(&filter).await.expect("a page"));
            let Some(last) = page.last().copied() else {
                break;
            };
            pages.extend(page);
            filter = filter.before(last);
        }
        assert_eq!(pages, newest_first, "{}", backend.name);
        let older_evens = store
            .list_runs(&RunFilter::default().task("even").before(runs[6].id))
            .await
            .expect("before, filtered");
        assert_eq!(
            ids(older_evens),
            [runs[4].id, runs[2].id, runs[0].id],
            "{}",
            backend.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_filters_by_trigger_instance_time_and_text() {
    for backend in backends().await {
        let store = backend.open().await;
        let name = backend.name;
        let mut runs = Vec::new();
        for i in 0..6_i64 {
            let mut run = record(
                "t",
                RunStatus::Succeeded,
                if i % 2 == 0 { "i-even" } else { "i-odd" },
                i * 1000,
            );
            run.trigger = if i < 3 { Trigger::Http } else { Trigger::Cli };
            run.payload = json!({ "user": format!("Ada-{i}"), "note": "50% off_now" });
            run.result = (i == 4).then(|| json!({ "found": "Needle" }));
            run.error = (i == 5).then(|| "disk FULL at /data".to_owned());
            runs.push(run);
        }
        store.put_runs(&runs).await.expect("put");
        let ids = |filter: RunFilter| {
            let store = store.clone();
            async move {
                let listed = store.list_runs(&filter).await.expect("listed");
                listed.into_iter().map(|run| run.id).collect::<Vec<_>>()
            }
        };
        let id = |i: usize| runs[i].id;
        assert_eq!(
            ids(RunFilter::default().trigger("cli")).await,
            [id(5), id(4), id(3)],
            "{name}"
        );
        assert_eq!(
            ids(RunFilter::default().instance("i-odd")).await,
            [id(5), id(3), id(1)],
            "{name}"
        );
        let window = RunFilter::default().queued_between(Some(at(1000)), Some(at(3000)));
        assert_eq!(
            ids(window).await,
            [id(2), id(1)],
            "{name}: since inclusive, until exclusive"
        );
        // Text, ignoring ASCII case, in the payload, the result or the error.
        assert_eq!(ids(RunFilter::default().text("ada-3")).await, [id(3)], "{name}");
        assert_eq!(ids(RunFilter::default().text("needle")).await, [id(4)], "{name}");
        assert_eq!(
            ids(RunFilter::default().text("disk full")).await,
            [id(5)],
            "{name}"
        );
        // `%` and `_` are themselves, not wildcards.
        assert_eq!(
            ids(RunFilter::default().text("50% off_")).await.len(),
            6,
            "{name}"
        );
        assert_eq!(ids(RunFilter::default().text("50%_off")).await.len(), 0, "{name}");
        assert_eq!(ids(RunFilter::default().text("o_f")).await.len(), 0, "{name}");
        let all = RunFilter::default()
            .trigger("http")
            .instance("i-even")
            .text("ADA");
        assert_eq!(ids(all).await, [id(2), id(0)], "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_filters_by_schedule_and_unfinished() {
    for backend in backends().await {
        let store = backend.open().await;
        let tick = |schedule: &str, status| RunRecord {
            trigger: Trigger::Schedule {
                schedule: schedule.into(),
                scheduled_at: at(5),
            },
            ..record("job", status, "i-1", 0)
        };
        let sent = RunRecord {
            trigger: Trigger::Custom {
                strategy: "bus".into(),
                schedule: "nightly".into(),
                args: json!({}),
            },
            ..record("job", RunStatus::Queued, "i-2", 1)
        };
        let runs = vec![
            tick("nightly", RunStatus::Running),
            tick("nightly", RunStatus::Succeeded),
            tick("hourly", RunStatus::Running),
            record("job", RunStatus::Running, "i-1", 2),
            sent.clone(),
        ];
        store.put_runs(&runs).await.expect("put");
        let ids = |filter: RunFilter| {
            let store = store.clone();
            async move {
                let mut ids: Vec<RunId> = store
                    .list_runs(&filter)
                    .await
                    .expect("list")
                    .into_iter()
                    .map(|r| r.id)
                    .collect();
                ids.sort();
                ids
            }
        };
        let sorted = |mut ids: Vec<RunId>| {
            ids.sort();
            ids
        };
        assert_eq!(
            ids(RunFilter::default().schedule("nightly")).await,
            sorted(vec![runs[0].id, runs[1].id, sent.id]),
            "{}",
            backend.name
        );
        assert_eq!(
            ids(RunFilter::default().schedule("nightly").unfinished()).await,
            sorted(vec![runs[0].id, sent.id]),
            "{}",
            backend.name
        );
        assert_eq!(
            ids(RunFilter::default().unfinished()).await,
            sorted(vec![runs[0].id, runs[2].id, runs[3].id, sent.id]),
            "{}",
            backend.name
        );
        // Runs of schedules (ticks and sends) apart from the others.
        assert_eq!(
            ids(RunFilter::default().scheduled(false)).await,
            vec![runs[3].id],
            "{}",
            backend.name
        );
        assert_eq!(
            ids(RunFilter::default().scheduled(true)).await,
            sorted(vec![runs[0].id, runs[1].id, runs[2].id, sent.id]),
            "{}",
            backend.name
        );
        // Several schedules' unfinished runs in one call, newest first.
        let unfinished: Vec<RunId> = store
            .unfinished_of_schedules(&["nightly".into(), "hourly".into(), "never".into()])
            .await
            .expect("unfinished")
            .into_iter()
            .map(|run| run.id)
            .collect();
        let mut newest_first = vec![runs[0].id, runs[2].id, sent.id];
        newest_first.sort_by(|a, b| b.cmp(a));
        assert_eq!(unfinished, newest_first, "{}", backend.name);
        // Of a schedule with more unfinished than that, only its newest; the others' all.
        let many: Vec<RunRecord> = (0..UNFINISHED_PER_SCHEDULE + 5)
            .map(|_| tick("busy", RunStatus::Running))
            .collect();
        store.put_runs(&many).await.expect("put");
        let unfinished: Vec<RunId> = store
            .unfinished_of_schedules(&["busy".into(), "hourly".into()])
            .await
            .expect("unfinished")
            .into_iter()
            .map(|run| run.id)
            .collect();
        let mut newest_first: Vec<RunId> = many.iter().map(|run| run.id).collect();
        newest_first.sort_by(|a, b| b.cmp(a));
        newest_first.truncate(UNFINISHED_PER_SCHEDULE);
        newest_first.push(runs[2].id);
        newest_first.sort_by(|a, b| b.cmp(a));
        assert_eq!(unfinished, newest_first, "{}", backend.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_are_listed_from_a_time_and_pruned() {
    for backend in backends().await {
        let store = backend.open().await;
        let broadcast = |id: &str, ms| Broadcast {
            id: id.into(),
            schedule: "fanout".into(),
            args: json!({ "id": id, "nested": [1, 2] }),
            origin: "i-1".into(),
            sent_at: at(ms),
        };
        for (id, ms) in [("b", 20), ("a", 10), ("c", 30)] {
            store.broadcast(&broadcast(id, ms)).await.expect("broadcast");
        }
        let since = |ms| {
            let store = store.clone();
            async move {
                store
                    .broadcasts_since(at(ms))
                    .await
                    .expect("since")
                    .into_iter()
                    .map(|b| b.id)
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(since(0).await, ["a", "b", "c"], "{}", backend.name);
        assert_eq!(since(20).await, ["b", "c"], "{}", backend.name);
        let back = store.broadcasts_since(at(30)).await.expect("since");
        assert_eq!(back, [broadcast("c", 30)], "{}", backend.name);
        store.prune_runs(at(25)).await.expect("prune");
        assert_eq!(since(0).await, ["c"], "{}", backend.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_of_instances_without_a_live_lease_are_abandoned() {
    for backend in backends().await {
        let store = backend.open().await;
        store.heartbeat(&lease("alive", at(10_000))).await.expect("hb");
        store.heartbeat(&lease("dead", at(500))).await.expect("hb");
        let alive_running = record("t", RunStatus::Running, "alive", 0);
        let dead_running = record("t", RunStatus::Running, "dead", 1);
        let dead_queued = RunRecord {
            started_at: None,
            ..record("t", RunStatus::Queued, "dead", 2)
        };
        let dead_done = record("t", RunStatus::Succeeded, "dead", 3);
        let never_registered = record("t", RunStatus::Running, "ghost", 4);
        let all = [
            alive_running.clone(),
            dead_running.clone(),
            dead_queued.clone(),
            dead_done.clone(),
            never_registered.clone(),
        ];
        store.put_runs(&all).await.expect("put");
        let mut marked = store.mark_abandoned(at(1_000)).await.expect("reap");
        marked.sort();
        let mut expected = vec![dead_running.id, dead_queued.id, never_registered.id];
        expected.sort();
        assert_eq!(marked, expected, "{}", backend.name);
        let get = |id| {
            let store = store.clone();
            async move { store.get_run(id).await.expect("get").expect("found") }
        };
        let abandoned = get(dead_running.id).await;
        assert_eq!(abandoned.status, RunStatus::Abandoned, "{}", backend.name);
        assert_eq!(
            abandoned.finished_at,
            Some(at(100)),
            "{}: the run ends at its instance's last heartbeat",
            backend.name
        );
        assert_eq!(
            abandoned.duration_ms,
            Some(98),
            "{}: started at 2, last heartbeat at 100",
            backend.name
        );
        let ghost = get(never_registered.id).await;
        assert_eq!(
            (ghost.finished_at, ghost.duration_ms),
            (Some(at(1_000)), Some(995)),
            "{}: no heartbeat known, so it ends when found",
            backend.name
        );
        assert_eq!(
            abandoned.error.as_deref(),
            Some("abandoned: instance dead stopped renewing its lease while the run was running")
        );
        assert_eq!(get(dead_queued.id).await.duration_ms, None);
        assert_eq!(
            get(alive_running.id).await.status,
            RunStatus::Running,
            "{}",
            backend.name
        );
        assert_eq!(
            get(dead_done.id).await.status,
            RunStatus::Succeeded,
            "{}",
            backend.name
        );
        assert!(
            store.mark_abandoned(at(1_001)).await.expect("again").is_empty(),
            "{}",
            backend.name
        );
        // A released instance's leftover runs are abandoned too.
        store.release_instance("alive").await.expect("release");
        assert_eq!(
            store.mark_abandoned(at(1_002)).await.expect("reap"),
            [alive_running.id],
            "{}",
            backend.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_runs_are_counted_by_bucket_and_status() {
    for backend in backends().await {
        let store = backend.open().await;
        // `record` ends a run 10 ms after it is queued: at(0..) + 10.
        let runs = [
            record("a", RunStatus::Succeeded, "i", 0),
            record("a", RunStatus::Succeeded, "i", 500),
            record("a", RunStatus::Failed, "i", 900),
            record("a", RunStatus::Succeeded, "i", 1_000),
            record("a", RunStatus::Running, "i", 1_100),
            record("a", RunStatus::Cancelled, "i", 2_500),
            record("a", RunStatus::Succeeded, "i", -2_000),
        ];
        store.put_runs(&runs).await.expect("put");
        let counts = store.run_counts(at(0), 1_000).await.expect("counted");
        let seen: Vec<(i64, RunStatus, u64)> = counts
            .iter()
            .map(|count| {
                (
                    count.bucket.as_millisecond() - at(0).as_millisecond(),
                    count.status,
                    count.count,
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                (0, RunStatus::Failed, 1),
                (0, RunStatus::Succeeded, 2),
                (1_000, RunStatus::Succeeded, 1),
                (2_000, RunStatus::Cancelled, 1),
            ],
            "{}: oldest bucket first, statuses in order, unfinished and older runs out",
            backend.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_instance_lease_is_listed_with_its_fields() {
    for backend in backends().await {
        let store = backend.open().await;
        let mut b = lease("i-b", at(5_000));
        b.hostname = "web-2".into();
        b.pid = 4_000_000;
        store.heartbeat(&lease("i-a", at(60_000))).await.expect("a");
        store.heartbeat(&b).await.expect("b");
        let listed = store.instances().await.expect("listed");
        assert_eq!(listed, [lease("i-a", at(60_000)), b.clone()], "{}", backend.name);
        // A heartbeat replaces the lease; a release removes it.
        let mut renewed = b.clone();
        renewed.heartbeat_at = at(200);
        renewed.lease_until = at(90_000);
        store.heartbeat(&renewed).await.expect("renewed");
        store.release_instance("i-a").await.expect("released");
        assert_eq!(
            store.instances().await.expect("listed"),
            [renewed],
            "{}",
            backend.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_tick_is_claimed_once_per_target_and_live_instances_are_listed() {
    for backend in backends().await {
        let name = backend.name;
        let store = backend.open().await;
        let claim = |schedule: &str, tick: i64, target: &str, instance: &str| TickClaim {
            schedule: schedule.into(),
            tick: at(tick),
            target: target.into(),
            instance: instance.into(),
            claimed_at: Timestamp::now(),
        };
        assert_eq!(store.last_tick("beat").await.expect("last"), None, "{name}");
        // Eight claimers race for one worker tick: exactly one wins.
        let racers: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                let claim = claim("beat", 1_000, "", &format!("i{i}"));
                tokio::spawn(async move { store.claim_tick(&claim).await.expect("claim") })
            })
            .collect();
        let mut won = 0;
        for racer in racers {
            won += usize::from(racer.await.expect("join"));
        }
        assert_eq!(won, 1, "{name}: one winner for a worker tick");
        // `all` ticks: one claim per instance.
        let mut claimed = Vec::new();
        for attempt in [
            claim("beat", 2_000, "a", "a"),
            claim("beat", 2_000, "b", "b"),
            claim("beat", 2_000, "a", "b"),
            claim("other", 1_000, "", "a"),
        ] {
            claimed.push(store.claim_tick(&attempt).await.expect("claim"));
        }
        assert_eq!(claimed, [true, true, false, true], "{name}");
        assert_eq!(
            store.last_tick("beat").await.expect("last"),
            Some(at(2_000)),
            "{name}"
        );

        store.heartbeat(&lease("b-live", at(10_000))).await.expect("hb");
        store.heartbeat(&lease("a-live", at(10_000))).await.expect("hb");
        store.heartbeat(&lease("dead", at(500))).await.expect("hb");
        assert_eq!(
            store.live_instances(at(1_000), at(0)).await.expect("live"),
            ["a-live", "b-live"],
            "{name}"
        );
        // An instance whose last heartbeat is older than `seen_since` is left out of the
        // spread although its lease still runs.
        assert_eq!(
            store.live_instances(at(1_000), at(101)).await.expect("live"),
            Vec::<String>::new(),
            "{name}"
        );

        // Pruning keeps each schedule's latest tick for catch-up.
        store
            .prune_runs(Timestamp::now() + jiff::SignedDuration::from_hours(1))
            .await
            .expect("prune");
        assert_eq!(
            store.last_tick("beat").await.expect("last"),
            Some(at(2_000)),
            "{name}"
        );
        assert_eq!(
            store.last_tick("other").await.expect("last"),
            Some(at(1_000)),
            "{name}"
        );
        assert!(
            store
                .claim_tick(&claim("beat", 1_000, "", "late"))
                .await
                .expect("claim"),
            "{name}: an old pruned tick can be claimed again"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tick_claimed_again_is_held_by_the_claim_that_landed() {
    for backend in backends().await {
        let name = backend.name;
        let store = backend.open().await;
        // A claim is its instance's and its time's: (tick, instance, claimed at).
        let claim = |tick: i64, instance: &str, claimed_at: i64| TickClaim {
            schedule: "beat".into(),
            tick: at(tick),
            target: String::new(),
            instance: instance.into(),
            claimed_at: at(claimed_at),
        };
        // The first claim landed, its answer lost: claimed again, the tick is still its,
        // as often as asked.
        assert!(
            store.claim_tick(&claim(1_000, "a", 1_005)).await.expect("claim"),
            "{name}"
        );
        for _ in 0..2 {
            assert!(
                store
                    .claim_tick_again(&claim(1_000, "a", 1_005))
                    .await
                    .expect("again"),
                "{name}: a's own claim"
            );
        }
        // Another instance's claim is not taken from it, nor another claim of the same
        // instance (a second fire of the tick there).
        assert!(
            !store
                .claim_tick_again(&claim(1_000, "b", 1_005))
                .await
                .expect("again"),
            "{name}: a holds the tick"
        );
        assert!(
            !store
                .claim_tick_again(&claim(1_000, "a", 1_007))
                .await
                .expect("again"),
            "{name}: a's other claim holds the tick"
        );
        // The first claim never landed: claimed again, the tick is claimed now, once.
        assert!(
            store
                .claim_tick_again(&claim(2_000, "b", 2_001))
                .await
                .expect("again"),
            "{name}"
        );
        assert!(
            !store.claim_tick(&claim(2_000, "a", 2_002)).await.expect("claim"),
            "{name}"
        );
        assert!(
            !store
                .claim_tick_again(&claim(2_000, "a", 2_002))
                .await
                .expect("again"),
            "{name}"
        );
        assert_eq!(
            store.last_tick("beat").await.expect("last"),
            Some(at(2_000)),
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticks_claimed_together_are_each_claimed_once() {
    for backend in backends().await {
        let name = backend.name;
        let store = backend.open().await;
        let claim = |schedule: &str, tick: i64, target: &str| TickClaim {
            schedule: schedule.into(),
            tick: at(tick),
            target: target.into(),
            instance: "i".into(),
            claimed_at: Timestamp::now(),
        };
        assert!(store.claim_tick(&claim("a", 1_000, "")).await.expect("claim"));
        let claimed = store
            .claim_ticks(&[
                claim("b", 1_000, ""),
                claim("a", 1_000, ""),
                claim("b", 1_000, ""),
                claim("c", 1_000, "x"),
                claim("c", 1_000, "y"),
            ])
            .await
            .expect("claims");
        assert_eq!(
            claimed,
            [true, false, false, true, true],
            "{name}: new, already claimed, twice in one call, two targets"
        );
        assert_eq!(
            store.last_tick("b").await.expect("last"),
            Some(at(1_000)),
            "{name}"
        );

        // Four instances claim the same 1,000 ticks at once, each in its own order: every
        // tick is claimed by exactly one, and none fails (inserted in different orders,
        // PostgreSQL would find a deadlock between them).
        let ticks: Vec<TickClaim> = (0..1_000).map(|i| claim(&format!("s{i}"), 5_000, "")).collect();
        let start = std::sync::Arc::new(tokio::sync::Barrier::new(4));
        let racers: Vec<_> = (0..4)
            .map(|racer| {
                let store = store.clone();
                let start = start.clone();
                let mut ticks = ticks.clone();
                ticks.rotate_left(racer * 250);
                if racer % 2 == 1 {
                    ticks.reverse();
                }
                tokio::spawn(async move {
                    // Each with a connection of its own before they start together.
                    store.last_tick("warm").await.expect("a read");
                    start.wait().await;
                    let claimed = store.claim_ticks(&ticks).await.expect("no claim fails");
                    ticks
                        .into_iter()
                        .zip(claimed)
                        .filter_map(|(tick, claimed)| claimed.then_some(tick.schedule))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut won = Vec::new();
        for racer in racers {
            won.extend(racer.await.expect("join"));
        }
        won.sort();
        let mut all: Vec<String> = ticks.into_iter().map(|tick| tick.schedule).collect();
        all.sort();
        assert_eq!(won, all, "{name}: each tick claimed by exactly one instance");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pruning_deletes_only_runs_finished_before_the_cutoff() {
    for backend in backends().await {
        let store = backend.open().await;
        let old = record("t", RunStatus::Succeeded, "i", 0); // finished at 10
        let recent = record("t", RunStatus::Failed, "i", 100); // finished at 110
        let running = RunRecord {
            finished_at: None,
            ..record("t", RunStatus::Running, "i", -1000)
        };
        store
            .put_runs(&[old.clone(), recent.clone(), running.clone()])
            .await
            .expect("put");
        assert_eq!(
            store.prune_runs(at(50)).await.expect("prune"),
            1,
            "{}",
            backend.name
        );
        assert_eq!(store.get_run(old.id).await.expect("get"), None);
        assert!(store.get_run(recent.id).await.expect("get").is_some());
        assert!(
            store.get_run(running.id).await.expect("get").is_some(),
            "unfinished runs are kept"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_are_idempotent_and_safe_when_started_concurrently() {
    for backend in durable_backends().await {
        let opens = (0..6).map(|_| {
            let config = backend.config();
            tokio::spawn(async move { config.open().await.map(|s| s.is_some()) })
        });
        for open in opens {
            assert!(
                open.await
                    .expect("join")
                    .expect("concurrent open migrates or waits"),
                "{}",
                backend.name
            );
        }
        let store = backend.open().await;
        let run = record("t", RunStatus::Succeeded, "i", 0);
        store
            .put_runs(std::slice::from_ref(&run))
            .await
            .expect("usable after migrations");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_and_postgres_open_directly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nested = dir.path().join("a/b/history.db");
    let store = SqliteStore::open(&nested).await.expect("creates folders");
    assert_eq!(store.backend(), "sqlite");
    assert!(nested.exists());
    assert_eq!(MemoryStore::new().backend(), "memory");
    let bad = PostgresStore::connect("postgres://[bad")
        .await
        .expect_err("bad url");
    assert!(bad.to_string().contains("expected postgres://"), "{bad}");
    let unsupported = StoreConfig::from_url("mysql://x").expect_err("unsupported");
    assert!(
        unsupported.to_string().contains("sqlite://path/to/file.db"),
        "{unsupported}"
    );
}

fn noop_app(config: StoreConfig) -> App {
    App::new()
        .task(
            "noop",
            Task::new(|cx: TaskContext| async move { Ok::<_, TaskError>(cx.attempt()) })
                .concurrency(Concurrency::Parallel(64)),
        )
        .store(config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_survives_a_restart() {
    for backend in durable_backends().await {
        let first = noop_app(backend.config()).start().await.expect("start");
        let mut ids = Vec::new();
        for _ in 0..5 {
            let handle = first
                .runtime()
                .start(taskyard::RunRequest::new("noop"))
                .await
                .expect("start run");
            ids.push(handle.run_id());
            handle.outcome().await.expect("run");
        }
        first.shutdown().await;
        let second = noop_app(backend.config()).start().await.expect("restart");
        let runs = second
            .runtime()
            .list_runs(&RunFilter::default().task("noop"))
            .await
            .expect("list");
        let mut found: Vec<RunId> = runs.iter().map(|r| r.id).collect();
        found.sort();
        assert_eq!(found, ids, "{}", backend.name);
        assert!(runs.iter().all(|r| r.status == RunStatus::Succeeded));
        second.shutdown().await;
    }
}

fn child(role: &str, backend: &Backend, extra: &[(&str, String)]) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("test binary"));
    command
        .args([
            "child_process",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("TASKYARD_CHILD_ROLE", role)
        .env("TASKYARD_CHILD_STORE", &backend.url)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (key, value) in extra {
        command.env(key, value);
    }
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_writing_one_store_lose_nothing() {
    const PER_PROCESS: usize = 400;
    for backend in durable_backends().await {
        // Migrate first so both children find the schema; they also race on it harmlessly.
        drop(backend.open().await);
        let children: Vec<_> = (0..2)
            .map(|_| {
                child(
                    "writer",
                    &backend,
                    &[("TASKYARD_CHILD_RUNS", PER_PROCESS.to_string())],
                )
                .spawn()
                .expect("spawn writer")
            })
            .collect();
        for child in children {
            let output = child.wait_with_output().expect("writer ends");
            assert!(output.status.success(), "writer failed on {}", backend.name);
        }
        let store = backend.open().await;
        let runs = store
            .list_runs(&RunFilter::default().task("noop").limit(10_000))
            .await
            .expect("list");
        assert_eq!(runs.len(), 2 * PER_PROCESS, "{}", backend.name);
        assert!(
            runs.iter().all(|r| r.status == RunStatus::Succeeded),
            "{}",
            backend.name
        );
        let instances: std::collections::HashSet<_> = runs.iter().map(|r| r.instance.clone()).collect();
        assert_eq!(instances.len(), 2, "{}", backend.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_of_a_killed_process_ends_up_abandoned() {
    for backend in durable_backends().await {
        let mut sleeper = child("sleeper", &backend, &[]).spawn().expect("spawn sleeper");
        let stdout = sleeper.stdout.take().expect("stdout");
        // libtest prints `test child_process ... ` before the child's own output.
        let reported = tokio::task::spawn_blocking(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .find_map(|line| line.split_once("RUN ").map(|(_, id)| id.trim().to_owned()))
        });
        let reported = tokio::time::timeout(Duration::from_secs(60), reported).await;
        let Ok(Ok(Some(run_id))) = reported else {
            let _ = sleeper.kill();
            panic!("the sleeper did not report its run on {}", backend.name);
        };
        let run_id: RunId = run_id.parse().expect("run id");
        sleeper.kill().expect("SIGKILL");
        sleeper.wait().expect("reaped");

        let store = backend.open().await;
        let before = store
            .get_run(run_id)
            .await
            .expect("get")
            .expect("recorded before the kill");
        assert_eq!(before.status, RunStatus::Running, "{}", backend.name);

        // A surviving instance's lease keeper notices once the dead lease expires.
        let survivor = noop_app(backend.config())
            .lease_ttl(Duration::from_millis(600))
            .start()
            .await
            .expect("start");
        let deadline = Instant::now() + Duration::from_secs(20);
        let run = loop {
            let run = store.get_run(run_id).await.expect("get").expect("found");
            if run.status != RunStatus::Running || Instant::now() > deadline {
                break run;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(run.status, RunStatus::Abandoned, "{}", backend.name);
        assert!(
            run.error
                .as_deref()
                .unwrap_or("")
                .contains("stopped renewing its lease")
        );
        survivor.shutdown().await;
    }
}

/// The body of the child processes above; does nothing unless started by them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run as a child process by the multi-process tests"]
async fn child_process() {
    let Ok(role) = std::env::var("TASKYARD_CHILD_ROLE") else {
        return;
    };
    let url = std::env::var("TASKYARD_CHILD_STORE").expect("store url");
    let config = StoreConfig::from_url(&url).expect("url");
    match role.as_str() {
        "writer" => {
            let runs: usize = std::env::var("TASKYARD_CHILD_RUNS")
                .expect("runs")
                .parse()
                .expect("number");
            let app = noop_app(config).start().await.expect("start");
            let mut handles = Vec::with_capacity(runs);
            for _ in 0..runs {
                handles.push(
                    app.runtime()
                        .start(taskyard::RunRequest::new("noop"))
                        .await
                        .expect("start run"),
                );
            }
            for handle in handles {
                handle.outcome().await.expect("run");
            }
            app.shutdown().await;
        }
        "sleeper" => {
            let app = App::new()
                .task(
                    "sleep",
                    Task::new(|_cx: TaskContext| async {
                        tokio::time::sleep(Duration::from_secs(600)).await;
                        Ok::<_, TaskError>(())
                    }),
                )
                .store(config)
                .lease_ttl(Duration::from_millis(600))
                .start()
                .await
                .expect("start");
            let handle = app
                .runtime()
                .start(taskyard::RunRequest::new("sleep"))
                .await
                .expect("start run");
            // Once the run has started here, listing flushes the recorder, so the `running`
            // record is in the store.
            while app
                .runtime()
                .get_run(handle.run_id())
                .await
                .expect("get")
                .is_none_or(|run| run.status != RunStatus::Running)
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            app.runtime()
                .list_runs(&RunFilter::default())
                .await
                .expect("flush");
            println!("RUN {}", handle.run_id());
            tokio::time::sleep(Duration::from_secs(600)).await;
        }
        other => panic!("unknown child role {other}"),
    }
}
