//! A schedule's ticks as platform schedulers take them: each cron field as the set of
//! values it matches, with `L`, `W` and `#` kept apart, the day rule, and the zone.
//!
//! Built from croner's parsed pattern (the same one taskyard's own ticks come from), so an
//! export writes what taskyard fires, whatever syntax the schedule was written in; an
//! interval becomes a calendar only when its ticks fall on one (it divides a minute, an
//! hour or a day, counted from the Unix epoch in UTC).

use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::schedule::CronExpr;
use crate::schedule::checked::{ScheduleDef, Timing};

// croner's bits for a field's values (its `component` module does not export them; a test
// below checks them against patterns that set each).
const ALL_BIT: u8 = 1;
const NTH_BITS: [u8; 5] = [1 << 1, 1 << 2, 1 << 3, 1 << 4, 1 << 5];
const LAST_BIT: u8 = 1 << 6;
const CLOSEST_WEEKDAY_BIT: u8 = 1 << 7;

/// The days of the month a cron expression names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Days {
    /// The field is `*` (or `?`): under the day rule, it leaves the choice to the weekdays.
    pub star: bool,
    /// Plain days, 1–31.
    pub values: Vec<u8>,
    /// `L`: the month's last day.
    pub last: bool,
    /// `LW`: the month's last weekday (Monday to Friday).
    pub last_weekday: bool,
    /// `nW`: the weekday nearest the day `n`, within its month.
    pub nearest_weekday: Vec<u8>,
}

impl Days {
    /// True when only plain days are named.
    pub fn plain(&self) -> bool {
        !self.last && !self.last_weekday && self.nearest_weekday.is_empty()
    }
}

/// The days of the week a cron expression names, 0 = Sunday.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Weekdays {
    /// The field is `*` (or `?`).
    pub star: bool,
    /// Plain weekdays.
    pub values: Vec<u8>,
    /// `w#n`: the n-th such weekday of the month, as (weekday, n).
    pub nth: Vec<(u8, u8)>,
    /// `wL`: the month's last such weekday.
    pub last: Vec<u8>,
}

impl Weekdays {
    pub fn plain(&self) -> bool {
        self.nth.is_empty() && self.last.is_empty()
    }
}

/// How a day is chosen when both day fields name days: cron's OR, or AND after a `+`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DayRule {
    Or,
    And,
}

/// When a schedule fires, field by field, in `zone`.
#[derive(Debug, Clone)]
pub(crate) struct Calendar {
    pub seconds: Vec<u8>,
    pub minutes: Vec<u8>,
    pub hours: Vec<u8>,
    pub days: Days,
    pub months: Vec<u8>,
    pub weekdays: Weekdays,
    pub rule: DayRule,
    pub zone: TimeZone,
    /// The years systemd's calendar can name (1970 to 2199) in which it fires, when a year
    /// field limits them; `None` for every year.
    pub years: Option<Vec<u16>>,
    /// The expression it came from, or the interval, for messages.
    pub source: String,
}

/// The years systemd's calendar can name.
pub(crate) const CALENDAR_YEARS: std::ops::RangeInclusive<u16> = 1970..=2199;

impl Calendar {
    /// The calendar of a checked schedule, or why it has none.
    pub fn of(def: &ScheduleDef) -> Result<Calendar, String> {
        match &def.timing {
            Timing::Cron { expr, zone } => Calendar::of_cron(expr, zone.clone()),
            Timing::Interval(every) => Calendar::of_interval(*every, def.start()),
            Timing::None => Err(
                "it has no `cron` or `interval` (it only runs once at start-up, `immediate`), so a platform has nothing to fire"
                    .to_owned(),
            ),
        }
    }

