//! Schedules written for a platform's own scheduler: crontab, systemd timers, Kubernetes
//! CronJobs, Cloudflare Cron Triggers and Vercel cron jobs.
//!
//! Every feature of a schedule is written exactly in the target's terms or the export is
//! refused, naming the schedule and the reason; nothing is approximated. What the platform
//! runs claims the tick in the app's ledger (`APP task run TASK --schedule NAME --tick auto`,
//! or `POST /_tasks/schedules/NAME/tick` for the HTTP platforms), so a platform's duplicate
//! fire is a no-op and the run is recorded like any tick's.
//!
//! - `calendar`: the ticks as sets of field values, in a zone; `daylight`: whether a
//!   wall-clock calendar fires at the same times across daylight-saving changes.
//! - `cron_line` and `systemd`: the calendar in each syntax; `targets`: the files.

mod calendar;
mod cron_line;
mod daylight;
mod systemd;
mod targets;

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;

use super::checked::ScheduleDef;

/// A platform scheduler schedules can be exported to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A crontab (cronie, Vixie cron).
    Crontab,
    /// systemd `.timer` and `.service` units.
    Systemd,
    /// Kubernetes `batch/v1` CronJobs.
    Kubernetes,
    /// Cloudflare Workers Cron Triggers and a `scheduled()` handler.
    Cloudflare,
    /// Vercel cron jobs (`vercel.json`).
    Vercel,
}

impl Target {
    /// Every target, in the order the help lists them.
    pub const ALL: [Target; 5] = [
        Target::Crontab,
        Target::Systemd,
        Target::Kubernetes,
        Target::Cloudflare,
        Target::Vercel,
    ];

    /// The name the command line takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Target::Crontab => "crontab",
            Target::Systemd => "systemd",
            Target::Kubernetes => "kubernetes",
            Target::Cloudflare => "cloudflare",
            Target::Vercel => "vercel",
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Target {
    type Err = String;

    fn from_str(name: &str) -> Result<Target, String> {
        Target::ALL
            .into_iter()
            .find(|target| target.as_str() == name)
            .ok_or_else(|| {
                format!(
                    "unknown export target `{name}`: use crontab, systemd, kubernetes, cloudflare or vercel"
                )
            })
    }
}

/// What an export needs beyond the schedules.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// The target.
    pub target: Target,
    /// The app's name: units, CronJobs and lock files are named after it.
    pub app: String,
    /// The app's binary as the platform runs it (crontab, systemd, Kubernetes).
    pub bin: String,
    /// The folder the command runs in (crontab and systemd), where `.taskyard/` is.
    pub workdir: String,
    /// The container image (Kubernetes).
    pub image: String,
    /// When the export is made: daylight-saving changes of the ten years after it are
    /// checked.
    pub now: Timestamp,
}

/// One file of an export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportFile {
    /// Its name (`crontab`, `quickstart-nightly.timer`, `vercel.json`, …).
    pub name: String,
    /// Its text.
    pub text: String,
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    /// The files, in order.
    pub files: Vec<ExportFile>,
    /// Things worth knowing that change nothing in the files (a disabled schedule left
    /// out, an `immediate` run the platform has no equivalent of).
    pub notes: Vec<String>,
}

impl Export {
    /// Every file, each after a `# file: NAME` line when there are several.
    pub fn to_text(&self) -> String {
        if let [file] = self.files.as_slice() {
            return file.text.clone();
        }
        self.files
            .iter()
            .map(|file| format!("# file: {}\n{}", file.name, file.text))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A schedule that cannot be exported to a target, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The schedule.
    pub schedule: String,
    /// Why, and what to do instead.
    pub reason: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "schedule `{}`: {}", self.schedule, self.reason)
    }
}

/// Why an export wrote nothing.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ExportError {
    /// The app's definitions are not valid (the same error its start would give).
    #[error(transparent)]
    Invalid(#[from] crate::Error),
    /// Schedules that cannot be written for the target exactly, each with why.
    #[error("Cannot export to {target}:{}", refusals.iter().map(|r| format!("\n  {r}")).collect::<String>())]
    Refused {
        /// The platform.
        target: Target,
        /// Every schedule refused, with its reason.
        refusals: Vec<Refusal>,
    },
}

/// Writes `defs` for `options.target`, or every reason some of them cannot be.
pub(crate) fn export(defs: &[ScheduleDef], options: &ExportOptions) -> Result<Export, Vec<Refusal>> {
    targets::write(defs, options)
}
