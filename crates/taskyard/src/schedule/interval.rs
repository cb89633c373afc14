//! Interval values: a number of milliseconds, or an `ms`-style string (`"500ms"`, `"10s"`,
//! `"1.5h"`, `"3d"`) with exactly the grammar, units and values of the npm `ms` package
//! (2.x), which egg-schedule reads intervals with.
//!
//! Hand-written rather than a crate: `ms`'s grammar is one regular expression, and no Rust
//! duration parser accepts the same strings with the same values (`humantime` has no
//! fractions and counts a year as 365.25 days only for some units).

use std::fmt;
use std::time::Duration;

const SECOND: f64 = 1000.0;
const MINUTE: f64 = SECOND * 60.0;
const HOUR: f64 = MINUTE * 60.0;
const DAY: f64 = HOUR * 24.0;
const WEEK: f64 = DAY * 7.0;
const YEAR: f64 = DAY * 365.25;

/// The longest interval accepted: 100 years.
pub const MAX_INTERVAL: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// An interval as written in a definition, before it is checked.
#[derive(Debug, Clone, PartialEq)]
pub enum IntervalSpec {
    /// Milliseconds, as a number (`500`).
    Millis(f64),
    /// Text: `5s`, `10m`, `1h 30m`, or milliseconds as text.
    Text(String),
    /// A [`Duration`].
    Duration(Duration),
}

impl From<&str> for IntervalSpec {
    fn from(text: &str) -> Self {
        IntervalSpec::Text(text.to_owned())
    }
}

impl From<String> for IntervalSpec {
    fn from(text: String) -> Self {
        IntervalSpec::Text(text)
    }
}

impl From<Duration> for IntervalSpec {
    fn from(duration: Duration) -> Self {
        IntervalSpec::Duration(duration)
    }
}

impl From<u64> for IntervalSpec {
    fn from(ms: u64) -> Self {
        IntervalSpec::Millis(ms as f64)
    }
}

impl From<i64> for IntervalSpec {
    fn from(ms: i64) -> Self {
        IntervalSpec::Millis(ms as f64)
    }
}

impl From<i32> for IntervalSpec {
    fn from(ms: i32) -> Self {
        IntervalSpec::Millis(f64::from(ms))
    }
}

impl From<f64> for IntervalSpec {
    fn from(ms: f64) -> Self {
        IntervalSpec::Millis(ms)
    }
}

impl fmt::Display for IntervalSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IntervalSpec::Millis(ms) => write!(f, "{ms}"),
            IntervalSpec::Text(text) => write!(f, "\"{text}\""),
            IntervalSpec::Duration(duration) => write!(f, "{duration:?}"),
        }
    }
}

impl IntervalSpec {
    /// The interval as a duration, or why it is not a valid one.
    pub fn resolve(&self) -> Result<Duration, String> {
        let ms = match self {
            IntervalSpec::Millis(ms) => *ms,
            IntervalSpec::Text(text) => parse_ms(text).ok_or_else(|| {
                format!(
                    "`{text}` is not an interval; write a number of milliseconds or a number \
                     with a unit, like \"500ms\", \"10s\", \"1.5h\", \"3d\" (units: ms, s, m, h, d, w, y \
                     and their long forms)"
                )
            })?,
            IntervalSpec::Duration(duration) => duration.as_secs_f64() * 1000.0,
        };
        if !ms.is_finite() {
            return Err(format!("{self} is not a finite number of milliseconds"));
        }
        if ms <= 0.0 {
            return Err(format!("{self} must be positive (it is {ms} ms)"));
        }
        if ms < 1.0 {
            return Err(format!("{self} is shorter than the 1 ms the timer can resolve"));
        }
        let duration = Duration::from_nanos((ms * 1e6).round() as u64);
        if duration > MAX_INTERVAL {
            return Err(format!("{self} is longer than the 100 years allowed"));
        }
        Ok(duration)
    }
}

