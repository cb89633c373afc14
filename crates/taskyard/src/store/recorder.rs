//! [`Recorder`]: writes run records to the store in batches, off the run path.
//!
//! Runs hand records to an unbounded channel and go on; a writer task drains up to
//! [`MAX_BATCH`] at a time, keeps only the latest state of each run, and writes them in one
//! transaction. A store may take claimed runs' states on several lanes at once (see
//! `Store::write_lanes`): each lane is a writer of its own, and every state of one run goes
//! to the same lane, so a run's states are still written in order. A run's final record is
//! acknowledged: the run's callers get its result only after the store has it, so no
//! acknowledged run is lost. Failed writes are retried with backoff until they succeed or
//! the app stops.
//!
//! Callers never wait on a failing store for longer than the store timeout: past it they
//! get [`Error::StoreUnavailable`] (503 over HTTP), and their records stay queued, to be
//! written once the store takes writes again. Each write's outcome updates the shared
//! [`StoreHealth`].

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;

use super::forgotten::Forgotten;
use super::health::Writer;
use super::{Store, StoreHealth};
use crate::Error;
use crate::history::{RunId, RunRecord};
use crate::sync::lock;

/// Records per transaction. Large enough to amortise commits, small enough to keep the
/// statement under SQLite's bound-parameter limit (17 columns × 512 rows).
pub(crate) const MAX_BATCH: usize = 512;

// `Put` dominates the traffic, so boxing it would add an allocation per record for nothing.
#[allow(clippy::large_enum_variant)]
enum Command {
    Put(RunRecord, Option<oneshot::Sender<()>>),
    /// A claimed durable run's state, written only while `i64` is still its fence.
    PutClaimed(RunRecord, i64, Claimed),
    Flush(oneshot::Sender<()>),
    /// Write what is queued, then stop.
    Close,
}

#[derive(Clone)]
pub(crate) struct Recorder {
    /// The lanes' channels; the first also takes the records of runs not claimed from the
    /// queue, and every lane takes flushes.
    lanes: Arc<[mpsc::UnboundedSender<Command>]>,
    health: Arc<StoreHealth>,
    backend: &'static str,
    /// How long a caller waits for a write before it is told the store is unavailable.
    timeout: Duration,
    /// Told after each group of claimed runs' writes is committed.
    claimed_written: Arc<Notify>,
    /// Per task, the claimed runs whose end is queued here and not yet committed.
    ended: Ended,
    /// The succeeded runs not kept, counted here.
    forgotten: Arc<Forgotten>,
    /// Claimed runs whose writes the store refused.
    refused: Arc<Refused>,
}

/// Claimed runs whose writes the store refused, each with the fence the refused write
/// carried: the run is another attempt's now (its claim was handed on), and the attempt
/// with that fence must stop where it runs.
#[derive(Debug, Default)]
pub(crate) struct Refused {
    runs: Mutex<Vec<(RunId, i64)>>,
    told: Notify,
}

impl Refused {
    fn add(&self, refused: impl IntoIterator<Item = (RunId, i64)>) {
        let mut runs = lock(&self.runs);
        let before = runs.len();
        runs.extend(refused);
        if runs.len() > before {
            drop(runs);
            self.told.notify_one();
        }
    }

    /// The refused runs told since the last call.
    pub fn take(&self) -> Vec<(RunId, i64)> {
        std::mem::take(&mut *lock(&self.runs))
    }

    /// Resolves once runs were refused since the last [`Refused::take`] (or at once if
    /// some were told before the call).
    pub async fn told(&self) {
        self.told.notified().await;
    }
}

/// What a claimed run's write is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Claimed {
    /// A state of the run while it goes on.
    State,
    /// Its end, recorded.
    End,
    /// Its end, a success its task does not keep: the job is deleted and no record written.
    Forgotten,
}

/// Per task, the claimed runs whose ends are on their way to the store.
type Ended = Arc<Mutex<HashMap<String, HashSet<RunId>>>>;

