//! One instance of the `scale` comparison, run by it as a child process
//! (`taskyard-bench scale-instance`): an app with `TASKYARD_SCALE_SCHEDULES` `worker`
//! schedules on a no-op task (their runs durable with `TASKYARD_SCALE_DURABLE=1`), sharing
//! the store at `TASKYARD_SCALE_STORE` with the other
//! instances. It prints `ready ID` once started, runs until its stdin closes, shuts down
//! gracefully and writes to `TASKYARD_SCALE_OUT`:
//!
//! - a first line `writes CLAIM_STATEMENTS CLAIM_ROWS WRITE_STATEMENTS READ_STATEMENTS`,
//!   counted from the driver's own statement log (sqlx's `sqlx::query` events), so the
//!   count is what reached the database, not what the scheduler meant to send;
//! - one line `SCHEDULE_INDEX TICK_MS LATE_US` per run it started.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use taskyard::schedule::Schedule;
use taskyard::{App, Concurrency, StoreConfig, Task, TaskContext, TaskError, Trigger};
use tracing::field::{Field, Visit};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The statements an instance sent that write, by what they write.
#[derive(Default)]
struct Writes {
    /// Statements that insert into the tick ledger, and the rows they inserted.
    claim_statements: AtomicU64,
    claim_rows: AtomicU64,
    /// Every statement that writes (the claims included).
    statements: AtomicU64,
    /// Every statement that only reads.
    reads: AtomicU64,
}

/// Counts sqlx's statement events into [`Writes`].
struct StatementLog(Arc<Writes>);

#[derive(Default)]
struct Statement {
    summary: String,
    /// The whole statement, when the summary is not all of it.
    text: String,
    rows_affected: u64,
}

impl Visit for Statement {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "summary" => value.clone_into(&mut self.summary),
            "db.statement" => value.clone_into(&mut self.text),
            _ => {}
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "rows_affected" {
            self.rows_affected = value;
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "summary" && self.summary.is_empty() {
            self.summary = format!("{value:?}");
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for StatementLog {
    fn on_event(&self, event: &tracing::Event<'_>, _cx: tracing_subscriber::layer::Context<'_, S>) {
        let mut statement = Statement::default();
        event.record(&mut statement);
        let summary = statement.summary.to_ascii_uppercase();
        let verb = summary.split_whitespace().next().unwrap_or("");
        // By the statement's words: SQLite reports the changes of the connection's last
        // write as a later SELECT's rows affected.
        let writes = match verb {
            "INSERT" | "UPDATE" | "DELETE" => true,
            "WITH" => {
                let text = statement.text.to_ascii_uppercase();
                ["INSERT ", "UPDATE ", "DELETE "]
                    .iter()
                    .any(|word| text.contains(word))
            }
            _ => false,
        };
        if !writes {
            self.0.reads.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.0.statements.fetch_add(1, Ordering::Relaxed);
        if verb == "INSERT" && summary.contains("TASKYARD_TICKS") {
            self.0.claim_statements.fetch_add(1, Ordering::Relaxed);
            self.0
                .claim_rows
                .fetch_add(statement.rows_affected, Ordering::Relaxed);
        }
    }
}

/// The child's whole life; see the module's comment.
pub fn main() {
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is set by `scale`"));
    let store = StoreConfig::from_url(&var("TASKYARD_SCALE_STORE")).expect("a store URL");
    let schedules = crate::setting("TASKYARD_SCALE_SCHEDULES", 0);
    let out = var("TASKYARD_SCALE_OUT");
    let writes = Arc::new(Writes::default());
    // Only sqlx's statements and warnings are listened to: taskyard's own spans stay off,
    // as without a subscriber.
    tracing_subscriber::registry()
        .with(
            StatementLog(writes.clone())
                .with_filter(Targets::new().with_target("sqlx::query", tracing::Level::DEBUG)),
        )
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(tracing_subscriber::filter::LevelFilter::WARN),
        )
        .init();
    let started = crate::two_workers().block_on(run(store, schedules));
    let mut text = format!(
        "writes {} {} {} {}\n",
        writes.claim_statements.load(Ordering::Relaxed),
        writes.claim_rows.load(Ordering::Relaxed),
        writes.statements.load(Ordering::Relaxed),
        writes.reads.load(Ordering::Relaxed)
    );
    for (schedule, tick, late) in started {
        text.push_str(&format!("{schedule} {tick} {late}\n"));
    }
    std::fs::File::create(&out)
        .and_then(|mut file| file.write_all(text.as_bytes()))
        .unwrap_or_else(|e| panic!("cannot write {out}: {e}"));
}

/// Runs the app until stdin closes; every run it started as (schedule index, tick in
/// milliseconds, microseconds from the tick to the start).
async fn run(store: StoreConfig, schedules: usize) -> Vec<(u32, i64, u64)> {
    let started = Arc::new(Mutex::new(Vec::new()));
    let task = {
        let started = started.clone();
        Task::new(move |cx: TaskContext| {
            let now = Timestamp::now();
            if let Trigger::Schedule {
                schedule,
                scheduled_at,
            } = cx.trigger()
            {
                let index = schedule[1..].parse().expect("schedules are named sN");
                let late = now.duration_since(*scheduled_at).as_micros().max(0) as u64;
                started
                    .lock()
                    .expect("lock")
                    .push((index, scheduled_at.as_millisecond(), late));
            }
            async { Ok::<_, TaskError>(()) }
        })
        .concurrency(Concurrency::Unlimited)
    };
    let mut app = App::new().task("noop", task).store(store).schedule_log(None);
    let durable = crate::setting("TASKYARD_SCALE_DURABLE", 0) == 1;
    for i in 0..schedules {
        // Each schedule once a minute, their seconds spread evenly over the minute.
        let cron = format!("{} * * * * *", i % 60);
        let schedule = Schedule::worker().cron(&cron).durable(durable).task("noop");
        app = app.schedule(&format!("s{i}"), schedule);
    }
    let running = app.start().await.expect("the instance starts");
    println!("ready {}", running.runtime().instance());
    tokio::task::spawn_blocking(|| std::io::stdin().read_to_end(&mut Vec::new()))
        .await
        .expect("stdin is read")
        .expect("stdin closes");
    running.shutdown().await;
    std::mem::take(&mut *started.lock().expect("lock"))
}
