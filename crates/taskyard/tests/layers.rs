//! The crate's layers, checked from its own sources: a module imports only from layers
//! below its own, and two folders never import each other.
//!
//! The table below is the one place the layers are written; `docs/DESIGN.md` shows it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The crate's top-level modules, bottom layer first. A module may import from any layer
/// below its own, never from its own layer or above. `lib.rs` is the root (the facade and
/// the prelude) and may import anything.
const LAYERS: &[&[&str]] = &[
    &["sync", "pattern", "history", "shutdown"],
    &["error", "signal"],
    &["config", "task"],
    &["state"],
    &["store"],
    &["run"],
    &["schedule", "lifecycle"],
    &["http"],
    &["route"],
    &["app"],
];

/// One import that breaks a rule, with the file that makes it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Violation {
    file: String,
    message: String,
}

/// A source file: its path under `src/` (with `/`) and its text.
struct Source {
    path: String,
    text: String,
}

fn read_sources(root: &Path) -> Vec<Source> {
    let mut sources = Vec::new();
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("read the source folder") {
            let path = entry.expect("a folder entry").path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let relative = path.strip_prefix(root).expect("under src");
                sources.push(Source {
                    path: relative.to_string_lossy().replace('\\', "/"),
                    text: std::fs::read_to_string(&path).expect("read a source file"),
                });
            }
        }
    }
    sources.sort_by(|a, b| a.path.cmp(&b.path));
    sources
}

/// The text without comments, so doc links and prose do not count as imports.
fn code_of(text: &str) -> String {
    let mut code = String::with_capacity(text.len());
    for line in text.lines() {
        let line = match line.find("//") {
            // `//` inside a string (a URL) is rare in lines that import; cutting there only
            // drops text, it never invents an import.
            Some(at) => &line[..at],
            None => line,
        };
        code.push_str(line);
        code.push('\n');
    }
    code
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn ident_at(code: &str) -> &str {
    let end = code.find(|c: char| !is_ident(c)).unwrap_or(code.len());
    &code[..end]
}

/// Every path the code reaches through `crate::`, as its segments: `crate::a::b` gives
/// `[a, b]`, and each item of a `crate::{a::b, c}` group gives its own path.
fn crate_paths(code: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let mut from = 0;
    while let Some(found) = code[from..].find("crate::") {
        let at = from + found;
        from = at + "crate::".len();
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| is_ident(c) || c == '$') {
            continue;
        }
        paths.extend(paths_from(&code[from..]));
    }
    paths
}

/// The paths written at the start of `code`: `a::b::c` or a `{…}` group of them.
fn paths_from(code: &str) -> Vec<Vec<String>> {
    let code = code.trim_start();
    if let Some(group) = code.strip_prefix('{') {
        let mut depth = 0;
        let mut items = Vec::new();
        let mut start = 0;
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    items.push(&group[start..i]);
                    break;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    items.push(&group[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        return items
            .into_iter()
            .filter(|item| !item.trim().is_empty())
            .flat_map(paths_from)
            .collect();
    }
    let mut segments = Vec::new();
    let mut rest = code;
    loop {
        let ident = ident_at(rest);
        if ident.is_empty() {
            if rest.starts_with('{') {
                return paths_from(rest)
                    .into_iter()
                    .map(|tail| segments.iter().cloned().chain(tail).collect())
                    .collect();
            }
            break;
        }
        segments.push(ident.to_owned());
        rest = &rest[ident.len()..];
        match rest.strip_prefix("::") {
            Some(next) => rest = next,
            None => break,
        }
    }
    if segments.is_empty() {
        Vec::new()
    } else {
        vec![segments]
    }
}

/// The module path of a file: `store/memory.rs` → `[store, memory]`, `store/mod.rs` →
/// `[store]`, `lib.rs` → `[]`.
fn module_path(path: &str) -> Vec<String> {
    let mut segments: Vec<String> = path
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_owned)
        .collect();
    if matches!(segments.last().map(String::as_str), Some("mod" | "lib")) {
        segments.pop();
    }
    segments
}

/// Every path the code reaches through `super::`, made absolute from the file's module
/// (`super::super::run::x` in `store/memory.rs` is `run::x`). The file's unit tests are
/// left out: their `super` is the file itself.
fn super_paths(code: &str, module: &[String]) -> Vec<Vec<String>> {
    let code = match code.find("#[cfg(test)]\nmod tests") {
        Some(at) => &code[..at],
        None => code,
    };
    let mut paths = Vec::new();
    let mut from = 0;
    while let Some(found) = code[from..].find("super::") {
        let at = from + found;
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| is_ident(c) || c == ':') {
            from = at + "super::".len();
            continue;
        }
        let mut ups = 0;
        let mut rest = &code[at..];
        while let Some(next) = rest.strip_prefix("super::") {
            ups += 1;
            rest = next;
        }
        from = code.len() - rest.len();
        let Some(base) = module.len().checked_sub(ups) else {
            continue;
        };
        for tail in paths_from(rest) {
            let absolute: Vec<String> = module[..base].iter().cloned().chain(tail).collect();
            if !absolute.is_empty() {
                paths.push(absolute);
            }
        }
    }
    paths
}

