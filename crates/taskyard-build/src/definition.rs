//! Checks that every source file defines the function the generated code calls, before
//! rustc sees that code.
//!
//! Without it, a misnamed or private function fails inside the generated file, in
//! rustc's words about a module the user never wrote (`function task is private`, or a
//! suggestion to import another file's `task`, which would silently run the wrong body).
//! The check reads the file's text: it looks for the one function the kind of file must
//! define and says exactly what to write when it is missing or private.

use std::path::Path;

use crate::AppSources;

/// What one kind of file must define.
struct Expected {
    /// The function's name.
    name: &'static str,
    /// The signature to show in the message.
    signature: &'static str,
}

const TASK: Expected = Expected {
    name: "task",
    signature: "pub fn task() -> Task",
};
const SCHEDULE: Expected = Expected {
    name: "schedule",
    signature: "pub fn schedule() -> Schedule",
};
const MIDDLEWARE: Expected = Expected {
    name: "middleware",
    signature: "pub async fn middleware(request: Request, next: Next) -> Response",
};
const ROUTE: Expected = Expected {
    name: "handler",
    signature: "pub async fn handler(..) -> impl IntoResponse (any axum handler)",
};

/// Every file of `app` that does not define what it must, one message each.
pub fn check_definitions(manifest_dir: &Path, app: &AppSources) -> Vec<String> {
    let mut files: Vec<(&Path, &Expected)> = Vec::new();
    files.extend(app.tasks.iter().map(|file| (file.path.as_path(), &TASK)));
    files.extend(app.schedules.iter().map(|file| (file.path.as_path(), &SCHEDULE)));
    files.extend(
        app.middleware
            .iter()
            .map(|file| (file.path.as_path(), &MIDDLEWARE)),
    );
    files.extend(app.routes.iter().map(|source| (source.path.as_path(), &ROUTE)));
    files
        .into_iter()
        .filter_map(|(path, expected)| {
            let shown = path
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            let text = match std::fs::read_to_string(manifest_dir.join(path)) {
                Ok(text) => text,
                Err(error) => return Some(format!("{shown}: cannot be read: {error}")),
            };
            problem(&text, expected).map(|problem| format!("{shown}: {problem}"))
        })
        .collect()
}

/// What is wrong with `text` for `expected`, or `None` when it defines it.
fn problem(text: &str, expected: &Expected) -> Option<String> {
    let functions = functions(text);
    match functions.iter().find(|f| f.name == expected.name) {
        Some(found) if found.public => None,
        Some(_) => Some(format!(
            "`fn {}` must be public for the app to call it: write `{}`",
            expected.name, expected.signature
        )),
        None => {
            let public: Vec<String> = functions
                .iter()
                .filter(|f| f.public)
                .map(|f| format!("`{}`", f.name))
                .collect();
            let found = match public.as_slice() {
                [] => String::new(),
                [one] => format!("; found {one}, rename it to `{}`", expected.name),
                many => format!("; found {}", many.join(", ")),
            };
            Some(format!("expected `{}`{found}", expected.signature))
        }
    }
}

/// A top-level function the file defines.
struct Function<'a> {
    name: &'a str,
    public: bool,
}

/// The functions `text` defines or re-exports at the start of a line (top level, as
/// rustfmt writes them), with comments left out.
fn functions(text: &str) -> Vec<Function<'_>> {
    text.lines()
        .filter_map(|line| {
            let code = line.split("//").next().unwrap_or("");
            // Items nested in a block are indented; the file's own are not.
            if code.starts_with(char::is_whitespace) {
                return None;
            }
            // `pub use crate::hello as handler;` defines `handler` too.
            if let Some(path) = code.strip_prefix("pub use ") {
                let path = path.trim().trim_end_matches(';').trim();
                let name = match path.rsplit_once(" as ") {
                    Some((_, alias)) => alias.trim(),
                    None => path.rsplit("::").next().unwrap_or(path).trim(),
                };
                return Some(Function { name, public: true });
            }
            let before_fn = code.find("fn ")?;
            let (head, rest) = code.split_at(before_fn);
            let name_end = rest[3..]
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .map_or(rest.len(), |end| end + 3);
            let name = &rest[3..name_end];
            let words: Vec<&str> = head.split_whitespace().collect();
            // Only qualifiers may come before `fn`.
            let qualifiers = words.iter().all(|word| {
                word.starts_with("pub") || matches!(*word, "async" | "const" | "unsafe" | "extern" | "\"C\"")
            });
            if name.is_empty() || !qualifiers {
                return None;
            }
            let public = words.iter().any(|word| {
                matches!(*word, "pub" | "pub(crate)" | "pub(super)") || word.starts_with("pub(in")
            });
            Some(Function { name, public })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_function_of_the_right_name_passes() {
        assert_eq!(problem("pub fn task() -> Task {\n}", &TASK), None);
        assert_eq!(problem("pub(crate) fn task() -> Task { todo!() }", &TASK), None);
        assert_eq!(
            problem("pub async fn handler() -> &'static str { \"x\" }", &ROUTE),
            None
        );
    }

    #[test]
    fn a_private_function_is_named_with_the_signature_to_write() {
        assert_eq!(
            problem("fn task() -> Task { todo!() }", &TASK).as_deref(),
            Some("`fn task` must be public for the app to call it: write `pub fn task() -> Task`")
        );
    }

    #[test]
    fn a_misnamed_function_is_named() {
        assert_eq!(
            problem("use x;\npub fn tick_task() -> Task { todo!() }\n", &TASK).as_deref(),
            Some("expected `pub fn task() -> Task`; found `tick_task`, rename it to `task`")
        );
        assert_eq!(
            problem("// pub fn task() in a comment\n", &TASK).as_deref(),
            Some("expected `pub fn task() -> Task`")
        );
    }

    #[test]
    fn a_re_export_defines_the_name() {
        assert_eq!(problem("pub use crate::hello as handler;\n", &ROUTE), None);
        assert_eq!(problem("pub use crate::jobs::task;\n", &TASK), None);
    }

    #[test]
    fn nested_functions_do_not_count() {
        assert!(problem("pub fn other() {\n    fn task() {}\n}\n", &TASK).is_some());
    }
}
