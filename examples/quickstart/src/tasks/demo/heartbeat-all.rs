//! `demo:heartbeat-all`: run every second by the `heartbeat-all` schedule on every instance; returns
//! which instance and process ran it, so a cluster's spread shows in the history.

use taskyard::prelude::*;

pub fn task() -> Task {
    Task::new(|cx: TaskContext| async move {
        Ok::<_, TaskError>(json!({
            "instance": cx.runtime().instance(),
            "pid": std::process::id(),
        }))
    })
    .description("Report which instance ran this tick (every instance)")
}
