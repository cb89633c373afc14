//! `App::export`: golden files per target, the next 1,000 fire times of every exported
//! schedule read back in the target's own terms (cron strings through the cron engine in
//! the dialect written, systemd lines through `systemd-analyze calendar`), every refusal
//! with its message, and Kubernetes output read as `batch/v1` CronJobs.
//!
//! `TASKYARD_UPDATE_GOLDEN=1 cargo test -p taskyard --test export` rewrites the golden files
//! after a deliberate change.

use std::path::PathBuf;
use std::process::Command;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use taskyard::schedule::CronExpr;
use taskyard::schedule::export::{Export, ExportError, ExportOptions, Target};
use taskyard::schedule::{CatchUp, Overlap, Schedule, ScheduleInfo};
use taskyard::{App, Task, TaskContext, TaskError};

const NOW: &str = "2026-12-01T00:00:00Z";
const TICKS: usize = 1_000;

fn task() -> Task {
    Task::new(|_cx: TaskContext| async { Ok::<_, TaskError>(()) })
}

fn app(schedules: &[(&str, Schedule)]) -> App {
    let mut app = App::new()
        .package("shop", "1.4.0")
        .time_zone("UTC")
        .task("db:backup", task())
        .task("mail:digest", task());
    for (name, schedule) in schedules {
        app = app.schedule(name, schedule.clone());
    }
    app
}

fn options(target: Target) -> ExportOptions {
    ExportOptions {
        target,
        app: "shop".to_owned(),
        bin: "/srv/shop/bin/shop".to_owned(),
        workdir: "/srv/shop".to_owned(),
        image: "registry.example/shop:1.4.0".to_owned(),
        now: NOW.parse().expect("instant"),
    }
}

fn cron(expr: &str) -> Schedule {
    Schedule::worker().cron(expr).task("db:backup")
}

/// What every target takes.
fn common() -> Vec<(&'static str, Schedule)> {
    vec![
        ("backup", cron("0 3 * * *")),
        ("every-5m", Schedule::worker().interval("5m").task("mail:digest")),
        ("workdays", cron("*/15 9-17 * * MON-FRI")),
        ("monthly", cron("30 4 1 * *")),
        ("yearly", cron("@yearly")),
    ]
}

/// Each target's schedules: the common ones and what only it takes.
fn schedules(target: Target) -> Vec<(&'static str, Schedule)> {
    let mut all = common();
    match target {
        Target::Crontab => all.extend([
            ("paris", cron("0 9 * * MON-FRI").tz("Europe/Paris")),
            ("either-day", cron("0 0 1,15 * MON")),
            ("odd-days", cron("0 6 */2 * *")),
            ("allow", cron("0 12 * * *").overlap(Overlap::Allow)),
            ("off", cron("0 1 * * *").disable(true)),
            ("cms:update@* * * * *", cron("* * * * *")),
        ]),
        Target::Systemd => all.extend([
            ("paris", cron("0 9 * * MON-FRI").tz("Europe/Paris")),
            (
                "every-10s",
                Schedule::worker().interval("10s").task("mail:digest"),
            ),
            ("seconds", cron("*/20 * * * * *")),
            ("either-day", cron("0 0 1,15 * MON")),
            ("both-days", cron("0 12 1-7 * +MON")),
            ("last-day", cron("0 18 L * *")),
            ("last-friday", cron("0 18 * * 5L")),
            ("second-monday", cron("0 10 * * MON#2")),
            ("last-weekday", cron("59 23 LW * *")),
            ("nearest-15", cron("0 8 15W * *")),
            ("nearest-1", cron("0 8 1W * *")),
            ("catch-up", cron("0 2 * * *").catch_up(CatchUp::Once)),
            ("every-6h", Schedule::worker().interval("6h").task("mail:digest")),
            ("some-years", cron("0 0 12 1 1,7 * 2027-2030,2035")),
            ("odd-years", cron("0 30 6 * * MON 2027/2")),
            ("far-years", cron("0 0 0 29 2 * 2196-2400")),
        ]),
        Target::Kubernetes => all.extend([
            ("paris", cron("0 9 * * MON-FRI").tz("Europe/Paris")),
            ("either-day", cron("0 0 1,15 * MON")),
            ("catch-up", cron("0 2 * * *").catch_up(CatchUp::Once)),
            ("queue", cron("*/10 * * * *").overlap(Overlap::Queue)),
            ("off", cron("0 1 * * *").disable(true)),
        ]),
        Target::Cloudflare => all.extend([
            ("tokyo", cron("0 * * * *").tz("Asia/Tokyo")),
            ("last-day", cron("0 18 L * *")),
            ("last-friday", cron("0 18 * * 5L")),
            ("second-monday", cron("0 10 * * MON#2")),
            ("last-weekday", cron("59 23 LW * *")),
            ("nearest-15", cron("0 8 15W * *")),
            ("sundays", cron("0 17 * * SUN")),
            ("twin", cron("0 3 * * *")),
        ]),
        Target::Vercel => all.extend([("tokyo", cron("0 * * * *").tz("Asia/Tokyo"))]),
    }
    all
}