    fn of_cron(expr: &CronExpr, zone: TimeZone) -> Result<Calendar, String> {
        let source = expr.as_str().to_owned();
        let years = expr.has_years().then(|| {
            CALENDAR_YEARS
                .filter(|&year| expr.in_year(i64::from(year)))
                .collect::<Vec<u16>>()
        });
        let pattern = expr.pattern();
        let values = |component: &croner::CronComponent, bit: u8| -> Vec<u8> {
            let mut values: Vec<u8> = component
                .get_set_values(bit)
                .into_iter()
                .filter_map(|value| u8::try_from(value).ok())
                .collect();
            values.sort_unstable();
            values.dedup();
            values
        };
        // Sunday is 0 and 7 in cron; one value here.
        let weekdays_of = |bit: u8| -> Vec<u8> {
            let mut days: Vec<u8> = values(&pattern.days_of_week, bit)
                .into_iter()
                .map(|day| day % 7)
                .collect();
            days.sort_unstable();
            days.dedup();
            days
        };
        if pattern.days_of_week.is_feature_enabled(LAST_BIT) {
            return Err(format!(
                "`{source}`: `L` alone in the day-of-week field has no equivalent on platform schedulers; \
                 name the weekday, such as `5L` for the last Friday"
            ));
        }
        let last = pattern.days.is_feature_enabled(LAST_BIT);
        let closest = pattern.days.is_feature_enabled(CLOSEST_WEEKDAY_BIT);
        let mut nth = Vec::new();
        for (index, bit) in NTH_BITS.iter().enumerate() {
            for day in weekdays_of(*bit) {
                nth.push((day, index as u8 + 1));
            }
        }
        // A weekday without `#` sets every nth bit with its own; only bare `#n` stands alone.
        let plain_weekdays = weekdays_of(ALL_BIT);
        nth.retain(|(day, _)| !plain_weekdays.contains(day));
        Ok(Calendar {
            seconds: values(&pattern.seconds, ALL_BIT),
            minutes: values(&pattern.minutes, ALL_BIT),
            hours: values(&pattern.hours, ALL_BIT),
            days: Days {
                star: pattern.is_dom_wildcard(),
                values: values(&pattern.days, ALL_BIT),
                last: last && !closest,
                last_weekday: last && closest,
                nearest_weekday: values(&pattern.days, CLOSEST_WEEKDAY_BIT),
            },
            months: values(&pattern.months, ALL_BIT),
            weekdays: Weekdays {
                star: pattern.is_dow_wildcard(),
                values: plain_weekdays,
                nth,
                last: weekdays_of(LAST_BIT),
            },
            rule: if pattern.matches_dom_and_dow() {
                DayRule::And
            } else {
                DayRule::Or
            },
            zone,
            years,
            source,
        })
    }

    /// An interval's ticks (whole multiples since the epoch, or since `start`) as a
    /// calendar in UTC, when they fall on one.
    fn of_interval(every: Duration, start: Option<Timestamp>) -> Result<Calendar, String> {
        let written = span(every);
        let refuse =
            |why: &str| format!("an interval of {written} {why}; write the schedule as a cron expression");
        if every.subsec_nanos() != 0 {
            return Err(refuse("is not a whole number of seconds"));
        }
        let seconds = every.as_secs();
        if start.is_some_and(|start| {
            start.as_second().rem_euclid(seconds as i64) != 0 || start.subsec_nanosecond() != 0
        }) {
            return Err(refuse(
                "is counted from its `start`, which is not a whole multiple of it since 1970-01-01 UTC, so its ticks fall on no calendar",
            ));
        }
        let steps = |step: u64, below: u64| (0..below).step_by(step as usize).map(|v| v as u8).collect();
        let (secs, mins, hours) = if seconds < 60 && 60 % seconds == 0 {
            (steps(seconds, 60), steps(1, 60), steps(1, 24))
        } else if seconds.is_multiple_of(60) && seconds < 3600 && 3600 % seconds == 0 {
            (vec![0], steps(seconds / 60, 60), steps(1, 24))
        } else if seconds.is_multiple_of(3600) && seconds <= 86_400 && 86_400 % seconds == 0 {
            (vec![0], vec![0], steps(seconds / 3600, 24))
        } else {
            return Err(refuse(
                "does not divide a minute, an hour or a day evenly, so its ticks fall on no calendar",
            ));
        };
        Ok(Calendar {
            seconds: secs,
            minutes: mins,
            hours,
            days: Days {
                star: true,
                values: (1..=31).collect(),
                last: false,
                last_weekday: false,
                nearest_weekday: Vec::new(),
            },
            months: (1..=12).collect(),
            weekdays: Weekdays {
                star: true,
                values: (0..7).collect(),
                nth: Vec::new(),
                last: Vec::new(),
            },
            rule: DayRule::Or,
            zone: TimeZone::UTC,
            years: None,
            source: format!("every {written}"),
        })
    }

    /// The zone's offset from UTC in seconds when it no longer changes after `now` (UTC, a
    /// fixed offset, or a zone such as Asia/Tokyo whose last change is past).
    pub fn fixed_offset(&self, now: Timestamp) -> Option<i32> {
        self.zone
            .following(now)
            .next()
            .is_none()
            .then(|| self.zone.to_offset(now).seconds())
    }

    /// The zone's IANA name, `UTC` for UTC.
    pub fn zone_name(&self) -> Option<&str> {
        match self.zone.iana_name() {
            Some("UTC" | "Etc/UTC") => Some("UTC"),
            Some(name) => Some(name),
            None if self.zone.to_fixed_offset().is_ok_and(|o| o.seconds() == 0) => Some("UTC"),
            None => None,
        }
    }

