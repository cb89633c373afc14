//! `demo:fail`: always fails, after two quick retries, so failures and retries can be
//! seen in the history.

use std::time::Duration;

use taskyard::prelude::*;

pub fn task() -> Task {
    Task::new(|cx: TaskContext| async move {
        Err::<(), _>(TaskError::new(format!(
            "demo:fail always fails (attempt {})",
            cx.attempt()
        )))
    })
    .description("Always fails with a clear error (after 2 retries)")
    .retry(Retry::exponential(3).initial(Duration::from_millis(50)))
}
