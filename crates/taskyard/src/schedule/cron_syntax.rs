//! What taskyard reads in a cron expression before the `croner` crate parses it: the
//! syntax of JavaScript croner 10 (Nitro's engine) and cron-parser 4.9 (egg-schedule's)
//! where the crate differs from them, rewritten into what the crate reads, and the mistakes
//! both JavaScript engines refuse but the crate would take for another schedule.
//!
//! - `@midnight` is `@daily`, as in croner; shorthands are read in any case.
//! - `?` is `*` in every field, as in croner 10 (the crate takes it in the day fields only).
//! - A step from a number, `0/30`, counts from that number to the field's end: cron-parser's
//!   meaning (`0-59/30`), which egg-schedule users write; croner refuses it.
//! - Refused, naming the field: an empty list item (`1,,2`, a trailing `,`), a `+` with no
//!   day after it, a step larger than the field's range (`*/61` in minutes), a stepped `*`
//!   in the year field.
//! - The year field (1 to 9999, as croner) is read here (see `cron_years`); the crate is
//!   given `*`.

use super::cron_years::Years;

/// Field names for 5, 6 and 7 fields.
pub(crate) const FIELDS_5: [&str; 5] = ["minute", "hour", "day of month", "month", "day of week"];
pub(crate) const FIELDS_6: [&str; 6] = ["second", "minute", "hour", "day of month", "month", "day of week"];
pub(crate) const FIELDS_7: [&str; 7] = [
    "second",
    "minute",
    "hour",
    "day of month",
    "month",
    "day of week",
    "year",
];

/// The names of the fields of an expression with `count` of them.
pub(crate) fn field_names(count: usize) -> Option<&'static [&'static str]> {
    match count {
        5 => Some(&FIELDS_5),
        6 => Some(&FIELDS_6),
        7 => Some(&FIELDS_7),
        _ => None,
    }
}

/// The lowest and highest value of the field called `name` (the day of the week goes to 7,
/// a second Sunday, as in both JavaScript engines).
fn range(name: &str) -> (u32, u32) {
    match name {
        "second" | "minute" => (0, 59),
        "hour" => (0, 23),
        "day of month" => (1, 31),
        "month" => (1, 12),
        "day of week" => (0, 7),
        _ => (1, 9999),
    }
}

/// An expression as the `croner` crate should read it, and the years it is limited to.
#[derive(Debug)]
pub(crate) struct Normalized {
    /// The expression for the crate (a year field is `*`).
    pub read: String,
    /// The years of a 7-field expression whose year field is not `*`.
    pub years: Option<Years>,
}

/// `source` (trimmed) as the `croner` crate should read it, or why it is refused, naming
/// the field at fault. An expression with a count of fields the crate refuses is passed
/// on as it is, for the crate's own message.
pub(crate) fn normalize(source: &str) -> Result<Normalized, String> {
    if let Some(alias) = source.strip_prefix('@') {
        let alias = alias.to_ascii_lowercase();
        let read = if alias == "midnight" {
            "@daily".to_owned()
        } else {
            format!("@{alias}")
        };
        return Ok(Normalized { read, years: None });
    }
    let fields: Vec<&str> = source.split_whitespace().collect();
    let Some(names) = field_names(fields.len()) else {
        return Ok(Normalized {
            read: source.to_owned(),
            years: None,
        });
    };
    let mut written = Vec::with_capacity(fields.len());
    let mut years = None;
    for (position, (field, name)) in fields.iter().zip(names).enumerate() {
        let refuse = |why: String| {
            format!(
                "`{source}`: field {} ({name}) `{field}` is invalid: {why}",
                position + 1
            )
        };
        let field = normalize_field(field, name).map_err(refuse)?;
        if *name == "year" {
            if field != "*" {
                years = Some(Years::parse(&field).map_err(refuse)?);
            }
            written.push("*".to_owned());
        } else {
            written.push(field);
        }
    }
    Ok(Normalized {
        read: written.join(" "),
        years,
    })
}