fn export(target: Target) -> Export {
    app(&schedules(target))
        .export(&options(target), None)
        .unwrap_or_else(|error| panic!("{target}: {error}"))
}

fn golden_path(target: Target) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/export/{target}.txt"))
}

#[test]
fn each_target_matches_its_golden_file() {
    for target in Target::ALL {
        let text = export(target).to_text();
        let path = golden_path(target);
        if std::env::var_os("TASKYARD_UPDATE_GOLDEN").is_some() {
            std::fs::create_dir_all(path.parent().expect("folder")).expect("folder");
            std::fs::write(&path, &text).expect("golden file written");
            continue;
        }
        let golden = std::fs::read_to_string(&path)
            .unwrap_or_else(|_| panic!("{} is missing: run with TASKYARD_UPDATE_GOLDEN=1", path.display()));
        assert_eq!(
            text,
            golden,
            "{target}: the export differs from {}",
            path.display()
        );
    }
}

/// Each schedule as the running app knows it: its cron and zone, or its interval.
fn infos(target: Target) -> Vec<ScheduleInfo> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let running = app(&schedules(target))
            .store(taskyard::StoreConfig::Memory)
            .start()
            .await
            .expect("app starts");
        let infos = running.scheduler().list();
        running.shutdown().await;
        infos
    })
}

/// The next `TICKS` ticks of a schedule after `from` (or all, when fewer), as taskyard
/// computes them.
fn ticks_of(info: &ScheduleInfo, from: Timestamp) -> Vec<Timestamp> {
    match (&info.cron, info.interval_ms) {
        (Some(cron), _) => next_times(
            &CronExpr::parse(cron).expect("parses"),
            info.tz.as_deref().unwrap_or("UTC"),
            from,
        ),
        (None, Some(every)) => {
            let every = every as i64;
            let first = from.as_millisecond().div_euclid(every) * every + every;
            (0..TICKS as i64)
                .map(|k| Timestamp::from_millisecond(first + k * every).expect("instant"))
                .collect()
        }
        (None, None) => panic!("{}: no times", info.name),
    }
}

fn next_times(expr: &CronExpr, zone: &str, from: Timestamp) -> Vec<Timestamp> {
    let zone = TimeZone::get(zone).expect("zone");
    let mut times = Vec::with_capacity(TICKS);
    let mut at = from;
    // A year field may leave fewer than `TICKS`.
    while times.len() < TICKS
        && let Some(next) = expr.next_after(at, &zone)
    {
        times.push(next);
        at = next;
    }
    times
}

/// Two lists of fire times are the same; else the first difference, briefly.
fn same(theirs: &[Timestamp], ours: &[Timestamp], what: &str) {
    if theirs == ours {
        return;
    }
    let at = theirs
        .iter()
        .zip(ours)
        .position(|(a, b)| a != b)
        .unwrap_or(theirs.len().min(ours.len()));
    panic!(
        "{what}: {} times against taskyard's {}; first difference at #{at}: {:?} against taskyard's {:?}",
        theirs.len(),
        ours.len(),
        theirs.get(at),
        ours.get(at)
    );
}

/// Cloudflare's names back to the engine's numbers (its own numbers start at 1 = Sunday,
/// which is why the export writes names).
fn cloudflare_to_engine(line: &str) -> String {
    let mut out = line.to_owned();
    for (number, name) in ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
        .iter()
        .enumerate()
    {
        out = out.replace(name, &number.to_string());
    }
    out
}

