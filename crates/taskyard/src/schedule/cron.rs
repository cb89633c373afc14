//! Cron expressions: croner's syntax (5, 6 or 7 fields, `L`, `W`, `#`, `?`, names,
//! `@daily` and friends, day-of-month OR day-of-week), evaluated in an IANA time zone with
//! the daylight-saving behaviour of the JavaScript engines taskyard is compatible with.
//!
//! Parsing and matching are croner's (`croner` crate on `jiff`). One rule is taskyard's
//! own: a local time that a spring-forward gap skips fires the gap's length later (02:30 →
//! 03:30 when clocks jump from 02:00 to 03:00), as JavaScript dates and jiff's `compatible`
//! disambiguation do, where croner fires at the end of the gap (03:00). In an autumn
//! overlap croner's rule already matches the JavaScript engines: a job with a fixed hour
//! fires once, at the first occurrence; a job with `*` hours fires in both hours.

use std::fmt;

use croner::Cron;
use croner::parser::CronParser;
use jiff::civil::DateTime;
use jiff::tz::{Offset, TimeZone};
use jiff::{Timestamp, Zoned};

use super::cron_fields::Fields;
use super::cron_syntax;
use super::cron_years::{self, Years};

/// A parsed cron expression.
#[derive(Clone)]
pub struct CronExpr {
    source: String,
    cron: Cron,
    /// The hour field is `*`: in an autumn overlap such a job fires in both hours; any
    /// other hour field fires once, at the first occurrence.
    every_hour: bool,
    /// The fields as bit sets, when the expression is plain enough for the fast search.
    fields: Option<Fields>,
    /// The years of a year field other than `*` (the crate is given `*`).
    years: Option<Years>,
}

impl fmt::Debug for CronExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CronExpr").field(&self.source).finish()
    }
}

