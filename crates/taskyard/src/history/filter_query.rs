//! [`RunFilter::from_query`]: a runs listing's filter read from a URL's query string, as
//! the API and the dashboard both take it.

use jiff::Timestamp;

use super::{RunFilter, RunId, RunStatus, Trigger};

/// A query parameter of a runs listing that is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("query parameter `{name}={value}` is not valid; expected {expected}")]
pub struct BadParam {
    /// The parameter.
    pub name: &'static str,
    /// What it was given.
    pub value: String,
    /// What it takes.
    pub expected: String,
}

impl RunFilter {
    /// `self` narrowed by the query string's `task`, `status`, `schedule`, `scheduled`,
    /// `unfinished`, `trigger`, `instance`, `since`, `until`, `q` (text), `before` and
    /// `limit` (from 1 to `most`). An empty value sets nothing; other parameters are
    /// ignored. Times are RFC 3339 instants, or `YYYY-MM-DDTHH:MM[:SS]` read as UTC (what
    /// a browser's date-time input sends).
    pub fn from_query(mut self, query: &str, most: usize) -> Result<RunFilter, BadParam> {
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            let bad = |name: &'static str, expected: &str| BadParam {
                name,
                value: value.to_owned(),
                expected: expected.to_owned(),
            };
            let flag = |name: &'static str| match value {
                "true" | "1" | "on" => Ok(true),
                "false" | "0" | "off" => Ok(false),
                _ => Err(bad(name, "`true` or `false`")),
            };
            match key.as_ref() {
                "task" => self.task = Some(value.to_owned()),
                "schedule" => self.schedule = Some(value.to_owned()),
                "instance" => self.instance = Some(value.to_owned()),
                "q" => self.text = Some(value.to_owned()),
                "status" => {
                    self.status = Some(value.parse::<RunStatus>().map_err(|_| {
                        bad(
                            "status",
                            "one of queued, running, succeeded, failed, cancelled, timed_out, abandoned",
                        )
                    })?)
                }
                "trigger" => {
                    if !Trigger::KINDS.contains(&value) {
                        return Err(bad(
                            "trigger",
                            "one of manual, http, cli, schedule, startup, custom",
                        ));
                    }
                    self.trigger = Some(value.to_owned());
                }
                "scheduled" => self.scheduled = Some(flag("scheduled")?),
                "unfinished" => self.unfinished = flag("unfinished")?,
                "since" => self.since = Some(instant(value).ok_or_else(|| bad("since", TIME))?),
                "until" => self.until = Some(instant(value).ok_or_else(|| bad("until", TIME))?),
                "before" => {
                    self.before = Some(
                        value
                            .parse::<RunId>()
                            .map_err(|_| bad("before", "a run id, the last of the page before"))?,
                    )
                }
                "limit" => {
                    self.limit = value
                        .parse::<usize>()
                        .ok()
                        .filter(|limit| (1..=most).contains(limit))
                        .ok_or_else(|| bad("limit", &format!("a number from 1 to {most}")))?
                }
                _ => {}
            }
        }
        Ok(self)
    }
}

const TIME: &str = "an RFC 3339 instant such as 2026-11-30T09:00:00Z";

/// An RFC 3339 instant, or a civil date and time read as UTC.
fn instant(value: &str) -> Option<Timestamp> {
    value.parse::<Timestamp>().ok().or_else(|| {
        value
            .parse::<jiff::civil::DateTime>()
            .ok()
            .and_then(|civil| civil.to_zoned(jiff::tz::TimeZone::UTC).ok())
            .map(|zoned| zoned.timestamp())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_parameter_is_read_and_a_bad_one_is_named() {
        let filter = RunFilter::default()
            .from_query(
                "task=a&status=failed&trigger=http&instance=i-1&since=2026-11-30T09:00&until=2026-11-30T10:00:00Z&q=Ada&unfinished=on&limit=20&other=x&schedule=",
                500,
            )
            .expect("valid");
        assert_eq!(filter.task.as_deref(), Some("a"));
        assert_eq!(filter.status, Some(RunStatus::Failed));
        assert_eq!(filter.trigger.as_deref(), Some("http"));
        assert_eq!(filter.instance.as_deref(), Some("i-1"));
        assert_eq!(
            filter.since,
            Some("2026-11-30T09:00:00Z".parse().expect("a time"))
        );
        assert_eq!(
            filter.until,
            Some("2026-11-30T10:00:00Z".parse().expect("a time"))
        );
        assert_eq!(filter.text.as_deref(), Some("Ada"));
        assert!(filter.unfinished);
        assert_eq!(filter.limit, 20);
        assert_eq!(filter.schedule, None, "an empty value sets nothing");
        let bad = RunFilter::default()
            .from_query("limit=501", 500)
            .expect_err("too many");
        assert_eq!(
            bad.to_string(),
            "query parameter `limit=501` is not valid; expected a number from 1 to 500"
        );
        let bad = RunFilter::default()
            .from_query("trigger=cron", 500)
            .expect_err("no such kind");
        assert_eq!(bad.name, "trigger");
        let bad = RunFilter::default()
            .from_query("since=yesterday", 500)
            .expect_err("no time");
        assert!(bad.to_string().contains("RFC 3339"));
    }

    #[test]
    fn like_patterns_escape_their_wildcards() {
        assert_eq!(RunFilter::like_pattern("50%_a\\b"), "%50\\%\\_a\\\\b%");
    }
}
