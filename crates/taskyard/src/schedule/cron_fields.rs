//! The next fire time of a plain cron expression in a fixed-offset zone (UTC included),
//! searched on bit sets of its fields.
//!
//! Written by hand because it is several times faster than croner's general search
//! (BENCHMARKS.md, "Cron next occurrence"), and every tick and every registration computes
//! one. It covers what most expressions are: numbers, ranges, lists, steps and names, with no
//! `L`, `W` or `#` and no year field, in a zone without daylight saving. Everything else goes
//! to croner. The day rule (day of month OR day of week, a `*` field ignored, `+` for AND) is
//! croner's own, read from the parsed pattern; a differential test checks the two agree.

use croner::Cron;
use jiff::Timestamp;

/// croner takes years up to this one; past it there is no next time.
const LAST_YEAR: i64 = 9999;
const DAY: i64 = 86_400;

/// An expression's fields as bit sets: bit `n` set when the field matches the value `n`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Fields {
    seconds: u64,
    minutes: u64,
    hours: u32,
    /// Days of the month, bits 1–31.
    days: u32,
    /// Months, bits 1–12.
    months: u16,
    /// Days of the week, bit 0 for Sunday.
    weekdays: u8,
    star_dom: bool,
    star_dow: bool,
    dom_and_dow: bool,
}

impl Fields {
    /// The fields of `cron`, or `None` when it needs croner's general search: `L`, `W` or
    /// `#`, or a year field other than `*` (`source` is the expression as written).
    pub fn of(cron: &Cron, source: &str) -> Option<Fields> {
        let pattern = &cron.pattern;
        let year = source.split_whitespace().nth(6);
        if year.is_some_and(|year| year != "*")
            || pattern.days.has_modifiers()
            || pattern.days_of_week.has_modifiers()
        {
            return None;
        }
        let bits = |values: Vec<u16>, below: u16| -> u64 {
            values
                .into_iter()
                .filter(|&value| value < below)
                .fold(0, |bits, value| bits | 1 << value)
        };
        Some(Fields {
            seconds: bits(pattern.seconds.values(), 60),
            minutes: bits(pattern.minutes.values(), 60),
            hours: bits(pattern.hours.values(), 24) as u32,
            days: bits(pattern.days.values(), 32) as u32,
            months: bits(pattern.months.values(), 13) as u16,
            weekdays: bits(pattern.days_of_week.values(), 7) as u8,
            star_dom: pattern.is_dom_wildcard(),
            star_dow: pattern.is_dow_wildcard(),
            dom_and_dow: pattern.matches_dom_and_dow(),
        })
    }

    /// The first fire time strictly after `after`, in the zone `offset` seconds east of UTC.
    pub fn next_after(&self, after: Timestamp, offset: i64) -> Option<Timestamp> {
        // The whole second after `after` (jiff's sub-second part is negative before 1970).
        let floor = after.as_second() - i64::from(after.subsec_nanosecond() < 0);
        let local = floor + 1 + offset;
        let (mut year, mut month, mut day) = civil_from_days(local.div_euclid(DAY));
        let mut second_of_day = local.rem_euclid(DAY) as u32;
        loop {
            if year > LAST_YEAR {
                return None;
            }
            if self.months & 1 << month == 0 {
                match next_bit(u64::from(self.months), month + 1) {
                    Some(next) if next <= 12 => month = next,
                    _ => {
                        year += 1;
                        month = self.months.trailing_zeros();
                    }
                }
                (day, second_of_day) = (1, 0);
                continue;
            }
            if !self.day_matches(year, month, day) {
                (day, second_of_day) = (day + 1, 0);
                if day > days_in_month(year, month) {
                    (month, day) = (month + 1, 1);
                    if month > 12 {
                        (year, month) = (year + 1, 1);
                    }
                }
                continue;
            }
            let hour = second_of_day / 3600;
            let Some(next_hour) = next_bit(u64::from(self.hours), hour) else {
                second_of_day = DAY as u32;
                (year, month, day, second_of_day) = roll_over(year, month, day, second_of_day);
                continue;
            };
            if next_hour > hour {
                second_of_day = next_hour * 3600;
            }
            let minute = second_of_day / 60 % 60;
            let Some(next_minute) = next_bit(self.minutes, minute) else {
                second_of_day = (next_hour + 1) * 3600;
                (year, month, day, second_of_day) = roll_over(year, month, day, second_of_day);
                continue;
            };
            if next_minute > minute {
                second_of_day = next_hour * 3600 + next_minute * 60;
            }
            let second = second_of_day % 60;
            let Some(next_second) = next_bit(self.seconds, second) else {
                second_of_day = next_hour * 3600 + (next_minute + 1) * 60;
                (year, month, day, second_of_day) = roll_over(year, month, day, second_of_day);
                continue;
            };
            second_of_day += next_second - second;
            let local = days_from_civil(year, month, day) * DAY + i64::from(second_of_day);
            return Timestamp::from_second(local - offset).ok();
        }
    }

    /// croner's day rule (`CronPattern::day_match` without the modifiers).
    fn day_matches(&self, year: i64, month: u32, day: u32) -> bool {
        let weekday = (days_from_civil(year, month, day) + 4).rem_euclid(7);
        let dom = self.days & 1 << day != 0;
        let dow = self.weekdays & 1 << weekday != 0;
        if (dom && self.star_dow) || (dow && self.star_dom) {
            true
        } else if !self.star_dom && !self.star_dow {
            if self.dom_and_dow { dom && dow } else { dom || dow }
        } else {
            false
        }
    }
}

/// The lowest set bit at or above `from`.
fn next_bit(bits: u64, from: u32) -> Option<u32> {
    if from >= 64 {
        return None;
    }
    let above = bits >> from;
    (above != 0).then(|| from + above.trailing_zeros())
}

/// A second of the day at or past midnight moves to the next day.
fn roll_over(year: i64, month: u32, day: u32, second_of_day: u32) -> (i64, u32, u32, u32) {
    if second_of_day < DAY as u32 {
        return (year, month, day, second_of_day);
    }
    if day < days_in_month(year, month) {
        (year, month, day + 1, 0)
    } else if month < 12 {
        (year, month + 1, 1, 0)
    } else {
        (year + 1, 1, 1, 0)
    }
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day counted from 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_round_trip() {
        for days in -800_000..800_000 {
            let (year, month, day) = civil_from_days(days);
            assert_eq!(days_from_civil(year, month, day), days, "{year}-{month}-{day}");
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(days_from_civil(2026, 11, 20), 20_777);
    }

    #[test]
    fn the_next_time_is_the_whole_second_after_before_and_after_1970() {
        let cron: Cron = "* * * * * *".parse().expect("parses");
        let fields = Fields::of(&cron, "* * * * * *").expect("plain");
        let next = |millis: i64| {
            let after = Timestamp::from_millisecond(millis).expect("instant");
            fields.next_after(after, 0).map(|t| t.as_second())
        };
        assert_eq!(next(-99_500), Some(-99));
        assert_eq!(next(-99_000), Some(-98));
        assert_eq!(next(1_500), Some(2));
        assert_eq!(next(2_000), Some(3));
    }

    #[test]
    fn next_bit_finds_the_lowest_set_bit_at_or_above() {
        assert_eq!(next_bit(0b1010, 0), Some(1));
        assert_eq!(next_bit(0b1010, 2), Some(3));
        assert_eq!(next_bit(0b1010, 4), None);
        assert_eq!(next_bit(1 << 59, 59), Some(59));
        assert_eq!(next_bit(u64::MAX, 64), None);
    }
}
