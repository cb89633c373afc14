//! Schedules at the scale users reach, across real processes: `SCHEDULES` `worker`
//! schedules, each due once a minute with their seconds spread evenly over the minute
//! (1,667 ticks a second at 100,000), run by `INSTANCES` instances of one app sharing one
//! store — an SQLite file, then PostgreSQL — for `SECONDS`. Each instance is this binary
//! run again (`scale-instance`, in `scale_instance.rs`). Then again with the schedules'
//! runs durable: each tick's claim and its run's job one write, the run taken by any
//! instance, and the durable ticks due together claimed in one transaction.
//!
//! Over the measured window, every tick due in it must have run exactly once in the
//! cluster: duplicates and missing ticks are counted from the runs the instances report.
//! Lateness is from each tick to its run's start. The store's writes are counted by each
//! instance from the driver's statement log: rows written into the tick ledger per tick
//! (one by design: the ledger's key is the schedule and the tick), the statements that
//! claim, and every statement that writes (runs' records, heartbeats), per tick claimed:
//! the ticks that ran, and the durable ticks whose runs were left queued in the store as
//! the instances stopped.
//!
//! `TASKYARD_BENCH_SCALE_CHECK=1` makes duplicates, missing ticks, and other than one ledger
//! row, or more than one claim statement, per tick fail the run: CI runs it so, small.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use taskyard::StoreConfig;
use taskyard::store::RunFilter;

use crate::plots::nearest_rank;
use crate::recorded::PostgresSchema;
use crate::report::Row;

const SCHEDULES: usize = 100_000;
const INSTANCES: usize = 4;
const SECONDS: usize = 60;

/// Lateness goal at p99, in milliseconds: a tick's claim is one write among 1,667 a
/// second on a shared store.
const LATENESS_P99_GOAL_MS: f64 = 100.0;

pub fn compare() -> Vec<Row> {
    let dir = std::env::temp_dir().join(format!("taskyard-bench-scale-{}", std::process::id()));
    let mut rows = Vec::new();
    // `TASKYARD_BENCH_SCALE_DURABLE=0` or `1` measures one of the two alone.
    let modes = match std::env::var("TASKYARD_BENCH_SCALE_DURABLE").as_deref() {
        Ok("0") => vec![false],
        Ok("1") => vec![true],
        _ => vec![false, true],
    };
    for durable in modes {
        let shape = Shape {
            schedules: crate::setting("TASKYARD_BENCH_SCALE_SCHEDULES", SCHEDULES),
            instances: crate::setting("TASKYARD_BENCH_SCALE_INSTANCES", INSTANCES),
            seconds: crate::setting("TASKYARD_BENCH_SCALE_SECONDS", SECONDS),
            durable,
        };
        std::fs::create_dir_all(&dir).expect("a temporary folder");
        if crate::measures_store("sqlite") {
            let file = if durable { "scale-durable.db" } else { "scale.db" };
            let sqlite = format!("sqlite://{}", dir.join(file).display());
            rows.extend(measure("SQLite", &sqlite, &shape, &dir));
        }
        if crate::measures_store("postgres") {
            let schema = PostgresSchema::create();
            rows.extend(measure("PostgreSQL", &schema.url, &shape, &dir));
            drop(schema);
        }
        if std::env::var_os("TASKYARD_BENCH_SCALE_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    rows
}

struct Shape {
    schedules: usize,
    instances: usize,
    seconds: usize,
    /// The schedules' runs are durable: each tick's claim and its run are one write, and
    /// any instance runs it.
    durable: bool,
}

/// What one instance reported.
struct Report {
    claim_statements: u64,
    claim_rows: u64,
    write_statements: u64,
    read_statements: u64,
    /// (schedule index, tick in milliseconds, microseconds late).
    runs: Vec<(u32, i64, u64)>,
}

fn start_instance(store: &str, shape: &Shape, out: &Path) -> (Child, String) {
    let mut child = Command::new(std::env::current_exe().expect("this binary"))
        .arg("scale-instance")
        .env("TASKYARD_SCALE_STORE", store)
        .env("TASKYARD_SCALE_SCHEDULES", shape.schedules.to_string())
        .env("TASKYARD_SCALE_DURABLE", if shape.durable { "1" } else { "0" })
        .env("TASKYARD_SCALE_OUT", out)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("an instance starts");
    let mut lines = BufReader::new(child.stdout.take().expect("its stdout")).lines();
    let id = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(id) = line.strip_prefix("ready ") {
                    break id.to_owned();
                }
            }
            _ => panic!("an instance exited before it was ready"),
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, id)
}

