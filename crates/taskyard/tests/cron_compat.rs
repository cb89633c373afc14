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
    // Steps whose times fall inside a spring-forward gap.
    "*/20 3 * * *",
    "*/15 2 * * *",
    "*/10 2 * * *",
    "*/20 0 * * *",
];

/// Which engine taskyard follows for a piece of syntax, checked in UTC from 2026-01-01.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Follows {
    /// Both engines give the same answer (the same times, or both refuse), and so does
    /// taskyard.
    Both,
    /// croner's syntax, which cron-parser lacks or reads otherwise: taskyard answers as
    /// croner (Nitro's engine) does.
    Croner,
    /// cron-parser's syntax, which croner refuses or reads otherwise: taskyard answers as
    /// cron-parser (egg-schedule's engine) does.
    CronParser,
}

/// Syntax cases; every disagreement here is in docs/schedules.md's table.
const SYNTAX: &[(&str, Follows)] = &[
    ("@midnight", Follows::Croner),
    ("@MIDNIGHT", Follows::Croner),
    ("@daily", Follows::Both),
    ("? * * * *", Follows::Croner),
    ("0 ? * * *", Follows::Croner),
    ("?/5 * * * *", Follows::Croner),
    ("0 0 ? ? ?", Follows::Croner),
    ("0 0 ?/2 * *", Follows::Both),
    ("0 0 12 ? * * *", Follows::Croner),
    // `?` beside a day of the week: croner fires every day, cron-parser on those days.
    ("0 0 1 * ?", Follows::CronParser),
    ("0 0 ? * 1", Follows::CronParser),
    ("*/10 * * * * ,", Follows::Both),
    ("*/10 * * * * ,2", Follows::Both),
    ("1,,2 * * * *", Follows::Both),
    ("0 12 1 * +", Follows::Both),
    ("*/60 * * * *", Follows::Both),
    ("0 */24 * * *", Follows::Both),
    ("0 0 */31 * *", Follows::Both),
    ("0 0 1 */12 *", Follows::Both),
    ("*/61 * * * *", Follows::Croner),
    ("0 */25 * * *", Follows::Croner),
    ("0 0 */32 * *", Follows::Croner),
    ("0 0 1 */13 *", Follows::Croner),
    ("0 0 * * */8", Follows::Croner),
    ("5-10/61 * * * *", Follows::Croner),
    ("0 0 0 1 1 * */2", Follows::Croner),
    ("0 0 0 1 1 * 2030", Follows::Croner),
    ("0 0 0 1 1 * 9999", Follows::Croner),
    ("0 0 0 1 1 * 5001", Follows::Croner),
    ("0 0 0 1 1 * 1-9999/2", Follows::Croner),
    ("0 0 0 1 1 * 10000", Follows::Both),
    ("0 0 0 29 2 * 4000-9999/400", Follows::Croner),
    ("0 0 12 L 2 * 6000-9999/1000", Follows::Croner),
    ("0 0 0 * * 5#L 9999", Follows::Croner),
    ("0 30 2 * * 0 9000", Follows::Croner),
    ("0/30 * * * *", Follows::CronParser),
    ("5/15 * * * *", Follows::CronParser),
    ("0 0/6 * * *", Follows::CronParser),
    ("0 0 1/10 * *", Follows::CronParser),
    ("0 0 * 1/3 *", Follows::CronParser),
    ("0 0 * * 1/2", Follows::CronParser),
    ("10/20 * * * * *", Follows::CronParser),
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
    // Athens skips 03:00–04:00 on 27 March 2016.
    ("Europe/Athens", &["2016-03-26T23:00:00Z"]),
    // The southern hemisphere: Sydney springs forward in October and falls back in April;
    // Santiago skips midnight in September.
    (
        "Australia/Sydney",
        &["2026-10-03T14:00:00Z", "2026-04-04T14:00:00Z"],
    ),
    ("America/Santiago", &["2026-09-05T20:00:00Z"]),
];

