//! Each target's files: what a schedule's overlap, catch-up and `disable` become there, and
//! what the platform runs.

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use super::calendar::Calendar;
use super::cron_line::{Dialect, line};
use super::{Export, ExportFile, ExportOptions, Refusal, Target, daylight, systemd};
use crate::schedule::checked::{Kind, ScheduleDef, Timing};
use crate::schedule::definition::{CatchUp, Overlap};

/// The HTTP path a platform fires a schedule's tick at.
pub(crate) fn tick_path(schedule: &str) -> String {
    let name: String = form_urlencoded::byte_serialize(schedule.as_bytes()).collect();
    format!("/_tasks/schedules/{}/tick", name.replace('+', "%20"))
}

/// One schedule, checked for the target.
struct Item<'a> {
    def: &'a ScheduleDef,
    calendar: Calendar,
    disabled: bool,
}

pub(super) fn write(defs: &[ScheduleDef], options: &ExportOptions) -> Result<Export, Vec<Refusal>> {
    let target = options.target;
    let mut refusals = Vec::new();
    let mut notes = Vec::new();
    let mut items = Vec::new();
    for def in defs {
        match check(def, options) {
            Ok(item) => {
                if def.immediate {
                    notes.push(format!(
                        "schedule `{}`: `immediate` (one run when an instance starts) has no {target} equivalent; its ticks are exported",
                        def.name
                    ));
                }
                if item.disabled {
                    notes.push(format!(
                        "schedule `{}` is disabled: {}",
                        def.name,
                        disabled_as(target)
                    ));
                }
                items.push(item);
            }
            Err(reason) => refusals.push(Refusal {
                schedule: def.name.to_string(),
                reason,
            }),
        }
    }
    if !refusals.is_empty() {
        return Err(refusals);
    }
    let files = match target {
        Target::Crontab => vec![crontab(&items, options)],
        Target::Systemd => systemd_units(&items, options),
        Target::Kubernetes => vec![kubernetes(&items, options)],
        Target::Cloudflare => cloudflare(&items, options),
        Target::Vercel => vec![vercel(&items)],
    };
    Ok(Export { files, notes })
}

fn disabled_as(target: Target) -> &'static str {
    match target {
        Target::Crontab => "its line is written commented out",
        Target::Kubernetes => "its CronJob is written with `suspend: true`",
        Target::Systemd | Target::Cloudflare | Target::Vercel => "it is left out",
    }
}

/// The schedule's calendar in the target's terms, or why it has none.
fn check<'a>(def: &'a ScheduleDef, options: &ExportOptions) -> Result<Item<'a>, String> {
    let target = options.target;
    if def.kind == Kind::All {
        return Err(format!(
            "`type = \"all\"` runs every tick on every instance, but {target} fires each tick once; export its ticks as a `worker` schedule"
        ));
    }
    let mut calendar = Calendar::of(def)?;
    match (def.catch_up, target) {
        (CatchUp::All(_), _) => {
            return Err(format!(
                "`catch_up = \"all\"` runs every missed tick, but {target} runs at most the latest; use `once` or `skip`"
            ));
        }
        (CatchUp::Once, Target::Crontab | Target::Cloudflare | Target::Vercel) => {
            return Err(format!(
                "`catch_up = \"once\"` runs the latest tick missed while nothing ran, but {target} never runs a missed time; use `skip`, or systemd (Persistent=true) or Kubernetes (startingDeadlineSeconds)"
            ));
        }
        _ => {}
    }
    if target == Target::Systemd && def.overlap != Overlap::Skip {
        let overlap = if def.overlap == Overlap::Queue {
            "queue"
        } else {
            "allow"
        };
        return Err(format!(
            "`overlap = \"{overlap}\"` needs a tick to start while the previous run goes on, but systemd drops a timer's elapse while its service still runs; use `overlap = \"skip\"`, or crontab or Kubernetes"
        ));
    }
    if let Timing::Cron { expr, zone } = &def.timing
        && matches!(target, Target::Crontab | Target::Systemd | Target::Kubernetes)
        && let Some(why) = daylight::conflict(expr, zone, options.now)
    {
        return Err(why);
    }
    if matches!(target, Target::Cloudflare | Target::Vercel) {
        calendar = calendar.in_utc(target.as_str(), options.now)?;
    }
    if target != Target::Systemd {
        line(&calendar, &dialect(target))?;
    } else {
        systemd::on_calendar(&calendar)?;
    }
    let disabled = def.disable || def.disable_signal.as_ref().is_some_and(|signal| signal.get());
    Ok(Item {
        def,
        calendar,
        disabled,
    })
}

