//! `db:migrate`: a stand-in migration that reports progress per step.

use serde::Deserialize;
use taskyard::prelude::*;

/// Options for a migration run.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct Migrate {
    /// Report what would run without changing anything.
    #[serde(default)]
    pub dry_run: bool,
}

const STEPS: [&str; 3] = ["create tables", "add indexes", "backfill"];

pub fn task() -> Task {
    Task::new(|cx: TaskContext, options: Migrate| async move {
        for (done, step) in STEPS.iter().enumerate() {
            cx.progress(done as f64 / STEPS.len() as f64, *step);
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        Ok::<_, TaskError>(json!({ "applied": STEPS, "dry_run": options.dry_run }))
    })
    .description("Run database migrations")
    .concurrency(Concurrency::Serial)
}