const TIMES: usize = 6;

/// Steps whose times fall inside a spring-forward gap, where taskyard fires each of them the
/// gap's length later as cron-parser does (croner fires the gap's end once): checked against
/// cron-parser's times in every start of the zone.
const STEPS_IN_GAPS: &[(&str, &str)] = &[
    ("*/20 3 * * *", "Europe/Athens"),
    ("*/15 2 * * *", "America/New_York"),
    ("*/15 2 * * *", "Europe/Berlin"),
    ("*/10 2 * * *", "Australia/Sydney"),
    ("*/15 2 * * *", "Australia/Sydney"),
    ("*/10 2 * * *", "Australia/Lord_Howe"),
];

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

/// The JavaScript engines' answers for `cases`, and `ms` for each of `ms`.
fn ask_node(peers: &std::path::Path, cases: &[Case], ms: &[&str]) -> Value {
    let input = json!({
        "cron": cases.iter().map(|c| json!({"expr": c.expr, "tz": c.tz, "from": c.from, "n": TIMES})).collect::<Vec<_>>(),
        "ms": ms,
    });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/js/peers.cjs");
    let mut node = Command::new("node")
        .arg(script)
        .arg(peers)
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
    serde_json::from_slice(&output.stdout).expect("json")
}

#[test]
fn syntax_follows_the_engine_the_docs_name() {
    let Some(peers) = node_peers() else { return };
    let cases: Vec<Case> = SYNTAX
        .iter()
        .map(|(expr, _)| Case {
            expr,
            tz: "UTC",
            from: "2026-01-01T00:00:00Z",
        })
        .collect();
    let answers = ask_node(&peers, &cases, &[]);
    let mut wrong = Vec::new();
    for ((case, (_, follows)), answer) in cases
        .iter()
        .zip(SYNTAX)
        .zip(answers["cron"].as_array().expect("cron answers"))
    {
        // An engine's times, or `None` where it refuses the expression.
        let engine = |key: &str| -> Option<Vec<String>> {
            answer[key]["ok"].as_array().map(|times| {
                times
                    .iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect()
            })
        };
        let (croner, cron_parser) = (engine("croner"), engine("cronParser"));
        let expected = match follows {
            Follows::Both if croner != cron_parser => {
                wrong.push(format!(
                    "{:?}: listed as agreed, but croner {} / cron-parser {}",
                    case.expr, answer["croner"], answer["cronParser"]
                ));
                continue;
            }
            Follows::Both | Follows::Croner => croner,
            Follows::CronParser => cron_parser,
        };
        let ours = taskyard_times(case);
        if ours != expected {
            wrong.push(format!(
                "{:?} ({follows:?}): expected {expected:?}, taskyard {ours:?} ({})",
                case.expr,
                CronExpr::parse(case.expr).err().unwrap_or_default()
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
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
    let answers = ask_node(&peers, &cases, MS_CORPUS);

    let (mut agreed, mut disagreements) = (0, Vec::new());
    let (mut mismatches, mut gaps) = (Vec::new(), 0);
    for (case, answer) in cases
        .iter()
        .zip(answers["cron"].as_array().expect("cron answers"))
    {
        let croner = answer["croner"]["ok"].as_array();
        let cron_parser = answer["cronParser"]["ok"].as_array();
        let ours = taskyard_times(case);
        if STEPS_IN_GAPS.contains(&(case.expr, case.tz)) {
            let expected: Option<Vec<String>> = cron_parser.map(|times| {
                times
                    .iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect()
            });
            gaps += 1;
            if ours != expected {
                mismatches.push(format!(
                    "{:?} in {} from {} (a step inside a gap):\n  cron-parser: {expected:?}\n  taskyard:    {ours:?}",
                    case.expr, case.tz, case.from
                ));
            }
        }
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
    assert!(gaps >= 8, "only {gaps} cases of steps inside gaps");
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
