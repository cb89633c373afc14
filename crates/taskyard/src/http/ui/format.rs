//! How the dashboard writes values: times, durations, statuses, triggers, JSON.

use jiff::Timestamp;
use maud::{Markup, html};
use serde_json::Value;

use crate::http::session::UI_PATH;
use crate::{RunStatus, Trigger};

/// A time in UTC to the second, with its exact value in `datetime`.
pub(super) fn when(at: Timestamp) -> Markup {
    let exact = at.to_string();
    let shown = at.strftime("%Y-%m-%d %H:%M:%S").to_string();
    html! { time datetime=(exact) title=(exact) { (shown) } }
}

/// A duration as a person reads it: `850 ms`, `12.3 s`, `4 min 3 s`, `2 h 5 min`.
pub(super) fn duration(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{} min {} s", ms / 60_000, ms % 60_000 / 1000),
        _ => format!("{} h {} min", ms / 3_600_000, ms % 3_600_000 / 60_000),
    }
}

/// A run's status as a badge.
pub(super) fn status(status: RunStatus) -> Markup {
    html! { span class={ "status status-" (status.as_str()) } { (status.as_str()) } }
}

/// What started a run, with a link to its schedule's runs when a schedule did.
pub(super) fn trigger(trigger: &Trigger) -> Markup {
    html! {
        (trigger.kind())
        @if let Some(schedule) = trigger.schedule() {
            " "
            a href={ (UI_PATH) "/runs?schedule=" (query(schedule)) } { (schedule) }
        }
    }
}

/// A JSON value, indented.
pub(super) fn json(value: &Value) -> Markup {
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    html! { pre { (text) } }
}

/// A serialized enum's name (`visible_task`, `skip`).
pub(super) fn name_of(value: impl serde::Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(name)) => name,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// `text` encoded for a query string.
pub(super) fn query(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(duration(850), "850 ms");
        assert_eq!(duration(12_345), "12.3 s");
        assert_eq!(duration(243_000), "4 min 3 s");
        assert_eq!(duration(7_500_000), "2 h 5 min");
    }
}
