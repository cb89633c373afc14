//! `cleandb`: an egg-style schedule file. Every night at 03:00:00 (6-field cron, leading
//! seconds) one instance of the cluster runs the body below, recorded as the task
//! `schedule:cleandb`. Try it now with `app.run_schedule("cleandb")`.

use taskyard::prelude::*;
use taskyard::schedule::Schedule;

pub fn schedule() -> Schedule {
    Schedule::worker().cron("0 0 3 * * *").run(
        Task::new(|cx: TaskContext| async move {
            let scheduled_at = match cx.trigger() {
                Trigger::Schedule { scheduled_at, .. } => scheduled_at.to_string(),
                _ => "now".to_owned(),
            };
            Ok::<_, TaskError>(json!({ "cleaned": true, "scheduled_at": scheduled_at }))
        })
        .description("Nightly database clean-up"),
    )
}
