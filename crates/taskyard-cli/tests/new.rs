//! `taskyard new`: each flag combination's files against its snapshot
//! (`tests/snapshots/new-STORE-TEMPLATE.txt`; `TASKYARD_UPDATE_SNAPSHOTS=1` rewrites them
//! after a deliberate change), the answers of `--ask` against the flags' (from a pipe, and
//! picked with the arrow keys on a pseudo-terminal), the generators inside an app, and every refusal — exit code
//! 2, nothing written. `.ci/run` builds and tests one generated app.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn taskyard(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_taskyard"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every file under `root`, sorted, each after a `# file: PATH` line.
fn listing(root: &Path) -> String {
    fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("folder") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(&path, files)
            } else {
                files.push(path)
            }
        }
    }
    let mut files = Vec::new();
    walk(root, &mut files);
    files.sort();
    files
        .iter()
        .map(|path| {
            let relative = path.strip_prefix(root).expect("inside").display();
            format!(
                "# file: {relative}\n{}",
                std::fs::read_to_string(path).expect("text")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn each_flag_combination_matches_its_snapshot() {
    for store in ["sqlite", "postgres"] {
        for template in ["minimal", "full"] {
            let temp = tempfile::tempdir().expect("tempdir");
            let out = taskyard(
                temp.path(),
                &["new", "shop", "--store", store, "--template", template],
            );
            assert!(out.status.success(), "{}", text(&out.stderr));
            let app = temp.path().join("shop");
            let listed = listing(&app);
            let snapshot = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(format!("tests/snapshots/new-{store}-{template}.txt"));
            if std::env::var_os("TASKYARD_UPDATE_SNAPSHOTS").is_some() {
                std::fs::create_dir_all(snapshot.parent().expect("folder")).expect("folder");
                std::fs::write(&snapshot, &listed).expect("written");
                continue;
            }
            let expected = std::fs::read_to_string(&snapshot).unwrap_or_else(|_| {
                panic!(
                    "{} is missing: run with TASKYARD_UPDATE_SNAPSHOTS=1",
                    snapshot.display()
                )
            });
            assert_eq!(
                listed,
                expected,
                "{store}/{template} differs from {}",
                snapshot.display()
            );
            assert!(
                listed.contains("taskyard = \"0.1\""),
                "taskyard from crates.io by version"
            );
            let ci = std::fs::metadata(app.join(".ci/run")).expect(".ci/run");
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                assert_eq!(ci.permissions().mode() & 0o111, 0o111, ".ci/run is executable");
            }
            let _ = ci;
        }
    }
}

#[test]
fn asked_the_app_is_the_one_its_flags_make() {
    use std::io::Write;
    use std::process::Stdio;
    let temp = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_taskyard"))
        .current_dir(temp.path())
        .args(["new", "--ask"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    // A bad folder name first, then the store by name and the template by number.
    child
        .stdin
        .take()
        .expect("its input")
        .write_all(b"tokio\nshop\npostgres\n2\n")
        .expect("answered");
    let out = child.wait_with_output().expect("ends");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(
        said.contains("`tokio` is taken by Rust or a crate the app uses"),
        "{said}"
    );
    let snapshot = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/new-postgres-full.txt");
    assert_eq!(
        listing(&temp.path().join("shop")),
        std::fs::read_to_string(snapshot).expect("the snapshot"),
        "the answers make the app `--store postgres --template full` makes"
    );
}

/// Presses `keys` on `terminal` once the program reads them: a list switches the terminal to
/// raw mode after it is drawn, and the switch drops the keys that came before it.
fn press(terminal: &mut rexpect::session::PtySession, keys: &str) {
    std::thread::sleep(std::time::Duration::from_millis(300));
    terminal.send(keys).expect("pressed");
    terminal.flush().expect("sent");
}

/// `taskyard ARGS` in `dir` on a real terminal: a pseudo-terminal for its input and output,
/// keys as a terminal sends them.
fn on_a_terminal(dir: &Path, args: &[&str]) -> rexpect::session::PtySession {
    let mut command = Command::new(env!("CARGO_BIN_EXE_taskyard"));
    command.current_dir(dir).args(args).env("TERM", "xterm");
    rexpect::session::spawn_with_options(
        command,
        rexpect::session::Options {
            timeout_ms: Some(20_000),
            strip_ansi_escape_codes: true,
        },
    )
    .expect("a terminal")
}

#[test]
fn on_a_terminal_the_store_and_the_template_are_picked_with_the_arrow_keys() {
    let temp = tempfile::tempdir().expect("tempdir");
    let mut terminal = on_a_terminal(temp.path(), &["new"]);
    terminal.exp_string("The app's folder").expect("the folder asked");
    // A bad name is said why and asked again.
    terminal.send_line("tokio").expect("typed");
    terminal
        .exp_string("`tokio` is taken by Rust or a crate the app uses")
        .expect("why");
    terminal.send_line("shop").expect("typed");
    // The store's list, the cursor on sqlite: one down, then Enter.
    terminal
        .exp_string("PostgreSQL, through TASKYARD_DATABASE_URL")
        .expect("the stores listed");
    press(&mut terminal, "\x1b[B");
    press(&mut terminal, "\r");
    // The template's: down twice wraps past the end back to minimal, up once is full.
    terminal
        .exp_string("the minimal app and a lifecycle task")
        .expect("the templates listed");
    for key in ["\x1b[B", "\x1b[B", "\x1b[A", "\r"] {
        press(&mut terminal, key);
    }
    terminal.exp_eof().expect("ends");
    let snapshot = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/new-postgres-full.txt");
    assert_eq!(
        listing(&temp.path().join("shop")),
        std::fs::read_to_string(snapshot).expect("the snapshot"),
        "the picks make the app `--store postgres --template full` makes"
    );
}

#[test]
fn on_a_terminal_quitting_a_list_writes_nothing() {
    let temp = tempfile::tempdir().expect("tempdir");
    let mut terminal = on_a_terminal(temp.path(), &["new", "shop", "--ask"]);
    terminal
        .exp_string("Where runs are kept")
        .expect("the store asked");
    press(&mut terminal, "q");
    terminal
        .exp_string("no answer to \"Where runs are kept\" (nothing was written)")
        .expect("stopped");
    terminal.exp_eof().expect("ends");
    assert!(!temp.path().join("shop").exists(), "nothing written");
}

#[test]
fn path_takes_taskyard_from_a_checkout() {
    let temp = tempfile::tempdir().expect("tempdir");
    let repository = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository");
    let out = taskyard(
        temp.path(),
        &["new", "shop", "--path", &repository.display().to_string()],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let manifest = std::fs::read_to_string(temp.path().join("shop/Cargo.toml")).expect("Cargo.toml");
    let expected = format!(
        "taskyard = {{ path = \"{}/crates/taskyard\" }}",
        repository.display()
    );
    assert!(manifest.contains(&expected), "{manifest}");
    let wrong = taskyard(temp.path(), &["new", "other", "--path", "/nonexistent"]);
    assert_eq!(wrong.status.code(), Some(2));
    assert!(text(&wrong.stderr).contains("--path /nonexistent: no crates/taskyard/Cargo.toml there"));
    assert!(!temp.path().join("other").exists());
}

#[test]
fn bad_input_is_refused_with_exit_code_2_and_nothing_written() {
    let temp = tempfile::tempdir().expect("tempdir");
    let dir = temp.path();
    std::fs::create_dir(dir.join("taken")).expect("folder");
    let cases: [(&[&str], &str); 7] = [
        (
            &["new"],
            "name the app: `taskyard new my-app`, or `taskyard new --ask`",
        ),
        (
            &["new", "--ask"],
            "no answer to \"The app's folder (letters, digits, `-` and `_`)\" (nothing was written)",
        ),
        (
            &["new", "taken"],
            "taken exists; choose another name or remove it (nothing was written)",
        ),
        (&["new", "9lives"], "`9lives` cannot be a crate's name"),
        (
            &["new", "tokio"],
            "`tokio` is taken by Rust or a crate the app uses",
        ),
        (
            &["new", "shop", "--template", "huge"],
            "invalid value 'huge' for '--template <TEMPLATE>'",
        ),
        (
            &["new", "shop", "--store", "mysql"],
            "invalid value 'mysql' for '--store <STORE>'",
        ),
    ];
    for (args, expected) in cases {
        let out = taskyard(dir, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            text(&out.stderr).contains(expected),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    let entries: Vec<_> = std::fs::read_dir(dir).expect("folder").collect();
    assert_eq!(entries.len(), 1, "only the folder that was there");
    assert_eq!(std::fs::read_dir(dir.join("taken")).expect("folder").count(), 0);
}

#[test]
fn task_route_and_schedule_add_one_file_each_or_say_why_not() {
    let temp = tempfile::tempdir().expect("tempdir");
    assert!(taskyard(temp.path(), &["new", "shop"]).status.success());
    let app = temp.path().join("shop");
    let ok = |args: &[&str], file: &str| {
        let out = taskyard(&app, args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout), format!("wrote ./{file}\n"));
        std::fs::read_to_string(app.join(file)).expect("written")
    };
    let task = ok(&["new", "task", "db:backup"], "src/tasks/db/backup.rs");
    assert!(task.contains("pub struct Backup") && task.contains("pub fn task() -> Task"));
    let route = ok(
        &["new", "route", "users/[id].get"],
        "src/routes/users/[id].get.rs",
    );
    assert!(route.contains("let id = event.param(\"id\")") && route.contains("//! `GET /users/{id}`."));
    ok(
        &["new", "route", "orders/[...path]", "--api"],
        "src/api/orders/[...path].rs",
    );
    let schedule = ok(
        &[
            "new",
            "schedule",
            "nightly",
            "--cron",
            "0 3 * * *",
            "--task",
            "db:backup",
        ],
        "src/schedule/nightly.rs",
    );
    assert!(schedule.contains("Schedule::worker().cron(\"0 3 * * *\").task(\"db:backup\")"));
    ok(
        &["new", "schedule", "often", "--interval", "10m", "--task", "greet"],
        "src/schedule/often.rs",
    );
    std::fs::create_dir_all(app.join("src/tasks/report")).expect("folder");
    std::fs::write(
        app.join("src/tasks/report/index.rs"),
        task.replace("Backup", "Report"),
    )
    .expect("written");
    let before = listing(&app);
    let refused: [(&[&str], &str); 10] = [
        (
            &["new", "task", "report"],
            "the task `report` is already defined by src/tasks/report/index.rs",
        ),
        (
            &["new", "task", "db:backup"],
            "src/tasks/db/backup.rs exists; nothing was written (add --force to replace it)",
        ),
        (&["new", "task", "db:index"], "`db:index` would be read as `db`"),
        (&["new", "task", "Bad Name"], "`Bad Name` cannot be a task's name"),
        (
            &["new", "route", "users/[name].get"],
            "declare the same path with different parameter names",
        ),
        (&["new", "route", "a/[...x]/b.get"], "cannot be a route"),
        (
            &[
                "new",
                "schedule",
                "late",
                "--cron",
                "0 61 * * *",
                "--task",
                "greet",
            ],
            "--cron `0 61 * * *`: field 2 (hour) `61` is invalid",
        ),
        (
            &["new", "schedule", "late", "--interval", "soon", "--task", "greet"],
            "--interval",
        ),
        (
            &["new", "schedule", "late", "--cron", "0 3 * * *", "--task", "nope"],
            "no task `nope` in src/tasks/ (there: db:backup, greet, report)",
        ),
        (
            &[
                "new",
                "schedule",
                "greet-hourly",
                "--cron",
                "0 3 * * *",
                "--task",
                "greet",
            ],
            "the schedule `greet-hourly` is already defined in taskyard.toml",
        ),
    ];
    for (args, expected) in refused {
        let out = taskyard(&app, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            text(&out.stderr).contains(expected),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    assert_eq!(listing(&app), before, "nothing was written");
    // --force replaces; outside an app nothing is written.
    assert!(
        taskyard(&app, &["new", "task", "db:backup", "--force"])
            .status
            .success()
    );
    let outside = taskyard(temp.path(), &["new", "task", "x"]);
    assert_eq!(outside.status.code(), Some(2));
    assert!(
        text(&outside.stderr).contains("is not an app's folder"),
        "{}",
        text(&outside.stderr)
    );
}
