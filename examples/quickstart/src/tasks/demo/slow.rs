//! `demo:slow`: sleeps `payload.ms` milliseconds (default 1000), reporting progress ten
//! times along the way.

use std::time::Duration;

use serde::Deserialize;
use taskyard::prelude::*;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct Slow {
    /// How long to run, in milliseconds.
    #[serde(default = "default_ms")]
    pub ms: u64,
}

fn default_ms() -> u64 {
    1000
}

pub fn task() -> Task {
    Task::new(|cx: TaskContext, slow: Slow| async move {
        let step = Duration::from_millis(slow.ms) / 10;
        for i in 0..10 {
            cx.progress(f64::from(i) / 10.0, format!("step {} of 10", i + 1));
            tokio::time::sleep(step).await;
        }
        cx.progress(1.0, "done");
        Ok::<_, TaskError>(json!({ "slept_ms": slow.ms }))
    })
    .description("Sleeps payload.ms milliseconds (default 1000), reporting progress")
    .concurrency(Concurrency::Parallel(4))
}