/// One field, `name`, rewritten (see the module docs).
fn normalize_field(field: &str, name: &str) -> Result<String, String> {
    let field = field.replace('?', "*");
    let (low, high) = range(name);
    let (plus, list) = match field.strip_prefix('+') {
        Some(rest) if name == "day of week" => {
            if rest.is_empty() {
                return Err("a `+` needs the days of the week after it, such as `+MON-FRI`".to_owned());
            }
            ("+", rest)
        }
        _ => ("", field.as_str()),
    };
    let mut items = Vec::new();
    for item in list.split(',') {
        if item.is_empty() {
            return Err("a list has an empty item; remove the extra `,`".to_owned());
        }
        let Some((from, step)) = item.split_once('/') else {
            items.push(item.to_owned());
            continue;
        };
        // croner's bound: no more than the field has values (seven days of the week).
        let values = if name == "day of week" { 7 } else { high - low + 1 };
        if let Ok(step) = step.parse::<u32>()
            && step > values
        {
            return Err(format!(
                "the step {step} is larger than the field's {values} values, so it would fire once; write the value itself"
            ));
        }
        if from == "*" && name == "year" {
            return Err("a stepped `*` has no first year; write a range such as `2026-2100/2`".to_owned());
        }
        // cron-parser's `0/30`: from the number to the field's end.
        if !from.is_empty() && from.bytes().all(|b| b.is_ascii_digit()) {
            items.push(format!("{from}-{high}/{step}"));
        } else {
            items.push(item.to_owned());
        }
    }
    Ok(format!("{plus}{}", items.join(",")))
}

/// Why the crate refused `read` (`source` as [`normalize`] rewrote it), naming
/// the field as `source` wrote it.
pub(crate) fn explain_error(source: &str, read: &str, error: &croner::errors::CronError) -> String {
    if source.is_empty() {
        return "the cron expression is empty".to_owned();
    }
    let fields: Vec<&str> = source.split_whitespace().collect();
    let read_fields: Vec<&str> = read.split_whitespace().collect();
    if source.starts_with('@') {
        return format!(
            "`{source}` is not a known shorthand; use @yearly, @annually, @monthly, @weekly, \
             @daily, @midnight or @hourly"
        );
    }
    let names: &[&str] = match field_names(fields.len()) {
        Some(names) => names,
        None => {
            let n = fields.len();
            return format!(
                "`{source}` has {n} field{}; a cron expression has 5 (minute hour day-of-month \
                 month day-of-week), 6 (a leading second) or 7 (and a trailing year)",
                if n == 1 { "" } else { "s" }
            );
        }
    };
    // Find the first field that fails on its own, every other field being `*`.
    for (position, field) in fields.iter().enumerate() {
        let probe: Vec<&str> = (0..fields.len())
            .map(|i| if i == position { read_fields[i] } else { "*" })
            .collect();
        if let Err(field_error) = super::cron::parser().parse(&probe.join(" ")) {
            return format!(
                "`{source}`: field {} ({}) `{field}` is invalid: {}",
                position + 1,
                names[position],
                reason(&field_error)
            );
        }
    }
    format!("`{source}` is invalid: {}", reason(error))
}

