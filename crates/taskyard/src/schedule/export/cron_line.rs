//! A calendar as a five-field cron line in a target's dialect, or why it cannot be one.
//!
//! Fields are written from their sets of values, never copied from the source: a day field
//! is `*` only when the schedule's is (Vixie cron and robfig's parser both read a `*`-led day
//! field as "any", which changes the day rule), ranges and steps are written only where they
//! name exactly the same values.

use super::calendar::{Calendar, DayRule};

/// What a target's cron dialect takes.
pub(crate) struct Dialect {
    /// The target's name, for messages.
    pub target: &'static str,
    /// Weekdays written as names: Cloudflare numbers them from 1 = Sunday.
    pub weekday_names: bool,
    /// `L`, `W` and `#` are taken as they are.
    pub modifiers: bool,
    /// A day of the month and a day of the week may both be named (and OR together).
    pub both_days: bool,
}

const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// The line `minute hour day-of-month month day-of-week`.
pub(crate) fn line(calendar: &Calendar, dialect: &Dialect) -> Result<String, String> {
    let target = dialect.target;
    let source = &calendar.source;
    if calendar.years.is_some() {
        return Err(format!(
            "`{source}` limits the years (its 7th field); {target} has no year field, so it would fire \
             in other years too (only systemd has one): drop the year field and end the schedule with `end`"
        ));
    }
    if calendar.seconds != [0] {
        let seconds: Vec<String> = calendar.seconds.iter().map(u8::to_string).collect();
        return Err(format!(
            "`{source}` fires at second {} of a minute; {target} has no seconds (only systemd has)",
            seconds.join(", ")
        ));
    }
    let days = &calendar.days;
    let weekdays = &calendar.weekdays;
    if !dialect.modifiers && (!days.plain() || !weekdays.plain()) {
        return Err(format!(
            "`{source}` uses `L`, `W` or `#`, which {target} does not take (systemd and Cloudflare do)"
        ));
    }
    if !days.star && !weekdays.star {
        if calendar.rule == DayRule::And {
            return Err(format!(
                "`{source}` fires on days that match both its day of the month and its day of the week (`+`); \
                 {target} fires on days that match either"
            ));
        }
        if !dialect.both_days {
            return Err(format!(
                "`{source}` names both days of the month and days of the week (either matches); {target} \
                 takes only one of them: split it into two schedules"
            ));
        }
    }
    let day_field = if days.star {
        "*".to_owned()
    } else {
        let mut items = Vec::new();
        if !days.values.is_empty() {
            items.push(list(&days.values, 1, 31, false));
        }
        if days.last {
            items.push("L".to_owned());
        }
        if days.last_weekday {
            items.push("LW".to_owned());
        }
        items.extend(days.nearest_weekday.iter().map(|day| format!("{day}W")));
        items.join(",")
    };
    let weekday_field = if weekdays.star {
        "*".to_owned()
    } else {
        let name = |day: u8| -> String {
            if dialect.weekday_names {
                WEEKDAYS[usize::from(day % 7)].to_owned()
            } else {
                day.to_string()
            }
        };
        let mut items = Vec::new();
        if !weekdays.values.is_empty() {
            items.push(weekday_list(&weekdays.values, &name));
        }
        items.extend(weekdays.nth.iter().map(|&(day, n)| format!("{}#{n}", name(day))));
        items.extend(weekdays.last.iter().map(|&day| format!("{}L", name(day))));
        items.join(",")
    };
    Ok(format!(
        "{} {} {day_field} {} {weekday_field}",
        list(&calendar.minutes, 0, 59, true),
        list(&calendar.hours, 0, 23, true),
        list(&calendar.months, 1, 12, true),
    ))
}

/// `values` (sorted, within `low..=high`) as a cron field: `*` (where `star` allows it),
/// a step (`*/15`, `5-50/15`), or runs and single values (`1-5,8`).
pub(crate) fn list(values: &[u8], low: u8, high: u8, star: bool) -> String {
    let all = values.len() == usize::from(high - low) + 1;
    if star && all {
        return "*".to_owned();
    }
    if let Some(step) = even_step(values) {
        let (first, last) = (values[0], values[values.len() - 1]);
        if star && first == low && u16::from(last) + u16::from(step) > u16::from(high) {
            return format!("*/{step}");
        }
        return format!("{first}-{last}/{step}");
    }
    runs(values)
        .into_iter()
        .map(|(from, to)| match to - from {
            0 => from.to_string(),
            1 => format!("{from},{to}"),
            _ => format!("{from}-{to}"),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Weekdays as runs and single values, written by `name`.
fn weekday_list(values: &[u8], name: &dyn Fn(u8) -> String) -> String {
    runs(values)
        .into_iter()
        .map(|(from, to)| match to - from {
            0 => name(from),
            1 => format!("{},{}", name(from), name(to)),
            _ => format!("{}-{}", name(from), name(to)),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The step of three or more values evenly apart by more than one.
pub(crate) fn even_step(values: &[u8]) -> Option<u8> {
    if values.len() < 3 {
        return None;
    }
    let step = values[1] - values[0];
    (step > 1 && values.windows(2).all(|pair| pair[1] - pair[0] == step)).then_some(step)
}

/// Sorted values (a field's, or years) as (first, last) runs of consecutive values.
pub(crate) fn runs<T>(values: &[T]) -> Vec<(T, T)>
where
    T: Copy + PartialEq + std::ops::Add<Output = T> + From<u8>,
{
    let mut runs: Vec<(T, T)> = Vec::new();
    for &value in values {
        match runs.last_mut() {
            Some((_, to)) if *to + T::from(1) == value => *to = value,
            _ => runs.push((value, value)),
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_name_exactly_their_values() {
        assert_eq!(list(&(0..60).collect::<Vec<_>>(), 0, 59, true), "*");
        assert_eq!(list(&(1..32).collect::<Vec<_>>(), 1, 31, false), "1-31");
        assert_eq!(list(&[0, 15, 30, 45], 0, 59, true), "*/15");
        assert_eq!(list(&[1, 3, 5], 1, 31, false), "1-5/2");
        assert_eq!(list(&[5, 20, 35, 50], 0, 59, true), "5-50/15");
        assert_eq!(list(&[0, 15, 30], 0, 59, true), "0-30/15");
        assert_eq!(list(&[1, 2, 3, 7, 9, 10], 0, 23, true), "1-3,7,9,10");
        assert_eq!(list(&[4], 0, 23, true), "4");
    }
}
