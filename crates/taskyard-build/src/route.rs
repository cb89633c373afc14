//! Naming route files: how `src/routes/users/[id].post.rs` becomes `POST /users/{id}`.
//!
//! Nitro's rules (its `scanServerRoutes`), in axum's path syntax:
//!
//! | file (under `src/routes/`, or `src/api/` with `/api`) | route | method | build |
//! |---|---|---|---|
//! | `index.rs` | `/` | any | any |
//! | `users/[id].post.rs` | `/users/{id}` | POST | any |
//! | `hello/[...name].rs` | `/hello/{*name}` (`name` = `a/b/c`) | any | any |
//! | `[...].rs` | `/{*_}` | any | any |
//! | `env/index.get.prod.rs` | `/env` | GET | release |
//! | `api/(admin)/users.rs` | `/api/users` | any | any |
//! | `og.png.rs` | `/og.png` | any | any |
//!
//! A method suffix comes before an environment suffix (`.get.dev.rs`); both are lowercase.
//! Characters of a parameter name outside letters, digits, `_` and `-` become `_`. Unlike
//! Nitro, a segment with two parameters (`[a]-[b].rs`) or a catch-all before the last
//! segment is refused with the file named, rather than giving a route that never matches.

use std::fmt;
use std::path::{Component, Path};

/// The HTTP methods a file suffix may name.
pub const METHODS: &[&str] = &[
    "connect", "delete", "get", "head", "options", "patch", "post", "put", "trace",
];

/// Which builds a route exists in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteEnv {
    /// Every build.
    Any,
    /// `.dev`: debug builds only.
    Dev,
    /// `.prod`: release builds only.
    Prod,
}

impl RouteEnv {
    /// True if a route of this environment exists in a build with `debug_assertions` as
    /// given.
    pub fn active(self, debug: bool) -> bool {
        match self {
            RouteEnv::Any => true,
            RouteEnv::Dev => debug,
            RouteEnv::Prod => !debug,
        }
    }
}

/// What a route file declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    /// The path in axum's syntax: `/users/{id}`, `/hello/{*name}`.
    pub path: String,
    /// The method in capitals, or `None` for every method.
    pub method: Option<String>,
    /// The builds it is served in (`.dev` / `.prod` in its name).
    pub env: RouteEnv,
    /// The path parameters, in order (a catch-all's name included).
    pub params: Vec<String>,
}

impl fmt::Display for RouteSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method.as_deref().unwrap_or("*"), self.path)?;
        match self.env {
            RouteEnv::Any => Ok(()),
            RouteEnv::Dev => f.write_str(" (debug builds)"),
            RouteEnv::Prod => f.write_str(" (release builds)"),
        }
    }
}

/// The route a file declares, for a path relative to its folder (`src/routes/` with
/// `prefix` `""`, `src/api/` with `"/api"`). `Ok(None)` for files that are not routes (not
/// `.rs`, hidden); an error names what is wrong with the name.
///
/// ```
/// use std::path::Path;
/// use taskyard_build::route_from_file;
///
/// let route = route_from_file(Path::new("users/[id].post.rs"), "").unwrap().unwrap();
/// assert_eq!((route.path.as_str(), route.method.as_deref()), ("/users/{id}", Some("POST")));
/// ```
pub fn route_from_file(relative: &Path, prefix: &str) -> Result<Option<RouteSpec>, String> {
    let mut segments = Vec::new();
    for component in relative.components() {
        match component {
            Component::Normal(part) => match part.to_str() {
                Some(part) if part.starts_with('.') => return Ok(None),
                Some(part) => segments.push(part),
                None => return Err("the file name is not UTF-8".to_owned()),
            },
            _ => return Ok(None),
        }
    }
    let Some(last) = segments.pop() else {
        return Ok(None);
    };
    let Some(mut stem) = last.strip_suffix(".rs") else {
        return Ok(None);
    };
    let mut env = RouteEnv::Any;
    if let Some(rest) = stem.strip_suffix(".dev") {
        (stem, env) = (rest, RouteEnv::Dev);
    } else if let Some(rest) = stem.strip_suffix(".prod") {
        (stem, env) = (rest, RouteEnv::Prod);
    }
    let mut method = None;
    if let Some((rest, suffix)) = stem.rsplit_once('.')
        && METHODS.contains(&suffix)
    {
        stem = rest;
        method = Some(suffix.to_ascii_uppercase());
    }
    segments.push(stem);
    // Route groups, `(admin)/`, only organise files.
    segments.retain(|segment| !(segment.starts_with('(') && segment.ends_with(')')));
    if segments.last() == Some(&"index") {
        segments.pop();
    }
    let mut path = prefix.trim_end_matches('/').to_owned();
    let mut params = Vec::new();
    let count = segments.len();
    for (index, segment) in segments.into_iter().enumerate() {
        path.push('/');
        path.push_str(&segment_pattern(segment, index + 1 == count, &mut params)?);
    }
    if path.is_empty() {
        path.push('/');
    }
    Ok(Some(RouteSpec {
        path,
        method,
        env,
        params,
    }))
}

