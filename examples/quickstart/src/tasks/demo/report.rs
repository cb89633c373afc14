//! `demo:report`: run by the `report` schedule, which `features.reports_paused` in
//! `taskyard.toml` switches off and on while the app runs.

use taskyard::prelude::*;

pub fn task() -> Task {
    Task::new(|cx: TaskContext| async move {
        let runs = cx
            .runtime()
            .list_runs(&taskyard::RunFilter::default().limit(1000))
            .await
            .map(|runs| runs.len())
            .unwrap_or(0);
        Ok::<_, TaskError>(json!({ "recent_runs": runs }))
    })
    .description("Count the recent runs (paused by features.reports_paused in taskyard.toml)")
}
