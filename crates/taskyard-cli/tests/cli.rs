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
            "demo:heartbeat",
            "demo:heartbeat-all",
            "demo:report",
            "demo:slow",
            "echo:payload",
            "email:send"
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

#[test]
fn cron_next_prints_rfc3339_json_with_the_dst_rule() {
    let output = taskyard(&[
        "cron",
        "next",
        "30 2 * * *",
        "-n",
        "2",
        "--from",
        "2026-03-07T12:00:00Z",
        "--tz",
        "America/New_York",
        "--json",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let times: Vec<String> = serde_json::from_slice(&output.stdout).expect("json array");
    // 02:30 does not exist on 8 March 2026 in New York: it fires an hour later.
    assert_eq!(times, ["2026-03-08T03:30:00-04:00", "2026-03-09T02:30:00-04:00"]);
}

#[test]
fn cron_explain_describes_and_lists_five_times() {
    let args = [
        "cron",
        "explain",
        "*/5 9-17 * * MON-FRI",
        "--tz",
        "UTC",
        "--from",
        "2026-01-01T00:00:00Z",
    ];
    let output = taskyard(&args);
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).expect("utf-8");
    assert!(
        text.starts_with("At every 5 minutes, of hour 9-17, on Monday"),
        "{text}"
    );
    assert!(
        text.contains("Next 5 times (UTC):\n  2026-01-01T09:00:00+00:00\n"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 7, "{text}");

    let output = taskyard(&[&args[..], &["--json"]].concat());
    assert!(output.status.success());
    let explained: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(explained["expression"], "*/5 9-17 * * MON-FRI");
    assert_eq!(explained["time_zone"], "UTC");
    assert!(
        explained["description"]
            .as_str()
            .expect("description")
            .starts_with("At every 5 minutes")
    );
    assert_eq!(explained["next"][0], "2026-01-01T09:00:00+00:00");
    assert_eq!(explained["next"].as_array().map(Vec::len), Some(5));
}

#[test]
fn cron_errors_name_the_field_and_exit_2() {
    let output = taskyard(&["cron", "next", "0 61 * * *"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).expect("utf-8");
    assert_eq!(
        stderr.trim(),
        "taskyard: cron `0 61 * * *`: field 2 (hour) `61` is invalid: Number out of bounds"
    );
    let output = taskyard(&["cron", "next", "* * * * *", "--tz", "Mars/Base"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("time zone `Mars/Base` is not known"));
}

#[test]
fn export_builds_the_app_and_prints_its_schedules_for_the_platform() {
    let app = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/quickstart");
    let out = taskyard(&[
        "export",
        "systemd",
        "--dir",
        app,
        "--schedule",
        "heartbeat",
        "--bin",
        "/usr/local/bin/quickstart",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("OnCalendar=*-*-* *:*:00/10 UTC"), "{stdout}");
    // The command runs in the app's folder, where `.taskyard/` is.
    let folder = std::path::Path::new(app).canonicalize().expect("folder");
    assert!(
        stdout.contains(&format!("WorkingDirectory={}\n", folder.display())),
        "{stdout}"
    );
    assert!(stdout.contains(
        "ExecStart=/usr/local/bin/quickstart task run demo:heartbeat --schedule heartbeat --tick auto"
    ));
    // Refused: the exit code is 2 and nothing is printed.
    let refused = taskyard(&["export", "vercel", "--dir", app, "--schedule", "heartbeat"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(refused.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("schedule `heartbeat`: `every 10s` fires at second 0, 10, 20, 30, 40, 50 of a minute; vercel has no seconds"), "{stderr}");
    let unknown = taskyard(&["export", "heroku", "--dir", app]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("unknown export target `heroku`"));
    let nowhere = taskyard(&["export", "systemd", "--dir", "/nonexistent/app"]);
    assert_eq!(nowhere.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&nowhere.stderr).contains("the app folder /nonexistent/app cannot be read")
    );
}
