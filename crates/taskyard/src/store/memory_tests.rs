//! The memory store's own tests (the shared ones are in `tests/store_*.rs`).

use crate::history::Trigger;
use crate::store::memory::*;

/// Pruned durable runs leave nothing behind: their jobs once held every durable run
/// ever enqueued, and each claim walked them all.
#[tokio::test]
async fn pruning_a_durable_run_drops_its_job() {
    let store = MemoryStore::new();
    let now = Timestamp::now();
    let job = Job {
        run_at: now,
        priority: 0,
        key: None,
        max_attempts: 1,
    };
    for _ in 0..3 {
        let run = RunRecord::queued(
            "noop".into(),
            serde_json::Value::Null,
            Trigger::Manual,
            "a".into(),
            now,
        );
        store.enqueue(&run, &job).await.expect("enqueued");
    }
    let task = ClaimTask {
        name: "noop".into(),
        limit: None,
        ended: Vec::new(),
    };
    let claimed = store.claim("a", &[task], now, 2).await.expect("claimed");
    assert_eq!(claimed.len(), 2);
    for Claimed { mut run, fence, .. } in claimed {
        // Asked to stop while it ran, it ended first.
        store
            .request_cancel(run.id, now)
            .await
            .expect("a cancel requested");
        run.status = RunStatus::Succeeded;
        run.finished_at = Some(now);
        assert!(store.put_claimed(&run, fence).await.expect("ended"));
    }
    assert_eq!(
        store
            .prune_runs(now + jiff::SignedDuration::from_secs(1))
            .await
            .expect("pruned"),
        2
    );
    let tables = store.tables();
    // The queued run keeps its job; the two ended ones are gone with their records.
    assert_eq!(
        (tables.runs.len(), tables.jobs.len(), tables.cancels.len()),
        (1, 1, 0)
    );
}