#[test]
fn every_exported_cron_line_fires_at_taskyards_times() {
    let from: Timestamp = NOW.parse().expect("instant");
    let mut checked = 0;
    for target in [
        Target::Crontab,
        Target::Kubernetes,
        Target::Cloudflare,
        Target::Vercel,
    ] {
        let text = export(target).to_text();
        for info in infos(target) {
            let name = info.name.as_str();
            if info.disabled && target != Target::Crontab && target != Target::Kubernetes {
                continue;
            }
            let (line, zone) = cron_line_of(&text, target, name);
            let line = if target == Target::Cloudflare {
                cloudflare_to_engine(&line)
            } else {
                line
            };
            let expr = CronExpr::parse(&line).unwrap_or_else(|e| panic!("{target} {name}: `{line}`: {e}"));
            let theirs = next_times(&expr, &zone, from);
            let ours = ticks_of(&info, from);
            same(
                &theirs,
                &ours,
                &format!("{target}, schedule {name}: `{line}` in {zone}"),
            );
            checked += 1;
        }
    }
    assert!(checked > 30, "{checked} lines checked");
}

/// The cron line a target's export wrote for a schedule, and the zone it is read in.
fn cron_line_of(text: &str, target: Target, name: &str) -> (String, String) {
    match target {
        Target::Crontab => {
            let lines: Vec<&str> = text.lines().collect();
            let at = lines
                .iter()
                .position(|line| {
                    *line == format!("# {name}: task db:backup")
                        || *line == format!("# {name}: task mail:digest")
                })
                .unwrap_or_else(|| panic!("{name} in the crontab"));
            let zone = lines[at + 1]
                .strip_prefix("CRON_TZ=")
                .expect("CRON_TZ")
                .to_owned();
            let entry = lines[at + 2].trim_start_matches("# (disabled) ");
            let fields: Vec<&str> = entry.split(' ').take(5).collect();
            (fields.join(" "), zone)
        }
        Target::Kubernetes => {
            let doc = text
                .split("---\n")
                .find(|doc| {
                    doc.contains(&format!(
                        "taskyard.dev/schedule: {}",
                        serde_json::Value::from(name)
                    ))
                })
                .unwrap_or_else(|| panic!("{name} in the CronJobs"));
            let value = |key: &str| -> String {
                let line = doc.lines().find(|l| l.trim_start().starts_with(key)).expect(key);
                serde_json::from_str(line.trim_start()[key.len()..].trim()).expect("a JSON string")
            };
            let zone = value("timeZone:");
            (
                value("schedule:"),
                if zone == "Etc/UTC" { "UTC".to_owned() } else { zone },
            )
        }
        Target::Cloudflare => {
            let script = text
                .split("# file: src/scheduled.js\n")
                .nth(1)
                .expect("the script");
            let line = script
                .lines()
                .find(|line| line.contains(&format!("\"{name}\"")))
                .unwrap_or_else(|| panic!("{name} in the script"));
            let cron: String =
                serde_json::from_str(line.trim().split(": [").next().expect("key")).expect("a JSON string");
            (cron, "UTC".to_owned())
        }
        Target::Vercel => {
            let json: serde_json::Value = serde_json::from_str(text).expect("vercel.json");
            let path = format!("/_tasks/schedules/{name}/tick");
            let cron = json["crons"]
                .as_array()
                .expect("crons")
                .iter()
                .find(|c| c["path"] == path.as_str())
                .unwrap_or_else(|| panic!("{name} in vercel.json"))["schedule"]
                .as_str()
                .expect("schedule")
                .to_owned();
            (cron, "UTC".to_owned())
        }
        Target::Systemd => unreachable!("systemd has its own check"),
    }
}

