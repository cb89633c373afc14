//! The app binary's own commands, as a platform's scheduler runs them: `quickstart export`
//! prints a schedule for systemd or refuses the ones a platform cannot fire exactly (exit
//! 2); `quickstart task run TASK --schedule NAME --tick T` started twice at once on one
//! SQLite file runs the tick once.

use std::process::{Command, Output};

use jiff::Timestamp;

fn quickstart(args: &[&str], data: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_quickstart"));
    command
        .args(args)
        .env("TASKYARD_DATA_DIR", data)
        .env_remove("TASKYARD_DATABASE_URL")
        .env_remove("TASKYARD_ENV")
        .env("RUST_LOG", "warn");
    command
}

fn run(args: &[&str], data: &std::path::Path) -> Output {
    quickstart(args, data).output().expect("quickstart runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn export_prints_a_timer_or_refuses_with_exit_code_2() {
    let data = tempfile::tempdir().expect("tempdir");
    let args = [
        "export",
        "systemd",
        "--schedule",
        "heartbeat",
        "--bin",
        "/usr/local/bin/quickstart",
        "--workdir",
        "/srv/quickstart",
    ];
    let out = run(&args, data.path());
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("# file: quickstart-heartbeat.timer"), "{stdout}");
    assert!(
        stdout.contains("OnCalendar=*-*-* *:*:00/10 UTC\nAccuracySec=1s\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "ExecStart=/usr/local/bin/quickstart task run demo:heartbeat --schedule heartbeat --tick auto"
        ),
        "{stdout}"
    );
    // Every schedule: `heartbeat-all` runs on every instance, which a platform cannot do.
    let all = run(&["export", "systemd"], data.path());
    assert_eq!(all.status.code(), Some(2), "{}", text(&all.stdout));
    assert!(all.stdout.is_empty(), "nothing is printed: {}", text(&all.stdout));
    let stderr = text(&all.stderr);
    assert!(stderr.contains("Cannot export to systemd:"), "{stderr}");
    assert!(
        stderr.contains("schedule `heartbeat-all`: `type = \"all\"`"),
        "{stderr}"
    );
    let unknown = run(&["export", "cron"], data.path());
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        text(&unknown.stderr).contains("unknown export target `cron`"),
        "{}",
        text(&unknown.stderr)
    );
    let missing = run(&["export", "systemd", "--schedule", "nope"], data.path());
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        text(&missing.stderr).contains("Schedule `nope` is not defined"),
        "{}",
        text(&missing.stderr)
    );
    // --out writes the files and leaves existing ones alone.
    let out_dir = data.path().join("units");
    let out_arg = out_dir.display().to_string();
    let write = |extra: &[&str]| {
        let mut args = args.to_vec();
        args.extend(["--out", out_arg.as_str()]);
        args.extend(extra);
        run(&args, data.path())
    };
    assert!(write(&[]).status.success());
    assert!(out_dir.join("quickstart-heartbeat.service").is_file());
    let again = write(&[]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        text(&again.stderr).contains("exists; nothing was written (add --force"),
        "{}",
        text(&again.stderr)
    );
    assert!(write(&["--force"]).status.success());
}

#[test]
fn a_tick_fired_twice_at_once_runs_once() {
    let data = tempfile::tempdir().expect("tempdir");
    // A tick of the 10 s `heartbeat` schedule, a little in the past.
    let now = Timestamp::now().as_second();
    let tick = Timestamp::from_second(now - now % 10 - 10)
        .expect("instant")
        .to_string();
    let args = [
        "task",
        "run",
        "demo:heartbeat",
        "--schedule",
        "heartbeat",
        "--tick",
        tick.as_str(),
    ];
    // Two fires of one tick race on one SQLite file.
    let racers: Vec<std::thread::JoinHandle<Output>> = (0..2)
        .map(|_| {
            let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            let data = data.path().to_owned();
            std::thread::spawn(move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                run(&args, &data)
            })
        })
        .collect();
    let outputs: Vec<Output> = racers.into_iter().map(|r| r.join().expect("joins")).collect();
    let mut ran = 0;
    for out in &outputs {
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
        if stdout.contains(&format!("schedule heartbeat: tick {tick} claimed, run ")) {
            ran += 1;
        } else {
            assert!(stdout.contains("was already claimed; nothing to do"), "{stdout}");
        }
    }
    assert_eq!(ran, 1, "{outputs:?}");
    // A third fire later starts nothing either.
    let late = run(&args, data.path());
    assert!(
        text(&late.stdout).contains("was already claimed; nothing to do"),
        "{}",
        text(&late.stdout)
    );
    let wrong_task = run(
        &[
            "task",
            "run",
            "echo:payload",
            "--schedule",
            "heartbeat",
            "--tick",
            "auto",
        ],
        data.path(),
    );
    assert_eq!(wrong_task.status.code(), Some(2));
    assert!(
        text(&wrong_task.stderr).contains("it runs task `demo:heartbeat`, not `echo:payload`"),
        "{}",
        text(&wrong_task.stderr)
    );
}