impl Recorder {
    /// Starts the writers of `store` for the instance `instance`; their tasks come back
    /// with the recorder, each ending once the recorder is closed and its writes are done.
    pub fn spawn(
        store: Arc<dyn Store>,
        health: Arc<StoreHealth>,
        timeout: Duration,
        instance: &str,
    ) -> (Recorder, Vec<JoinHandle<()>>) {
        let backend = store.backend();
        let claimed_written = Arc::new(Notify::new());
        let ended = Ended::default();
        let refused = Arc::new(Refused::default());
        let forgotten = Arc::new(Forgotten::new(store.clone(), instance));
        // Each lane holds a sender until it ends: the counts' writer writes once more then.
        let (alive, lanes_gone) = mpsc::channel::<()>(1);
        let (lanes, mut writers): (Vec<_>, Vec<_>) = (0..store.write_lanes().max(1))
            .map(|_| {
                let (tx, rx) = mpsc::unbounded_channel();
                let writer = tokio::spawn(write_loop(
                    store.clone(),
                    health.clone(),
                    (claimed_written.clone(), ended.clone(), refused.clone()),
                    (forgotten.clone(), alive.clone()),
                    rx,
                ));
                (tx, writer)
            })
            .unzip();
        drop(alive);
        writers.push(tokio::spawn(forgotten.clone().write_while(timeout, lanes_gone)));
        let recorder = Recorder {
            lanes: lanes.into(),
            health,
            backend,
            timeout,
            claimed_written,
            ended,
            forgotten,
            refused,
        };
        (recorder, writers)
    }

    /// The first lane's channel.
    fn first(&self) -> &mpsc::UnboundedSender<Command> {
        &self.lanes[0]
    }

    /// The channel of the lane that takes `run`'s claimed states.
    fn lane_of(&self, run: RunId) -> &mpsc::UnboundedSender<Command> {
        &self.lanes[run.spread(self.lanes.len())]
    }

    /// Queues a record without waiting.
    pub fn put(&self, run: RunRecord) {
        let _ = self.first().send(Command::Put(run, None));
    }

    /// Queues a record and waits until it is committed, for at most the store timeout.
    pub async fn put_durable(&self, run: RunRecord) -> Result<(), Error> {
        let (ack, acked) = oneshot::channel();
        self.first()
            .send(Command::Put(run, Some(ack)))
            .map_err(|_| Error::ShuttingDown)?;
        self.wait(acked, self.timeout).await
    }

    /// Queues a claimed run's state, fenced by its claim, without waiting: a write the
    /// store refuses because the claim was lost is logged, and a run whose end was never
    /// written is queued again once its instance's lease is gone.
    pub fn put_claimed(&self, run: RunRecord, fence: i64) {
        let _ = self
            .lane_of(run.id)
            .send(Command::PutClaimed(run, fence, Claimed::State));
    }

    /// [`Recorder::put_claimed`] for a claimed run's end: until it is committed, the run
    /// is counted in [`Recorder::ended_unwritten`]. With `kept` false (a success its task
    /// does not keep), the run's job is deleted and no record is written.
    pub fn put_claimed_end(&self, run: RunRecord, fence: i64, kept: bool) {
        lock(&self.ended)
            .entry(run.task.clone())
            .or_default()
            .insert(run.id);
        let write = if kept { Claimed::End } else { Claimed::Forgotten };
        let _ = self.lane_of(run.id).send(Command::PutClaimed(run, fence, write));
    }

    /// `task`'s claimed runs that ended here with their ends not yet committed: the store
    /// still holds them `running`, but their room under the task's limit is free.
    pub fn ended_unwritten(&self, task: &str) -> Vec<RunId> {
        lock(&self.ended)
            .get(task)
            .map(|ids| ids.iter().copied().collect())
            .unwrap_or_default()
    }

    /// How many claimed runs ended here with their ends not yet committed, of every task.
    pub fn ends_unwritten(&self) -> usize {
        lock(&self.ended).values().map(HashSet::len).sum()
    }

    /// Notified each time a group of claimed runs' writes is committed: runs that ended
    /// left room under their tasks' limits across the cluster.
    pub fn claimed_written(&self) -> Arc<Notify> {
        self.claimed_written.clone()
    }

    /// Where the claimed runs whose writes the store refused are told.
    pub fn refused(&self) -> Arc<Refused> {
        self.refused.clone()
    }

