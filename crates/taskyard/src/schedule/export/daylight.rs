//! Whether a platform would fire a cron schedule at taskyard's times across daylight-saving
//! changes.
//!
//! Platform schedulers read a calendar on the local wall clock: a time that a spring-forward
//! gap skips does not fire, and a time that an autumn overlap repeats fires once, the first
//! time (systemd does both; `systemd-analyze calendar` shows it). taskyard fires a skipped
//! time the gap's length later and, for `*` hours, both repeated hours, as the JavaScript
//! engines it follows do. Around each change of the coming ten years, both sets of times
//! are compared; an export whose times would differ is refused, naming the first change
//! where they do.

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use crate::schedule::CronExpr;

/// Changes looked at: two a year for ten years.
const CHANGES: usize = 20;
/// Each side of a change, compared.
const AROUND: SignedDuration = SignedDuration::from_hours(26);
/// Fire times compared around one change, at most (a per-second schedule has 187,200).
const MOST: usize = 200_000;

/// `None` when a wall-clock calendar fires `expr` in `zone` exactly when taskyard does
/// around every daylight-saving change of the ten years after `from`; else why not.
pub(crate) fn conflict(expr: &CronExpr, zone: &TimeZone, from: Timestamp) -> Option<String> {
    if zone.to_fixed_offset().is_ok() {
        return None;
    }
    for change in zone.following(from).take(CHANGES) {
        let start = change.timestamp() - AROUND;
        let end = change.timestamp() + AROUND;
        let ours = taskyard_times(expr, zone, start, end);
        let wall = wall_clock_times(expr, zone, start, end);
        if ours == wall {
            continue;
        }
        let local = |at: &Timestamp| {
            at.to_zoned(zone.clone())
                .strftime("%Y-%m-%d %H:%M:%S %Z")
                .to_string()
        };
        // The first three times of one list that the other lacks.
        let missing_from = |these: &[Timestamp], other: &[Timestamp]| -> Vec<String> {
            these
                .iter()
                .filter(|t| !other.contains(t))
                .take(3)
                .map(local)
                .collect()
        };
        let only_ours = missing_from(&ours, &wall);
        let only_wall = missing_from(&wall, &ours);
        let name = zone.iana_name().unwrap_or("its zone");
        let date = change.timestamp().to_zoned(zone.clone()).strftime("%Y-%m-%d");
        let mut why = format!(
            "`{}` crosses the daylight-saving change of {date} in {name}, where a platform's wall-clock calendar fires at other times than taskyard",
            expr.as_str()
        );
        if !only_ours.is_empty() {
            why.push_str(&format!(
                " (taskyard fires at {}, the platform would not)",
                only_ours.join(", ")
            ));
        }
        if !only_wall.is_empty() {
            why.push_str(&format!(
                " (the platform fires at {}, taskyard does not)",
                only_wall.join(", ")
            ));
        }
        why.push_str("; move its times out of the hour the clocks change, or use UTC");
        return Some(why);
    }
    None
}

fn taskyard_times(expr: &CronExpr, zone: &TimeZone, start: Timestamp, end: Timestamp) -> Vec<Timestamp> {
    let mut times = Vec::new();
    let mut at = start;
    while let Some(next) = expr.next_after(at, zone) {
        if next > end || times.len() == MOST {
            break;
        }
        times.push(next);
        at = next;
    }
    times
}

/// Every local time the pattern matches, each at its first instant; skipped local times
/// do not fire.
fn wall_clock_times(expr: &CronExpr, zone: &TimeZone, start: Timestamp, end: Timestamp) -> Vec<Timestamp> {
    let mut times = Vec::new();
    let mut civil: DateTime = start.to_zoned(zone.clone()).datetime();
    // Back far enough that a repeated hour's first instant before `start` is not missed.
    civil = civil.saturating_sub(SignedDuration::from_hours(2));
    while let Some(next) = expr.next_civil_match(civil) {
        civil = next;
        let ambiguous = zone.to_ambiguous_timestamp(next);
        if matches!(ambiguous.offset(), jiff::tz::AmbiguousOffset::Gap { .. }) {
            continue;
        }
        let Ok(at) = ambiguous.earlier() else { continue };
        if at > end || times.len() == MOST {
            break;
        }
        if at > start {
            times.push(at);
        }
    }
    times.sort_unstable();
    times
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(expr: &str, zone: &str) -> Option<String> {
        let zone = TimeZone::get(zone).expect("zone");
        let from: Timestamp = "2026-01-01T00:00:00Z".parse().expect("instant");
        conflict(&CronExpr::parse(expr).expect("parses"), &zone, from)
    }

    #[test]
    fn times_inside_a_change_are_refused_and_the_rest_pass() {
        let gap = check("30 2 * * *", "Europe/Paris").expect("02:30 is skipped in spring");
        assert!(
            gap.contains("2026-03-29") && gap.contains("03:30:00 CEST"),
            "{gap}"
        );
        let overlap = check("30 * * * *", "Europe/Paris").expect("* hours fire twice in autumn");
        assert!(overlap.contains("2026-10-25"), "{overlap}");
        assert!(
            check("0 * * * *", "Europe/Paris").is_some(),
            "hourly fires in both autumn hours"
        );
        assert_eq!(check("0 9 * * MON-FRI", "Europe/Paris"), None);
        assert_eq!(
            check("30 1 * * *", "Europe/Paris"),
            None,
            "01:30 is neither skipped nor repeated"
        );
        assert_eq!(check("0 3 * * *", "America/New_York"), None);
        assert!(check("0 2 * * *", "America/New_York").is_some());
        assert_eq!(check("* * * * *", "Asia/Tokyo"), None, "no daylight saving");
    }
}