#[test]
fn every_systemd_timer_fires_at_taskyards_times() {
    if Command::new("systemd-analyze").arg("--version").output().is_err() {
        assert!(
            std::env::var_os("TASKYARD_REQUIRE_SYSTEMD").is_none(),
            "systemd-analyze is needed (TASKYARD_REQUIRE_SYSTEMD is set)"
        );
        eprintln!("skipped: systemd-analyze is not on this machine");
        return;
    }
    let from: Timestamp = NOW.parse().expect("instant");
    let export = export(Target::Systemd);
    for info in infos(Target::Systemd) {
        let name = info.name.as_str();
        let timer = export
            .files
            .iter()
            .find(|file| file.name.ends_with(".timer") && file.text.contains(&format!(" schedule {name} (")))
            .unwrap_or_else(|| panic!("a timer for {name}"));
        let mut theirs: Vec<Timestamp> = Vec::new();
        for calendar in timer
            .text
            .lines()
            .filter_map(|line| line.strip_prefix("OnCalendar="))
        {
            theirs.extend(systemd_times(calendar, from));
        }
        theirs.sort();
        theirs.dedup();
        theirs.truncate(TICKS);
        // systemd's calendar ends with the year 2199.
        let end: Timestamp = "2200-01-01T00:00:00Z".parse().expect("instant");
        let ours: Vec<Timestamp> = ticks_of(&info, from).into_iter().filter(|t| *t < end).collect();
        same(&theirs, &ours, &format!("systemd, schedule {name}"));
    }
}

/// The next `TICKS` elapses of an `OnCalendar=` value after `from`, by systemd itself.
fn systemd_times(calendar: &str, from: Timestamp) -> Vec<Timestamp> {
    let output = Command::new("systemd-analyze")
        .env("TZ", "UTC")
        .arg("calendar")
        .arg(format!("--iterations={TICKS}"))
        .arg(format!("--base-time=@{}", from.as_second()))
        .arg(calendar)
        .output()
        .expect("systemd-analyze runs");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "`{calendar}`: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    text.lines()
        .filter(|line| line.contains("Next elapse:") || line.trim_start().starts_with("Iter."))
        .map(|line| {
            let (_, when) = line.split_once(": ").expect("a time");
            // "Fri 2026-12-25 18:00:00 UTC"
            let parts: Vec<&str> = when.split_whitespace().collect();
            format!("{}T{}Z", parts[1], parts[2]).parse().expect("a time")
        })
        .collect()
}

#[test]
fn kubernetes_output_reads_as_batch_v1_cronjobs() {
    use k8s_openapi::api::batch::v1::CronJob;
    let text = export(Target::Kubernetes).to_text();
    let docs: Vec<&str> = text.split("---\n").collect();
    assert_eq!(docs.len(), schedules(Target::Kubernetes).len());
    for doc in docs {
        let value: serde_json::Value = serde_yaml::from_str(doc).expect("YAML");
        assert_eq!(value["apiVersion"], "batch/v1");
        assert_eq!(value["kind"], "CronJob");
        let job: CronJob = serde_json::from_value(value.clone()).expect("a batch/v1 CronJob");
        // Every field is one the API knows, with its type: nothing is lost going through it.
        let mut back = serde_json::to_value(&job).expect("serializes");
        back.as_object_mut()
            .expect("object")
            .insert("apiVersion".into(), "batch/v1".into());
        back.as_object_mut()
            .expect("object")
            .insert("kind".into(), "CronJob".into());
        assert_eq!(back, value, "{doc}");
        let name = job.metadata.name.expect("a name");
        assert!(
            name.len() <= 52
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        );
    }
}

fn refused(target: Target, schedule: Schedule) -> String {
    match app(&[("s", schedule)]).export(&options(target), None) {
        Err(ExportError::Refused { refusals, .. }) => {
            assert_eq!(refusals.len(), 1);
            assert_eq!(refusals[0].schedule, "s");
            refusals[0].reason.clone()
        }
        other => panic!("{target}: not refused: {other:?}"),
    }
}

