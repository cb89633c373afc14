//! A run's attempts as a timeline: each attempt with how it ended and why, the backoff
//! waited before the next, and the attempt going now or last.

use maud::{Markup, html};

use super::format;
use crate::RunRecord;
use crate::history::duration_ms;

/// The run's attempts, oldest first.
pub(super) fn attempts(run: &RunRecord) -> Markup {
    html! {
        ol.timeline {
            @for attempt in &run.attempts {
                li class={ "attempt status-" (attempt.status.as_str()) } data-attempt=(attempt.attempt) {
                    strong { "Attempt " (attempt.attempt) } " " (format::status(attempt.status))
                    " after " (format::duration(duration_ms(attempt.started_at, attempt.finished_at)))
                    span.muted { " · " (format::when(attempt.started_at)) " → " (format::when(attempt.finished_at)) }
                    @if let Some(error) = &attempt.error { div { (error) } }
                }
                @if attempt.retry_delay_ms > 0 {
                    li.wait { span.muted { "waited " (format::duration(attempt.retry_delay_ms)) " before the next attempt" } }
                }
            }
            li class={ "attempt status-" (run.status.as_str()) } data-attempt=(run.attempt) {
                strong { "Attempt " (run.attempt) } " " (format::status(run.status))
                @if let Some(finished) = run.finished_at { span.muted { " · ended " (format::when(finished)) } }
                @if let Some(error) = &run.error { div { (error) } }
            }
        }
    }
}
