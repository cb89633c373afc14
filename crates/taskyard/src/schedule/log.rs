//! The schedule log: one line per trigger, start, success, failure and skip, with run id,
//! schedule, instance and duration, in `.taskyard/logs/schedule.log`, rotated daily.
//!
//! Lines go through a channel to a writer task, so a burst of ticks never waits on the
//! disk. Rotation is written here rather than with `tracing-appender` because that crate
//! dates the live file too (`schedule.log.2026-11-21`); here the live file keeps its
//! name, so `tail -F .taskyard/logs/schedule.log` follows it, and the previous day's lines
//! are renamed to `schedule.log.YYYY-MM-DD`. Several processes sharing the data folder
//! append whole lines to the same file.

use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A handle that queues log lines; cheap to clone. A disabled log drops them.
#[derive(Clone)]
pub(crate) struct ScheduleLog {
    lines: Option<mpsc::UnboundedSender<String>>,
    closed: CancellationToken,
}

impl ScheduleLog {
    pub fn disabled() -> Self {
        ScheduleLog {
            lines: None,
            closed: CancellationToken::new(),
        }
    }

    /// Starts the writer for `path`; it ends once the log is [closed](Self::close) (or
    /// every handle dropped) and the queue is written.
    pub fn open(path: PathBuf) -> (Self, tokio::task::JoinHandle<()>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        let closed = CancellationToken::new();
        let writer = tokio::spawn(write_lines(path, receiver, closed.clone()));
        (
            ScheduleLog {
                lines: Some(sender),
                closed,
            },
            writer,
        )
    }

    /// False for a disabled log, whose lines go nowhere.
    pub fn is_enabled(&self) -> bool {
        self.lines.is_some()
    }

    /// Writes what is queued and stops the writer, even while handles remain (a
    /// `Scheduler` clone kept by the app must not hold its shutdown up).
    pub fn close(&self) {
        self.closed.cancel();
    }

    /// Queues one line: `TIMESTAMP EVENT key=value …`.
    pub fn line(&self, event: &str, fields: &[(&str, &dyn std::fmt::Display)]) {
        let Some(lines) = &self.lines else { return };
        let mut line = format!("{} {event}", Timestamp::now());
        for (key, value) in fields {
            let value = value.to_string();
            // Values with spaces or quotes are quoted, so each line splits on spaces.
            let _ = if value.contains([' ', '"']) || value.is_empty() {
                write!(line, " {key}={value:?}")
            } else {
                write!(line, " {key}={value}")
            };
        }
        line.push('\n');
        let _ = lines.send(line);
    }
}

async fn write_lines(
    path: PathBuf,
    mut receiver: mpsc::UnboundedReceiver<String>,
    closed: CancellationToken,
) {
    let mut batch = Vec::new();
    loop {
        let received = tokio::select! {
            received = receiver.recv_many(&mut batch, 1024) => received,
            _ = closed.cancelled() => {
                receiver.close();
                receiver.recv_many(&mut batch, 1024).await
            }
        };
        if received == 0 {
            break;
        }
        let text: String = batch.drain(..).collect();
        let path = path.clone();
        let written = tokio::task::spawn_blocking(move || append(&path, text.as_bytes())).await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "cannot write the schedule log"),
            Err(error) => tracing::warn!(%error, "the schedule log writer stopped"),
        }
    }
}

fn append(path: &Path, text: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    rotate_if_older_than_today(path);
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    file.write_all(text)
}

/// Renames the live file to `NAME.YYYY-MM-DD` (the UTC day of its last write) when that day
/// is over. Another process may have renamed it first; that is fine.
fn rotate_if_older_than_today(path: &Path) {
    let Ok(modified) = std::fs::metadata(path).and_then(|meta| meta.modified()) else {
        return;
    };
    let Ok(modified) = Timestamp::try_from(modified) else {
        return;
    };
    let day = |t: Timestamp| t.to_zoned(jiff::tz::TimeZone::UTC).date();
    let last_day = day(modified);
    if last_day < day(Timestamp::now()) {
        let mut rotated = path.as_os_str().to_owned();
        rotated.push(format!(".{last_day}"));
        let _ = std::fs::rename(path, rotated);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_are_written_and_yesterdays_file_is_rotated() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("logs/schedule.log");
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, "old line\n").expect("write");
        let yesterday = std::time::SystemTime::now() - std::time::Duration::from_secs(26 * 3600);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|file| file.set_modified(yesterday))
            .expect("set mtime");

        let (log, writer) = ScheduleLog::open(path.clone());
        log.line("trigger", &[("schedule", &"nightly"), ("error", &"two words")]);
        drop(log);
        writer.await.expect("writer ends");

        let live = std::fs::read_to_string(&path).expect("live file");
        assert!(
            live.ends_with(" trigger schedule=nightly error=\"two words\"\n"),
            "{live}"
        );
        let rotated: Vec<_> = std::fs::read_dir(path.parent().expect("parent"))
            .expect("dir")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with("schedule.log."))
            .collect();
        assert_eq!(rotated.len(), 1, "{rotated:?}");
    }
}
