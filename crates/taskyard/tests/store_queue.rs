//! The durable queue's part of the store conformance suite, on memory, SQLite and
//! PostgreSQL: enqueue with unique keys, claims by priority and time under each task's limit
//! across the cluster, fenced writes, retries and orphans back in the queue, the runs of a
//! claim whose answer was lost given back, cancels asked for through any instance, and
//! schedule pauses.

mod common;

use common::backends;
use common::records::{at, job, lease, queued, record};
use serde_json::json;
use taskyard::run::{Attempt, Progress};
use taskyard::store::{
    CancelRequest, ClaimTask, Enqueued, ForgottenCount, InstanceLease, Job, Notice, RunCount, SchedulePause,
    TickClaim,
};
use taskyard::{RunId, RunStatus};

/// `task`, claimed without a limit.
fn free(task: &str) -> Vec<ClaimTask> {
    vec![ClaimTask {
        name: task.to_owned(),
        limit: None,
        ended: Vec::new(),
    }]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_runs_are_claimed_when_due_by_priority_then_time() {
    for backend in backends().await {
        let name = backend.name;
        let store = backend.open().await;
        let tasks = free("mail");
        let mut ids = Vec::new();
        for (run_at, priority) in [(200, 0), (100, 0), (300, 5), (10_000, 9)] {
            let run = queued("mail");
            let enqueued = store
                .enqueue(&run, &job(run_at, priority, None))
                .await
                .expect("enqueue");
            assert_eq!(enqueued, Enqueued::New(run.id), "{name}");
            ids.push(run.id);
        }
        let other = queued("other");
        store
            .enqueue(&other, &job(0, 0, None))
            .await
            .expect("enqueue other");
        // A queued durable run belongs to no instance: a dead enqueuer does not abandon it.
        store.mark_abandoned(at(1_000)).await.expect("abandon");
        assert_eq!(
            store.get_run(ids[0]).await.expect("get").expect("run").status,
            RunStatus::Queued,
            "{name}"
        );

        let first = store.claim("i1", &tasks, at(1_000), 2).await.expect("claim");
        let order: Vec<RunId> = first.iter().map(|c| c.run.id).collect();
        assert_eq!(
            order,
            [ids[2], ids[1]],
            "{name}: priority, then the earliest run_at"
        );
        for claimed in &first {
            assert_eq!(claimed.run.status, RunStatus::Running, "{name}");
            assert_eq!(claimed.run.instance, "i1", "{name}");
            assert_eq!(claimed.fence, 1, "{name}");
            assert_eq!(claimed.max_attempts, 3, "{name}");
            assert_eq!(claimed.run.started_at, Some(at(1_000)), "{name}");
        }
        let second = store.claim("i2", &tasks, at(1_000), 10).await.expect("claim");
        assert_eq!(
            second.iter().map(|c| c.run.id).collect::<Vec<_>>(),
            [ids[0]],
            "{name}: the one not due stays"
        );
        assert!(
            store
                .claim("i2", &tasks, at(1_000), 10)
                .await
                .expect("claim")
                .is_empty(),
            "{name}"
        );
        let later = store.claim("i2", &tasks, at(10_000), 10).await.expect("claim");
        assert_eq!(
            later.iter().map(|c| c.run.id).collect::<Vec<_>>(),
            [ids[3]],
            "{name}"
        );
        assert_eq!(
            store.get_run(other.id).await.expect("get").expect("run").status,
            RunStatus::Queued,
            "{name}: other tasks are not claimed"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_from_an_attempt_that_lost_its_claim_is_refused() {
    for backend in backends().await {
        let name = backend.name;
        let store = backend.open().await;
        let run = queued("mail");
        store.enqueue(&run, &job(0, 0, None)).await.expect("enqueue");
        let claimed = store
            .claim("i1", &free("mail"), at(1_000), 1)
            .await
            .expect("claim")
            .remove(0);
        let mut progress = claimed.run.clone();
        progress.progress = Some(Progress {
            fraction: 0.5,
            message: Some("half".into()),
        });
        assert!(
            store.put_claimed(&progress, claimed.fence).await.expect("put"),
            "{name}"
        );
        let mut done = claimed.run.clone();
        done.status = RunStatus::Succeeded;
        done.finished_at = Some(at(2_000));
        done.result = Some(json!({ "sent": true }));
        assert!(
            !store.put_claimed(&done, claimed.fence + 1).await.expect("put"),
            "{name}: a stale fence writes nothing"
        );
        let stored = store.get_run(run.id).await.expect("get").expect("run");
        assert_eq!(stored.status, RunStatus::Running, "{name}");
        assert_eq!(stored.progress.as_ref().map(|p| p.fraction), Some(0.5), "{name}");
        assert!(
            store.put_claimed(&done, claimed.fence).await.expect("put"),
            "{name}"
        );
        let stored = store.get_run(run.id).await.expect("get").expect("run");
        assert_eq!(stored.status, RunStatus::Succeeded, "{name}");
        assert_eq!(stored.result, Some(json!({ "sent": true })), "{name}");
    }
}

/// The ids of the runs of `task` a page of the history lists, with `status` if given.
async fn listed(store: &dyn taskyard::store::Store, task: &str, status: Option<RunStatus>) -> Vec<RunId> {
    let mut filter = taskyard::RunFilter::default().task(task.to_owned());
    if let Some(status) = status {
        filter = filter.status(status);
    }
    let runs = store.list_runs(&filter).await.expect("a page");
    runs.into_iter().map(|run| run.id).collect()
}

/// A durable run is in the history once at every step, whether the store keeps it as a
/// job until it ends or not: queued, running with its progress, and ended, its payload and
/// queueing time kept, through a batch of claimed runs' states as through one write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_lists_a_durable_run_once_from_its_queue_to_its_end() {
    for backend in backends().await {
        let name = backend.name;
        let store = backend.open().await;
        let mut runs = Vec::new();
        for n in 0..2 {
            let mut run = queued("report");
            run.payload = json!({ "n": n });
            store.enqueue(&run, &job(0, 0, None)).await.expect("enqueue");
            runs.push(run);
        }
        let ids: Vec<RunId> = runs.iter().map(|run| run.id).rev().collect();
        assert_eq!(listed(store.as_ref(), "report", None).await, ids, "{name}");
        assert_eq!(
            listed(store.as_ref(), "report", Some(RunStatus::Queued)).await,
            ids,
            "{name}"
        );
        let claimed = store
            .claim("i1", &free("report"), at(1_000), 2)
            .await
            .expect("claim");
        assert_eq!(claimed.len(), 2, "{name}");
        // One goes on with its progress, the other ends, in one batch.
        let mut going = claimed[0].run.clone();
        going.progress = Some(Progress {
            fraction: 0.25,
            message: None,
        });
        let mut done = claimed[1].run.clone();
        done.status = RunStatus::Failed;
        done.finished_at = Some(at(2_000));
        done.error = Some("no paper".into());
        let written = store
            .put_claimed_many(&[
                (going.clone(), claimed[0].fence),
                (done.clone(), claimed[1].fence),
            ])
            .await
            .expect("the batch");
        assert_eq!(written, [true, true], "{name}");
        assert_eq!(listed(store.as_ref(), "report", None).await, ids, "{name}");
        assert_eq!(
            listed(store.as_ref(), "report", Some(RunStatus::Failed)).await,
            [done.id],
            "{name}"
        );
        assert!(
            listed(store.as_ref(), "report", Some(RunStatus::Queued))
                .await
                .is_empty(),
            "{name}"
        );
        let stored = store.get_run(done.id).await.expect("get").expect("run");
        assert_eq!(stored.status, RunStatus::Failed, "{name}");
        assert_eq!(stored.payload, done.payload, "{name}: the payload kept");
        assert_eq!(stored.queued_at, done.queued_at, "{name}");
        assert_eq!(stored.error.as_deref(), Some("no paper"), "{name}");
        let stored = store.get_run(going.id).await.expect("get").expect("run");
        assert_eq!(stored.progress.map(|p| p.fraction), Some(0.25), "{name}");
        // The other ends through one write.
        let mut ended = going.clone();
        ended.status = RunStatus::Succeeded;
        ended.finished_at = Some(at(3_000));
        assert!(
            store.put_claimed(&ended, claimed[0].fence).await.expect("put"),
            "{name}"
        );
        assert_eq!(listed(store.as_ref(), "report", None).await, ids, "{name}");
        assert_eq!(
            listed(store.as_ref(), "report", Some(RunStatus::Succeeded)).await,
            [ended.id],
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_live_run_per_task_and_key_held_by_the_store() {
    for backend in backends().await {
        let name = backend.name;
        let store = backend.open().await;
        // Sixteen callers enqueue the same key at once: one run, and everyone gets its id.
        let racers: Vec<_> = (0..16)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move {
                    let run = queued("report");
                    store
                        .enqueue(&run, &job(0, 0, Some("2026-11")))
                        .await
                        .expect("enqueue")
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for racer in racers {
            outcomes.push(racer.await.expect("join"));
        }
        let new: Vec<_> = outcomes
            .iter()
            .filter(|o| matches!(o, Enqueued::New(_)))
            .collect();
        assert_eq!(new.len(), 1, "{name}: {outcomes:?}");
        let live = new[0].run_id();
        assert!(
            outcomes.iter().all(|o| o.run_id() == live),
            "{name}: {outcomes:?}"
        );
        assert!(
            outcomes
                .iter()
                .all(|o| !matches!(o, Enqueued::Existing(_, due) if *due != at(0))),
            "{name}: a run joined is due when the live run is: {outcomes:?}"
        );
        // Another task, or another key, is another run.
        let other_key = store
            .enqueue(&queued("report"), &job(0, 0, Some("2026-12")))
            .await
            .expect("enqueue");
        assert!(matches!(other_key, Enqueued::New(_)), "{name}");
        let other_task = store
            .enqueue(&queued("digest"), &job(0, 0, Some("2026-11")))
            .await
            .expect("enqueue");
        assert!(matches!(other_task, Enqueued::New(_)), "{name}");
        // Still one while the run is running; a new one once it finished.
        let claimed = store
            .claim("i1", &free("report"), at(1_000), 10)
            .await
            .expect("claim");
        assert_eq!(claimed.len(), 2, "{name}");
        let again = store
            .enqueue(&queued("report"), &job(0, 0, Some("2026-11")))
            .await
            .expect("enqueue");
        assert!(
            matches!(again, Enqueued::Existing(id, due) if id == live && due == at(1_000)),
            "{name}: a running run is due at its claim's time: {again:?}"
        );
        let mut done = claimed
            .iter()
            .find(|c| c.run.id == live)
            .expect("the live run")
            .clone();
        done.run.status = RunStatus::Succeeded;
        done.run.finished_at = Some(at(2_000));
        assert!(
            store.put_claimed(&done.run, done.fence).await.expect("put"),
            "{name}"
        );
        let after = store
            .enqueue(&queued("report"), &job(0, 0, Some("2026-11")))
            .await
            .expect("enqueue");
        assert!(
            matches!(after, Enqueued::New(id) if id != live),
            "{name}: {after:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueues_made_together_each_land_once_as_they_were_asked() {
    for backend in backends().await {
        let name = backend.name;
        let store = backend.open().await;
        // Made at once, so that a store that sends enqueues together has many to send.
        let enqueues: Vec<_> = (0..300_i64)
            .map(|n| {
                let store = store.clone();
                tokio::spawn(async move {
                    let mut run = queued("many");
                    run.payload = json!({ "n": n });
                    let job = Job {
                        run_at: at(10 * (n % 3)),
                        priority: i32::try_from(n % 5).expect("small"),
                        key: None,
                        max_attempts: u32::try_from(1 + n % 4).expect("small"),
                    };
                    let enqueued = store.enqueue(&run, &job).await.expect("enqueue");
                    assert_eq!(enqueued, Enqueued::New(run.id));
                    (run.id, n)
                })
            })
            .collect();
        let mut asked = std::collections::HashMap::new();
        for enqueue in enqueues {
            let (id, n) = enqueue.await.expect("join");
            asked.insert(id, n);
        }
        let claimed = store
            .claim("a", &free("many"), at(1_000), 1_000)
            .await
            .expect("claim");
        assert_eq!(claimed.len(), 300, "{name}: every enqueue landed once");
        let mut order = Vec::new();
        for claimed in &claimed {
            let n = asked[&claimed.run.id];
            assert_eq!(claimed.run.payload, json!({ "n": n }), "{name}");
            assert_eq!(
                i64::from(claimed.max_attempts),
                1 + n % 4,
                "{name}: attempts of {n}"
            );
            order.push(-(n % 5));
        }
        // Highest priority first.
        assert!(order.is_sorted(), "{name}: claimed out of order: {order:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticks_claim_and_its_durable_run_are_one_write() {
    for backend in backends().await {
        let name = backend.name;
        let store = backend.open().await;
        let claim = |tick: i64| TickClaim {
            schedule: "nightly".into(),
            tick: at(tick),
            target: String::new(),
            instance: "a".into(),
            claimed_at: jiff::Timestamp::now(),
        };
        let run = queued("report");
        assert!(
            store
                .claim_tick_and_enqueue(&claim(1_000), &run, &job(0, 0, None))
                .await
                .expect("claim with run"),
            "{name}: the first claim lands"
        );
        assert!(
            !store.claim_tick(&claim(1_000)).await.expect("claim"),
            "{name}: the tick is claimed"
        );
        let claimed = store
            .claim("b", &free("report"), at(1_000), 10)
            .await
            .expect("claim");
        assert_eq!(
            claimed.iter().map(|c| c.run.id).collect::<Vec<_>>(),
            [run.id],
            "{name}: its run is in the queue"
        );

        // A tick claimed before writes no run.
        let late = queued("report");
        assert!(
            !store
                .claim_tick_and_enqueue(&claim(1_000), &late, &job(0, 0, None))
                .await
                .expect("claim with run"),
            "{name}"
        );
        assert_eq!(
            store.get_run(late.id).await.expect("get"),
            None,
            "{name}: no run written"
        );

        // A run that cannot be written leaves the tick unclaimed: here its id is taken by
        // the run above. (The memory store writes both under one lock and cannot fail.)
        if name != "memory" {
            let taken = store
                .claim_tick_and_enqueue(&claim(2_000), &run, &job(0, 0, None))
                .await;
            assert!(taken.is_err(), "{name}: {taken:?}");
            assert!(
                store.claim_tick(&claim(2_000)).await.expect("claim"),
                "{name}: the failed write claimed nothing"
            );
        }
    }
}

/// Four instances (each its own store, so its own claims together) claim the same 1,500
/// durable ticks with their runs at once, each in its own order: every tick is claimed by
/// exactly one, its run queued once, and no claim fails. A claim's transaction holds its
/// rows to its end, over more than one statement for 1,500 ticks: inserted in different
/// orders, PostgreSQL would find deadlocks between them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_ticks_claimed_together_by_racing_instances_each_run_once() {
    for backend in common::durable_backends().await {
        let name = backend.name;
        // Three rounds: a deadlock needs two transactions' statements to interleave.
        for round in 0..3 {
            let ticks: Vec<TickClaim> = (0..1_500)
                .map(|i| TickClaim {
                    schedule: format!("s{i}"),
                    tick: at(5_000 + round),
                    target: String::new(),
                    instance: "a".into(),
                    claimed_at: jiff::Timestamp::now(),
                })
                .collect();
            let start = std::sync::Arc::new(tokio::sync::Barrier::new(4));
            let mut racers = Vec::new();
            for racer in 0..4 {
                let store = backend.open().await;
                let start = start.clone();
                let mut ticks = ticks.clone();
                ticks.rotate_left(racer * 375);
                if racer % 2 == 1 {
                    ticks.reverse();
                }
                racers.push(tokio::spawn(async move {
                    start.wait().await;
                    let claims = ticks.into_iter().map(|tick| {
                        let store = store.clone();
                        async move {
                            let run = queued("report");
                            let claimed = store
                                .claim_tick_and_enqueue(&tick, &run, &job(0, 0, None))
                                .await
                                .expect("no claim fails");
                            claimed.then_some(tick.schedule)
                        }
                    });
                    futures_util::future::join_all(claims)
                        .await
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                }));
            }
            let mut won = Vec::new();
            for racer in racers {
                won.extend(racer.await.expect("join"));
            }
            won.sort();
            let mut all: Vec<String> = ticks.into_iter().map(|tick| tick.schedule).collect();
            all.sort();
            assert_eq!(won, all, "{name}: each tick claimed by exactly one instance");
        }
        let store = backend.open().await;
        let claimed = store
            .claim("b", &free("report"), at(1_000), 10_000)
            .await
            .expect("claim");
        assert_eq!(claimed.len(), 4_500, "{name}: one run a tick");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claimers_never_get_the_same_run() {
    for backend in backends().await {
        let name = backend.name;
        let store = backend.open().await;
        let mut ids = std::collections::HashSet::new();
        for _ in 0..200 {
            let run = queued("burn");
            store.enqueue(&run, &job(0, 0, None)).await.expect("enqueue");
            ids.insert(run.id);
        }
        let claimers: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let mut mine = Vec::new();
                    loop {
                        let batch = store
                            .claim(&format!("i{i}"), &free("burn"), at(1_000), 7)
                            .await
                            .expect("claim");
                        if batch.is_empty() {
                            return mine;
                        }
                        mine.extend(batch.into_iter().map(|c| c.run.id));
                    }
                })
            })
            .collect();
        let mut claimed = Vec::new();
        for claimer in claimers {
            claimed.extend(claimer.await.expect("join"));
        }
        assert_eq!(claimed.len(), 200, "{name}: every run claimed once, none twice");
        let unique: std::collections::HashSet<_> = claimed.iter().copied().collect();
        assert_eq!(unique, ids, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runs_of_a_claim_whose_answer_was_lost_go_back_to_the_queue() {
    for backend in backends().await {
        let name = backend.name;
        let store = backend.open().await;
        let (lost, kept) = (queued("mail"), queued("mail"));
        store.enqueue(&lost, &job(100, 0, None)).await.expect("enqueue");
        store.enqueue(&kept, &job(200, 0, None)).await.expect("enqueue");
        // Two claims of one instance, each at a millisecond of its own.
        let first = store
            .claim("i1", &free("mail"), at(1_000), 1)
            .await
            .expect("claim");
        let second = store
            .claim("i1", &free("mail"), at(1_001), 1)
            .await
            .expect("claim");
        assert_eq!(first[0].run.id, lost.id, "{name}");
        assert_eq!(second[0].run.id, kept.id, "{name}");
        // Neither another instance's name nor another time gives anything back.
        for (instance, time) in [("i2", at(1_000)), ("i1", at(999))] {
            let released = store
                .release_claim(instance, &free("mail"), time)
                .await
                .expect("release");
            assert_eq!(released, 0, "{name}: {instance} at {time}");
        }
        let released = store
            .release_claim("i1", &free("mail"), at(1_000))
            .await
            .expect("release");
        assert_eq!(released, 1, "{name}: the first claim's run");
        let back = store.get_run(lost.id).await.expect("get").expect("run");
        assert_eq!(back.status, RunStatus::Queued, "{name}: {back:?}");
        assert_eq!(back.started_at, None, "{name}: the claim was no start");
        // The claim's fence can write no more.
        let mut done = first[0].run.clone();
        done.status = RunStatus::Succeeded;
        done.finished_at = Some(at(1_500));
        assert!(
            !store.put_claimed(&done, first[0].fence).await.expect("put"),
            "{name}: the lost claim's write"
        );
        // Due again as it was queued: ahead of a run queued later and due before the claim.
        let later = queued("mail");
        store.enqueue(&later, &job(50, 0, None)).await.expect("enqueue");
        let again = store
            .claim("i2", &free("mail"), at(1_002), 1)
            .await
            .expect("claim");
        assert_eq!(again[0].run.id, lost.id, "{name}");
        assert_eq!(again[0].run.attempt, 1, "{name}: not counted as an attempt");
        assert!(
            again[0].fence > first[0].fence + 1,
            "{name}: {} after {}",
            again[0].fence,
            first[0].fence
        );
        // The other claim's run is still its instance's.
        let rest = store
            .claim("i2", &free("mail"), at(1_003), 10)
            .await
            .expect("claim");
        assert_eq!(
            rest.iter().map(|c| c.run.id).collect::<Vec<_>>(),
            [later.id],
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_runs_of_a_dead_instance_go_back_to_the_queue_as_their_next_attempt() {
    for backend in backends().await {
        let name = backend.name;
        let store = backend.open().await;
        store.heartbeat(&lease("dead", at(5_000))).await.expect("hb");
        store.heartbeat(&lease("live", at(60_000))).await.expect("hb");
        let twice = queued("mail");
        let once = Job {
            max_attempts: 1,
            ..job(0, 0, None)
        };
        let last = queued("mail");
        let plain = record("mail", RunStatus::Running, "dead", 0);
        store.enqueue(&twice, &job(0, 0, None)).await.expect("enqueue");
        store.enqueue(&last, &once).await.expect("enqueue");
        store.put_runs(std::slice::from_ref(&plain)).await.expect("put");
        let claimed = store
            .claim("dead", &free("mail"), at(50), 10)
            .await
            .expect("claim");
        assert_eq!(claimed.len(), 2, "{name}");
        // The dead instance's runs stay while its lease runs.
        let (requeued, abandoned) = store.requeue_orphans(at(4_000)).await.expect("rescue");
        assert!(requeued.is_empty() && abandoned.is_empty(), "{name}");
        // Queued meanwhile, due before the rescue: the rescued run still goes first.
        let behind = queued("mail");
        store
            .enqueue(&behind, &job(5_000, 0, None))
            .await
            .expect("enqueue");

        let (requeued, abandoned) = store.requeue_orphans(at(10_000)).await.expect("rescue");
        assert_eq!(requeued, [twice.id], "{name}");
        assert_eq!(abandoned, [last.id], "{name}");
        let again = store.get_run(twice.id).await.expect("get").expect("run");
        assert_eq!(again.status, RunStatus::Queued, "{name}");
        assert_eq!(again.attempt, 2, "{name}");
        assert_eq!(again.attempts.len(), 1, "{name}");
        assert_eq!(again.attempts[0].status, RunStatus::Abandoned, "{name}");
        assert_eq!(
            again.attempts[0].finished_at,
            at(100),
            "{name}: the lost attempt ends at the last heartbeat"
        );
        let ended = store.get_run(last.id).await.expect("get").expect("run");
        assert_eq!(ended.status, RunStatus::Abandoned, "{name}");
        assert!(
            ended
                .error
                .as_deref()
                .is_some_and(|e| e.contains("instance dead")),
            "{name}: {:?}",
            ended.error
        );
        // A second sweep (another instance's) finds nothing left to rescue.
        let (requeued, abandoned) = store.requeue_orphans(at(10_000)).await.expect("rescue");
        assert!(requeued.is_empty() && abandoned.is_empty(), "{name}");
        // The lost attempts write no more.
        for lost in &claimed {
            let mut late = lost.run.clone();
            late.status = RunStatus::Succeeded;
            assert!(
                !store.put_claimed(&late, lost.fence).await.expect("put"),
                "{name}"
            );
        }
        // A plain run of the dead instance is abandoned as before, by `mark_abandoned`.
        let marked = store.mark_abandoned(at(10_000)).await.expect("abandon");
        assert_eq!(marked, [plain.id], "{name}");
        // A live instance takes the run again, ahead of the run queued after it.
        let retaken = store
            .claim("live", &free("mail"), at(10_000), 1)
            .await
            .expect("claim");
        assert_eq!(retaken.len(), 1, "{name}");
        assert_eq!(
            retaken[0].run.id, twice.id,
            "{name}: a rescued run is due at its queueing time"
        );
        assert_eq!(retaken[0].run.attempt, 2, "{name}");
        assert_eq!(retaken[0].run.instance, "live", "{name}");
        assert!(retaken[0].fence > claimed[0].fence, "{name}");
        assert_eq!(
            again.attempts[0].started_at,
            at(50),
            "{name}: the lost attempt began at its claim"
        );
        // That instance dies too: its attempt began when it claimed the run, not at the run's
        // first start.
        let beat = InstanceLease {
            heartbeat_at: at(60_000),
            ..lease("live", at(61_000))
        };
        store.heartbeat(&beat).await.expect("hb");
        let (requeued, _) = store.requeue_orphans(at(90_000)).await.expect("rescue");
        assert_eq!(requeued, [twice.id], "{name}");
        let third = store.get_run(twice.id).await.expect("get").expect("run");
        assert_eq!(third.attempt, 3, "{name}");
        assert_eq!(
            third.started_at,
            Some(at(50)),
            "{name}: the run began at its first claim"
        );
        let lost = &third.attempts[1];
        assert_eq!(
            (lost.started_at, lost.finished_at),
            (at(10_000), at(60_000)),
            "{name}: the second attempt ran from its claim to its instance's last heartbeat"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_with_a_limit_never_has_more_running_across_claimers() {
    for backend in backends().await {
        let name = backend.name;
        let store = backend.open().await;
        for _ in 0..6 {
            store
                .enqueue(&queued("serial"), &job(0, 0, None))
                .await
                .expect("enqueue");
            store
                .enqueue(&queued("pair"), &job(0, 0, None))
                .await
                .expect("enqueue");
        }
        let tasks = vec![
            ClaimTask {
                name: "serial".into(),
                limit: Some(1),
                ended: Vec::new(),
            },
            ClaimTask {
                name: "pair".into(),
                limit: Some(2),
                ended: Vec::new(),
            },
        ];
        // Eight claimers at once, each asking for as many as it can get.
        let mut claims = Vec::new();
        for i in 0..8 {
            let store = store.clone();
            let tasks = tasks.clone();
            claims.push(tokio::spawn(async move {
                store
                    .claim(&format!("i{i}"), &tasks, at(1_000), 10)
                    .await
                    .expect("claim")
            }));
        }
        let mut claimed = Vec::new();
        for claim in claims {
            claimed.extend(claim.await.expect("claimer"));
        }
        let count = |task: &str| claimed.iter().filter(|c| c.run.task == task).count();
        assert_eq!(
            count("serial"),
            1,
            "{name}: one serial run at a time in the cluster"
        );
        assert_eq!(count("pair"), 2, "{name}: parallel(2)");

        // A run that ends makes room for the next, in the queue's order.
        let mut done = claimed
            .iter()
            .find(|c| c.run.task == "serial")
            .expect("serial")
            .clone();
        done.run.status = RunStatus::Succeeded;
        done.run.finished_at = Some(at(1_100));
        assert!(
            store.put_claimed(&done.run, done.fence).await.expect("end"),
            "{name}"
        );
        let next = store.claim("i9", &tasks, at(1_200), 10).await.expect("claim");
        assert_eq!(
            next.len(),
            1,
            "{name}: the next serial run, and no third pair run"
        );
        assert_eq!(next[0].run.task, "serial", "{name}");

        // A claimer whose ended run is still `running` in the store (its end on the way)
        // counts it out: room for one more pair run, and no more.
        let mut pair = claimed
            .iter()
            .find(|c| c.run.task == "pair")
            .expect("pair")
            .clone();
        let mut ended = tasks.clone();
        ended[1].ended = vec![pair.run.id];
        let more = store.claim("i1", &ended, at(1_300), 10).await.expect("claim");
        let tasks_of = |claimed: &[taskyard::store::Claimed]| {
            claimed.iter().map(|c| c.run.task.clone()).collect::<Vec<_>>()
        };
        assert_eq!(
            tasks_of(&more),
            ["pair"],
            "{name}: one pair run for the one that ended"
        );
        let none = store.claim("i1", &ended, at(1_400), 10).await.expect("claim");
        assert_eq!(
            tasks_of(&none),
            Vec::<String>::new(),
            "{name}: the ended run counted once"
        );
        // Its end lands before the claim: still counted out once, not twice.
        pair.run.status = RunStatus::Succeeded;
        pair.run.finished_at = Some(at(1_450));
        assert!(
            store.put_claimed(&pair.run, pair.fence).await.expect("end"),
            "{name}"
        );
        let none = store.claim("i1", &ended, at(1_500), 10).await.expect("claim");
        assert_eq!(
            tasks_of(&none),
            Vec::<String>::new(),
            "{name}: an end written meanwhile"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_waits_in_the_queue_and_a_finished_run_can_be_queued_again() {
    for backend in backends().await {
        let name = backend.name;
        let store = backend.open().await;
        let run = queued("mail");
        store.enqueue(&run, &job(0, 0, Some("k"))).await.expect("enqueue");
        let claimed = store.claim("i1", &free("mail"), at(100), 1).await.expect("claim");
        let claimed = claimed.into_iter().next().expect("claimed");

        // The attempt failed: back in the queue, due in 5 s, its claim over.
        let mut retry = claimed.run.clone();
        retry.status = RunStatus::Queued;
        retry.attempt = 2;
        assert!(
            store
                .requeue_claimed(&retry, claimed.fence, at(5_100))
                .await
                .expect("requeue"),
            "{name}"
        );
        assert!(
            !store
                .put_claimed(&claimed.run, claimed.fence)
                .await
                .expect("stale"),
            "{name}: the failed attempt's claim is over"
        );
        assert!(
            store
                .claim("i2", &free("mail"), at(5_000), 1)
                .await
                .expect("claim")
                .is_empty(),
            "{name}: not before its backoff"
        );
        let again = store
            .claim("i2", &free("mail"), at(5_100), 1)
            .await
            .expect("claim");
        assert_eq!(again.len(), 1, "{name}");
        assert_eq!(again[0].run.attempt, 2, "{name}");

        // It fails for good; a retry from history queues it again as attempt 3.
        let mut failed = again[0].run.clone();
        failed.status = RunStatus::Failed;
        failed.finished_at = Some(at(5_200));
        failed.error = Some("smtp down".into());
        assert!(
            store.put_claimed(&failed, again[0].fence).await.expect("end"),
            "{name}"
        );
        let mut next = failed.clone();
        next.status = RunStatus::Queued;
        next.attempt = 3;
        next.finished_at = None;
        next.error = None;
        let retry_job = Job {
            max_attempts: 3,
            ..job(6_000, 0, None)
        };
        // Its key is free again, but not if a new run of the task took it meanwhile.
        let holder = queued("mail");
        store
            .enqueue(&holder, &job(0, 0, Some("k")))
            .await
            .expect("enqueue holder");
        assert!(
            !store
                .requeue(&next, &retry_job, RunStatus::Failed)
                .await
                .expect("requeue"),
            "{name}: another live run holds the key"
        );
        assert_eq!(
            store.request_cancel(holder.id, at(5_900)).await.expect("cancel"),
            store
                .get_run(holder.id)
                .await
                .expect("get")
                .map(CancelRequest::Cancelled),
            "{name}: a queued durable run is cancelled at once"
        );
        assert!(
            store
                .requeue(&next, &retry_job, RunStatus::Failed)
                .await
                .expect("requeue"),
            "{name}"
        );
        assert!(
            !store
                .requeue(&next, &retry_job, RunStatus::Failed)
                .await
                .expect("requeue"),
            "{name}: only once: it is no longer failed"
        );
        let third = store
            .claim("i3", &free("mail"), at(6_000), 1)
            .await
            .expect("claim");
        assert_eq!(third.len(), 1, "{name}");
        assert_eq!(third[0].run.attempt, 3, "{name}");
        assert_eq!(third[0].max_attempts, 3, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_asked_anywhere_reaches_the_instance_of_the_run() {
    for backend in backends().await {
        let name = backend.name;
        let store = backend.open().await;
        store.heartbeat(&lease("a", at(60_000))).await.expect("hb");
        // A run in process on `a`, and a durable run `a` claimed.
        let plain = record("report", RunStatus::Running, "a", 0);
        store.put_runs(std::slice::from_ref(&plain)).await.expect("put");
        let durable = queued("mail");
        store.enqueue(&durable, &job(0, 0, None)).await.expect("enqueue");
        let claimed = store.claim("a", &free("mail"), at(100), 1).await.expect("claim");
        assert_eq!(claimed.len(), 1, "{name}");
        assert!(
            store.cancel_requests("a").await.expect("requests").is_empty(),
            "{name}"
        );

        for id in [plain.id, durable.id] {
            let request = store.request_cancel(id, at(200)).await.expect("cancel");
            assert!(
                matches!(request, Some(CancelRequest::Requested(ref run)) if run.instance == "a"),
                "{name}: {request:?}"
            );
        }
        let mut asked = store.cancel_requests("a").await.expect("requests");
        asked.sort();
        let mut expected = vec![plain.id, durable.id];
        expected.sort();
        assert_eq!(asked, expected, "{name}");
        assert!(
            store.cancel_requests("b").await.expect("requests").is_empty(),
            "{name}"
        );

        // `a` ends the runs: nothing is asked of it any more.
        let mut ended = plain.clone();
        ended.status = RunStatus::Cancelled;
        ended.finished_at = Some(at(300));
        store.put_runs(std::slice::from_ref(&ended)).await.expect("put");
        let mut ended = claimed[0].run.clone();
        ended.status = RunStatus::Cancelled;
        ended.finished_at = Some(at(300));
        assert!(
            store.put_claimed(&ended, claimed[0].fence).await.expect("end"),
            "{name}"
        );
        assert!(
            store.cancel_requests("a").await.expect("requests").is_empty(),
            "{name}"
        );
        assert!(
            matches!(
                store.request_cancel(plain.id, at(400)).await.expect("cancel"),
                Some(CancelRequest::Finished(_))
            ),
            "{name}"
        );
        assert_eq!(
            store.request_cancel(RunId::new(), at(400)).await.expect("cancel"),
            None,
            "{name}"
        );

        // An orphan someone asked to cancel ends `cancelled` instead of running again.
        let orphan = queued("mail");
        store.enqueue(&orphan, &job(0, 0, None)).await.expect("enqueue");
        store.heartbeat(&lease("dying", at(1_000))).await.expect("hb");
        let claimed = store
            .claim("dying", &free("mail"), at(500), 1)
            .await
            .expect("claim");
        assert_eq!(claimed.len(), 1, "{name}");
        store.request_cancel(orphan.id, at(600)).await.expect("cancel");
        let (requeued, ended) = store.requeue_orphans(at(2_000)).await.expect("rescue");
        assert!(requeued.is_empty(), "{name}");
        assert_eq!(ended, vec![orphan.id], "{name}");
        let stored = store.get_run(orphan.id).await.expect("get").expect("run");
        assert_eq!(stored.status, RunStatus::Cancelled, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_pauses_are_kept_for_every_instance() {
    for backend in backends().await {
        let name = backend.name;
        let store = backend.open().await;
        assert!(
            store.schedule_pauses().await.expect("pauses").is_empty(),
            "{name}"
        );
        let pause = |schedule: &str, paused: bool, ms: i64, instance: &str| SchedulePause {
            schedule: schedule.into(),
            paused,
            changed_at: at(ms),
            instance: instance.into(),
        };
        store
            .set_schedule_paused(&pause("nightly", true, 100, "a"))
            .await
            .expect("pause");
        store
            .set_schedule_paused(&pause("hourly", true, 150, "b"))
            .await
            .expect("pause");
        store
            .set_schedule_paused(&pause("nightly", false, 200, "c"))
            .await
            .expect("resume");
        assert_eq!(
            store.schedule_pauses().await.expect("pauses"),
            vec![pause("hourly", true, 150, "b"), pause("nightly", false, 200, "c")],
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_pushes_a_notice_for_each_queued_run_and_each_cancel() {
    for backend in backends().await {
        let name = backend.name;
        let store = backend.open().await;
        let Some(mut notices) = store.notices() else {
            assert_ne!(name, "postgres", "PostgreSQL pushes notices");
            continue;
        };
        // The listener connects in the background: enqueue until its first notice comes.
        let first = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            loop {
                store
                    .enqueue(&queued("mail"), &job(0, 0, None))
                    .await
                    .expect("enqueue");
                if let Ok(Some(notice)) =
                    tokio::time::timeout(std::time::Duration::from_millis(200), notices.recv()).await
                {
                    return notice;
                }
            }
        })
        .await
        .expect("a notice within 10 s");
        assert_eq!(first, Notice::Queued, "{name}");
        store.heartbeat(&lease("a", at(60_000))).await.expect("hb");
        let plain = record("report", RunStatus::Running, "a", 0);
        store.put_runs(std::slice::from_ref(&plain)).await.expect("put");
        store.request_cancel(plain.id, at(100)).await.expect("cancel");
        let cancel = tokio::time::timeout(std::time::Duration::from_secs(5), async {
            loop {
                match notices.recv().await.expect("open") {
                    Notice::Queued => continue,
                    cancel => return cancel,
                }
            }
        })
        .await
        .expect("the cancel's notice");
        assert_eq!(
            cancel,
            Notice::Cancel {
                instance: "a".into(),
                run: plain.id
            },
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claimed_writes_in_one_group_are_each_fenced() {
    for backend in backends().await {
        let name = backend.name;
        let store = backend.open().await;
        for _ in 0..2 {
            store
                .enqueue(&queued("mail"), &job(0, 0, None))
                .await
                .expect("enqueue");
        }
        let claimed = store.claim("i1", &free("mail"), at(100), 2).await.expect("claim");
        assert_eq!(claimed.len(), 2, "{name}");
        let mut ended: Vec<(taskyard::RunRecord, i64)> = claimed
            .iter()
            .map(|claim| {
                let mut run = claim.run.clone();
                run.status = RunStatus::Failed;
                run.attempt = 2;
                run.attempts = vec![Attempt {
                    attempt: 1,
                    status: RunStatus::TimedOut,
                    started_at: at(120),
                    finished_at: at(150),
                    error: Some("took \"too\" long".into()),
                    retry_delay_ms: 10,
                }];
                run.finished_at = Some(at(200));
                run.duration_ms = Some(80);
                // Every column the write changes, with quotes, a line break, characters
                // beyond ASCII, and a fraction binary cannot hold exactly.
                run.result = Some(json!({"say": "\"quoted\"\nünï ½", "n": [1, 2.5, null]}));
                run.error = Some("it's \"bad\"\n½".into());
                run.progress = Some(Progress {
                    fraction: 0.3,
                    message: Some("a ⅓ \"done\"".into()),
                });
                (run, claim.fence)
            })
            .collect();
        // The second one's claim is stale.
        ended[1].1 -= 1;
        let untouched = store.get_run(ended[1].0.id).await.expect("get").expect("run");
        let written = store.put_claimed_many(&ended).await.expect("written");
        assert_eq!(written, vec![true, false], "{name}");
        let first = store.get_run(ended[0].0.id).await.expect("get").expect("run");
        let second = store.get_run(ended[1].0.id).await.expect("get").expect("run");
        assert_eq!(first, ended[0].0, "{name}: every column as written");
        assert_eq!(second, untouched, "{name}: the stale write changed nothing");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forgotten_success_leaves_no_trace_and_a_stale_claim_forgets_nothing() {
    for backend in backends().await {
        let name = backend.name;
        let store = backend.open().await;
        let runs: Vec<_> = (0..3).map(|_| queued("mail")).collect();
        for run in &runs {
            let key = (run.id == runs[2].id).then_some("welcome");
            store.enqueue(run, &job(0, 0, key)).await.expect("enqueue");
        }
        let claimed = store.claim("i1", &free("mail"), at(100), 3).await.expect("claim");
        assert_eq!(claimed.len(), 3, "{name}");
        let fence = |id: RunId| {
            claimed
                .iter()
                .find(|claim| claim.run.id == id)
                .map(|claim| claim.fence)
                .expect("claimed")
        };
        // The second one's claim is stale: its attempt lost it.
        let forgets = vec![
            (runs[0].id, fence(runs[0].id)),
            (runs[1].id, fence(runs[1].id) - 1),
            (runs[2].id, fence(runs[2].id)),
        ];
        let untouched = store.get_run(runs[1].id).await.expect("get").expect("queued");
        let deleted = store.forget_claimed_many(&forgets).await.expect("forgotten");
        assert_eq!(deleted, vec![true, false, true], "{name}");
        assert_eq!(
            store.get_run(runs[0].id).await.expect("get"),
            None,
            "{name}: no record"
        );
        let stale = store.get_run(runs[1].id).await.expect("get").expect("kept");
        assert_eq!(stale, untouched, "{name}: the stale forget changed nothing");
        assert_eq!(
            listed(store.as_ref(), "mail", None).await,
            vec![runs[1].id],
            "{name}"
        );
        // Its key is free again: a new run with it is new, not joined.
        let again = queued("mail");
        let enqueued = store
            .enqueue(&again, &job(0, 0, Some("welcome")))
            .await
            .expect("enqueue");
        assert_eq!(enqueued, Enqueued::New(again.id), "{name}");
        // Forgetting it twice deletes nothing more.
        let twice = store.forget_claimed_many(&forgets[..1]).await.expect("forgotten");
        assert_eq!(twice, vec![false], "{name}");
        assert_eq!(
            store.forget_claimed_many(&[]).await.expect("none"),
            Vec::<bool>::new(),
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_of_runs_not_kept_add_up_with_the_records() {
    for backend in backends().await {
        let name = backend.name;
        let store = backend.open().await;
        // A kept success in the minute of `at(0)`.
        store
            .put_runs(&[record("mail", RunStatus::Succeeded, "i1", 0)])
            .await
            .expect("put");
        let count = |minute_ms: i64, task: &str, runs: u64| ForgottenCount {
            minute: at(minute_ms).as_millisecond(),
            task: task.into(),
            runs,
        };
        // Two instances, each into rows of its own; the first twice into the same row.
        store
            .count_forgotten("i1", &[count(0, "mail", 2), count(60_000, "mail", 1)])
            .await
            .expect("counted");
        store
            .count_forgotten("i1", &[count(0, "mail", 3)])
            .await
            .expect("added");
        store
            .count_forgotten("i2", &[count(0, "push", 4)])
            .await
            .expect("counted");
        store.count_forgotten("i2", &[]).await.expect("nothing");
        let succeeded = |bucket_ms: i64, since_ms: i64| {
            let store = store.clone();
            async move {
                store
                    .run_counts(at(since_ms), bucket_ms)
                    .await
                    .expect("counts")
                    .into_iter()
                    .map(
                        |RunCount {
                             bucket,
                             status,
                             count,
                         }| {
                            assert_eq!(status, RunStatus::Succeeded, "{name}");
                            (bucket, count)
                        },
                    )
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(
            succeeded(60_000, 0).await,
            vec![(at(0), 1 + 2 + 3 + 4), (at(60_000), 1)],
            "{name}: by the minute, with the record"
        );
        assert_eq!(
            succeeded(1_800_000, 0).await,
            vec![(at(0), 11)],
            "{name}: by the half hour"
        );
        // From the minute `since` falls in (the record, at 1 ms into it, is before it).
        assert_eq!(
            succeeded(60_000, 30_000).await,
            vec![(at(0), 9), (at(60_000), 1)],
            "{name}"
        );
        assert_eq!(succeeded(60_000, 60_000).await, vec![(at(60_000), 1)], "{name}");
        // By task, from the minute `since` falls in.
        let of = |task: &'static str, since_ms: i64| {
            let store = store.clone();
            async move { store.forgotten_runs(task, at(since_ms)).await.expect("counted") }
        };
        assert_eq!(
            (
                of("mail", 0).await,
                of("push", 0).await,
                of("mail", 60_500).await,
                of("nope", 0).await
            ),
            (6, 4, 1, 0),
            "{name}"
        );
        // Pruned with the runs that ended before the cutoff.
        store.prune_runs(at(60_000)).await.expect("pruned");
        assert_eq!(
            succeeded(60_000, 0).await,
            vec![(at(60_000), 1)],
            "{name}: pruned"
        );
    }
}

/// A durable run whose attempt failed and went back to the queue just as someone asked to
/// cancel it: the claim made while it waited had the cancel asked for, and the queued run
/// keeps it, due again at `due`. The next claim says so.
async fn a_retry_that_crossed_a_cancel(store: &dyn taskyard::store::Store, due: jiff::Timestamp) -> RunId {
    let run = queued("mail");
    store.enqueue(&run, &job(0, 0, None)).await.expect("enqueue");
    let claimed = store.claim("i1", &free("mail"), at(100), 1).await.expect("claim");
    let claimed = claimed.into_iter().next().expect("claimed");
    assert!(!claimed.cancel_requested);
    assert!(matches!(
        store.request_cancel(run.id, at(150)).await.expect("cancel"),
        Some(CancelRequest::Requested(_))
    ));
    let mut retry = claimed.run.clone();
    retry.status = RunStatus::Queued;
    retry.attempt = 2;
    assert!(
        store
            .requeue_claimed(&retry, claimed.fence, due)
            .await
            .expect("requeue")
    );
    run.id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_says_when_a_cancel_was_asked_for_while_the_run_waited() {
    for backend in backends().await {
        let name = backend.name;
        let store = backend.open().await;
        let id = a_retry_that_crossed_a_cancel(&*store, at(200)).await;
        let again = store.claim("i2", &free("mail"), at(300), 1).await.expect("claim");
        assert_eq!(again.len(), 1, "{name}");
        assert_eq!(again[0].run.id, id, "{name}");
        assert!(again[0].cancel_requested, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_claimed_with_a_cancel_asked_for_ends_cancelled_without_running() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use taskyard::{App, Task, TaskContext, TaskError};

    for backend in common::durable_backends().await {
        let name = backend.name;
        let due = jiff::Timestamp::now();
        let id = a_retry_that_crossed_a_cancel(&*backend.open().await, due).await;
        let ran = Arc::new(AtomicUsize::new(0));
        let counted = ran.clone();
        let app = App::new()
            .store(backend.config())
            .task(
                "mail",
                Task::new(move |_cx: TaskContext| {
                    counted.fetch_add(1, Ordering::SeqCst);
                    async { Ok::<_, TaskError>(()) }
                }),
            )
            .start()
            .await
            .expect("app starts");
        // Its end, as its callers wait for it (its status is checked below).
        tokio::time::timeout(std::time::Duration::from_secs(5), app.runtime().outcome(id))
            .await
            .unwrap_or_else(|_| panic!("{name}: the run did not end"))
            .ok();
        let ended = app.runtime().get_run(id).await.expect("read").expect("the run");
        assert_eq!(ended.status, RunStatus::Cancelled, "{name}: {ended:?}");
        assert_eq!(ran.load(Ordering::SeqCst), 0, "{name}: the body never ran");
        app.shutdown().await;
    }
}
