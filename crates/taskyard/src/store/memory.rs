//! [`MemoryStore`]: run history in this process's memory. Same behaviour as the SQL
//! stores, gone when the process ends.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;
use jiff::Timestamp;

use super::queue::minute_of;
use super::{
    Broadcast, CancelRequest, ClaimTask, Claimed, Enqueued, ForgottenCount, InstanceLease, Job, RunCount,
    RunFilter, SchedulePause, Store, TickClaim,
};
use crate::Error;
use crate::history::{RunId, RunRecord, RunStatus};

/// History kept in memory: lost with the process, for tests and single runs.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Tables>,
}

#[derive(Debug, Default)]
struct Tables {
    runs: BTreeMap<RunId, RunRecord>,
    /// Each instance's lease, with when its last heartbeat came (kept apart, as the SQL
    /// stores keep the column).
    instances: HashMap<String, (InstanceLease, Timestamp)>,
    /// (schedule, tick in ms, target) → its claim: when it was made, and by which instance
    ticks: HashMap<(String, i64, String), (Timestamp, String)>,
    last_ticks: HashMap<String, Timestamp>,
    broadcasts: Vec<Broadcast>,
    /// Durable runs: how each waits, and the fence of its current claim.
    jobs: HashMap<RunId, (Job, i64)>,
    /// Runs someone asked to cancel.
    cancels: HashSet<RunId>,
    /// Schedules paused or resumed, by name.
    pauses: BTreeMap<String, SchedulePause>,
    /// Succeeded runs not kept, by (minute they ended in, task).
    forgotten: BTreeMap<(i64, String), u64>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore::default()
    }

    fn tables(&self) -> std::sync::MutexGuard<'_, Tables> {
        // Every critical section is a handful of map operations that cannot panic.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Tables {
    /// Claims `claim`'s tick in the ledger; true if this call made the claim.
    fn claim_tick(&mut self, claim: &TickClaim) -> bool {
        let key = (
            claim.schedule.clone(),
            claim.tick.as_millisecond(),
            claim.target.clone(),
        );
        if self.ticks.contains_key(&key) {
            return false;
        }
        self.ticks.insert(key, (claim.claimed_at, claim.instance.clone()));
        let last = self
            .last_ticks
            .entry(claim.schedule.clone())
            .or_insert(claim.tick);
        *last = (*last).max(claim.tick);
        true
    }
}

