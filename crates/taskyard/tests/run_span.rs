//! A run's span: with a subscriber listening, everything a task body records, before and
//! after its awaits, and the runtime's own events about the run, carry the run's task and
//! id. (Its own test binary: the subscriber is the process's.)

use std::sync::Arc;

use taskyard::{App, StoreConfig, Task, TaskContext, TaskError};

#[tokio::test]
async fn a_body_s_events_are_recorded_in_the_run_s_span_when_a_subscriber_listens() {
    #[derive(Clone, Default)]
    struct Lines(Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Lines {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let lines = Lines::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer({
            let lines = lines.clone();
            move || lines.clone()
        })
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    // The process's subscriber, set before any event: a callsite first seen with none
    // would keep its interest cached as "never" for a thread's scoped subscriber.
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
    let task = Task::new(|_cx: TaskContext| async {
        tracing::info!("before a wait");
        tokio::task::yield_now().await;
        tracing::info!("after a wait");
        Err::<(), _>(TaskError::permanent("it failed"))
    });
    let app = App::new()
        .task("traced", task)
        .store(StoreConfig::Memory)
        .start()
        .await
        .expect("app starts");
    let handle = app
        .runtime()
        .start(taskyard::RunRequest::new("traced"))
        .await
        .expect("start");
    let run_id = handle.run_id();
    handle.outcome().await.expect_err("fails");
    let text = String::from_utf8(lines.0.lock().expect("lock").clone()).expect("UTF-8");
    let span = format!("task{{name=traced run_id={run_id}}}");
    for message in ["before a wait", "after a wait", "run did not succeed"] {
        let line = text
            .lines()
            .find(|line| line.contains(message))
            .unwrap_or_else(|| panic!("no line {message:?} in {text}"));
        assert!(line.contains(&span), "{line:?} is not in {span}");
    }
}