/// The names `lib.rs` re-exports at the root, with the module each comes from.
fn root_exports(lib: &str) -> BTreeMap<String, String> {
    let mut exports = BTreeMap::new();
    let code = code_of(lib);
    for statement in code.split(';') {
        let Some(used) = statement.trim().strip_prefix("pub use ") else {
            continue;
        };
        for path in paths_from(used) {
            let path = match path.first().map(String::as_str) {
                Some("crate") => &path[1..],
                _ => &path[..],
            };
            if let [module, .., name] = path {
                exports.insert(name.clone(), module.clone());
            }
        }
    }
    exports
}

/// The names `#[macro_export]` macros take at the root, with the module defining each.
fn root_macros(sources: &[Source]) -> BTreeMap<String, String> {
    let mut macros = BTreeMap::new();
    for source in sources {
        let code = code_of(&source.text);
        let mut rest = code.as_str();
        while let Some(at) = rest.find("#[macro_export]") {
            rest = &rest[at..];
            if let Some(rules) = rest.find("macro_rules!") {
                let name = ident_at(rest[rules + "macro_rules!".len()..].trim_start());
                macros.insert(name.to_owned(), top_module(&source.path));
            }
            rest = &rest["#[macro_export]".len()..];
        }
    }
    macros
}

/// `run/gate.rs` → `run`; `app.rs` → `app`; `lib.rs` → `lib`.
fn top_module(path: &str) -> String {
    let first = path.split('/').next().unwrap_or(path);
    first.trim_end_matches(".rs").to_owned()
}

/// The folder a file's module sits in: `http/front/cache.rs` → `http/front`,
/// `http/front/mod.rs` → `http/front`, `app.rs` → `` (the root).
fn folder_of(path: &str) -> String {
    match path.rfind('/') {
        Some(at) => path[..at].to_owned(),
        None => String::new(),
    }
}

/// The folder a `crate::` path leads into: the deepest folder among its leading segments.
fn target_folder(segments: &[String], folders: &BTreeSet<String>) -> String {
    let mut folder = String::new();
    for segment in segments {
        let deeper = if folder.is_empty() {
            segment.clone()
        } else {
            format!("{folder}/{segment}")
        };
        if !folders.contains(&deeper) {
            break;
        }
        folder = deeper;
    }
    folder
}

fn nested(a: &str, b: &str) -> bool {
    a.is_empty()
        || b.is_empty()
        || a == b
        || b.starts_with(&format!("{a}/"))
        || a.starts_with(&format!("{b}/"))
}

