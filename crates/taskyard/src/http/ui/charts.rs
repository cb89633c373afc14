//! The overview's charts: runs finished over the last hour and the last day, as SVG drawn
//! on the server — a bar per bucket of time, stacked by how the runs ended (throughput),
//! and a line for the share that failed (failure rate).
//!
//! Each chart is its own request (an `<img>` of the overview), so counting a busy day's
//! runs never holds the page back, and its counts are kept a few seconds per instance.

use std::collections::{BTreeMap, HashMap};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use axum::Extension;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::{SignedDuration, Timestamp};
use maud::{Markup, html};

use super::Ui;
use super::layout;
use crate::RunStatus;
use crate::http::{Api, Param};
use crate::store::RunCount;
use crate::sync::lock;

/// A chart's span of time and its buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Window {
    Hour,
    Day,
}

impl Window {
    fn parse(name: &str) -> Option<Window> {
        match name {
            "hour.svg" => Some(Window::Hour),
            "day.svg" => Some(Window::Day),
            _ => None,
        }
    }

    /// Its short name, as the overview marks its chart.
    pub fn name(self) -> &'static str {
        match self {
            Window::Hour => "hour",
            Window::Day => "day",
        }
    }

    /// The span, the bucket, and how long its counts are kept.
    fn span(self) -> (SignedDuration, i64, Duration) {
        match self {
            Window::Hour => (SignedDuration::from_hours(1), 60_000, Duration::from_secs(5)),
            Window::Day => (SignedDuration::from_hours(24), 1_800_000, Duration::from_secs(60)),
        }
    }

    fn title(self) -> &'static str {
        match self {
            Window::Hour => "the last hour",
            Window::Day => "the last day",
        }
    }

    /// Where the chart is served.
    fn path(self) -> &'static str {
        match self {
            Window::Hour => "/_tasks/ui/charts/hour.svg",
            Window::Day => "/_tasks/ui/charts/day.svg",
        }
    }

    /// Where the overview finds it at `now`: the address names the period of its counts'
    /// keeping (`?at=`), so that a live overview, drawn again, shows a new address, and
    /// the browser a new chart, once per period and not more often.
    pub fn href(self, now: Timestamp) -> String {
        let (_, _, keep) = self.span();
        let period = i64::try_from(keep.as_millis()).unwrap_or(i64::MAX).max(1);
        format!("{}?at={}", self.path(), now.as_millisecond().div_euclid(period))
    }
}

type Counted = (Instant, Timestamp, Vec<RunCount>);

/// Counts read lately, by instance and window.
static KEPT: LazyLock<Mutex<HashMap<(String, Window), Counted>>> = LazyLock::new(Default::default);

