//! The demo's lifecycle: a startup task, a task that follows a feature flag, a visible task,
//! and a resource. Watch them with `curl localhost:3000/_tasks/lifecycle`.

use std::time::Duration;

use taskyard::lifecycle::{Cleanup, Resource, Setup, Visible};
use taskyard::{Signal, TaskError};

/// The feature flag `POST /api/feature` flips.
#[derive(Clone)]
pub struct Feature(pub Signal<bool>);

/// What the feature flag currently means, computed asynchronously.
#[derive(Clone)]
pub struct FeatureReport(pub Resource<String>);

pub fn setup(cx: &mut Setup<'_>) {
    // Before the server listens: prepare the data the routes serve.
    cx.use_task("prepare", |_t| async {
        let folder = taskyard::config::data_dir().join("cache");
        tokio::fs::create_dir_all(&folder).await?;
        tokio::fs::write(folder.join("greeting.txt"), "Hello").await?;
        Ok::<_, TaskError>(())
    });

    let feature = cx.signal(false);
    cx.state(Feature(feature.clone()));

    // Re-runs whenever the flag changes. While it is on, a worker runs; the cleanup stops
    // it before the next run (and at shutdown).
    let watched = feature.clone();
    cx.use_task("feature-watch", move |t| {
        let feature = watched.clone();
        async move {
            if !t.track(&feature) {
                tracing::info!("feature off");
                return Ok::<_, TaskError>(None);
            }
            let worker = tokio::spawn(async {
                let mut ticks = tokio::time::interval(Duration::from_secs(5));
                loop {
                    ticks.tick().await;
                    tracing::info!("feature worker tick");
                }
            });
            tracing::info!("feature on: worker started");
            Ok(Some(Cleanup::from_fn(move || {
                worker.abort();
                tracing::info!("feature worker stopped");
            })))
        }
    });

    // The first request under /hello/ starts this, beside the request.
    cx.use_visible_task("warm-hello", Visible::first_request("/hello/**"), |_t| async {
        let greeting =
            tokio::fs::read_to_string(taskyard::config::data_dir().join("cache/greeting.txt")).await?;
        tracing::info!(%greeting, "greetings warmed on first use");
        Ok::<_, TaskError>(())
    });

    // An async value derived from the flag: the latest run wins.
    let report = cx.use_resource("feature-report", move |t| {
        let feature = feature.clone();
        async move {
            let on = t.track(&feature);
            tokio::time::sleep(Duration::from_millis(50)).await; // stands for a slow lookup
            Ok::<_, TaskError>(
                if on {
                    "enabled since the last flip"
                } else {
                    "disabled"
                }
                .to_owned(),
            )
        }
    });
    cx.state(FeatureReport(report));
}