/// Every import in `sources` that breaks a rule.
fn check(sources: &[Source], layers: &[&[&str]]) -> Vec<Violation> {
    let layer_of: BTreeMap<&str, usize> = layers
        .iter()
        .enumerate()
        .flat_map(|(layer, modules)| modules.iter().map(move |module| (*module, layer)))
        .collect();
    let lib = sources
        .iter()
        .find(|s| s.path == "lib.rs")
        .map_or("", |s| s.text.as_str());
    let exports = root_exports(lib);
    let macros = root_macros(sources);
    let folders: BTreeSet<String> = sources
        .iter()
        .map(|s| folder_of(&s.path))
        .filter(|f| !f.is_empty())
        .collect();

    let mut violations = Vec::new();
    let mut folder_edges: BTreeMap<(String, String), String> = BTreeMap::new();
    for source in sources {
        let module = top_module(&source.path);
        if module == "lib" {
            continue;
        }
        let Some(&layer) = layer_of.get(module.as_str()) else {
            violations.push(Violation {
                file: source.path.clone(),
                message: format!("module `{module}` is not in the layer table; add it to LAYERS"),
            });
            continue;
        };
        let code = code_of(&source.text);
        let mut paths = crate_paths(&code);
        paths.extend(super_paths(&code, &module_path(&source.path)));
        for path in paths {
            let first = path[0].as_str();
            let target = if layer_of.contains_key(first) {
                first.to_owned()
            } else if let Some(module) = exports.get(first).or_else(|| macros.get(first)) {
                module.clone()
            } else if first.starts_with("__") {
                // The root's hidden re-exports for generated code.
                continue;
            } else {
                violations.push(Violation {
                    file: source.path.clone(),
                    message: format!(
                        "`crate::{}` names no module and no root re-export",
                        path.join("::")
                    ),
                });
                continue;
            };
            if target == module {
                let from = folder_of(&source.path);
                let to = target_folder(&path, &folders);
                if !nested(&from, &to) {
                    folder_edges
                        .entry((from, to))
                        .or_insert_with(|| source.path.clone());
                }
                continue;
            }
            let Some(&target_layer) = layer_of.get(target.as_str()) else {
                violations.push(Violation {
                    file: source.path.clone(),
                    message: format!(
                        "`crate::{}` leads to `{target}`, which has no layer",
                        path.join("::")
                    ),
                });
                continue;
            };
            if target_layer >= layer {
                let which = if target_layer == layer {
                    "its own layer"
                } else {
                    "a layer above"
                };
                violations.push(Violation {
                    file: source.path.clone(),
                    message: format!(
                        "`{module}` (layer {layer}) imports `crate::{}` from `{target}`, {which} (layer {target_layer})",
                        path.join("::")
                    ),
                });
            }
        }
    }
    for ((from, to), file) in &folder_edges {
        if let Some(back) = folder_edges.get(&(to.clone(), from.clone()))
            && from < to
        {
            violations.push(Violation {
                file: file.clone(),
                message: format!("folders `{from}` and `{to}` import each other (also {back})"),
            });
        }
    }
    violations.sort();
    violations.dedup();
    violations
}

