//! [`RunFilter`]: which runs a history query lists.

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
                .schedule
                .as_deref()
                .is_none_or(|schedule| run.trigger.schedule() == Some(schedule))
            && self
                .scheduled
                .is_none_or(|scheduled| run.trigger.schedule().is_some() == scheduled)
    }

    /// The limit as SQL takes it.
    pub(crate) fn sql_limit(&self) -> i64 {
        i64::try_from(self.limit).unwrap_or(i64::MAX)
    }
}