/// One segment in axum's syntax, adding its parameter to `params`.
fn segment_pattern(segment: &str, last: bool, params: &mut Vec<String>) -> Result<String, String> {
    if segment.contains('{') || segment.contains('}') {
        return Err(format!(
            "`{segment}` contains `{{` or `}}`; write parameters as `[name]`"
        ));
    }
    let opens = segment.matches('[').count();
    if opens == 0 {
        return Ok(segment.to_owned());
    }
    let inner = segment
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .filter(|inner| opens == 1 && !inner.contains(']'))
        .ok_or_else(|| {
            format!(
                "`{segment}` is not a parameter segment: a parameter takes a whole segment (`[id]`, `[...rest]`); \
                 use one parameter per file or folder name"
            )
        })?;
    if let Some(rest) = inner.strip_prefix("...") {
        if !last {
            return Err(format!(
                "`{segment}` catches the rest of the path, so it must be the last part of the route"
            ));
        }
        let name = if rest.is_empty() {
            "_".to_owned()
        } else {
            param_name(rest)
        };
        params.push(name.clone());
        return Ok(format!("{{*{name}}}"));
    }
    if inner.is_empty() {
        return Err("`[]` has no parameter name; write `[id]`".to_owned());
    }
    let name = param_name(inner);
    params.push(name.clone());
    Ok(format!("{{{name}}}"))
}

/// Nitro's rule: characters outside `[A-Za-z0-9_-]` become `_`.
fn param_name(raw: &str) -> String {
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A route file and what it declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteFile {
    /// The file as shown in messages, e.g. `src/api/users/[id].get.rs`.
    pub file: String,
    /// What it declares.
    pub spec: RouteSpec,
}

/// Two route files that cannot both be served in one build, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteConflict {
    /// The first file.
    pub first: String,
    /// The file that clashes with it.
    pub second: String,
    /// Why they cannot both be served.
    pub reason: String,
}

impl fmt::Display for RouteConflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} and {} {}", self.first, self.second, self.reason)
    }
}

