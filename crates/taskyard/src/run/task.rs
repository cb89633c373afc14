//! [`Task`]: a task's description, options and body.
//!
//! A body is any async closure taking a [`TaskContext`] and, optionally, a typed payload:
//!
//! ```
//! use serde::Deserialize;
//! use taskyard::{Task, TaskContext, TaskError};
//!
//! #[derive(Deserialize, schemars::JsonSchema)]
//! struct Migrate {
//!     #[serde(default)]
//!     dry_run: bool,
//! }
//!
//! let plain = Task::new(|_cx: TaskContext| async { Ok::<_, TaskError>("done") });
//! let typed = Task::new(|_cx: TaskContext, p: Migrate| async move { Ok::<_, TaskError>(p.dry_run) })
//!     .description("Run database migrations");
//! # let _ = (plain, typed);
//! ```

use std::any::Any;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::TaskContext;
use crate::task::payload;
use crate::{Concurrency, Error, Retry, TaskError};

/// A payload decoded ahead of the run (so a bad one is refused before anything starts),
/// handed to the first attempt. Later attempts decode again from the stored JSON.
pub(crate) type Decoded = Box<dyn Any + Send>;

type Body =
    dyn Fn(TaskContext, Option<Decoded>) -> BoxFuture<'static, Result<Value, TaskError>> + Send + Sync;
type Validate = fn(&str, &Value) -> Result<Option<Decoded>, Error>;

/// A task: what it does, how it is described, and how its runs are governed.
#[derive(Clone)]
pub struct Task {
    pub(crate) description: String,
    pub(crate) concurrency: Concurrency,
    pub(crate) timeout: Option<Duration>,
    pub(crate) retry: Retry,
    pub(crate) durable: bool,
    pub(crate) keep_succeeded: bool,
    pub(crate) payload_schema: Option<Value>,
    pub(crate) validate: Validate,
    pub(crate) body: Arc<Body>,
}

impl Task {
    /// A task running `body`. See the module docs for the accepted closure shapes.
    pub fn new<H, M>(body: H) -> Task
    where
        H: TaskBody<M>,
    {
        let (payload_schema, validate, body) = body.into_parts();
        // Nitro's rule (concurrent callers share one run, whatever their payloads) would
        // hand a caller the result of someone else's payload; a task that takes a payload
        // shares runs only between equal payloads unless it asks for `Dedupe`.
        let concurrency = match payload_schema {
            Some(_) => Concurrency::DedupeByPayload,
            None => Concurrency::Dedupe,
        };
        Task {
            description: String::new(),
            concurrency,
            timeout: None,
            retry: Retry::NONE,
            durable: false,
            keep_succeeded: true,
            payload_schema,
            validate,
            body,
        }
    }

    /// A one-line description, shown in listings.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// How concurrent runs are handled. Default: [`Concurrency::Dedupe`] for a task without
    /// a payload (Nitro's rule), [`Concurrency::DedupeByPayload`] for a task with one, so
    /// that no caller gets the result of a run of another payload.
    pub fn concurrency(mut self, concurrency: Concurrency) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// Each attempt is stopped and recorded `timed_out` after this long.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Retry failed, panicked and timed-out attempts with this policy.
    pub fn retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    /// Every run goes through the store, however it is started (code, HTTP, the Nitro
    /// endpoint, the CLI, schedules): it is written before the caller is answered, any live
    /// instance of the app may take it, its retries wait in the store, and it runs again
    /// elsewhere if its instance dies. Its concurrency holds across the cluster. See
    /// `docs/queue.md`.
    pub fn durable(mut self) -> Self {
        self.durable = true;
        self
    }

    /// Whether the history keeps the task's durable runs that succeeded. Default `true`.
    /// With `false`, a durable run that succeeds leaves the store at its end: its job is
    /// deleted and no record is written, which makes the queue's work for it an insert, a
    /// claim and a delete. Runs that fail, time out, are cancelled or abandoned are kept
    /// as always, and the task's in-process runs are recorded as always. Callers that wait
    /// for such a run receive `null` as its result (it was not kept), and once it has
    /// succeeded the run is not found by id. See `docs/queue.md`.
    pub fn keep_succeeded(mut self, keep: bool) -> Self {
        self.keep_succeeded = keep;
        self
    }

    /// Whether the history keeps the task's durable runs that succeeded
    /// ([`Task::keep_succeeded`]).
    pub fn keeps_succeeded(&self) -> bool {
        self.keep_succeeded
    }

    /// True when every run goes through the store ([`Task::durable`]).
    pub fn is_durable(&self) -> bool {
        self.durable
    }

    /// What it does, for listings.
    pub fn get_description(&self) -> &str {
        &self.description
    }

    /// How its runs may overlap.
    pub fn get_concurrency(&self) -> Concurrency {
        self.concurrency
    }

    /// How long an attempt may take.
    pub fn get_timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// How failed attempts are retried.
    pub fn get_retry(&self) -> &Retry {
        &self.retry
    }

