//! Finding middleware files and ordering them.
//!
//! Every `.rs` file under `src/middleware/` runs for every request, in file-name order where
//! a leading number sorts as a number: `2.auth.rs` before `10.log.rs` (Nitro sorts them as
//! text, so `10.log` would come first), and numbered files before the others.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};

use crate::route::slash_path;

/// A middleware file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MiddlewareFile {
    /// The file as shown in messages, e.g. `src/middleware/2.auth.rs`.
    pub file: String,
    /// The file, relative to the crate root.
    pub path: PathBuf,
}

/// Every middleware file under `src/middleware/` of the crate at `manifest_dir`, in the
/// order they run.
pub fn scan_middleware(manifest_dir: &Path) -> Result<Vec<MiddlewareFile>, String> {
    let root = manifest_dir.join("src").join("middleware");
    let mut files = Vec::new();
    crate::scan::walk_files(&root, &root, &mut files).map_err(|e| e.to_string())?;
    files.retain(|f| f.extension().is_some_and(|e| e == "rs"));
    let mut names: Vec<String> = files.iter().map(|f| slash_path(f)).collect();
    names.sort_by(|a, b| middleware_order(a, b));
    Ok(names
        .into_iter()
        .map(|name| MiddlewareFile {
            file: format!("src/middleware/{name}"),
            path: Path::new("src").join("middleware").join(&name),
        })
        .collect())
}

/// The order of two middleware file names (relative to `src/middleware/`): segment by
/// segment, a leading number compares as a number, numbered names first, then as text.
///
/// ```
/// use std::cmp::Ordering;
/// use taskyard_build::middleware_order;
///
/// assert_eq!(middleware_order("2.auth.rs", "10.log.rs"), Ordering::Less);
/// assert_eq!(middleware_order("9.x.rs", "auth.rs"), Ordering::Less);
/// assert_eq!(middleware_order("auth.rs", "log.rs"), Ordering::Less);
/// ```
pub fn middleware_order(a: &str, b: &str) -> Ordering {
    let key = |name: &str| -> (u64, String) {
        let digits: String = name.chars().take_while(char::is_ascii_digit).collect();
        let number = digits.parse::<u64>().unwrap_or(u64::MAX);
        (number, name.to_owned())
    };
    let mut left = a.split('/');
    let mut right = b.split('/');
    loop {
        match (left.next(), right.next()) {
            (Some(x), Some(y)) => match key(x).cmp(&key(y)) {
                Ordering::Equal => continue,
                other => return other,
            },
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (None, None) => return Ordering::Equal,
        }
    }
}
