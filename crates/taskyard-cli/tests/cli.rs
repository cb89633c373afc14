//! The `taskyard` binary, run as a real process.

use std::process::Command;

fn taskyard(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_taskyard"))
        .args(args)
        .output()
        .expect("runs")
}

#[test]
fn tasks_lists_the_quickstart_tasks_as_json() {
    let quickstart = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/quickstart");
    let output = taskyard(&["tasks", "--dir", quickstart, "--json"]);
    assert!(output.status.success());
    let list: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    let names: Vec<&str> = list
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "cms:update",
            "db:migrate",
            "demo:fail",
            "demo:slow",
            "echo:payload"
        ]
    );
    assert_eq!(list[1]["file"], "src/tasks/db/migrate.rs");
}

#[test]
fn tasks_fails_on_duplicate_names_naming_both_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    for file in ["src/tasks/db.rs", "src/tasks/db/index.rs"] {
        let path = dir.path().join(file);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, "").expect("write");
    }
    let output = taskyard(&["tasks", "--dir", dir.path().to_str().expect("utf-8")]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("task `db` is defined by both src/tasks/db.rs and src/tasks/db/index.rs"),
        "{stderr}"
    );
}
