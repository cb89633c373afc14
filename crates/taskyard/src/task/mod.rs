//! Task definitions: what a task is ([`Task`]), how its runs may overlap ([`Concurrency`]),
//! how it is retried ([`Retry`]), what starts it ([`Trigger`]), how it fails ([`TaskError`]),
//! and the [`Registry`] that holds an app's tasks by name.

mod concurrency;
mod definition;
mod failure;
pub(crate) mod payload;
mod registry;
mod retry;
mod trigger;

pub use concurrency::Concurrency;
pub(crate) use definition::Decoded;
pub use definition::{Task, TaskBody};
pub use failure::TaskError;
pub use registry::{Registry, TaskEntry, TaskSource};
pub use retry::Retry;
pub use trigger::Trigger;
