//! The year field of a 7-field cron expression, read by taskyard rather than by the
//! `croner` crate: croner (JavaScript) takes years 1 to 9999, the crate searches no further
//! than 4999. The crate is given `*` for the year; the years are a set checked here, and a
//! search past the crate's reach is made 400 years earlier, where the Gregorian calendar
//! (146,097 days, a whole number of weeks) and a zone's far-future daylight-saving rule are
//! the same, and moved back.

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

/// The highest year a cron expression may name, as in croner.
pub(crate) const LAST_YEAR: u32 = 9999;

/// The 400-year cycle of the Gregorian calendar.
const CYCLE_YEARS: i16 = 400;
const CYCLE: SignedDuration = SignedDuration::from_hours(146_097 * 24);

/// The latest year the crate's search starts from: it gives up at 5000, and anything that
/// ever matches does so within one cycle.
const CRATE_START_LIMIT: i16 = 4500;

/// A set of years, 1 to 9999, one bit each.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Years {
    bits: Box<[u64]>,
}

impl Years {
    /// Reads a year field: `*`, values, ranges, steps of ranges or of a first year
    /// (`2026/2`, cron-parser's form), in a list. The error says what is wrong, for the
    /// caller to name the field.
    pub fn parse(field: &str) -> Result<Years, String> {
        let mut years = Years {
            bits: vec![0; LAST_YEAR as usize / 64 + 1].into_boxed_slice(),
        };
        for item in field.split(',') {
            let (range, step) = match item.split_once('/') {
                Some((range, step)) => (range, Some(step)),
                None => (item, None),
            };
            let (from, to) = match range.split_once('-') {
                _ if range == "*" => (1, LAST_YEAR),
                Some((from, to)) => (year(from)?, year(to)?),
                // `2026/2` counts from 2026 to the end; `2026` alone is that year.
                None => (
                    year(range)?,
                    if step.is_some() { LAST_YEAR } else { year(range)? },
                ),
            };
            if from > to {
                return Err(format!("the range {from}-{to} runs backwards"));
            }
            let step = match step {
                None => 1,
                Some(step) => match step.parse::<u32>() {
                    Ok(step) if step >= 1 => step,
                    _ => return Err(format!("the step `{step}` is not a whole number of years from 1")),
                },
            };
            for year in (from..=to).step_by(step as usize) {
                years.bits[year as usize / 64] |= 1 << (year % 64);
            }
        }
        Ok(years)
    }

    /// True when `year` is in the set.
    pub fn contains(&self, year: i64) -> bool {
        u32::try_from(year)
            .is_ok_and(|year| year <= LAST_YEAR && self.bits[year as usize / 64] & 1 << (year % 64) != 0)
    }

    /// The first year of the set after `year`.
    fn after(&self, year: i64) -> Option<i64> {
        let first = u32::try_from(year + 1).unwrap_or(0);
        (first..=LAST_YEAR)
            .find(|&y| self.contains(i64::from(y)))
            .map(i64::from)
    }

    /// The first fire time strictly after `after` in one of these years, given `next`,
    /// the search without a year (in `zone`).
    pub fn next_after(
        &self,
        mut after: Timestamp,
        zone: &TimeZone,
        next: impl Fn(Timestamp) -> Option<Timestamp>,
    ) -> Option<Timestamp> {
        // Each round either answers or moves to a later year of the set.
        loop {
            let candidate = next(after)?;
            let year = i64::from(candidate.to_zoned(zone.clone()).year());
            if self.contains(year) {
                return Some(candidate);
            }
            let next_year = i16::try_from(self.after(year)?).ok()?;
            let start = jiff::civil::date(next_year, 1, 1)
                .to_zoned(zone.clone())
                .ok()?
                .timestamp();
            after = start - SignedDuration::from_nanos(1);
        }
    }
}

impl std::fmt::Debug for Years {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count: u32 = self.bits.iter().map(|word| word.count_ones()).sum();
        write!(f, "Years({count} years)")
    }
}

fn year(text: &str) -> Result<u32, String> {
    match text.parse::<u32>() {
        Ok(year) if (1..=LAST_YEAR).contains(&year) => Ok(year),
        _ => Err(format!("`{text}` is not a year from 1 to {LAST_YEAR}")),
    }
}

/// `search` (the crate's) from `after`, made a whole number of 400-year cycles earlier when
/// `after` lies past the crate's reach, and the answer moved back.
pub(crate) fn beyond_the_crate(
    after: Timestamp,
    zone: &TimeZone,
    search: impl Fn(Timestamp) -> Option<Timestamp>,
) -> Option<Timestamp> {
    let year = after.to_zoned(zone.clone()).year();
    if year <= CRATE_START_LIMIT {
        return search(after);
    }
    let cycles = i32::from((year - CRATE_START_LIMIT + CYCLE_YEARS - 1) / CYCLE_YEARS);
    let shift = CYCLE * cycles;
    let found = search(after.checked_sub(shift).ok()?)?;
    found.checked_add(shift).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn year_fields_are_read_as_croner_reads_them() {
        let years = Years::parse("2030,2040-2050/5,9999").expect("years");
        for year in [2030, 2040, 2045, 2050, 9999] {
            assert!(years.contains(year), "{year}");
        }
        for year in [2031, 2041, 2055, 0, 10_000] {
            assert!(!years.contains(year), "{year}");
        }
        assert!(Years::parse("*").expect("all").contains(1));
        let stepped = Years::parse("1-9999/2").expect("odd years");
        assert!(stepped.contains(2027) && !stepped.contains(2026));
        assert!(Years::parse("2026/100").expect("from 2026").contains(9926));
        assert!(Years::parse("10000").is_err());
        assert!(Years::parse("0").is_err());
        assert!(Years::parse("2050-2040").is_err());
        assert!(Years::parse("2040/0").is_err());
    }

    #[test]
    fn a_search_past_the_crate_moves_by_whole_cycles() {
        let zone = TimeZone::get("Europe/Berlin").expect("zone");
        let after: Timestamp = "9000-03-01T00:00:00Z".parse().expect("instant");
        // A stand-in for the crate: the next midnight, local time, refusing years past 4999.
        let search = |t: Timestamp| {
            let zoned = t.to_zoned(zone.clone());
            (zoned.year() < 5000).then(|| {
                zoned
                    .date()
                    .tomorrow()
                    .expect("a day")
                    .to_zoned(zone.clone())
                    .expect("zoned")
                    .timestamp()
            })
        };
        let next = beyond_the_crate(after, &zone, search).expect("found");
        assert_eq!(
            next.to_zoned(zone.clone())
                .strftime("%Y-%m-%d %H:%M %Z")
                .to_string(),
            "9000-03-02 00:00 CET"
        );
    }
}