    /// The same times in UTC, for targets that know no zone; refused when the zone has
    /// daylight saving, or when moving the hours would move some times to another day.
    pub fn in_utc(&self, target: &str, now: Timestamp) -> Result<Calendar, String> {
        let Some(offset) = self.fixed_offset(now) else {
            return Err(format!(
                "its zone {} has daylight saving and {target} runs schedules in UTC only, so its times \
                 would move by an hour twice a year; use a zone without daylight saving or UTC",
                self.zone.iana_name().unwrap_or("(unnamed)")
            ));
        };
        if offset == 0 {
            return Ok(Calendar {
                zone: TimeZone::UTC,
                ..self.clone()
            });
        }
        let zone = self.zone.iana_name().unwrap_or("its fixed offset");
        if offset % 3600 != 0 {
            return Err(format!(
                "its zone {zone} is {offset} s from UTC, not a whole number of hours, and {target} runs \
                 schedules in UTC only; use UTC"
            ));
        }
        let shift = offset / 3600;
        let mut wraps = false;
        let mut hours: Vec<u8> = self
            .hours
            .iter()
            .map(|&hour| {
                let utc = i32::from(hour) - shift;
                wraps |= !(0..24).contains(&utc);
                utc.rem_euclid(24) as u8
            })
            .collect();
        hours.sort_unstable();
        let every_day = self.days.star && self.weekdays.star && self.months.len() == 12;
        if wraps && !every_day {
            return Err(format!(
                "its zone {zone} is {shift:+} h from UTC and {target} runs schedules in UTC only; in UTC \
                 some of its times fall on another day, which its day fields cannot follow; use UTC"
            ));
        }
        Ok(Calendar {
            hours,
            zone: TimeZone::UTC,
            ..self.clone()
        })
    }
}

/// `every` as the `ms` package writes it: `10s`, `5m`, `2h`, `1d`, else milliseconds.
pub(crate) fn span(every: Duration) -> String {
    let ms = every.as_millis();
    for (unit, size) in [
        ("d", 86_400_000u128),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms >= size && ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calendar(expr: &str) -> Calendar {
        Calendar::of_cron(&CronExpr::parse(expr).expect("parses"), TimeZone::UTC).expect("calendar")
    }

    #[test]
    fn the_bits_are_croners() {
        let c = calendar("0 0 L * MON#2,5L");
        assert!(c.days.last && !c.days.last_weekday);
        assert_eq!(c.weekdays.nth, vec![(1, 2)]);
        assert_eq!(c.weekdays.last, vec![5]);
        assert!(c.weekdays.values.is_empty());
        let c = calendar("0 0 LW * *");
        assert!(c.days.last_weekday && !c.days.last);
        assert_eq!(calendar("0 0 15W,1 * *").days.nearest_weekday, vec![15]);
        assert_eq!(calendar("0 0 15W,1 * *").days.values, vec![1]);
        let c = calendar("*/15 9-17 * * 1-5,7");
        assert_eq!(c.minutes, vec![0, 15, 30, 45]);
        assert_eq!(c.weekdays.values, vec![0, 1, 2, 3, 4, 5]);
        assert!(c.days.star && !c.weekdays.star && c.weekdays.nth.is_empty());
        assert_eq!(calendar("0 12 * * +MON").rule, DayRule::And);
        assert!(calendar("0 0 1 * ?").weekdays.star);
    }

    #[test]
    fn intervals_become_calendars_only_when_their_ticks_fall_on_one() {
        let of = |secs: u64| Calendar::of_interval(Duration::from_secs(secs), None);
        assert_eq!(of(10).expect("10s").seconds, vec![0, 10, 20, 30, 40, 50]);
        assert_eq!(
            of(300).expect("5m").minutes,
            vec![0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55]
        );
        assert_eq!(of(6 * 3600).expect("6h").hours, vec![0, 6, 12, 18]);
        assert_eq!(of(86_400).expect("1d").hours, vec![0]);
        assert!(of(7 * 60).expect_err("7m").contains("does not divide"));
        assert!(of(90 * 60).expect_err("90m").contains("an interval of 90m"));
        let odd = Calendar::of_interval(Duration::from_millis(1500), None).expect_err("1.5s");
        assert!(odd.contains("whole number of seconds"), "{odd}");
        let start: Timestamp = "2026-01-01T00:00:07Z".parse().expect("instant");
        assert!(Calendar::of_interval(Duration::from_secs(60), Some(start)).is_err());
    }
}