#[async_trait]
impl Store for MemoryStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn put_runs(&self, runs: &[RunRecord]) -> Result<(), Error> {
        let mut tables = self.tables();
        for run in runs {
            tables.runs.insert(run.id, run.clone());
        }
        Ok(())
    }

    async fn get_run(&self, id: RunId) -> Result<Option<RunRecord>, Error> {
        Ok(self.tables().runs.get(&id).cloned())
    }

    async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, Error> {
        Ok(self
            .tables()
            .runs
            .values()
            .rev()
            .filter(|run| filter.matches(run))
            .take(filter.limit)
            .cloned()
            .collect())
    }

    async fn heartbeat(&self, lease: &InstanceLease) -> Result<(), Error> {
        self.tables()
            .instances
            .insert(lease.instance.clone(), (lease.clone(), lease.heartbeat_at));
        Ok(())
    }

    async fn release_instance(&self, instance: &str) -> Result<(), Error> {
        self.tables().instances.remove(instance);
        Ok(())
    }

    async fn mark_abandoned(&self, now: Timestamp) -> Result<Vec<RunId>, Error> {
        let mut tables = self.tables();
        let Tables {
            runs,
            instances,
            jobs,
            ..
        } = &mut *tables;
        let live = |instance: &str| {
            instances
                .get(instance)
                .is_some_and(|(lease, _)| lease.lease_until >= now)
        };
        let mut marked = Vec::new();
        for run in runs.values_mut() {
            // Durable runs are rescued by `requeue_orphans`; a queued one belongs to no
            // instance.
            if !run.status.is_final() && !jobs.contains_key(&run.id) && !live(&run.instance) {
                run.error = Some(format!(
                    "abandoned: instance {} stopped renewing its lease while the run was {}",
                    run.instance, run.status
                ));
                run.status = RunStatus::Abandoned;
                // The run ends at its instance's last sign of life, when that is known.
                let seen = instances.get(&run.instance).map(|(_, seen)| *seen);
                let ended = |from: Timestamp| seen.map_or(now, |seen| seen.max(from).min(now));
                run.finished_at = Some(ended(run.started_at.unwrap_or(run.queued_at)));
                run.duration_ms = run
                    .started_at
                    .map(|start| crate::history::duration_ms(start, ended(start)));
                marked.push(run.id);
            }
        }
        instances.retain(|_, (lease, _)| lease.lease_until >= now);
        Ok(marked)
    }

    async fn prune_runs(&self, finished_before: Timestamp) -> Result<u64, Error> {
        let mut tables = self.tables();
        let Tables {
            runs, jobs, cancels, ..
        } = &mut *tables;
        let before = runs.len();
        runs.retain(|_, run| run.finished_at.is_none_or(|at| at >= finished_before));
        let pruned = (before - runs.len()) as u64;
        // A durable run's job and cancel request go with its record: an ended run keeps its
        // job for its fence and key, which a retry from history takes up again.
        jobs.retain(|id, _| runs.contains_key(id));
        cancels.retain(|id| runs.contains_key(id));
        // Each schedule's latest tick is kept apart in `last_ticks`.
        tables
            .ticks
            .retain(|_, (claimed_at, _)| *claimed_at >= finished_before);
        tables
            .broadcasts
            .retain(|broadcast| broadcast.sent_at >= finished_before);
        let cutoff = finished_before.as_millisecond();
        tables.forgotten.retain(|(minute, _), _| *minute >= cutoff);
        Ok(pruned)
    }

    async fn claim_tick(&self, claim: &TickClaim) -> Result<bool, Error> {
        Ok(self.tables().claim_tick(claim))
    }

    async fn claim_tick_again(&self, claim: &TickClaim) -> Result<bool, Error> {
        let mut tables = self.tables();
        let key = (
            claim.schedule.clone(),
            claim.tick.as_millisecond(),
            claim.target.clone(),
        );
        Ok(match tables.ticks.get(&key) {
            Some((claimed_at, instance)) => *instance == claim.instance && *claimed_at == claim.claimed_at,
            None => tables.claim_tick(claim),
        })
    }

    async fn last_tick(&self, schedule: &str) -> Result<Option<Timestamp>, Error> {
        Ok(self.tables().last_ticks.get(schedule).copied())
    }

    async fn live_instances(&self, now: Timestamp, seen_since: Timestamp) -> Result<Vec<String>, Error> {
        let mut live: Vec<String> = self
            .tables()
            .instances
            .values()
            .filter(|(lease, seen)| lease.lease_until >= now && *seen >= seen_since)
            .map(|(lease, _)| lease.instance.clone())
            .collect();
        live.sort();
        Ok(live)
    }

    async fn instances(&self) -> Result<Vec<InstanceLease>, Error> {
        let mut leases: Vec<InstanceLease> = self
            .tables()
            .instances
            .values()
            .map(|(lease, _)| lease.clone())
            .collect();
        leases.sort_by(|a, b| a.instance.cmp(&b.instance));
        Ok(leases)
    }

    async fn run_counts(&self, since: Timestamp, bucket_ms: i64) -> Result<Vec<RunCount>, Error> {
        let bucket_ms = bucket_ms.max(1);
        let mut counts: std::collections::BTreeMap<(i64, &'static str), (RunStatus, u64)> =
            Default::default();
        let tables = self.tables();
        let records = tables.runs.values().filter_map(|run| {
            let finished = run.finished_at.filter(|finished| *finished >= since)?;
            Some((finished.as_millisecond(), run.status, 1))
        });
        let forgotten = tables
            .forgotten
            .range((minute_of(since), String::new())..)
            .map(|((minute, _), runs)| (*minute, RunStatus::Succeeded, *runs));
        for (at, status, runs) in records.chain(forgotten) {
            let bucket = at.div_euclid(bucket_ms) * bucket_ms;
            counts.entry((bucket, status.as_str())).or_insert((status, 0)).1 += runs;
        }
        drop(tables);
        counts
            .into_iter()
            .map(|((bucket, _), (status, count))| {
                Ok(RunCount {
                    bucket: Timestamp::from_millisecond(bucket).map_err(|e| Error::StoreData {
                        backend: "memory",
                        message: format!("a bucket's time: {e}"),
                    })?,
                    status,
                    count,
                })
            })
            .collect()
    }

    async fn broadcast(&self, broadcast: &Broadcast) -> Result<(), Error> {
        self.tables().broadcasts.push(broadcast.clone());
        Ok(())
    }

    async fn broadcasts_since(&self, since: Timestamp) -> Result<Vec<Broadcast>, Error> {
        let mut found: Vec<Broadcast> = self
            .tables()
            .broadcasts
            .iter()
            .filter(|broadcast| broadcast.sent_at >= since)
            .cloned()
            .collect();
        found.sort_by(|a, b| (a.sent_at, &a.id).cmp(&(b.sent_at, &b.id)));
        Ok(found)
    }

    async fn enqueue(&self, run: &RunRecord, job: &Job) -> Result<Enqueued, Error> {
        let mut tables = self.tables();
        if let Some(key) = &job.key {
            let live = tables.jobs.iter().find_map(|(id, (other, _))| {
                let record = tables.runs.get(id)?;
                (other.key.as_ref() == Some(key) && record.task == run.task && !record.status.is_final())
                    .then_some((*id, other.run_at))
            });
            if let Some((id, due)) = live {
                return Ok(Enqueued::Existing(id, due));
            }
        }
        tables.runs.insert(run.id, run.clone());
        tables.jobs.insert(run.id, (job.clone(), 0));
        Ok(Enqueued::New(run.id))
    }

    async fn claim_tick_and_enqueue(
        &self,
        claim: &TickClaim,
        run: &RunRecord,
        job: &Job,
    ) -> Result<bool, Error> {
        let mut tables = self.tables();
        if !tables.claim_tick(claim) {
            return Ok(false);
        }
        tables.runs.insert(run.id, run.clone());
        tables.jobs.insert(
            run.id,
            (
                Job {
                    key: None,
                    ..job.clone()
                },
                0,
            ),
        );
        Ok(true)
    }

    async fn claim(
        &self,
        instance: &str,
        tasks: &[ClaimTask],
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Claimed>, Error> {
        Ok(self.tables().claim(instance, tasks, now, limit))
    }

    async fn release_claim(&self, instance: &str, tasks: &[ClaimTask], now: Timestamp) -> Result<u64, Error> {
        Ok(self.tables().release_claim(instance, tasks, now))
    }

    async fn put_claimed(&self, run: &RunRecord, fence: i64) -> Result<bool, Error> {
        let mut tables = self.tables();
        if tables.jobs.get(&run.id).map(|(_, current)| *current) != Some(fence) {
            return Ok(false);
        }
        tables.runs.insert(run.id, run.clone());
        Ok(true)
    }

    async fn forget_claimed_many(&self, runs: &[(RunId, i64)]) -> Result<Vec<bool>, Error> {
        let mut tables = self.tables();
        Ok(runs
            .iter()
            .map(|(id, fence)| {
                if tables.jobs.get(id).map(|(_, current)| *current) != Some(*fence) {
                    return false;
                }
                tables.jobs.remove(id);
                tables.runs.remove(id);
                tables.cancels.remove(id);
                true
            })
            .collect())
    }

    async fn forgotten_runs(&self, task: &str, since: Timestamp) -> Result<u64, Error> {
        let tables = self.tables();
        let since = tables.forgotten.range((minute_of(since), String::new())..);
        Ok(since
            .filter(|((_, of), _)| of == task)
            .map(|(_, runs)| runs)
            .sum())
    }

    async fn count_forgotten(&self, _writer: &str, counts: &[ForgottenCount]) -> Result<(), Error> {
        let mut tables = self.tables();
        for count in counts {
            *tables
                .forgotten
                .entry((count.minute, count.task.clone()))
                .or_default() += count.runs;
        }
        Ok(())
    }

    async fn requeue_orphans(&self, now: Timestamp) -> Result<(Vec<RunId>, Vec<RunId>), Error> {
        Ok(self.tables().requeue_orphans(now))
    }

    async fn requeue_claimed(&self, run: &RunRecord, fence: i64, run_at: Timestamp) -> Result<bool, Error> {
        let mut tables = self.tables();
        let Tables { runs, jobs, .. } = &mut *tables;
        match jobs.get_mut(&run.id) {
            Some((job, current)) if *current == fence => {
                job.run_at = run_at;
                *current += 1;
                runs.insert(run.id, run.clone());
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn requeue(&self, run: &RunRecord, job: &Job, finished_as: RunStatus) -> Result<bool, Error> {
        let mut tables = self.tables();
        if tables.runs.get(&run.id).map(|stored| stored.status) != Some(finished_as) {
            return Ok(false);
        }
        let Tables {
            runs, jobs, cancels, ..
        } = &mut *tables;
        let key = jobs.get(&run.id).and_then(|(job, _)| job.key.clone());
        if let Some(key) = &key {
            let held = jobs.iter().any(|(id, (other, _))| {
                *id != run.id
                    && other.key.as_ref() == Some(key)
                    && runs
                        .get(id)
                        .is_some_and(|other| other.task == run.task && !other.status.is_final())
            });
            if held {
                return Ok(false);
            }
        }
        let fence = jobs.get(&run.id).map_or(0, |(_, fence)| *fence) + 1;
        jobs.insert(run.id, (Job { key, ..job.clone() }, fence));
        cancels.remove(&run.id);
        runs.insert(run.id, run.clone());
        Ok(true)
    }

    async fn request_cancel(&self, id: RunId, now: Timestamp) -> Result<Option<CancelRequest>, Error> {
        let mut tables = self.tables();
        let Tables {
            runs, jobs, cancels, ..
        } = &mut *tables;
        let Some(run) = runs.get_mut(&id) else {
            return Ok(None);
        };
        if run.status.is_final() {
            return Ok(Some(CancelRequest::Finished(run.clone())));
        }
        match jobs.get_mut(&id) {
            Some((_, fence)) if run.status == RunStatus::Queued => {
                *fence += 1;
                run.status = RunStatus::Cancelled;
                run.finished_at = Some(now);
                run.error = Some("cancelled".to_owned());
                Ok(Some(CancelRequest::Cancelled(run.clone())))
            }
            _ => {
                cancels.insert(id);
                Ok(Some(CancelRequest::Requested(run.clone())))
            }
        }
    }

    async fn cancel_requests(&self, instance: &str) -> Result<Vec<RunId>, Error> {
        let tables = self.tables();
        Ok(tables
            .cancels
            .iter()
            .filter(|id| {
                tables
                    .runs
                    .get(id)
                    .is_some_and(|run| run.instance == instance && !run.status.is_final())
            })
            .copied()
            .collect())
    }

    async fn set_schedule_paused(&self, pause: &SchedulePause) -> Result<(), Error> {
        self.tables().pauses.insert(pause.schedule.clone(), pause.clone());
        Ok(())
    }

    async fn schedule_pauses(&self) -> Result<Vec<SchedulePause>, Error> {
        Ok(self.tables().pauses.values().cloned().collect())
    }
}

#[path = "memory_queue.rs"]
mod queue;

#[cfg(test)]
#[path = "memory_tests.rs"]
mod tests;