fn reason(error: &croner::errors::CronError) -> String {
    use croner::errors::CronError;
    match error {
        CronError::ComponentError(message)
        | CronError::InvalidPattern(message)
        | CronError::IllegalCharacters(message) => message.trim_end_matches('.').to_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::CronExpr;
    use crate::schedule::interval::parse_ms;

    /// A random field: three times in four a well-formed one (values past their field's
    /// range included), else pieces of syntax and stray characters.
    fn random_field(rng: &mut fastrand::Rng) -> String {
        // Mostly values every field takes, sometimes one past the field's end.
        let value = |rng: &mut fastrand::Rng| {
            let high = if rng.u8(0..10) == 0 { 61 } else { 7 };
            rng.u32(1..=high).to_string()
        };
        match rng.u8(0..8) {
            0 => return "*".into(),
            1 => return value(rng),
            2 => return format!("{}-{}", value(rng), value(rng)),
            3 => {
                let high = if rng.bool() { 7 } else { 61 };
                return format!("*/{}", rng.u32(1..=high));
            }
            4 => return format!("{}-{}/{}", value(rng), value(rng), rng.u32(1..=9)),
            5 => return format!("{},{}", value(rng), value(rng)),
            _ => {}
        }
        const PIECES: [&str; 24] = [
            "*", "?", "/", ",", "-", "L", "W", "#", "+", "0", "1", "5", "7", "12", "31", "59", "60", "99",
            "9999", "MON", "JAN", "fri", " ", "x",
        ];
        (0..rng.usize(1..=4))
            .map(|_| PIECES[rng.usize(..PIECES.len())])
            .collect()
    }

    #[test]
    fn random_expressions_never_panic_and_every_refusal_names_its_field() {
        let mut rng = fastrand::Rng::with_seed(19);
        let utc = jiff::tz::TimeZone::UTC;
        let zones = [
            utc.clone(),
            jiff::tz::TimeZone::get("Europe/Berlin").expect("zone"),
        ];
        let after: jiff::Timestamp = "2026-03-29T00:30:00Z".parse().expect("instant");
        let (mut accepted, mut refused) = (0, 0);
        for case in 0..200_000 {
            let count = [5, 6, 7, rng.usize(1..=8)][rng.usize(..4)];
            let expr = (0..count)
                .map(|_| random_field(&mut rng))
                .collect::<Vec<_>>()
                .join(" ");
            match CronExpr::parse(&expr) {
                Ok(cron) => {
                    accepted += 1;
                    if case % 8 == 0 {
                        let _ = cron.next_after(after, &zones[case % 2]);
                    }
                }
                Err(message) => {
                    refused += 1;
                    let fields = expr.split_whitespace().count();
                    let named = (fields == 0 && message.contains("is empty"))
                        || message.contains(": field ")
                        || message.contains(&format!("has {fields} field"))
                        || (fields == 1 && message.contains("not a known shorthand"));
                    assert!(named, "`{expr}`: the refusal names no field: {message}");
                }
            }
        }
        eprintln!("{accepted} accepted, {refused} refused");
        assert!(
            accepted > 5_000 && refused > 5_000,
            "{accepted} accepted, {refused} refused"
        );
        for _ in 0..100_000 {
            const PIECES: [&str; 16] = [
                "1", "0", ".", "-", "5", "e", " ", "ms", "s", "m", "h", "d", "w", "y", "years", "x",
            ];
            let text: String = (0..rng.usize(0..=6))
                .map(|_| PIECES[rng.usize(..PIECES.len())])
                .collect();
            let _ = parse_ms(&text);
        }
    }

    #[test]
    fn croner_and_cron_parser_syntax_becomes_the_crates() {
        let read = |source: &str| normalize(source).expect("accepted").read;
        assert_eq!(read("@midnight"), "@daily");
        assert_eq!(read("@Weekly"), "@weekly");
        assert_eq!(read("? ? * * ?"), "* * * * *");
        assert_eq!(read("?/5 * * * *"), "*/5 * * * *");
        assert_eq!(read("0/30 * * * *"), "0-59/30 * * * *");
        assert_eq!(read("0 0/6 1/10 1/3 1/2"), "0 0-23/6 1-31/10 1-12/3 1-7/2");
        assert_eq!(read("0 0 12 * * +MON-FRI"), "0 0 12 * * +MON-FRI");
        assert_eq!(read("0 0 0 1 1 * 2026-2100/2"), "0 0 0 1 1 * *");
        let years = normalize("0 0 0 1 1 * 9999")
            .expect("accepted")
            .years
            .expect("years");
        assert!(years.contains(9999) && !years.contains(9998));
        assert_eq!(read("*/60 * * * *"), "*/60 * * * *");
    }

    #[test]
    fn mistakes_both_javascript_engines_refuse_are_refused_by_field() {
        let refuse = |source: &str| normalize(source).expect_err("refused");
        assert!(
            refuse("*/10 * * * * ,").contains("field 6 (day of week) `,`"),
            "{}",
            refuse("*/10 * * * * ,")
        );
        assert!(refuse("*/10 * * * * ,2").contains("empty item"));
        assert!(refuse("1,,2 * * * *").contains("field 1 (minute)"));
        assert!(refuse("0 12 1 * +").contains("field 5 (day of week) `+`"));
        assert!(refuse("*/61 * * * *").contains("larger than the field's 60 values"));
        assert!(refuse("0 0 * * */8").contains("field 5 (day of week)"));
        assert_eq!(normalize("0 0 * * */7").expect("accepted").read, "0 0 * * */7");
        assert!(refuse("0 0 0 1 1 * 10000").contains("field 7 (year) `10000`"));
        assert!(refuse("0 */25 * * *").contains("field 2 (hour)"));
        assert!(refuse("0 0 0 1 1 * */2").contains("field 7 (year)"));
    }
}