/// The runs in the store at `url` that did not end: durable ticks' runs left queued when
/// the instances stopped.
fn unfinished_runs(url: &str) -> u64 {
    crate::two_workers().block_on(async {
        let store = StoreConfig::from_url(url)
            .expect("the store's URL")
            .open()
            .await
            .expect("the store opens")
            .expect("a store");
        store
            .list_runs(&RunFilter::default().unfinished().limit(100_000_000))
            .await
            .expect("the unfinished runs read")
            .len() as u64
    })
}

fn read_report(path: &Path) -> Report {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    let counts: Vec<u64> = lines
        .next()
        .and_then(|line| line.strip_prefix("writes "))
        .expect("the writes line")
        .split(' ')
        .map(|n| n.parse().expect("a count"))
        .collect();
    let runs = lines
        .map(|line| {
            let mut fields = line.split(' ');
            let mut next = || fields.next().expect("three fields");
            (
                next().parse().expect("an index"),
                next().parse().expect("a tick"),
                next().parse().expect("microseconds"),
            )
        })
        .collect();
    Report {
        claim_statements: counts[0],
        claim_rows: counts[1],
        write_statements: counts[2],
        read_statements: counts[3],
        runs,
    }
}

fn measure(store_name: &str, store: &str, shape: &Shape, dir: &Path) -> Vec<Row> {
    let outs: Vec<_> = (0..shape.instances)
        .map(|i| dir.join(format!("{store_name}-{i}.txt")))
        .collect();
    let mut children: Vec<(Child, String)> =
        outs.iter().map(|out| start_instance(store, shape, out)).collect();
    // The window starts on a whole second once every instance has seen the others
    // (membership is refreshed every second or so).
    let ready = Timestamp::now();
    let start = Timestamp::from_second(ready.as_second() + 4).expect("an instant");
    let end = start + SignedDuration::from_secs(shape.seconds as i64);
    // Ticks late by up to the worker grace (2 s) still count: wait them out.
    let stop_at = end + SignedDuration::from_secs(4);
    std::thread::sleep(Duration::try_from(stop_at.duration_since(Timestamp::now())).unwrap_or_default());
    for (child, _) in &mut children {
        drop(child.stdin.take());
    }
    for (child, id) in &mut children {
        let status = child.wait().expect("an instance exits");
        assert!(status.success(), "instance {id} exited with {status}");
    }
    let reports: Vec<Report> = outs.iter().map(|out| read_report(out)).collect();

    let (start_ms, end_ms) = (start.as_millisecond(), end.as_millisecond());
    let mut seen: HashMap<(u32, i64), u32> = HashMap::new();
    let mut late_ms = Vec::new();
    let mut ticks_run = 0u64;
    for report in &reports {
        ticks_run += report.runs.len() as u64;
        for &(schedule, tick, late) in &report.runs {
            if (start_ms..end_ms).contains(&tick) {
                *seen.entry((schedule, tick)).or_default() += 1;
                late_ms.push(late as f64 / 1000.0);
            }
        }
    }
    let duplicates: u64 = seen.values().map(|&n| u64::from(n.saturating_sub(1))).sum();
    let mut due = 0u64;
    let mut missing = 0u64;
    let mut missing_by_second = Vec::new();
    for second in start.as_second()..end.as_second() {
        let tick = second * 1000;
        let of_minute = second.rem_euclid(60) as usize;
        let before = missing;
        for schedule in (of_minute..shape.schedules).step_by(60) {
            due += 1;
            if !seen.contains_key(&(schedule as u32, tick)) {
                missing += 1;
            }
        }
        if missing > before {
            missing_by_second.push(format!("{}s: {}", second - start.as_second(), missing - before));
        }
    }
    if missing > 0 {
        eprintln!(
            "scale, {store_name}: ticks missing, by second of the window: {}",
            missing_by_second.join(", ")
        );
    }
    late_ms.sort_by(f64::total_cmp);
    let p50 = nearest_rank(&late_ms, 0.50);
    let p99 = nearest_rank(&late_ms, 0.99);
    // Durable ticks claimed as the instances stopped left their runs queued for the next
    // instance: they are ticks claimed as much as those that ran.
    let left_queued = if shape.durable { unfinished_runs(store) } else { 0 };
    let ticks_claimed = ticks_run + left_queued;
    let sum = |f: fn(&Report) -> u64| reports.iter().map(f).sum::<u64>() as f64;
    let per_tick = |n: f64| n / ticks_claimed.max(1) as f64;
    let claim_rows = per_tick(sum(|r| r.claim_rows));
    let claim_statements = per_tick(sum(|r| r.claim_statements));
    let writes = per_tick(sum(|r| r.write_statements));
    let reads = per_tick(sum(|r| r.read_statements));
    eprintln!(
        "scale{}, {store_name}: {due} ticks due in {} s, {} run in the window ({ticks_run} in all, \
         {left_queued} left queued); \
         duplicates {duplicates}, missing {missing}; late p50 {p50:.1} ms, p99 {p99:.1} ms; \
         per tick: {claim_rows:.3} ledger rows, {claim_statements:.3} claim statements, {writes:.3} write statements, {reads:.3} reads",
        if shape.durable { " (durable)" } else { "" },
        shape.seconds,
        late_ms.len(),
    );

    if std::env::var("TASKYARD_BENCH_SCALE_CHECK").as_deref() == Ok("1") {
        // CI runs this comparison small, as a test of exactly-once ticks across processes
        // and of claims made together; timings are not checked there.
        assert_eq!(
            (duplicates, missing),
            (0, 0),
            "{store_name}: duplicate and missing ticks"
        );
        assert!(
            (claim_rows - 1.0).abs() < 1e-9 && claim_statements <= 1.0,
            "{store_name}: {claim_rows} ledger rows and {claim_statements} claim statements per tick"
        );
    }
    let comparison = format!(
        "{} schedules{} over {} instances, {store_name}, {} s",
        shape.schedules,
        if shape.durable { " with durable runs" } else { "" },
        shape.instances,
        shape.seconds
    );
    let row =
        |metric: &str, value: f64, peer: f64, peer_name: &str, target: &str, met: bool, unit: &str| Row {
            comparison: comparison.clone(),
            metric: metric.to_owned(),
            taskyard: value,
            peer,
            peer_name: peer_name.to_owned(),
            ratio: if peer == 0.0 { 0.0 } else { value / peer },
            target: target.to_owned(),
            met,
            unit: unit.to_owned(),
        };
    vec![
        row(
            "duplicate runs of a tick",
            duplicates as f64,
            due as f64,
            "ticks due",
            "0",
            duplicates == 0,
            "runs",
        ),
        row(
            "ticks that never ran",
            missing as f64,
            due as f64,
            "ticks due",
            "0",
            missing == 0,
            "ticks",
        ),
        row("lateness p50, ms", p50, p99, "p99", "—", true, "ms"),
        row(
            "lateness p99, ms",
            p99,
            LATENESS_P99_GOAL_MS,
            "the goal",
            &format!("≤ {LATENESS_P99_GOAL_MS} ms"),
            p99 <= LATENESS_P99_GOAL_MS,
            "ms",
        ),
        row(
            "tick ledger rows written per tick",
            claim_rows,
            1.0,
            "one claim",
            "exactly 1",
            (claim_rows - 1.0).abs() < 1e-9,
            "rows",
        ),
        row(
            "claim statements per tick",
            claim_statements,
            1.0,
            "one claim",
            "≤ 1",
            claim_statements <= 1.0,
            "statements",
        ),
        row(
            "write statements per tick, all (claims, run records, heartbeats)",
            writes,
            1.0,
            "one write",
            "—",
            true,
            "statements",
        ),
        row(
            "read statements per tick (overlap checks, membership, pauses)",
            reads,
            1.0,
            "one read",
            "—",
            true,
            "statements",
        ),
    ]
}
