//! What a task is made of: how its runs may overlap ([`Concurrency`]), how it is retried
//! ([`Retry`]), what starts it ([`Trigger`]), how it fails ([`TaskError`]) and how its
//! payload is described and decoded. The [`Task`](crate::Task) itself, whose body receives a
//! [`TaskContext`](crate::TaskContext) from the runtime, lives with the runtime in
//! [`run`](crate::run), together with the registry that holds an app's tasks by name.

mod concurrency;
mod failure;
pub(crate) mod payload;
mod retry;

pub use crate::history::Trigger;
pub use concurrency::Concurrency;
pub use failure::TaskError;
pub use retry::Retry;
