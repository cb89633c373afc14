//! `TASKYARD_DATA_DIR/dev.json`: where the apps serving from a data folder can be reached,
//! for the `taskyard` command line (like Nitro's dev-info file).
//!
//! Several instances may serve from one folder (sharing its SQLite file), so the file
//! lists one entry per instance: each adds itself when it starts serving and removes itself
//! when it stops, under a lock on `dev.json.lock`, dropping entries of processes that are
//! gone. The file is deleted when its last entry goes. The command line picks a live entry.

use std::fs::File;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::data_dir;

/// One serving instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DevInfo {
    /// The process id of the instance.
    pub pid: u32,
    /// The URL it listens on, e.g. `http://127.0.0.1:3000`.
    pub url: String,
    /// Its instance id (a UUID), as in run records.
    pub instance: String,
    /// When it started listening.
    pub started_at: jiff::Timestamp,
}

/// The file: every instance serving from the folder.
#[derive(Debug, Default, Serialize, Deserialize)]
struct DevFile {
    instances: Vec<DevInfo>,
}

/// This instance's entry; removed from the file when dropped.
#[derive(Debug)]
pub(crate) struct DevInfoFile {
    path: PathBuf,
    instance: String,
}

impl DevInfo {
    /// The file's path for this process's data folder.
    pub fn path() -> PathBuf {
        data_dir().join("dev.json")
    }

    /// The instances listed in the file at `path`, whether or not they still run. Reads
    /// the one-entry format of earlier versions too.
    pub fn read_all(path: &Path) -> Result<Vec<DevInfo>, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
        parse(&text).map_err(|error| {
            format!(
                "{} is not a dev-info file ({error}); delete it and start the app again",
                path.display()
            )
        })
    }

    /// Adds this instance, listening on `local`, to the file. Failing to only costs the
    /// command line's discovery, so it is logged, not fatal.
    pub(crate) fn write(local: SocketAddr, instance: &str) -> Option<DevInfoFile> {
        let host = match local.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::from([127, 0, 0, 1]),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        let info = DevInfo {
            pid: std::process::id(),
            url: format!("http://{}", SocketAddr::new(host, local.port())),
            instance: instance.to_owned(),
            started_at: jiff::Timestamp::now(),
        };
        let path = DevInfo::path();
        let written = update(&path, |entries| {
            entries.retain(|entry| entry.instance != info.instance && process_alive(entry.pid));
            entries.push(info.clone());
        });
        match written {
            Ok(()) => Some(DevInfoFile {
                path,
                instance: info.instance,
            }),
            Err(error) => {
                tracing::warn!(%error, path = %path.display(), "cannot write the dev-info file; `taskyard` will need --url");
                None
            }
        }
    }
}

impl Drop for DevInfoFile {
    fn drop(&mut self) {
        let removed = update(&self.path, |entries| {
            entries.retain(|entry| entry.instance != self.instance && process_alive(entry.pid));
        });
        if let Err(error) = removed {
            // Left behind, it would point the command line at a process that is gone.
            tracing::warn!(%error, path = %self.path.display(), "cannot remove the dev-info file; delete it by hand");
            eprintln!(
                "taskyard: cannot remove {} ({error}); delete it by hand",
                self.path.display()
            );
        }
    }
}

fn parse(text: &str) -> Result<Vec<DevInfo>, serde_json::Error> {
    match serde_json::from_str::<DevFile>(text) {
        Ok(file) => Ok(file.instances),
        Err(error) => serde_json::from_str::<DevInfo>(text)
            .map(|one| vec![one])
            .map_err(|_| error),
    }
}

/// Changes the entries of the file at `path` under its lock; writes the result aside and
/// renames it over the file (so a reader never sees half of it), or deletes the file when
/// no entry is left.
fn update(path: &Path, change: impl FnOnce(&mut Vec<DevInfo>)) -> std::io::Result<()> {
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder)?;
    }
    let lock = File::create(path.with_extension("json.lock"))?;
    lock.lock()?;
    let mut entries = match std::fs::read_to_string(path) {
        Ok(text) => parse(&text).unwrap_or_default(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(error) => return Err(error),
    };
    change(&mut entries);
    let result = if entries.is_empty() {
        match std::fs::remove_file(path) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error),
            _ => Ok(()),
        }
    } else {
        let text =
            serde_json::to_string_pretty(&DevFile { instances: entries }).map_err(std::io::Error::other)?;
        let partial = path.with_extension("json.partial");
        std::fs::write(&partial, text).and_then(|()| std::fs::rename(&partial, path))
    };
    drop(lock);
    result
}

/// Whether a process with this pid exists. Linux answers through `/proc`; elsewhere an
/// entry is kept, and a dead app shows up as a connection error instead.
pub fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_formats_are_read() {
        let one =
            r#"{"pid":1,"url":"http://127.0.0.1:3000","instance":"a","started_at":"2026-11-30T00:00:00Z"}"#;
        assert_eq!(parse(one).expect("old format").len(), 1);
        let many = format!(r#"{{"instances":[{one},{one}]}}"#);
        assert_eq!(parse(&many).expect("new format").len(), 2);
    }

    #[test]
    fn instances_add_and_remove_themselves_and_the_last_deletes_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("dev.json");
        let entry = |instance: &str| DevInfo {
            pid: std::process::id(),
            url: "http://127.0.0.1:1".into(),
            instance: instance.into(),
            started_at: jiff::Timestamp::now(),
        };
        update(&path, |entries| entries.push(entry("a"))).expect("a");
        update(&path, |entries| entries.push(entry("b"))).expect("b");
        let listed: Vec<String> = DevInfo::read_all(&path)
            .expect("read")
            .into_iter()
            .map(|e| e.instance)
            .collect();
        assert_eq!(listed, ["a", "b"]);
        update(&path, |entries| entries.retain(|e| e.instance != "a")).expect("a leaves");
        assert_eq!(DevInfo::read_all(&path).expect("read").len(), 1);
        update(&path, |entries| entries.retain(|e| e.instance != "b")).expect("b leaves");
        assert!(!path.exists(), "the last one deletes the file");
    }
}
