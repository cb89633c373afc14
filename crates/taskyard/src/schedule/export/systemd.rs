//! A calendar as systemd `OnCalendar=` lines.
//!
//! systemd matches a weekday AND a date, and ORs its several `OnCalendar=` lines, so cron's
//! "day of month OR day of week" becomes one line for each side. Its `~` counts days from
//! the month's end, which gives `L` (`~01`), the last Friday (`Fri *-*~01..07`), and with
//! weekdays `LW` and `nW`; `#n` is a week of days (`Mon *-*-08..14`). Seconds, years and
//! IANA zones are its own; its calendar ends with the year 2199, so a year field is written
//! up to there (every schedule's timer ends then).

use super::calendar::{CALENDAR_YEARS, Calendar, DayRule};
use super::cron_line::{even_step, runs};

const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const WORKDAYS: &str = "Mon..Fri";

/// One line's days: the weekdays it requires, if any, and its day part (`-01`, `~01..07`).
type Term = (Option<String>, String);

/// The `OnCalendar=` values (each a line) of `calendar`.
pub(crate) fn on_calendar(calendar: &Calendar) -> Result<Vec<String>, String> {
    let source = &calendar.source;
    let Some(zone) = calendar.zone_name() else {
        return Err(format!(
            "`{source}` is in a zone without an IANA name, which systemd cannot take"
        ));
    };
    let days = &calendar.days;
    let weekdays = &calendar.weekdays;
    let mut day_terms: Vec<Term> = Vec::new();
    if !days.values.is_empty() && !days.star {
        day_terms.push((None, format!("-{}", list(&days.values, 1, 31))));
    }
    if days.last {
        day_terms.push((None, "~01".to_owned()));
    }
    if days.last_weekday {
        // The last day when it is a weekday; else the Friday just before it.
        day_terms.push((Some(WORKDAYS.to_owned()), "~01".to_owned()));
        day_terms.push((Some("Fri".to_owned()), "~02..03".to_owned()));
    }
    for &day in &days.nearest_weekday {
        if day >= 28 {
            return Err(format!(
                "`{source}`: `{day}W` depends on the month's length, which systemd's calendar cannot follow"
            ));
        }
        day_terms.push((Some(WORKDAYS.to_owned()), format!("-{day:02}")));
        if day == 1 {
            // A Saturday or Sunday 1st moves forward to Monday, within the month.
            day_terms.push((Some("Mon".to_owned()), "-02..03".to_owned()));
        } else {
            day_terms.push((Some("Fri".to_owned()), format!("-{:02}", day - 1)));
            day_terms.push((Some("Mon".to_owned()), format!("-{:02}", day + 1)));
        }
    }
    let mut weekday_terms: Vec<Term> = Vec::new();
    if !weekdays.values.is_empty() && !weekdays.star {
        weekday_terms.push((Some(weekday_list(&weekdays.values)), "-*".to_owned()));
    }
    for &(day, n) in &weekdays.nth {
        let first = (n - 1) * 7 + 1;
        let last = (n * 7).min(31);
        weekday_terms.push((
            Some(WEEKDAYS[usize::from(day)].to_owned()),
            format!("-{first:02}..{last:02}"),
        ));
    }
    for &day in &weekdays.last {
        weekday_terms.push((Some(WEEKDAYS[usize::from(day)].to_owned()), "~01..07".to_owned()));
    }
    let terms = match (days.star, weekdays.star) {
        (true, true) => vec![(None, "-*".to_owned())],
        (false, true) => day_terms,
        (true, false) => weekday_terms,
        (false, false) if calendar.rule == DayRule::Or => {
            day_terms.into_iter().chain(weekday_terms).collect()
        }
        (false, false) => {
            if !days.plain() || !weekdays.plain() {
                return Err(format!(
                    "`{source}` requires both its day of the month and its day of the week (`+`) with `L`, `W` or `#`, which systemd's calendar cannot combine"
                ));
            }
            vec![(
                Some(weekday_list(&weekdays.values)),
                format!("-{}", list(&days.values, 1, 31)),
            )]
        }
    };
    let months = list(&calendar.months, 1, 12);
    let years = match &calendar.years {
        None => "*".to_owned(),
        Some(years) if years.is_empty() => {
            return Err(format!(
                "`{source}` fires in no year before 2200, where systemd's calendar ends"
            ));
        }
        Some(years) => year_list(years),
    };
    let time = format!(
        "{}:{}:{}",
        list(&calendar.hours, 0, 23),
        list(&calendar.minutes, 0, 59),
        list(&calendar.seconds, 0, 59)
    );
    Ok(terms
        .into_iter()
        .map(|(weekday, day)| {
            let weekday = weekday.map(|w| format!("{w} ")).unwrap_or_default();
            format!("{weekday}{years}-{months}{day} {time} {zone}")
        })
        .collect())
}

/// `values` as a systemd field: `*`, `a/step` (from `a` to the field's end), or runs
/// (`01..05,08`), two digits each.
fn list(values: &[u8], low: u8, high: u8) -> String {
    if values.len() == usize::from(high - low) + 1 {
        return "*".to_owned();
    }
    if let Some(step) = even_step(values) {
        let last = values[values.len() - 1];
        if u16::from(last) + u16::from(step) > u16::from(high) {
            return format!("{:02}/{step}", values[0]);
        }
    }
    runs(values)
        .into_iter()
        .map(|(from, to)| match to - from {
            0 => format!("{from:02}"),
            1 => format!("{from:02},{to:02}"),
            _ => format!("{from:02}..{to:02}"),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Years (within systemd's calendar) as its year field: `*`, `first/step` when they run to
/// its end evenly, or runs (`2027..2030,2035`).
fn year_list(years: &[u16]) -> String {
    let (first, last) = (years[0], years[years.len() - 1]);
    let every = usize::from(CALENDAR_YEARS.end() - CALENDAR_YEARS.start()) + 1;
    if years.len() == every {
        return "*".to_owned();
    }
    let steps: Vec<u16> = years.windows(2).map(|pair| pair[1] - pair[0]).collect();
    if let Some(&step) = steps.first()
        && steps.iter().all(|&s| s == step)
        && step > 1
        && last + step > *CALENDAR_YEARS.end()
    {
        return format!("{first}/{step}");
    }
    runs(years)
        .into_iter()
        .map(|(from, to)| match to - from {
            0 => format!("{from}"),
            1 => format!("{from},{to}"),
            _ => format!("{from}..{to}"),
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn weekday_list(values: &[u8]) -> String {
    runs(values)
        .into_iter()
        .map(|(from, to)| {
            let (from, to) = (WEEKDAYS[usize::from(from)], WEEKDAYS[usize::from(to)]);
            if from == to {
                from.to_owned()
            } else {
                format!("{from}..{to}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}