/// The pairs of files that clash in a build (`debug`: a debug build): the same route,
/// method and environment — Nitro lets the first silently win, so `src/api/x.rs` hides
/// `src/routes/api/x.rs`; here both are named — or the same path with its parameters named
/// differently, which one router cannot hold.
pub fn route_conflicts(files: &[RouteFile], debug: bool) -> Vec<RouteConflict> {
    let active: Vec<&RouteFile> = files.iter().filter(|f| f.spec.env.active(debug)).collect();
    let mut conflicts = Vec::new();
    for (index, a) in active.iter().enumerate() {
        for b in &active[index + 1..] {
            let reason = if shape(&a.spec.path) != shape(&b.spec.path) {
                match differently_named(&a.spec.path, &b.spec.path) {
                    Some((x, y)) => format!(
                        "name the parameter at the same place differently (`{x}` in {} and `{y}` in {}), which one router cannot hold; name them the same",
                        a.spec.path, b.spec.path
                    ),
                    None => continue,
                }
            } else if a.spec.path != b.spec.path {
                format!(
                    "declare the same path with different parameter names ({} and {}); name them the same",
                    a.spec.path, b.spec.path
                )
            } else if a.spec.method == b.spec.method {
                format!("both declare {}; rename or remove one of them", a.spec)
            } else {
                continue;
            };
            conflicts.push(RouteConflict {
                first: a.file.clone(),
                second: b.file.clone(),
                reason,
            });
        }
    }
    conflicts
}

/// The first parameters of the same kind, at the same place after the same segments, that
/// are named differently: (`{id}`, `{uid}`) for `/users/{id}` and `/users/{uid}/posts`.
fn differently_named<'a>(a: &'a str, b: &'a str) -> Option<(&'a str, &'a str)> {
    for (x, y) in a.split('/').zip(b.split('/')) {
        let kind = |s: &str| match s.strip_prefix("{*") {
            Some(_) => 2,
            None if s.starts_with('{') => 1,
            None => 0,
        };
        match (kind(x), kind(y)) {
            (0, 0) if x == y => continue,
            (k, l) if k == l && k > 0 => {
                if x != y {
                    return Some((x, y));
                }
            }
            _ => return None,
        }
    }
    None
}

/// The path with parameter names erased: `/users/{}` for `/users/{id}`.
fn shape(path: &str) -> String {
    path.split('/')
        .map(|segment| match segment.strip_prefix("{*") {
            Some(_) => "{*}",
            None if segment.starts_with('{') => "{}",
            None => segment,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// A route file found on disk, with what it declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSource {
    /// The file and what it declares.
    pub route: RouteFile,
    /// The file, relative to the crate root.
    pub path: std::path::PathBuf,
    /// True if the file declares `route_meta!`.
    pub has_meta: bool,
}

/// Every route file under `src/routes/` (at `/`) and `src/api/` (at `/api`) of the crate at
/// `manifest_dir`, `src/api/` first, each folder sorted by path. An error names the file
/// whose name cannot be a route and why.
pub fn scan_routes(manifest_dir: &Path) -> Result<Vec<RouteSource>, String> {
    let mut routes = Vec::new();
    for (folder, prefix) in [("api", "/api"), ("routes", "")] {
        let root = manifest_dir.join("src").join(folder);
        let mut files = Vec::new();
        crate::scan::walk_files(&root, &root, &mut files).map_err(|e| e.to_string())?;
        files.sort();
        for relative in files {
            let shown = format!("src/{folder}/{}", slash_path(&relative));
            let spec = match route_from_file(&relative, prefix) {
                Ok(Some(spec)) => spec,
                Ok(None) => continue,
                Err(reason) => return Err(format!("{shown} cannot be a route: {reason}")),
            };
            let text = std::fs::read_to_string(root.join(&relative))
                .map_err(|e| format!("cannot read {shown}: {e}"))?;
            routes.push(RouteSource {
                route: RouteFile { file: shown, spec },
                path: Path::new("src").join(folder).join(&relative),
                has_meta: declares_macro(&text, "route_meta!"),
            });
        }
    }
    Ok(routes)
}

/// True if a line of `text` starts with `name` (optionally behind a path such as
/// `taskyard::`): the file declares that macro at its top level.
pub(crate) fn declares_macro(text: &str, name: &str) -> bool {
    let qualified = format!("taskyard::{name}");
    text.lines().any(|line| {
        let line = line.trim_start();
        line.starts_with(name) || line.starts_with(&qualified)
    })
}

/// A relative path with `/` separators, as shown in messages.
pub(crate) fn slash_path(path: &Path) -> String {
    path.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}