    /// Writes everything queued so far, then stops the writer; later records are refused.
    pub fn close(&self) {
        for lane in self.lanes.iter() {
            let _ = lane.send(Command::Close);
        }
    }

    /// Waits until everything queued before this call is committed, for at most the
    /// store timeout.
    pub async fn flush(&self) -> Result<(), Error> {
        self.flush_within(self.timeout).await
    }

    /// Waits until everything queued before this call is committed, and the counts of the
    /// runs not kept among it written, for at most `limit`.
    pub async fn flush_within(&self, limit: Duration) -> Result<(), Error> {
        let acks: Vec<_> = self
            .lanes
            .iter()
            .filter_map(|lane| {
                let (ack, acked) = oneshot::channel();
                lane.send(Command::Flush(ack)).is_ok().then_some(acked)
            })
            .collect();
        // Every lane gets its flush before any is waited for, so one wait bounds them all.
        let forgotten = &self.forgotten;
        let all = async move {
            for acked in acks {
                acked.await?;
            }
            // Apart, so that a wait cut short by `limit` does not drop counts taken out;
            // nothing at all when none were added (the usual flush, a request's `202`).
            if let Some(write) = forgotten.write_apart() {
                let _ = write.await;
            }
            Ok(())
        };
        self.wait(all, limit).await
    }

    /// How long callers wait for the store.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    async fn wait<T>(
        &self,
        acked: impl Future<Output = Result<T, oneshot::error::RecvError>>,
        limit: Duration,
    ) -> Result<T, Error> {
        match tokio::time::timeout(limit, acked).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err(Error::ShuttingDown),
            Err(_) => Err(self.unavailable("a write", limit)),
        }
    }

    /// The error for `what` (a write, a read) that the store did not answer within `limit`.
    pub fn unavailable(&self, what: &str, limit: Duration) -> Error {
        let cause = match self.health.failure() {
            Some(failure) => format!("; its latest error: {}", failure.error),
            None => String::new(),
        };
        let kept = if what == "a write" {
            " The record is kept and written when the store is back;"
        } else {
            ""
        };
        Error::StoreUnavailable {
            backend: self.backend,
            message: format!(
                "{what} was not confirmed within {}ms{cause}.{kept} retry later",
                limit.as_millis()
            ),
        }
    }
}

async fn write_loop(
    store: Arc<dyn Store>,
    health: Arc<StoreHealth>,
    (claimed_written, ended, refused_runs): (Arc<Notify>, Ended, Arc<Refused>),
    // Held until this lane ends (see `Forgotten::write_while`).
    (forgotten, _alive): (Arc<Forgotten>, mpsc::Sender<()>),
    mut rx: mpsc::UnboundedReceiver<Command>,
) {
    let mut commands = Vec::with_capacity(MAX_BATCH);
    let mut batch: Vec<RunRecord> = Vec::with_capacity(MAX_BATCH);
    let mut index: HashMap<RunId, usize> = HashMap::with_capacity(MAX_BATCH);
    let mut acks = Vec::new();
    let mut claimed = Vec::new();
    let mut ends: Vec<(String, RunId)> = Vec::new();
    let mut closing = false;
    while !closing && rx.recv_many(&mut commands, MAX_BATCH).await > 0 {
        for command in commands.drain(..) {
            match command {
                Command::Put(run, ack) => {
                    // Later states of a run replace earlier ones in the same batch.
                    match index.get(&run.id) {
                        Some(&at) => batch[at] = run,
                        None => {
                            index.insert(run.id, batch.len());
                            batch.push(run);
                        }
                    }
                    acks.extend(ack);
                }
                Command::PutClaimed(run, fence, write) => {
                    if write != Claimed::State {
                        ends.push((run.task.clone(), run.id));
                    }
                    claimed.push((run, fence, write));
                }
                Command::Flush(ack) => acks.push(ack),
                Command::Close => closing = true,
            }
        }
        write_with_retry(store.as_ref(), &health, &batch).await;
        batch.clear();
        index.clear();
        // Claimed runs in one transaction, each write fenced on its own; of a run's
        // states in this batch only the last is written. Successes their tasks do not keep
        // are deleted in a second one.
        if !claimed.is_empty() {
            let (latest, forgets) = latest_claimed(&mut claimed);
            // Either may be empty: every store answers an empty batch at once.
            let written = retrying(&health, (latest.len(), "claimed runs"), || {
                store.put_claimed_many(&latest)
            })
            .await;
            let ids: Vec<(RunId, i64)> = forgets.iter().map(|(run, fence)| (run.id, *fence)).collect();
            let deleted = retrying(&health, (ids.len(), "ended claimed runs"), || {
                store.forget_claimed_many(&ids)
            })
            .await;
            for ((run, _), deleted) in forgets.iter().zip(&deleted) {
                if *deleted {
                    forgotten.add(run);
                }
            }
            let tried = latest.iter().map(|(run, fence)| (run.id, *fence)).zip(written);
            let refused: Vec<(RunId, i64)> = tried
                .chain(ids.iter().copied().zip(deleted))
                .filter_map(|(claim, written)| (!written).then_some(claim))
                .collect();
            for (run_id, fence) in &refused {
                tracing::warn!(%run_id, fence, "a write of an attempt that lost its claim was refused");
            }
            refused_runs.add(refused);
            // Committed (or refused: the run is another attempt's now), so no longer
            // `running` on this instance's account.
            let mut ended = lock(&ended);
            for (task, id) in ends.drain(..) {
                if let Some(ids) = ended.get_mut(&task) {
                    ids.remove(&id);
                }
            }
            drop(ended);
            claimed_written.notify_one();
        }
        for ack in acks.drain(..) {
            let _ = ack.send(());
        }
    }
}

