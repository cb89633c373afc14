//! File-to-name rules for `src/tasks/`.

use std::path::Path;

use taskyard_build::{AppSources, duplicates, render_app, scan_schedules, scan_tasks, task_name};

#[test]
fn file_paths_map_to_task_names() {
    let table = [
        ("cleanup.rs", Some("cleanup")),
        ("db/migrate.rs", Some("db:migrate")),
        ("db/index.rs", Some("db")),
        ("index.rs", Some("index")),
        ("a/b/c.rs", Some("a:b:c")),
        ("a/b/index.rs", Some("a:b")),
        ("cms/update.rs", Some("cms:update")),
        ("echo/payload.rs", Some("echo:payload")),
        ("db/my-task.rs", Some("db:my-task")),
        ("README.md", None),
        ("db/.hidden.rs", None),
        (".git/x.rs", None),
        ("db/migrate.rs.bak", None),
    ];
    for (path, expected) in table {
        assert_eq!(task_name(Path::new(path)).as_deref(), expected, "{path}");
    }
}

#[test]
fn scanning_a_folder_finds_nested_files_and_reports_duplicates() {
    let root = tempfile::tempdir().expect("tempdir");
    let tasks = root.path().join("src/tasks");
    for file in [
        "db/migrate.rs",
        "db/index.rs",
        "db.rs",
        "echo/payload.rs",
        "notes.txt",
        "deep/er/still.rs",
    ] {
        let path = tasks.join(file);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, "pub fn task() -> taskyard::Task { unimplemented!() }").expect("write");
    }
    let files = scan_tasks(&tasks).expect("scan");
    let found: Vec<(String, String)> = files.iter().map(|f| (f.name.clone(), f.display_path())).collect();
    assert_eq!(
        found,
        [
            ("db".to_owned(), "src/tasks/db.rs".to_owned()),
            ("db".to_owned(), "src/tasks/db/index.rs".to_owned()),
            ("db:migrate".to_owned(), "src/tasks/db/migrate.rs".to_owned()),
            (
                "deep:er:still".to_owned(),
                "src/tasks/deep/er/still.rs".to_owned()
            ),
            ("echo:payload".to_owned(), "src/tasks/echo/payload.rs".to_owned()),
        ]
    );
    let dups = duplicates(&files);
    assert_eq!(dups.len(), 1);
    assert_eq!(
        (dups[0].0.display_path(), dups[0].1.display_path()),
        ("src/tasks/db.rs".to_owned(), "src/tasks/db/index.rs".to_owned())
    );
}

#[test]
fn a_missing_tasks_folder_means_no_tasks() {
    let root = tempfile::tempdir().expect("tempdir");
    assert!(
        scan_tasks(&root.path().join("src/tasks"))
            .expect("scan")
            .is_empty()
    );
}

#[test]
fn generated_code_registers_each_file_under_its_name() {
    let root = tempfile::tempdir().expect("tempdir");
    let tasks = root.path().join("src/tasks/db");
    std::fs::create_dir_all(&tasks).expect("mkdir");
    std::fs::write(tasks.join("migrate.rs"), "").expect("write");
    let files = scan_tasks(&root.path().join("src/tasks")).expect("scan");
    let app = AppSources {
        tasks: files,
        ..AppSources::default()
    };
    let code = render_app(root.path(), &app);
    // By a clean absolute path, so the compiler's messages name the file as it is.
    let root_path = root.path().canonicalize().expect("root");
    let file = format!("{}/src/tasks/db/migrate.rs", root_path.display());
    assert!(code.contains(&format!("#[path = {file:?}]")), "{code}");
    assert!(!code.contains(".."), "no walk up from OUT_DIR: {code}");
    assert!(
        code.contains(".file_task(\"db:migrate\", \"src/tasks/db/migrate.rs\", __task_0_db_migrate::task())"),
        "{code}"
    );
}

#[test]
fn generated_code_registers_schedule_files_and_embeds_taskyard_toml() {
    let root = tempfile::tempdir().expect("tempdir");
    let schedule = root.path().join("src/schedule/reports");
    std::fs::create_dir_all(&schedule).expect("mkdir");
    std::fs::write(root.path().join("src/schedule/cleandb.rs"), "").expect("write");
    std::fs::write(schedule.join("weekly.rs"), "").expect("write");
    let schedules = scan_schedules(&root.path().join("src/schedule")).expect("scan");
    let names: Vec<&str> = schedules.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["cleandb", "reports:weekly"]);
    assert_eq!(schedules[0].display_path(), "src/schedule/cleandb.rs");
    let config = root.path().join("taskyard.toml");
    let app = AppSources {
        tasks: Vec::new(),
        schedules,
        config: Some(config.clone()),
        ..AppSources::default()
    };
    let code = render_app(root.path(), &app);
    assert!(
        code.contains(
            ".file_schedule(\"cleandb\", \"src/schedule/cleandb.rs\", __schedule_0_cleandb::schedule())"
        ),
        "{code}"
    );
    assert!(
        code.contains("include_str!(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/taskyard.toml\"))"),
        "{code}"
    );
    assert!(code.contains(".app_config("), "{code}");
    assert!(
        !code.contains(&config.display().to_string()),
        "the embedded config is named by a machine path: {code}"
    );
}
