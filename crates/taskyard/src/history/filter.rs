//! [`RunFilter`]: which runs a history query lists.

use jiff::Timestamp;

use super::{RunId, RunRecord, RunStatus};

/// Which runs to list.
#[derive(Debug, Clone, PartialEq)]
pub struct RunFilter {
    /// Only runs of this task.
    pub task: Option<String>,
    /// Only runs in this status.
    pub status: Option<RunStatus>,
    /// Only runs started by this schedule (its ticks and its strategy's sends).
    pub schedule: Option<String>,
    /// `Some(true)`: only runs started by schedules; `Some(false)`: none of them.
    pub scheduled: Option<bool>,
    /// Only runs with this trigger kind (`manual`, `http`, `cli`, `schedule`, `startup`,
    /// `custom`).
    pub trigger: Option<String>,
    /// Only runs of this instance.
    pub instance: Option<String>,
    /// Only runs queued at or after this time.
    pub since: Option<Timestamp>,
    /// Only runs queued before this time.
    pub until: Option<Timestamp>,
    /// Only runs with this text, ignoring ASCII case, in their payload, result (both as
    /// JSON text) or error.
    pub text: Option<String>,
    /// Only runs still `queued` or `running`.
    pub unfinished: bool,
    /// Only runs older than this one: the next page after a page that ended with it
    /// (ids are ordered by creation, so this is keyset pagination).
    pub before: Option<RunId>,
    /// At most this many, newest first (default 100).
    pub limit: usize,
}

impl Default for RunFilter {
    fn default() -> Self {
        RunFilter {
            task: None,
            status: None,
            schedule: None,
            scheduled: None,
            trigger: None,
            instance: None,
            since: None,
            until: None,
            text: None,
            unfinished: false,
            before: None,
            limit: 100,
        }
    }
}

impl RunFilter {
    /// Only runs of `task`.
    pub fn task(mut self, task: impl Into<String>) -> Self {
        self.task = Some(task.into());
        self
    }

    /// Only runs in `status`.
    pub fn status(mut self, status: RunStatus) -> Self {
        self.status = Some(status);
        self
    }

    /// Only runs started by the schedule `schedule` (its ticks and its strategy's sends).
    pub fn schedule(mut self, schedule: impl Into<String>) -> Self {
        self.schedule = Some(schedule.into());
        self
    }

    /// Only runs started by schedules (`true`), or only the others (`false`).
    pub fn scheduled(mut self, scheduled: bool) -> Self {
        self.scheduled = Some(scheduled);
        self
    }

    /// Only runs still `queued` or `running`.
    pub fn unfinished(mut self) -> Self {
        self.unfinished = true;
        self
    }

    /// Only runs with the trigger kind `kind` (`http`, `schedule`, …).
    pub fn trigger(mut self, kind: impl Into<String>) -> Self {
        self.trigger = Some(kind.into());
        self
    }

    /// Only runs of `instance`.
    pub fn instance(mut self, instance: impl Into<String>) -> Self {
        self.instance = Some(instance.into());
        self
    }

    /// Only runs queued in `[since, until)`; either end may be open.
    pub fn queued_between(mut self, since: Option<Timestamp>, until: Option<Timestamp>) -> Self {
        self.since = since;
        self.until = until;
        self
    }

    /// Only runs with `text` (ignoring ASCII case) in their payload, result or error.
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }

    /// Only runs older than `run`: the page after the one that ended with it.
    pub fn before(mut self, run: RunId) -> Self {
        self.before = Some(run);
        self
    }

    /// At most `limit` runs, newest first.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// True if `run` passes every condition of this filter.
    pub fn matches(&self, run: &RunRecord) -> bool {
        self.task.as_deref().is_none_or(|task| task == run.task)
            && self.status.is_none_or(|status| status == run.status)
            && (!self.unfinished || !run.status.is_final())
            && self.before.is_none_or(|before| run.id < before)
            && self
                .trigger
                .as_deref()
                .is_none_or(|kind| run.trigger.kind() == kind)
            && self
                .instance
                .as_deref()
                .is_none_or(|instance| run.instance == instance)
            && self.since.is_none_or(|since| run.queued_at >= since)
            && self.until.is_none_or(|until| run.queued_at < until)
            && self.text.as_deref().is_none_or(|text| has_text(run, text))
            && self
                .schedule
                .as_deref()
                .is_none_or(|schedule| run.trigger.schedule() == Some(schedule))
            && self
                .scheduled
                .is_none_or(|scheduled| run.trigger.schedule().is_some() == scheduled)
    }

    /// `text`, ignoring ASCII case, as SQL's `LIKE` takes it: between `%`, with `\`, `%`
    /// and `_` escaped by `\`.
    pub(crate) fn like_pattern(text: &str) -> String {
        let mut pattern = String::with_capacity(text.len() + 2);
        pattern.push('%');
        for c in text.chars() {
            if matches!(c, '\\' | '%' | '_') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('%');
        pattern
    }

    /// The limit as SQL takes it.
    pub(crate) fn sql_limit(&self) -> i64 {
        i64::try_from(self.limit).unwrap_or(i64::MAX)
    }
}

/// True when `text` is in the run's payload, result or error, ignoring ASCII case.
fn has_text(run: &RunRecord, text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    let within = |haystack: &str| haystack.to_ascii_lowercase().contains(&text);
    within(&run.payload.to_string())
        || run
            .result
            .as_ref()
            .is_some_and(|result| within(&result.to_string()))
        || run.error.as_deref().is_some_and(within)
}
