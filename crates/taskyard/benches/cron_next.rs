//! Cron next-occurrence cost: taskyard's path (`CronExpr::next_after`: croner plus the
//! JavaScript daylight-saving rule) beside `croner` called directly and the `cron` crate,
//! for the same expressions from the same instant, in UTC and in a zone with DST.
//!
//! Run: `cargo bench -p taskyard --bench cron_next`

use std::hint::black_box;
use std::str::FromStr;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use taskyard::schedule::CronExpr;

/// (croner / taskyard syntax, the `cron` crate's syntax: seconds first, year optional).
const EXPRESSIONS: [(&str, &str, &str); 4] = [
    ("every-5-min", "*/5 * * * *", "0 */5 * * * *"),
    ("nightly", "0 3 * * *", "0 0 3 * * *"),
    ("workdays", "*/15 9-17 * * MON-FRI", "0 */15 9-17 * * Mon-Fri"),
    ("yearly", "0 0 1 1 *", "0 0 0 1 1 *"),
];

/// A Friday evening, so `workdays` has to skip a weekend.
const FROM: &str = "2026-11-20T18:07:13Z";

fn cron_next(c: &mut Criterion) {
    let from: Timestamp = FROM.parse().expect("instant");
    let from_chrono: chrono::DateTime<chrono::Utc> = FROM.parse().expect("instant");
    // croner's defaults, as taskyard uses them.
    let parser = croner::parser::CronParser::new();
    for (zone_name, zone) in [
        ("UTC", TimeZone::UTC),
        ("Europe/Berlin", TimeZone::get("Europe/Berlin").expect("zone")),
    ] {
        let mut group = c.benchmark_group(format!("cron_next/{zone_name}"));
        for (name, expr, cron_crate_expr) in EXPRESSIONS {
            let taskyard = CronExpr::parse(expr).expect("taskyard parses");
            let croner = parser.parse(expr).expect("croner parses");
            let from_zoned = from.to_zoned(zone.clone());
            // The answers agree before anything is timed.
            let ours = taskyard.next_after(from, &zone).expect("next");
            let theirs = croner
                .find_next_occurrence(&from_zoned, false)
                .expect("next")
                .timestamp();
            assert_eq!(ours, theirs, "{expr} in {zone_name}");

            group.bench_with_input(BenchmarkId::new("taskyard", name), &from, |b, from| {
                b.iter(|| taskyard.next_after(black_box(*from), &zone))
            });
            group.bench_with_input(BenchmarkId::new("croner", name), &from_zoned, |b, from| {
                b.iter(|| croner.find_next_occurrence(black_box(from), false))
            });
            if zone_name == "UTC" {
                // The `cron` crate works on chrono times; in UTC it answers the same.
                let schedule = cron::Schedule::from_str(cron_crate_expr).expect("cron parses");
                let answer = schedule.after(&from_chrono).next().expect("next");
                assert_eq!(answer.timestamp(), ours.as_second(), "{cron_crate_expr}");
                group.bench_with_input(BenchmarkId::new("cron", name), &from_chrono, |b, from| {
                    b.iter(|| schedule.after(black_box(from)).next())
                });
            }
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = cron_next
}
criterion_main!(benches);
