//! Cron next-occurrence cost, in UTC: taskyard's path (`CronExpr::next_after`: croner plus
//! the JavaScript daylight-saving rule) against the `croner` crate called directly, the
//! `cron` crate, and JavaScript croner in Node. The answers are checked equal first; each
//! side is the best of 5 rounds; the rows compare geometric means over the expressions.

use std::hint::black_box;
use std::path::Path;
use std::process::Command;
use std::str::FromStr;
use std::time::Instant;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use taskyard::schedule::CronExpr;

use crate::peers;
use crate::report::Row;

/// (croner / taskyard syntax, the `cron` crate's syntax: seconds first).
const EXPRESSIONS: [(&str, &str); 4] = [
    ("*/5 * * * *", "0 */5 * * * *"),
    ("0 3 * * *", "0 0 3 * * *"),
    ("*/15 9-17 * * MON-FRI", "0 */15 9-17 * * Mon-Fri"),
    ("0 0 1 1 *", "0 0 0 1 1 *"),
];

/// A Friday evening, so the workdays expression has to skip a weekend.
const FROM: &str = "2026-11-20T18:07:13Z";
const CALLS: u32 = 200_000;
/// JavaScript croner takes microseconds per call: fewer calls keep its rounds short.
const JS_CALLS: u32 = 20_000;

/// Nanoseconds per call of `f`, best of 5 rounds.
fn time<T>(mut f: impl FnMut() -> T) -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let started = Instant::now();
        for _ in 0..CALLS {
            black_box(f());
        }
        best = best.min(started.elapsed().as_nanos() as f64 / f64::from(CALLS));
    }
    best
}

fn geometric_mean(values: &[f64]) -> f64 {
    (values.iter().map(|v| v.ln()).sum::<f64>() / values.len() as f64).exp()
}

pub fn compare(root: &Path) -> Vec<Row> {
    let from: Timestamp = FROM.parse().expect("instant");
    let from_zoned = from.to_zoned(TimeZone::UTC);
    let from_chrono: chrono::DateTime<chrono::Utc> = FROM.parse().expect("instant");
    let parser = croner::parser::CronParser::new();
    let (mut ours, mut croner_crate, mut cron_crate) = (Vec::new(), Vec::new(), Vec::new());
    for (expr, cron_expr) in EXPRESSIONS {
        let taskyard = CronExpr::parse(expr).expect("taskyard parses");
        let croner = parser.parse(expr).expect("croner parses");
        let cron = cron::Schedule::from_str(cron_expr).expect("cron parses");
        let answer = taskyard.next_after(from, &TimeZone::UTC).expect("next");
        let croner_answer = croner.find_next_occurrence(&from_zoned, false).expect("next");
        assert_eq!(answer, croner_answer.timestamp(), "{expr}");
        let cron_answer = cron.after(&from_chrono).next().expect("next");
        assert_eq!(answer.as_second(), cron_answer.timestamp(), "{cron_expr}");
        ours.push(time(|| taskyard.next_after(black_box(from), &TimeZone::UTC)));
        croner_crate.push(time(|| {
            croner.find_next_occurrence(black_box(&from_zoned), false)
        }));
        cron_crate.push(time(|| cron.after(black_box(&from_chrono)).next()));
    }
    let answers: Vec<Timestamp> = EXPRESSIONS
        .iter()
        .map(|(expr, _)| {
            let parsed = CronExpr::parse(expr).expect("taskyard parses");
            parsed.next_after(from, &TimeZone::UTC).expect("next")
        })
        .collect();
    let javascript = javascript_croner(root, &answers);
    let ours = geometric_mean(&ours);
    eprintln!(
        "cron-next: taskyard {ours:.0} ns, croner {croner_crate:?}, cron {cron_crate:?}, JS {javascript:?}"
    );
    let mut rows = Vec::new();
    for (peer_name, values) in [
        ("croner crate", croner_crate),
        ("cron crate", cron_crate),
        ("croner (JavaScript)", javascript),
    ] {
        let peer = geometric_mean(&values);
        rows.push(Row {
            comparison: "cron next occurrence, UTC (geometric mean of 4)".into(),
            metric: "ns per call (peer / taskyard)".into(),
            taskyard: ours,
            peer,
            peer_name: peer_name.into(),
            ratio: peer / ours,
            target: "≥ 1× (as fast as the fastest)".into(),
            met: peer / ours >= 1.0,
            unit: "ns".into(),
        });
    }
    rows
}

/// JavaScript croner's ns per call, in the order of `EXPRESSIONS`, its answers checked
/// against taskyard's.
fn javascript_croner(root: &Path, answers: &[Timestamp]) -> Vec<f64> {
    let copy = peers::script(root, "cron-next.mjs");
    let output = Command::new("node")
        .arg(&copy)
        .env("TZ", "UTC")
        .arg(JS_CALLS.to_string())
        .arg(FROM)
        .args(EXPRESSIONS.iter().map(|(expr, _)| *expr))
        .output()
        .expect("node runs");
    let text = String::from_utf8_lossy(&output.stdout);
    let values: serde_json::Value = serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("JavaScript croner answered {text:?} ({e}); run bench/peers/setup.sh"));
    EXPRESSIONS
        .iter()
        .zip(answers)
        .map(|((expr, _), answer)| {
            let next: Timestamp = values[expr]["next"]
                .as_str()
                .and_then(|t| t.parse().ok())
                .expect("an instant");
            assert_eq!(next, *answer, "JavaScript croner disagrees on {expr}");
            values[expr]["ns"].as_f64().expect("ns per call")
        })
        .collect()
}