fn dialect(target: Target) -> Dialect {
    Dialect {
        target: target.as_str(),
        weekday_names: target == Target::Cloudflare,
        modifiers: target == Target::Cloudflare,
        both_days: matches!(target, Target::Crontab | Target::Kubernetes),
    }
}

fn cron_of(item: &Item<'_>, target: Target) -> String {
    // Checked in `check`.
    line(&item.calendar, &dialect(target)).unwrap_or_default()
}

/// The command that fires a tick: `BIN task run TASK --schedule NAME --tick auto`.
fn command(def: &ScheduleDef, options: &ExportOptions) -> Vec<String> {
    vec![
        options.bin.clone(),
        "task".to_owned(),
        "run".to_owned(),
        def.task.to_string(),
        "--schedule".to_owned(),
        def.name.to_string(),
        "--tick".to_owned(),
        "auto".to_owned(),
    ]
}

/// `value` for a POSIX shell: as it is when it holds nothing the shell reads, else in
/// single quotes.
fn shell(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-./:@=,+".contains(&b));
    if plain {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

/// A name for units, CronJobs and lock files: the app and the schedule in lowercase letters,
/// digits and `-`, with a short digest of the schedule's name when that lost something.
fn unit_name(app: &str, schedule: &str, most: usize) -> String {
    let slug = |text: &str| -> String {
        let mut out = String::new();
        for c in text.chars() {
            if c.is_ascii_alphanumeric() {
                out.push(c.to_ascii_lowercase());
            } else if !out.ends_with('-') {
                out.push('-');
            }
        }
        out.trim_matches('-').to_owned()
    };
    let app = slug(app);
    let name = slug(schedule);
    let mut full = match (app.is_empty(), name.is_empty()) {
        (true, _) => name.clone(),
        (false, true) => return app,
        (false, false) => format!("{app}-{name}"),
    };
    if name != schedule || full.len() > most {
        let digest = Sha256::digest(schedule.as_bytes());
        let digest: String = digest.iter().take(3).map(|b| format!("{b:02x}")).collect();
        full.truncate(most - digest.len() - 1);
        let trimmed = full.trim_end_matches('-').len();
        full.truncate(trimmed);
        full = format!("{full}-{digest}");
    }
    full
}

fn crontab(items: &[Item<'_>], options: &ExportOptions) -> ExportFile {
    let mut text = format!(
        "# Schedules of {app}, for crontab -e (cronie: CRON_TZ sets each line's zone; Debian's cron\n\
         # ignores CRON_TZ, so there the system's zone must be the one named).\n\
         # Each line claims its tick in the app's ledger: a second fire of a tick runs nothing.\n",
        app = options.app
    );
    for item in items {
        let def = item.def;
        let zone = item.calendar.zone_name().unwrap_or("UTC");
        let mut words: Vec<String> = Vec::new();
        if def.overlap == Overlap::Skip {
            let lock = format!("/tmp/{}.lock", unit_name(&options.app, &def.name, 100));
            words.extend(["flock".to_owned(), "-n".to_owned(), lock]);
        }
        words.extend(command(def, options).iter().map(|word| shell(word)));
        let run = format!("cd {} && {}", shell(&options.workdir), words.join(" "));
        let disabled = if item.disabled { "# (disabled) " } else { "" };
        let _ = write!(
            text,
            "\n# {name}: task {task}\nCRON_TZ={zone}\n{disabled}{cron} {run}\n",
            name = def.name,
            task = def.task,
            cron = cron_of(item, Target::Crontab),
            // `%` ends a crontab command; escaped it is a `%`.
            run = run.replace('%', r"\%"),
        );
    }
    ExportFile {
        name: "crontab".to_owned(),
        text,
    }
}

fn systemd_units(items: &[Item<'_>], options: &ExportOptions) -> Vec<ExportFile> {
    let mut files = Vec::new();
    for item in items.iter().filter(|item| !item.disabled) {
        let def = item.def;
        let unit = unit_name(&options.app, &def.name, 200);
        let description = format!("{} schedule {} (task {})", options.app, def.name, def.task);
        // `%` starts a specifier in unit files; `%%` is a `%`.
        let exec: Vec<String> = command(def, options)
            .iter()
            .map(|word| systemd_word(word).replace('%', "%%"))
            .collect();
        files.push(ExportFile {
            name: format!("{unit}.service"),
            text: format!(
                "[Unit]\nDescription={description}\n\n[Service]\nType=oneshot\nWorkingDirectory={workdir}\n\
                 EnvironmentFile=-{workdir}/.env\nExecStart={exec}\n",
                workdir = options.workdir,
                exec = exec.join(" "),
            ),
        });
        let mut timer = format!("[Unit]\nDescription={description}\n\n[Timer]\n");
        for calendar in systemd::on_calendar(&item.calendar).unwrap_or_default() {
            let _ = writeln!(timer, "OnCalendar={calendar}");
        }
        // systemd's default accuracy is a minute.
        timer.push_str("AccuracySec=1s\n");
        if def.catch_up == CatchUp::Once {
            timer.push_str("Persistent=true\n");
        }
        timer.push_str("\n[Install]\nWantedBy=timers.target\n");
        files.push(ExportFile {
            name: format!("{unit}.timer"),
            text: timer,
        });
    }
    files
}

/// A word of a unit's `ExecStart=`: quoted when it holds a space or a quote.
fn systemd_word(word: &str) -> String {
    if word.is_empty() || word.contains([' ', '"', '\'', '\\', ';']) {
        format!("\"{}\"", word.replace('\\', r"\\").replace('"', "\\\""))
    } else {
        word.to_owned()
    }
}

fn kubernetes(items: &[Item<'_>], options: &ExportOptions) -> ExportFile {
    let json = |value: &str| serde_json::Value::from(value).to_string();
    let mut docs = Vec::new();
    for item in items {
        let def = item.def;
        let name = unit_name(&options.app, &def.name, 52);
        let zone = match item.calendar.zone_name() {
            Some("UTC") | None => "Etc/UTC",
            Some(zone) => zone,
        };
        let policy = match def.overlap {
            Overlap::Skip => "Forbid",
            // A tick's command waits for the earlier one's run (the ledger keeps the order).
            Overlap::Queue | Overlap::Allow => "Allow",
        };
        let deadline = match def.catch_up {
            // A start missed by a minute is dropped, as a tick missed while no instance ran.
            CatchUp::Skip | CatchUp::All(_) => 60,
            // The latest missed time runs; under 100 missed times, past which no job starts.
            CatchUp::Once => starting_deadline(def, options.now),
        };
        let command = command(def, options);
        let mut doc = String::new();
        let _ = write!(
            doc,
            "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: {name}\n  labels:\n    \
             app.kubernetes.io/name: {app}\n    app.kubernetes.io/managed-by: taskyard\n  annotations:\n    \
             taskyard.dev/schedule: {schedule}\nspec:\n  schedule: {cron}\n  timeZone: {zone}\n  \
             concurrencyPolicy: {policy}\n  startingDeadlineSeconds: {deadline}\n  suspend: {suspend}\n  \
             jobTemplate:\n    spec:\n      backoffLimit: 0\n      template:\n        spec:\n          \
             restartPolicy: Never\n          containers:\n            - name: task\n              \
             image: {image}\n              command: [{command}]\n              envFrom:\n                \
             - secretRef:\n                    name: {secret}\n",
            app = json(&options.app),
            schedule = json(&def.name),
            cron = json(&cron_of(item, Target::Kubernetes)),
            zone = json(zone),
            suspend = item.disabled,
            image = json(&options.image),
            command = command
                .iter()
                .map(|word| json(word))
                .collect::<Vec<_>>()
                .join(", "),
            secret = json(&format!("{}-env", unit_name(&options.app, "", 40))),
        );
        docs.push(doc);
    }
    ExportFile {
        name: format!("{}-cronjobs.yaml", unit_name(&options.app, "", 40)),
        text: docs.join("---\n"),
    }
}

/// Seconds a late CronJob may still start: 99 times the shortest gap between ticks, at
/// most a day (Kubernetes starts nothing once it counts more than 100 missed times).
fn starting_deadline(def: &ScheduleDef, now: jiff::Timestamp) -> u64 {
    let mut at = now;
    let mut shortest = 86_400;
    for _ in 0..1_000 {
        let Some(next) = def.next_tick(at) else { break };
        shortest = shortest.min((next.as_second() - at.as_second()).max(1));
        at = next;
    }
    (shortest * 99).min(86_400) as u64
}

/// The cron strings and the schedules each fires.
fn by_cron(items: &[Item<'_>], target: Target) -> Vec<(String, Vec<String>)> {
    let mut crons: Vec<(String, Vec<String>)> = Vec::new();
    for item in items.iter().filter(|item| !item.disabled) {
        let cron = cron_of(item, target);
        match crons.iter_mut().find(|(known, _)| *known == cron) {
            Some((_, names)) => names.push(item.def.name.to_string()),
            None => crons.push((cron, vec![item.def.name.to_string()])),
        }
    }
    crons
}

fn cloudflare(items: &[Item<'_>], options: &ExportOptions) -> Vec<ExportFile> {
    let crons = by_cron(items, Target::Cloudflare);
    let json = |value: &str| serde_json::Value::from(value).to_string();
    let list = crons
        .iter()
        .map(|(cron, _)| json(cron))
        .collect::<Vec<_>>()
        .join(", ");
    let wrangler = format!(
        "# Cron Triggers of {app}'s schedules (Cloudflare runs them in UTC). Merge into wrangler.toml;\n\
         # the Worker's scheduled() handler is in src/scheduled.js.\n[triggers]\ncrons = [{list}]\n",
        app = options.app
    );
    let mut table = String::new();
    for (cron, names) in &crons {
        let names = names.iter().map(|name| json(name)).collect::<Vec<_>>().join(", ");
        let _ = writeln!(table, "  {}: [{names}],", json(cron));
    }
    let script = format!(
        "// Fires {app}'s taskyard schedules from Cloudflare Cron Triggers. Each trigger's schedules\n\
         // claim the trigger's own time as their tick in the app's ledger, so a duplicate fire runs\n\
         // nothing. Set TASKYARD_URL (the app's address) and TASKYARD_TASKS_TOKEN as secrets.\n\
         const SCHEDULES = {{\n{table}}};\n\n\
         export default {{\n  async scheduled(controller, env, ctx) {{\n    \
         for (const name of SCHEDULES[controller.cron] ?? []) {{\n      \
         ctx.waitUntil(fire(env, name, controller.scheduledTime));\n    }}\n  }},\n}};\n\n\
         async function fire(env, name, at) {{\n  \
         const url = `${{env.TASKYARD_URL}}/_tasks/schedules/${{encodeURIComponent(name)}}/tick?at=${{at}}`;\n  \
         const response = await fetch(url, {{\n    method: \"POST\",\n    \
         headers: {{ authorization: `Bearer ${{env.TASKYARD_TASKS_TOKEN}}` }},\n  }});\n  \
         if (!response.ok) {{\n    throw new Error(`schedule ${{name}}: ${{response.status}} ${{await response.text()}}`);\n  }}\n}}\n",
        app = options.app
    );
    vec![
        ExportFile {
            name: "wrangler.toml".to_owned(),
            text: wrangler,
        },
        ExportFile {
            name: "src/scheduled.js".to_owned(),
            text: script,
        },
    ]
}

fn vercel(items: &[Item<'_>]) -> ExportFile {
    let crons: Vec<serde_json::Value> = items
        .iter()
        .filter(|item| !item.disabled)
        .map(|item| {
            serde_json::json!({
                "path": tick_path(&item.def.name),
                "schedule": cron_of(item, Target::Vercel),
            })
        })
        .collect();
    let text = serde_json::to_string_pretty(&serde_json::json!({ "crons": crons })).unwrap_or_default();
    ExportFile {
        name: "vercel.json".to_owned(),
        text: format!("{text}\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_what_each_platform_takes() {
        assert_eq!(unit_name("quickstart", "heartbeat", 52), "quickstart-heartbeat");
        let nitro = unit_name("quickstart", "cms:update@* * * * *", 52);
        assert!(
            nitro.starts_with("quickstart-cms-update-") && nitro.len() <= 52,
            "{nitro}"
        );
        assert_ne!(nitro, unit_name("quickstart", "cms:update@*/1 * * * *", 52));
        let long = unit_name("quickstart", &"x".repeat(80), 52);
        assert_eq!(long.len(), 52);
        assert_eq!(shell("cms:update@* * * * *"), "'cms:update@* * * * *'");
        assert_eq!(shell("it's"), r"'it'\''s'");
        assert_eq!(shell("/srv/app/bin/app"), "/srv/app/bin/app");
        assert_eq!(
            tick_path("cms:update@* * * * *"),
            "/_tasks/schedules/cms%3Aupdate%40*%20*%20*%20*%20*/tick"
        );
    }
}