#[test]
fn every_refusal_names_its_reason() {
    use Target::*;
    let cases: Vec<(Target, Schedule, &str)> = vec![
        (
            Crontab,
            cron("*/20 * * * * *"),
            "has no seconds (only systemd has)",
        ),
        (
            Kubernetes,
            Schedule::worker().interval("10s").task("db:backup"),
            "has no seconds",
        ),
        (
            Crontab,
            cron("0 18 L * *"),
            "uses `L`, `W` or `#`, which crontab does not take",
        ),
        (
            Kubernetes,
            cron("0 10 * * MON#2"),
            "which kubernetes does not take",
        ),
        (Vercel, cron("59 23 LW * *"), "which vercel does not take"),
        (
            Vercel,
            cron("0 0 1,15 * MON"),
            "vercel takes only one of them: split it into two schedules",
        ),
        (
            Cloudflare,
            cron("0 0 1,15 * MON"),
            "cloudflare takes only one of them",
        ),
        (
            Crontab,
            cron("0 12 1-7 * +MON"),
            "crontab fires on days that match either",
        ),
        (
            Cloudflare,
            cron("0 9 * * *").tz("Europe/Paris"),
            "Europe/Paris has daylight saving and cloudflare runs schedules in UTC only",
        ),
        (
            Vercel,
            cron("0 5 * * 1").tz("Asia/Tokyo"),
            "some of its times fall on another day",
        ),
        (
            Cloudflare,
            cron("0 9 * * *").tz("Asia/Kolkata"),
            "not a whole number of hours",
        ),
        (
            Systemd,
            cron("30 2 * * *").tz("Europe/Paris"),
            "crosses the daylight-saving change of 2027-03-28 in Europe/Paris",
        ),
        (
            Crontab,
            cron("30 * * * *").tz("America/New_York"),
            "taskyard fires at",
        ),
        (
            Kubernetes,
            Schedule::all().cron("0 * * * *").task("db:backup"),
            "`type = \"all\"` runs every tick on every instance",
        ),
        (
            Systemd,
            cron("0 * * * *").catch_up(CatchUp::All(10)),
            "`catch_up = \"all\"` runs every missed tick",
        ),
        (
            Crontab,
            cron("0 * * * *").catch_up(CatchUp::Once),
            "crontab never runs a missed time",
        ),
        (
            Systemd,
            cron("0 * * * *").overlap(Overlap::Queue),
            "`overlap = \"queue\"` needs a tick to start",
        ),
        (
            Systemd,
            cron("0 * * * *").overlap(Overlap::Allow),
            "`overlap = \"allow\"`",
        ),
        (
            Crontab,
            Schedule::worker().interval("7m").task("db:backup"),
            "an interval of 7m does not divide a minute, an hour or a day",
        ),
        (
            Systemd,
            Schedule::worker().interval("1500ms").task("db:backup"),
            "is not a whole number of seconds",
        ),
        (Crontab, cron("0 0 0 1 1 * 2027-2030"), "limits the years"),
        (Vercel, cron("0 0 0 1 1 * 2027-2030"), "limits the years"),
        (
            Systemd,
            cron("0 0 0 1 1 * 2300-2310"),
            "fires in no year before 2200",
        ),
        (
            Systemd,
            cron("0 8 30W * *"),
            "`30W` depends on the month's length",
        ),
        (
            Crontab,
            Schedule::worker().immediate(true).task("db:backup"),
            "it has no `cron` or `interval`",
        ),
    ];
    for (target, schedule, expected) in cases {
        let reason = refused(target, schedule);
        assert!(
            reason.contains(expected),
            "{target}: `{reason}` does not say `{expected}`"
        );
    }
    // Every refusal is reported at once, and nothing is written.
    let both = app(&[
        ("a", cron("0 18 L * *")),
        ("b", cron("*/5 * * * * *")),
        ("c", cron("0 1 * * *")),
    ])
    .export(&options(Vercel), None)
    .expect_err("refused");
    let text = both.to_string();
    assert!(text.starts_with("Cannot export to vercel:"), "{text}");
    assert!(
        text.contains("schedule `a`") && text.contains("schedule `b`") && !text.contains("schedule `c`"),
        "{text}"
    );
    // One schedule alone, and one that does not exist.
    let one = app(&[("a", cron("0 18 L * *")), ("c", cron("0 1 * * *"))])
        .export(&options(Vercel), Some("c"))
        .expect("c alone");
    assert!(one.to_text().contains("\"0 1 * * *\""));
    let missing = app(&[("c", cron("0 1 * * *"))])
        .export(&options(Vercel), Some("nope"))
        .expect_err("no such schedule");
    assert_eq!(missing.to_string(), "Schedule `nope` is not defined");
    assert_eq!(
        "cron".parse::<Target>().expect_err("unknown"),
        "unknown export target `cron`: use crontab, systemd, kubernetes, cloudflare or vercel"
    );
}