/// `ms(text)`: the milliseconds an `ms`-style string stands for, or `None` where `ms` gives
/// `undefined`. Grammar: `^(-?(?:\d+)?\.?\d+) *(unit)?$`, case-insensitive, at most 100
/// characters, no unit meaning milliseconds.
pub fn parse_ms(text: &str) -> Option<f64> {
    if text.len() > 100 {
        return None;
    }
    let number_end = number_prefix(text)?;
    let number: f64 = text[..number_end].parse().ok()?;
    let unit = text[number_end..].trim_start_matches(' ');
    let factor = match unit.to_ascii_lowercase().as_str() {
        "" | "milliseconds" | "millisecond" | "msecs" | "msec" | "ms" => 1.0,
        "seconds" | "second" | "secs" | "sec" | "s" => SECOND,
        "minutes" | "minute" | "mins" | "min" | "m" => MINUTE,
        "hours" | "hour" | "hrs" | "hr" | "h" => HOUR,
        "days" | "day" | "d" => DAY,
        "weeks" | "week" | "w" => WEEK,
        "years" | "year" | "yrs" | "yr" | "y" => YEAR,
        _ => return None,
    };
    Some(number * factor)
}

/// Length of the leading `-?(?:\d+)?\.?\d+`, which must end in a digit.
fn number_prefix(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut i = usize::from(bytes.first() == Some(&b'-'));
    let int_start = i;
    while bytes.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    if bytes.get(i) == Some(&b'.') {
        let frac_start = i + 1;
        let mut j = frac_start;
        while bytes.get(j).is_some_and(u8::is_ascii_digit) {
            j += 1;
        }
        // "1." is not a number for `ms`, and no unit starts with a dot.
        return (j > frac_start).then_some(j);
    }
    (i > int_start).then_some(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_match_the_npm_ms_package() {
        // (input, what `ms(input)` returns in Node)
        let cases: &[(&str, Option<f64>)] = &[
            ("100", Some(100.0)),
            ("1s", Some(1000.0)),
            ("1.5h", Some(5_400_000.0)),
            ("1   s", Some(1000.0)),
            ("1 S", Some(1000.0)),
            ("10 Seconds", Some(10_000.0)),
            ("2 mins", Some(120_000.0)),
            ("1m", Some(60_000.0)),
            ("3d", Some(259_200_000.0)),
            ("1w", Some(604_800_000.0)),
            ("1y", Some(31_557_600_000.0)),
            (".5ms", Some(0.5)),
            ("-100ms", Some(-100.0)),
            ("-.5h", Some(-1_800_000.0)),
            ("53 milliseconds", Some(53.0)),
            ("17 msecs", Some(17.0)),
            ("1hr", Some(3_600_000.0)),
            ("1 yr", Some(31_557_600_000.0)),
            ("", None),
            ("1.", None),
            (" 1s", None),
            ("1s ", None),
            ("1 mo", None),
            ("abc", None),
            ("1e3", None),
            ("--1", None),
            ("1.5.5", None),
            ("☃", None),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_ms(input), *expected, "ms({input:?})");
        }
        assert_eq!(parse_ms(&"1".repeat(101)), None);
    }

    #[test]
    fn resolve_rejects_what_cannot_be_an_interval() {
        let ok = |spec: IntervalSpec| spec.resolve().expect("valid");
        assert_eq!(ok("1s".into()), Duration::from_secs(1));
        assert_eq!(ok(1500u64.into()), Duration::from_millis(1500));
        assert_eq!(ok("1.5ms".into()), Duration::from_micros(1500));
        let err = |spec: IntervalSpec| spec.resolve().expect_err("invalid");
        assert!(err(0u64.into()).contains("must be positive"));
        assert!(err("-5s".into()).contains("must be positive"));
        assert!(err("0.5ms".into()).contains("shorter than"));
        assert!(err("five seconds".into()).contains("is not an interval"));
        assert!(err("200y".into()).contains("longer than"));
        assert!(err(f64::NAN.into()).contains("finite"));
    }
}
