//! The memory store's queue: claims of due durable runs and the rescue of dead instances'
//! runs, each one step over the store's tables, as the SQL stores' statements are.

use std::collections::{HashMap, HashSet};

use jiff::Timestamp;

use super::Tables;
use crate::history::{RunId, RunStatus};
use crate::store::queue::rescued_due;
use crate::store::{ClaimTask, Claimed, Orphan, rescue};

impl Tables {
    /// Claims up to `limit` due runs of `tasks` for `instance` (see `Store::claim`).
    pub(super) fn claim(
        &mut self,
        instance: &str,
        tasks: &[ClaimTask],
        now: Timestamp,
        limit: usize,
    ) -> Vec<Claimed> {
        let Tables {
            runs, jobs, cancels, ..
        } = self;
        let limits: HashMap<&str, Option<u32>> = tasks
            .iter()
            .map(|task| (task.name.as_str(), task.limit))
            .collect();
        let ended: HashSet<RunId> = tasks.iter().flat_map(|task| task.ended.iter().copied()).collect();
        let mut running: HashMap<String, u32> = HashMap::new();
        for id in jobs.keys().filter(|id| !ended.contains(id)) {
            if let Some(run) = runs.get(id).filter(|run| run.status == RunStatus::Running) {
                *running.entry(run.task.clone()).or_default() += 1;
            }
        }
        let mut due: Vec<(i32, Timestamp, RunId)> = jobs
            .iter()
            .filter(|(id, (job, _))| {
                job.run_at <= now
                    && runs.get(id).is_some_and(|run| {
                        run.status == RunStatus::Queued && limits.contains_key(run.task.as_str())
                    })
            })
            .map(|(id, (job, _))| (job.priority, job.run_at, *id))
            .collect();
        due.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        let mut claimed = Vec::new();
        for (_, _, id) in due {
            if claimed.len() == limit {
                break;
            }
            let (Some(run), Some((job, fence))) = (runs.get_mut(&id), jobs.get_mut(&id)) else {
                continue;
            };
            let count = running.entry(run.task.clone()).or_default();
            if limits
                .get(run.task.as_str())
                .copied()
                .flatten()
                .is_some_and(|max| *count >= max)
            {
                continue;
            }
            *count += 1;
            run.status = RunStatus::Running;
            run.instance = instance.to_owned();
            run.started_at = run.started_at.or(Some(now));
            job.run_at = now;
            *fence += 1;
            claimed.push(Claimed {
                run: run.clone(),
                fence: *fence,
                max_attempts: job.max_attempts,
                cancel_requested: cancels.contains(&id),
            });
        }
        claimed
    }

    /// Gives back to the queue the runs of `tasks` that `instance`'s claim at `now` took
    /// (see `Store::release_claim`); returns how many.
    pub(super) fn release_claim(&mut self, instance: &str, tasks: &[ClaimTask], now: Timestamp) -> u64 {
        let Tables { runs, jobs, .. } = self;
        let mut released = 0;
        for (id, (job, fence)) in jobs.iter_mut() {
            let Some(run) = runs.get_mut(id) else {
                continue;
            };
            if run.status != RunStatus::Running
                || run.instance != instance
                || job.run_at != now
                || !tasks.iter().any(|task| task.name == run.task)
            {
                continue;
            }
            run.status = RunStatus::Queued;
            // The claim's time was no start; a run with earlier attempts keeps its first's.
            if run.attempts.is_empty() {
                run.started_at = None;
            }
            job.run_at = run.queued_at;
            *fence += 1;
            released += 1;
        }
        released
    }

    /// Queues again, or ends, the claimed runs of instances without a live lease at `now`
    /// (see `Store::requeue_orphans`): the ids queued again, then those ended.
    pub(super) fn requeue_orphans(&mut self, now: Timestamp) -> (Vec<RunId>, Vec<RunId>) {
        let Tables {
            runs,
            instances,
            jobs,
            cancels,
            ..
        } = self;
        let (mut requeued, mut abandoned) = (Vec::new(), Vec::new());
        for (id, (job, fence)) in jobs.iter_mut() {
            let Some(run) = runs.get_mut(id) else {
                continue;
            };
            let lease = instances.get(&run.instance);
            if run.status != RunStatus::Running || lease.is_some_and(|(lease, _)| lease.lease_until >= now) {
                continue;
            }
            let orphan = Orphan {
                run: run.clone(),
                fence: *fence,
                max_attempts: job.max_attempts,
                claimed_at: Some(job.run_at),
                seen: lease.map(|(_, seen)| *seen),
                cancel_requested: cancels.contains(id),
            };
            let (next, again) = rescue(&orphan, now);
            let due = rescued_due(&next, now);
            *run = next;
            // The lost attempt can write no more.
            *fence += 1;
            if again {
                job.run_at = due;
                requeued.push(*id);
            } else {
                abandoned.push(*id);
            }
        }
        (requeued, abandoned)
    }
}
