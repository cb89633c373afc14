//! `cms:update`: refreshes content; concurrent requests share one run (the default).

use taskyard::prelude::*;

pub fn task() -> Task {
    Task::new(|_cx: TaskContext| async move {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        Ok::<_, TaskError>(json!({ "updated": true }))
    })
    .description("Update CMS content")
    .timeout(std::time::Duration::from_secs(30))
}
