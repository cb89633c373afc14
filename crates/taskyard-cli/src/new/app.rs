//! `taskyard new NAME`: the app's files from the templates under `templates/app/`, with
//! its name, store and where taskyard comes from filled in.

use std::path::{Path, PathBuf};

use super::{AppArgs, Store, Template};

/// Each file of a new app: its path, its template, and the template that needs it.
const FILES: &[(&str, &str, Option<Template>)] = &[
    (
        "Cargo.toml",
        include_str!("../../templates/app/Cargo.toml.txt"),
        None,
    ),
    ("build.rs", include_str!("../../templates/app/build.rs.txt"), None),
    (
        ".gitignore",
        include_str!("../../templates/app/gitignore.txt"),
        None,
    ),
    (
        "README.md",
        include_str!("../../templates/app/README.md.txt"),
        None,
    ),
    (
        "taskyard.toml",
        include_str!("../../templates/app/taskyard.toml.txt"),
        None,
    ),
    (".ci/run", include_str!("../../templates/app/ci.txt"), None),
    ("src/lib.rs", include_str!("../../templates/app/lib.rs.txt"), None),
    (
        "src/main.rs",
        include_str!("../../templates/app/main.rs.txt"),
        None,
    ),
    (
        "src/tasks/greet.rs",
        include_str!("../../templates/app/greet.rs.txt"),
        None,
    ),
    (
        "src/routes/index.get.rs",
        include_str!("../../templates/app/index.get.rs.txt"),
        None,
    ),
    (
        "src/api/status.get.rs",
        include_str!("../../templates/app/status.get.rs.txt"),
        None,
    ),
    (
        "src/middleware/1.request-id.rs",
        include_str!("../../templates/app/request-id.rs.txt"),
        None,
    ),
    (
        "tests/app.rs",
        include_str!("../../templates/app/app_test.rs.txt"),
        None,
    ),
    (
        "src/lifecycle.rs",
        include_str!("../../templates/app/lifecycle.rs.txt"),
        Some(Template::Full),
    ),
];

/// The `.env.example` of an app on PostgreSQL.
const ENV_EXAMPLE: &str = include_str!("../../templates/app/env.example.txt");

/// Names cargo refuses for a package, or that would shadow a crate every app uses.
const RESERVED: &[&str] = &[
    "test",
    "self",
    "super",
    "crate",
    "std",
    "core",
    "alloc",
    "proc_macro",
    "build",
    "taskyard",
    "taskyard-build",
    "tokio",
    "serde",
    "axum",
];

/// Creates the app; the files written.
pub fn create(args: AppArgs) -> Result<Vec<PathBuf>, String> {
    let Some(folder) = args.name else {
        return Err(
            "name the app: `taskyard new my-app`, or `taskyard new --ask` to be asked (or, inside an app, `taskyard new task|route|schedule …`)"
                .to_owned(),
        );
    };
    let name = check_folder(&folder)?;
    let (taskyard, taskyard_build) = match &args.path {
        None => {
            let version = env!("CARGO_PKG_VERSION");
            let minor = version.rsplit_once('.').map_or(version, |(minor, _)| minor);
            (
                format!("taskyard = \"{minor}\""),
                format!("taskyard-build = \"{minor}\""),
            )
        }
        Some(repository) => {
            let crates = repository.join("crates");
            if !crates.join("taskyard/Cargo.toml").is_file() {
                return Err(format!(
                    "--path {}: no crates/taskyard/Cargo.toml there; give the root of a taskyard checkout",
                    repository.display()
                ));
            }
            let path = |krate: &str| crates.join(krate).display().to_string().replace('\\', "/");
            (
                format!("taskyard = {{ path = \"{}\" }}", path("taskyard")),
                format!("taskyard-build = {{ path = \"{}\" }}", path("taskyard-build")),
            )
        }
    };
    let full = args.template == Template::Full;
    let crate_name = name.replace('-', "_");
    let store_text = match args.store {
        Store::Sqlite => "Run history is kept in `.taskyard/taskyard.db` (SQLite); set \
                          `TASKYARD_DATABASE_URL=postgres://…` to use PostgreSQL."
            .to_owned(),
        Store::Postgres => "Run history is kept in PostgreSQL: copy `.env.example` to `.env` and \
                            export it (`set -a; . ./.env; set +a`) before `cargo run`; the tests \
                            keep theirs in memory."
            .to_owned(),
    };
    let values = [
        ("{{name}}", name.clone()),
        ("{{crate}}", crate_name),
        ("{{taskyard}}", taskyard),
        ("{{taskyard_build}}", taskyard_build),
        ("{{store_text}}", store_text),
        (
            "{{lifecycle_mod}}",
            if full {
                "\npub mod lifecycle;\n".to_owned()
            } else {
                String::new()
            },
        ),
        (
            "{{lifecycle_setup}}",
            if full {
                ".setup(lifecycle::setup)".to_owned()
            } else {
                String::new()
            },
        ),
        (
            "{{lifecycle_text}}",
            if full {
                "\n- `src/lifecycle.rs`: what runs before the server listens \
                 (`curl localhost:3000/_tasks/lifecycle`)."
                    .to_owned()
            } else {
                String::new()
            },
        ),
    ];
    let fill = |template: &str| -> String {
        values
            .iter()
            .fold(template.to_owned(), |text, (key, value)| text.replace(key, value))
    };
    let mut files: Vec<(PathBuf, String)> = FILES
        .iter()
        .filter(|(_, _, only)| only.is_none_or(|only| only == args.template))
        .map(|(path, template, _)| (PathBuf::from(path), fill(template)))
        .collect();
    if args.store == Store::Postgres {
        files.push((PathBuf::from(".env.example"), fill(ENV_EXAMPLE)));
    }
    let written = super::write_all(&folder, &files, false)?;
    make_executable(&folder.join(".ci/run"));
    Ok(written)
}

/// The crate's name `folder` gives a new app, if its last part is a name cargo takes and
/// nothing is there yet.
pub(super) fn check_folder(folder: &Path) -> Result<String, String> {
    let name = folder
        .file_name()
        .and_then(|name| name.to_str())
        .ok_or_else(|| format!("`{}` does not end in a folder name", folder.display()))?
        .to_owned();
    check_name(&name)?;
    if folder.exists() {
        return Err(format!(
            "{} exists; choose another name or remove it (nothing was written)",
            folder.display()
        ));
    }
    Ok(name)
}

/// A name cargo takes for a package and that shadows nothing the app uses.
fn check_name(name: &str) -> Result<(), String> {
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        return Err(format!(
            "`{name}` cannot be a crate's name: use letters, digits, `-` and `_`, starting with a letter (nothing was written)"
        ));
    }
    if RESERVED.contains(&name) {
        return Err(format!(
            "`{name}` is taken by Rust or a crate the app uses; choose another name (nothing was written)"
        ));
    }
    Ok(())
}

#[cfg(unix)]
fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755));
}

#[cfg(not(unix))]
fn make_executable(_path: &Path) {}