/// A claimed run's write, fenced by the `i64`, as the writer collects them.
type ClaimedWrite = (RunRecord, i64, Claimed);

/// The states and ends to write, and the ends to forget, each with its claim's fence.
type Split = (Vec<(RunRecord, i64)>, Vec<(RunRecord, i64)>);

/// Claimed runs' writes taken out of `claimed`, the last of each run's (and claim's) in
/// this batch alone, split into the states and ends to write and the ends to forget.
fn latest_claimed(claimed: &mut Vec<ClaimedWrite>) -> Split {
    let mut latest: Vec<ClaimedWrite> = Vec::with_capacity(claimed.len());
    let mut at: HashMap<(RunId, i64), usize> = HashMap::with_capacity(claimed.len());
    for (run, fence, write) in claimed.drain(..) {
        match at.get(&(run.id, fence)) {
            Some(&slot) => latest[slot] = (run, fence, write),
            None => {
                at.insert((run.id, fence), latest.len());
                latest.push((run, fence, write));
            }
        }
    }
    let (mut written, mut forgotten) = (Vec::new(), Vec::new());
    for (run, fence, write) in latest {
        match write {
            Claimed::Forgotten => forgotten.push((run, fence)),
            Claimed::State | Claimed::End => written.push((run, fence)),
        }
    }
    (written, forgotten)
}

async fn write_with_retry(store: &dyn Store, health: &StoreHealth, batch: &[RunRecord]) {
    if !batch.is_empty() {
        retrying(health, (batch.len(), "run records"), || store.put_runs(batch)).await;
    }
}

/// Runs `write` until it succeeds, telling `health` how each try went and backing off
/// between failures. What it writes (`count` `what`) is only formatted for a failure's
/// log line: a batch is often one run.
async fn retrying<T, F: Future<Output = Result<T, Error>>>(
    health: &StoreHealth,
    (count, what): (usize, &str),
    mut write: impl FnMut() -> F,
) -> T {
    let mut delay = Duration::from_millis(50);
    loop {
        match write().await {
            Ok(done) => {
                health.recovered(Writer::Records);
                return done;
            }
            Err(error) => {
                health.failed(Writer::Records, &error);
                tracing::error!(%error, retry_in_ms = delay.as_millis() as u64, "writing {count} {what} failed; retrying");
                tokio::time::sleep(delay).await;
                // Capped low: once the store is back, waiting callers should learn it soon.
                delay = (delay * 2).min(Duration::from_secs(1));
            }
        }
    }
}