    /// The payload's JSON schema, or `None` for a task that takes no payload.
    pub fn payload_schema(&self) -> Option<&Value> {
        self.payload_schema.as_ref()
    }
}

impl std::fmt::Debug for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Task")
            .field("description", &self.description)
            .field("concurrency", &self.concurrency)
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .field("durable", &self.durable)
            .field("keep_succeeded", &self.keep_succeeded)
            .field("has_payload", &self.payload_schema.is_some())
            .finish_non_exhaustive()
    }
}

/// Closures that can be a task's body. Implemented for
/// `Fn(TaskContext) -> impl Future<Output = Result<R, TaskError>>` and
/// `Fn(TaskContext, P) -> …` where `P: DeserializeOwned + JsonSchema` and `R: Serialize`.
#[diagnostic::on_unimplemented(
    message = "this closure cannot be a task's body",
    label = "not a task body",
    note = "a task's body is `|cx: TaskContext| async move {{ … }}` or `|cx: TaskContext, payload: P| async move {{ … }}`, returning `Result<R, TaskError>` where `R: serde::Serialize`",
    note = "a payload type `P` must derive `serde::Deserialize` and `schemars::JsonSchema` from schemars 1 (the version `taskyard::schemars` re-exports); a `JsonSchema` derived with schemars 0.8 does not count",
    note = "the closure and its future must be `Send + Sync + 'static`: move what it uses into it"
)]
pub trait TaskBody<M>: Send + Sync + 'static {
    #[doc(hidden)]
    fn into_parts(self) -> (Option<Value>, Validate, Arc<Body>);
}

#[doc(hidden)]
pub struct WithoutPayload<R>(PhantomData<fn() -> R>);

#[doc(hidden)]
pub struct WithPayload<P, R>(PhantomData<fn() -> (P, R)>);

fn to_result<R: Serialize + 'static>(result: Result<R, TaskError>) -> Result<Value, TaskError> {
    // A result that is JSON already is the run's result as it is: serializing it would
    // build a copy of it.
    let mut result = Some(result?);
    if let Some(value) = payload::take_as::<R, Value>(&mut result) {
        return Ok(value);
    }
    // `Some(value)` serializes as `value`.
    serde_json::to_value(result)
        .map_err(|e| TaskError::permanent(format!("the task's result could not be serialized: {e}")))
}

impl<F, Fut, R> TaskBody<WithoutPayload<R>> for F
where
    F: Fn(TaskContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, TaskError>> + Send + 'static,
    R: Serialize + 'static,
{
    fn into_parts(self) -> (Option<Value>, Validate, Arc<Body>) {
        fn accept_any(_task: &str, _payload: &Value) -> Result<Option<Decoded>, Error> {
            Ok(None)
        }
        let body = move |cx: TaskContext, _decoded: Option<Decoded>| {
            let fut = self(cx);
            Box::pin(async move { to_result(fut.await) }) as BoxFuture<'static, _>
        };
        (None, accept_any, Arc::new(body))
    }
}

impl<F, Fut, P, R> TaskBody<WithPayload<P, R>> for F
where
    F: Fn(TaskContext, P) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, TaskError>> + Send + 'static,
    P: DeserializeOwned + schemars::JsonSchema + Send + 'static,
    R: Serialize + 'static,
{
    fn into_parts(self) -> (Option<Value>, Validate, Arc<Body>) {
        fn validate<P: DeserializeOwned + Send + 'static>(
            task: &str,
            payload: &Value,
        ) -> Result<Option<Decoded>, Error> {
            let decoded: P = payload::decode(task, payload)?;
            Ok(Some(Box::new(decoded)))
        }
        let body = move |cx: TaskContext, decoded: Option<Decoded>| {
            let payload = match decoded.map(|d| d.downcast::<P>()) {
                Some(Ok(p)) => Ok(*p),
                _ => payload::decode::<P>(cx.task(), cx.payload()),
            };
            match payload {
                Ok(p) => {
                    let fut = self(cx, p);
                    Box::pin(async move { to_result(fut.await) }) as BoxFuture<'static, _>
                }
                Err(e) => {
                    let error = TaskError::permanent(e.to_string());
                    Box::pin(async move { Err(error) }) as BoxFuture<'static, _>
                }
            }
        };
        (Some(payload::schema_of::<P>()), validate::<P>, Arc::new(body))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_result_is_json_as_it_is_or_serialized() {
        let json = |result: Result<Value, TaskError>| result.map_err(|error| error.to_string());
        let value = json!({"answer": 42, "list": [1, "two", null]});
        assert_eq!(json(to_result(Ok(value.clone()))), Ok(value.clone()));
        assert_eq!(json(to_result(Ok(Some(value.clone())))), Ok(value));
        assert_eq!(json(to_result(Ok(None::<Value>))), Ok(Value::Null));
        assert_eq!(json(to_result(Ok(()))), Ok(Value::Null));
        assert_eq!(json(to_result(Ok("done"))), Ok(json!("done")));
        let failed = to_result(Err::<Value, _>(TaskError::new("no")));
        assert_eq!(json(failed), Err("no".to_owned()));
    }
}
