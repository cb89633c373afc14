//! Calls to the store made together. Thousands of ticks due at one instant each need a
//! claim in the ledger, and a look at their schedule's unfinished runs, before they run:
//! one statement each, sent at once, would queue on the store's connections (PostgreSQL's
//! pool timed out under 100,000 schedules, and SQLite took one write lock per tick).
//! Calls made while a statement is out wait for the next, which takes all of them: the
//! first call of an instant is answered as soon as a lone call would be, and the others
//! share one statement (group commit, as the run recorder does).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;

use futures_util::FutureExt;
use tokio::sync::{mpsc, oneshot};

use crate::Error;

/// Calls taken off the channel for one statement at most.
const CALLS_PER_BATCH: usize = 4_096;

/// What answers a batch: one answer per call, in order.
type Answer<T, R> = Box<dyn Fn(Vec<T>) -> Pin<Box<dyn Future<Output = Result<Vec<R>, Error>> + Send>> + Send>;

/// Sends calls of one kind to the store in batches. Its task ends when this is dropped,
/// after answering every call it took.
pub(crate) struct Batched<T, R> {
    sender: mpsc::UnboundedSender<(T, oneshot::Sender<Result<R, Error>>)>,
}

impl<T, R> std::fmt::Debug for Batched<T, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batched").finish_non_exhaustive()
    }
}

impl<T: Send + 'static, R: Send + 'static> Batched<T, R> {
    /// Starts the batcher's task on the current tokio runtime; `send` answers a batch.
    pub fn start<F, Fut>(send: F) -> Self
    where
        F: Fn(Vec<T>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Vec<R>, Error>> + Send + 'static,
    {
        let (sender, receiver) = mpsc::unbounded_channel();
        tokio::spawn(send_batches::<T, R>(
            Box::new(move |calls| Box::pin(send(calls))),
            receiver,
        ));
        Batched { sender }
    }

    /// Makes `call` with whatever other calls are waiting, and returns its answer.
    pub async fn call(&self, call: T) -> Result<R, Error> {
        let (answer, answered) = oneshot::channel();
        self.sender
            .send((call, answer))
            .map_err(|_| Error::ShuttingDown)?;
        answered.await.map_err(|_| Error::ShuttingDown)?
    }
}

async fn send_batches<T, R>(
    send: Answer<T, R>,
    mut receiver: mpsc::UnboundedReceiver<(T, oneshot::Sender<Result<R, Error>>)>,
) {
    let mut pending = Vec::new();
    while receiver.recv_many(&mut pending, CALLS_PER_BATCH).await > 0 {
        let (calls, answers): (Vec<T>, Vec<_>) = pending.drain(..).unzip();
        let asked = answers.len();
        // A panic answers this batch's calls with an error and leaves the batcher running:
        // every later call of its kind (every tick's claim) goes through it.
        let panicked = || Error::StoreData {
            backend: "store",
            message: format!("the store panicked while answering {asked} calls made together"),
        };
        let answered = match std::panic::catch_unwind(AssertUnwindSafe(|| send(calls))) {
            Ok(future) => AssertUnwindSafe(future)
                .catch_unwind()
                .await
                .unwrap_or_else(|_| Err(panicked())),
            Err(_) => Err(panicked()),
        };
        match answered {
            Ok(answered) if answered.len() == asked => {
                for (answer, answered) in answers.into_iter().zip(answered) {
                    let _ = answer.send(Ok(answered));
                }
            }
            Ok(answered) => {
                let error = Error::StoreData {
                    backend: "store",
                    message: format!("{} answers to {asked} calls made together", answered.len()),
                };
                for answer in answers {
                    let _ = answer.send(Err(error.clone()));
                }
            }
            Err(error) => {
                for answer in answers {
                    let _ = answer.send(Err(error.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn calls_made_together_share_a_batch_and_get_their_own_answers() {
        let batches = Arc::new(AtomicUsize::new(0));
        let counted = batches.clone();
        let doubled = Arc::new(Batched::start(move |calls: Vec<u32>| {
            counted.fetch_add(1, Ordering::SeqCst);
            async move { Ok(calls.into_iter().map(|n| n * 2).collect()) }
        }));
        let calls: Vec<_> = (0..100u32)
            .map(|n| {
                let doubled = doubled.clone();
                tokio::spawn(async move { doubled.call(n).await })
            })
            .collect();
        for (n, call) in calls.into_iter().enumerate() {
            assert_eq!(call.await.expect("join").expect("an answer"), n as u32 * 2);
        }
        // On a current-thread runtime the calls are queued before the batcher runs again.
        assert!(batches.load(Ordering::SeqCst) <= 2, "{batches:?} batches");
    }

    #[tokio::test]
    async fn a_failed_batch_fails_each_of_its_calls() {
        let failing = Batched::start(|_calls: Vec<u32>| async {
            Err::<Vec<u32>, _>(Error::StoreData {
                backend: "test",
                message: "down".into(),
            })
        });
        assert!(matches!(failing.call(1).await, Err(Error::StoreData { .. })));
        let short = Batched::start(|_calls: Vec<u32>| async { Ok(Vec::<u32>::new()) });
        assert!(matches!(short.call(1).await, Err(Error::StoreData { .. })));
    }

    #[tokio::test]
    async fn a_panic_fails_its_batch_and_the_next_batch_is_answered() {
        let flaky = Batched::start(|calls: Vec<u32>| async move {
            assert!(calls[0] != 0, "a store bug");
            Ok(calls)
        });
        assert!(matches!(flaky.call(0).await, Err(Error::StoreData { .. })));
        assert_eq!(flaky.call(7).await.expect("answered after the panic"), 7);
    }
}
