//! Differential test against the JavaScript engines behind the seeds: the npm `croner`
//! (Nitro's cron engine) and `cron-parser` 4.9 (egg-schedule's), and the npm `ms` package
//! (egg-schedule's intervals), run with the machine's Node.js.
//!
//! Wherever both engines give the same next fire times for an expression, zone and start
//! instant, taskyard must give those times. Where they disagree, taskyard's choice is the
//! one documented in docs/schedules.md; the disagreements are printed.
//!
//! The packages come from `scripts/setup-node-peers.sh` (into `target/node-peers`). Without
//! them the test is skipped loudly, unless `TASKYARD_REQUIRE_NODE=1` (set by `.ci/run`).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::{Value, json};
use taskyard::schedule::CronExpr;
use taskyard::schedule::interval::parse_ms;

const EXPRESSIONS: &[&str] = &[
    "* * * * *",
    "*/15 * * * *",
    "0 * * * *",
    "30 * * * *",
    "30 2 * * *",
    "15 2 * * *",
    "0 2 * * *",
    "30 1 * * *",
    "23 0-20/2 * * *",
    "0 0 * * *",
    "0 3 * * 0",
    "0 0 1 * *",
    "0 0 L * *",
    "0 0 * * 5L",
    "0 0 * * 5#2",
    "0 0 15W * *",
    "0 12 ? * MON-FRI",
    "0 0 1,15 * 3",
    "0 0 29 2 *",
    "0 0 13 * FRI",
    "59 23 31 12 *",
    "5-20/5 8-18 * * 1-5",
    "0 0 * JAN,JUL *",
    "@daily",
    "@hourly",
    "@weekly",
    "@monthly",
    "@yearly",
    "*/20 * * * * *",
    "0 30 2 * * *",
    "0 0 0 1 1 * 2030",
];

/// Zones, each with start instants just before its daylight-saving changes in 2026 (and
/// one ordinary start). Lord Howe moves by 30 minutes.
const STARTS: &[(&str, &[&str])] = &[
    ("UTC", &["2026-01-01T00:00:00Z"]),
    (
        "America/New_York",
        &[
            "2026-03-08T05:10:00Z",
            "2026-11-01T04:10:00Z",
            "2026-02-27T12:00:00Z",
        ],
    ),
    ("Europe/Berlin", &["2026-03-29T00:10:00Z", "2026-10-25T00:10:00Z"]),
    (
        "Australia/Lord_Howe",
        &["2026-10-03T14:40:00Z", "2026-04-04T14:10:00Z"],
    ),
    ("Asia/Kolkata", &["2026-06-30T18:00:00Z"]),
];

const TIMES: usize = 6;

const MS_CORPUS: &[&str] = &[
    "100",
    "1s",
    "1.5h",
    "1   s",
    "1 S",
    "10 Seconds",
    "2 mins",
    "1m",
    "3d",
    "1w",
    "1y",
    ".5ms",
    "-100ms",
    "-.5h",
    "53 milliseconds",
    "17 msecs",
    "1hr",
    "1 yr",
    "2.5 days",
    "1e3",
    "",
    "1.",
    " 1s",
    "1s ",
    "1 mo",
    "abc",
    "--1",
    "1.5.5",
    "10 sec",
    "1 week",
    "100 Years",
    "0",
    "0ms",
    "7 hrs",
    "1.000001s",
];

fn node_peers() -> Option<PathBuf> {
    let dir = std::env::var_os("TASKYARD_NODE_PEERS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/node-peers")))
        .join("node_modules");
    if dir.join("croner").is_dir() && dir.join("cron-parser").is_dir() && dir.join("ms").is_dir() {
        return Some(dir);
    }
    if std::env::var("TASKYARD_REQUIRE_NODE").as_deref() == Ok("1") {
        panic!(
            "TASKYARD_REQUIRE_NODE=1 but {} lacks croner, cron-parser or ms: run scripts/setup-node-peers.sh",
            dir.display()
        );
    }
    eprintln!("\n*** SKIPPED JavaScript differential test: run scripts/setup-node-peers.sh ***\n");
    None
}

struct Case {
    expr: &'static str,
    tz: &'static str,
    from: &'static str,
}

fn taskyard_times(case: &Case) -> Option<Vec<String>> {
    let cron = CronExpr::parse(case.expr).ok()?;
    let zone = TimeZone::get(case.tz).expect("zone");
    let mut t: Timestamp = case.from.parse().expect("from");
    let mut times = Vec::new();
    while times.len() < TIMES {
        let Some(next) = cron.next_after(t, &zone) else {
            break;
        };
        times.push(next.strftime("%Y-%m-%dT%H:%M:%S.000Z").to_string());
        t = next;
    }
    Some(times)
}

#[test]
fn taskyard_agrees_with_croner_and_cron_parser_where_they_agree() {
    let Some(peers) = node_peers() else { return };
    let cases: Vec<Case> = EXPRESSIONS
        .iter()
        .flat_map(|expr| {
            STARTS
                .iter()
                .flat_map(move |(tz, froms)| froms.iter().map(move |from| Case { expr, tz, from }))
        })
        .collect();
    let input = json!({
        "cron": cases.iter().map(|c| json!({"expr": c.expr, "tz": c.tz, "from": c.from, "n": TIMES})).collect::<Vec<_>>(),
        "ms": MS_CORPUS,
    });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/js/peers.cjs");
    let mut node = Command::new("node")
        .arg(script)
        .arg(&peers)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node runs");
    node.stdin
        .take()
        .expect("stdin")
        .write_all(input.to_string().as_bytes())
        .expect("write");
    let output = node.wait_with_output().expect("node ends");
    assert!(output.status.success(), "node failed");
    let answers: Value = serde_json::from_slice(&output.stdout).expect("json");

    let (mut agreed, mut disagreements) = (0, Vec::new());
    let mut mismatches = Vec::new();
    for (case, answer) in cases
        .iter()
        .zip(answers["cron"].as_array().expect("cron answers"))
    {
        let croner = answer["croner"]["ok"].as_array();
        let cron_parser = answer["cronParser"]["ok"].as_array();
        let ours = taskyard_times(case);
        match (croner, cron_parser) {
            (Some(a), Some(b)) if a == b => {
                agreed += 1;
                let expected: Vec<String> = a.iter().filter_map(|t| t.as_str().map(str::to_owned)).collect();
                if ours.as_ref() != Some(&expected) {
                    mismatches.push(format!(
                        "{:?} in {} from {}:\n  both engines: {expected:?}\n  taskyard:     {ours:?}",
                        case.expr, case.tz, case.from
                    ));
                }
            }
            _ => disagreements.push(format!(
                "{:?} in {} from {}: croner {} / cron-parser {} / taskyard {:?}",
                case.expr,
                case.tz,
                case.from,
                answer["croner"],
                answer["cronParser"],
                ours.map(|t| t.first().cloned())
            )),
        }
    }
    eprintln!(
        "{agreed} cases where both engines agree; {} where they disagree or one refuses:",
        disagreements.len()
    );
    for line in &disagreements {
        eprintln!("  {line}");
    }
    assert!(
        agreed >= 150,
        "only {agreed} agreeing cases: the corpus is too thin"
    );
    assert!(
        mismatches.is_empty(),
        "taskyard differs from both engines:\n{}",
        mismatches.join("\n")
    );

    let values = answers["ms"].as_array().expect("ms answers");
    for (input, expected) in MS_CORPUS.iter().zip(values) {
        let expected = expected.as_str().map(|v| v.parse::<f64>().expect("a number"));
        assert_eq!(parse_ms(input), expected, "ms({input:?})");
    }
}