fn crate_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn every_module_imports_only_from_the_layers_below_it() {
    let sources = read_sources(&crate_src());
    assert!(sources.len() > 50, "found only {} source files", sources.len());
    let violations = check(&sources, LAYERS);
    assert!(
        violations.is_empty(),
        "imports that break the layers:\n{}",
        violations
            .iter()
            .map(|v| format!("  {}: {}", v.file, v.message))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn every_top_level_module_has_a_layer() {
    let sources = read_sources(&crate_src());
    let modules: BTreeSet<String> = sources.iter().map(|s| top_module(&s.path)).collect();
    let listed: BTreeSet<String> = LAYERS
        .iter()
        .flat_map(|l| l.iter().map(|m| (*m).to_owned()))
        .collect();
    let missing: Vec<_> = modules
        .iter()
        .filter(|m| *m != "lib" && !listed.contains(*m))
        .collect();
    let gone: Vec<_> = listed.iter().filter(|m| !modules.contains(*m)).collect();
    assert!(missing.is_empty(), "modules without a layer: {missing:?}");
    assert!(gone.is_empty(), "layers name modules that do not exist: {gone:?}");
}

/// A made-up crate to show the checker catches what it is for.
fn fake(files: &[(&str, &str)]) -> Vec<Source> {
    files
        .iter()
        .map(|(path, text)| Source {
            path: (*path).to_owned(),
            text: (*text).to_owned(),
        })
        .collect()
}

const FAKE_LAYERS: &[&[&str]] = &[&["low"], &["mid", "side"], &["high"]];

#[test]
fn the_checker_finds_upward_and_same_layer_imports() {
    let sources = fake(&[
        ("lib.rs", "pub use high::Top;\npub use mid::{Middle, Other};"),
        (
            "low.rs",
            "use crate::Top; // an upward import through a root re-export\n",
        ),
        (
            "mid/mod.rs",
            "use crate::{low::Base, high::{Top, Tip}};\n/// crate::high in a comment is no import\n",
        ),
        ("side.rs", "use crate::mid::Middle;\n"),
        ("high.rs", "use crate::{low, mid::Middle};\n"),
    ]);
    let violations = check(&sources, FAKE_LAYERS);
    let found: Vec<_> = violations.iter().map(|v| v.message.as_str()).collect();
    assert_eq!(found.len(), 4, "{violations:#?}");
    assert!(
        found[0].contains("`low` (layer 0) imports `crate::Top` from `high`, a layer above"),
        "{found:#?}"
    );
    assert!(
        found[1].contains("imports `crate::high::Tip` from `high`"),
        "{found:#?}"
    );
    assert!(
        found[2].contains("imports `crate::high::Top` from `high`"),
        "{found:#?}"
    );
    assert!(
        found[3].contains("`side` (layer 1) imports `crate::mid::Middle` from `mid`, its own layer"),
        "{found:#?}"
    );
}

#[test]
fn the_checker_finds_folders_that_import_each_other() {
    let sources = fake(&[
        ("lib.rs", ""),
        ("high/mod.rs", "mod a;\nmod b;\n"),
        ("high/a/mod.rs", "use crate::high::b::Thing;\n"),
        (
            "high/b/mod.rs",
            "use crate::high::a::Other;\nuse crate::high::Parent;\n",
        ),
        ("low.rs", ""),
        ("mid.rs", ""),
        ("side.rs", ""),
    ]);
    let violations = check(&sources, FAKE_LAYERS);
    assert_eq!(violations.len(), 1, "{violations:#?}");
    assert!(
        violations[0]
            .message
            .contains("`high/a` and `high/b` import each other"),
        "{violations:#?}"
    );
}

#[test]
fn the_checker_follows_super_paths_out_of_a_folder() {
    let sources = fake(&[
        ("lib.rs", ""),
        ("low/mod.rs", "mod deep;\nuse super::low::Fine;\n"),
        (
            "low/deep.rs",
            "use super::Sibling;\nuse super::super::high::Top;\n#[cfg(test)]\nmod tests {\n    use super::super::Tested;\n}\n",
        ),
        ("mid.rs", ""),
        ("side.rs", ""),
        ("high.rs", ""),
    ]);
    let violations = check(&sources, FAKE_LAYERS);
    assert_eq!(violations.len(), 1, "{violations:#?}");
    assert!(
        violations[0]
            .message
            .contains("imports `crate::high::Top` from `high`"),
        "{violations:#?}"
    );
}

#[test]
fn the_checker_names_paths_it_cannot_place() {
    let sources = fake(&[("lib.rs", ""), ("low.rs", "use crate::nowhere::Thing;\n")]);
    let violations = check(&sources, FAKE_LAYERS);
    assert_eq!(violations.len(), 1, "{violations:#?}");
    assert!(
        violations[0].message.contains("crate::nowhere::Thing"),
        "{violations:#?}"
    );
}

/// Longer than this, a file usually holds two concepts (see `docs/DESIGN.md`).
const MAX_LINES: usize = 550;

#[test]
fn no_source_file_in_the_workspace_grows_past_the_limit() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut long = Vec::new();
    for entry in std::fs::read_dir(&crates).expect("read crates/") {
        let src = entry.expect("a crate").path().join("src");
        if !src.is_dir() {
            continue;
        }
        for source in read_sources(&src) {
            let lines = source.text.lines().count();
            if lines > MAX_LINES {
                long.push(format!("{}/{}: {lines} lines", src.display(), source.path));
            }
        }
    }
    assert!(
        long.is_empty(),
        "files past {MAX_LINES} lines:\n{}",
        long.join("\n")
    );
}