impl fmt::Display for CronExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl CronExpr {
    /// Parses `expr`. The error names the field at fault, by position and name, and what
    /// is wrong with it.
    pub fn parse(expr: &str) -> Result<CronExpr, String> {
        let source = expr.trim().to_owned();
        let cron_syntax::Normalized { read, years } = cron_syntax::normalize(&source)?;
        match parser().parse(&read) {
            Ok(cron) => Ok(CronExpr {
                every_hour: hour_field(&read) == Some("*"),
                fields: Fields::of(&cron, &read),
                years,
                source,
                cron,
            }),
            Err(error) => Err(cron_syntax::explain_error(&source, &read, &error)),
        }
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The pattern croner parsed: each field's values and its `L`, `W` and `#` marks.
    pub(crate) fn pattern(&self) -> &croner::CronPattern {
        &self.cron.pattern
    }

    /// True when a 7-field expression limits the years.
    pub(crate) fn has_years(&self) -> bool {
        self.years.is_some()
    }

    /// Whether the expression fires in `year` at all (always, without a year field).
    pub(crate) fn in_year(&self, year: i64) -> bool {
        self.years.as_ref().is_none_or(|years| years.contains(year))
    }

    /// The first local (civil) time strictly after `civil` that the pattern matches, read
    /// as a wall clock with no zone: what a calendar that knows nothing of daylight saving
    /// would fire at.
    pub(crate) fn next_civil_match(&self, civil: DateTime) -> Option<DateTime> {
        let as_utc = civil.to_zoned(TimeZone::UTC).ok()?;
        let next: Zoned = self.cron.find_next_occurrence(&as_utc, false).ok()?;
        Some(next.datetime())
    }

    /// A plain-language description, e.g. "At every 5 minutes, of hour 9-17, …".
    pub fn describe(&self) -> String {
        self.cron.describe()
    }

    /// The first fire time strictly after `after`, in `zone`; `None` when there is none
    /// up to the year 9999.
    pub fn next_after(&self, after: Timestamp, zone: &TimeZone) -> Option<Timestamp> {
        match &self.years {
            Some(years) => years.next_after(after, zone, |after| self.next_in_any_year(after, zone)),
            None => self.next_in_any_year(after, zone),
        }
    }

    /// [`CronExpr::next_after`] without the year field.
    fn next_in_any_year(&self, after: Timestamp, zone: &TimeZone) -> Option<Timestamp> {
        if let Some(fields) = &self.fields {
            if let Some(offset) = fixed_offset(zone) {
                return fields.next_after(after, i64::from(offset.seconds()));
            }
            // In a zone with daylight saving the fast search holds while the offset does:
            // no transition from a day before `after` (so `after` is not in an overlap's
            // repeated hour) up to the answer (so no gap or overlap lies between).
            let offset = zone.to_offset(after);
            let next = fields.next_after(after, i64::from(offset.seconds()));
            let settled = |next: Timestamp| {
                zone.following(after)
                    .next()
                    .is_none_or(|transition| transition.timestamp() > next)
                    && zone
                        .preceding(after + jiff::SignedDuration::from_nanos(1))
                        .next()
                        .is_none_or(|transition| {
                            after.as_second() - transition.timestamp().as_second() > DAY_SECONDS
                        })
            };
            if let Some(next) = next
                && settled(next)
            {
                return Some(next);
            }
        }
        cron_years::beyond_the_crate(after, zone, |after| self.next_after_in_zone(after, zone))
    }

    /// [`CronExpr::next_after`] through croner, with the daylight-saving rules.
    fn next_after_in_zone(&self, mut after: Timestamp, zone: &TimeZone) -> Option<Timestamp> {
        // A candidate that repeats a local time in an overlap is skipped unless the hour
        // field is `*`; a few rounds cover every repeat of one overlap.
        for _ in 0..8 {
            let next = self.next_candidate(after, zone)?;
            if self.every_hour || !is_repeat(next, zone) {
                return Some(next);
            }
            after = next;
        }
        None
    }

    fn next_candidate(&self, after: Timestamp, zone: &TimeZone) -> Option<Timestamp> {
        let zoned = after.to_zoned(zone.clone());
        let native = self
            .cron
            .find_next_occurrence(&zoned, false)
            .ok()
            // croner moves a time skipped by a gap to the gap's end, where it no longer
            // matches the pattern; that case is answered from civil time below.
            .filter(|next| self.cron.is_time_matching(next).unwrap_or(false))
            .map(|next| next.timestamp());
        // Just after a spring-forward gap, the gap's own local times still fire, each the
        // gap's length later: `*/20 3 * * *` where 03:00–04:00 is skipped fires at 04:00,
        // 04:20 and 04:40.
        let in_gap = self.in_gap(after, zone);
        let native = match (native, in_gap) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let crosses_transition = match native {
            Some(native) => zone
                .following(after)
                .next()
                .is_some_and(|transition| transition.timestamp() <= native),
            None => zone.to_fixed_offset().is_err(),
        };
        if !crosses_transition {
            return native;
        }
        let civil = self.next_civil(zoned.datetime(), zone, after);
        match (native, civil) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// When `after` falls within a gap's length of a spring-forward gap, the next local time
    /// inside the gap that matches and, pushed forward by the gap, is after `after`.
    fn in_gap(&self, after: Timestamp, zone: &TimeZone) -> Option<Timestamp> {
        // A transition at `after` itself counts: `preceding` looks strictly before.
        let transition = zone
            .preceding(after + jiff::SignedDuration::from_nanos(1))
            .next()?;
        let before = zone.to_offset(transition.timestamp() - jiff::SignedDuration::from_secs(1));
        let gap = i64::from(transition.offset().seconds() - before.seconds());
        if gap <= 0 || after.as_second() - transition.timestamp().as_second() >= gap {
            return None;
        }
        // The local time `after` stands for inside the gap, as the clock would have read.
        let civil = after.to_zoned(TimeZone::fixed(before)).datetime();
        self.next_civil(civil, zone, after)
    }

    /// The next match in local (civil) time whose instant, resolved like a JavaScript date
    /// (a gap pushes the time forward by the gap's length; an overlap takes the earlier
    /// instant), is after `after`.
    fn next_civil(&self, mut civil: DateTime, zone: &TimeZone, after: Timestamp) -> Option<Timestamp> {
        // A few rounds cover the civil times an overlap repeats.
        for _ in 0..4 {
            let as_utc = civil.to_zoned(TimeZone::UTC).ok()?;
            let next: Zoned = self.cron.find_next_occurrence(&as_utc, false).ok()?;
            civil = next.datetime();
            let instant = zone.to_ambiguous_timestamp(civil).compatible().ok()?;
            if instant > after {
                return Some(instant);
            }
        }
        None
    }
}

const DAY_SECONDS: i64 = 86_400;

/// The offset of a zone without transitions: UTC or a fixed offset. IANA zones other than
/// UTC are not asked, since jiff answers them with an allocated error.
fn fixed_offset(zone: &TimeZone) -> Option<Offset> {
    match zone.iana_name() {
        None | Some("UTC") => zone.to_fixed_offset().ok(),
        Some(_) => None,
    }
}

/// True when `at` is the second (later) occurrence of its local time in an overlap.
fn is_repeat(at: Timestamp, zone: &TimeZone) -> bool {
    let civil = at.to_zoned(zone.clone()).datetime();
    let ambiguous = zone.to_ambiguous_timestamp(civil);
    ambiguous.is_ambiguous() && ambiguous.earlier().is_ok_and(|first| first != at)
}

/// The hour field as written; shorthands have a fixed hour except `@hourly`.
fn hour_field(source: &str) -> Option<&str> {
    let fields: Vec<&str> = source.split_whitespace().collect();
    match fields.as_slice() {
        [alias] if alias.eq_ignore_ascii_case("@hourly") => Some("*"),
        [_] => Some("0"),
        [_, hour, _, _, _] => Some(hour),
        [_, _, hour, ..] => Some(hour),
        _ => None,
    }
}

pub(crate) fn parser() -> CronParser {
    // croner's defaults: optional seconds and year, day-of-month OR day-of-week.
    CronParser::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().expect("timestamp")
    }

    fn next_n(expr: &str, zone: &str, from: &str, n: usize) -> Vec<String> {
        let cron = CronExpr::parse(expr).expect("valid");
        let zone = TimeZone::get(zone).expect("zone");
        let mut t = at(from);
        let mut out = Vec::new();
        for _ in 0..n {
            t = cron.next_after(t, &zone).expect("a next time");
            out.push(
                t.to_zoned(zone.clone())
                    .strftime("%Y-%m-%dT%H:%M:%S%:z")
                    .to_string(),
            );
        }
        out
    }

    #[test]
    fn spring_forward_gap_fires_the_gap_length_later() {
        assert_eq!(
            next_n("30 2 * * *", "America/New_York", "2026-03-07T12:00:00Z", 3),
            [
                "2026-03-08T03:30:00-04:00",
                "2026-03-09T02:30:00-04:00",
                "2026-03-10T02:30:00-04:00"
            ]
        );
        // Lord Howe moves by 30 minutes: 02:00 → 02:30, so 02:15 fires at 02:45.
        assert_eq!(
            next_n("15 2 * * *", "Australia/Lord_Howe", "2026-10-03T00:00:00Z", 2),
            ["2026-10-04T02:45:00+11:00", "2026-10-05T02:15:00+11:00"]
        );
    }

    #[test]
    fn stepped_times_inside_a_gap_each_fire_the_gap_length_later() {
        // Athens skips 03:00–04:00 on 27 March 2016.
        assert_eq!(
            next_n("*/20 3 * * *", "Europe/Athens", "2016-03-26T23:00:00Z", 4),
            [
                "2016-03-27T04:00:00+03:00",
                "2016-03-27T04:20:00+03:00",
                "2016-03-27T04:40:00+03:00",
                "2016-03-28T03:00:00+03:00"
            ]
        );
        // Lord Howe skips 02:00–02:30: 02:00 and 02:15 fire at 02:30 and 02:45, then 02:30.
        assert_eq!(
            next_n(
                "0,15,30 2 * * *",
                "Australia/Lord_Howe",
                "2026-10-03T14:00:00Z",
                3
            ),
            [
                "2026-10-04T02:30:00+11:00",
                "2026-10-04T02:45:00+11:00",
                "2026-10-05T02:00:00+11:00"
            ]
        );
    }

    #[test]
    fn autumn_overlap_fires_fixed_hours_once_and_wildcard_hours_twice() {
        assert_eq!(
            next_n("30 1 * * *", "America/New_York", "2026-10-31T12:00:00Z", 2),
            ["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"]
        );
        assert_eq!(
            next_n("0 * * * *", "America/New_York", "2026-11-01T04:00:00Z", 4),
            [
                "2026-11-01T01:00:00-04:00",
                "2026-11-01T01:00:00-05:00",
                "2026-11-01T02:00:00-05:00",
                "2026-11-01T03:00:00-05:00"
            ]
        );
    }

    #[test]
    fn overlap_fires_stepped_hours_once() {
        // 02:23 repeats in Berlin on 25 October 2026; hour 2 is in 0-20/2.
        assert_eq!(
            next_n("23 0-20/2 * * *", "Europe/Berlin", "2026-10-25T00:10:00Z", 2),
            ["2026-10-25T02:23:00+02:00", "2026-10-25T04:23:00+01:00"]
        );
    }

    #[test]
    fn syntax_of_croner() {
        let utc = |expr, n| next_n(expr, "UTC", "2026-01-01T00:00:00Z", n);
        assert_eq!(utc("0 0 3 * * *", 1), ["2026-01-01T03:00:00+00:00"]);
        assert_eq!(utc("0 0 0 1 1 * 2030", 1), ["2030-01-01T00:00:00+00:00"]);
        // Years to 9999, as croner: past the crate's 4999, by whole 400-year cycles.
        assert_eq!(utc("0 0 0 1 1 * 9999", 1), ["9999-01-01T00:00:00+00:00"]);
        assert_eq!(
            utc("0 0 12 L 2 * 6000-9999/1000", 2),
            ["6000-02-29T12:00:00+00:00", "7000-02-28T12:00:00+00:00"]
        );
        assert_eq!(utc("0 0 * * 5#L", 1), ["2026-01-30T00:00:00+00:00"]);
        assert_eq!(utc("0 0 15W * *", 2)[1], "2026-02-16T00:00:00+00:00");
        assert_eq!(utc("@weekly", 1), ["2026-01-04T00:00:00+00:00"]);
        assert_eq!(utc("0 0 ? * MON", 1), ["2026-01-05T00:00:00+00:00"]);
        // Day of month OR day of week.
        assert_eq!(
            utc("0 0 13 * FRI", 2),
            ["2026-01-02T00:00:00+00:00", "2026-01-09T00:00:00+00:00"]
        );
    }

    #[test]
    fn errors_name_the_field() {
        let err = |expr| CronExpr::parse(expr).expect_err("invalid");
        assert_eq!(
            err("61 * * * *"),
            "`61 * * * *`: field 1 (minute) `61` is invalid: Number out of bounds"
        );
        assert!(
            err("* * 32 * *").contains("field 3 (day of month) `32`"),
            "{}",
            err("* * 32 * *")
        );
        assert!(
            err("0 0 0 * * * 0").contains("field 7 (year)"),
            "{}",
            err("0 0 0 * * * 0")
        );
        assert!(err("* * * *").contains("has 4 fields"));
        assert!(err("@fortnightly").contains("not a known shorthand"));
        assert!(
            err("* * * * FRY").contains("field 5 (day of week) `FRY`"),
            "{}",
            err("* * * * FRY")
        );
    }

    #[test]
    fn never_firing_expression_has_no_next_time() {
        let cron = CronExpr::parse("0 0 30 2 *").expect("parses");
        assert_eq!(cron.next_after(at("2026-01-01T00:00:00Z"), &TimeZone::UTC), None);
    }

    /// A random field: `*`, a value, a range, a step, a list, or (for months and weekdays)
    /// a name.
    fn random_field(rng: &mut fastrand::Rng, low: u32, high: u32, names: &[&str]) -> String {
        let value = |rng: &mut fastrand::Rng| rng.u32(low..=high);
        match rng.u8(0..8) {
            0 => "*".into(),
            1 => value(rng).to_string(),
            2 => {
                let a = value(rng);
                format!("{a}-{}", rng.u32(a..=high))
            }
            // Steps within the field's range: croner refuses larger ones.
            3 => format!("*/{}", rng.u32(1..=(high - low).min(20))),
            4 => {
                let a = value(rng);
                format!("{a}-{}/{}", rng.u32(a..=high), rng.u32(1..=5))
            }
            5 => format!("{}-{high}/{}", value(rng), rng.u32(1..=(high - low).min(10))),
            6 if !names.is_empty() => names[rng.usize(..names.len())].into(),
            _ => (0..rng.usize(2..=4))
                .map(|_| value(rng).to_string())
                .collect::<Vec<_>>()
                .join(","),
        }
    }

    #[test]
    fn the_fast_search_agrees_with_croner_on_random_expressions() {
        const MONTHS: [&str; 4] = ["JAN", "FEB", "JUN-AUG", "DEC"];
        const WEEKDAYS: [&str; 4] = ["MON-FRI", "SUN", "SAT,SUN", "TUE"];
        let zones = [
            TimeZone::UTC,
            TimeZone::fixed(jiff::tz::offset(5)),
            TimeZone::fixed(jiff::tz::Offset::from_seconds(-(9 * 3600 + 30 * 60)).expect("offset")),
            TimeZone::get("Europe/Berlin").expect("zone"),
            TimeZone::get("America/New_York").expect("zone"),
            // Half-hour daylight saving.
            TimeZone::get("Australia/Lord_Howe").expect("zone"),
        ];
        let mut rng = fastrand::Rng::with_seed(7);
        let mut fast = 0;
        for case in 0..6000 {
            let mut fields = vec![
                random_field(&mut rng, 0, 59, &[]),
                random_field(&mut rng, 0, 23, &[]),
                // Days of the month up to 31 give months that never have them (`30 2`).
                random_field(&mut rng, 1, 31, &[]),
                random_field(&mut rng, 1, 12, &MONTHS),
                random_field(&mut rng, 0, 7, &WEEKDAYS),
            ];
            if rng.bool() {
                fields.insert(0, random_field(&mut rng, 0, 59, &[]));
            }
            if rng.u8(0..10) == 0 {
                let dow = fields.len() - 1;
                fields[dow] = format!("+{}", fields[dow]);
            }
            let expr = fields.join(" ");
            let cron = CronExpr::parse(&expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
            fast += usize::from(cron.fields.is_some());
            let zone = &zones[case % zones.len()];
            // Instants from 1960 to 2100, with and without a fraction of a second.
            let mut after = Timestamp::from_second(rng.i64(-315_619_200..4_102_444_800)).expect("instant")
                + jiff::SignedDuration::from_millis(if rng.bool() { rng.i64(0..1000) } else { 0 });
            for _ in 0..5 {
                let expected = cron.next_after_in_zone(after, zone);
                assert_eq!(
                    cron.next_after(after, zone),
                    expected,
                    "`{expr}` after {after} in {zone:?}"
                );
                let Some(next) = expected else { break };
                after = next;
            }
        }
        assert!(fast > 5800, "only {fast} of 6000 could take the fast search");
    }

    #[test]
    fn inside_an_overlap_a_fixed_hour_does_not_fire_again() {
        // 01:10Z is 02:10 CET, in the hour the clocks repeat after 03:00 CEST → 02:00 CET;
        // 02:30 already fired in the first pass.
        assert_eq!(
            next_n("30 2 * * *", "Europe/Berlin", "2026-10-25T01:10:00Z", 1),
            ["2026-10-26T02:30:00+01:00"]
        );
        assert_eq!(
            next_n("30 * * * *", "Europe/Berlin", "2026-10-25T01:10:00Z", 1),
            ["2026-10-25T02:30:00+01:00"]
        );
    }

    #[test]
    fn expressions_with_modifiers_or_years_take_croners_search() {
        for expr in ["0 0 L * *", "0 0 15W * *", "0 0 * * MON#2", "0 0 * * 5L"] {
            assert!(CronExpr::parse(expr).expect("parses").fields.is_none(), "{expr}");
        }
        for expr in [
            "*/5 * * * *",
            "0 0 0 1 1 * *",
            // The year field is read apart from the crate (`cron_years`).
            "0 0 0 1 1 * 2030",
            "@weekly",
            "0 9-17/2 * JAN-MAR MON-FRI",
        ] {
            assert!(CronExpr::parse(expr).expect("parses").fields.is_some(), "{expr}");
        }
    }
}