/// `GET /_tasks/ui/charts/hour.svg` and `…/day.svg`.
pub(super) async fn chart(Extension(api): Extension<Api>, Param(name): Param) -> Response {
    let ui = Ui::of(&api);
    let Some(window) = Window::parse(&name) else {
        let message = format!("No chart `{name}`: there are hour.svg and day.svg.");
        return layout::problem(&ui, StatusCode::NOT_FOUND, &message);
    };
    let (span, bucket_ms, keep) = window.span();
    let key = (ui.instance.clone(), window);
    let kept = lock(&KEPT)
        .get(&key)
        .filter(|(read, _, _)| read.elapsed() < keep)
        .cloned();
    let (_, now, counts) = match kept {
        Some(kept) => kept,
        None => {
            let now = Timestamp::now();
            let since = now - span;
            match api.runtime.run_counts(since, bucket_ms).await {
                Ok(counts) => {
                    let counted = (Instant::now(), now, counts);
                    lock(&KEPT).insert(key, counted.clone());
                    counted
                }
                Err(error) => {
                    let message = format!("The run history cannot be counted: {error}");
                    return layout::problem(&ui, StatusCode::SERVICE_UNAVAILABLE, &message);
                }
            }
        }
    };
    let svg = draw(window, now, bucket_ms, &counts).into_string();
    let mut response = (StatusCode::OK, svg).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, "image/svg+xml"),
        (header::CACHE_CONTROL, "private, max-age=5"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::CONTENT_SECURITY_POLICY, "default-src 'none'"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// One bucket's runs: ended well, ended badly, cancelled.
#[derive(Debug, Default, Clone, Copy)]
struct Bar {
    succeeded: u64,
    failed: u64,
    cancelled: u64,
}

impl Bar {
    fn total(self) -> u64 {
        self.succeeded + self.failed + self.cancelled
    }
}

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 160.0;
const TOP: f64 = 22.0;
const BOTTOM: f64 = 18.0;
const OK: &str = "#2e9b55";
const BAD: &str = "#d0453a";
const QUIET: &str = "#9aa3b4";
const RATE: &str = "#d98a1c";

/// A bar's rectangles, bottom up: their top, height and colour, for the outcomes it has.
fn stack(bar: Bar, highest: u64, plot: f64) -> Vec<(f64, f64, &'static str)> {
    let mut below = 0.0;
    let mut rects = Vec::new();
    for (value, color) in [(bar.succeeded, OK), (bar.failed, BAD), (bar.cancelled, QUIET)] {
        if value == 0 {
            continue;
        }
        let height = plot * value as f64 / highest as f64;
        rects.push((TOP + plot - below - height, height, color));
        below += height;
    }
    rects
}

fn draw(window: Window, now: Timestamp, bucket_ms: i64, counts: &[RunCount]) -> Markup {
    let (span, _, _) = window.span();
    let first = (now - span).as_millisecond().div_euclid(bucket_ms) * bucket_ms;
    let buckets = usize::try_from((now.as_millisecond() - first) / bucket_ms + 1).unwrap_or(1);
    let mut bars: BTreeMap<i64, Bar> = (0..buckets)
        .map(|i| (first + i as i64 * bucket_ms, Bar::default()))
        .collect();
    for count in counts {
        let bar = bars.entry(count.bucket.as_millisecond()).or_default();
        match count.status {
            RunStatus::Succeeded => bar.succeeded += count.count,
            RunStatus::Cancelled => bar.cancelled += count.count,
            _ => bar.failed += count.count,
        }
    }
    let bars: Vec<(i64, Bar)> = bars.into_iter().filter(|(start, _)| *start >= first).collect();
    let highest = bars.iter().map(|(_, bar)| bar.total()).max().unwrap_or(0).max(1);
    let total: u64 = bars.iter().map(|(_, bar)| bar.total()).sum();
    let failed: u64 = bars.iter().map(|(_, bar)| bar.failed).sum();
    let rate = if total == 0 {
        0.0
    } else {
        failed as f64 * 100.0 / total as f64
    };
    let plot = HEIGHT - TOP - BOTTOM;
    let step = WIDTH / bars.len().max(1) as f64;
    let y = |value: f64, of: f64| TOP + plot - plot * value / of;
    let label = |ms: i64| {
        Timestamp::from_millisecond(ms).map_or_else(|_| String::new(), |at| at.strftime("%H:%M").to_string())
    };
    let rates: Vec<String> = bars
        .iter()
        .enumerate()
        .filter(|(_, (_, bar))| bar.total() > 0)
        .map(|(i, (_, bar))| {
            let share = bar.failed as f64 / bar.total() as f64;
            format!("{:.1},{:.1}", (i as f64 + 0.5) * step, y(share, 1.0))
        })
        .collect();
    html! {
        svg xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } width=(WIDTH) height=(HEIGHT)
            font-family="system-ui, sans-serif" font-size="11" {
            title { "Runs finished over " (window.title()) }
            text x="0" y="13" fill="#5d6677" {
                (total) " runs finished over " (window.title()) ", " (format!("{rate:.1}")) " % failed (UTC; most in a bucket: " (highest) ")"
            }
            // Elements close with `{}`, never `;`: this is XML, where HTML's void form breaks.
            line x1="0" y1=(TOP + plot) x2=(WIDTH) y2=(TOP + plot) stroke="#dde1e8" {}
            @for (i, (start, bar)) in bars.iter().enumerate() {
                g data-bucket=(start) {
                    title { (label(*start)) ": " (bar.succeeded) " succeeded, " (bar.failed) " failed, " (bar.cancelled) " cancelled" }
                    @for (top, height, color) in stack(*bar, highest, plot) {
                        rect x=(format!("{:.1}", i as f64 * step + 0.5)) y=(format!("{top:.1}"))
                            width=(format!("{:.1}", (step - 1.0).max(0.5))) height=(format!("{height:.1}")) fill=(color) {}
                    }
                }
            }
            @if rates.len() > 1 {
                polyline points=(rates.join(" ")) fill="none" stroke=(RATE) stroke-width="1.5" {}
            }
            text x="0" y=(HEIGHT - 4.0) fill="#5d6677" { (bars.first().map(|(start, _)| label(*start)).unwrap_or_default()) }
            text x=(WIDTH) y=(HEIGHT - 4.0) fill="#5d6677" text-anchor="end" { (label(now.as_millisecond())) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_stack_by_outcome_and_the_failure_rate_is_drawn() {
        let now: Timestamp = "2026-11-30T12:00:30Z".parse().expect("a time");
        let minute = |m: i64| {
            Timestamp::from_millisecond(now.as_millisecond() / 60_000 * 60_000 - m * 60_000).expect("a time")
        };
        let counts = [
            RunCount {
                bucket: minute(2),
                status: RunStatus::Succeeded,
                count: 3,
            },
            RunCount {
                bucket: minute(2),
                status: RunStatus::Failed,
                count: 1,
            },
            RunCount {
                bucket: minute(1),
                status: RunStatus::TimedOut,
                count: 2,
            },
            RunCount {
                bucket: minute(0),
                status: RunStatus::Cancelled,
                count: 1,
            },
        ];
        let svg = draw(Window::Hour, now, 60_000, &counts).into_string();
        assert!(
            svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
            "{svg}"
        );
        assert!(
            svg.contains("7 runs finished over the last hour, 42.9 % failed"),
            "{svg}"
        );
        assert!(svg.contains("11:58: 3 succeeded, 1 failed, 0 cancelled"), "{svg}");
        assert!(svg.contains("11:59: 0 succeeded, 2 failed, 0 cancelled"), "{svg}");
        assert_eq!(
            svg.matches("<rect").count(),
            4,
            "one rect per outcome present: {svg}"
        );
        assert!(svg.contains("<polyline"), "the failure rate");
        // XML, not HTML: no element is left open in HTML's void form.
        assert_eq!(
            svg.matches("<line").count(),
            svg.matches("</line>").count(),
            "{svg}"
        );
        assert_eq!(
            svg.matches("<g data-bucket").count(),
            61,
            "a bar a minute, both ends in"
        );
    }
}
